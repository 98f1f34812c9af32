"""Constants a function has stored in its stack frame by a given instruction (x86-64).

Cython 3.1+ keeps a module's string lengths in a local array of bit-fields
(``const struct { const unsigned int length: 7; } index[] = {{13}, {4}, ...}``). A large
array is copied from read-only data, where it can be read as it is; a small one is built
in place, by stores of immediates or by read-modify-write byte operations
(``mov al, [rsp+0x40]; and eax, -0x80; or eax, 0xd; mov [rsp+0x40], al``), so its values
exist only as what the code leaves on the stack.

This follows the straight line of a function from its start to one instruction, tracking
the bits of registers and of ``rsp``/``rbp``-relative bytes that are known constants;
everything else is unknown. Branches are not followed, calls clobber what the ABI lets
them, and unknown bits read as zero. The result is therefore a guess, and the caller must
validate it (the lengths must split a string table into its known strings).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wheelshade.native import refs
from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.x86_64 import immediates, rip_target

if TYPE_CHECKING:
    from capstone import CsInsn

#: Longest straight line followed (instructions); Cython's module init can be long.
MAX_INSNS = 200_000

_LZSS_LOOP = re.compile(rb"\x41?\x81[\xc8-\xcf]\x00\xff\x00\x00")
_GPR = ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp")
_CALLER_SAVED = ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")
_MOVES = frozenset({
    "mov", "movabs", "movzx", "movd", "movq", "movdqa", "movdqu", "movaps", "movups",
    "movapd", "movupd", "vmovdqa", "vmovdqu", "vmovaps", "vmovups", "vmovd", "vmovq",
})
_ZEROING = frozenset({"pxor", "xorps", "xorpd", "vpxor", "vxorps", "vxorpd"})


@dataclass(frozen=True)
class _Reg:
    family: str  # the full register the name is part of
    shift: int  # bit position of the name's low bit in it
    bits: int


@functools.cache
def _registers() -> dict[str, _Reg]:
    regs: dict[str, _Reg] = {}
    for short in _GPR:
        full = "r" + short
        regs[full] = _Reg(full, 0, 64)
        regs["e" + short] = _Reg(full, 0, 32)
        regs[short] = _Reg(full, 0, 16)
    for letter in "abcd":
        full = f"r{letter}x"
        regs[f"{letter}l"] = _Reg(full, 0, 8)
        regs[f"{letter}h"] = _Reg(full, 8, 8)
    for short in ("si", "di", "bp", "sp"):
        regs[short + "l"] = _Reg("r" + short, 0, 8)
    for n in range(8, 16):
        full = f"r{n}"
        regs[full] = _Reg(full, 0, 64)
        regs[f"r{n}d"] = _Reg(full, 0, 32)
        regs[f"r{n}w"] = _Reg(full, 0, 16)
        regs[f"r{n}b"] = _Reg(full, 0, 8)
    for n in range(16):
        regs[f"xmm{n}"] = _Reg(f"ymm{n}", 0, 128)
        regs[f"ymm{n}"] = _Reg(f"ymm{n}", 0, 256)
    return regs


def register(name: str) -> str | None:
    """The full register a register name is part of (``esi`` -> ``rsi``), if known."""
    reg = _registers().get(name)
    return reg.family if reg is not None else None


def _mask(bits: int) -> int:
    return (1 << bits) - 1


class _Machine:
    """Known bits of registers and of stack bytes; (value, known-mask) pairs."""

    def __init__(self, data: bytes, elf: Elf) -> None:
        self.data, self.elf = data, elf
        self.regs: dict[str, tuple[int, int]] = {}
        #: (base register, displacement) -> (byte value, known bits)
        self.stack: dict[tuple[str, int], tuple[int, int]] = {}

    # -- operands ---------------------------------------------------------------------
    def read(self, insn: CsInsn, index: int, bits: int) -> tuple[int, int]:
        from capstone import x86

        op = insn.operands[index]
        if op.type == x86.X86_OP_IMM:
            return op.imm & _mask(bits), _mask(bits)
        if op.type == x86.X86_OP_REG:
            reg = _registers().get(insn.reg_name(op.reg))
            if reg is None:
                return 0, 0
            value, known = self.regs.get(reg.family, (0, 0))
            return (value >> reg.shift) & _mask(bits), (known >> reg.shift) & _mask(bits)
        if op.type == x86.X86_OP_MEM:
            return self._load(insn, op, bits // 8)
        return 0, 0

    def write(self, insn: CsInsn, index: int, value: int, known: int, bits: int) -> None:
        from capstone import x86

        op = insn.operands[index]
        if op.type == x86.X86_OP_REG:
            reg = _registers().get(insn.reg_name(op.reg))
            if reg is None:
                return
            old_value, old_known = self.regs.get(reg.family, (0, 0))
            width = min(bits, reg.bits)
            keep = ~(_mask(width) << reg.shift)
            if reg.bits == 32 and reg.family.startswith("r"):
                keep = 0  # a 32-bit write zero-extends into the whole register
            elif reg.family.startswith("ymm") and insn.mnemonic.startswith("v"):
                keep = 0  # VEX-encoded writes clear the upper lanes
            value = (value & _mask(width)) << reg.shift
            known = (known & _mask(width)) << reg.shift
            if keep == 0:
                known |= ~_mask(width) & _mask(256)  # cleared bits are known zeros
            self.regs[reg.family] = (
                (old_value & keep) | value,
                (old_known & keep) | known,
            )
        elif op.type == x86.X86_OP_MEM:
            slot = self._slot(insn, op)
            if slot is not None:
                base, disp = slot
                for i in range(bits // 8):
                    self.stack[(base, disp + i)] = ((value >> 8 * i) & 0xFF,
                                                   (known >> 8 * i) & 0xFF)

    def _slot(self, insn: CsInsn, op: object) -> tuple[str, int] | None:
        mem = op.mem  # type: ignore[attr-defined]
        if mem.index != 0 or mem.base == 0:
            return None
        base = insn.reg_name(mem.base)
        return (base, int(mem.disp)) if base in ("rsp", "rbp") else None

    def _load(self, insn: CsInsn, op: object, size: int) -> tuple[int, int]:
        from capstone import x86

        mem = op.mem  # type: ignore[attr-defined]
        if mem.base == x86.X86_REG_RIP and mem.index == 0:
            offset = refs.offset_of(self.elf, insn.address + insn.size + int(mem.disp))
            if offset is None or offset + size > len(self.data):
                return 0, 0
            return int.from_bytes(self.data[offset:offset + size], "little"), _mask(8 * size)
        slot = self._slot(insn, op)
        if slot is None:
            return 0, 0
        base, disp = slot
        value = known = 0
        for i in range(size):
            byte, bits = self.stack.get((base, disp + i), (0, 0))
            value |= byte << 8 * i
            known |= bits << 8 * i
        return value, known

    # -- instructions -----------------------------------------------------------------
    def step(self, insn: CsInsn) -> None:
        from capstone import x86

        name, ops = insn.mnemonic, insn.operands
        if name == "call":
            for reg in _CALLER_SAVED:
                self.regs.pop(reg, None)
            for n in range(16):
                self.regs.pop(f"ymm{n}", None)
            return
        if len(ops) == 2 and (name in _MOVES or name in ("and", "or", "xor", "add", "sub")):
            bits = 8 * ops[0].size
            src_bits = 8 * ops[1].size if ops[1].type != x86.X86_OP_IMM else bits
            value, known = self.read(insn, 1, src_bits)
            if name in _MOVES:
                self.write(insn, 0, value, known, bits)
                return
            old, old_known = self.read(insn, 0, bits)
            self.write(insn, 0, *_alu(name, old, old_known, value, known, bits), bits)
            return
        if name in _ZEROING and len(ops) >= 2 and all(
            op.type == x86.X86_OP_REG and op.reg == ops[-1].reg for op in ops[-2:]
        ):
            self.write(insn, 0, 0, _mask(8 * ops[0].size), 8 * ops[0].size)
            return
        self._forget(insn)

    def _forget(self, insn: CsInsn) -> None:
        """An instruction not modelled: whatever it writes becomes unknown."""
        from capstone import x86

        try:
            _, written = insn.regs_access()
        except Exception:  # capstone raises its own error type (CsError)
            written = []
        for reg_id in written:
            reg = _registers().get(insn.reg_name(reg_id))
            if reg is not None:
                self.regs.pop(reg.family, None)
        if insn.operands and insn.operands[0].type == x86.X86_OP_MEM:
            slot = self._slot(insn, insn.operands[0])
            if slot is not None:
                base, disp = slot
                for i in range(max(1, insn.operands[0].size)):
                    self.stack.pop((base, disp + i), None)


def _alu(name: str, a: int, ka: int, b: int, kb: int, bits: int) -> tuple[int, int]:
    full = _mask(bits)
    if name == "and":
        return a & b, ((ka & kb) | (ka & ~a) | (kb & ~b)) & full
    if name == "or":
        return a | b, ((ka & kb) | (ka & a) | (kb & b)) & full
    if name == "xor":
        return a ^ b, ka & kb
    known = full if ka == full and kb == full else 0
    return ((a + b) if name == "add" else (a - b)) & full, known


def stack_words(
    data: bytes, elf: Elf, start: int, checkpoints: Sequence[int]
) -> Iterator[tuple[int, ...]]:
    """Runs of consecutive 32-bit stack words (unknown bits as zero) that a function has
    stored from its start address ``start`` up to each address in ``checkpoints``.

    A run is a maximal sequence of words at ``d, d + 4, d + 8, ...`` relative to one base
    register, each with at least one known bit.
    """
    machine = _Machine(data, elf)
    stops = sorted(checkpoints)
    for insn in instructions(data, elf, start, stops[-1] if stops else start):
        while stops and insn.address >= stops[0]:
            yield from _runs(machine)
            stops.pop(0)
        if not stops:
            return
        machine.step(insn)
    if stops:
        yield from _runs(machine)


def instructions(data: bytes, elf: Elf, start: int, until: int) -> Iterator[CsInsn]:
    """The straight-line disassembly from address ``start`` up to ``until`` (at most
    MAX_INSNS instructions; it stops early at bytes that do not decode)."""
    offset = refs.offset_of(elf, start)
    if offset is None or until <= start:
        return
    code = data[offset:offset + (until - start)]
    for count, insn in enumerate(refs.disassembler().disasm(code, start)):
        if count >= MAX_INSNS:
            return
        yield insn


def _runs(machine: _Machine) -> Iterator[tuple[int, ...]]:
    by_base: dict[str, dict[int, tuple[int, int]]] = {}
    for (base, disp), cell in machine.stack.items():
        by_base.setdefault(base, {})[disp] = cell
    for cells in by_base.values():
        words: dict[int, int] = {}
        for disp in cells:
            word = disp - disp % 4
            if word in words:
                continue
            value = known = 0
            for i in range(4):
                byte, bits = cells.get(word + i, (0, 0))
                value |= (byte & bits) << 8 * i
                known |= bits
            if known:
                words[word] = value
        order = sorted(words)
        begin = 0
        for i in range(1, len(order) + 1):
            if i == len(order) or order[i] != order[i - 1] + 4:
                yield tuple(words[d] for d in order[begin:i])
                begin = i


def function_containing(starts: list[int], address: int) -> int | None:
    """The start of the function that holds ``address``, from sorted function starts."""
    index = bisect.bisect_right(starts, address) - 1
    return starts[index] if index >= 0 else None


def lzss_loops(
    data: bytes, elf: Elf, before: int, after: int
) -> Iterator[tuple[set[int], set[int]]]:
    """Cython 3.3's LZSS decoder loops, found by their first instruction (``or r32,
    0xff00``: the flags byte with a stop bit above it): for each, the addresses a
    RIP-relative ``lea`` takes within ``before`` bytes before it, and the immediates
    ``cmp`` takes within ``after`` bytes after it."""
    starts = function_starts(data, elf)
    for section in elf.sections:
        if section.type != SHT_PROGBITS or not section.flags & SHF_EXECINSTR:
            continue
        for match in _LZSS_LOOP.finditer(data, section.offset, section.end):
            loop = section.addr + match.start() - section.offset
            start = function_containing(starts, loop)
            if start is None:
                continue
            streams, sizes = set(), set()
            for insn in instructions(data, elf, start, loop + after):
                target = rip_target(insn)
                if target is not None and loop - before <= insn.address < loop:
                    streams.add(target)
                elif insn.mnemonic == "cmp" and loop < insn.address:
                    sizes |= immediates(insn)
            yield streams, sizes
