"""What a string's address is passed to on arm64: the call an ``arm64`` reference feeds, and
the lengths loaded near it (the arm64 half of x86_64_calls.Calls, which asks this module).

AArch64 instructions are 4 bytes wide, so the code after a reference decodes exactly from the
reference itself. The register the reference writes is followed, through ``mov`` copies, to
the next ``bl``; the callee is named through the PLT stub it calls (``adrp x16, page; ldr
x17, [x16, #slot]; add x16, ...; br x17``) and the ``R_AARCH64_JUMP_SLOT`` relocation of
that slot. The second argument of a call is ``x1``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wheelshade.native import arm64
from wheelshade.native.elf import Elf
from wheelshade.native.site import Site

if TYPE_CHECKING:
    from capstone import CsInsn

SHT_RELA = 4
#: How many instructions after the reference the call may come.
_WINDOW = 16
#: How many bytes around a reference its length may be set.
_NEAR = 40


class Arm64Calls:
    """Call targets of one arm64 binary, read once (its PLT stubs and GOT slots)."""

    def __init__(self, data: bytes, elf: Elf) -> None:
        self.data, self.elf = data, elf
        self._stubs: dict[int, str] | None = None

    def call_after(self, site: Site) -> tuple[str | None, frozenset[str]]:
        """The imported function called next after the reference, and the registers that
        hold its address there (``x0``, ``x1``...); (None, empty) when a branch comes first,
        the address is not formed by an ``add``/``adr``, or the callee is not known."""
        insns = self._decode(site.offset, site.offset + 4 * (_WINDOW + 1))
        from capstone import CS_GRP_CALL, CS_GRP_JUMP, CS_GRP_RET
        from capstone import arm64 as a64

        first = next(insns, None)
        if first is None or first.id not in (a64.ARM64_INS_ADD, a64.ARM64_INS_ADR):
            return None, frozenset()  # a load reads what is stored there, not the address

        holding = {_family(first, first.operands[0].reg)}
        for insn in insns:
            if insn.group(CS_GRP_CALL):
                target = [op.imm for op in insn.operands if op.type == a64.ARM64_OP_IMM]
                callee = self.stubs().get(int(target[0])) if target else None
                return callee, frozenset(holding)
            if insn.group(CS_GRP_JUMP) or insn.group(CS_GRP_RET):
                return None, frozenset()
            ops = insn.operands
            if (insn.id == a64.ARM64_INS_MOV and len(ops) == 2
                    and ops[1].type == a64.ARM64_OP_REG
                    and _family(insn, ops[1].reg) in holding):
                holding.add(_family(insn, ops[0].reg))
                continue
            holding -= _written(insn)
        return None, frozenset()

    def lengths(self, site: Site) -> frozenset[int]:
        """Immediates moved into registers within a few instructions of the reference."""
        from capstone import arm64 as a64

        low = max(0, site.offset - _NEAR)
        found: set[int] = set()
        for insn in self._decode(low, site.offset + _NEAR + 4):
            ops = insn.operands
            if (insn.id in (a64.ARM64_INS_MOV, a64.ARM64_INS_MOVZ) and len(ops) == 2
                    and ops[0].type == a64.ARM64_OP_REG and ops[1].type == a64.ARM64_OP_IMM):
                found.add(int(ops[1].imm))
        return frozenset(found)

    def stubs(self) -> dict[int, str]:
        """PLT stub address -> the symbol whose GOT slot it jumps through."""
        if self._stubs is None:
            self._stubs = dict(self.elf.imports)  # Mach-O: stubs, from indirect symbols
            section = self.elf.section(".plt")
            if section is not None and section.size:
                self._stubs = self._plt(section.offset, section.end, section.addr)
        return self._stubs

    def _plt(self, start: int, end: int, address: int) -> dict[int, str]:
        from capstone import arm64 as a64

        slots = self._slots()
        found: dict[int, str] = {}
        page: tuple[int, int] | None = None  # (stub address, page)
        for insn in arm64.disassembler().disasm(self.data[start:end], address):
            ops = insn.operands
            if insn.id == a64.ARM64_INS_ADRP and len(ops) == 2:
                page = (insn.address, int(ops[1].imm))
            elif (page is not None and insn.id == a64.ARM64_INS_LDR and len(ops) == 2
                    and ops[1].type == a64.ARM64_OP_MEM):
                name = slots.get(page[1] + int(ops[1].mem.disp))
                if name is not None:
                    found[page[0]] = name
                page = None
        return found

    def _slots(self) -> dict[int, str]:
        names = {s.index: s.name for s in self.elf.symbols}
        slots: dict[int, str] = {}
        for section in self.elf.sections:
            if section.type != SHT_RELA or not section.size:
                continue
            step = section.entsize or 24
            for at in range(section.offset, section.end - step + 1, step):
                where, info, _ = struct.unpack_from("<QQq", self.data, at)
                name = names.get(info >> 32)
                kind = info & 0xFFFFFFFF
                if kind in (arm64.R_AARCH64_JUMP_SLOT, arm64.R_AARCH64_GLOB_DAT) and name:
                    slots[where] = name
        return slots

    def _decode(self, start: int, end: int) -> Iterator[CsInsn]:
        """Instructions at file offsets ``start`` to ``end`` (addresses as loaded)."""
        for section in self.elf.sections:
            if section.offset <= start < section.end and section.addr:
                shift = section.addr - section.offset
                stop = min(end, section.end)
                yield from arm64.disassembler().disasm(self.data[start:stop], start + shift)
                return


def _family(insn: CsInsn, reg: int) -> str:
    return arm64.register_family(insn.reg_name(reg))


def _written(insn: CsInsn) -> set[str]:
    try:
        _, regs = insn.regs_access()
    except Exception:  # capstone raises its own error type (CsError)
        return set()
    return {_family(insn, r) for r in regs}
