"""Compiled modules: classify a binary and find the shaded names it embeds (strings, symbols)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from . import cytable, xrefs
from .calls import Calls
from .elf import PF_W, PF_X, PT_LOAD, SHT_NOBITS, Elf, Section, Segment, read_elf

InitPhase = Literal["single", "multi", "unknown"]
RefKind = Literal["string", "symbol", "tail", "unbounded"]
#: Why an occurrence that does not start a string is patched, left alone or refused.
Verdict = Literal[
    "", "used-alone", "never-alone", "label", "split", "conflict", "inner", "unknown",
    "attribute",
]

INIT_PREFIX = "PyInit_"

_DOTTED_TAIL = re.compile(rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_DOTTED_RUN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CYTHON_ABI = re.compile(rb"\x00_cython_(\d+)_(\d+)_?([0-9a-z_]*?)(?=[\x00.])")
_MYPYC = re.compile(rb"CPyInit_|__mypyc\b|CPyStatics|CPyModule_")
_IDENT_BYTES = frozenset(
    bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."
)
_SEPARATE_MARKERS = (b"\0cline_in_traceback\0", b"\0__test__\0")
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
    #: For ``tail``/``unbounded`` occurrences (and any patched string a reference points
    #: into), what reference analysis found; empty for a plain token-bounded string.
    #: ``used-alone``: only the name itself is referenced, so it is patched;
    #: ``never-alone``: nothing refers to the name by itself, so it is part of a longer
    #: string only and is left alone; ``label``: Cython's ``"init <module>"`` traceback
    #: label, patched with the module; ``conflict``: both the longer string and the name
    #: are referenced; ``inner``: something points into the middle of the name;
    #: ``unknown``: references cannot be found in this kind of binary.
    verdict: Verdict = ""
    #: Human-readable detail for the verdict (which references were found).
    detail: str = ""


@dataclass(frozen=True)
class Redirect:
    """Point one reference ``delta`` bytes further (at a standalone copy of its string)."""

    site: xrefs.Site
    delta: int


@dataclass(frozen=True)
class Appended:
    """A new standalone copy of a merged string, written into the slack after a read-only
    LOAD segment (the rest of its last page, mapped anyway) and covered by growing the
    segment's ``p_filesz``/``p_memsz``: the program header at ``header``."""

    offset: int  # file offset of the copy
    text: bytes  # the string as it is now (renamed when patched), NUL included
    name: str  # the shaded name it starts with
    header: int
    size: int  # the segment's new p_filesz (= p_memsz)


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
    #: True when two names every Cython string table holds (``cline_in_traceback``,
    #: ``__test__``) sit between NUL bytes and no packed table was found: the module
    #: keeps one C string per constant. (Cython's own C code may hold those names as
    #: C strings in a module that packs its constants too.)
    cython_strings_separate: bool
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    needed: tuple[str, ...]
    soname: str | None
    #: What gets patched: token-bounded C strings (``\0T\0``, ``\0T.x``), ``PyInit_T``
    #: symbols, and tails that reference analysis shows are used on their own.
    references: tuple[Reference, ...]
    #: Occurrences no patch can make right: a linker merged a standalone ``"T"`` into the end
    #: of a longer string that is used too (pandas' ``"to_numpy"``), something points into
    #: the middle of a name, or the binary's references cannot be analysed (not x86-64).
    suspects: tuple[Reference, ...]
    #: ``T`` inside a longer string that nothing refers to on its own (after ``redirects``):
    #: left as it is.
    embedded: tuple[Reference, ...] = ()
    #: References moved from a merged tail to a standalone copy of the same string.
    redirects: tuple[Redirect, ...] = ()
    #: Standalone copies added for splits where the binary had none.
    appended: tuple[Appended, ...] = ()
    #: For packed Cython string tables: whether they could be read (plain, or a zlib/bz2
    #: stream that decompresses), and those that hold a watched name (see cytable).
    packed_readable: bool = True
    tables: tuple[cytable.Table, ...] = ()
    #: The names looked for.
    watched: tuple[str, ...] = ()

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
    def packed(self) -> bool:
        """True when Cython packed the module's string constants into one blob.

        Newer Cython (3.1+, depending on build options) stores them back to back without
        NUL separators (lengths live in code), and may compress the blob:
        ``"pkgpkg.modpkg.other"`` has no token boundaries, so ``references`` is incomplete.
        Whether a module does is read from the module itself (see
        ``cython_strings_separate``), not guessed from the version.
        """
        return self.cython and not self.cython_strings_separate

    @functools.cached_property
    def packed_names(self) -> tuple[str, ...]:
        """Watched names a packed table holds: as constants that are module paths (patched
        like C strings), or where its constants could not be split (refused)."""
        return tuple(sorted({n for t in self.tables for _, n in t.module_paths(self.watched)}
                            | set(self.unsplit_names)))

    @functools.cached_property
    def unsplit_names(self) -> tuple[str, ...]:
        """Watched names in packed text whose string lengths were not found."""
        return tuple(sorted({n for t in self.tables for n in t.unsplit(self.watched)}))

    @property
    def opaque_strings(self) -> bool:
        """True when names may hide where no scan can look: a packed table that is neither
        plain in the data sections nor in a compressed stream that could be read."""
        return self.packed and not self.packed_readable

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Shaded names this file refers to, sorted (suspects and packed strings included)."""
        return tuple(sorted({r.name for r in self.references + self.suspects}
                            | set(self.packed_names)))


def classify(data: bytes, path: str, names: Iterable[str]) -> BinaryInfo:
    """Read the ELF file ``data`` (its archive path ``path``) and find references to ``names``.

    Only allocated non-executable data sections (``.rodata``, ``.data.rel.ro``, ``.data``)
    and the dynamic symbol names are searched, never code or debug info. Raises
    UnsupportedBinary for Mach-O, PE and unknown files, BinaryFormatError for broken ELF.
    """
    elf = read_elf(data, path)
    wanted = sorted({n for n in names if n})
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
    rust = _is_rust(data)
    words, run_on = _rust_words(data, elf, wanted, found) if rust else ([], frozenset())
    references, suspects, embedded, redirects, appended = _resolve(
        data, elf, found, cython=cython, rust=rust, words=words, run_on=run_on
    )
    for symbol in elf.symbols:
        if symbol.name.startswith(INIT_PREFIX):
            target = symbol.name.removeprefix(INIT_PREFIX)
            if target in wanted:
                references.append(Reference(
                    target, symbol.name_offset + len(INIT_PREFIX), symbol.name, ".dynstr", "symbol"
                ))
    return BinaryInfo(
        path=path,
        bits=elf.bits,
        byte_order=elf.byte_order,
        machine=elf.machine,
        init_symbols=tuple(sorted(
            s.name for s in elf.symbols if s.defined and s.name.startswith(INIT_PREFIX)
        )),
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
    )


def _is_rust(data: bytes) -> bool:
    """Rust code: its panic locations name the toolchain's sources."""
    return b"/rustc/" in data or b"RUST_BACKTRACE" in data


def _rust_words(
    data: bytes, elf: Elf, names: list[str], found: list[Reference]
) -> tuple[list[Reference], frozenset[tuple[int, str]]]:
    """Every occurrence in a Rust binary that the C-string scan did not find, and the
    (offset, name) of those that run on into a letter.

    Rust stores ``&str`` literals back to back without terminators and refers to them by
    pointer and length: ``"...IPAddresscryptography.hazmat.primitives.kdf.kbkdfOCSPNonce"``
    holds a module path between two other literals, with no byte to tell where it starts.
    Only what points at the name can (see _resolve): a literal starts at a byte that is
    referenced, so the name is patched there and left alone inside a longer literal
    (``errors.pydantic.dev``, ``src/rust/cryptography-x509/src/lib.rs``). Where it ends is
    plain when a dot or a non-name byte follows; when a letter follows
    (``"...pydantic_coreauto_collapse"``), the literal is the name only if its length
    comes with the reference (see _rust_literals).
    """
    seen = {r.offset for r in found}
    out: list[Reference] = []
    run_on: set[tuple[int, str]] = set()
    for section in elf.data_sections:
        body = data[section.offset:section.end]
        for name in names:
            raw = name.encode("utf-8")
            at = body.find(raw)
            while at >= 0:
                after = body[at + len(raw):at + len(raw) + 1]
                if section.offset + at not in seen:
                    text = body[max(0, at - 20):at + len(raw) + 20]
                    out.append(Reference(name, section.offset + at,
                                         text.decode("utf-8", "backslashreplace"),
                                         section.name, "unbounded"))
                    if after and after in _IDENT_BYTES and after != b".":
                        run_on.add((section.offset + at, name))
                at = body.find(raw, at + 1)
    return out, frozenset(run_on)


def _rust_literals(
    refs: list[Reference], run_on: frozenset[tuple[int, str]],
    alone: Callable[[Reference], list[xrefs.Site]], calls: Calls | None,
) -> list[Reference]:
    """The occurrences in a Rust binary that can be literals: a name that runs on into a
    letter only when a reference to it comes with the name's length (``calls``; without
    reference analysis, never), and of two names at one offset (``pydantic``,
    ``pydantic_core``) the longer one."""
    kept = [
        r for r in refs
        if (r.offset, r.name) not in run_on or (calls is not None and any(
            calls.passes_length(site, len(r.name.encode("utf-8"))) for site in alone(r)
        ))
    ]
    longest: dict[int, Reference] = {}
    for ref in kept:
        held = longest.get(ref.offset)
        if held is None or len(ref.name) > len(held.name):
            longest[ref.offset] = ref
    return [r for r in kept if longest[r.offset] is r]


def _resolve(
    data: bytes, elf: Elf, found: list[Reference], *, cython: bool, rust: bool = False,
    words: list[Reference] | None = None, run_on: frozenset[tuple[int, str]] = frozenset(),
) -> tuple[list[Reference], list[Reference], list[Reference], list[Redirect], list[Appended]]:
    """Sort occurrences into (patch, refuse, leave alone) by who refers to their bytes.

    Patching ``T`` at address ``a`` changes what every reference into ``[s, a + len(T))``
    reads, where ``s`` starts the text that runs into ``T``. References to ``a`` want the
    module name; references into ``[s, a)`` want the longer string; a reference into the
    name's own bytes wants a shorter tail of it. See xrefs for how references are found.
    """
    words = words or []
    if not found and not words:
        return [], [], [], [], []
    if not xrefs.supported(elf):
        found = found + _rust_literals(words, run_on, lambda r: [], None)
        plain = [r for r in found if r.kind == "string"]
        return plain, [
            replace(r, verdict="unknown", detail=(
                f"references cannot be analysed in a {elf.bits}-bit {elf.byte_order}-endian "
                f"{elf.machine} file (x86-64 only so far)"
            ))
            for r in found if r.kind != "string"
        ], [], [], []
    spans: dict[Reference, tuple[int, int]] = {}
    targets: set[int] = set()
    for ref in found + words:
        at = xrefs.address_of(elf, ref.offset)
        if at is None:  # pragma: no cover - data sections are always mapped
            continue
        start = at - (ref.offset - _text_start(data, ref.offset))
        spans[ref] = (start, at)
        targets.update(range(start, at + len(ref.name.encode("utf-8"))))
    by_target: dict[int, list[xrefs.Site]] = {}
    for site in xrefs.find(data, elf, targets):
        by_target.setdefault(site.target, []).append(site)
    calls = Calls(data, elf)
    if words:  # which Rust words are literals is known only with the references
        dropped = set(words) - set(_rust_literals(
            [w for w in words if w in spans], run_on,
            lambda r: by_target.get(spans[r][1], []), calls))
        spans = {r: span for r, span in spans.items() if r not in dropped}
    patch: list[Reference] = []
    refuse: list[Reference] = []
    leave: list[Reference] = []
    conflicts: list[tuple[Reference, int, list[xrefs.Site], list[xrefs.Site]]] = []
    for ref, (start, at) in spans.items():
        size = len(ref.name.encode("utf-8"))
        inner = [s for t in range(at + 1, at + size) for s in by_target.get(t, ())]
        alone = by_target.get(at, [])
        head = [s for t in range(start, at) for s in by_target.get(t, ())]
        if start != at and not alone:
            leave.append(replace(ref, verdict="never-alone", detail=(
                f"nothing refers to {ref.name!r} on its own; it is part of a longer string only"
            )))
        elif inner:
            refuse.append(replace(ref, verdict="inner", detail=(
                f"{_where(inner)} point(s) into the middle of {ref.name!r}, at a shorter "
                "string that shares its bytes"
            )))
        elif not rust and (apis := _name_arguments(data, ref, alone, calls)):
            leave.append(replace(ref, verdict="attribute", detail=(
                f"{ref.name!r} on its own is only passed as an attribute name "
                f"({', '.join(apis)}), not a module name"
            )))
        elif start == at:
            patch.append(ref)
        elif not head:
            patch.append(replace(ref, verdict="used-alone", detail=(
                f"only {ref.name!r} itself is referenced ({_where(alone)}); the text before "
                "it is not"
            )))
        elif rust:
            # Rust literals are not C strings: the text before the name is other literals,
            # not a longer string this one is the tail of; a reference to the name's first
            # byte is a literal that starts there.
            patch.append(replace(ref, verdict="used-alone", detail=(
                f"a Rust literal starts at {ref.name!r} ({_where(alone)}); the text before "
                "it belongs to other literals (Rust keeps them back to back)"
            )))
        elif cython and _in_init_label(data, ref.offset - (at - start)):
            patch.append(replace(ref, verdict="label", detail=(
                "the longer string is Cython's module-init traceback label; renaming a "
                "module in it changes only how a traceback names that function"
            )))
        else:
            conflicts.append((ref, at, alone, head))
    redirects: list[Redirect] = []
    appended: list[Appended] = []
    copies = {_c_string(data, r.offset): r for r in patch if r.verdict == "" and r.kind == "string"}
    slack = Slack(data, elf) if conflicts else None  # read the segments only when needed
    for ref, at, alone, head in conflicts:
        text = _c_string(data, ref.offset)
        # Rewriting a displacement is only safe where the instruction is known for sure.
        movable = all(s.kind in ("code", "relocation", "pointer") and s.exact for s in alone)
        copy = copies.get(text)
        target: int | None = None
        where = ""
        if movable and copy is not None:
            target = xrefs.address_of(elf, copy.offset)
            where = f"its standalone copy at {copy.offset:#x}"
        elif movable and slack is not None:
            room = slack.take(text + b"\0", ref.name)
            if room is not None:
                added, target = room
                appended.append(added)
                where = f"a standalone copy added at {added.offset:#x}"
        if target is None:
            refuse.append(replace(ref, verdict="conflict", detail=(
                f"the longer string is used ({_where(head)}) and so is {ref.name!r} on its "
                f"own ({_where(alone)}): a linker merged them, and no standalone copy of "
                f"{_short(text)!r} exists or fits to move those uses to"
            )))
            continue
        redirects += [Redirect(site, target - at) for site in alone]
        leave.append(replace(ref, verdict="split", detail=(
            f"the longer string is used ({_where(head)}); the {len(alone)} use(s) of "
            f"{ref.name!r} on its own now point at {where}"
        )))
    return patch, refuse, leave, redirects, appended


_PAGE = 0x1000


class Slack:
    """Unused bytes after the last read-only LOAD segment's data, up to the end of its
    last page: the loader maps that page anyway, no section covers those bytes, and the
    next segment begins on a later page. Copies go there, in order, after the first
    ``used`` bytes."""

    def __init__(self, data: bytes, elf: Elf, used: int = 0) -> None:
        self.segment: Segment | None = None
        self.used = used
        self.room = 0
        loads = sorted((s for s in elf.segments if s.type == PT_LOAD), key=lambda s: s.vaddr)
        for index, seg in enumerate(loads):
            if seg.flags & (PF_X | PF_W) or seg.filesz != seg.memsz:
                continue
            end = seg.offset + seg.filesz
            page_end = (seg.vaddr + seg.memsz + _PAGE - 1) // _PAGE * _PAGE
            limit = page_end - (seg.vaddr + seg.memsz)
            if index + 1 < len(loads):
                following = loads[index + 1]
                if following.vaddr // _PAGE * _PAGE < page_end:
                    limit = 0  # the next segment's mapping starts on this last page
                else:
                    limit = min(limit, max(0, following.offset - end))
            if any(s.offset < end + limit and s.end > end for s in elf.sections
                   if s.type != SHT_NOBITS and s.size):
                limit = 0
            limit = min(limit, max(0, len(data) - end))
            if limit > self.room and not any(data[end:end + limit]):
                self.segment, self.room = seg, limit

    def take(self, text: bytes, name: str) -> tuple[Appended, int] | None:
        """Room for ``text``: the copy to write, and the address it is loaded at."""
        seg = self.segment
        if seg is None or self.used + len(text) > self.room:
            return None
        at = seg.filesz + self.used
        self.used += len(text)
        added = Appended(seg.offset + at, text, name, seg.header, seg.filesz + self.used)
        return added, seg.vaddr + at


def _name_arguments(
    data: bytes, ref: Reference, alone: list[xrefs.Site], calls: Calls
) -> list[str]:
    """The C-API functions a bare name is passed to as an attribute or key name, when that
    is every use of it (``PyModule_AddObjectRef(m, "greenlet", type)``); else empty."""
    if not alone or _c_string(data, ref.offset) != ref.name.encode("utf-8"):
        return []
    apis = [calls.name_argument_of(site) for site in alone]
    return sorted({a for a in apis if a}) if all(apis) else []


def _short(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= 60 else text[:57] + "..."


def _c_string(data: bytes, offset: int) -> bytes:
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else len(data)]


def _text_start(data: bytes, offset: int) -> int:
    """Where the printable text that runs into ``offset`` begins (after a NUL or binary data).

    Bytes that are not printable text (a preceding float or table) end the walk: nothing
    reads binary data as a C string, so a name right after it starts its own string.
    """
    start = offset
    floor = max(0, offset - 4096)
    while start > floor:
        byte = data[start - 1]
        if 0x20 <= byte < 0x7F or byte in (0x09, 0x0A, 0x0D):
            start -= 1
            continue
        if byte < 0x80:
            break
        # A UTF-8 sequence ending at start - 1 (its lead byte at most 3 bytes back).
        for lead in range(start - 2, max(floor, start - 4) - 1, -1):
            try:
                char = data[lead:start].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(char) == 1 and char.isprintable():
                start = lead
                break
        else:
            break
    return start


_INIT_LABEL = re.compile(rb"init [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\0")


def _in_init_label(data: bytes, start: int) -> bool:
    """True if the C string at ``start`` is ``"init <module path>"``, the traceback label
    Cython gives a module's init function (used by nothing but traceback printing)."""
    return _INIT_LABEL.match(data, start) is not None


def _where(sites: list[xrefs.Site]) -> str:
    kinds = sorted({s.kind for s in sites})
    return f"{len(sites)} {'/'.join(kinds)} reference(s)"


def _scan(
    data: bytes, section: Section, name: str, *, length_prefixed: bool = False
) -> Iterable[Reference]:
    """Each occurrence of ``name`` in ``section`` that can be a module path (see Reference).

    ``length_prefixed``: mypyc also keeps string literals as a length byte followed by the
    text, no NUL (``"\\x1bada92cb5d92a588d1b93__mypyc\\x08__file__"``); there a path whose
    length byte matches is a whole string, even with binary data after it.
    """
    raw = name.encode("utf-8")
    body = data[section.offset:section.end]
    at = body.find(raw)
    while at >= 0:
        after = at + len(raw)
        nxt = body[after:after + 1]
        if length_prefixed and at > 0 and nxt != b"\x00" and (
            nxt == b"." or nxt not in _IDENT_BYTES
        ):
            run = _DOTTED_RUN.match(body, at) if nxt == b"." else None
            end = run.end() if run else after
            if body[at - 1] == end - at and body[end:end + 1] != b"\x00":
                text = body[at:end].decode("utf-8", "backslashreplace")
                yield Reference(name, section.offset + at, text, section.name, "string")
                at = body.find(raw, at + 1)
                continue
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
