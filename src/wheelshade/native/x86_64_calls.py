"""What a string's address is passed to: the C-API call a code reference feeds (x86-64),
and the length passed with it.

A bare C string equal to a package's name is not always a module name. greenlet registers its
type as an attribute of its own module, ``PyModule_AddObjectRef(m, "greenlet", type)``:
renaming that string renames the attribute, and ``from greenlet._greenlet import greenlet``
breaks. So for a code reference (``lea rsi, [rip + "greenlet"]``) this follows the register
it loads, through plain register copies, to the next call, and names the callee when it is
an imported function (through the PLT or the GOT) that takes the string as an attribute or
key name. A PE image passes the second argument in rdx (Windows x64: rcx, rdx, r8, r9) and
calls imports through its import address table (``call [rip + slot]``, or a ``jmp [rip +
slot]`` thunk), whose slots name them as GOT slots do.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wheelshade.native import refs
from wheelshade.native import x86_64_frame as frame
from wheelshade.native.arm64_calls import Arm64Calls
from wheelshade.native.elf import SHF_EXECINSTR, SHT_PROGBITS, Elf, function_starts
from wheelshade.native.pe import read_tables

if TYPE_CHECKING:
    from capstone import CsInsn

R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT = 6, 7
SHT_RELA = 4
#: C-API functions whose second argument is an attribute or dictionary key name.
NAME_ARGUMENT = frozenset({
    "PyModule_AddObjectRef", "PyModule_AddObject", "PyModule_Add", "PyModule_AddIntConstant",
    "PyModule_AddStringConstant", "PyModule_AddType", "PyObject_GetAttrString",
    "PyObject_SetAttrString", "PyObject_HasAttrString", "PyObject_HasAttrStringWithError",
    "PyObject_DelAttrString", "PyDict_GetItemString", "PyDict_SetItemString",
    "PyDict_DelItemString", "PyDict_GetItemStringRef",
})
#: C-API functions whose first argument is a module path, or a name whose module part is
#: one (an exception's ``"pkg.Error"``, a capsule's ``"pkg._C_API"``: PyCapsule_Import
#: imports ``pkg`` for it).
MODULE_ARGUMENT = frozenset({
    "PyImport_ImportModule", "PyImport_ImportModuleNoBlock", "PyImport_ImportModuleLevel",
    "PyImport_AddModule", "PyImport_AddModuleRef", "PyCapsule_Import",
    "PyErr_NewException", "PyErr_NewExceptionWithDoc",
})
#: C-API functions whose second argument is a capsule's name, which must stay equal to the
#: name PyCapsule_Import is given.
CAPSULE_NAME = frozenset({"PyCapsule_New", "PyCapsule_GetPointer", "PyCapsule_IsValid"})
#: How many instructions after the reference the call may come.
_WINDOW = 16
#: How many bytes around a reference its length may be set.
_NEAR = 40
_PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
_THUNK = re.compile(rb"\xff\x25", re.DOTALL)


class Calls:
    """Call targets of one binary, read once (its PLT stubs and GOT slots)."""

    def __init__(self, data: bytes, elf: Elf) -> None:
        self.data, self.elf = data, elf
        self._slots: dict[int, str] | None = None
        self._stubs: dict[int, str] | None = None
        self._starts: list[int] | None = None
        self._arm64: Arm64Calls | None = None

    def arm64(self) -> Arm64Calls:
        if self._arm64 is None:
            self._arm64 = Arm64Calls(self.data, self.elf)
        return self._arm64

    def name_argument_of(self, site: refs.Site) -> str | None:
        """The imported function in NAME_ARGUMENT that the code reference ``site`` passes
        its address to as the second argument, or None (another use, or not known)."""
        callee, holding = self._call_after(site)
        return callee if callee in NAME_ARGUMENT and self._argument(site, 2) in holding else None

    def module_argument_of(self, site: refs.Site) -> str | None:
        """The imported function in MODULE_ARGUMENT (CAPSULE_NAME) that the code reference
        ``site`` passes its address to as the first (second) argument, or None."""
        callee, holding = self._call_after(site)
        if callee in MODULE_ARGUMENT and self._argument(site, 1) in holding:
            return callee
        if callee in CAPSULE_NAME and self._argument(site, 2) in holding:
            return callee
        return None

    def _argument(self, site: refs.Site, number: int) -> str:
        """The register a call's argument ``number`` (1 or 2) is passed in at ``site``."""
        return f"x{number - 1}" if site.kind == "arm64" else refs.argument(self.elf, number)

    def _call_after(self, site: refs.Site) -> tuple[str | None, frozenset[str]]:
        """The imported function called next after ``site`` and the registers holding its
        address there; (None, empty) for another use, a branch first, or not known."""
        if site.kind == "arm64":
            return self.arm64().call_after(site)
        if site.kind != "code":
            return None, frozenset()
        holding: set[str] = set()
        after = 0
        for insn in self._code_to(site, site.base + 8 * _WINDOW):
            if not holding:
                if insn.address + insn.size == site.base and insn.mnemonic == "lea":
                    holding = {_family(insn.op_str.split(",")[0])}
                continue
            after += 1
            if after > _WINDOW or insn.mnemonic.startswith(("j", "ret")):
                return None, frozenset()
            if insn.mnemonic == "call":
                return self._callee(insn), frozenset(holding)
            _track(insn, holding)
        return None, frozenset()

    def passes_length(self, site: refs.Site, length: int) -> bool:
        """True if the reference ``site`` comes with ``length`` (see lengths)."""
        return length in self.lengths(site)

    def lengths(self, site: refs.Site) -> frozenset[int]:
        """The lengths the reference ``site`` may come with: an immediate loaded into a
        register near a code reference, or the word after a stored pointer. That is how a
        Rust ``&str`` (pointer and length) is passed and stored, so the literal that starts
        at the referenced byte is one of these lengths long (empty: not known)."""
        if site.kind in ("relocation", "pointer"):
            stored = self._stored_length(site)
            return frozenset() if stored is None else frozenset({stored})
        if site.kind == "arm64":
            return self.arm64().lengths(site)
        if site.kind != "code":
            return frozenset()
        from capstone import x86

        found: set[int] = set()
        for insn in self._code_to(site, site.base + _NEAR):
            if insn.address + _NEAR < site.base:
                continue
            ops = insn.operands
            if (insn.mnemonic == "mov" and len(ops) == 2 and ops[0].type == x86.X86_OP_REG
                    and ops[1].type == x86.X86_OP_IMM):
                found.add(int(ops[1].imm))
        return frozenset(found)

    def _code_to(self, site: refs.Site, until: int) -> Iterator[CsInsn]:
        """The instructions of the function holding ``site``, from its start to ``until``."""
        if self._starts is None:
            self._starts = function_starts(self.data, self.elf)
        start = frame.function_containing(self._starts, site.base)
        if start is not None:
            yield from frame.instructions(self.data, self.elf, start, until)

    def _stored_length(self, site: refs.Site) -> int | None:
        """The word after a stored pointer: a ``&'static str`` in data is (pointer, length)."""
        at: int | None = site.offset
        if site.kind == "relocation":  # the site is the RELA entry's addend: its r_offset
            (where,) = struct.unpack_from("<Q", self.data, site.offset - 16)
            at = refs.offset_of(self.elf, where)
        if at is None or at + 16 > len(self.data):
            return None
        (value,) = struct.unpack_from("<Q", self.data, at + 8)
        return int(value)

    def _callee(self, insn: CsInsn) -> str | None:
        from capstone import x86

        if len(insn.operands) != 1:
            return None
        (op,) = insn.operands
        if op.type == x86.X86_OP_IMM:
            return self.stubs().get(int(op.imm))
        if op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP:  # -fno-plt
            return self.slots().get(int(insn.address + insn.size + op.mem.disp))
        return None

    def slots(self) -> dict[int, str]:
        """GOT entry address -> the dynamic symbol the loader writes there (in a PE image:
        import address table slot -> the imported function)."""
        if self._slots is None and self.elf.format == "PE":
            self._slots = dict(read_tables(self.data, self.elf.path).slots)
        if self._slots is None:
            names = {s.index: s.name for s in self.elf.symbols}
            self._slots = dict(self.elf.imports)  # Mach-O: symbol pointers
            for section in self.elf.sections:
                if section.type != SHT_RELA or not section.size:
                    continue
                step = section.entsize or 24
                for at in range(section.offset, section.end - step + 1, step):
                    where, info, _ = struct.unpack_from("<QQq", self.data, at)
                    name = names.get(info >> 32)
                    if info & 0xFFFFFFFF in (R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT) and name:
                        self._slots[where] = name
        return self._slots

    def stubs(self) -> dict[int, str]:
        """PLT entry address -> the symbol it jumps to (``[endbr64;] jmp [rip + GOT]``)."""
        if self._stubs is None and self.elf.format == "PE":
            # A PE image has no PLT; calls not declared dllimport go through a thunk
            # (``jmp [rip + IAT slot]``) in its code.
            self._stubs = {}
            for code in self.elf.sections:
                if code.flags & SHF_EXECINSTR and code.type == SHT_PROGBITS:
                    self._stubs.update(self._plt_entries(code.offset, code.end, code.addr,
                                                         thunks=True))
        if self._stubs is None:
            self._stubs = dict(self.elf.imports)  # Mach-O: stubs
            for name in _PLT_SECTIONS:
                section = self.elf.section(name)
                if section is not None and section.size:
                    self._stubs.update(self._plt_entries(section.offset, section.end,
                                                         section.addr))
        return self._stubs

    def _plt_entries(
        self, start: int, end: int, address: int, thunks: bool = False
    ) -> dict[int, str]:
        from capstone import x86

        found: dict[int, str] = {}
        entry = None
        if thunks:  # only the ``jmp [rip + disp32]`` instructions, not the whole code
            for at in (m.start() for m in _THUNK.finditer(self.data, start, end - 5)):
                (disp,) = struct.unpack_from("<i", self.data, at + 2)
                target = self.slots().get(address + at - start + 6 + disp)
                if target is not None:
                    found[address + at - start] = target
            return found
        for insn in refs.disassembler().disasm(self.data[start:end], address):
            if insn.mnemonic == "endbr64":
                entry = insn.address
                continue
            op = insn.operands[0] if insn.operands else None
            if insn.mnemonic.endswith("jmp") and op is not None and (
                op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP
            ):
                target = self.slots().get(int(insn.address + insn.size + op.mem.disp))
                if target is not None:
                    found[insn.address] = target
                    if entry is not None:
                        found[entry] = target
            entry = None
        return found


def _track(insn: CsInsn, holding: set[str]) -> None:
    """Follow the string's address through ``mov reg, reg``; drop registers overwritten."""
    operands = [part.strip() for part in insn.op_str.split(",")]
    if insn.mnemonic == "mov" and len(operands) == 2 and _family(operands[1]) in holding:
        holding.add(_family(operands[0]))
        return
    holding -= _written(insn)


def _written(insn: CsInsn) -> set[str]:
    try:
        _, regs = insn.regs_access()
    except Exception:  # capstone raises its own error type (CsError)
        return set()
    return {_family(insn.reg_name(r)) for r in regs}


def _family(name: str) -> str:
    reg = frame.register(name)
    return reg if reg is not None else name
