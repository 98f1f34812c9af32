"""Moving arm64 references to a copy of their string (a split): the instruction words to
rewrite, proven by following the page register through the function.

On x86-64 a split rewrites a ``lea``'s displacement. An arm64 address takes two instructions,
``adrp xN, page`` and ``add xM, xN, #lo12`` (or a load or store ``[xN, #lo12]``), and the page
register may serve other strings of that page or be kept for later. So, per function, the
definitions of each reference's base register that reach it are found (reaching definitions
over the basic blocks of arm64.py), and for each ``adrp`` among them every instruction that
may read what it wrote:

- when every definition is an ``adrp`` read by nothing but references being moved, each such
  ``adrp`` gets the copy's page and each reference its low 12 bits (within +-4 GiB);
- otherwise the ``adrp`` stays and only the reference's immediate changes, which needs the
  copy on the same 4 KiB page (and, for a load or store, at a multiple of its access size);
- an ``adr`` carries the whole address (+-1 MiB); a reference whose base register holds the
  address another moved reference formed (``ldrb w1, [x0]`` after ``add x0, ...``) follows it.

What the proof assumes is kept on the safe side: every register field of an instruction may
be read unless its class says otherwise; only instructions known to write their destination
end a definition (a call may also keep a caller-saved register: GCC's interprocedural
register allocation relies on that); a call reads x0-x18 (every register when a landing pad
may follow it); a return, an indirect branch or a branch out of the function reads every
register; a block reached from nowhere known (the entry, a landing pad, a jump-table target)
starts with unknown values. Anything else is refused, with the reason. Every rewritten word
is decoded again with Capstone and must give the copy's address.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable

from wheelshade.native import arm64
from wheelshade.native.arm64 import ADD, ADR, ADRP, CALL, END, JUMP, LITERAL, MEM, MOV, Op
from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.site import Site

#: One rewritten instruction: (file offset, the word there now, the word to write).
Word = tuple[int, int, int]
Defs = frozenset[int]  # addresses of the instructions that may have set a register
_UNKNOWN = -1  # a value from outside the known flow
_ALL = frozenset(range(31))
_SCRATCH = frozenset(range(19))  # x0-x18: arguments, indirect result, scratch, platform
_PAGE = 0x1000


def plan(data: bytes, elf: Elf, sites: Iterable[Site], target: int) -> dict[Site, list[Word]] | str:
    """The words that make each of ``sites`` (arm64 references to one address) form
    ``target``, or why that cannot be proven (a phrase for a one-line refusal)."""
    starts = function_starts(data, elf)
    groups: dict[tuple[int, int, int], list[Site]] = {}
    for site in sites:
        bounds = _function(elf, starts, site.offset)
        if bounds is None:
            return f"the function holding the arm64 reference at {site.offset:#x} is not known"
        groups.setdefault(bounds, []).append(site)
    found: dict[Site, list[Word]] = {}
    for (start, end, shift), group in sorted(groups.items(), key=lambda g: g[0]):
        moved = _Function(data, start, end, shift).move(group, target)
        if isinstance(moved, str):
            return moved
        found.update(moved)
    return found


def rewrite(out: bytearray, words: Iterable[Word], path: str) -> None:
    """Write planned instruction words, each checked to hold what the plan read."""
    for offset, now, then in words:
        (word,) = struct.unpack_from("<I", out, offset)
        if word != now:
            raise ValueError(f"{path}: the instruction at {offset:#x} is not the one planned")
        struct.pack_into("<I", out, offset, then)


def _function(elf: Elf, starts: list[int], offset: int) -> tuple[int, int, int] | None:
    """(start, end, address - offset) of the function holding file offset ``offset``."""
    for section in elf.sections:
        if (section.type == SHT_PROGBITS and section.flags & SHF_EXECINSTR
                and section.offset <= offset < section.end):
            shift = section.addr - section.offset
            index = bisect.bisect_right(starts, offset + shift) - 1
            if index < 0 or starts[index] < section.addr:
                return None
            end = starts[index + 1] - shift if index + 1 < len(starts) else section.end
            return starts[index] - shift, min(end, section.end), shift
    return None


class _Function:
    """One function's blocks, with reaching definitions for the registers asked about."""

    def __init__(self, data: bytes, start: int, end: int, shift: int) -> None:
        self.data, self.shift = data, shift
        ops = arm64.decode(data, start, end, shift)
        self.ops = {op[0]: op for op in ops}
        self.blocks = arm64.blocks(ops)
        self.order = sorted(self.blocks)
        self.preds: dict[int, list[int]] = {b: [] for b in self.order}
        for b in self.order:
            for s in self.blocks[b].successors:
                self.preds[s].append(b)
        self.entries: dict[int, dict[int, Defs]] = {}  # register -> block -> defs on entry
        # A call reads the argument and scratch registers; where the function has blocks
        # reached from nowhere known (landing pads among them), a value kept across a call
        # in a callee-saved register may be read there too.
        self.call_reads = _ALL if any(not self.preds[b] for b in self.order[1:]) else _SCRATCH

    def move(self, sites: list[Site], target: int) -> dict[Site, list[Word]] | str:
        at = {s.offset + self.shift: s for s in sites}
        bases: dict[int, Defs] = {}
        for pc in at:
            op = self.ops.get(pc)
            if op is None or op[1] not in (ADR, ADD, MEM):
                return (f"the arm64 instruction at {pc:#x} reads the string's bytes (a literal "
                        "load), not its address")
            if op[1] == MEM and (self.word(pc) & 0x3B000000) != 0x39000000:
                return f"the offset of the arm64 load or store at {pc:#x} cannot be rewritten"
            if op[1] != ADR:
                bases[pc] = self.defs_at(pc, op[3])
        formers = {pc for pc in at if self.ops[pc][1] in (ADD, ADR)}
        # Reads through the address a moved reference formed move with it.
        derived = {pc for pc, defs in bases.items() if defs and defs <= formers - {pc}}
        pages: dict[int, int] = {}
        for pc, defs in bases.items():
            if pc in derived:
                continue
            if _UNKNOWN in defs or any(self.ops[d][1] != ADRP for d in defs):
                return (f"the base register of the arm64 reference at {pc:#x} is not set by an "
                        "adrp on every path to it")
            values = {self.ops[d][4] for d in defs}
            page = values.pop() if len(values) == 1 else None
            if page is None or page + (self.ops[pc][4] or 0) != at[pc].target:
                return f"the page the arm64 reference at {pc:#x} builds on is not one known page"
            pages[pc] = page
        uses = {d: self.uses(d) for pc in pages for d in bases[pc]}
        private = set(uses)
        while True:  # an adrp moves when all it serves move, and those need only such adrps
            whole = {pc for pc in pages if bases[pc] <= private}
            keep = {d for d in private if uses[d] <= whole}
            if keep == private:
                break
            private = keep
        words: dict[Site, list[Word]] = {s: [] for s in sites}
        paged: set[int] = set()  # adrps rewritten already (one may serve several references)
        for pc, site in sorted(at.items()):
            op, word = self.ops[pc], self.word(pc)
            if pc in derived:
                continue
            if op[1] == ADR:
                new = _pc_relative(word, target - pc)
                if new is None:
                    return (f"the copy at {target:#x} is out of reach (+-1 MiB) of the arm64 adr "
                            f"at {pc:#x}")
                words[site].append(self.checked(pc, word, new, target))
                continue
            if bases[pc] <= private:
                offset = target % _PAGE
                for d in sorted(bases[pc] - paged):
                    paged.add(d)
                    new = _pc_relative(self.word(d), target // _PAGE - d // _PAGE)
                    if new is None:
                        return (f"the copy at {target:#x} is out of reach (+-4 GiB) of the adrp "
                                f"at {d:#x}")
                    words[site].append(self.checked(d, self.word(d), new, target & -_PAGE))
            else:
                offset = target - pages[pc]
                others = len(set().union(*(uses[d] for d in bases[pc])) - {pc})
                if not 0 <= offset < _PAGE:
                    return (f"the adrp that the arm64 reference at {pc:#x} builds on serves "
                            f"{others} other instruction(s) too, and the copy at {target:#x} "
                            "is not on its page")
            new = _immediate(word, op, offset)
            if new is None:
                return (f"the copy at {target:#x} is not aligned for the arm64 load or store at "
                        f"{pc:#x}")
            words[site].append(self.checked(pc, word, new, offset))
        return words

    def word(self, pc: int) -> int:
        return int.from_bytes(self.data[pc - self.shift:pc - self.shift + 4], "little")

    def checked(self, pc: int, word: int, new: int, expect: int) -> Word:
        """The rewrite, after Capstone reads ``expect`` from the new word (the page of an
        ``adrp``, the address of an ``adr``, the immediate of an ``add``, load or store)."""
        from capstone import arm64 as a64

        insn = next(arm64.disassembler().disasm(new.to_bytes(4, "little"), pc), None)
        ops = insn.operands if insn is not None else []
        got = [int(o.mem.disp) if o.type == a64.ARM64_OP_MEM else int(o.imm) for o in ops
               if o.type in (a64.ARM64_OP_IMM, a64.ARM64_OP_MEM)]
        if got != [expect]:  # pragma: no cover - an encoding bug, never a guess
            raise AssertionError(f"rewriting {word:#010x} at {pc:#x} as {new:#010x} reads "
                                 f"{got}, not {expect:#x}")
        return pc - self.shift, word, new

    def defs_at(self, pc: int, reg: int) -> Defs:
        """Instructions whose value of ``reg`` may reach the instruction at ``pc``."""
        block = self.order[bisect.bisect_right(self.order, pc) - 1]
        defs = self.entry(reg).get(block, frozenset({_UNKNOWN}))
        for op in self.blocks[block].ops:
            if op[0] == pc:
                break
            defs = self.gen(op, reg, defs)
        return defs

    def uses(self, d: int) -> set[int]:
        """Instructions that may read the register the instruction at ``d`` writes (a
        block that leaves the known flow with it counts as a use at its last one)."""
        reg = self.ops[d][2]
        entry = self.entry(reg)
        found: set[int] = set()
        for b in self.order:
            defs = entry.get(b, frozenset())
            ops = self.blocks[b].ops
            for op in ops:
                if d in defs and reg in self.reads(op):
                    found.add(op[0])
                defs = self.gen(op, reg, defs)
            last = ops[-1]
            falls = last[1] not in (END, JUMP) or last[7]  # on to the next instruction
            if d in defs and falls and last[0] + 4 not in self.blocks[b].successors:
                found.add(last[0])  # out of the decoded function
        return found

    def entry(self, reg: int) -> dict[int, Defs]:
        """Definitions of ``reg`` on entry to each block (a fixed point of unions)."""
        if reg in self.entries:
            return self.entries[reg]
        entries: dict[int, Defs] = {}
        exits: dict[int, Defs] = {}
        first = self.order[0]
        work, queued = list(reversed(self.order)), set(self.order)
        while work:
            b = work.pop()
            queued.discard(b)
            known = [exits[p] for p in self.preds[b] if p in exits]
            if b == first or not self.preds[b]:
                known.append(frozenset({_UNKNOWN}))
            if not known:
                continue
            defs = entries[b] = frozenset().union(*known)
            for op in self.blocks[b].ops:
                defs = self.gen(op, reg, defs)
            if exits.get(b) != defs:
                exits[b] = defs
                for s in self.blocks[b].successors:
                    if s not in queued:
                        work.append(s)
                        queued.add(s)
        self.entries[reg] = entries
        return entries

    def gen(self, op: Op, reg: int, defs: Defs) -> Defs:
        if op[1] == CALL:  # may clobber the caller-saved ones (or keep them: GCC's IPA-RA)
            return defs | {op[0]} if reg in arm64.CALLER_SAVED else defs
        if reg not in op[5]:
            return defs
        return frozenset({op[0]}) if _sure(op, self.word(op[0])) else defs | {op[0]}

    def reads(self, op: Op) -> frozenset[int]:
        """The registers the instruction may read, on the safe side."""
        kind, word = op[1], self.word(op[0])
        if kind in (ADRP, ADR, LITERAL):
            return frozenset()
        if kind in (ADD, MOV):
            return frozenset({op[3]})
        if kind == CALL:
            return self.call_reads
        if kind == END or (kind == JUMP and op[6] not in self.ops):
            return _ALL
        if kind == JUMP:  # CBZ, CBNZ, TBZ, TBNZ test a register; B and B.cond none
            tests = (word & 0x7E000000) in (0x34000000, 0x36000000)
            return frozenset({word & 31}) if tests else frozenset()
        return _read_fields(word)


def _read_fields(w: int) -> frozenset[int]:
    """The register fields an instruction may read (all of them unless its class is known)."""
    rd, rn, ra, rm = w & 31, (w >> 5) & 31, (w >> 10) & 31, (w >> 16) & 31
    if (w & 0xFF000000) == 0xD4000000:  # SVC and the like: the kernel reads x0-x8
        return _ALL
    if (w & 0x1C000000) == 0x10000000:  # data processing, immediate
        if (w & 0x1F800000) == 0x12800000:  # move wide: only MOVK keeps bits of Rd
            return frozenset({rd}) if (w >> 29) & 3 == 3 else frozenset()
        if (w & 0x1F800000) == 0x13000000:  # bitfield: BFM inserts into Rd
            return frozenset({rd, rn}) if (w >> 29) & 3 == 1 else frozenset({rn})
        return frozenset({rn, rm}) if (w & 0x1F800000) == 0x13800000 else frozenset({rn})
    if (w & 0x0E000000) == 0x0A000000:  # data processing, register
        if (w & 0x1F000000) == 0x1B000000:  # 3-source: Ra too
            return frozenset({rn, rm, ra})
        if (w & 0x5FE00000) == 0x5AC00000:  # 1-source (PAC and AUT change Rd in place)
            return frozenset({rd, rn})
        return frozenset({rn, rm})
    if (w & 0x0A000000) == 0x08000000:  # loads and stores: a load's Rt is only written
        vector, size, opc = bool(w & 0x04000000), w >> 30, (w >> 22) & 3
        loads = not vector and opc != 0 and not (size == 3 and opc == 2)
        if (w & 0x3A000000) == 0x28000000:  # pair
            return frozenset({rn}) if w & 0x400000 else frozenset({rn, rd, ra})
        if (w & 0x3B000000) == 0x39000000 or (w & 0x3B200000) == 0x38000000:
            return frozenset({rn}) if loads else frozenset({rn, rd})
        if (w & 0x3B200C00) == 0x38200800:  # register offset
            return frozenset({rn, rm}) if loads else frozenset({rn, rm, rd})
    return frozenset({rd, rn, ra, rm})


def _sure(op: Op, w: int) -> bool:
    """True when the instruction certainly writes the registers arm64 says it writes."""
    if op[1] in (ADRP, ADR, ADD, MOV, MEM, LITERAL):
        return True
    if (w & 0x0A000000) == 0x08000000:  # other loads and stores
        return (w & 0x3B200C00) == 0x38200800 or (w & 0xBE000000) == 0x0C000000
    return (
        (w & 0x1C000000) == 0x10000000  # data processing, immediate: all write Rd
        or (w & 0x1F000000) in (0x0A000000, 0x0B000000, 0x1B000000)  # logical, add, 3-source
        or (w & 0x1FE0FC00) == 0x1A000000  # ADC, SBC
        or (w & 0x1FE00000) == 0x1A800000  # CSEL and friends
        or (w & 0x5FE00000) in (0x1AC00000, 0x5AC00000)  # 2-source, 1-source
        or (w & 0xFFE00000) == 0xD5200000  # MRS, SYSL
    )


def _pc_relative(word: int, imm: int) -> int | None:
    """An ADR (bytes) or ADRP (pages) with immediate ``imm``, if it fits 21 signed bits."""
    if not -(1 << 20) <= imm < 1 << 20:
        return None
    return (word & 0x9F00001F) | ((imm & 3) << 29) | (((imm >> 2) & 0x7FFFF) << 5)


def _immediate(word: int, op: Op, offset: int) -> int | None:
    """An ADD (immediate) or a load/store (unsigned offset) with a new offset."""
    if op[1] == ADD:
        return (word & ~(0x40000000 | 0xFFF << 10)) | (offset << 10)
    vector, size, opc = bool(word & 0x04000000), word >> 30, (word >> 22) & 3
    scale = (size | (opc & 2) << 1) if vector else size
    if offset % (1 << scale):
        return None
    return (word & ~(0xFFF << 10)) | ((offset >> scale) << 10)
