"""What a patched PE image needs redone: its export names kept sorted, CheckSum, signature.

A DLL's exports are found by name through a binary search of the export name pointer
table, so the table must stay sorted (byte order) once ``PyInit_<name>`` is renamed; the
names keep their bytes where they are and only the pointers move, each with its ordinal.
Windows checks the optional header's CheckSum only for drivers and a few system DLLs, but
a non-zero one is kept valid. An Authenticode signature cannot survive any edit: it is
removed, as delvewheel does when it patches a DLL, and the caller says so.
"""

from __future__ import annotations

import struct

from wheelshade.errors import RewriteError
from wheelshade.native.pe import read_layout


def checksum(data: bytes, field: int) -> int:
    """The PE image checksum of ``data`` (``field``: the CheckSum's file offset, read as 0).

    The one's-complement sum of the file's little-endian 16-bit words, folded to 16 bits,
    plus the file's length.
    """
    padded = data + b"\0" * (len(data) % 2)
    words: tuple[int, ...] = struct.unpack(f"<{len(padded) // 2}H", padded)
    total = sum(words) - words[field // 2] - words[field // 2 + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (total + len(data)) & 0xFFFFFFFF


def rename_export(data: bytes, old: str, new: str, path: str) -> bytes:
    """``data`` with the exported name ``old`` renamed to ``new`` (same byte length), the
    name pointer and ordinal tables re-sorted if the order changed. Raises ValueError when
    ``old`` is not exported, ``new`` already is, or the lengths differ."""
    layout = read_layout(data, path)
    raw_old, raw_new = old.encode("utf-8"), new.encode("utf-8")
    if len(raw_old) != len(raw_new):
        raise ValueError(f"{path}: {old!r} -> {new!r} changes the byte length")
    names = {e.name for e in layout.exports}
    if old not in names or new in names:
        raise ValueError(f"{path}: exports {'no ' + repr(old) if old not in names else repr(new)}")
    out = bytearray(data)
    entry = next(e for e in layout.exports if e.name == old)
    out[entry.name_offset:entry.name_offset + len(raw_old)] = raw_new
    slots = sorted(layout.exports, key=lambda e: (raw_new if e is entry else e.name.encode(
        "utf-8", "surrogateescape")))
    if [e.slot for e in slots] != [e.slot for e in layout.exports]:
        pointers = struct.unpack_from(f"<{len(slots)}I", data, layout.names_offset)
        struct.pack_into(f"<{len(slots)}I", out, layout.names_offset,
                         *(pointers[e.slot] for e in slots))
        struct.pack_into(f"<{len(slots)}H", out, layout.ordinals_offset,
                         *(e.ordinal for e in slots))
    dll, stem = layout.dll_name_offset, raw_old.removeprefix(b"PyInit_")
    if (dll >= 0 and stem != raw_old and raw_new.startswith(b"PyInit_")
            and out[dll:dll + len(stem) + 1] == stem + b"."):
        # The DLL's own name (``ujson.cp311-win_amd64.pyd``) follows the file's new name.
        out[dll:dll + len(stem)] = raw_new.removeprefix(b"PyInit_")
    if len(out) != len(data):  # pragma: no cover - every write above keeps its length
        raise ValueError(f"{path}: renaming {old!r} changed the file's size")
    return bytes(out)


def finish(
    data: bytes, path: str, init: tuple[str, str] | None = None
) -> tuple[bytes, bool]:
    """``data`` with ``PyInit_<old>`` renamed to ``PyInit_<new>`` (``init``), without its
    certificate table and with its CheckSum recomputed when it was set; True when a
    signature was removed. Raises RewriteError for a certificate table that is not at the
    end of the file (nothing else can follow it in a well-formed image), or where
    rename_export cannot rename."""
    try:
        return _finish(data, path, init)
    except ValueError as exc:
        raise RewriteError(f"cannot patch it: {exc}", path=path) from None


def _finish(data: bytes, path: str, init: tuple[str, str] | None) -> tuple[bytes, bool]:
    if init is not None:
        data = rename_export(data, f"PyInit_{init[0]}", f"PyInit_{init[1]}", path)
    layout = read_layout(data, path)
    out = bytearray(data)
    start, size = layout.security
    signed = bool(start and size)
    if signed:
        if start + size < len(data.rstrip(b"\0")) or start > len(data):
            raise ValueError(f"{path}: its certificate table is not at the end of the file")
        del out[start:]
        struct.pack_into("<II", out, layout.security_entry, 0, 0)
    if layout.checksum:
        struct.pack_into("<I", out, layout.checksum_offset, 0)
        struct.pack_into("<I", out, layout.checksum_offset,
                         checksum(bytes(out), layout.checksum_offset))
    return bytes(out), signed
