"""Run one command in a fresh process: wall time, CPU time and peak memory of its whole tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: How often the process tree's memory is sampled, and every how many samples /proc is
#: scanned for new processes of the tree (a scan reads every process's stat file).
SAMPLE_EVERY = 0.05
RESCAN_EVERY = 4


@dataclass(frozen=True)
class Sample:
    """One measured run of one command."""

    #: Wall-clock seconds from start to exit.
    seconds: float
    #: User + system CPU seconds of the process and every descendant it waited for.
    cpu_seconds: float
    #: ru_maxrss from wait4: the peak resident set of the largest single process in the tree.
    max_rss_mb: float
    #: The largest sum of PSS (proportional set size, so pages shared after fork count once)
    #: over all processes of the tree at one sampling instant; 0.0 when /proc cannot tell.
    tree_mb: float
    returncode: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def peak_mb(self) -> float:
        """The memory figure the targets are checked against: the larger of the two."""
        return max(self.max_rss_mb, self.tree_mb)


def _session_members(session: int) -> list[int]:
    """Every process whose session id is ``session`` (the child runs in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == session:
            pids.append(int(entry))
    return pids


def _memory_kb(pid: int) -> int:
    """PSS of one process in KiB (RSS where smaps_rollup is unavailable); 0 if it is gone."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", b"Pss:"), (f"/proc/{pid}/status", b"VmRSS:")):
        try:
            with open(path, "rb") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


class _TreeSampler(threading.Thread):
    def __init__(self, session: int) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        if not os.path.isdir("/proc"):
            return
        members: list[int] = []
        tick = 0
        while not self.stop.is_set():
            if tick % RESCAN_EVERY == 0:
                members = _session_members(self.session)
            tick += 1
            total = sum(_memory_kb(pid) for pid in members)
            self.peak_kb = max(self.peak_kb, total)
            self.stop.wait(SAMPLE_EVERY)


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Sample:
    """Run ``cmd`` to completion (or kill its whole tree after ``timeout`` seconds)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Sample(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        tree_mb=sampler.peak_kb / 1024,
        returncode=proc.returncode,
        timed_out=timed_out.is_set(),
        stdout=stdout,
        stderr=stderr,
    )
