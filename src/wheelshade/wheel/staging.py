"""The private folder a run writes into: nothing reaches the output folder unless all succeeds."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wheelshade.errors import OutputError

PREFIX = ".wheelshade-"
#: The file in each staging folder that names the run owning it, with its start time.
OWNER = ".owner.json"
#: A staging folder's name: ``.wheelshade-<pid>@<host>-<random>``. The name is given when
#: the folder is made, so even a run killed before it wrote its owner file is known.
_NAME = re.compile(r"\.wheelshade-(\d+)@(.+)-[a-z0-9_]+")
#: A staging folder named by a wheelshade that recorded no owner is taken to be abandoned
#: past this age (seconds).
UNOWNED_AGE = 24 * 3600


def _host() -> str:
    """This machine, as far as its PIDs go: the host name, and the PID namespace where
    there is one (two containers with one host name and one shared folder do not see each
    other's processes, so each takes the other's folders for another host's)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return host
    return host + "+" + re.sub(r"\D", "", namespace)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot, where /proc can say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (boot and clock tick), or None where /proc cannot say.

    Together with the PID it names one process: a PID reused by a later process, even
    after a reboot, has another start time.
    """
    ticks = start_ticks(pid)
    return None if ticks is None else f"{_boot_id()}:{ticks}"


def _alive(pid: int, started: object) -> bool:
    if pid <= 0:
        return True  # not a PID this code wrote: leave the folder alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    now = _start_time(pid)
    return started is None or now is None or now == started


def _write_owner(stage: Path) -> None:
    owner = {"pid": os.getpid(), "host": _host(), "started": _start_time(os.getpid())}
    fd = os.open(stage / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(owner, out)


def _owner(folder: Path) -> tuple[int, str, object] | None:
    """(pid, host, start time) of the run that made ``folder``, or None when unknown."""
    try:
        owner = json.loads((folder / OWNER).read_text(encoding="utf-8"))
        return int(owner["pid"]), str(owner["host"]), owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        pass  # killed before writing it (or while), or writing it now: the name says
    named = _NAME.fullmatch(folder.name)
    return (int(named.group(1)), named.group(2), None) if named else None


def abandoned(folder: Path) -> bool:
    """Whether ``folder`` is a staging folder whose run is gone (on this host, by PID and
    start time). A live run's folder and another host's folder are never abandoned."""
    owner = _owner(folder)
    if owner is None:  # made by a wheelshade that recorded no owner
        try:
            return time.time() - folder.stat().st_mtime > UNOWNED_AGE
        except OSError:
            return False
    pid, host, started = owner
    return host == _host() and not _alive(pid, started)


def remove_abandoned(out_dir: Path) -> list[Path]:
    """Remove the staging folders in ``out_dir`` left by runs that were killed (SIGKILL, the
    OOM killer, a CI timeout: no clean-up code ran). Returns the folders removed."""
    removed = []
    for folder in sorted(out_dir.glob(PREFIX + "*")):
        if folder.is_dir() and not folder.is_symlink() and abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextmanager
def staging(out_dir: Path, *, keep: bool) -> Iterator[Path]:
    """A private folder inside ``out_dir``; nothing reaches ``out_dir`` unless all succeeds.

    On failure only what this run made goes: its staging folder, and ``out_dir`` itself
    when this run created it and it is empty again (another process may be writing there).
    The folder names its owner, so a later run removes it if this one is killed.
    Operating-system errors (a full disk, a read-only or missing folder) become OutputError.
    """
    created: list[Path] = []
    parent = out_dir
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned(out_dir)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=f"{PREFIX}{os.getpid()}@{_host()}-"))
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder ({exc.strerror})",
            path=str(out_dir),
            hint="choose another --out-dir",
        ) from None
    try:
        _write_owner(stage)
        yield stage
    except OSError as exc:
        keep = False
        raise OutputError(
            f"cannot write the output ({exc.strerror or exc})",
            path=str(out_dir),
            hint="free some space or choose another --out-dir",
        ) from None
    except BaseException:
        keep = False
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not keep:
            for folder in created:  # innermost first; rmdir leaves a non-empty one alone
                with contextlib.suppress(OSError):
                    folder.rmdir()
