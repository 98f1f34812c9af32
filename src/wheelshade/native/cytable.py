"""Cython's packed string tables: find them, split them into constants, rewrite them.

Cython 3.1+ may keep all of a module's string constants in one blob, back to back without
separators, optionally compressed with zlib or bzip2; the length of each constant lives
in a separate array of bit-fields (``index[] = {{13}, {4}, ...}``, 32 bits per entry).
Without those lengths, ``"...__name__numpynumpy_x..."`` cannot be split, so a module
name in it cannot be told from part of another constant.

The lengths are looked for where the compiler leaves them: a large array as an initialiser
in read-only data, a small one built on the stack by the code that reads the table (see
``frame``). A candidate is accepted only if it splits the table so that constants every
Cython module has (``__name__``, ``__test__``, ...) come out whole; any candidate that
splits it differently means no split is trusted.

A rewrite keeps every name's byte length (same-length names). A compressed stream is
compressed again; when it fits its old size it stays in place, padded with zeros (zlib
and bz2 both ignore bytes after the end of a stream). Renaming can make a small table
less repetitive, so its stream may grow: then it can only move, to the slack after a
read-only segment, with the one instruction that takes its address and the one that
passes its size both rewritten (``Mover``).
"""

from __future__ import annotations

import bz2
import itertools
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from wheelshade.native import arm64_lzss, lzss, refs
from wheelshade.native import x86_64_frame as frame
from wheelshade.native.elf import (
    PF_W,
    PF_X,
    PT_LOAD,
    SHT_NOBITS,
    Elf,
    function_starts,
)

Codec = Literal["plain", "zlib", "bz2", "lzss"]

#: Constants every Cython module's table holds (most of them; at least two are needed).
MARKERS = (b"cline_in_traceback", b"__test__", b"__name__", b"__main__", b"__module__",
           b"__qualname__")
#: Stream headers: zlib (deflate, any level) and bzip2; zstd is recognised but not read.
_COMPRESSED = re.compile(rb"\x78[\x01\x5e\x9c\xda]|BZh[1-9]1AY&SY|\x28\xb5\x2f\xfd")
_ZSTD = b"\x28\xb5\x2f\xfd"
#: Cython 3.3's LZSS decoder's message (its loop: see x86_64_frame.lzss_loops).
_LZSS_ERROR = b"LZSS string data decompression failed"
#: How far before the loop the stream's address is taken, and after it the sizes tested.
_LZSS_BEFORE, _LZSS_AFTER = 256, 512
#: Longest decompressed string table read (a large module's is well under 1 MB).
_MAX_TABLE = 64 << 20
#: Largest value a length entry is taken to hold.
_MAX_LENGTH = 1 << 20
#: How far past the instruction that reads a table the code is also followed for its
#: lengths (they may be stored after the table's address is taken).
_AFTER_SITE = 1024
#: How close to that instruction the one that passes the table's size must be (bytes).
_SIZE_WINDOW = 64


@dataclass(frozen=True)
class Mover:
    """What lets a compressed table move when it grows: the code operand that points at
    it, and the 32-bit immediate that passes its size (``mov esi, 0x1b3`` before
    ``lea rdi, [rip + table]``)."""

    site: refs.Site
    size_offset: int  # file offset of the immediate


@dataclass(frozen=True)
class Table:
    """One packed table: where its bytes are stored and the constants they hold."""

    codec: Codec
    offset: int  # file offset of the stored bytes
    size: int  # their length (a compressed stream's own length)
    text: bytes  # the constants, run together
    #: Where each constant starts in ``text``, then where the last one ends; None when the
    #: lengths were not found. Text past the last bound is not split (Cython 3.3 keeps
    #: bytes constants in a second array).
    bounds: tuple[int, ...] | None = None
    #: Set for a compressed table whose one reader was found (see Mover).
    mover: Mover | None = None
    #: Where constants start that look like module paths of the set but are not proven
    #: ones (see ModuleProof): they keep their text.
    declined: frozenset[int] = frozenset()

    def strings(self) -> Iterator[tuple[int, bytes]]:
        bounds = self.bounds or ()
        for start, end in itertools.pairwise(bounds):
            yield start, self.text[start:end]

    def module_paths(self, names: Iterable[str]) -> list[tuple[int, str]]:
        """(position in ``text``, name) for each constant that is a name or starts with
        ``name.``: what gets renamed."""
        raw = {n: n.encode("utf-8") for n in names}
        found: list[tuple[int, str]] = []
        for start, string in self.strings():
            if start in self.declined:
                continue
            for name, encoded in raw.items():
                if string == encoded or string.startswith(encoded + b"."):
                    found.append((start, name))
        return found

    def unsplit(self, names: Iterable[str]) -> tuple[str, ...]:
        """Names occurring where no split is known. In a table without lengths any
        occurrence may be a module name run together with other constants. Past the last
        bound come only bytes constants (Cython 3.3 counts them in a second array): C
        signatures and line tables, where a name inside a longer identifier
        (``__pyx_opt_args_6pandas_5_libs``) is not a module path, so only a whole word
        counts there."""
        if self.bounds is None:
            return tuple(n for n in names if n.encode("utf-8") in self.text)
        rest = self.text[self.bounds[-1]:]
        return tuple(n for n in names if _word(n).search(rest))


def _word(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(name.encode("utf-8"))
                      + rb"(?![A-Za-z0-9_])")


def read(data: bytes, elf: Elf, names: Sequence[str]) -> tuple[list[Table], bool]:
    """(tables, unreadable) for a Cython module whose constants are packed.

    Lengths are looked for only in tables that contain one of ``names`` (it costs a scan
    of the read-only data, and maybe of code). ``unreadable`` is True when a compressed
    stream is in a format not read (zstd).
    """
    tables: list[Table] = []
    unreadable = False
    for start, end in _regions(elf):
        body = data[start:end]
        for match in _COMPRESSED.finditer(body):
            if body.startswith(_ZSTD, match.start()):
                unreadable = True
                continue
            table = _stream(body, match.start(), start)
            if table is not None:
                tables.append(table)
    if _LZSS_ERROR in data:
        tables += _lzss_tables(data, elf)
    if not tables:
        tables = _plain(data, elf)
    wanted = [n for n in names if n]
    out = []
    for table in tables:
        if any(n.encode("utf-8") in table.text for n in wanted):
            table = _with_bounds(data, elf, table)
        out.append(table)
    return out, unreadable


def _regions(elf: Elf) -> list[tuple[int, int]]:
    """File ranges searched for compressed tables: the data sections, and what read-only
    LOAD segments hold past their last section (where a grown table is moved to)."""
    regions = [(s.offset, s.end) for s in elf.data_sections]
    for segment in elf.segments:
        if segment.type != PT_LOAD or segment.flags & (PF_X | PF_W):
            continue
        end = segment.offset + segment.filesz
        covered = max((s.end for s in elf.sections
                       if s.type != SHT_NOBITS and segment.offset <= s.offset < end),
                      default=segment.offset)
        if covered < end:
            regions.append((covered, end))
    return regions


def _stream(body: bytes, start: int, base: int) -> Table | None:
    codec: Codec = "bz2" if body.startswith(b"BZh", start) else "zlib"
    try:
        if codec == "bz2":
            unpack: bz2.BZ2Decompressor | zlib._Decompress = bz2.BZ2Decompressor()
        else:
            unpack = zlib.decompressobj()
        # A view, not a slice: a large module's data holds many bytes that look like a
        # stream header, and each would copy the rest of it.
        text = unpack.decompress(memoryview(body)[start:], _MAX_TABLE)
    except (OSError, ValueError, EOFError, zlib.error):
        return None
    if not unpack.eof or sum(m in text for m in MARKERS) < 2:
        return None
    size = len(body) - start - len(unpack.unused_data)
    return Table(codec, base + start, size, text)


def _lzss_tables(data: bytes, elf: Elf) -> list[Table]:
    """Cython 3.3's LZSS streams. The stream has no header; its two sizes are constants in
    the code that inflates it, which Cython inlines into module init. So each copy of the
    decoder loop is found by its first instruction (``or reg, 0xff00``), and a stream is
    what a RIP-relative ``lea`` shortly before it points at that decodes, to the size one
    ``cmp`` after it allows, consuming exactly the size another compares with (arm64:
    see arm64_lzss)."""
    found: dict[int, Table] = {}
    finder = frame.lzss_loops if refs.is_x86_64(elf) else arm64_lzss.candidates
    loops = finder(data, elf, _LZSS_BEFORE, _LZSS_AFTER) if refs.supported(elf) else []
    for streams, sizes in loops:
        for address in sorted(streams):
            table = _lzss_at(data, elf, address, sizes)
            if table is not None:
                found[table.offset] = table
    return [found[k] for k in sorted(found)]


def _lzss_at(data: bytes, elf: Elf, address: int, sizes: set[int]) -> Table | None:
    offset = refs.offset_of(elf, address)
    if offset is None or not sizes:
        return None
    for size in sorted(s for s in sizes if s < _MAX_TABLE):
        # The loop runs while the output is at most ``size - 1`` bytes long (GCC compares
        # with ``size - 1``), or shorter than ``size`` (clang, as on macOS, with ``size``).
        for bound in (size + 1, size):
            decoded = lzss.decode(data, offset, bound, max(sizes))
            if decoded is None:
                continue
            consumed, text = decoded
            if consumed in sizes and sum(m in text for m in MARKERS) >= 2:
                return Table("lzss", offset, consumed, text)
    return None


def _plain(data: bytes, elf: Elf) -> list[Table]:
    """Uncompressed tables: markers run together with other text (no NUL before them)."""
    found: list[Table] = []
    for section in elf.data_sections:
        body = data[section.offset:section.end]
        at = body.find(MARKERS[1])
        while at >= 0:
            if at > 0 and body[at - 1] != 0:
                start = body.rfind(b"\0", 0, at) + 1
                end = body.find(b"\0", at)
                end = len(body) if end < 0 else end
                text = body[start:end]
                if sum(m in text for m in MARKERS) >= 2:
                    found.append(Table("plain", section.offset + start, end - start, text))
                at = end
            at = body.find(MARKERS[1], at + 1)
    return found


def _with_bounds(data: bytes, elf: Elf, table: Table) -> Table:
    """The table with its constants' bounds and, when compressed, its mover."""
    sites = _readers(data, elf, table)
    bounds = _split(table.text, _data_runs(data, elf))
    if bounds is None:
        bounds = _split(table.text, _stack_runs(data, elf, sites))
    mover = _mover(data, elf, table, sites) if table.codec != "plain" else None
    return replace(table, bounds=bounds, mover=mover)


def _readers(data: bytes, elf: Elf, table: Table) -> list[tuple[int, refs.Site]]:
    """(function start, code site) for each instruction that takes the table's address."""
    if not refs.is_x86_64(elf):
        return []
    address = refs.address_of(elf, table.offset)
    if address is None:
        return []
    starts = function_starts(data, elf)
    found = []
    for site in refs.find(data, elf, {address}):
        start = frame.function_containing(starts, site.base)
        if site.kind == "code" and start is not None:
            found.append((start, site))
    return found


def _mover(
    data: bytes, elf: Elf, table: Table, sites: list[tuple[int, refs.Site]]
) -> Mover | None:
    """The one reader of the table, and the one immediate near it that passes its size
    in the second argument register; None unless both are unique."""
    if len(sites) != 1:
        return None
    start, site = sites[0]
    wide = refs.argument(elf, 2)
    second = (wide, "e" + wide[1:])
    near = [
        insn for insn in frame.instructions(data, elf, start, site.base + _SIZE_WINDOW)
        if abs(insn.address - site.base) <= _SIZE_WINDOW
        and insn.mnemonic == "mov" and insn.op_str.split(",")[0] in second
        and insn.imm_size == 4 and len(insn.operands) == 2
        and insn.operands[1].imm == table.size
    ]
    if len(near) != 1:
        return None
    at = refs.offset_of(elf, near[0].address)
    return None if at is None else Mover(site, at + near[0].imm_offset)


def _data_runs(data: bytes, elf: Elf) -> Iterator[tuple[int, ...]]:
    """Runs of small 32-bit words in the read-only data: arrays of lengths, among others."""
    for section in elf.data_sections:
        start = section.offset + (-section.offset) % 4
        count = (section.end - start) // 4
        if count <= 0:
            continue
        words = struct.unpack_from(f"<{count}I", data, start)
        begin = None
        for i, word in enumerate(words):
            if word < _MAX_LENGTH:
                if begin is None:
                    begin = i
            elif begin is not None:
                if i - begin >= 4:
                    yield words[begin:i]
                begin = None
        if begin is not None and count - begin >= 4:
            yield words[begin:]


def _stack_runs(
    data: bytes, elf: Elf, sites: list[tuple[int, refs.Site]]
) -> Iterator[tuple[int, ...]]:
    """Word runs the code that reads the table leaves on its stack (small arrays)."""
    for start, site in sites:
        yield from frame.stack_words(data, elf, start, (site.base, site.base + _AFTER_SITE))


def _split(text: bytes, runs: Iterable[tuple[int, ...]]) -> tuple[int, ...] | None:
    """The bounds every run that splits ``text`` into whole marker constants agrees on
    (the longest such split), or None when none does or two disagree.

    A split that leaves every marker of the text whole outranks one that leaves fewer: a
    run of lengths read from a shifted start can cut a table of repetitive constants
    (fused signatures ``f[int32_t[:, ::1],const int64_t[:]]`` ...) into a few whole markers
    by chance, never into all of them."""
    marker = next((m for m in MARKERS if m in text), None)
    if marker is None:
        return None
    places = [m.start() for m in re.finditer(re.escape(marker), text)]
    found = [b for words in runs for b in _candidates(text, words, marker, places)]
    present = sum(m in text for m in MARKERS)
    complete = [b for b in found if _whole_markers(text, b) == present]
    chosen: tuple[int, ...] | None = None
    for bounds in complete or found:
        if chosen is None or len(bounds) > len(chosen):
            if chosen is not None and bounds[:len(chosen)] != chosen:
                return None
            chosen = bounds
        elif chosen[:len(bounds)] != bounds:
            return None
    return chosen


def _candidates(
    text: bytes, words: tuple[int, ...], marker: bytes, places: list[int]
) -> Iterator[tuple[int, ...]]:
    prefix = [0]
    for word in words:
        prefix.append(prefix[-1] + word)
    first: dict[int, int] = {}
    for index, total in enumerate(prefix):
        first.setdefault(total, index)
    tried: set[int] = set()
    for j, word in enumerate(words):
        if word != len(marker):
            continue
        for place in places:
            begin = first.get(prefix[j] - place)
            if begin is None or begin in tried:
                continue
            tried.add(begin)
            bounds = _walk(text, words[begin:])
            if bounds is not None and _whole_markers(text, bounds) >= 2:
                yield bounds


def _walk(text: bytes, words: Sequence[int]) -> tuple[int, ...] | None:
    """Bounds from consecutive lengths, up to the end of ``text``. They may stop short of
    it: Cython 3.3 keeps the lengths of bytes constants, which come last, in a second
    array."""
    bounds = [0]
    for word in words:
        if word == 0:
            continue
        end = bounds[-1] + word
        if end > len(text):
            break
        bounds.append(end)
        if end == len(text):
            break
    return tuple(bounds) if len(bounds) > 1 else None


def _whole_markers(text: bytes, bounds: tuple[int, ...]) -> int:
    pieces = {text[a:b] for a, b in itertools.pairwise(bounds)}
    return sum(m in pieces for m in MARKERS)
