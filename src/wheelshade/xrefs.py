"""Who points at an address inside an x86-64 ELF file: code operands, relocations, pointers.

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

import bisect
import functools
import re
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .elf import PT_LOAD, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS, Elf

if TYPE_CHECKING:
    from capstone import Cs

SHT_RELA = 4
R_X86_64_64 = 1
R_X86_64_GLOB_DAT = 6
R_X86_64_RELATIVE = 8

SiteKind = Literal["code", "relocation", "pointer", "symbol"]

#: ModRM bytes with mod == 00 and rm == 101: a RIP-relative memory operand follows.
_RIP_MODRM = re.compile(rb"[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")
#: Immediate sizes that can follow a displacement (``cmp byte [rip+x], 0`` has one byte).
_IMMEDIATES = (0, 1, 2, 4)
#: Longest x86 instruction.
_MAX_INSN = 15


@dataclass(frozen=True)
class Site:
    """One place that refers to ``target`` (a virtual address).

    ``offset`` is the file offset of the field that encodes the reference: the 32-bit
    displacement (``code``), the relocation's addend (``relocation``), the stored 64-bit
    value (``pointer``) or the symbol's value (``symbol``). ``base`` is what the field is
    relative to: the address of the next instruction for ``code``, else 0.
    """

    kind: SiteKind
    offset: int
    target: int
    base: int
    #: False for a code site confirmed only by a local decode (no function starts known).
    exact: bool = True


def supported(elf: Elf) -> bool:
    """True when references in ``elf`` can be found exactly (x86-64, little-endian)."""
    return elf.machine == "x86_64" and elf.bits == 64 and elf.byte_order == "little"


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
    found = [*_code(data, elf, wanted), *_relocations(data, elf, wanted)]
    if not any(s.type == SHT_RELA for s in elf.sections):
        # Without dynamic relocations a pointer can only be a stored absolute value. With
        # them, every pointer the loader fixes up has a relocation (found above); a stored
        # value without one is data that happens to equal an address.
        found += _pointers(data, elf, wanted)
    found += [
        Site("symbol", s.name_offset, s.value, 0) for s in elf.symbols
        if s.defined and s.value in wanted
    ]
    return sorted(found, key=lambda s: (s.offset, s.target))


def _code(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    low, high = min(wanted), max(wanted)
    starts = function_starts(data, elf)
    for section in elf.sections:
        if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
            continue
        body = data[section.offset:section.end]
        shift = section.addr - section.offset
        hits: list[tuple[int, int, int]] = []  # (displacement offset, immediate size, target)
        for match in _RIP_MODRM.finditer(body, 0, max(0, len(body) - 4)):
            at = section.offset + match.end()
            (disp,) = struct.unpack_from("<i", data, at)
            end = at + shift + 4 + disp
            if end > high or end + _IMMEDIATES[-1] < low:
                continue
            hits += [(at, imm, end + imm) for imm in _IMMEDIATES if end + imm in wanted]
        if starts:
            sweep = _Sweep(data, section.offset, section.end, shift, starts)
            for at, imm, target in hits:
                if sweep.confirms(at, imm):
                    yield Site("code", at, target, at + shift + 4 + imm)
        else:
            for at, imm, target in hits:
                if _decodes(data, section.offset, at, imm, shift):
                    yield Site("code", at, target, at + shift + 4 + imm, exact=False)


class _Sweep:
    """Instruction boundaries found by disassembling each function from its start (cached)."""

    def __init__(
        self, data: bytes, floor: int, ceiling: int, shift: int, starts: list[int]
    ) -> None:
        self.data, self.floor, self.ceiling, self.shift = data, floor, ceiling, shift
        self.starts = starts
        #: function start -> {instruction address: size}, and how far it has been swept.
        self.sizes: dict[int, dict[int, int]] = {}
        self.reached: dict[int, int] = {}

    def confirms(self, at: int, imm: int) -> bool:
        """True if an instruction of the sweep has its displacement at ``at`` and ends
        ``imm`` bytes after it."""
        address = at + self.shift
        index = bisect.bisect_right(self.starts, address) - 1
        if index < 0 or self.starts[index] - self.shift < self.floor:
            return False
        function = self.starts[index]
        sizes = self._swept(function, address)
        for insn_at in range(address - 1, max(function, address - _MAX_INSN) - 1, -1):
            size = sizes.get(insn_at)
            if size is not None:
                offset = insn_at - self.shift
                return size == at + 4 + imm - offset and _decodes_at(
                    self.data, offset, at, imm, self.shift
                )
        return False

    def _swept(self, function: int, address: int) -> dict[int, int]:
        """The function's instructions, disassembled at least up to ``address``."""
        sizes = self.sizes.setdefault(function, {})
        done = self.reached.get(function, function)
        if done > address:
            return sizes
        # Sweep on past the address: later hits in the same function reuse the work.
        code = self.data[done - self.shift:min(self.ceiling, address - self.shift + 4096)]
        end = done
        for insn_at, size, _, _ in disassembler().disasm_lite(code, done):
            sizes[insn_at] = size
            end = insn_at + size
        # Stopping short means undecodable bytes: nothing past them is known, ever.
        self.reached[function] = end if end > address else 1 << 62
        return sizes


def function_starts(data: bytes, elf: Elf) -> list[int]:
    """Sorted start addresses of every function with unwind information (``.eh_frame_hdr``).

    The header's binary-search table lists each FDE's initial location; only the usual
    encoding (``DW_EH_PE_datarel | DW_EH_PE_sdata4``, 0x3b) is read, else none are known.
    """
    header = elf.section(".eh_frame_hdr")
    if header is None or header.size < 12:
        return []
    raw = data[header.offset:header.end]
    version, pointer_enc, count_enc, table_enc = raw[:4]
    sizes = {0x03: 4, 0x0B: 4, 0x1B: 4, 0x04: 8, 0x0C: 8, 0x1C: 8}
    if version != 1 or table_enc != 0x3B or pointer_enc not in sizes or count_enc != 0x03:
        return []
    at = 4 + sizes[pointer_enc]
    (count,) = struct.unpack_from("<I", raw, at)
    at += 4
    count = min(count, (len(raw) - at) // 8)
    table = struct.unpack_from(f"<{2 * count}i", raw, at)
    return sorted(header.addr + table[i] for i in range(0, 2 * count, 2))


def _decodes(data: bytes, floor: int, at: int, imm: int, shift: int) -> bool:
    """True if an instruction starting shortly before ``at`` has its RIP-relative
    displacement exactly at ``at`` and ends ``imm`` bytes after it."""
    return any(
        _decodes_at(data, start, at, imm, shift)
        for start in range(at - 2, max(floor, at - _MAX_INSN + 4 + imm) - 1, -1)
    )


def _decodes_at(data: bytes, start: int, at: int, imm: int, shift: int) -> bool:
    """True if the instruction at file offset ``start`` has its RIP-relative displacement
    exactly at ``at`` and ends ``imm`` bytes after it."""
    from capstone import x86

    for insn in disassembler().disasm(data[start:start + _MAX_INSN], start + shift, 1):
        if insn.size != at + 4 + imm - start or insn.disp_offset != at - start:
            return False
        return any(
            op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP
            for op in insn.operands
        )
    return False


@functools.cache
def disassembler() -> Cs:
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs

    disassembler = Cs(CS_ARCH_X86, CS_MODE_64)
    disassembler.detail = True
    return disassembler


def _relocations(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    values = {s.index: s.value for s in elf.symbols}
    for section in elf.sections:
        if section.type != SHT_RELA or not section.size:
            continue
        step = section.entsize or 24
        for at in range(section.offset, section.end - step + 1, step):
            _, info, addend = struct.unpack_from("<QQq", data, at)
            kind, symbol = info & 0xFFFFFFFF, info >> 32
            if kind == R_X86_64_RELATIVE:
                target = addend
            elif kind in (R_X86_64_64, R_X86_64_GLOB_DAT):
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
