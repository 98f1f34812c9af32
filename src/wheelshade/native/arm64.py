"""arm64 code references: ADRP pairs, ADR and literal loads, with registers followed per function.

An AArch64 shared object reaches data through instructions that build the address:

- ``adrp xN, page`` loads a 4 KiB page, and a later ``add xM, xN, #lo12`` or a load/store
  ``[xN, #lo12]`` completes it (often not right after: the page register may serve several
  strings, or be kept across calls in a callee-saved register);
- ``adr xN, address`` (within 1 MiB) and ``ldr xN, address`` (a literal load) carry the
  address whole.

So "the last ``adrp`` of each register" is not enough: which page a register holds depends on
the path taken. Each function that can reach a wanted address (function starts come from
``.eh_frame_hdr``) is split into basic blocks at its branches and branch targets, and the
addresses each register holds are found by a forward data-flow pass: a register keeps a value
into a block only when every known predecessor agrees on it; any other write forgets it; a
call forgets the caller-saved registers (x0-x18, x30); a block reached only through an indirect
branch (a jump table) starts knowing nothing. An address formed from a known value
(``add``/``sub`` with an immediate, a load or store with an immediate offset, ``adr``, a
literal load) is a reference. What cannot be seen: an address passed through memory or
across an indirect branch, as on x86-64 one computed at run time.

A reference's Site has kind ``arm64`` and the file offset of the instruction that completes
the address; it is never moved (two instructions encode it), so a merged string that would
need its users moved is refused instead.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.site import Site

if TYPE_CHECKING:
    from capstone import Cs, CsInsn

#: Relocation types (the ELF ABI for AArch64) whose value is an address.
R_AARCH64_ABS64 = 257
R_AARCH64_GLOB_DAT = 1025
R_AARCH64_JUMP_SLOT = 1026
R_AARCH64_RELATIVE = 1027

#: Top bytes of the little-endian words that may start an address: ADRP, ADR, LDR literal.
_CANDIDATE = re.compile(rb"[\x90\xb0\xd0\xf0\x10\x30\x50\x70\x18\x58\x98\x1c\x5c\x9c\xdc]")
#: Registers a call may change (AAPCS64: x0-x18 and the link register).
_CLOBBERED = frozenset({f"x{i}" for i in range(19)} | {"x30"})

State = dict[str, int]


def code_sites(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    """Every instruction that forms an address in ``wanted`` (see the module docstring)."""
    low, high = min(wanted), max(wanted)
    starts = function_starts(data, elf)
    for section in elf.sections:
        if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
            continue
        shift = section.addr - section.offset
        bounds = [s for s in starts if section.addr <= s < section.addr + section.size]
        functions = _functions(data, section.offset, section.end, shift, bounds, low, high,
                               wanted)
        for start, end in functions:
            for site in _Function(data, start, end, shift).sites():
                if site.target in wanted:
                    yield Site("arm64", site.offset, site.target, 0, exact=bool(bounds))


def _functions(
    data: bytes, floor: int, ceiling: int, shift: int, starts: list[int],
    low: int, high: int, wanted: frozenset[int],
) -> list[tuple[int, int]]:
    """(start, end) file offsets of the functions with an instruction that may start a
    wanted address; without function starts, the whole section is one."""
    pages = (low & ~0xFFF, high & ~0xFFF)
    hit: set[int] = set()
    for match in _CANDIDATE.finditer(data, floor, ceiling):
        at = match.start() - 3
        if (at - floor) % 4 or at < floor:
            continue
        word = int.from_bytes(data[at:at + 4], "little")
        pc = at + shift
        target = _direct_target(word, pc)
        if target is None:
            continue
        page = (word & 0x9F000000) == 0x90000000
        if (pages[0] <= target <= pages[1]) if page else target in wanted:
            hit.add(pc)
    if not starts:
        return [(floor, ceiling)] if hit else []
    found = set()
    for pc in hit:
        index = bisect.bisect_right(starts, pc) - 1
        if index >= 0:
            found.add(index)
    return [
        (starts[i] - shift, (starts[i + 1] - shift) if i + 1 < len(starts) else ceiling)
        for i in sorted(found)
    ]


def _direct_target(word: int, pc: int) -> int | None:
    """The page (ADRP) or address (ADR, LDR literal) one instruction word encodes, if any."""
    if (word & 0x1F000000) == 0x10000000:  # ADR / ADRP
        imm = (((word >> 5) & 0x7FFFF) << 2) | ((word >> 29) & 3)
        imm -= (imm & 0x100000) << 1
        if word & 0x80000000:
            return (pc & ~0xFFF) + (imm << 12)
        return pc + imm
    if (word & 0x3B000000) == 0x18000000:  # LDR (literal), integer or SIMD
        imm = (word >> 5) & 0x7FFFF
        imm -= (imm & 0x40000) << 1
        return pc + 4 * imm
    return None


@dataclass
class _Block:
    start: int  # address of its first instruction
    insns: list[CsInsn] = field(default_factory=list)
    successors: list[int] = field(default_factory=list)
    entry: State | None = None  # None: not reached yet


class _Function:
    """One function's instructions as basic blocks, and the addresses its registers hold."""

    def __init__(self, data: bytes, start: int, end: int, shift: int) -> None:
        self.blocks = _blocks(list(_decode(data, start, end, shift)))
        self.shift = shift

    def sites(self) -> list[Site]:
        order = sorted(self.blocks)
        first = order[0] if order else None
        preds: dict[int, list[int]] = {b: [] for b in order}
        for b in order:
            for s in self.blocks[b].successors:
                preds[s].append(b)
        for b in order:  # no known way in (the start, a jump-table target): nothing known
            if b == first or not preds[b]:
                self.blocks[b].entry = {}
        exits: dict[int, State] = {}
        work = [b for b in order if self.blocks[b].entry is not None]
        while work:
            block = self.blocks[work.pop()]
            known = [exits[p] for p in preds[block.start] if p in exits]
            entry = block.entry if block.start == first or not preds[block.start] else (
                _meet(known) if known else None)
            if entry is None:
                continue
            block.entry = entry
            out = dict(entry)
            for insn in block.insns:
                _step(insn, out, None)
            if exits.get(block.start) != out:
                exits[block.start] = out
                work.extend(s for s in block.successors if s not in work)
        found: list[tuple[int, int]] = []
        for b in order:
            state = dict(self.blocks[b].entry or {})
            for insn in self.blocks[b].insns:
                _step(insn, state, found)
        return [Site("arm64", at - self.shift, target, 0) for at, target in found]


def _meet(states: list[State]) -> State:
    first, *rest = states
    return {r: v for r, v in first.items() if all(s.get(r) == v for s in rest)}


def _decode(data: bytes, start: int, end: int, shift: int) -> Iterator[CsInsn]:
    """The instructions from ``start`` to ``end``, skipping words that do not decode."""
    at = start
    while at + 4 <= end:
        last = at - 4
        for insn in disassembler().disasm(data[at:end], at + shift):
            yield insn
            last = insn.address - shift
        at = last + 8 if last >= at else at + 4  # past an undecodable word (data, padding)


def _blocks(insns: list[CsInsn]) -> dict[int, _Block]:
    from capstone import CS_GRP_CALL, CS_GRP_JUMP, CS_GRP_RET

    if not insns:
        return {}
    inside = {i.address for i in insns}
    leaders = {insns[0].address}
    ends: dict[int, tuple[list[int], bool]] = {}  # branch -> (targets, falls through)
    previous = None
    for insn in insns:
        if previous is not None and insn.address != previous + 4:
            leaders.add(insn.address)  # after a gap (undecodable words)
        previous = insn.address
        if insn.group(CS_GRP_RET) or (insn.group(CS_GRP_JUMP) and not insn.group(CS_GRP_CALL)):
            target = _branch_target(insn)
            targets = [target] if target is not None and target in inside else []
            ends[insn.address] = (targets, _conditional(insn))
            leaders.update(targets)
            leaders.add(insn.address + 4)
    blocks: dict[int, _Block] = {}
    block: _Block | None = None
    for insn in insns:
        if insn.address in leaders or block is None:
            if block is not None and block.insns[-1].address not in ends:
                block.successors.append(insn.address)
            block = blocks[insn.address] = _Block(insn.address)
        block.insns.append(insn)
        if insn.address in ends:
            targets, falls = ends[insn.address]
            block.successors += targets
            if falls and insn.address + 4 in inside:
                block.successors.append(insn.address + 4)
    return blocks


def _branch_target(insn: CsInsn) -> int | None:
    from capstone import arm64

    imms = [op.imm for op in insn.operands if op.type == arm64.ARM64_OP_IMM]
    if insn.id in (arm64.ARM64_INS_TBZ, arm64.ARM64_INS_TBNZ):
        return int(imms[-1]) if len(imms) >= 2 else None
    return int(imms[-1]) if imms and insn.id != arm64.ARM64_INS_RET else None


def _conditional(insn: CsInsn) -> bool:
    from capstone import arm64

    if insn.id in (arm64.ARM64_INS_CBZ, arm64.ARM64_INS_CBNZ, arm64.ARM64_INS_TBZ,
                   arm64.ARM64_INS_TBNZ):
        return True
    return bool(insn.id == arm64.ARM64_INS_B and insn.cc != arm64.ARM64_CC_INVALID)


def _step(insn: CsInsn, state: State, found: list[tuple[int, int]] | None) -> None:
    """Apply one instruction to the registers' known addresses; note the addresses it forms."""
    from capstone import CS_GRP_CALL, arm64

    ops = insn.operands
    formed: int | None = None
    written: int | None = None  # the value the destination gets, if known
    if insn.id in (arm64.ARM64_INS_ADRP, arm64.ARM64_INS_ADR) and len(ops) == 2:
        written = int(ops[1].imm)
        formed = None if insn.id == arm64.ARM64_INS_ADRP else written
    elif insn.id in (arm64.ARM64_INS_ADD, arm64.ARM64_INS_SUB) and len(ops) == 3 and (
        ops[1].type == arm64.ARM64_OP_REG and ops[2].type == arm64.ARM64_OP_IMM
    ):
        base = state.get(register_family(insn.reg_name(ops[1].reg)))
        if base is not None:
            amount = int(ops[2].imm) << (ops[2].shift.value if ops[2].shift.type else 0)
            written = base + amount if insn.id == arm64.ARM64_INS_ADD else base - amount
            formed = written if not ops[2].shift.type else None
    elif insn.id == arm64.ARM64_INS_MOV and len(ops) == 2 and ops[1].type == arm64.ARM64_OP_REG:
        written = state.get(register_family(insn.reg_name(ops[1].reg)))
    else:
        for op in ops:
            if op.type == arm64.ARM64_OP_MEM and op.mem.index == 0 and op.mem.base:
                base = state.get(register_family(insn.reg_name(op.mem.base)))
                if base is not None:
                    formed = base + int(op.mem.disp)
            elif op.type == arm64.ARM64_OP_IMM and _loads_literal(insn):
                formed = int(op.imm)
    if formed is not None and found is not None:
        found.append((insn.address, formed))
    try:
        _, regs = insn.regs_access()
    except Exception:  # capstone raises its own error type (CsError)
        regs = []
    for reg in regs:
        state.pop(register_family(insn.reg_name(reg)), None)
    if insn.group(CS_GRP_CALL):
        for reg in _CLOBBERED:
            state.pop(reg, None)
    if written is not None and ops and ops[0].type == arm64.ARM64_OP_REG:
        state[register_family(insn.reg_name(ops[0].reg))] = written


def _loads_literal(insn: CsInsn) -> bool:
    from capstone import arm64

    return insn.id in (arm64.ARM64_INS_LDR, arm64.ARM64_INS_LDRSW, arm64.ARM64_INS_PRFM)


@functools.cache
def register_family(name: str) -> str:
    """``w8`` and ``x8`` are one register (a 32-bit write clears the top half)."""
    if name[:1] == "w" and name[1:].isdigit():
        return "x" + name[1:]
    return {"fp": "x29", "lr": "x30"}.get(name, name)


@functools.cache
def disassembler() -> Cs:
    from capstone import CS_ARCH_ARM64, CS_MODE_ARM, Cs

    disassembler = Cs(CS_ARCH_ARM64, CS_MODE_ARM)
    disassembler.detail = True
    return disassembler
