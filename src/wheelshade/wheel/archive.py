"""Wheel zip I/O: a validating, streaming reader and a deterministic writer."""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from wheelshade.errors import ArchiveError, UsageError, WheelFormatError

# The underscored helpers are shared within the package, not part of its API.
from wheelshade.wheel.records import (
    Hasher,
    _name_problem,
    _show,
    _summarise,
    _verify,
    parse_record,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DEFAULT_LIMITS", "LIMIT_VARIABLES", "Member", "WheelReader"]

#: The zip-bomb limits' defaults (docs/security.md); each variable below overrides one.
DEFAULT_LIMITS = {"max_total_size": 4 << 30, "max_ratio": 200, "max_members": 200_000}
LIMIT_VARIABLES = {
    "max_total_size": "WHEELSHADE_MAX_TOTAL_SIZE",
    "max_ratio": "WHEELSHADE_MAX_RATIO",
    "max_members": "WHEELSHADE_MAX_MEMBERS",
}
#: The WHEEL file's major version this reader understands (pip refuses any other, too).
WHEEL_MAJOR = 1

_CHUNK = 1 << 20
#: Entries smaller than this are never flagged as bombs: a few KiB of padding can compress
#: 1000:1 legitimately, and their total is bounded by ``max_total_size`` anyway.
_RATIO_FLOOR = 1 << 20
_COMPRESSIONS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
#: What zipfile raises for bad member data; UnicodeDecodeError and NotImplementedError come
#: from a local header that disagrees with the central directory.
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    UnicodeDecodeError,
    NotImplementedError,
)
_FLAG_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption
_FLAG_PATCHED = 0x20
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
#: At most 9 digits a part, so that ``int`` stays quick (and a real version fits).
_WHEEL_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})*")
#: The line ends of an RFC 822 header block, as the email parser (and so pip) sees them.
_LINE_ENDS = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Member:
    """A file entry of a wheel (directory entries are not members)."""

    name: str
    size: int
    executable: bool


class WheelReader:
    """Open a wheel, refusing unsafe or malformed archives before anything reads a member.

    The limits guard against zip bombs: at most ``max_members`` entries (default 200,000), at
    most ``max_total_size`` uncompressed bytes in all (default 4 GiB), and no entry of 1 MiB
    or more that expands over ``max_ratio`` times its compressed size (default 200). A limit
    not given comes from its ``LIMIT_VARIABLES`` environment variable, else the default.
    The entry count the archive declares is checked before its central directory is parsed.
    ``zipfile`` never returns more bytes than an entry declares, so checking the declared
    sizes is enough. Raises ``ArchiveError`` or ``WheelFormatError`` listing every problem.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_total_size: int | None = None,
        max_ratio: int | None = None,
        max_members: int | None = None,
    ) -> None:
        self.path = Path(path)
        max_total_size = _limit("max_total_size", max_total_size)
        max_ratio = _limit("max_ratio", max_ratio)
        max_members = _limit("max_members", max_members)
        try:
            declared = _declared_entries(self.path)
            if declared is not None and declared > max_members:
                self._fail(ArchiveError, _too_many(declared, max_members))
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise ArchiveError(f"not a valid zip archive ({_line(exc)})", path=str(path)) from None
        except NotImplementedError as exc:  # an entry needing a newer zip version
            message = f"uses an unsupported zip feature ({_line(exc)})"
            raise ArchiveError(message, path=str(path)) from None
        except OSError as exc:
            raise ArchiveError(f"cannot read the wheel ({exc.strerror})", path=str(path)) from None
        try:
            infos = self._validate(max_total_size, max_ratio, max_members)
            self.dist_info = self._find_dist_info()
        except BaseException:
            self._zip.close()
            raise
        self._infos = {info.orig_filename: info for info in infos}
        self.members = tuple(
            Member(info.orig_filename, info.file_size, bool(info.external_attr >> 16 & 0o111))
            for info in infos
        )

    def _validate(self, max_total: int, max_ratio: int, max_members: int) -> list[zipfile.ZipInfo]:
        """Check every entry; return the file entries in archive order."""
        infos = self._zip.infolist()
        if len(infos) > max_members:
            self._fail(ArchiveError, _too_many(len(infos), max_members))
        total = sum(info.file_size for info in infos)
        if total > max_total:
            self._fail(ArchiveError, f"expands to {total} bytes, above the limit of {max_total}")
        issues: list[str] = []
        seen: dict[str, tuple[str, bool]] = {}  # folded name -> (first name, is a directory)
        for info in infos:
            issues.extend(_entry_problems(info, max_ratio, seen))
        if not issues:
            issues.extend(_file_dir_clashes(seen))
        if issues:
            self._fail(ArchiveError, _summarise(issues, "unsafe entries"))
        return [info for info in infos if not info.orig_filename.endswith("/")]

    def _find_dist_info(self) -> str:
        tops = {name.split("/", 1)[0] for name in self._zip.namelist() if "/" in name}
        found = sorted(top for top in tops if top.endswith(".dist-info"))
        if not found:
            self._fail(WheelFormatError, "no top-level .dist-info directory")
        if len(found) > 1:
            names = ", ".join(_show(name) for name in found)
            self._fail(WheelFormatError, f"more than one .dist-info directory: {names}")
        (dist_info,) = found
        name, _, version = dist_info.removesuffix(".dist-info").rpartition("-")
        if not name or not version:
            self._fail(WheelFormatError, f"{_show(dist_info)} is not <name>-<version>.dist-info")
        return dist_info

    def _fail(self, kind: type[ArchiveError | WheelFormatError], message: str) -> NoReturn:
        raise kind(message, path=str(self.path))

    def read(self, name: str) -> bytes:
        """Return a member's bytes; ``KeyError`` if ``name`` is not a member."""
        with self.open(name) as stream:
            return stream.read()

    def open(self, name: str) -> IO[bytes]:
        """Stream a member; corrupt data raises ``ArchiveError`` when it is read."""
        info = self._infos[name]
        with self._guard(name):
            stream = self._zip.open(info)
        return io.BufferedReader(_GuardedStream(stream, self, name), _CHUNK)

    @contextmanager
    def _guard(self, name: str) -> Iterator[None]:
        try:
            yield
        except _CORRUPT as exc:
            message = f"entry {_show(name)} is corrupt ({_line(exc)})"
            raise ArchiveError(message, path=str(self.path)) from None

    def check_wheel_version(self) -> tuple[int, ...]:
        """Check ``<dist-info>/WHEEL`` declares a ``Wheel-Version`` this reader understands.

        Like pip: another major version is refused; a newer minor version of 1 is accepted
        (the format promises it stays readable). Returns the version, e.g. ``(1, 0)``.
        """
        name = f"{self.dist_info}/WHEEL"
        if name not in self._infos:
            self._fail(WheelFormatError, f"{name} is missing")
        data = self.read(name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
            self._fail(WheelFormatError, f"{name} is not valid UTF-8 ({where})")
        value = _header(text, "wheel-version")
        if value is None:
            self._fail(WheelFormatError, f"{name} has no Wheel-Version")
        if _WHEEL_VERSION.fullmatch(value) is None:
            shown = repr(value) if len(value) <= 40 else repr(value[:37]) + "..."
            self._fail(WheelFormatError, f"{name} has an invalid Wheel-Version {shown}")
        version = tuple(int(part) for part in value.split("."))
        if version[0] != WHEEL_MAJOR:
            raise WheelFormatError(
                f"{name} has Wheel-Version {value}; only {WHEEL_MAJOR}.x can be read",
                path=str(self.path),
                hint="use a wheel built for the current wheel format",
            )
        return version

    def verify_record(self) -> None:
        """Check RECORD against every member's hash and size, reporting all problems at once.

        Members are streamed, never held whole. RECORD itself and the signature files
        (RECORD.jws, RECORD.p7s) need no hash.
        """
        record_name = f"{self.dist_info}/RECORD"
        if record_name not in self._infos:
            self._fail(WheelFormatError, f"{record_name} is missing")
        entries = parse_record(self.read(record_name), wheel=str(self.path))
        names = [member.name for member in self.members]
        message = _verify(entries, names, self.dist_info, self._hash)
        if message:
            hint = "rebuild the wheel from source"
            raise WheelFormatError(message, path=str(self.path), hint=hint)

    def _hash(self, name: str, algorithm: str) -> Hasher:
        hasher = Hasher(algorithm)
        with self.open(name) as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                hasher.update(chunk)
        return hasher

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> WheelReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _GuardedStream(io.RawIOBase):
    """A member's raw stream that turns zipfile's corruption errors into ``ArchiveError``."""

    def __init__(self, stream: IO[bytes], reader: WheelReader, name: str) -> None:
        super().__init__()
        self._stream, self._reader, self._name = stream, reader, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        with self._reader._guard(self._name):
            data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def _entry_problems(
    info: zipfile.ZipInfo, max_ratio: int, seen: dict[str, tuple[str, bool]]
) -> Iterator[str]:
    """Why one entry is unsafe; ``seen`` collects names to find duplicates."""
    name, is_dir = info.orig_filename, info.orig_filename.endswith("/")
    shown = _show(name)
    problem = _name_problem(name[:-1] if is_dir else name)
    if problem:
        yield f"unsafe entry name {shown}: {problem}"
        return
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        yield f"entry {shown} is a symbolic link"
    elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        yield f"entry {shown} is not a regular file (mode 0o{kind:o})"
    if info.flag_bits & _FLAG_ENCRYPTED:
        yield f"entry {shown} is encrypted"
    if info.flag_bits & _FLAG_PATCHED:
        yield f"entry {shown} uses unsupported compressed patch data"
    if info.compress_type not in _COMPRESSIONS:
        yield f"entry {shown} uses unsupported compression {info.compress_type}"
    if info.file_size >= _RATIO_FLOOR and info.file_size > max_ratio * info.compress_size:
        ratio = info.file_size // max(info.compress_size, 1)
        limit = f"above the limit of {max_ratio}:1 (possible zip bomb)"
        yield f"entry {shown} expands {ratio}:1, {limit}"
    key = _fold(name.rstrip("/"))
    if key not in seen:
        seen[key] = (name, is_dir)
        return
    first, first_is_dir = seen[key]
    if is_dir and first_is_dir:
        return  # a directory listed twice is harmless
    if first == name:
        yield f"duplicate entry {shown}"
        return
    # Names that differ only in Unicode form print alike, so spell those out.
    alike = unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", first)
    this, that = (ascii(name), ascii(first)) if alike else (shown, _show(first))
    yield f"duplicate entry {this} (same as {that} ignoring case and Unicode form)"


def _fold(name: str) -> str:
    """The key under which two names would land on the same file on some filesystem."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _file_dir_clashes(seen: dict[str, tuple[str, bool]]) -> Iterator[str]:
    """Files that other entries use as a directory (``a/b`` and ``a/b/c``, case folded)."""
    for key, (name, _) in seen.items():
        parts = key.split("/")
        for end in range(1, len(parts)):
            parent = seen.get("/".join(parts[:end]))
            if parent is not None and not parent[1]:
                yield f"entry {_show(parent[0])} is a file but {_show(name)} is inside it"
                break


def _limit(key: str, given: int | None) -> int:
    """A limit: as given, else from its environment variable, else the default."""
    if given is not None:
        return given
    variable = LIMIT_VARIABLES[key]
    text = os.environ.get(variable, "").strip()
    if not text:
        return DEFAULT_LIMITS[key]
    digits = text.lstrip("0")
    if not text.isascii() or not text.isdigit() or not digits:
        raise UsageError(f"{variable} must be a positive whole number, got {text!r}")
    return int(digits) if len(digits) < 20 else 10**19  # more than any file has


def _too_many(count: int, limit: int) -> str:
    return f"has {count} entries, above the limit of {limit}"


def _declared_entries(path: Path) -> int | None:
    """The entry count the end of central directory record declares, as zipfile finds it.

    None when there is no such record (zipfile then reports the archive as invalid).
    """
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - (_EOCD.size + 0xFFFF + _EOCD64_LOCATOR.size + _EOCD64.size))
        f.seek(start)
        tail = f.read()
    at = len(tail) - _EOCD.size
    if not (tail[at:].startswith(b"PK\x05\x06") and tail.endswith(b"\x00\x00")):
        at = tail.rfind(b"PK\x05\x06", max(0, len(tail) - _EOCD.size - 0xFFFF))
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    count: int = _EOCD.unpack_from(tail, at)[4]
    locator = at - _EOCD64_LOCATOR.size
    record = locator - _EOCD64.size
    if record >= 0 and tail.startswith(b"PK\x06\x07", locator):
        fields = _EOCD64.unpack_from(tail, record)
        if fields[0] == b"PK\x06\x06":
            count = fields[7]
    return count


def _header(text: str, key: str) -> str | None:
    """The first value of an RFC 822 style header field (WHEEL's format), or None."""
    for line in _LINE_ENDS.split(text):
        if not line.strip():
            break
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == key:
            return value.strip()
    return None


def _line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line error."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__
