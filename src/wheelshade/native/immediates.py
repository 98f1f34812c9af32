"""Strings the code compares as immediates: the first bytes of a renamed string built into
instructions, where a rename in the data does not reach.

C++ compilers inline a comparison with a short literal (``key == "grpc.experimental.x"`` on an
``absl::string_view``) as word compares against constants: x86-64 loads the first eight bytes
with ``movabs`` (or compares four with an ``imm32``), arm64 builds them with ``movz`` and
``movk``. The literal may still sit in the data, read by the code that sets the key; renaming
it there, the comparison no longer matches and the program takes another path (grpcio's
``"grpc.experimental.event_engine"``: a crash at the first server port). So each string about
to be renamed that starts with the name is looked for as such a constant: its first eight
bytes, verbatim in x86-64 code, or as the value a ``movz`` and the ``movk``s after it put in
one arm64 register. (Shorter strings are not looked for: see chunk.)
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf

#: ``movz`` (32- and 64-bit): the top byte of the little-endian word, and the bit below it.
_MOVZ = re.compile(rb"[\x52\xd2]", re.DOTALL)
#: How many instructions after a ``movz`` its ``movk``s are looked for.
_WINDOW = 8


def chunk(text: bytes) -> bytes | None:
    """What an inlined comparison with ``text`` loads first: its first eight bytes. (A
    shorter string is compared four bytes and then fewer at a time, as is any string that
    merely starts so, ``"grpc-"`` as well as ``"grpc"``: those are not looked for.)"""
    return text[:8] if len(text) >= 8 else None


def compared(data: bytes, elf: Elf, chunks: Iterable[bytes]) -> dict[bytes, int]:
    """For each chunk the code holds as an immediate, the file offset of one instruction
    that does (x86-64 and arm64 code; nothing is found in other machines' code)."""
    wanted = set(chunks)
    if not wanted:
        return {}
    code = [s for s in elf.sections
            if s.type == SHT_PROGBITS and s.flags & SHF_EXECINSTR and s.size]
    found: dict[bytes, int] = {}
    if elf.machine == "x86_64":
        for section in code:
            for text in wanted - set(found):
                at = data.find(text, section.offset + 2, section.end)
                while at >= 0 and not _movabs(data, at - 2):
                    at = data.find(text, at + 1, section.end)
                if at >= 0:
                    found[text] = at - 2
    elif elf.machine == "aarch64":
        values = {int.from_bytes(t, "little"): t for t in wanted}
        lows = {v & 0xFFFF for v in values}
        for section in code:
            for at, value in _constants(data, section.offset, section.end, lows):
                held = values.get(value)
                if held is not None and held not in found:
                    found[held] = at
    return found


def _movabs(data: bytes, at: int) -> bool:
    """True when ``movabs r64, imm64`` (REX.W, B8+r) starts at ``at``."""
    return 0x48 <= data[at] <= 0x4F and 0xB8 <= data[at + 1] <= 0xBF


def _constants(data: bytes, start: int, end: int, lows: set[int]) -> Iterable[tuple[int, int]]:
    """(offset of the ``movz``, value) of each register a ``movz`` of a low half in ``lows``
    and the ``movk``s into the same register right after it build."""
    for match in _MOVZ.finditer(data, start + 3, end):
        at = match.start() - 3
        if (at - start) % 4:
            continue
        (word,) = struct.unpack_from("<I", data, at)
        if (word & 0x7FE00000) != 0x52800000 or (word >> 5) & 0xFFFF not in lows:
            continue  # not a movz of the low half, or not a wanted one
        rd, wide = word & 31, bool(word & 0x80000000)
        value = (word >> 5) & 0xFFFF
        for later_at in range(at + 4, min(end - 3, at + 4 * (_WINDOW + 1)), 4):
            (later,) = struct.unpack_from("<I", data, later_at)
            if later & 31 != rd:
                continue
            if (later & 0x7F800000) == 0x72800000:  # movk into the same register
                shift = 16 * ((later >> 21) & 3)
                value = (value & ~(0xFFFF << shift)) | (((later >> 5) & 0xFFFF) << shift)
            elif (later & 0x7F800000) in (0x12800000, 0x52800000):
                break  # movn, movz: another constant begins
        yield at, value if wide else value & 0xFFFFFFFF
