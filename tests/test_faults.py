"""Faults while shading: unwritable output, full disk, signals, pip failing or hanging, two runs
writing one folder. Whatever happens, no partial or corrupt wheel appears under its final name,
and running again succeeds.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from helpers import make_wheel, validate_record, wheelshade
from wheelshade import FetchError, IndexOptions, Pin, cli, shade
from wheelshade.errors import OutputError
from wheelshade.resolve.fetch import fetch

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
NO_SPACE = re.escape(f"cannot write the output ({os.strerror(errno.ENOSPC)})")


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "wheelshade", *map(str, args)]


run_cli = wheelshade


def assert_one_error_line(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert re.match(r"wheelshade: error: " + pattern, lines[0]), lines[0]


def assert_only_complete_wheels(out: Path) -> None:
    """Every wheel under its final name is complete (RECORD checks out); nothing is staged."""
    if not out.exists():
        return
    for wheel in out.glob("*.whl"):
        validate_record(wheel)
    assert list(out.glob(".wheelshade-*")) == []


def shade_ok(dep: Path, out: Path) -> Path:
    """A rerun: succeeds and writes one valid wheel."""
    proc = run_cli("shade", "--dep", dep, "-o", out)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    validate_record(wheel)
    assert_only_complete_wheels(out)
    return wheel


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    return make_wheel(
        folder, "demo", "1.0", {"demo/__init__.py": "import demo.sub\n", "demo/sub.py": ""}
    )


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("other")
    return make_wheel(folder, "other", "2.0", {"other/__init__.py": "import other\n"})


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dep of 1000 modules that all import it: shading takes a second or two."""
    files = {
        f"big/m{i}.py": f"import big\nfrom big import m{(i + 1) % 1000}\nimport os, big.m{i}\n"
        + "VALUE = 1\n" * 30
        for i in range(1000)
    }
    files["big/__init__.py"] = ""
    return make_wheel(tmp_path_factory.mktemp("big"), "big", "1.0", files)


# -- output folder that cannot be written ----------------------------------------------------


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file where the output folder (or its parent) should be."""
    path = tmp_path / "blocker"
    path.write_bytes(b"not a folder\n")
    return path


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_unwritable_output_writes_nothing(
    where: str, small: Path, blocker: Path, tmp_path: Path
) -> None:
    out = blocker if where == "file" else blocker / "out"
    proc = run_cli("shade", "--dep", small, "-o", out)
    assert proc.returncode == 2
    assert blocker.read_bytes() == b"not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    shade_ok(small, tmp_path / "out")


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_unwritable_output_is_one_error_line(where: str, small: Path, blocker: Path) -> None:
    out = blocker if where == "file" else blocker / "out"
    proc = run_cli("shade", "--dep", small, "-o", out)
    assert proc.returncode == 2
    reason = "File exists" if where == "file" else "Not a directory"
    assert_one_error_line(
        proc.stderr, re.escape(f"{out}: cannot create the output folder ({reason})")
    )


# -- disk full -------------------------------------------------------------------------------


class _FullDisk(io.FileIO):
    """A file that takes ``budget`` bytes, then fails as a full disk does."""

    def __init__(self, path: str, mode: str, budget: int) -> None:
        super().__init__(path, mode)
        self.budget = budget

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if size > self.budget:
            raise ENOSPC
        self.budget -= size
        return super().write(data)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Wheels written under ``tmp_path/out`` fail after 300 bytes; yields the paths tried."""
    real_open = io.open
    tried: list[str] = []

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "w+b" and str(file).startswith(str(tmp_path / "out")):
            tried.append(str(file))
            return _FullDisk(str(file), mode, budget=300)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.io, "open", fake_open)  # type: ignore[attr-defined]
    yield tried


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_full_disk_leaves_no_partial_wheel(
    existing: bool, small: Path, other: Path, full_disk: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("someone else's\n")
    before = small.read_bytes()
    with pytest.raises(OutputError, match=NO_SPACE):
        shade([], [small, other], out_dir=out)
    assert full_disk  # the failure happened while writing a wheel
    assert_only_complete_wheels(out)
    assert not out.exists() or list(out.glob("*.whl")) == []
    if existing:
        assert (out / "keep.txt").read_text() == "someone else's\n"
    assert small.read_bytes() == before


def test_full_disk_then_rerun(
    small: Path, full_disk: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(OutputError):
        shade([], [small], out_dir=tmp_path / "out")
    monkeypatch.undo()
    result = shade([], [small], out_dir=tmp_path / "out")
    (report,) = result.wheels
    validate_record(report.output)


@pytest.fixture
def keep_sigterm_handler() -> Iterator[None]:
    """cli.main installs a SIGTERM handler; give the test process its own back."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


@pytest.mark.usefixtures("keep_sigterm_handler")
def test_full_disk_is_one_error_line(
    small: Path, full_disk: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    status = cli.main(["shade", "--dep", str(small), "-o", str(out)])
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, re.escape(f"{out}: ") + NO_SPACE)


def test_failed_run_removes_only_its_own_files(
    small: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    real_open = io.open

    def other_process_then_full(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode in ("w+b", "wb") and ".wheelshade-" in str(file):  # zipfile retries w+b as wb
            (out / "other-1.0-py3-none-any.whl").write_bytes(b"another run's wheel")
            raise ENOSPC
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.io, "open", other_process_then_full)  # type: ignore[attr-defined]
    with pytest.raises(OutputError):
        shade([], [small], out_dir=out)
    assert (out / "other-1.0-py3-none-any.whl").read_bytes() == b"another run's wheel"


def test_failed_move_leaves_only_complete_wheels(
    small: Path, other: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()  # exists already, so a failed run leaves what it moved
    real_replace = os.replace
    moved: list[str] = []

    def fail_second(src: Any, dst: Any, **kwargs: Any) -> None:
        if str(dst).startswith(str(out)) and str(dst).endswith(".whl"):
            if moved:
                raise ENOSPC
            moved.append(str(dst))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OutputError):
        shade([], [small, other], out_dir=out)
    monkeypatch.undo()
    assert [str(p) for p in out.glob("*.whl")] == moved  # not all wheels, but each complete
    assert_only_complete_wheels(out)
    shade([], [small, other], out_dir=out)
    assert len(list(out.glob("*.whl"))) == 2
    assert_only_complete_wheels(out)


# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    out: Path
    returncode: int
    stderr: str
    wheels: list[str]
    staged: list[str]
    lingering: list[int]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the run and its pool workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


def stop_while_writing(dep: Path, out: Path, sig: signal.Signals) -> Stopped:
    """Start a run, send ``sig`` once it is writing (its staging folder exists), wait."""
    proc = subprocess.Popen(
        command("shade", "--dep", dep, "-o", out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(out.glob(".wheelshade-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    time.sleep(0.5)  # let orphaned workers notice
    return Stopped(
        out,
        proc.returncode,
        stderr,
        sorted(p.name for p in out.glob("*.whl")) if out.exists() else [],
        sorted(p.name for p in out.glob(".wheelshade-*")) if out.exists() else [],
        processes_mentioning(str(out)),
    )


@pytest.fixture(scope="module")
def interrupted(big: Path, tmp_path_factory: pytest.TempPathFactory) -> Stopped:
    return stop_while_writing(big, tmp_path_factory.mktemp("sigint") / "out", signal.SIGINT)


@pytest.fixture(scope="module")
def terminated(big: Path, tmp_path_factory: pytest.TempPathFactory) -> Stopped:
    return stop_while_writing(big, tmp_path_factory.mktemp("sigterm") / "out", signal.SIGTERM)


def test_sigint_writes_nothing_and_says_so(interrupted: Stopped, big: Path) -> None:
    assert interrupted.returncode == 130
    assert interrupted.stderr == "wheelshade: interrupted; nothing was written\n"
    assert not interrupted.out.exists()  # the run created it, so it removed it
    assert interrupted.lingering == []


def test_sigterm_writes_nothing_and_says_so(terminated: Stopped, big: Path) -> None:
    assert terminated.returncode == 128 + signal.SIGTERM
    assert terminated.stderr == "wheelshade: terminated; nothing was written\n"
    assert not terminated.out.exists()
    assert terminated.lingering == []


@pytest.mark.parametrize("which", ["interrupted", "terminated"])
def test_rerun_after_a_signal_succeeds(
    which: str, request: pytest.FixtureRequest, big: Path
) -> None:
    stopped: Stopped = request.getfixturevalue(which)
    proc = run_cli("shade", "--dep", big, "-o", stopped.out)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = stopped.out.glob("*.whl")
    validate_record(wheel)
    assert list(stopped.out.glob(".wheelshade-*")) == []


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(
    big: Path, tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, a CI timeout) runs no clean-up; the next run does it."""
    killed = stop_while_writing(big, tmp_path / "out", signal.SIGKILL)
    for pid in killed.lingering:  # orphaned pool workers of the killed run
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert len(killed.staged) == 1  # left behind
    shade_ok(big, killed.out)  # which also asserts nothing is staged any more


# -- pip failing or hanging ------------------------------------------------------------------


def test_pip_failing_is_one_line_and_a_fixed_rerun_succeeds(small: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["shade", "--dep", "nosuch==1.0", "--no-index", "--cache-dir", cache, "-o", out]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, r"nosuch==1\.0: pip could not obtain a wheel: ERROR: ")
    assert not out.exists()
    assert list(cache.rglob(".fetch-*")) == []
    links = tmp_path / "links"
    make_wheel(links, "nosuch", "1.0", {"nosuch/__init__.py": ""})
    proc = run_cli(*args, "--find-links", links)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    validate_record(wheel)


@pytest.fixture
def silent_index() -> Iterator[str]:
    """An index URL on 127.0.0.1 whose server accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/simple"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.mark.usefixtures("no_proxy")
def test_hanging_index_times_out(silent_index: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    index = IndexOptions(index_url=silent_index)
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"^nosuch==1\.0: pip did not finish within 2 s \("):
        fetch(Pin("nosuch", Version("1.0")), index=index, cache_dir=cache, timeout=2)
    assert time.monotonic() - start < 30
    assert list(cache.rglob(".fetch-*")) == []
    assert processes_mentioning(silent_index) == []  # pip was killed


@pytest.mark.usefixtures("no_proxy")
def test_hanging_index_with_pip_timeout_from_the_environment(
    silent_index: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    env = {"PIP_TIMEOUT": "1", "PIP_RETRIES": "0"}
    args = ["--index-url", silent_index, "--cache-dir", tmp_path / "cache", "-o", out]
    proc = run_cli("shade", "--dep", "nosuch==1.0", *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, r"nosuch==1\.0: pip could not obtain a wheel")
    assert not out.exists()


@pytest.mark.usefixtures("no_proxy")
def test_hanging_index_with_fetch_timeout_flag(silent_index: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--index-url", silent_index, "--cache-dir", tmp_path / "cache", "-o", out]
    start = time.monotonic()
    proc = run_cli("shade", "--dep", "nosuch==1.0", "--fetch-timeout", "2", *args)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, r"nosuch==1\.0: pip did not finish within 2 s")
    assert time.monotonic() - start < 30
    assert not out.exists()


# -- two runs, one output folder -------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_two_runs_writing_one_folder(
    existing: bool, small: Path, other: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    args = ["shade", "--dep", small, "--dep", other, "-o", out]
    runs = [
        subprocess.Popen(
            command(*args), stderr=subprocess.PIPE, text=True, stdout=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
    for status, stderr in results:
        if status != 0:  # failing is allowed, but cleanly
            assert status == 2
            assert_one_error_line(stderr, "")
    assert any(status == 0 for status, _ in results), results
    assert len(list(out.glob("*.whl"))) == 2
    assert_only_complete_wheels(out)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert_only_complete_wheels(out)
