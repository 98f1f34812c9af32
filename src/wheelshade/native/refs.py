"""Who points at an address inside an x86-64 or arm64 ELF or Mach-O file: code, relocations,
pointers. (x86-64 PE images are answered by pe_refs.py, with PE's own tables.)

The architecture only decides how code forms an address (x86_64.py, arm64.py) and which
relocation types hold one; everything else, and every decision built on it (verdicts, rust,
cytable), is the same for both.

A linker merges string tails: ``"numpy"`` may be stored as the last five bytes of
``"to_numpy"``. Whether patching those bytes is right depends on who reads them, so the
question "does anything refer to address A?" has to be answered exactly. In a position
independent x86-64 shared object an address can only be reached through:

- a RIP-relative memory operand (``lea rdi, [rip + disp32]``): the ModRM byte right before
  the 32-bit displacement has ``mod == 00`` and ``rm == 101``, and the address is the end of
  the instruction plus the displacement;
- a dynamic relocation (``R_X86_64_RELATIVE`` addend, or a symbol value plus addend), which
  is how every pointer stored in data gets its load-time value;
- a pointer value stored in data (only in files without dynamic relocations), or a dynamic
  symbol's value.

The scan over code is deliberately wide (every byte pair that could be a ModRM byte and a
displacement reaching a target, for every immediate size that may follow), then each hit
is confirmed by disassembling with Capstone from the start of the function that holds it
(function starts come from ``.eh_frame_hdr``, which every x86-64 shared object carries for
unwinding): only an instruction that really starts where the sweep puts it, and whose
displacement is exactly the hit, counts. Bytes that decode as an instruction only from a
misaligned start (``and eax, 0xffff`` read one byte early is ``mov [rip + 0xffff], esp``)
do not. Without ``.eh_frame_hdr`` a hit counts when any start shortly before it decodes so,
and the Site says it is not ``exact``.

What the scan cannot see is an address computed from another one at run time (``base + 3``);
compilers do not do that for distinct string literals, whose addresses are fixed by the
linker through relocations.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator

from wheelshade.native import arm64, pe_refs, x86_64
from wheelshade.native.elf import PT_LOAD, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, Elf
from wheelshade.native.site import Site, SiteKind
from wheelshade.native.x86_64 import disassembler

__all__ = [
    "Site",
    "SiteKind",
    "address_of",
    "argument",
    "disassembler",
    "find",
    "is_x86_64",
    "offset_of",
    "supported",
]

SHT_RELA = 4
#: Per architecture: (relocation types whose addend is the address, types that add a
#: symbol's value), and how code forms addresses.
_ARCHITECTURES = {
    "x86_64": ((x86_64.R_X86_64_RELATIVE,), (x86_64.R_X86_64_64, x86_64.R_X86_64_GLOB_DAT),
               x86_64.code_sites),
    "aarch64": ((arm64.R_AARCH64_RELATIVE,), (arm64.R_AARCH64_ABS64, arm64.R_AARCH64_GLOB_DAT),
                arm64.code_sites),
}


def supported(elf: Elf) -> bool:
    """True when references in ``elf`` can be found (64-bit little-endian x86-64 or arm64
    ELF or Mach-O, x86-64 PE)."""
    return pe_refs.supported(elf) or (
        elf.format in ("ELF", "Mach-O") and elf.machine in _ARCHITECTURES and elf.bits == 64
        and elf.byte_order == "little")


def argument(elf: Elf, number: int) -> str:
    """The x86-64 register a call's first or second argument is passed in (System V or
    Windows)."""
    if elf.format == "PE":
        return pe_refs.FIRST_ARGUMENT if number == 1 else pe_refs.SECOND_ARGUMENT
    return "rdi" if number == 1 else "rsi"


def is_x86_64(elf: Elf) -> bool:
    """True for x86-64 code, which the instruction-level helpers (calls, stack frames,
    Cython table lengths) read; other architectures get none of those answers."""
    return supported(elf) and elf.machine == "x86_64"


def address_of(elf: Elf, offset: int) -> int | None:
    """The virtual address where file offset ``offset`` is loaded, if any section maps it
    (or, past the last section, a LOAD segment: where moved tables go)."""
    for section in elf.sections:
        if (
            section.flags & SHF_ALLOC
            and section.type != SHT_NOBITS
            and section.offset <= offset < section.end
        ):
            return section.addr + offset - section.offset
    for segment in elf.segments:
        if segment.type == PT_LOAD and segment.offset <= offset < segment.offset + segment.filesz:
            return segment.vaddr + offset - segment.offset
    return None


def offset_of(elf: Elf, address: int) -> int | None:
    """The file offset that virtual address ``address`` is loaded from, if a section with
    contents maps it (or, past the last section, a LOAD segment's file bytes)."""
    for section in elf.sections:
        if (
            section.flags & SHF_ALLOC
            and section.type != SHT_NOBITS
            and section.addr <= address < section.addr + section.size
        ):
            return section.offset + address - section.addr
    for segment in elf.segments:
        if segment.type == PT_LOAD and segment.vaddr <= address < segment.vaddr + segment.filesz:
            return segment.offset + address - segment.vaddr
    return None


def find(data: bytes, elf: Elf, targets: Collection[int]) -> list[Site]:
    """Every site in ``data`` that refers to an address in ``targets``, sorted by offset."""
    wanted = frozenset(targets)
    if not wanted:
        return []
    if elf.format == "PE":
        return sorted(pe_refs.find(data, elf, wanted), key=lambda s: (s.offset, s.target))
    code_sites = _ARCHITECTURES[elf.machine][2]
    found = [*code_sites(data, elf, wanted), *_relocations(data, elf, wanted)]
    # A fixup slot can be moved (see Redirect) only where it holds the plain address
    # (rebase opcodes); a chained fixup packs the target with the chain's next link.
    found += [Site("pointer", at, target, 0, exact=data[at:at + 8] == target.to_bytes(8, "little"))
              for at, target in elf.fixups if target in wanted]
    if elf.format == "ELF" and not any(s.type == SHT_RELA for s in elf.sections):
        # Without dynamic relocations a pointer can only be a stored absolute value. With
        # them, every pointer the loader fixes up has a relocation (found above); a stored
        # value without one is data that happens to equal an address.
        found += _pointers(data, elf, wanted)
    found += [
        Site("symbol", s.name_offset, s.value, 0) for s in elf.symbols
        if s.defined and s.value in wanted
    ]
    return sorted(found, key=lambda s: (s.offset, s.target))


def _relocations(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    values = {s.index: s.value for s in elf.symbols}
    relative, absolute, _ = _ARCHITECTURES[elf.machine]
    for section in elf.sections:
        if section.type != SHT_RELA or not section.size:
            continue
        step = section.entsize or 24
        for at in range(section.offset, section.end - step + 1, step):
            _, info, addend = struct.unpack_from("<QQq", data, at)
            kind, symbol = info & 0xFFFFFFFF, info >> 32
            if kind in relative:
                target = addend
            elif kind in absolute:
                target = values.get(symbol, 0) + addend
            else:
                continue
            if target in wanted:
                yield Site("relocation", at + 16, target, 0)


def _pointers(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    for section in elf.sections:
        if (
            section.type == SHT_NOBITS
            or not section.flags & SHF_ALLOC
            or section.flags & SHF_EXECINSTR
            or section.size < 8
        ):
            continue
        first = section.offset + (-section.addr % 8)
        count = (section.end - first) // 8
        for index, (value,) in enumerate(struct.iter_unpack("<Q", data[first:first + 8 * count])):
            if value in wanted:
                yield Site("pointer", first + 8 * index, value, 0)
