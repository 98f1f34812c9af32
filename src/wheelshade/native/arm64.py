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
literal load) is a reference. Instructions are decoded from their bits (see _op): a
disassembler object per instruction costs ten times more. What cannot be seen: an address
passed through memory or across an indirect branch, as on x86-64 one computed at run time.

A reference's Site has kind ``arm64`` and the file offset of the instruction that completes
the address; arm64_moves.py moves it (rewrites that instruction, and the ``adrp`` when its page
serves nothing else) where a merged string's own users must go to a copy.
"""

from __future__ import annotations

import bisect
import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.site import Site

if TYPE_CHECKING:
    from capstone import Cs

#: Relocation types (the ELF ABI for AArch64) whose value is an address.
R_AARCH64_ABS64 = 257
R_AARCH64_GLOB_DAT = 1025
R_AARCH64_JUMP_SLOT = 1026
R_AARCH64_RELATIVE = 1027

#: Top bytes of the little-endian words that may start an address: ADRP, ADR, LDR literal.
_CANDIDATE = re.compile(rb"[\x90\xb0\xd0\xf0\x10\x30\x50\x70\x18\x58\x98\x1c\x5c\x9c]")
#: How far past its page an address built from an ADRP may be looked for (a page plus a
#: 12-bit offset, and further offsets from that address into a table of strings).
_REACH = 0x10000

State = dict[int, int]  # register number -> the address it holds


def code_sites(data: bytes, elf: Elf, wanted: frozenset[int]) -> Iterator[Site]:
    """Every instruction that forms an address in ``wanted`` (see the module docstring)."""
    starts = function_starts(data, elf)
    for section in elf.sections:
        if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
            continue
        shift = section.addr - section.offset
        bounds = [s for s in starts if section.addr <= s < section.addr + section.size]
        functions = _functions(data, section.offset, section.end, shift, bounds, wanted)
        for start, end in functions:
            for site in _Function(data, start, end, shift).sites():
                if site.target in wanted:
                    yield Site("arm64", site.offset, site.target, 0, exact=bool(bounds))


def _functions(
    data: bytes, floor: int, ceiling: int, shift: int, starts: list[int], wanted: frozenset[int]
) -> list[tuple[int, int]]:
    """(start, end) file offsets of the functions with an instruction that may start a
    wanted address; without function starts, the whole section is one."""
    targets = sorted(wanted)
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
        if (word & 0x9F000000) == 0x90000000:  # a page: a wanted address within reach of it
            index = bisect.bisect_left(targets, target)
            if index < len(targets) and targets[index] < target + _REACH:
                hit.add(pc)
        elif target in wanted:
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


# What one instruction does, as far as addresses go (decoded from its bits, see decode).
ADRP, ADR, ADD, MOV, MEM, LITERAL, CALL, JUMP, END, OTHER = range(10)
#: (address, kind, destination, source, value, registers written, branch target, conditional)
Op = tuple[int, int, int, int, int | None, tuple[int, ...], int | None, bool]
#: Registers a call may change (AAPCS64: x0-x18 and the link register).
CALLER_SAVED = (*range(19), 30)


@dataclass
class _Block:
    start: int  # address of its first instruction
    ops: list[Op] = field(default_factory=list)
    successors: list[int] = field(default_factory=list)
    entry: State | None = None  # None: not reached yet


class _Function:
    """One function's instructions as basic blocks, and the addresses its registers hold."""

    def __init__(self, data: bytes, start: int, end: int, shift: int) -> None:
        self.blocks = blocks(decode(data, start, end, shift))
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
            for op in block.ops:
                _step(op, out, None)
            if exits.get(block.start) != out:
                exits[block.start] = out
                work.extend(s for s in block.successors if s not in work)
        found: list[tuple[int, int]] = []
        for b in order:
            state = dict(self.blocks[b].entry or {})
            for op in self.blocks[b].ops:
                _step(op, state, found)
        return [Site("arm64", at - self.shift, target, 0) for at, target in found]


def function_sites(data: bytes, start: int, end: int, shift: int) -> list[Site]:
    """The addresses formed in one function (file offsets ``start`` to ``end``)."""
    return _Function(data, start, end, shift).sites()


def _meet(states: list[State]) -> State:
    first, *rest = states
    return {r: v for r, v in first.items() if all(s.get(r) == v for s in rest)}


def blocks(ops: list[Op]) -> dict[int, _Block]:
    if not ops:
        return {}
    inside = {op[0] for op in ops}
    leaders = {ops[0][0]}
    previous = None
    for op in ops:
        if previous is not None and op[0] != previous + 4:
            leaders.add(op[0])  # after a gap (words that are not code)
        previous = op[0]
        if op[1] in (JUMP, END):
            if op[6] is not None and op[6] in inside:
                leaders.add(op[6])
            leaders.add(op[0] + 4)
    blocks: dict[int, _Block] = {}
    block: _Block | None = None
    for op in ops:
        if op[0] in leaders or block is None:
            if block is not None and block.ops[-1][1] not in (JUMP, END):
                block.successors.append(op[0])
            block = blocks[op[0]] = _Block(op[0])
        block.ops.append(op)
        if op[1] == JUMP:
            if op[6] is not None and op[6] in inside:
                block.successors.append(op[6])
            if op[7] and op[0] + 4 in inside:
                block.successors.append(op[0] + 4)
    return blocks


def _step(op: Op, state: State, found: list[tuple[int, int]] | None) -> None:
    """Apply one instruction to the registers' known addresses; note the addresses it forms."""
    at, kind, rd, rn, value, written, _, _ = op
    formed: int | None = None
    known: int | None = None  # what the destination holds afterwards, if known
    if kind == ADRP:
        known = value
    elif kind == ADR:
        known = formed = value
    elif kind == ADD:
        base = state.get(rn)
        if base is not None and value is not None:
            known = formed = base + value
    elif kind == MOV:
        known = state.get(rn)
    elif kind == MEM:
        base = state.get(rn)
        if base is not None and value is not None:
            formed = base + value
    elif kind == LITERAL:
        formed = value
    if formed is not None and found is not None:
        found.append((at, formed))
    for reg in CALLER_SAVED if kind == CALL else written:
        state.pop(reg, None)
    if known is not None and rd != 31:
        state[rd] = known


def decode(data: bytes, start: int, end: int, shift: int) -> list[Op]:
    """Each instruction word from ``start`` to ``end`` as an Op (see _op)."""
    count = (end - start) // 4
    words = struct.unpack_from(f"<{count}I", data, start)
    return [_op(word, start + shift + 4 * i) for i, word in enumerate(words)]


def _op(w: int, pc: int) -> Op:
    """Decode one AArch64 instruction word far enough to follow addresses.

    Exactly: ADRP/ADR, ADD/SUB (immediate), MOV (register), loads and stores with an
    immediate offset, literal loads, branches and calls. Every other instruction is taken to
    write its ``Rd`` field (bits 0-4), which is what nearly all of them do; forgetting a
    register that was not written only loses a reference, never invents one.
    """
    rd, rn = w & 31, (w >> 5) & 31
    if (w & 0x1F000000) == 0x10000000:  # ADR, ADRP
        target = _direct_target(w, pc)
        return (pc, ADRP if w & 0x80000000 else ADR, rd, 0, target, (rd,), None, False)
    if (w & 0x1F000000) == 0x11000000:  # ADD/SUB (immediate)
        imm = (w >> 10) & 0xFFF
        if (w & 0xA0400000) == 0x80000000:  # 64-bit, no flags, not shifted by 12
            return (pc, ADD, rd, rn, -imm if w & 0x40000000 else imm, (rd,), None, False)
        return (pc, OTHER, rd, rn, None, (rd,), None, False)
    if (w & 0xFFE0FFE0) == 0xAA0003E0:  # MOV xd, xm (ORR xd, xzr, xm)
        return (pc, MOV, rd, (w >> 16) & 31, None, (rd,), None, False)
    if (w & 0x0A000000) == 0x08000000:  # loads and stores
        return _load_store(w, pc, rd, rn)
    if (w & 0x7C000000) == 0x14000000:  # B, BL
        target = pc + 4 * _signed(w & 0x3FFFFFF, 26)
        if w & 0x80000000:
            return (pc, CALL, 0, 0, None, (), target, False)
        return (pc, JUMP, 0, 0, None, (), target, False)
    if (w & 0xFF000010) == 0x54000000 or (w & 0x7E000000) == 0x34000000:  # B.cond, CB(N)Z
        target = pc + 4 * _signed((w >> 5) & 0x7FFFF, 19)
        return (pc, JUMP, 0, 0, None, (), target, True)
    if (w & 0x7E000000) == 0x36000000:  # TB(N)Z
        target = pc + 4 * _signed((w >> 5) & 0x3FFF, 14)
        return (pc, JUMP, 0, 0, None, (), target, True)
    if (w & 0xFE000000) == 0xD6000000:  # branch to a register: BLR calls, BR/RET end
        if (w >> 21) & 7 == 1:  # BLR, BLRAA, BLRAB
            return (pc, CALL, 0, 0, None, (), None, False)
        return (pc, END, 0, 0, None, (), None, False)
    if (w & 0xFFC00000) == 0xD5000000:  # system: only MRS and SYSL write a register
        return (pc, OTHER, rd, 0, None, (rd,) if w & 0x200000 else (), None, False)
    return (pc, OTHER, rd, rn, None, (rd,), None, False)


def _load_store(w: int, pc: int, rt: int, rn: int) -> Op:
    """A load or store: the address it reads or writes when that is the base register plus
    an immediate, and the general registers it writes (loaded ones, a written-back base)."""
    vector = bool(w & 0x04000000)
    if (w & 0x3B000000) == 0x18000000:  # LDR (literal); opc 11 is PRFM
        loads = not vector and (w >> 30) != 3
        return (pc, LITERAL, rt, 0, _direct_target(w, pc), (rt,) if loads else (), None, False)
    if (w & 0x3A000000) == 0x28000000:  # load/store pair
        kind = (w >> 23) & 3  # 1 post-index, 2 offset, 3 pre-index (0: no-allocate offset)
        opc = w >> 30
        scale = (2 + opc) if vector else (3 if opc == 2 else 2)
        offset = None if kind == 1 else _signed((w >> 15) & 0x7F, 7) << scale
        written: tuple[int, ...] = (rt, (w >> 10) & 31) if w & 0x400000 and not vector else ()
        written += (rn,) if kind in (1, 3) else ()
        return (pc, MEM, 0, rn, offset, written, None, False)
    if (w & 0x3B000000) == 0x39000000:  # load/store register, unsigned immediate
        size, opc = w >> 30, (w >> 22) & 3
        scale = (size | (opc & 2) << 1) if vector else size
        offset = ((w >> 10) & 0xFFF) << scale
        return (pc, MEM, 0, rn, offset, _loaded(w, rt, vector, size, opc), None, False)
    if (w & 0x3B200000) == 0x38000000:  # unscaled, pre/post-indexed, unprivileged
        index = (w >> 10) & 3
        offset = None if index == 1 else _signed((w >> 12) & 0x1FF, 9)
        written = _loaded(w, rt, vector, w >> 30, (w >> 22) & 3)
        written += (rn,) if index in (1, 3) else ()
        return (pc, MEM, 0, rn, offset, written, None, False)
    if (w & 0x3B200C00) == 0x38200800:  # register offset
        return (pc, OTHER, rt, rn, None, _loaded(w, rt, vector, w >> 30, (w >> 22) & 3), None,
                False)
    if (w & 0xBE000000) == 0x0C000000:  # vector structures: only a written-back base
        return (pc, OTHER, rt, rn, None, (rn,) if w & 0x800000 else (), None, False)
    # Anything else (exclusives, atomics, tags): every register field it has may be written.
    return (pc, OTHER, rt, rn, None, (rt, rn, (w >> 10) & 31, (w >> 16) & 31), None, False)


def _loaded(w: int, rt: int, vector: bool, size: int, opc: int) -> tuple[int, ...]:
    """``(rt,)`` when a single-register load writes a general register, else ``()``."""
    if vector or opc == 0 or (size == 3 and opc == 2):  # a store, a vector register, PRFM
        return ()
    return (rt,)


def _signed(value: int, bits: int) -> int:
    return value - ((value >> (bits - 1)) << bits)


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
