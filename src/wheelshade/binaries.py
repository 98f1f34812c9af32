"""Compiled modules: classify a binary and find the shaded names it embeds (strings, symbols)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .elf import Elf, Section, read_elf

InitPhase = Literal["single", "multi", "unknown"]
RefKind = Literal["string", "symbol", "tail", "unbounded"]

INIT_PREFIX = "PyInit_"

_DOTTED_TAIL = re.compile(rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_CYTHON_ABI = re.compile(rb"\x00_cython_(\d+)_(\d+)_?([0-9a-z_]*?)(?=[\x00.])")
_MYPYC = re.compile(rb"CPyInit_|__mypyc\b|CPyStatics|CPyModule_")
_IDENT_BYTES = frozenset(
    bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."
)
#: Longest embedded string kept in a Reference (for display).
_MAX_STRING = 512


@dataclass(frozen=True)
class Reference:
    """One place where a binary names a shaded top-level ``name``.

    ``offset`` is the file offset of the first byte of ``name`` itself (not of ``string``), so
    a same-length replacement writes exactly ``data[offset:offset + len(name)]``. ``kind``:
    ``string`` (a NUL-bounded C string), ``symbol`` (``PyInit_<name>`` in ``.dynstr``),
    ``tail`` (ends a longer identifier or path: ``"to_numpy"``) or ``unbounded`` (follows a
    non-identifier byte that is not NUL: ``"init numpy"``, or a string placed right after
    binary data such as the float before ``"\\x80@numpy._core"`` in matplotlib's ft2font).
    """

    name: str
    offset: int
    string: str
    section: str
    kind: RefKind


@dataclass(frozen=True)
class BinaryInfo:
    """What a compiled file is, and every place it names a module of the shading set."""

    path: str
    bits: int
    byte_order: str
    machine: str
    #: ``PyInit_*`` symbols the file defines (an extension module has exactly one).
    init_symbols: tuple[str, ...]
    init_phase: InitPhase
    cython: bool
    #: e.g. ``"0.29.36"`` or ``"3.1.2"``, from Cython's shared-ABI module name.
    cython_version: str | None
    mypyc: bool
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    needed: tuple[str, ...]
    soname: str | None
    #: Token-bounded C strings (``\0T\0``, ``\0T.x``) and ``PyInit_T`` symbols: safe to patch.
    references: tuple[Reference, ...]
    #: ``T\0`` or ``T.x\0`` not preceded by NUL (kinds ``tail`` and ``unbounded``): a linker
    #: may have merged a standalone ``"T"`` into the end of a longer string, and code then
    #: points into its middle (pandas' ``"to_numpy"``). Patching only ``references`` would
    #: leave such a use on the original; without disassembly nobody can tell, so refuse.
    suspects: tuple[Reference, ...]

    @property
    def module_name(self) -> str | None:
        """The extension-module name its init symbol gives, or None (a plain library).

        mypyc shims also define a dummy ``PyInit___init__``, which does not count.
        """
        real = [s for s in self.init_symbols if s != "PyInit___init__"] or self.init_symbols
        if len(real) != 1:
            return None
        return real[0].removeprefix(INIT_PREFIX)

    @property
    def opaque_strings(self) -> bool:
        """True when names may hide where no scan finds them.

        Cython 3.1+ stores all string constants of a module in one blob without NUL
        separators (lengths live in code), and may compress it: ``"pkgpkg.modpkg.other"``
        has no token boundaries, so ``references`` is incomplete. A Cython module whose
        version cannot be read is treated the same way.
        """
        if not self.cython:
            return False
        if self.cython_version is None:
            return True
        major, minor = (int(p) for p in self.cython_version.split(".")[:2])
        return (major, minor) >= (3, 1)

    @property
    def names(self) -> tuple[str, ...]:
        """Shaded names this file refers to, sorted (suspects included)."""
        return tuple(sorted({r.name for r in self.references + self.suspects}))


def classify(data: bytes, path: str, names: Iterable[str]) -> BinaryInfo:
    """Read the ELF file ``data`` (its archive path ``path``) and find references to ``names``.

    Only allocated non-executable data sections (``.rodata``, ``.data.rel.ro``, ``.data``)
    and the dynamic symbol names are searched, never code or debug info. Raises
    UnsupportedBinary for Mach-O, PE and unknown files, BinaryFormatError for broken ELF.
    """
    elf = read_elf(data, path)
    wanted = sorted({n for n in names if n})
    references: list[Reference] = []
    suspects: list[Reference] = []
    for section in elf.data_sections:
        for name in wanted:
            for ref in _scan(data, section, name):
                (references if ref.kind == "string" else suspects).append(ref)
    for symbol in elf.symbols:
        if symbol.name.startswith(INIT_PREFIX):
            target = symbol.name.removeprefix(INIT_PREFIX)
            if target in wanted:
                references.append(Reference(
                    target, symbol.name_offset + len(INIT_PREFIX), symbol.name, ".dynstr", "symbol"
                ))
    blob = b"".join(data[s.offset:s.end] for s in elf.data_sections)
    cython_version = _cython_version(blob)
    return BinaryInfo(
        path=path,
        bits=elf.bits,
        byte_order=elf.byte_order,
        machine=elf.machine,
        init_symbols=tuple(sorted(
            s.name for s in elf.symbols if s.defined and s.name.startswith(INIT_PREFIX)
        )),
        init_phase=_init_phase(elf),
        cython=cython_version is not None or any(s.name.startswith("__pyx_") for s in elf.symbols),
        cython_version=cython_version,
        mypyc=any(s.name.startswith("CPyInit_") for s in elf.symbols)
        or _MYPYC.search(blob) is not None,
        rpath=elf.rpath,
        runpath=elf.runpath,
        needed=elf.needed,
        soname=elf.soname,
        references=tuple(sorted(references, key=lambda r: r.offset)),
        suspects=tuple(sorted(suspects, key=lambda r: r.offset)),
    )


def _scan(data: bytes, section: Section, name: str) -> Iterable[Reference]:
    """Each occurrence of ``name`` in ``section`` that can be a module path (see Reference)."""
    raw = name.encode("utf-8")
    body = data[section.offset:section.end]
    at = body.find(raw)
    while at >= 0:
        after = at + len(raw)
        nxt = body[after:after + 1]
        if nxt in (b"\x00", b"."):
            start = body.rfind(b"\x00", 0, at) + 1
            stop = body.find(b"\x00", after)
            stop = len(body) if stop < 0 else stop
            text = body[start:min(stop, start + _MAX_STRING)].decode("utf-8", "backslashreplace")
            kind: RefKind = "string"
            if start != at:
                kind = "tail" if body[at - 1:at] in _IDENT_BYTES else "unbounded"
            if kind == "string" or _DOTTED_TAIL.match(body, after, stop):
                yield Reference(name, section.offset + at, text, section.name, kind)
        at = body.find(raw, at + 1)


def _init_phase(elf: Elf) -> InitPhase:
    imported = {s.name for s in elf.symbols if not s.defined}
    multi = "PyModuleDef_Init" in imported
    single = bool(imported & {"PyModule_Create2", "PyModule_Create2TracedRefs"})
    if multi and not single:
        return "multi"
    if single and not multi:
        return "single"
    return "unknown"


def _cython_version(blob: bytes) -> str | None:
    match = _CYTHON_ABI.search(blob)
    if match is None:
        return None
    major, minor, rest = (g.decode("ascii") for g in match.groups())
    micro = rest.split("_")[0] if rest and rest[0].isdigit() else ""
    return f"{major}.{minor}.{micro}" if micro else f"{major}.{minor}"


def embedded_names(data: bytes, names: Iterable[str]) -> tuple[str, ...]:
    """Top-level names that occur in ``data`` as a NUL-bounded module path.

    C strings such as ``"markupsafe"`` or ``"jinja2.runtime"`` sit between NUL bytes in a
    binary's read-only data; a C extension that imports its own package by such a
    string would load the *unshaded* package after a rename. ``PyInit_<name>`` is the
    init symbol of a top-level extension module. Works on any bytes (no ELF parsing).
    """
    found: list[str] = []
    for name in sorted(set(names)):
        raw = re.escape(name.encode("ascii"))
        pattern = rb"(?:\x00|PyInit_)" + raw + rb"(?:\x00|\.[A-Za-z_])"
        if re.search(pattern, data):
            found.append(name)
    return tuple(found)
