"""Benchmark ``wheelshade serve``: time to first byte of a shaded file, cold and warm, and
throughput of warm pass-through pages, each as a ratio to a baseline measured in this run.

    .venv/bin/python benchmarks/serve_bench.py [--runs N] [--seconds S]   (part of make bench)

The set is the README demo's (bizbaz against the Flask 0.12.4 stack, pinned wheels from
tests/pypi.py); pip and sympy would take minutes to set up and shade per cold run.
Baselines: cold, the same shade run directly (``wheelshade shade``); warm, the same file
served by the standard library's static server; pages, a pre-rendered copy of the same
JSON page served by that static server. Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serve_support import (  # noqa: E402  (the tests' helpers: pinned wheels, clean env)
    JSON_ACCEPT,
    OLD_STACK,
    Server,
    demo_upstream,
    write_config,
)


def ttfb(url: str, accept: str | None = None) -> float:
    """Seconds from sending the request to the first byte of the body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", parts.path, headers={"Accept": accept} if accept else {})
    resp = conn.getresponse()
    resp.read(1)
    took = time.perf_counter() - start
    assert resp.status == 200, (url, resp.status)
    resp.read()
    conn.close()
    return took


def throughput(url: str, seconds: float, clients: int = 4) -> float:
    """Requests per second by ``clients`` threads over ``seconds`` (a connection each)."""
    parts = urlsplit(url)
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(i: int) -> None:
        while time.perf_counter() < stop:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            conn.request("GET", parts.path, headers={"Accept": JSON_ACCEPT})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            assert resp.status == 200
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


class StaticServer:
    """``python -m http.server`` over a folder: the cheapest index there is."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--directory", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        self.url = f"http://127.0.0.1:{line.split(' port ')[1].split()[0]}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _burst(config: Path, upstream: Path, work: Path) -> tuple[list[float], int]:
    """Twenty clients ask for the same shaded file at once, on a cold cache."""
    srv = Server(config, [str(upstream)], work / "cache-burst", work / "log").start()
    try:
        (entry,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
        barrier = threading.Barrier(20)
        times: list[float] = []

        def one() -> None:
            barrier.wait()
            start = time.perf_counter()
            status, _, _ = srv.get(entry["url"])
            assert status == 200
            times.append(time.perf_counter() - start)

        threads = [threading.Thread(target=one) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        builds = srv.health()["cache"]["builds"]  # type: ignore[index]
        return times, int(builds)
    finally:
        srv.stop()


def _median(f: Callable[[], float], runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold runs (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of each throughput measurement (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    try:
        return _run(work, args.runs, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, runs: int, seconds: float) -> int:
    upstream = demo_upstream(work / "up", work / "src")
    config = write_config(work / "wheelshade.toml")
    (app,) = upstream.glob("bizbaz-*.whl")
    deps = [p for p in upstream.glob("*.whl")
            if "-".join(p.name.lower().split("-")[:2]) in
            {r.replace("==", "-") for r in OLD_STACK}]

    def direct() -> float:
        out = work / "direct"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wheelshade", "shade", str(app), "--no-config",
                        "-q", "-o", str(out), *(a for d in deps for a in ("--dep", str(d)))],
                       check=True)
        return time.perf_counter() - start

    cold, cold_direct = [], []
    for i in range(runs):
        srv = Server(config, [str(upstream)], work / f"cache{i}", work / "log").start()
        try:
            (entry,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
            cold.append(ttfb(entry["url"]))
            warm_url = entry["url"]
        finally:
            srv.stop()
        cold_direct.append(direct())
    burst, builds = _burst(config, upstream, work)
    srv = Server(config, [str(upstream)], work / "cache0", work / "log").start()
    static_dir = work / "static"
    static_dir.mkdir()
    try:
        warm_url = warm_url.replace(warm_url.split("/files/")[0], srv.root.rstrip("/"))
        ttfb(warm_url)
        warm = _median(lambda: ttfb(warm_url), 21)
        page_url = srv.root + "simple/flask/"
        status, page, _ = srv.get(page_url, JSON_ACCEPT)
        assert status == 200
        shutil.copy(work / "cache0" / "entries" / next(
            p.name for p in (work / "cache0" / "entries").iterdir()) / warm_url.rsplit("/")[-1],
            static_dir / "file.whl")
        (static_dir / "page.json").write_bytes(page)
        static = StaticServer(static_dir)
        try:
            ttfb(static.url + "file.whl")
            warm_static = _median(lambda: ttfb(static.url + "file.whl"), 21)
            pages_static = throughput(static.url + "page.json", seconds)
        finally:
            static.stop()
        pages = throughput(page_url, seconds)
    finally:
        srv.stop()
    result = {
        "set": "bizbaz + flask 0.12.4 stack (5 deps)",
        "cold_ttfb_s": statistics.median(cold),
        "cold_runs_s": cold,
        "direct_shade_s": statistics.median(cold_direct),
        "cold_ratio_to_direct_shade": statistics.median(cold) / statistics.median(cold_direct),
        "burst_20_cold_slowest_s": max(burst),
        "burst_20_cold_fastest_s": min(burst),
        "burst_20_cold_shades": builds,
        "warm_ttfb_s": warm,
        "warm_static_ttfb_s": warm_static,
        "warm_ratio_to_static": warm / warm_static,
        "passthrough_pages_per_s": pages,
        "static_pages_per_s": pages_static,
        "passthrough_ratio_to_static": pages / pages_static,
    }
    print(f"cold TTFB, shaded bizbaz wheel:  {result['cold_ttfb_s']:.2f} s "
          f"(direct `wheelshade shade`: {result['direct_shade_s']:.2f} s, "
          f"ratio {result['cold_ratio_to_direct_shade']:.2f})")
    print(f"20 concurrent cold requests:     all served in {max(burst):.2f} s "
          f"(fastest {min(burst):.2f} s), {builds} shade(s)")
    print(f"warm TTFB, same file:            {warm * 1000:.2f} ms "
          f"(static server: {warm_static * 1000:.2f} ms, ratio {warm / warm_static:.2f})")
    print(f"warm pass-through pages:         {pages:.0f}/s "
          f"(static server: {pages_static:.0f}/s, ratio {pages / pages_static:.2f})")
    out = ROOT / "benchmarks" / "results" / "serve.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
