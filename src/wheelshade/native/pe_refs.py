"""Who points at an address inside an x86-64 PE image: RIP-relative code, base relocations.

The same question refs.py answers for ELF, with PE's tables. Code reaches a string as in an
ELF shared object, by a RIP-relative operand (x86_64.py), confirmed by disassembling from the
start of its function; function starts come from ``.pdata`` (each RUNTIME_FUNCTION's begin
address) instead of ``.eh_frame_hdr``. Data holds a pointer as an absolute 64-bit value the
loader rebases: every such field is listed in ``.reloc`` (``IMAGE_REL_BASED_DIR64``), and the
value stored there minus ImageBase is the RVA it points at. An image without a relocation
directory can only be loaded at its ImageBase; then any aligned 64-bit value in data that
equals ImageBase plus a wanted RVA counts, as ELF files without relocations are read.

Leaf functions need no unwind data, so they have no ``.pdata`` entry: the sweep that confirms
a code hit then runs on from the function before, through the ``int3`` padding between them,
which decodes one byte at a time and so stays in step.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from wheelshade.native import x86_64
from wheelshade.native.elf import SHF_EXECINSTR, SHT_NOBITS, Elf
from wheelshade.native.pe import read_tables
from wheelshade.native.site import Site

#: The registers the first and second arguments of a call are passed in (the Windows x64
#: convention: rcx, rdx, r8, r9).
FIRST_ARGUMENT, SECOND_ARGUMENT = "rcx", "rdx"


def supported(elf: Elf) -> bool:
    return elf.format == "PE" and elf.machine == "x86_64" and elf.bits == 64


def find(data: bytes, elf: Elf, wanted: frozenset[int]) -> list[Site]:
    """Every site in ``data`` that refers to an address in ``wanted``."""
    tables = read_tables(data, elf.path)
    found = list(x86_64.code_sites(data, elf, wanted))
    if tables.relocations is None:
        found += _stored(data, elf, tables.image_base, wanted)
        return found
    base = tables.image_base
    for field in tables.relocations:
        at = _offset(elf, field)
        if at is None or at + 8 > len(data):
            continue
        (value,) = struct.unpack_from("<Q", data, at)
        if value - base in wanted:
            found.append(Site("pointer", at, value - base, -base))
    return found


def _offset(elf: Elf, address: int) -> int | None:
    for section in elf.sections:
        if section.type != SHT_NOBITS and section.addr <= address < section.addr + section.size:
            return section.offset + address - section.addr
    return None


def _stored(data: bytes, elf: Elf, base: int, wanted: frozenset[int]) -> Iterator[Site]:
    for section in elf.sections:
        if section.type == SHT_NOBITS or section.flags & SHF_EXECINSTR or section.size < 8:
            continue
        first = section.offset + (-section.addr % 8)
        count = (section.end - first) // 8
        for index, (value,) in enumerate(struct.iter_unpack("<Q", data[first:first + 8 * count])):
            if value - base in wanted:
                yield Site("pointer", first + 8 * index, value - base, -base)
