"""A small read-only Mach-O reader (stdlib ``struct``): thin and fat files, each slice an ``Elf``.

A macOS extension module is a 64-bit Mach-O bundle, thin (x86_64 or arm64) or *fat*
(universal2: one slice per architecture, each a whole Mach-O image at an offset given by the
fat header). Each slice is read into the same ``Elf`` shape the decision code reads, with
``format="Mach-O"``: sections named ``SEGMENT,section`` (``__TEXT,__cstring``,
``__DATA_CONST,__const``) with their vm addresses and file offsets, the latter counted from
the start of the *file* so that one fat file's bytes serve every slice; external symbols from
``LC_SYMTAB`` without the ``_`` that macOS puts before C names (``_PyInit_foo`` is read as
``PyInit_foo``, its ``name_offset`` one byte on); function starts from
``LC_FUNCTION_STARTS``; pointers in data from chained fixups or rebase opcodes (see
macho_tables). What patching needs beyond that (the string table, the export trie, the code
signature, the dylib load commands) is in the ``Slice``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wheelshade.native.elf import (
    DT_NEEDED,
    DT_SONAME,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    BinaryFormatError,
    Elf,
    Section,
    Symbol,
    UnsupportedBinary,
    c_string,
)
from wheelshade.native.macho_tables import (
    TableError,
    chained_rebases,
    function_starts,
    opcode_rebases,
)

MH_MAGIC_64 = b"\xcf\xfa\xed\xfe"
_THIN_32 = (b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf")
FAT_MAGIC, FAT_MAGIC_64 = 0xCAFEBABE, 0xCAFEBABF
SHT_MACHO_OTHER = 0x60000001  # a section that holds tables, not C strings
SHF_WRITE = 0x1

LC_DYSYMTAB = 0xB
LC_SEGMENT_64, LC_SYMTAB, LC_CODE_SIGNATURE, LC_FUNCTION_STARTS = 0x19, 0x2, 0x1D, 0x26
LC_DYLD_INFO, LC_DYLD_INFO_ONLY = 0x22, 0x80000022
LC_DYLD_EXPORTS_TRIE, LC_DYLD_CHAINED_FIXUPS = 0x80000033, 0x80000034
LC_ID_DYLIB, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB = 0xD, 0xC, 0x80000018, 0x8000001F
LC_RPATH = 0x8000001C
DYLIB_COMMANDS = (LC_ID_DYLIB, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB)

_MACHINES = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "x86", 12: "arm"}
_CODE = 0x80000000 | 0x400  # S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS
_ZEROFILL = (0x1, 0xC, 0x12)  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL
S_SYMBOL_STUBS = 0x8
#: Sections whose entries stand for imported symbols (``reserved1``: the first one's index
#: in the indirect symbol table): non-lazy and lazy pointers, stubs.
_INDIRECT = (0x6, 0x7, S_SYMBOL_STUBS)
#: Section types that hold pointers or code addresses, never C strings (symbol pointers,
#: stubs, initialiser lists, thread-local descriptors).
_TABLE_TYPES = frozenset({5, 6, 7, 8, 9, 0xA, 0x10, 0x11, 0x13, 0x14, 0x15, 0x16})
#: Unwind and exception tables, and Objective-C metadata lists.
_NOT_STRINGS = frozenset({
    "__TEXT,__unwind_info", "__TEXT,__eh_frame", "__TEXT,__gcc_except_tab",
    "__DATA_CONST,__got", "__DATA,__got", "__DATA_CONST,__auth_got",
})


@dataclass(frozen=True)
class DylibPath:
    """A path in a load command: ``LC_LOAD_DYLIB``/``LC_ID_DYLIB``/``LC_RPATH``."""

    command: int
    header: int  # file offset of the load command
    offset: int  # file offset of the path's first byte
    room: int  # bytes the command holds for it (NUL and padding included)
    path: str


@dataclass(frozen=True)
class Slice:
    """One Mach-O image: where it is in the file, and its parts that patching edits.

    Every offset is counted from the start of the file."""

    offset: int
    size: int
    elf: Elf
    #: ``LC_SYMTAB``: (symbol table offset, symbol count, string table offset, size).
    symtab: tuple[int, int, int, int]
    #: The export trie (``LC_DYLD_EXPORTS_TRIE`` or ``LC_DYLD_INFO``'s), (offset, size).
    exports: tuple[int, int]
    signed: bool
    #: The end of the load commands, and the file offset of the first section's bytes:
    #: room for a longer load command lies between them.
    commands_end: int
    first_section: int
    dylibs: tuple[DylibPath, ...]
    sizeofcmds_at: int  # the header's sizeofcmds field

    @property
    def end(self) -> int:
        return self.offset + self.size


def is_macho(data: bytes) -> bool:
    """True for a thin 64-bit little-endian Mach-O image or a fat file of them."""
    return data[:4] == MH_MAGIC_64 or _fat_count(data) is not None


def looks_macho(data: bytes) -> bool:
    """True for any Mach-O magic (32-bit, big-endian, fat), read or not."""
    return data[:4] in (MH_MAGIC_64, *_THIN_32) or _fat_count(data) is not None


def _fat_count(data: bytes) -> int | None:
    if len(data) < 8:
        return None
    magic, count = struct.unpack_from(">II", data, 0)
    # Java class files share 0xcafebabe; their next word (a version) is >= 45.
    if magic in (FAT_MAGIC, FAT_MAGIC_64) and 0 < count < 45:
        return int(count)
    return None


def fat_slices(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each slice of a fat file, or the whole file for a thin one."""
    count = _fat_count(data)
    if count is None:
        return [(0, len(data))]
    wide = struct.unpack_from(">I", data, 0)[0] == FAT_MAGIC_64
    out = []
    for index in range(count):
        if wide:
            _, _, offset, size, _, _ = struct.unpack_from(">iiQQII", data, 8 + 32 * index)
        else:
            _, _, offset, size, _ = struct.unpack_from(">iiIII", data, 8 + 20 * index)
        if offset + size > len(data):
            raise IndexError(f"fat slice {index} extends past the end of the file")
        out.append((int(offset), int(size)))
    return out


def read_macho(data: bytes, path: str) -> tuple[Slice, ...]:
    """Every slice of the Mach-O file ``data``; raise UnsupportedBinary for a kind that is
    not read (32-bit, big-endian, an unknown fixup format) and BinaryFormatError when the
    file is truncated or inconsistent."""
    try:
        slices = fat_slices(data)
        for at, _ in slices:
            if data[at:at + 4] in _THIN_32:
                raise UnsupportedBinary(path, "32-bit or big-endian Mach-O")
            if data[at:at + 4] != MH_MAGIC_64:
                raise IndexError(f"no Mach-O header at offset {at:#x}")
        return tuple(_slice(data, path, at, size) for at, size in slices)
    except TableError as exc:
        raise UnsupportedBinary(path, f"Mach-O ({exc})") from None
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise BinaryFormatError(
            path, f"truncated or inconsistent headers ({exc})", "Mach-O") from None


def _slice(data: bytes, path: str, at: int, size: int) -> Slice:
    cputype, _, filetype, ncmds, sizeofcmds, _, _ = struct.unpack_from("<iiIIIII", data, at + 4)
    if 32 + sizeofcmds > size:
        raise IndexError("load commands extend past the slice")
    sections: list[Section] = []
    segments: list[tuple[int, int, int]] = []
    symtab = (0, 0, 0, 0)
    exports = (0, 0)
    signed = False
    starts_cmd = chained = rebase = None
    indirect = (0, 0)
    stubs: list[tuple[Section, int, int]] = []
    dylibs: list[DylibPath] = []
    cursor = at + 32
    for _ in range(ncmds):
        cmd, cmdsize = struct.unpack_from("<II", data, cursor)
        if cmdsize < 8 or cursor + cmdsize > at + 32 + sizeofcmds:
            raise IndexError(f"load command {cmd:#x} has size {cmdsize}")
        if cmd == LC_SEGMENT_64:
            segments.append(_segment(data, cursor, at, size, sections, stubs))
        elif cmd == LC_SYMTAB:
            symoff, nsyms, stroff, strsize = struct.unpack_from("<IIII", data, cursor + 8)
            symtab = (at + symoff, nsyms, at + stroff, strsize)
        elif cmd == LC_DYSYMTAB:
            indirect = struct.unpack_from("<II", data, cursor + 56)
        elif cmd in (LC_DYLD_INFO, LC_DYLD_INFO_ONLY):
            fields = struct.unpack_from("<10I", data, cursor + 8)
            rebase = (fields[0], fields[1])
            if fields[9]:
                exports = (at + fields[8], fields[9])
        elif cmd == LC_DYLD_EXPORTS_TRIE:
            off, length = struct.unpack_from("<II", data, cursor + 8)
            exports = (at + off, length)
        elif cmd == LC_DYLD_CHAINED_FIXUPS:
            chained = struct.unpack_from("<II", data, cursor + 8)
        elif cmd == LC_FUNCTION_STARTS:
            starts_cmd = struct.unpack_from("<II", data, cursor + 8)
        elif cmd == LC_CODE_SIGNATURE:
            signed = True
        elif cmd in (*DYLIB_COMMANDS, LC_RPATH):
            (name_at,) = struct.unpack_from("<I", data, cursor + 8)
            where = cursor + name_at
            text = c_string(data, where).decode("utf-8", "surrogateescape")
            dylibs.append(DylibPath(cmd, cursor, where, cmdsize - name_at, text))
        cursor += cmdsize
    for offset, length in ((symtab[0], 16 * symtab[1]), symtab[2:], exports):
        if offset + length > at + size or (length and offset < at):
            raise IndexError("a __LINKEDIT table extends past the slice")
    if not segments:
        raise IndexError("no LC_SEGMENT_64 load command")
    base = next((vm for off, vm, filesz in segments if off == 0 and filesz), 0)
    fixups: list[tuple[int, int]] = []
    if chained is not None and chained[1]:
        fixups += chained_rebases(data, at + chained[0], segments, base, at)
    if rebase is not None and rebase[1]:
        fixups += opcode_rebases(data, at + rebase[0], rebase[1], segments, at)
    starts = function_starts(data, at + starts_cmd[0], starts_cmd[1], base) if starts_cmd else None
    first = min((s.offset for s in sections if s.type != SHT_NOBITS and s.size), default=at + size)
    return Slice(
        offset=at, size=size,
        elf=Elf(
            path=path, bits=64, byte_order="little", elf_type=filetype,
            machine=_MACHINES.get(cputype, f"machine-{cputype:#x}"),
            sections=tuple(sections), symbols=_symbols(data, symtab),
            dynamic=tuple((DT_SONAME if d.command == LC_ID_DYLIB else DT_NEEDED, d.path)
                          for d in dylibs if d.command != LC_RPATH),
            format="Mach-O", starts=starts, fixups=tuple(fixups),
            imports=_imports(data, stubs, symtab, (at + indirect[0], indirect[1])),
        ),
        symtab=symtab, exports=exports, signed=signed, commands_end=at + 32 + sizeofcmds,
        first_section=first, dylibs=tuple(dylibs), sizeofcmds_at=at + 20,
    )


def _segment(
    data: bytes, cursor: int, at: int, size: int, sections: list[Section],
    stubs: list[tuple[Section, int, int]],
) -> tuple[int, int, int]:
    """Read one LC_SEGMENT_64 into ``sections`` (and its stubs and symbol pointers, with
    their first indirect symbol and entry size, into ``stubs``): (fileoff, vmaddr, filesize)."""
    segname, vmaddr, _, fileoff, filesize, _, _, nsects, _ = struct.unpack_from(
        "<16sQQQQiiII", data, cursor + 8)
    if fileoff + filesize > size:
        raise IndexError(f"segment {segname.rstrip(bytes(1))!r} extends past the slice")
    for index in range(nsects):
        (sectname, seg, addr, length, offset, _, _, _, flags, first, stride,
         _) = struct.unpack_from("<16s16sQQIIIIIIII", data, cursor + 72 + 80 * index)
        name = (seg.rstrip(b"\0") + b"," + sectname.rstrip(b"\0")).decode("utf-8", "replace")
        kind = flags & 0xFF
        if kind in _ZEROFILL or not offset:
            sort = SHT_NOBITS
        elif kind in _TABLE_TYPES or name in _NOT_STRINGS or name.startswith("__DWARF"):
            sort = SHT_MACHO_OTHER
        else:
            sort = SHT_PROGBITS
        if sort != SHT_NOBITS and offset + length > size:
            raise IndexError(f"section {name} extends past the slice")
        mode = SHF_ALLOC | (SHF_EXECINSTR if flags & _CODE else 0)
        sections.append(Section(
            index=len(sections), name=name, type=sort, flags=mode, addr=addr,
            offset=at + offset if sort != SHT_NOBITS else 0, size=length,
            link=0, entsize=0))
        if kind in _INDIRECT:
            stubs.append((sections[-1], first, stride if kind == S_SYMBOL_STUBS else 8))
    return int(fileoff), int(vmaddr), int(filesize)


def _imports(
    data: bytes, stubs: list[tuple[Section, int, int]], symtab: tuple[int, int, int, int],
    indirect: tuple[int, int],
) -> tuple[tuple[int, str], ...]:
    """(address, name) of each stub and symbol pointer: what a call through it reaches."""
    symoff, nsyms, stroff, _ = symtab
    table, count = indirect
    out: list[tuple[int, str]] = []
    for section, first, step in stubs:
        for index in range(min(section.size // max(step, 1), max(0, count - first))):
            (symbol,) = struct.unpack_from("<I", data, table + 4 * (first + index))
            if symbol & 0xC0000000 or symbol >= nsyms:  # local or absolute: no import
                continue
            (strx,) = struct.unpack_from("<I", data, symoff + 16 * symbol)
            name = c_string(data, stroff + strx).decode("utf-8", "surrogateescape")
            out.append((section.addr + index * step, name.removeprefix("_")))
    return tuple(out)


def _symbols(data: bytes, symtab: tuple[int, int, int, int]) -> tuple[Symbol, ...]:
    symoff, nsyms, stroff, strsize = symtab
    out: list[Symbol] = []
    for index in range(nsyms):
        strx, n_type, n_sect, _, value = struct.unpack_from("<IBBHQ", data, symoff + 16 * index)
        if n_type & 0xE0 or not n_type & 0x01:  # debugging entries, local symbols
            continue
        if strx >= strsize:
            raise IndexError(f"symbol {index} name outside the string table")
        at = stroff + strx
        raw = c_string(data, at)
        skip = 1 if raw.startswith(b"_") else 0  # macOS C names start with "_"
        defined = n_type & 0x0E != 0  # N_UNDF is 0; N_SECT, N_ABS, N_INDR are defined
        out.append(Symbol(
            index=index, name=raw[skip:].decode("utf-8", "surrogateescape"),
            name_offset=at + skip, value=value, size=0, bind=1, type=2,
            shndx=(n_sect or 0xFFF1) if defined else 0,
        ))
    return tuple(out)
