"""``wheelshade serve`` under load and faults: one shade per key, corrupt entries, index
upstreams (upload times, yanked files, credentials), shading failures, the cache's LRU."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import Venv, make_wheel
from index_server import serve_index
from serve_support import OLD_STACK, Server, demo_upstream, pip_install, sha256, uv, write_config

pytest.importorskip("uvicorn", reason="serve's extra is not installed")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-upstream")
    return demo_upstream(tmp / "wheels", tmp / "src")


@contextmanager
def running(tmp: Path, upstreams: list[str], config: Path | None = None) -> Iterator[Server]:
    srv = Server(config or write_config(tmp / "wheelshade.toml"), upstreams, tmp / "cache",
                 tmp / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()


def test_twenty_concurrent_cold_requests_shade_once(tmp_path: Path, upstream: Path) -> None:
    with running(tmp_path, [str(upstream)]) as srv:
        (entry,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
        barrier = threading.Barrier(20)
        bodies: list[bytes] = []

        def fetch() -> None:
            barrier.wait()
            status, body, _ = srv.get(entry["url"])
            assert status == 200
            bodies.append(body)

        threads = [threading.Thread(target=fetch) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(bodies) == 20 and len(set(bodies)) == 1
        assert srv.health()["cache"] == {"builds": 1, "corrupt": 0}
        assert srv.log.read_text().count("shading bizbaz-0.1-py3-none-any.whl") == 1
        (again,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
        assert again["hashes"] == {"sha256": sha256(bodies[0])}


def test_twenty_concurrent_uv_installs_are_identical(tmp_path: Path, upstream: Path) -> None:
    """Twenty installs of the set at once, cold cache, each with its own uv cache."""
    from concurrent.futures import ThreadPoolExecutor

    with running(tmp_path, [str(upstream)]) as srv:
        envs = [Venv.create(tmp_path / f"env{i}") for i in range(20)]

        def install(i: int) -> str:
            proc = uv("pip", "install", "--python", str(envs[i].python), "--index-url",
                      srv.url, "bizbaz", "flask>=3", cache=tmp_path / f"uv{i}")
            assert proc.returncode == 0, proc.stderr
            site = next(envs[i].root.glob("lib/python*/site-packages"))
            # RECORD lines of files in site-packages (scripts in bin/ name their venv).
            lines = sorted(line for r in site.glob("*.dist-info/RECORD")
                           for line in r.read_text().splitlines() if not line.startswith(".."))
            assert any(line.startswith("flask_0_12_4_") for line in lines)
            return hashlib.sha256("\n".join(lines).encode()).hexdigest()

        with ThreadPoolExecutor(20) as pool:
            installed = list(pool.map(install, range(20)))
        assert len(set(installed)) == 1
        assert srv.health()["cache"] == {"builds": 2, "corrupt": 0}


def test_a_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path: Path, upstream: Path) -> None:
    with running(tmp_path, [str(upstream)]) as srv:
        (entry,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
        good = srv.get(entry["url"])[1]
        metadata = srv.get(entry["url"] + ".metadata")[1]
        (cached,) = (tmp_path / "cache" / "entries").glob("*/bizbaz-*.whl")
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))  # same size, other bytes
        status, body, _ = srv.get(entry["url"])
        assert status == 200 and body == good
        assert srv.health()["cache"] == {"builds": 2, "corrupt": 1}
    (meta,) = (tmp_path / "cache" / "entries").glob("*/bizbaz-*.whl.metadata")
    meta.write_bytes(meta.read_bytes()[:10])  # truncated while no server ran
    with running(tmp_path, [str(upstream)]) as srv:
        url = entry["url"].replace(entry["url"].split("/files/")[0], srv.root.rstrip("/"))
        assert srv.get(url + ".metadata")[1] == metadata
        assert srv.health()["cache"] == {"builds": 1, "corrupt": 1}
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def _index_wheels(upstream: Path) -> dict[Path, str]:
    """Upload times for a test index: the Flask 3 stack is new, everything else old."""
    new = {"flask-3.1.3", "werkzeug-3.1.3", "jinja2-3.1.6", "markupsafe-3.0.3",
           "itsdangerous-2.2.0"}
    return {
        path: "2025-06-01T12:00:00Z" if "-".join(path.name.lower().split("-")[:2]) in new
        else "2018-05-04T12:00:00Z"
        for path in upstream.glob("*.whl")
    }


def test_uploaded_prior_to_through_the_server(tmp_path: Path, upstream: Path) -> None:
    """PEP 700: shaded files carry their original's upload time, so a date cutoff keeps
    them, and drops the newer releases of everything else."""
    with serve_index(_index_wheels(upstream)) as index, running(tmp_path, [index]) as srv:
        (shaded,) = srv.page(next(iter(_shaded(srv))))["files"]  # type: ignore[misc]
        assert shaded["upload-time"] == "2018-05-04T12:00:00.000000Z"
        env = Venv.create(tmp_path / "env")
        proc = pip_install(env.python, srv, "--dry-run", "--report", "-", "--quiet",
                           "--uploaded-prior-to", "2020-01-01T00:00:00Z", "bizbaz", "flask")
        assert proc.returncode == 0, proc.stderr
        chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                  for i in json.loads(proc.stdout)["install"]}
        assert chosen["flask"] == "0.12.4" and "bizbaz" in chosen
        assert sum(name.startswith("flask-0-12-4-") for name in chosen) == 1
        proc = uv("pip", "compile", "-", "--index-url", srv.url, "--no-header",
                  "--exclude-newer", "2020-01-01T00:00:00Z", cache=tmp_path / "uv",
                  input_text="bizbaz\nflask\n")
        assert proc.returncode == 0, proc.stderr
        assert "\nflask==0.12.4" in "\n" + proc.stdout, proc.stdout


def _shaded(srv: Server) -> list[str]:
    (set_,) = srv.health()["sets"]  # type: ignore[misc]
    return sorted(set_["shaded"].values())


@contextmanager
def private_index(files: dict[str, tuple[bytes, dict[str, object]]],
                  password: str) -> Iterator[str]:
    """An index behind basic auth: ``files`` maps a filename to its bytes and extra fields
    (``yanked``, a wrong ``sha256``)."""
    wanted = "Basic " + base64.b64encode(f"user:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != wanted:
                self.send_error(401)
                return
            parts = [p for p in self.path.split("/") if p]
            if parts[:1] == ["simple"] and len(parts) == 2:
                entries = [
                    {"filename": name, "url": f"/files/{name}", "upload-time":
                     "2019-01-02T03:04:05Z", "hashes": {"sha256": sha256(data)}, **extra}
                    for name, (data, extra) in files.items()
                    if name.split("-")[0].replace("_", "-") == parts[1]
                ]
                if not entries:
                    self.send_error(404)
                    return
                body = json.dumps({"meta": {"api-version": "1.1"}, "name": parts[1],
                                   "files": entries}).encode()
                kind = "application/vnd.pypi.simple.v1+json"
            elif parts[:1] == ["files"] and parts[1] in files:
                body, kind = files[parts[1]][0], "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://user:{password}@127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def test_private_upstream_yanked_hashes_and_no_credential_leak(tmp_path: Path) -> None:
    secret = "s3cret-token-4711"
    good = make_wheel(tmp_path / "w", "goodpkg", "1.0", {"goodpkg/__init__.py": "X = 1\n"})
    bad = make_wheel(tmp_path / "w", "hashbad", "1.0", {"hashbad/__init__.py": "Y = 2\n"})
    files = {
        good.name: (good.read_bytes(), {"yanked": "broken build"}),
        bad.name: (bad.read_bytes(), {"hashes": {"sha256": "0" * 64}}),
    }
    config = tmp_path / "wheelshade.toml"
    config.write_text('[[set]]\ndeps = ["hashbad==1.0"]\ndependents = []\n')
    with private_index(files, secret) as index, running(tmp_path, [index], config) as srv:
        (entry,) = srv.page("goodpkg")["files"]  # type: ignore[misc]
        assert entry["yanked"] == "broken build"
        assert entry["upload-time"] == "2019-01-02T03:04:05.000000Z"
        assert entry["url"].startswith(srv.root + "files/up/0/goodpkg/")  # proxied
        html = srv.get("simple/goodpkg/", "text/html")[1].decode()
        assert 'data-yanked="broken build"' in html
        status, body, _ = srv.get(entry["url"])
        assert status == 200 and body == good.read_bytes()
        (shaded_name,) = _shaded(srv)
        status, reason, _ = srv.get(f"simple/{shaded_name}/")
        assert status == 502  # the upstream's fault: its file does not match its hash
        assert reason.decode().count("\n") == 1 and "does not match" in reason.decode()
        pages = [srv.get(p)[1] for p in ("health", "simple/goodpkg/", "simple/")]
    assert all(secret.encode() not in page for page in pages)
    assert secret not in srv.log.read_text()
    assert "***@127.0.0.1" in srv.log.read_text()
    assert list((tmp_path / "cache" / "entries").iterdir()) == []


def test_a_shading_failure_is_a_one_line_http_error(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    dep = make_wheel(folder, "brokendep", "1.0", {"brokendep/__init__.py": "A = 1\n"})
    with zipfile.ZipFile(dep) as zf:  # a member whose bytes no longer match RECORD
        members = {n: zf.read(n) for n in zf.namelist()}
    members["brokendep/__init__.py"] = b"A = 2\n"
    with zipfile.ZipFile(dep, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    make_wheel(folder, "brokenapp", "1.0", {"brokenapp/__init__.py": "import brokendep\n"},
               requires=("brokendep==1.0",))
    config = tmp_path / "wheelshade.toml"
    config.write_text('[[set]]\ndeps = ["brokendep==1.0"]\ndependents = ["brokenapp"]\n')
    with running(tmp_path, [str(folder)], config) as srv:
        (shaded_name,) = _shaded(srv)
        status, body, _ = srv.get(f"simple/{shaded_name}/")
        assert status == 500
        text = body.decode()
        assert text.count("\n") == 1 and "brokendep" in text and "failed" in text, text
        (entry,) = srv.page("brokenapp")["files"]  # type: ignore[misc]
        assert srv.get(entry["url"] + ".metadata")[0] == 500
    assert list((tmp_path / "cache" / "entries").iterdir()) == []
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_served_shade_equals_a_direct_shade(tmp_path: Path, upstream: Path) -> None:
    """Shading is deterministic: the server's files are byte for byte the API's."""
    from wheelshade import shade

    deps = [next(upstream.glob(f"{r.split('==')[0]}-{r.split('==')[1]}-*.whl"))
            if list(upstream.glob(f"{r.split('==')[0]}-{r.split('==')[1]}-*.whl"))
            else next(upstream.glob(f"{r.split('==')[0].capitalize()}-*{r.split('==')[1]}-*"))
            for r in OLD_STACK]
    (app,) = upstream.glob("bizbaz-*.whl")
    shade([app], deps, out_dir=tmp_path / "out", cache_dir=tmp_path / "c")
    direct = {p.name: sha256(p.read_bytes()) for p in (tmp_path / "out").glob("*.whl")}
    with running(tmp_path, [str(upstream)]) as srv:
        for project in ("bizbaz", *_shaded(srv)):
            (entry,) = srv.page(project)["files"]  # type: ignore[misc]
            body = srv.get(entry["url"])[1]
            assert direct[entry["filename"]] == sha256(body), project


def test_the_cache_evicts_least_recently_used_entries(tmp_path: Path) -> None:
    from wheelshade.serve.cache import ShadeCache

    def builder(name: str, size: int) -> object:
        def build(out: Path) -> None:
            make_wheel(out, name, "1.0", {f"{name}/data.py": "#" * size})
        return build

    cache = ShadeCache(tmp_path / "c", max_bytes=1 << 30)
    cache.build("a" * 64, builder("one", 3000))  # type: ignore[arg-type]
    cache.max_bytes = cache.size() * 5 // 2  # room for two entries, not three
    time.sleep(0.05)
    cache.build("b" * 64, builder("two", 3000))  # type: ignore[arg-type]
    time.sleep(0.05)
    assert cache.get("a" * 64) is not None  # used: now the newest
    time.sleep(0.05)
    cache.build("c" * 64, builder("three", 3000))  # type: ignore[arg-type]
    assert cache.get("b" * 64) is None
    assert cache.get("a" * 64) is not None and cache.get("c" * 64) is not None


def test_one_build_per_key_across_threads(tmp_path: Path) -> None:
    from wheelshade.serve.cache import ShadeCache

    cache = ShadeCache(tmp_path / "c", max_bytes=1 << 30)
    calls = []

    def build(out: Path) -> None:
        calls.append(1)
        time.sleep(0.3)
        make_wheel(out, "slow", "1.0", {"slow/__init__.py": ""})

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.build("k" * 64, build)))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({r.folder for r in results}) == 1 and len(results) == 20


def test_a_release_that_moved_on_is_served_unchanged(tmp_path: Path, upstream: Path) -> None:
    """bizbaz 0.2 requires flask>=3: the set's flask 0.12.4 is of no use to it, so it is
    listed as upstream has it, and pip picks it beside flask 3; 0.1 is still rewritten."""
    import shutil

    folder = tmp_path / "up"
    shutil.copytree(upstream, folder)
    newer = make_wheel(folder, "bizbaz", "0.2", {"bizbaz/__init__.py": "import flask\n"},
                       requires=("flask>=3",))
    with running(tmp_path, [str(folder)]) as srv:
        files = {f["filename"]: f for f in srv.page("bizbaz")["files"]}  # type: ignore[attr-defined]
        assert files[newer.name]["url"].startswith(srv.root + "files/up/0/bizbaz/")
        assert files[newer.name]["hashes"] == {"sha256": sha256(newer.read_bytes())}
        assert "/files/1/" in files["bizbaz-0.1-py3-none-any.whl"]["url"]
        env = Venv.create(tmp_path / "env")
        for spec, shaded in (("bizbaz", False), ("bizbaz<0.2", True)):
            proc = pip_install(env.python, srv, "--dry-run", "--report", "-", "--quiet",
                               spec, "flask>=3")
            assert proc.returncode == 0, proc.stderr
            names = {i["metadata"]["name"] for i in json.loads(proc.stdout)["install"]}
            assert any(n.startswith("flask-0-12-4-") for n in names) is shaded, names


def test_a_config_changed_under_the_server_is_not_shaded_with(
    tmp_path: Path, upstream: Path
) -> None:
    """The cache keys name the options the server read: a shade with other options
    (the file edited since) would poison the cache, so it is refused."""
    config = write_config(tmp_path / "wheelshade.toml")
    with running(tmp_path, [str(upstream)], config) as srv:
        write_config(config, extra='suffix = "old"\n')
        status, body, _ = srv.get(f"simple/{_shaded(srv)[0]}/")
        assert status == 500 and b"changed since the server started; restart it" in body
    assert list((tmp_path / "cache" / "entries").iterdir()) == []


def test_a_stale_folder_whose_pid_was_reused_is_removed(tmp_path: Path) -> None:
    """Pids wrap (32768 by default): a killed server's ``tmp/<key>.<pid>.*`` folder whose
    number a later process got is stale all the same; a live owner's folder is kept."""
    import os
    import subprocess
    import sys

    from wheelshade.serve.cache import ShadeCache

    cache = ShadeCache(tmp_path / "cache", 10**9)
    stale = tmp_path / "cache" / "tmp" / "0123456789abcdef.PID.x1"
    stale.mkdir()
    old = time.time() - 60
    os.utime(stale, (old, old))
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = stale.with_name(f"0123456789abcdef.{later.pid}.x1")
        stale.rename(reused)
        os.utime(reused, (old, old))
        live = tmp_path / "cache" / "tmp" / f"fedcba9876543210.{os.getppid()}.x2"
        live.mkdir()
        cache.remove_stale()
        assert not reused.exists()
        assert live.exists()
    finally:
        later.kill()
        later.wait()
