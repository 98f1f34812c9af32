"""The shaded-file cache: content-addressed entries, atomic, checked on read, LRU-bounded.

An entry is a folder ``entries/<key>/`` holding the shaded wheels, each wheel's METADATA
as ``<wheel>.metadata`` and ``entry.json`` (sha256 and size of each). It is built in
``tmp/`` and renamed into place, so a killed server leaves at most a stale ``tmp/`` folder
(removed at the next start), never a partial entry. One build per key at a time, across
threads and processes: the builder holds ``locks/<key>.lock`` (flock); the others wait on
it and then read the entry the first one made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from wheelshade.serve.upstream import wheel_metadata
from wheelshade.wheel.staging import start_ticks

log = logging.getLogger("wheelshade.serve")

_MARK = ".used"  # its mtime is the entry's last use, for LRU eviction


@dataclass(frozen=True)
class Artifact:
    """One shaded wheel of an entry."""

    filename: str
    sha256: str
    size: int
    metadata_sha256: str


@dataclass(frozen=True)
class Entry:
    key: str
    folder: Path
    artifacts: dict[str, Artifact]

    def path(self, filename: str) -> Path:
        return self.folder / filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class ShadeCache:
    """Entries and fetched inputs under ``root``, at most ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int, builds: int = 1) -> None:
        self.root = root
        self.max_bytes = max_bytes
        for sub in ("entries", "inputs", "tmp", "locks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._checked: dict[Path, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        self._builds = threading.BoundedSemaphore(builds)
        self.builds_done = 0
        self.corrupt_found = 0

    def remove_stale(self) -> None:
        """Drop what killed servers left in ``tmp/`` (their pid is gone)."""
        for path in (self.root / "tmp").iterdir():
            parts = path.name.split(".")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if pid is not None and pid != os.getpid() and _alive(pid, path.stat().st_mtime):
                continue
            log.info("removing stale cache folder %s", path.name)
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        with (self.root / "locks" / f"{key}.lock").open("a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def get(self, key: str) -> Entry | None:
        """The entry, with every file checked against its recorded sha256; a corrupt
        entry is removed (and rebuilt by the next ``build``)."""
        folder = self.root / "entries" / key
        try:
            raw = json.loads((folder / "entry.json").read_text())
            artifacts = {a["filename"]: Artifact(**a) for a in raw["artifacts"]}
            for art in artifacts.values():
                self._check(folder / art.filename, art.sha256)
                self._check(folder / f"{art.filename}.metadata", art.metadata_sha256)
        except FileNotFoundError:
            if not folder.exists():
                return None
            problem = "a file is missing"
        except (ValueError, KeyError, TypeError) as exc:
            problem = str(exc)
        else:
            _touch(folder)
            return Entry(key, folder, artifacts)
        self.corrupt_found += 1
        log.warning("cache entry %s is corrupt (%s); rebuilding it", key, problem)
        self._discard(folder)
        return None

    def _check(self, path: Path, sha256: str) -> None:
        stat = path.stat()
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if self._checked.get(path) == seen:
                return
        actual = sha256_of(path)
        if actual != sha256:
            raise ValueError(f"{path.name} has sha256 {actual}, recorded {sha256}")
        with self._lock:
            self._checked[path] = seen

    def _discard(self, folder: Path) -> None:
        doomed = self.root / "tmp" / f"{folder.name}.{os.getpid()}.discard"
        with contextlib.suppress(OSError):
            os.replace(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)

    def build(self, key: str, builder: Callable[[Path], None]) -> Entry:
        """The entry for ``key``, made by ``builder(folder)`` (which writes wheels into
        ``folder``) unless it exists; concurrent callers for one key wait for one build."""
        entry = self.get(key)
        if entry is not None:
            return entry
        with self.locked(key):
            entry = self.get(key)
            if entry is not None:
                return entry
            with self._builds:
                self._build(key, builder)
        self.evict(keep=key)
        entry = self.get(key)
        if entry is None:
            raise RuntimeError(f"cache entry {key} vanished right after it was built")
        return entry

    def _build(self, key: str, builder: Callable[[Path], None]) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f"{key[:16]}.{os.getpid()}.", dir=self.root / "tmp"))
        try:
            out = tmp / "out"
            out.mkdir()
            builder(out)
            artifacts = []
            for wheel in sorted(out.glob("*.whl")):
                meta = wheel.with_name(wheel.name + ".metadata")
                _write_durably(meta, wheel_metadata(wheel))
                artifacts.append({
                    "filename": wheel.name,
                    "sha256": sha256_of(wheel),
                    "size": wheel.stat().st_size,
                    "metadata_sha256": sha256_of(meta),
                })
                with wheel.open("rb") as f:
                    os.fsync(f.fileno())
            _write_durably(out / "entry.json", json.dumps({"artifacts": artifacts}).encode())
            (out / _MARK).touch()
            os.rename(out, self.root / "entries" / key)
            self.builds_done += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def input_path(self, sha256: str, filename: str) -> Path:
        folder = self.root / "inputs" / sha256
        folder.mkdir(exist_ok=True)
        _touch(folder)
        return folder / filename

    def evict(self, keep: str = "") -> None:
        """Remove least recently used entries and inputs until the cache fits its bound."""
        items = []
        for sub in ("entries", "inputs"):
            for folder in (self.root / sub).iterdir():
                try:
                    used = (folder / _MARK).stat().st_mtime
                    size = sum(p.stat().st_size for p in folder.iterdir())
                except OSError:
                    continue
                items.append((used, size, folder))
        total = sum(size for _, size, _ in items)
        for _, size, folder in sorted(items, key=lambda item: item[0]):
            if total <= self.max_bytes:
                break
            if folder.name == keep:
                continue
            log.info("evicting %s/%s (%d bytes)", folder.parent.name, folder.name, size)
            self._discard(folder)
            total -= size

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*/*/*") if p.is_file())


def _touch(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / _MARK).touch()


def _alive(pid: int, since: float) -> bool:
    """Process ``pid`` runs and started before ``since`` (the folder's last change): a
    process that started later only got the number of the dead owner again (pids wrap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _started_at(pid)
    return started is None or started <= since + 1


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where /proc can say."""
    ticks = start_ticks(pid)
    try:
        boot = next(line for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return None if ticks is None else int(boot.split()[1]) + ticks / os.sysconf(
            "SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
