"""``wheelshade serve``: parse its flags, build the repository, run uvicorn on a bound socket."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from wheelshade.config import find_config
from wheelshade.errors import UsageError, WheelshadeError
from wheelshade.serve.app import AccessLog, create_app
from wheelshade.serve.cache import ShadeCache
from wheelshade.serve.repository import Repository
from wheelshade.serve.settings import ServeSet, load_sets
from wheelshade.serve.upstream import make_upstream, redact

DEFAULT_UPSTREAM = "https://pypi.org/simple/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the [[set]] tables to serve (default: ./wheelshade.toml, else "
                        "[tool.wheelshade] in ./pyproject.toml)")
    parser.add_argument("--upstream", action="append", default=[], metavar="URL|DIR",
                        help="an index URL or a folder of wheels (repeatable; the first that "
                        f"has a project serves it; default {DEFAULT_UPSTREAM})")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--cache-dir", type=Path,
                        help="shaded-file cache (default: $WHEELSHADE_CACHE_DIR/serve or "
                        "~/.cache/wheelshade/serve)")
    parser.add_argument("--cache-size", type=int, default=2048, metavar="MB",
                        help="evict least recently used files above this size (default 2048)")
    parser.add_argument("--page-ttl", type=float, default=60.0, metavar="SECONDS",
                        help="how long an upstream project page is reused (default 60)")
    parser.add_argument("--shade-jobs", type=int, default=1, metavar="N",
                        help="shades run at once (default 1)")
    parser.add_argument("--eager", action="store_true",
                        help="shade every release of a dependent when its page is asked for, "
                        "so pages list every hash and size (default: when a file is)")
    parser.add_argument("--json", action="store_true",
                        help="log as JSON lines (one per request, and one per message)")


class _Redact(logging.Filter):
    """No URL credentials in any log line, whoever wrote it (uvicorn, requests, ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _JsonFormat(logging.Formatter):
    """Access records are JSON already; every other message becomes one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "wheelshade.serve.access":
            return message
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                           "level": record.levelname.lower(), "message": message})


def _cache_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    base = os.environ.get("WHEELSHADE_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "wheelshade") / "serve"


def _sets(config: Path | None) -> list[ServeSet]:
    return load_sets(config) if config is not None else []


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Raises UsageError for bad flags or config (the CLI prints it)."""
    config = args.config or find_config(Path.cwd())
    if config is not None:
        config = config.resolve()
    try:
        upstreams = [make_upstream(i, spec) for i, spec in
                     enumerate(args.upstream or [DEFAULT_UPSTREAM])]
    except WheelshadeError as exc:
        raise UsageError(str(exc)) from None
    if args.cache_size < 1 or args.shade_jobs < 1:
        raise UsageError("--cache-size and --shade-jobs must be at least 1")
    cache = ShadeCache(_cache_dir(args.cache_dir).resolve(), args.cache_size << 20,
                       args.shade_jobs)
    cache.remove_stale()
    repo = Repository(_sets(config), upstreams, cache, config, page_ttl=args.page_ttl,
                      eager=args.eager)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormat() if args.json
                         else logging.Formatter("wheelshade serve: %(message)s"))
    handler.addFilter(_Redact())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        sock = socket.create_server((args.host, args.port), backlog=256)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving on http://{host}:{port}/simple/", flush=True)
    log = logging.getLogger("wheelshade.serve")
    for up in upstreams:
        log.info("upstream %d: %s", up.number, redact(up.label))
    for s in repo.sets:
        log.info("set %d (%s): shades %s; rewrites %s", s.number, s.label,
                 ", ".join(sorted(s.shaded.values())), ", ".join(sorted(s.dependents)) or "-")
    app = AccessLog(create_app(repo), as_json=args.json)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wheelshade serve")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except UsageError as exc:
        print(f"wheelshade: error: {exc}", file=sys.stderr)
        return 1
