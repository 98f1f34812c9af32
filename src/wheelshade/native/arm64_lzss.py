"""Where Cython 3.3's LZSS streams are inflated in arm64 code: the stream's address and the
sizes the loop compares with (the arm64 half of cytable's LZSS search).

The decoder loop starts its flag byte with ``orr wN, wM, #0xff00``, as on x86-64 with ``or
reg, 0xff00``. The stream is an address formed (see arm64.py: ADRP pairs, and offsets added
to them) shortly before the loop in the same function; the two sizes are immediates compared
with after it (``cmp xN, #imm``), or loaded into a register around it (``mov x28, #n``)
when they do not fit an immediate compare.
cytable then keeps a candidate only if it decodes to exactly those sizes.
"""

from __future__ import annotations

import bisect
import struct

from wheelshade.native import arm64
from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts

#: ``orr wN, wM, #0xff00`` (32-bit ORR, immediate: N=0, immr=24, imms=7) without registers.
_ORR_FF00 = 0x32181C00


def candidates(data: bytes, elf: Elf, before: int, after: int) -> list[tuple[set[int], set[int]]]:
    """For each decoder loop: (stream addresses formed within ``before`` bytes before it,
    sizes compared with or loaded into registers around it)."""
    starts = function_starts(data, elf)
    found: list[tuple[set[int], set[int]]] = []
    for section in elf.sections:
        if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
            continue
        shift = section.addr - section.offset
        count = section.size // 4
        words = struct.unpack_from(f"<{count}I", data, section.offset)
        for index, word in enumerate(words):
            if word & 0xFFFFFC00 != _ORR_FF00:
                continue
            loop = section.addr + 4 * index
            position = bisect.bisect_right(starts, loop) - 1
            if position < 0:
                continue
            start = starts[position] - shift
            end = min(section.end, loop - shift + after)
            sites = arm64.function_sites(data, start, end, shift)
            streams = {s.target for s in sites if loop - before <= s.offset + shift < loop}
            # A bound kept in a register may be loaded before the loop (``mov x28, #n``).
            sizes = _sizes(words[max(0, index - before // 4):index + 1 + after // 4])
            found.append((streams, sizes))
    return found


def _sizes(words: tuple[int, ...]) -> set[int]:
    """The immediates of ``cmp reg, #imm`` (SUBS to the zero register), and the values
    ``mov`` (MOVZ, then any MOVK into the same register) loads for a register compare."""
    sizes: set[int] = set()
    loaded: dict[int, int] = {}
    for w in words:
        if (w & 0x7F80001F) == 0x7100001F:
            sizes.add(((w >> 10) & 0xFFF) << (12 if w & 0x400000 else 0))
        elif (w & 0x7F800000) in (0x52800000, 0x72800000):  # MOVZ, MOVK
            shift = 16 * ((w >> 21) & 3)
            part = ((w >> 5) & 0xFFFF) << shift
            if w & 0x20000000:  # MOVK keeps the other halves
                if w & 31 not in loaded:
                    continue
                part |= loaded[w & 31] & ~(0xFFFF << shift)
            loaded[w & 31] = part
            sizes.add(part)
    return sizes
