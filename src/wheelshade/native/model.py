"""What reference analysis found in one compiled file: occurrences, verdicts, planned edits."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from wheelshade.native import cytable, refs

InitPhase = Literal["single", "multi", "unknown"]
RefKind = Literal["string", "symbol", "tail", "unbounded"]
#: Why an occurrence that does not start a string is patched, left alone or refused.
Verdict = Literal[
    "", "used-alone", "never-alone", "label", "split", "conflict", "inner", "unknown",
    "attribute", "compared", "unproven",
]

INIT_PREFIX = "PyInit_"

#: Bytes that continue an identifier or a dotted module path.
IDENT_BYTES = frozenset(
    bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."
)


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
    #: ``compared``: code compares text with the string's first bytes as an immediate;
    #: ``unproven``: the dotted path it starts is no module path of the set (left alone);
    #: ``unknown``: references cannot be found in this kind of binary.
    verdict: Verdict = ""
    #: Human-readable detail for the verdict (which references were found).
    detail: str = ""
    #: A mypyc literal: its length byte, not a NUL, bounds it. mypyc packs several literals
    #: into one C string and reads them by their lengths from the first, so text before
    #: the name belongs to other literals, not to a longer string it is the tail of.
    counted: bool = False


@dataclass(frozen=True)
class Redirect:
    """Point one reference ``delta`` bytes further (at a standalone copy of its string)."""

    site: refs.Site
    delta: int
    #: For an ``arm64`` site: the instruction words that make it so, as (file offset, word
    #: now, new word), planned by arm64_moves (its ``adrp`` only where nothing else uses it).
    words: tuple[tuple[int, int, int], ...] = ()


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
    #: DT_RUNPATH; for Mach-O, every ``@loader_path/`` path of its load commands.
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
    #: A PE image with a certificate table (Authenticode signature): patching removes it;
    #: a Mach-O slice signed with a certificate: patching re-signs it ad hoc.
    signed: bool = False
    #: The file format: ``"ELF"``, ``"PE"`` or ``"Mach-O"`` (thin or fat).
    format: str = "ELF"

    @property
    def loader(self) -> str:
        """Whose interpreter can load the file: its machine, and the format for Mach-O
        (``"aarch64 Mach-O"``), which no emulator here runs."""
        return f"{self.machine} Mach-O" if self.format == "Mach-O" else self.machine

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
