"""``wheelshade serve`` end to end: real pip and real uv install the demo from the server."""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Venv
from serve_support import (
    EXAMPLES,
    JSON_ACCEPT,
    Server,
    demo_upstream,
    pip_install,
    quietly_get,
    sha256,
    uv,
    write_config,
)

pytest.importorskip("uvicorn", reason="serve's extra is not installed")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-upstream")
    return demo_upstream(tmp / "wheels", tmp / "src")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: Path) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    srv = Server(write_config(tmp / "wheelshade.toml"), [str(upstream)], tmp / "cache",
                 tmp / "server.log").start()
    yield srv
    srv.stop()


def _check_demo(env: Venv) -> None:
    proc = env.run((EXAMPLES / "run_both.py").read_text())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bizbaz: flask 0.12.4 from ") and "/flask_0_12_4_" in lines[0]
    assert lines[1] == "bizbaz: GET / -> 200 'bizbaz page rendered by flask 0.12.4&lt;ok&gt;'"
    assert lines[2].startswith("foobar: flask 3.1.3 from ") and "/flask/__init__.py" in lines[2]


def test_pip_installs_the_demo_from_the_server(server: Server, tmp_path: Path) -> None:
    env = Venv.create(tmp_path / "env")
    proc = pip_install(env.python, server, "bizbaz", "foobar", "flask>=3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_demo(env)
    assert env.pip("check", check=False).returncode == 0


def test_uv_installs_the_demo_from_the_server(server: Server, tmp_path: Path) -> None:
    env = Venv.create(tmp_path / "env")
    proc = uv("pip", "install", "--python", str(env.python), "--index-url", server.url,
              "bizbaz", "foobar", "flask>=3", cache=tmp_path / "uv-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_demo(env)


def test_resolution_reads_metadata_files_not_wheels(server: Server, tmp_path: Path) -> None:
    """PEP 658: pip and uv resolve from ``.metadata`` files; no wheel is downloaded."""
    env = Venv.create(tmp_path / "env")
    server.mark()
    proc = pip_install(env.python, server, "--dry-run", "bizbaz", "flask>=3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "flask-0-12-4-" in proc.stdout
    paths = [str(r["path"]) for r in server.requests()]
    assert any(p.endswith("bizbaz-0.1-py3-none-any.whl.metadata") for p in paths), paths
    assert any("/deps/flask_0_12_4_" in p and p.endswith(".metadata") for p in paths)
    assert not [p for p in paths if p.endswith(".whl")], paths
    server.mark()
    proc = uv("pip", "compile", "-", "--index-url", server.url, "--python-version", "3.11",
              "--no-header", cache=tmp_path / "uv-cache", input_text="bizbaz\nflask>=3\n")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^flask-0-12-4-[0-9a-f]{8}==0\.12\.4", proc.stdout, re.M), proc.stdout
    assert not [p for r in server.requests() if (p := str(r["path"])).endswith(".whl")]


def test_served_files_match_their_pages(server: Server, upstream: Path) -> None:
    """sha256, size, ``.metadata`` (byte-identical to the wheel's METADATA, PEP 658/714)
    and upload time (the original file's, PEP 700) of every shaded file."""
    for project in ("bizbaz", *_shaded_projects(server)):
        (entry,) = server.page(project)["files"]  # type: ignore[misc]
        status, wheel, _ = server.get(entry["url"])
        assert status == 200
        assert entry["hashes"] == {"sha256": sha256(wheel)}, project
        assert entry["size"] == len(wheel)
        status, metadata, _ = server.get(entry["url"] + ".metadata")
        assert status == 200
        with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
            (member,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            assert zf.read(member) == metadata
        assert entry["core-metadata"] == {"sha256": sha256(metadata)}
        assert entry["dist-info-metadata"] == entry["core-metadata"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["upload-time"])
    bizbaz = server.page("bizbaz")["files"][0]  # type: ignore[index]
    metadata = server.get(bizbaz["url"] + ".metadata")[1].decode()
    assert re.search(r"^Requires-Dist: flask-0-12-4-[0-9a-f]{8}==0\.12\.4$", metadata, re.M)


def _shaded_projects(server: Server) -> list[str]:
    (set_,) = server.health()["sets"]  # type: ignore[misc]
    return sorted(set_["shaded"].values())


def test_html_and_json_by_content_negotiation(server: Server) -> None:
    (entry,) = server.page("bizbaz")["files"]  # type: ignore[misc]
    assert server.get(entry["url"])[0] == 200  # shaded: its page lists the hash
    status, body, headers = server.get("simple/bizbaz/", "text/html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = body.decode()
    assert '<meta name="pypi:repository-version" content="1.1">' in text
    assert re.search(r'<a href="http://127\.0\.0\.1:\d+/files/1/[0-9a-f]{64}/'
                     r'bizbaz-0\.1-py3-none-any\.whl#sha256=[0-9a-f]{64}" '
                     r'data-core-metadata="sha256=[0-9a-f]{64}"', text), text
    status, body, headers = server.get("simple/bizbaz/", f"text/html;q=0.5, {JSON_ACCEPT}")
    assert headers["content-type"] == JSON_ACCEPT and json.loads(body)["name"] == "bizbaz"
    status, _, headers = server.get("simple/bizbaz/",
                                    "application/vnd.pypi.simple.v1+html")
    assert headers["content-type"].startswith("application/vnd.pypi.simple.v1+html")
    assert server.get("simple/bizbaz/", "application/x-tar")[0] == 406
    names = [p["name"] for p in json.loads(server.get("simple/", JSON_ACCEPT)[1])["projects"]]
    assert "bizbaz" in names and "flask" in names and any(n.startswith("flask-0-12-4-")
                                                          for n in names)
    assert server.health()["status"] == "ok"


def test_other_projects_pass_through_untouched(server: Server, upstream: Path) -> None:
    (orig,) = upstream.glob("flask-3.1.3-*.whl")
    files = server.page("flask")["files"]
    entry = next(f for f in files if f["filename"] == orig.name)  # type: ignore[index]
    assert entry["hashes"] == {"sha256": sha256(orig.read_bytes())}
    status, data, _ = server.get(entry["url"])
    assert status == 200 and data == orig.read_bytes()


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/simple/../../etc/passwd", {400, 404}),
        ("/simple/%2e%2e%2f%2e%2e%2fetc%2fpasswd/", {400, 404}),
        ("/simple/foo%3Fbar=1/", {400}),
        ("/simple/a%20b/", {400}),
        ("/simple/-bad-/", {400}),
        ("/simple/no-such-project/", {404}),
        ("/files/up/0/flask/..%2F..%2F..%2Fetc%2Fpasswd", {400, 404}),
        ("/files/up/0/flask/flask-9.9-py3-none-any.whl", {404}),
        ("/files/up/7/flask/flask-3.1.3-py3-none-any.whl", {404}),
        ("/files/1/deps/..%2Fentry.json", {400, 404}),
        ("/files/1/deps/entry.json", {400}),
        ("/files/1/notahash/bizbaz-0.1-py3-none-any.whl", {400}),
        ("/files/9/deps/flask-0.12.4-py3-none-any.whl", {404}),
        ("/files/1/" + "0" * 64 + "/bizbaz-0.1-py3-none-any.whl", {404}),
    ],
)
def test_bad_names_and_traversal_are_refused(server: Server, path: str,
                                             statuses: set[int]) -> None:
    host, port = server.root.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", path)  # sent as is: no client-side normalisation
    status = conn.getresponse().status
    conn.close()
    assert status in statuses, (path, status)


def test_only_configured_projects_are_shaded(server: Server, upstream: Path) -> None:
    """A file URL naming a project that is not a dependent of the set is not shaded."""
    (orig,) = upstream.glob("flask-3.1.3-*.whl")
    digest = sha256(orig.read_bytes())
    assert server.get(f"files/1/{digest}/{orig.name}")[0] == 404
    assert server.get("simple/Flask/")[0] == 200  # redirected to the normal name
    builds = server.health()["cache"]["builds"]  # type: ignore[index]
    assert builds <= 2  # the set's deps, and bizbaz


def test_a_sigkilled_server_restarts_and_serves_correct_files(
    tmp_path: Path, upstream: Path
) -> None:
    """Killed mid-shade, the server leaves no entry behind; the next one shades again."""
    import threading
    import time

    config = write_config(tmp_path / "wheelshade.toml")
    srv = Server(config, [str(upstream)], tmp_path / "cache", tmp_path / "log").start()
    url = next(f for f in server_files(srv))
    worker = threading.Thread(target=quietly_get, args=(srv, url), daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while not any((tmp_path / "cache" / "tmp").iterdir()):
        assert time.monotonic() < deadline, "no shade started"
        time.sleep(0.02)
    srv.stop(signal.SIGKILL)
    assert not list((tmp_path / "cache" / "entries").iterdir())
    again = Server(config, [str(upstream)], tmp_path / "cache", tmp_path / "log").start()
    try:
        (entry,) = again.page("bizbaz")["files"]  # type: ignore[misc]
        status, data, _ = again.get(entry["url"])
        assert status == 200
        page = again.page("bizbaz")["files"][0]  # type: ignore[index]
        assert page["hashes"] == {"sha256": sha256(data)}
        zipfile.ZipFile(io.BytesIO(data)).testzip()
        assert not [p for p in (tmp_path / "cache" / "tmp").iterdir()
                    if p.name.split(".")[1] == str(srv.proc.pid)]  # type: ignore[union-attr]
    finally:
        again.stop()


def server_files(srv: Server) -> Iterator[str]:
    for entry in srv.page("bizbaz")["files"]:  # type: ignore[attr-defined]
        yield entry["url"]


def test_eager_pages_list_every_hash_and_size(tmp_path: Path, upstream: Path) -> None:
    srv = Server(write_config(tmp_path / "wheelshade.toml"), [str(upstream)],
                 tmp_path / "cache", tmp_path / "log", extra=["--eager"]).start()
    try:
        (entry,) = srv.page("bizbaz")["files"]  # type: ignore[misc]
        assert set(entry) >= {"hashes", "size", "core-metadata", "upload-time"}
        status, data, _ = srv.get(entry["url"])
        assert status == 200 and entry["hashes"] == {"sha256": sha256(data)}
        assert entry["size"] == len(data)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        ('[[set]]\ndeps = ["flask>=0.12"]\ndependents = ["bizbaz"]\n', [],
         r"serve needs each dep pinned as NAME==VERSION, not 'flask>=0.12'"),
        ('[[set]]\ndeps = ["flask==0.12.4"]\ndependents = ["../etc"]\n', [],
         r"'\.\./etc' is not a project name"),
        ('[[set]]\ndeps = ["flask==0.12.4"]\nbogus = 1\n', [], r"unknown key 'bogus'"),
        ('[[set]]\ndeps = ["flask==0.12.4"]\n', ["--upstream", "/no/such/folder"],
         r"neither an http\(s\) index URL nor a folder"),
    ],
)
def test_bad_config_or_flags_are_one_line_errors(
    tmp_path: Path, config: str, flags: list[str], message: str
) -> None:
    from helpers import wheelshade

    (tmp_path / "wheelshade.toml").write_text(config)
    proc = wheelshade("serve", "--config", tmp_path / "wheelshade.toml", "--port", "0",
                      "--cache-dir", tmp_path / "c", *flags)
    assert proc.returncode == 1 and proc.stdout == ""
    assert re.match(r"wheelshade: error: .*" + message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize(
    ("accept", "forced", "expected"),
    [
        (None, None, "text/html"),
        ("*/*", None, JSON_ACCEPT),
        ("text/html", None, "text/html"),
        ("text/*", None, "text/html"),
        # pip's and uv's Accept headers
        ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
         "text/html; q=0.01", None, JSON_ACCEPT),
        ("application/vnd.pypi.simple.v1+html, text/html;q=0.9", None,
         "application/vnd.pypi.simple.v1+html"),
        (f"{JSON_ACCEPT};q=0, text/html", None, "text/html"),
        ("application/x-tar", None, None),
        ("text/html", JSON_ACCEPT, JSON_ACCEPT),
        ("text/html", "application/x-tar", None),
    ],
)
def test_content_negotiation(accept: str | None, forced: str | None,
                             expected: str | None) -> None:
    from wheelshade.serve.pages import negotiate

    assert negotiate(accept, forced) == expected


def test_without_the_extra_serve_says_what_to_install() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "from wheelshade.cli import main; raise SystemExit(main(['serve']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == ("wheelshade: error: serve needs its extra (uvicorn is missing); "
                           "pip install 'wheelshade[serve]'\n")
