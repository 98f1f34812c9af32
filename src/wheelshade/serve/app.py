"""The ASGI application (Starlette): routes, name checks, errors as one-line HTTP answers."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelshade import __version__
from wheelshade.errors import WheelshadeError
from wheelshade.serve.pages import index_page, negotiate, project_page
from wheelshade.serve.repository import Link, Repository, ShadeFailed

access_log = logging.getLogger("wheelshade.serve.access")

#: PEP 508 names; anything else is refused before it reaches an upstream URL.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_FILE = re.compile(r"^[A-Za-z0-9_.+!-]+\.(?:whl|tar\.gz|zip)(?:\.metadata)?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NO_STORE = {"Cache-Control": "max-age=60"}
_IN_MEMORY = 4 << 20


def _bad(reason: str, status: int = 400) -> Response:
    return PlainTextResponse(reason + "\n", status_code=status)


def _project(raw: str) -> NormalizedName | Response:
    if len(raw) > 200 or not _NAME.match(raw):
        return _bad(f"{raw[:80]!r} is not a valid project name")
    return canonicalize_name(raw)


def _filename_ok(name: str) -> bool:
    return len(name) <= 255 and bool(_FILE.match(name)) and ".." not in name


def _version(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(repo: Repository) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({
            "status": "ok",
            "version": __version__,
            "upstreams": [up.label for up in repo.upstreams],
            "sets": [{"number": s.number, "label": s.label, "shaded": dict(s.shaded),
                      "dependents": sorted(s.dependents)} for s in repo.sets],
            "cache": {"builds": repo.cache.builds_done, "corrupt": repo.cache.corrupt_found},
        })

    async def root(request: Request) -> Response:
        return RedirectResponse("/simple/", status_code=301)

    async def index(request: Request) -> Response:
        kind = negotiate(request.headers.get("accept"), request.query_params.get("format"))
        if kind is None:
            return _bad("none of the accepted media types is served", 406)
        names = await run_in_threadpool(repo.project_names)
        return Response(index_page(names, kind), media_type=kind,
                        headers={**_NO_STORE, "Vary": "Accept"})

    async def project(request: Request) -> Response:
        raw = request.path_params["project"]
        name = _project(raw)
        if isinstance(name, Response):
            return name
        if name != raw or not request.url.path.endswith("/"):
            return RedirectResponse(f"/simple/{name}/", status_code=301)
        kind = negotiate(request.headers.get("accept"), request.query_params.get("format"))
        if kind is None:
            return _bad("none of the accepted media types is served", 406)
        links: list[Link] | None = await run_in_threadpool(repo.page, name)
        if links is None:
            return _bad(f"no project {name}", 404)
        versions = sorted({v for link in links if (v := _version(link.filename))}, key=Version)
        body = project_page(name, links, versions, kind, _base(request))
        return Response(body, media_type=kind, headers={**_NO_STORE, "Vary": "Accept"})

    async def shaded(request: Request) -> Response:
        number, part = request.path_params["number"], request.path_params["part"]
        filename = request.path_params["filename"]
        if not _filename_ok(filename) or not (part == "deps" or _SHA256.match(part)):
            return _bad("not a file name this server serves")
        found = await run_in_threadpool(_small_file, repo, number, part, filename)
        if found is None:
            return _bad(f"no file {filename}", 404)
        headers = {"Cache-Control": "max-age=31536000, immutable"}
        if isinstance(found, bytes):
            return Response(found, media_type="application/octet-stream", headers=headers)
        return FileResponse(found, media_type="application/octet-stream", headers=headers)

    async def passthrough(request: Request) -> Response:
        number, filename = request.path_params["number"], request.path_params["filename"]
        name = _project(request.path_params["project"])
        if isinstance(name, Response):
            return name
        if not _filename_ok(filename):
            return _bad("not a file name this server serves")
        found = await run_in_threadpool(repo.passthrough, number, name, filename)
        if found is None:
            return _bad(f"no file {filename}", 404)
        _, chunks = found
        # The first chunk is read before the answer starts: an upstream error is a 502.
        first = await run_in_threadpool(next, chunks, b"")
        headers = {}
        if found[0].size is not None and not filename.endswith(".metadata"):
            headers["Content-Length"] = str(found[0].size)
        return StreamingResponse(_chain(first, chunks), headers=headers,
                                 media_type="application/octet-stream")

    app = Starlette(routes=[
        Route("/", root),
        Route("/health", health),
        Route("/simple/", index),
        Route("/simple/{project}/", project),
        Route("/simple/{project}", project),
        Route("/files/up/{number:int}/{project}/{filename}", passthrough),
        Route("/files/{number:int}/{part}/{filename}", shaded),
    ])
    app.add_exception_handler(WheelshadeError, _error)  # type: ignore[arg-type]
    return app


def _small_file(repo: Repository, number: int, part: str, filename: str
                ) -> bytes | Path | None:
    """The file's bytes when small (one thread hop per request), else its path (streamed)."""
    path = repo.shaded_file(number, part, filename)
    if path is None or path.stat().st_size > _IN_MEMORY:
        return path
    return path.read_bytes()


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


async def _error(request: Request, exc: WheelshadeError) -> Response:
    status = 500 if isinstance(exc, ShadeFailed) else 502
    reason = str(exc).splitlines()[0]
    logging.getLogger("wheelshade.serve").error("%s %s: %s", request.method,
                                                request.url.path, reason)
    return _bad(reason, status)


class AccessLog:
    """One line per request (method, path, status, bytes, seconds), text or JSON."""

    def __init__(self, app: ASGIApp, as_json: bool) -> None:
        self.app, self.as_json = app, as_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        seen: dict[str, Any] = {"status": 500, "bytes": 0}

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            client = scope.get("client") or ("-", 0)
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "client": client[0],
                "method": scope["method"],
                "path": scope["path"],
                "status": seen["status"],
                "bytes": seen["bytes"],
                "seconds": round(time.monotonic() - start, 4),
            }
            if self.as_json:
                access_log.info(json.dumps(record))
            else:
                access_log.info("%s %s %s %s %d %.4fs", record["client"], record["method"],
                                record["path"], record["status"], record["bytes"],
                                record["seconds"])


