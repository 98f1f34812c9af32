"""Classify a compiled file and find every place it names a module of the shading set."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from wheelshade.native import codesign, cytable
from wheelshade.native.elf import Elf, Section, read_elf
from wheelshade.native.macho import looks_macho, read_macho
from wheelshade.native.model import (
    IDENT_BYTES,
    INIT_PREFIX,
    BinaryInfo,
    InitPhase,
    Reference,
    RefKind,
)
from wheelshade.native.pe import is_pe, read_layout, read_pe
from wheelshade.native.rust import is_rust, rust_words
from wheelshade.native.verdicts import resolve
from wheelshade.proof import ModuleProof

_DOTTED_TAIL = re.compile(rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_DOTTED_RUN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CYTHON_ABI = re.compile(rb"\x00_cython_(\d+)_(\d+)_?([0-9a-z_]*?)(?=[\x00.])")
_MYPYC = re.compile(rb"CPyInit_|__mypyc\b|CPyStatics|CPyModule_")
_SEPARATE_MARKERS = (b"\0cline_in_traceback\0", b"\0__test__\0")
_T = TypeVar("_T")
#: Mach-O's ``$ORIGIN``: load-command paths that start so move with the module.
_LOADER = "@loader_path/"
#: Where each format keeps the ``PyInit_`` name (a "symbol" Reference's section).
_SYMBOL_TABLES = {"ELF": ".dynstr", "PE": ".edata", "Mach-O": "LC_SYMTAB"}
#: Longest embedded string kept in a Reference (for display).
_MAX_STRING = 512


def classify(
    data: bytes, path: str, names: Iterable[str], proof: ModuleProof | None = None
) -> BinaryInfo:
    """Read the ELF, PE or Mach-O file ``data`` (its archive path ``path``) and find
    references to ``names``.

    With ``proof``, a string that continues a name with a dotted path is a reference only
    when the set shows that path to be a module path (see ModuleProof.native); the others
    are left as they are (verdict ``unproven``, in ``embedded``). Rust literals run
    together without terminators, so where one ends is not known here: they are all kept.

    Only allocated non-executable data sections (``.rodata``, ``.data.rel.ro``, ``.data``;
    ``.rdata``, ``.data`` in PE; ``__cstring``, ``__const``, ``__data`` in Mach-O) and the
    dynamic symbol (export) names are searched, never code or debug info. Each slice of a
    fat Mach-O file is classified on its own, with the same code, and the findings joined.
    Raises UnsupportedBinary for unknown files, BinaryFormatError for broken ones.
    """
    wanted = sorted({n for n in names if n})
    if looks_macho(data):
        infos = [
            replace(_classify(data, s.elf, path, wanted, proof), format="Mach-O",
                    signed=codesign.is_certificate_signed(data[s.offset:s.end]),
                    runpath=tuple(d.path for d in s.dylibs if d.path.startswith(_LOADER)))
            for s in read_macho(data, path)
        ]
        return infos[0] if len(infos) == 1 else _joined(infos)
    elf = read_pe(data, path) if is_pe(data) else read_elf(data, path)
    return _classify(data, elf, path, wanted, proof)


def _classify(
    data: bytes, elf: Elf, path: str, wanted: list[str], proof: ModuleProof | None = None
) -> BinaryInfo:
    blob = b"".join(data[s.offset:s.end] for s in elf.data_sections)
    mypyc = any(s.name.startswith("CPyInit_") for s in elf.symbols) or _MYPYC.search(blob)
    found = [
        ref for s in elf.data_sections for name in wanted
        for ref in _scan(data, s, name, length_prefixed=bool(mypyc))
    ]
    cython_version = _cython_version(blob)
    # Cython modules without a shared-ABI module name (0.29, or built without it) and
    # without exported __pyx_ symbols still create "cython_runtime".
    cython = (cython_version is not None or b"\0cython_runtime\0" in blob
              or any(s.name.startswith("__pyx_") for s in elf.symbols))
    separate = all(m in blob for m in _SEPARATE_MARKERS)
    readable, tables = True, list[cytable.Table]()
    if cython:
        tables, unreadable = cytable.read(data, elf, wanted)
        separate = separate and not tables and not unreadable
        # A module has one table: once it is read, a zstd-like run of bytes elsewhere is
        # some other data.
        readable = separate or bool(tables)
        tables = [t for t in tables if any(n.encode("utf-8") in t.text for n in wanted)]
        # A table's own bytes are rewritten as a whole, never as C strings.
        found = [r for r in found
                 if not any(t.offset <= r.offset < t.offset + t.size for t in tables)]
    rust = is_rust(data)
    inits = sorted(s.name for s in elf.symbols if s.defined and s.name.startswith(INIT_PREFIX))
    if proof is not None and not rust:
        own = frozenset(s.removeprefix(INIT_PREFIX) for s in inits)
        found = _marked(data, found, proof, own)
        tables = [replace(t, declined=_declined(t, wanted, proof)) for t in tables]
        tables = [t for t in tables if t.module_paths(wanted) or t.unsplit(wanted)]
    words, run_on = rust_words(data, elf, wanted, found) if rust else ([], frozenset())
    references, suspects, embedded, redirects, appended = resolve(
        data, elf, found, cython=cython, rust=rust, words=words, run_on=run_on
    )
    for symbol in elf.symbols:
        if symbol.name.startswith(INIT_PREFIX):
            target = symbol.name.removeprefix(INIT_PREFIX)
            if target in wanted:
                references.append(Reference(
                    target, symbol.name_offset + len(INIT_PREFIX), symbol.name,
                    _SYMBOL_TABLES[elf.format], "symbol"
                ))
    return BinaryInfo(
        path=path,
        bits=elf.bits,
        byte_order=elf.byte_order,
        machine=elf.machine,
        init_symbols=tuple(inits),
        init_phase=_init_phase(elf),
        cython=cython,
        cython_version=cython_version,
        cython_strings_separate=separate,
        packed_readable=readable,
        tables=tuple(tables),
        watched=tuple(wanted),
        mypyc=bool(mypyc),
        rpath=elf.rpath,
        runpath=elf.runpath,
        needed=elf.needed,
        soname=elf.soname,
        references=tuple(sorted(references, key=lambda r: r.offset)),
        suspects=tuple(sorted(suspects, key=lambda r: r.offset)),
        embedded=tuple(sorted(embedded, key=lambda r: r.offset)),
        redirects=tuple(redirects),
        appended=tuple(appended),
        signed=elf.format == "PE" and read_layout(data, path).security[1] > 0,
        format=elf.format,
    )


def _joined(infos: list[BinaryInfo]) -> BinaryInfo:
    """One BinaryInfo for the slices of a fat file: every occurrence of each slice (their
    offsets are in the whole file already), the slices' machines joined with ``+``."""
    first = infos[0]

    def every(pick: Callable[[BinaryInfo], tuple[_T, ...]]) -> tuple[_T, ...]:
        return tuple(x for info in infos for x in pick(info))

    phases = {i.init_phase for i in infos}
    return replace(
        first,
        machine="+".join(i.machine for i in infos),
        init_symbols=tuple(sorted(set(every(lambda i: i.init_symbols)))),
        init_phase=first.init_phase if len(phases) == 1 else "unknown",
        cython=any(i.cython for i in infos),
        cython_strings_separate=all(i.cython_strings_separate for i in infos),
        packed_readable=all(i.packed_readable for i in infos),
        mypyc=any(i.mypyc for i in infos),
        needed=tuple(dict.fromkeys(every(lambda i: i.needed))),
        runpath=tuple(dict.fromkeys(every(lambda i: i.runpath))),
        references=every(lambda i: i.references), suspects=every(lambda i: i.suspects),
        embedded=every(lambda i: i.embedded), redirects=every(lambda i: i.redirects),
        appended=every(lambda i: i.appended), tables=every(lambda i: i.tables),
        signed=any(i.signed for i in infos),
    )


def _marked(
    data: bytes, found: list[Reference], proof: ModuleProof, own: frozenset[str]
) -> list[Reference]:
    """``found`` with the occurrences the set does not show to be module paths marked
    ``unproven``: left alone unless the code passes them to a call that takes a module
    path (see verdicts.resolve). A path through the file's own module name (``own``, from
    its ``PyInit_`` symbol) is the module's qualified name as it was built, and those of its
    types: Cython's ``"pkg.clib._ext"`` for a module installed as top-level ``_ext``."""
    out = []
    for ref in found:
        if ref.counted:
            text = ref.string.encode("utf-8", "backslashreplace")
        else:
            run = _DOTTED_RUN.match(data, ref.offset)
            end = run.end() if run else ref.offset + len(ref.name)
            text = data[ref.offset:end + (data[end:end + 1] == b".")]
        path = text.decode("utf-8", "replace")
        proven = proof.native(path) or not own.isdisjoint(path.split(".")[1:])
        out.append(ref if proven else replace(
            ref, verdict="unproven", detail=f"{path!r}: no module of the set, nor a name bound "
            "in one, nor passed to a call that takes a module path"))
    return out


def _declined(table: cytable.Table, names: list[str], proof: ModuleProof) -> frozenset[int]:
    """Where a packed table's constants start that are under a shaded name (``name.``) but
    not proven module paths: left as they are."""
    heads = tuple(n.encode("utf-8") + b"." for n in names)
    return frozenset(
        start for start, string in table.strings()
        if string.startswith(heads)
        and not proof.native(string.decode("utf-8", "replace"))
    )


def _scan(
    data: bytes, section: Section, name: str, *, length_prefixed: bool = False
) -> Iterable[Reference]:
    """Each occurrence of ``name`` in ``section`` that can be a module path (see Reference).

    ``length_prefixed``: mypyc also keeps string literals as a length byte followed by the
    text, no NUL (``"\\x1bada92cb5d92a588d1b93__mypyc\\x08__file__"``), several to a C string;
    there a path whose length byte matches is a whole string, whatever comes before or after
    it (the chunk's NUL after the last one).
    """
    raw = name.encode("utf-8")
    body = data[section.offset:section.end]
    at = body.find(raw)
    while at >= 0:
        after = at + len(raw)
        nxt = body[after:after + 1]
        if length_prefixed and at > 0 and nxt != b"\x00" and (
            nxt == b"." or nxt not in IDENT_BYTES
        ):
            run = _DOTTED_RUN.match(body, at) if nxt == b"." else None
            end = run.end() if run else after
            if body[at - 1] == end - at:
                text = body[at:end].decode("utf-8", "backslashreplace")
                yield Reference(name, section.offset + at, text, section.name, "string",
                                counted=True)
                at = body.find(raw, at + 1)
                continue
        if nxt in (b"\x00", b"."):
            start = body.rfind(b"\x00", 0, at) + 1
            stop = body.find(b"\x00", after)
            stop = len(body) if stop < 0 else stop
            text = body[start:min(stop, start + _MAX_STRING)].decode("utf-8", "backslashreplace")
            kind: RefKind = "string"
            if start != at:
                kind = "tail" if body[at - 1:at] in IDENT_BYTES else "unbounded"
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
