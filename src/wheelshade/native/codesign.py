"""Mach-O code signatures: check and recompute every CodeDirectory's page hashes after an edit."""

from __future__ import annotations

import hashlib
import itertools
import struct
from dataclasses import dataclass

from wheelshade.errors import WheelshadeError

LC_CODE_SIGNATURE = 0x1D
_MH_MAGIC = 0xFEEDFACE
_MH_MAGIC_64 = 0xFEEDFACF

CSMAGIC_REQUIREMENTS = 0xFADE0C01
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_BLOBWRAPPER = 0xFADE0B01

CSSLOT_CODEDIRECTORY = 0
CSSLOT_REQUIREMENTS = 2
CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000
CSSLOT_SIGNATURESLOT = 0x10000

CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000

#: cs_blobs.h ``CS_HASHTYPE_*``: hashlib name and the digest size a slot holds.
HASH_TYPES: dict[int, tuple[str, int]] = {
    1: ("sha1", 20),
    2: ("sha256", 32),
    3: ("sha256", 20),  # SHA-256 truncated to 20 bytes
    4: ("sha384", 48),
}

#: CodeDirectory header length by version: scatter (0x20100), teamOffset (0x20200),
#: codeLimit64 (0x20300), execSeg fields (0x20400); later versions only append.
_CD_HEADER = ((0x20400, 88), (0x20300, 64), (0x20200, 52), (0x20100, 48), (0x20001, 44))

#: An empty requirement set: what an ad hoc signature carries in the requirements slot.
_EMPTY_REQUIREMENTS = struct.pack(">III", CSMAGIC_REQUIREMENTS, 12, 0)
_EMPTY_WRAPPER = struct.pack(">II", CSMAGIC_BLOBWRAPPER, 8)

CERTIFICATE_NOTE = "certificate signature removed; re-signed ad hoc"

_SLICE = "Mach-O slice"


class CodeSignError(WheelshadeError):
    """A Mach-O code signature cannot be read, or cannot be rewritten for the patched file."""

    hint = "leave this package out of the shading set, or re-sign the file with codesign first"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"code signature: {reason}", path=path or _SLICE)
        self.reason = reason


@dataclass(frozen=True)
class _Blob:
    """One entry of the SuperBlob: its slot type and where its bytes are in the slice."""

    slot: int
    start: int
    length: int


@dataclass(frozen=True)
class _Directory:
    """The parts of one CodeDirectory that hashing needs; offsets are absolute in the slice."""

    blob: _Blob
    version: int
    flags: int
    hashes: int  # offset of code slot 0
    n_special: int
    n_code: int
    code_limit: int
    hash_type: int
    hash_size: int
    page_shift: int

    @property
    def name(self) -> str:
        algo = HASH_TYPES[self.hash_type][0]
        if self.blob.slot == CSSLOT_CODEDIRECTORY:
            return f"CodeDirectory ({algo})"
        return f"alternate CodeDirectory {self.blob.slot - 0x1000} ({algo})"

    def pages(self) -> list[tuple[int, int]]:
        """Each code page as (start, end) over ``[0, code_limit)``; the last may be short."""
        size = 1 << self.page_shift if self.page_shift else max(self.code_limit, 1)
        return [(a, min(a + size, self.code_limit)) for a in range(0, self.code_limit, size)]

    def digest(self, data: bytes | bytearray | memoryview) -> bytes:
        return hashlib.new(HASH_TYPES[self.hash_type][0], data).digest()[: self.hash_size]


@dataclass(frozen=True)
class _Signature:
    """A slice's embedded signature: the space ``LC_CODE_SIGNATURE`` gives and its blobs."""

    dataoff: int
    datasize: int
    blobs: tuple[_Blob, ...]
    directories: tuple[_Directory, ...]

    def blob(self, slot: int) -> _Blob | None:
        return next((b for b in self.blobs if b.slot == slot), None)


def _u32(data: bytes, offset: int, fmt: str = ">I") -> int:
    value: int = struct.unpack_from(fmt, data, offset)[0]
    return value


def _signature_command(data: bytes, path: str) -> tuple[int, int] | None:
    """``(dataoff, datasize)`` of the slice's ``LC_CODE_SIGNATURE``, or None without one."""
    if len(data) < 28:
        raise CodeSignError(path, f"{len(data)} bytes is too short for a Mach-O header")
    magic = _u32(data, 0, "<I")
    if magic not in (_MH_MAGIC, _MH_MAGIC_64):
        raise CodeSignError(path, f"not a thin little-endian Mach-O file (magic {magic:#010x})")
    ncmds, sizeofcmds = struct.unpack_from("<II", data, 16)
    offset = 32 if magic == _MH_MAGIC_64 else 28
    end = offset + sizeofcmds
    if end > len(data):
        raise CodeSignError(path, "the load commands run past the end of the file")
    found: tuple[int, int] | None = None
    for _ in range(ncmds):
        if offset + 8 > end:
            raise CodeSignError(path, "the load commands run past their stated size")
        cmd, cmdsize = struct.unpack_from("<II", data, offset)
        if cmdsize < 8 or offset + cmdsize > end:
            raise CodeSignError(path, f"load command {cmd:#x} has a bad size ({cmdsize})")
        if cmd == LC_CODE_SIGNATURE:
            if cmdsize != 16:
                raise CodeSignError(path, f"LC_CODE_SIGNATURE has size {cmdsize}, not 16")
            dataoff, datasize = struct.unpack_from("<II", data, offset + 8)
            if dataoff + datasize > len(data):
                raise CodeSignError(
                    path,
                    f"the signature ({datasize} bytes at {dataoff:#x}) runs past the end "
                    f"of the file ({len(data)} bytes); the file is truncated",
                )
            found = (dataoff, datasize)
        offset += cmdsize
    return found


def _directory(data: bytes, blob: _Blob, dataoff: int, path: str) -> _Directory:
    """Parse one CodeDirectory by its version, checking every offset against its length."""
    where = f"CodeDirectory in slot {blob.slot:#x}"
    if blob.length < 44:
        raise CodeSignError(path, f"{where} is {blob.length} bytes, too short for its header")
    s = blob.start
    (_, _, version, flags, hash_offset, _, n_special, n_code, limit32) = struct.unpack_from(
        ">9I", data, s
    )
    hash_size, hash_type, _, page_shift = struct.unpack_from(">4B", data, s + 36)
    header = next((size for v, size in _CD_HEADER if version >= v), 0)
    if not header:
        raise CodeSignError(path, f"{where} has unsupported version {version:#x}")
    if blob.length < header:
        raise CodeSignError(path, f"{where} (version {version:#x}) is cut short")
    if hash_type not in HASH_TYPES:
        raise CodeSignError(path, f"{where} uses unknown hash type {hash_type}")
    if hash_size != HASH_TYPES[hash_type][1]:
        raise CodeSignError(path, f"{where} has hash size {hash_size} for hash type {hash_type}")
    if version >= 0x20100 and _u32(data, s + 44):
        raise CodeSignError(path, f"{where} uses a scatter vector, which is not supported")
    limit64 = struct.unpack_from(">Q", data, s + 56)[0] if version >= 0x20300 else 0
    code_limit = int(limit64 or limit32)
    first, end = hash_offset - n_special * hash_size, hash_offset + n_code * hash_size
    if first < header or end > blob.length:
        raise CodeSignError(path, f"{where}: its hash slots lie outside the blob")
    if code_limit > dataoff:
        raise CodeSignError(
            path, f"{where} covers {code_limit:#x} bytes, past the signature at {dataoff:#x}"
        )
    if page_shift and not 9 <= page_shift <= 24:
        raise CodeSignError(path, f"{where} has an implausible page size 2**{page_shift}")
    cd = _Directory(
        blob, version, flags, s + hash_offset, n_special, n_code, code_limit, hash_type,
        hash_size, page_shift,
    )
    if n_code != len(cd.pages()):
        raise CodeSignError(
            path, f"{where} has {n_code} code slots for {len(cd.pages())} pages of {code_limit:#x}"
        )
    return cd


def _parse(data: bytes, path: str) -> _Signature | None:
    """The slice's signature, validated enough that hashing it cannot read out of bounds."""
    command = _signature_command(data, path)
    if command is None:
        return None
    dataoff, datasize = command
    if datasize < 12:
        raise CodeSignError(path, f"the signature is {datasize} bytes, too short for a SuperBlob")
    magic, length, count = struct.unpack_from(">III", data, dataoff)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        raise CodeSignError(path, f"the signature is not an embedded SuperBlob (magic {magic:#x})")
    table = 12 + 8 * count
    if not table <= length <= datasize:
        raise CodeSignError(
            path, f"the SuperBlob says {length} bytes and {count} entries in {datasize} bytes"
        )
    blobs = []
    for i in range(count):
        slot, offset = struct.unpack_from(">II", data, dataoff + 12 + 8 * i)
        if offset < table or offset + 8 > length:
            raise CodeSignError(path, f"blob {slot:#x} starts outside the SuperBlob ({offset})")
        blength = _u32(data, dataoff + offset + 4)
        if blength < 8 or offset + blength > length:
            raise CodeSignError(path, f"blob {slot:#x} has length {blength}, past the SuperBlob")
        blobs.append(_Blob(slot, dataoff + offset, blength))
    # Overlapping blobs would let writing one's hashes change another that a slot covers.
    ordered = sorted(blobs, key=lambda b: b.start)
    for a, b in itertools.pairwise(ordered):
        if b.start < a.start + a.length:
            raise CodeSignError(path, f"blobs {a.slot:#x} and {b.slot:#x} overlap")
    directories = []
    for b in blobs:
        if b.slot == CSSLOT_CODEDIRECTORY or 0x1000 <= b.slot < 0x1005:
            if _u32(data, b.start) != CSMAGIC_CODEDIRECTORY:
                raise CodeSignError(path, f"slot {b.slot:#x} does not hold a CodeDirectory")
            directories.append(_directory(data, b, dataoff, path))
    if not directories:
        raise CodeSignError(path, "the SuperBlob holds no CodeDirectory")
    return _Signature(dataoff, datasize, tuple(blobs), tuple(directories))


def has_signature(data: bytes, *, path: str = "") -> bool:
    """Whether the thin slice has an ``LC_CODE_SIGNATURE`` load command."""
    return _signature_command(data, path) is not None


def is_certificate_signed(data: bytes, *, path: str = "") -> bool:
    """Whether the slice carries a CMS signature (a certificate's), which no edit survives."""
    sig = _parse(data, path)
    cms = sig.blob(CSSLOT_SIGNATURESLOT) if sig else None
    return cms is not None and cms.length > 8


def check(data: bytes, *, path: str = "") -> list[str]:
    """Every hash in the slice's signature that does not match what it covers (empty = all
    good, or no signature); raises ``CodeSignError`` when the signature cannot be read."""
    sig = _parse(data, path)
    if sig is None:
        return []
    view = memoryview(data)
    problems = []
    for cd in sig.directories:
        for i, (start, end) in enumerate(cd.pages()):
            slot = cd.hashes + i * cd.hash_size
            if cd.digest(view[start:end]) != data[slot : slot + cd.hash_size]:
                problems.append(f"{cd.name}: page {i} ({start:#x}-{end:#x}) hash does not match")
        for k in range(1, cd.n_special + 1):
            blob = sig.blob(k)
            slot = cd.hashes - k * cd.hash_size
            # Slots without an embedded blob name files outside the binary (Info.plist, ...).
            if blob and cd.digest(view[blob.start : blob.start + blob.length]) != data[
                slot : slot + cd.hash_size
            ]:
                problems.append(f"{cd.name}: special slot {k} hash does not match its blob")
    return problems


def _write_hashes(buf: bytearray, cd: _Directory, sig: _Signature) -> None:
    """Recompute ``cd``'s special slots for blobs in ``sig``, then its code slots, in ``buf``."""
    view = memoryview(buf)
    for k in range(1, cd.n_special + 1):
        blob = sig.blob(k)
        if blob:
            slot = cd.hashes - k * cd.hash_size
            buf[slot : slot + cd.hash_size] = cd.digest(view[blob.start : blob.start + blob.length])
    for i, (start, end) in enumerate(cd.pages()):
        slot = cd.hashes + i * cd.hash_size
        buf[slot : slot + cd.hash_size] = cd.digest(view[start:end])
    view.release()


def resign(data: bytes, path: str) -> tuple[bytes, str | None]:
    """The slice with every CodeDirectory's hashes recomputed, and a note when a certificate
    signature had to give way to an ad hoc one; an unsigned slice comes back as it is."""
    sig = _parse(data, path)
    if sig is None:
        return data, None
    cms = sig.blob(CSSLOT_SIGNATURESLOT)
    if cms is not None and cms.length > 8:
        return _adhoc(data, sig, path), CERTIFICATE_NOTE
    buf = bytearray(data)
    for cd in sig.directories:
        _write_hashes(buf, cd, sig)
    return bytes(buf), None


def _adhoc(data: bytes, sig: _Signature, path: str) -> bytes:
    """Rebuild the SuperBlob ad hoc in the same space: the CMS blob emptied, the requirements
    (which name the certificate) emptied, every CodeDirectory flagged ``CS_ADHOC``."""
    count = len(sig.blobs)
    parts: list[bytes] = []
    offset = 12 + 8 * count
    index = b""
    for b in sig.blobs:
        if b.slot == CSSLOT_SIGNATURESLOT:
            body = _EMPTY_WRAPPER
        elif b.slot == CSSLOT_REQUIREMENTS:
            body = _EMPTY_REQUIREMENTS
        else:
            body = data[b.start : b.start + b.length]
        index += struct.pack(">II", b.slot, offset)
        parts.append(body)
        offset += len(body)
    if offset > sig.datasize:
        raise CodeSignError(
            path,
            f"an ad hoc signature needs {offset} bytes; LC_CODE_SIGNATURE gives {sig.datasize}",
        )
    blob = struct.pack(">III", CSMAGIC_EMBEDDED_SIGNATURE, offset, count) + index + b"".join(parts)
    start = sig.dataoff
    buf = bytearray(data)
    buf[start : start + sig.datasize] = blob + bytes(sig.datasize - len(blob))
    new = _parse(bytes(buf), path)
    assert new is not None
    for cd in new.directories:
        flags = (cd.flags | CS_ADHOC) & ~CS_LINKER_SIGNED
        struct.pack_into(">I", buf, cd.blob.start + 12, flags)
        if cd.version >= 0x20200:
            # An ad hoc signature has no team; a team ID left in would name the old signer.
            struct.pack_into(">I", buf, cd.blob.start + 52, 0)
    for cd in new.directories:
        _write_hashes(buf, cd, new)
    return bytes(buf)
