"""Writing wheels: deterministic entries, hashed as written, RECORD appended last."""

from __future__ import annotations

import itertools
import os
import struct
import time
import zipfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO

from wheelshade.errors import UsageError
from wheelshade.wheel.archive import _fold
from wheelshade.wheel.records import (
    _SIGNATURES,
    Hasher,
    RecordEntry,
    _name_problem,
    serialise_record,
)

__all__ = ["WheelWriter", "wheel_order", "zip_timestamp"]

_CHUNK = 1 << 20
#: Members at least this big are written with a ZIP64 local header whether or not they need
#: one, so that ``add`` and ``add_stream`` (which cannot know the size up front) agree.
_ZIP64_THRESHOLD = 16 << 20
_EPOCH_1980 = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
_EPOCH_2107 = 4354819198  # 2107-12-31T23:59:58Z, the latest


def zip_timestamp() -> tuple[int, int, int, int, int, int]:
    """The entry time: ``SOURCE_DATE_EPOCH`` (UTC, clamped to what zip can store) or 1980-01-01."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return (1980, 1, 1, 0, 0, 0)
    try:
        epoch = int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds, got {value!r}") from None
    t = time.gmtime(min(max(epoch, _EPOCH_1980), _EPOCH_2107))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def wheel_order(names: Iterable[str], dist_info: str) -> list[str]:
    """Sort names for writing: the payload first, then ``dist_info``'s files.

    RECORD and its signatures are dropped: the writer adds a fresh RECORD, and a rewritten
    wheel's old signatures cannot be valid.
    """
    dropped = {f"{dist_info}/{name}" for name in ("RECORD", *_SIGNATURES)}
    prefix = f"{dist_info}/"
    return sorted(
        (name for name in names if name not in dropped),
        key=lambda name: (name.startswith(prefix), name),
    )


class WheelWriter:
    """Write a wheel exactly as given, hashing as it goes; RECORD is appended on close.

    Every entry is deflated with a fixed time, unix mode 0644 or 0755 and no other varying
    metadata, so the same calls give byte-identical output with the same zlib. The caller
    chooses the order (see ``wheel_order``) and places the file atomically. Leaving the
    ``with`` block by an exception deletes the partial file.
    """

    def __init__(
        self,
        path: Path,
        dist_info: str,
        *,
        date_time: tuple[int, int, int, int, int, int] | None = None,
    ) -> None:
        if "/" in dist_info or not dist_info.endswith(".dist-info"):
            raise ValueError(f"dist_info must be a <name>-<version>.dist-info name: {dist_info!r}")
        self.path = Path(path)
        self.dist_info = dist_info
        self.date_time = zip_timestamp() if date_time is None else date_time
        self._records: list[RecordEntry] = []
        self._keys: set[str] = set()
        self._closed = False
        self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)

    def add(self, name: str, data: bytes, *, executable: bool = False) -> None:
        self._write(name, [data], len(data), executable)

    def add_stream(self, name: str, stream: IO[bytes], *, executable: bool = False) -> None:
        """Copy ``stream`` to a new member in chunks, without holding it all in memory."""
        head: list[bytes] = []
        size = 0
        while size < _ZIP64_THRESHOLD:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            head.append(chunk)
            size += len(chunk)
        rest = iter(lambda: stream.read(_CHUNK), b"")
        self._write(name, itertools.chain(head, rest), size, executable)

    def _write(self, name: str, chunks: Iterable[bytes], size: int, executable: bool) -> None:
        self._check(name)
        self._put(name, chunks, size, executable)

    def _check(self, name: str) -> None:
        if self._closed:
            raise ValueError(f"cannot add {name!r}: the writer is closed")
        top, _, base = name.partition("/")
        if top == self.dist_info and base in ("RECORD", *_SIGNATURES):
            raise ValueError(f"cannot add {name!r}: RECORD is written on close, signatures dropped")
        problem = "is a directory" if name.endswith("/") else _name_problem(name)
        if problem is None and top.endswith(".dist-info") and top != self.dist_info:
            problem = f"is in a second .dist-info directory (this wheel's is {self.dist_info})"
        if problem is None and _fold(name) in self._keys:
            problem = "is already in the wheel (names are compared ignoring case)"
        if problem:
            raise ValueError(f"cannot add {name!r}: {problem}")
        self._keys.add(_fold(name))

    def _put(self, name: str, chunks: Iterable[bytes], size: int, executable: bool) -> None:
        info = zipfile.ZipInfo(name, self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = (0o100755 if executable else 0o100644) << 16
        # A size at the threshold may be a stream's first part only: the rest is unknown.
        info.file_size = size
        hasher = Hasher()
        with self._zip.open(info, "w", force_zip64=size >= _ZIP64_THRESHOLD) as dest:
            for chunk in chunks:
                hasher.update(chunk)
                dest.write(chunk)
        self._records.append(RecordEntry(name, hasher.digest(), hasher.size))

    def add_raw(
        self,
        name: str,
        source: RawSource,
        info: zipfile.ZipInfo,
        record: RecordEntry,
        *,
        executable: bool = False,
    ) -> bool:
        """Copy an input member's compressed bytes under ``name``; False if it cannot be.

        The entry gets this writer's fixed time and mode like any other; only the
        compressed payload (and its CRC and sizes) comes from the input.
        """
        zf = self._zip
        if record.hash is None or not hasattr(zf, "start_dir") or not hasattr(zf, "_didModify"):
            return False  # zipfile internals this relies on are missing: recompress instead
        self._check(name)
        entry = zipfile.ZipInfo(name, self.date_time)
        entry.compress_type = info.compress_type
        entry.create_system = 3
        entry.external_attr = (0o100755 if executable else 0o100644) << 16
        entry.CRC, entry.compress_size, entry.file_size = (
            info.CRC, info.compress_size, info.file_size
        )
        fp = zf.fp
        assert fp is not None
        entry.header_offset = fp.tell()
        fp.write(entry.FileHeader(info.file_size >= _ZIP64_THRESHOLD))
        for chunk in source.chunks(info):
            fp.write(chunk)
        zf.filelist.append(entry)
        zf.NameToInfo[name] = entry
        zf.start_dir = fp.tell()
        zf._didModify = True
        self._records.append(RecordEntry(name, record.hash, info.file_size))
        return True

    def close(self) -> None:
        """Append RECORD and finish the archive; a second call does nothing."""
        if self._closed:
            return
        record_name = f"{self.dist_info}/RECORD"
        record = serialise_record([*self._records, RecordEntry(record_name, None, None)])
        self._put(record_name, [record], len(record), False)
        self._closed = True
        self._zip.close()

    def _abort(self) -> None:
        self._closed = True
        # The file is deleted next, so a failure to finish it cleanly does not matter.
        with suppress(Exception):
            self._zip.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> WheelWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self.close()
        except BaseException:
            self._abort()
            raise


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header, 30 bytes
_RAW_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class RawSource:
    """Compressed member data of an input wheel, for copying without recompressing.

    Deflating is most of a repack's cost; a member whose content does not change can
    keep its compressed bytes. Its hash and size come from the input's RECORD, which
    ``WheelReader.verify_record`` has checked against the content (and zipfile the CRC).
    """

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        self._infos = {i.filename: i for i in self._zip.infolist()}
        self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()

    def info(self, name: str) -> zipfile.ZipInfo | None:
        info = self._infos.get(name)
        if info is None or info.compress_type not in _RAW_METHODS or info.flag_bits & 0x1:
            return None
        return info

    def chunks(self, info: zipfile.ZipInfo) -> Iterable[bytes]:
        self._raw.seek(info.header_offset)
        header = _LOCAL_HEADER.unpack(self._raw.read(_LOCAL_HEADER.size))
        self._raw.seek(header[9] + header[10], os.SEEK_CUR)  # file name and extra field
        left = info.compress_size
        while left:
            chunk = self._raw.read(min(left, _CHUNK))
            if not chunk:
                raise OSError(f"{info.filename}: compressed data ends early")
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._raw.close()
        self._zip.close()

    def __enter__(self) -> RawSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
