"""x86-64 code references: RIP-relative operands, confirmed by a Capstone sweep.

In a position independent x86-64 shared object code reaches data through a RIP-relative
memory operand (``lea rdi, [rip + disp32]``): the ModRM byte right before the 32-bit
displacement has ``mod == 00`` and ``rm == 101``, and the address is the end of the
instruction plus the displacement. The scan (see refs for the whole picture) is wide, then
each hit is confirmed by disassembling from the start of its function.
"""

from __future__ import annotations

import bisect
import functools
import re
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.site import Site

if TYPE_CHECKING:
    from capstone import Cs, CsInsn

#: Relocation types (the ELF psABI for x86-64) whose value is an address.
R_X86_64_64 = 1
R_X86_64_GLOB_DAT = 6
R_X86_64_RELATIVE = 8

#: ModRM bytes with mod == 00 and rm == 101: a RIP-relative memory operand follows.
_RIP_MODRM = re.compile(rb"[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")
#: Immediate sizes that can follow a displacement (``cmp byte [rip+x], 0`` has one byte).
_IMMEDIATES = (0, 1, 2, 4)
#: Longest x86 instruction.
_MAX_INSN = 15


def code_sites(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
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


def immediates(insn: CsInsn) -> set[int]:
    from capstone import x86

    return {int(op.imm) for op in insn.operands if op.type == x86.X86_OP_IMM and op.imm > 0}


def rip_target(insn: CsInsn) -> int | None:
    from capstone import x86

    if insn.mnemonic != "lea" or len(insn.operands) != 2:
        return None
    mem = insn.operands[1]
    if mem.type != x86.X86_OP_MEM or mem.mem.base != x86.X86_REG_RIP:
        return None
    return int(insn.address + insn.size + mem.mem.disp)
