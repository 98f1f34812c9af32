"""Test support for ``wheelshade serve``: start a real server on 127.0.0.1, read its log,
run real pip and real uv against it with every outside configuration switched off."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers import build_fixture
from pypi import wheels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OLD_STACK = ("flask==0.12.4", "werkzeug==0.16.1", "jinja2==2.11.3", "markupsafe==2.0.1",
             "itsdangerous==1.1.0")
NEW_STACK = ("flask==3.1.3", "werkzeug==3.1.3", "jinja2==3.1.6", "markupsafe==3.0.3",
             "itsdangerous==2.2.0", "click==8.1.8", "blinker==1.9.0")
CONFIG = """\
[[set]]
name = "old-flask"
deps = [{deps}]
dependents = ["bizbaz"]
"""
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


def demo_upstream(folder: Path, work: Path) -> Path:
    """A folder upstream: both Flask stacks (pinned wheels) and the two demo apps."""
    links = wheels(*OLD_STACK, *NEW_STACK)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {r.replace("==", "-").lower() for r in (*OLD_STACK, *NEW_STACK)}
    for whl in links.glob("*.whl"):
        name, version = whl.name.split("-")[:2]
        if f"{name.lower().replace('_', '-')}-{version}" in wanted:
            shutil.copy2(whl, folder / whl.name)
    for app in ("bizbaz", "foobar"):
        build_fixture(app, folder, work, root=EXAMPLES)
    return folder


def write_config(path: Path, deps: Sequence[str] = OLD_STACK, extra: str = "") -> Path:
    path.write_text(CONFIG.format(deps=", ".join(f'"{d}"' for d in deps)) + extra)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without pip's and uv's configuration (this machine has mirrors)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1")
    env.update(extra)
    return env


@dataclass
class Server:
    """``wheelshade serve --port 0 --json``, started and stopped by a test."""

    config: Path
    upstreams: Sequence[str]
    cache: Path
    log: Path
    extra: Sequence[str] = ()
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    _log_mark: int = field(default=0)

    def start(self) -> Server:
        command = [sys.executable, "-m", "wheelshade", "serve", "--config", str(self.config),
                   "--port", "0", "--cache-dir", str(self.cache), "--json", *self.extra]
        for up in self.upstreams:
            command += ["--upstream", up]
        with self.log.open("a") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                         stderr=log, env=clean_env())
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        assert first.startswith("serving on http://127.0.0.1:"), (first, self.log.read_text())
        self.url = first.removeprefix("serving on ")
        assert self.url.endswith("/simple/")
        return self

    @property
    def root(self) -> str:
        return self.url.removesuffix("simple/")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def mark(self) -> None:
        """Start a new section of the access log (see ``requests``)."""
        self._log_mark = len(self.log.read_bytes())

    def requests(self) -> list[dict[str, object]]:
        """Access-log records written since ``mark``."""
        time.sleep(0.2)  # the line is written when the response ends
        text = self.log.read_bytes()[self._log_mark:].decode()
        out = []
        for line in text.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if "path" in record:
                    out.append(record)
        return out

    def get(self, path: str, accept: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        url = path if path.startswith("http") else self.root + path.lstrip("/")
        req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def page(self, project: str) -> dict[str, object]:
        status, body, _ = self.get(f"simple/{project}/", JSON_ACCEPT)
        assert status == 200, body
        page: dict[str, object] = json.loads(body)
        return page

    def health(self) -> dict[str, object]:
        status, body, _ = self.get("health")
        assert status == 200
        doc: dict[str, object] = json.loads(body)
        return doc


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pip_install(python: Path, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
         "--index-url", server.url, *args],
        capture_output=True, text=True, env=clean_env(), timeout=600,
    )


def uv(*args: str, cache: Path, input_text: str | None = None
       ) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=600,
                          input=input_text, env=clean_env(UV_CACHE_DIR=str(cache)))


def quietly_get(server: Server, url: str) -> None:
    """``server.get`` for a background thread: the server may be killed under it."""
    with contextlib.suppress(OSError):
        server.get(url)
