"""The RECORD model: parse, hash, verify and serialise a wheel's list of files."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wheelshade.errors import WheelFormatError

__all__ = ["Hasher", "RecordEntry", "hash_bytes", "parse_record", "serialise_record"]

#: The wheel spec asks for sha256 "or better"; md5 and sha1 are explicitly forbidden.
_ALGORITHMS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
_HASH = re.compile(r"(?P<algorithm>[a-z0-9_]+)=(?P<value>[A-Za-z0-9_-]+)")
_SIZE = re.compile(r"[0-9]+")
_DRIVE = re.compile(r"[A-Za-z]:")
#: C0 and C1 controls, DEL and the Unicode line and paragraph separators: no real file name
#: has them, and they would let a name break or recolour a one-line message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: More digits than any real file size has (and than ``int`` parses quickly).
_SIZE_DIGITS = 19
#: Signature files sign RECORD, so RECORD cannot hold their hashes.
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")
#: How many issues an error lists before it says "and N more".
_LISTED = 5


@dataclass(frozen=True)
class RecordEntry:
    """One RECORD row: an archive path, its ``algorithm=digest`` hash and its size in bytes."""

    path: str
    hash: str | None
    size: int | None


class Hasher:
    """Incremental RECORD-style hash and byte count, so large members can be streamed."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self._size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self._size += len(data)

    def digest(self) -> str:
        """The hash as RECORD spells it: ``<algorithm>=<urlsafe base64, no padding>``."""
        value = base64.urlsafe_b64encode(self._hash.digest()).rstrip(b"=").decode("ascii")
        return f"{self.algorithm}={value}"

    @property
    def size(self) -> int:
        """Number of bytes hashed so far."""
        return self._size


def hash_bytes(data: bytes) -> str:
    """Return the sha256 RECORD hash of ``data``."""
    hasher = Hasher()
    hasher.update(data)
    return hasher.digest()


def parse_record(data: bytes, *, wheel: str) -> list[RecordEntry]:
    """Parse RECORD bytes, reporting every malformed row at once.

    Only the row syntax is checked here; whether the paths are safe and match the archive is
    the reader's job. ``wheel`` is the wheel's file path, used as the error's ``path``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WheelFormatError(
            f"RECORD is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=wheel,
        ) from None
    entries: list[RecordEntry] = []
    issues: list[str] = []
    # newline="" lets csv see quoted line breaks inside a field, as the csv docs require.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if not row:
                continue
            entry = _parse_row(row, f"RECORD line {reader.line_num}", issues)
            if entry is not None:
                entries.append(entry)
    except csv.Error as exc:
        issues.append(f"RECORD line {reader.line_num} is not valid CSV ({exc})")
    if issues:
        raise WheelFormatError(_summarise(issues, "malformed RECORD rows"), path=wheel)
    return entries


def _parse_row(row: Sequence[str], where: str, issues: list[str]) -> RecordEntry | None:
    if len(row) != 3:
        issues.append(f"{where} has {len(row)} fields, expected 3 (path,hash,size)")
        return None
    path, hash_, size = row
    if not path:
        issues.append(f"{where} has an empty path")
        return None
    count = len(issues)
    match = _HASH.fullmatch(hash_)
    if hash_ and match is None:
        issues.append(f"{where} ({_show(path)}): hash {hash_!r} is not <algorithm>=<base64>")
    elif match is not None and match["algorithm"] not in _ALGORITHMS:
        issues.append(
            f"{where} ({_show(path)}): hash algorithm {match['algorithm']!r} is not allowed "
            f"(use sha256 or stronger)"
        )
    if size and _SIZE.fullmatch(size) is None:
        issues.append(f"{where} ({_show(path)}): size {size!r} is not a non-negative integer")
    elif len(size) > _SIZE_DIGITS:
        issues.append(f"{where} ({_show(path)}): size {size[:_SIZE_DIGITS]}... is too large")
    if len(issues) > count:
        return None
    return RecordEntry(path, hash_ or None, int(size) if size else None)


def serialise_record(entries: Iterable[RecordEntry]) -> bytes:
    """Serialise entries as RECORD bytes, in the given order, with ``\\n`` line ends."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    # csv quotes a field holding "\n" (the line terminator) but not one holding "\r",
    # which a reader takes for a line end too.
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for entry in entries:
        row = [entry.path, entry.hash or "", "" if entry.size is None else str(entry.size)]
        (quoted if "\r" in entry.path else writer).writerow(row)
    return buffer.getvalue().encode("utf-8")


def _verify(
    entries: Iterable[RecordEntry],
    names: Iterable[str],
    dist_info: str,
    hash_member: Callable[[str, str], Hasher],
) -> str | None:
    """Compare RECORD with an archive's file names; return one message for all problems, or None.

    ``hash_member(name, algorithm)`` streams a member through a ``Hasher``.
    """
    unsigned = {f"{dist_info}/{name}" for name in ("RECORD", *_SIGNATURES)}
    issues: list[str] = []
    listed: dict[str, RecordEntry] = {}
    for entry in entries:
        problem = _name_problem(entry.path)
        if problem:
            issues.append(f"RECORD lists an unsafe path {_show(entry.path)}: {problem}")
        elif entry.path in listed:
            issues.append(f"RECORD lists {_show(entry.path)} more than once")
        else:
            listed[entry.path] = entry
    malformed = len(issues)
    present: set[str] = set()
    for name in names:
        present.add(name)
        row = listed.get(name)
        if name in unsigned:
            continue
        if row is None:
            issues.append(f"{_show(name)} is not listed in RECORD")
        elif row.hash is None:
            issues.append(f"RECORD has no hash for {_show(name)}")
        elif (hasher := hash_member(name, row.hash.partition("=")[0])).digest() != row.hash:
            issues.append(f"RECORD hash mismatch for {_show(name)}")
        elif row.size is not None and row.size != hasher.size:
            issues.append(
                f"RECORD size mismatch for {_show(name)} "
                f"(RECORD says {row.size} bytes, the file has {hasher.size})"
            )
    issues.extend(
        f"RECORD lists {_show(path)}, which is not in the wheel"
        for path in listed
        if path not in present
    )
    if not issues:
        return None
    message = _summarise(issues, "RECORD problems")
    if len(issues) > malformed:
        message += ": the wheel was modified after it was built; refusing to re-sign it"
    return message


def _name_problem(name: str) -> str | None:
    """Why an archive path is unsafe to extract or ambiguous, or None if it is fine."""
    if "\x00" in name:
        return "contains a NUL byte"
    if _CONTROL.search(name):
        return "contains a control character"
    if name.startswith("/") or _DRIVE.match(name):
        return "is absolute"
    if "\\" in name:
        return "contains a backslash"
    parts = name.split("/")
    if ".." in parts:
        return "contains a '..' component"
    kept = [part for part in parts if part not in ("", ".")]
    if not kept:
        return "is empty after normalisation"
    if len(kept) != len(parts):
        return f"is not normalised (should be {'/'.join(kept)})"
    return None


def _show(name: str) -> str:
    """Spell a path for a one-line message: as is when printable, else as a Python literal."""
    return name if name and name.isprintable() else repr(name)


def _summarise(issues: Sequence[str], noun: str) -> str:
    """One line for many issues: the only one, or a count and the first few."""
    if len(issues) == 1:
        return issues[0]
    text = f"{len(issues)} {noun}: " + "; ".join(issues[:_LISTED])
    if len(issues) > _LISTED:
        text += f"; and {len(issues) - _LISTED} more"
    return text
