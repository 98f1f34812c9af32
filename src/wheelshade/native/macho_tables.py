"""Mach-O's ``__LINKEDIT`` tables that say where pointers are: chained fixups, rebase opcodes,
function starts, read without a Mach-O library.

A pointer stored in a Mach-O image gets its load-time value from dyld, as an ELF pointer gets
it from a relocation. Newer linkers (macOS 12+ deployment targets) encode them as *chained
fixups*: each pointer slot holds the target and the distance to the next slot of its page
(``LC_DYLD_CHAINED_FIXUPS``); older ones list the slots with *rebase opcodes*
(``LC_DYLD_INFO(_ONLY)``) and keep the target as the slot's plain value. Both are read into
(file offset of the slot, target address) pairs: "who stores this address".
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

#: Pointer formats of chained fixups that hold a plain 36-bit target (``dyld/fixup-chains.h``):
#: 2 ``DYLD_CHAINED_PTR_64`` (an address), 6 ``DYLD_CHAINED_PTR_64_OFFSET`` (from the base).
PTR_64, PTR_64_OFFSET = 2, 6
_NO_START = 0xFFFF


class TableError(ValueError):
    """A table wheelshade cannot read (an unknown pointer format, an opcode it does not know)."""


def uleb(data: bytes | bytearray, at: int) -> tuple[int, int]:
    """The unsigned LEB128 number at ``at`` and the offset after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def encode_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def function_starts(data: bytes, start: int, size: int, base: int) -> tuple[int, ...]:
    """``LC_FUNCTION_STARTS``: ULEB128 deltas, the first from the image base, 0 ends them."""
    out, at, address = [], start, base
    while at < start + size:
        delta, at = uleb(data, at)
        if not delta:
            break
        address += delta
        out.append(address)
    return tuple(out)


#: (file offset, vmaddr, filesize) of each segment, in load command order.
Segments = Sequence[tuple[int, int, int]]


def chained_rebases(
    data: bytes, start: int, segments: Segments, base: int, slice_at: int
) -> Iterator[tuple[int, int]]:
    """(file offset, target address) of each rebase in the chained fixups at ``start``.

    ``slice_at`` is where the slice begins in ``data`` (a fat file); segment offsets and
    the header's are relative to the slice. Binds (imports) are skipped.
    """
    _, starts_offset = struct.unpack_from("<II", data, start)
    image = start + starts_offset
    (count,) = struct.unpack_from("<I", data, image)
    for index in range(min(count, len(segments))):
        (info,) = struct.unpack_from("<I", data, image + 4 + 4 * index)
        if not info:
            continue
        at = image + info
        _, page_size, pointer_format, _, _, page_count = struct.unpack_from("<IHHQIH", data, at)
        if pointer_format not in (PTR_64, PTR_64_OFFSET):
            raise TableError(f"chained fixups in pointer format {pointer_format}")
        pages = struct.unpack_from(f"<{page_count}H", data, at + 22)
        fileoff = segments[index][0]
        for page, first in enumerate(pages):
            if first == _NO_START:
                continue
            slot = slice_at + fileoff + page * page_size + first
            while True:
                (raw,) = struct.unpack_from("<Q", data, slot)
                if not raw >> 63:  # a rebase: target (36 bits) and its top byte
                    target = (raw & 0xFFFFFFFFF) | ((raw >> 36) & 0xFF) << 56
                    yield slot, target + (base if pointer_format == PTR_64_OFFSET else 0)
                step = (raw >> 51) & 0xFFF
                if not step:
                    break
                slot += 4 * step


def opcode_rebases(
    data: bytes, start: int, size: int, segments: Segments, slice_at: int
) -> Iterator[tuple[int, int]]:
    """(file offset, stored address) of each pointer the classic rebase opcodes name."""
    at, end = start, start + size
    segment = offset = 0

    def slot() -> tuple[int, int]:
        where = slice_at + segments[segment][0] + offset
        return where, struct.unpack_from("<Q", data, where)[0]

    while at < end:
        byte = data[at]
        at += 1
        op, imm = byte & 0xF0, byte & 0x0F
        if op == 0x00:  # DONE
            return
        if op == 0x10:  # SET_TYPE_IMM
            continue
        if op == 0x20:  # SET_SEGMENT_AND_OFFSET_ULEB
            segment = imm
            offset, at = uleb(data, at)
        elif op == 0x30:  # ADD_ADDR_ULEB
            delta, at = uleb(data, at)
            offset = (offset + delta) & 0xFFFFFFFFFFFFFFFF
        elif op == 0x40:  # ADD_ADDR_IMM_SCALED
            offset += imm * 8
        elif op in (0x50, 0x60):  # DO_REBASE_IMM_TIMES, DO_REBASE_ULEB_TIMES
            times = imm
            if op == 0x60:
                times, at = uleb(data, at)
            for _ in range(times):
                yield slot()
                offset += 8
        elif op == 0x70:  # DO_REBASE_ADD_ADDR_ULEB
            yield slot()
            delta, at = uleb(data, at)
            offset += delta + 8
        elif op == 0x80:  # DO_REBASE_ULEB_TIMES_SKIPPING_ULEB
            times, at = uleb(data, at)
            skip, at = uleb(data, at)
            for _ in range(times):
                yield slot()
                offset += skip + 8
        else:
            raise TableError(f"unknown rebase opcode {byte:#04x}")
