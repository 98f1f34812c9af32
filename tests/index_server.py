"""A local package index speaking the JSON simple API (PEP 691) with upload times (PEP 700)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename


@contextmanager
def serve_index(wheels: Mapping[Path, str | None]) -> Iterator[str]:
    """Serve ``wheels`` (path -> ISO upload time, or None for none, as a mirror that keeps
    no upload times) on 127.0.0.1; yields the index URL."""
    by_project: dict[str, list[tuple[Path, str | None]]] = {}
    for path, uploaded in wheels.items():
        name = parse_wheel_filename(path.name)[0]
        by_project.setdefault(name, []).append((path, uploaded))
    files = {path.name: path for path in wheels}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            if len(parts) == 2 and parts[0] == "simple" and parts[1] in by_project:
                body = json.dumps(
                    {
                        "meta": {"api-version": "1.1"},
                        "name": parts[1],
                        "versions": sorted(
                            {str(parse_wheel_filename(p.name)[1]) for p, _ in by_project[parts[1]]}
                        ),
                        "files": [
                            {
                                "filename": p.name,
                                "url": f"/files/{p.name}",
                                "hashes": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
                                **({"upload-time": uploaded} if uploaded else {}),
                            }
                            for p, uploaded in by_project[parts[1]]
                        ],
                    }
                ).encode()
                self._send(body, "application/vnd.pypi.simple.v1+json")
            elif len(parts) == 2 and parts[0] == "files" and parts[1] in files:
                self._send(files[parts[1]].read_bytes(), "application/octet-stream")
            else:
                self.send_error(404)

        def do_HEAD(self) -> None:  # uv asks before a range request
            self.do_GET()

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
