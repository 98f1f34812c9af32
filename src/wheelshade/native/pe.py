"""A small read-only PE/COFF reader (stdlib ``struct``): sections, exports, imports, checksum.

A Windows extension module (``.pyd``) is a DLL. It is read into the same ``Elf`` shape the
decision code reads (sections with file offsets and addresses, defined and undefined
symbols), with ``format="PE"``. Addresses are RVAs (relative to the image base), as ELF
shared objects' addresses are relative to their load address. What reference analysis needs
besides (pe_refs.py: base relocations, ``.pdata`` function starts, import address table
slots) is read by ``read_tables``; the PE-only parts that patching must keep right (export
name table, CheckSum, certificate table) by ``read_layout``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from wheelshade.native.elf import (
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHT_NOBITS,
    SHT_PROGBITS,
    BinaryFormatError,
    Elf,
    Section,
    Symbol,
    c_string,
)

SHT_PE_OTHER = 0x60000000  # any section that holds no C strings (tables, resources)
SHF_WRITE = 0x1
_SCN_CODE = 0x20
_SCN_EXECUTE = 0x20000000
_SCN_WRITE = 0x80000000
_SCN_DISCARDABLE = 0x02000000
_SCN_UNINITIALIZED = 0x80
#: Sections that hold tables, not strings: unwind data, resources, relocations, imports.
_NOT_STRINGS = frozenset({".pdata", ".xdata", ".rsrc", ".reloc", ".idata", ".edata", ".tls"})
_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "x86", 0x1C4: "arm"}
_DIR_EXPORT, _DIR_IMPORT, _DIR_EXCEPTION, _DIR_SECURITY, _DIR_BASERELOC = 0, 1, 3, 4, 5
_REL_BASED_ABSOLUTE, _REL_BASED_DIR64 = 0, 10


@dataclass(frozen=True)
class Export:
    """One exported name: ``name_offset`` is the file offset of its text, ``slot`` its
    position in the name pointer and ordinal arrays, ``ordinal`` the index it maps to."""

    name: str
    name_offset: int
    slot: int
    ordinal: int


@dataclass(frozen=True)
class Tables:
    """What reference analysis reads besides sections: the preferred load address, the
    RVA of every 64-bit field the loader rebases (``IMAGE_REL_BASED_DIR64``; None when the
    image has no relocation directory), the start RVA of every function with unwind data
    (``.pdata``), and each import address table slot's RVA with the imported name."""

    image_base: int
    relocations: tuple[int, ...] | None
    starts: tuple[int, ...]
    slots: dict[int, str]


@dataclass(frozen=True)
class Layout:
    """Where the PE fields that patching must keep right live in the file."""

    checksum_offset: int
    checksum: int
    #: File offset of the certificate-table directory entry, and the table (file offset, size).
    security_entry: int
    security: tuple[int, int]
    #: The file offsets of the name pointer array and the ordinal array, and the names.
    names_offset: int
    ordinals_offset: int
    exports: tuple[Export, ...]
    #: The file offset of the DLL name the export directory records, or -1.
    dll_name_offset: int
    export_range: tuple[int, int]


def is_pe(data: bytes) -> bool:
    """True for an MZ file whose ``e_lfanew`` points at a PE signature."""
    if data[:2] != b"MZ" or len(data) < 0x40:
        return False
    (at,) = struct.unpack_from("<I", data, 0x3C)
    return data[at:at + 4] == b"PE\0\0"


def read_pe(data: bytes, path: str) -> Elf:
    """Parse a PE image into the ``Elf`` shape; raise BinaryFormatError when it is broken."""
    try:
        return _parse(data, path)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise BinaryFormatError(path, f"truncated or inconsistent headers ({exc})", "PE") from None


def read_layout(data: bytes, path: str) -> Layout:
    """The export table, CheckSum and certificate table of a PE image."""
    try:
        return _layout(data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise BinaryFormatError(path, f"truncated or inconsistent headers ({exc})", "PE") from None


@functools.lru_cache(maxsize=4)
def read_tables(data: bytes, path: str) -> Tables:
    """Base relocations, function starts and import slots of a PE image (read once per
    image: reference analysis asks for them again and again; ``slots`` is not to be
    changed)."""
    try:
        head = _headers(data)
        base = struct.unpack_from("<Q" if head.bits == 64 else "<I", data, head.optional + (
            24 if head.bits == 64 else 28))[0]
        return Tables(base, _base_relocations(data, head), _function_starts(data, head),
                      {slot: name for slot, name, _ in _import_slots(data, head)})
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise BinaryFormatError(path, f"truncated or inconsistent headers ({exc})", "PE") from None


@dataclass(frozen=True)
class _Headers:
    bits: int
    machine: int
    optional: int
    directories: int
    count: int
    sections: tuple[tuple[str, int, int, int, int, int], ...]  # name, vsize, rva, rawsize, raw, ch


def _headers(data: bytes) -> _Headers:
    (at,) = struct.unpack_from("<I", data, 0x3C)
    if data[at:at + 4] != b"PE\0\0":
        raise IndexError("no PE signature")
    machine, nsections, _, _, _, opt_size, _ = struct.unpack_from("<HHIIIHH", data, at + 4)
    optional = at + 24
    (magic,) = struct.unpack_from("<H", data, optional)
    if magic not in (0x10B, 0x20B):
        raise IndexError(f"unknown optional header magic {magic:#x}")
    bits = 64 if magic == 0x20B else 32
    dirs = optional + (112 if bits == 64 else 96)
    (count,) = struct.unpack_from("<I", data, dirs - 4)
    table = optional + opt_size
    sections = []
    for index in range(nsections):
        raw_name, vsize, rva, rawsize, raw, _, _, _, _, chars = struct.unpack_from(
            "<8sIIIIIIHHI", data, table + 40 * index)
        name = raw_name.rstrip(b"\0").decode("utf-8", "replace")
        if raw + rawsize > len(data) and rawsize:
            raise IndexError(f"section {name} extends past the end of the file")
        sections.append((name, vsize, rva, rawsize, raw, chars))
    return _Headers(bits, machine, optional, dirs, min(count, 16), tuple(sections))


def _directory(data: bytes, head: _Headers, index: int) -> tuple[int, int]:
    if index >= head.count:
        return 0, 0
    rva, size = struct.unpack_from("<II", data, head.directories + 8 * index)
    return rva, size


def _offset(head: _Headers, rva: int) -> int:
    for _, vsize, start, rawsize, raw, _ in head.sections:
        if start <= rva < start + max(vsize, rawsize) and rva - start < rawsize:
            return raw + rva - start
    raise IndexError(f"RVA {rva:#x} is not in the file")


def _parse(data: bytes, path: str) -> Elf:
    head = _headers(data)
    layout = _layout(data)
    sections: list[Section] = []
    for name, vsize, rva, rawsize, raw, chars in head.sections:
        size = min(vsize, rawsize) if vsize else rawsize
        flags = SHF_ALLOC | (SHF_EXECINSTR if chars & (_SCN_CODE | _SCN_EXECUTE) else 0)
        flags |= SHF_WRITE if chars & _SCN_WRITE else 0
        strings = not (chars & (_SCN_DISCARDABLE | _SCN_UNINITIALIZED)) and name not in _NOT_STRINGS
        kind = SHT_NOBITS if not rawsize else SHT_PROGBITS if strings else SHT_PE_OTHER
        pieces = [(name, raw, raw + size, kind)]
        low, high = layout.export_range
        if kind == SHT_PROGBITS and raw <= low < raw + size:
            # The export directory's names (``PyInit_<name>``, the DLL's own name) are
            # symbols, renamed with the export table, never scanned as C strings.
            pieces = [(name, raw, low, kind), (".edata", low, min(high, raw + size), SHT_PE_OTHER),
                      (name, min(high, raw + size), raw + size, kind)]
        for piece, start, end, kind in pieces:
            if end > start or not pieces[1:]:
                sections.append(Section(
                    index=len(sections), name=piece, type=kind, flags=flags,
                    addr=rva + start - raw, offset=start, size=end - start, link=0, entsize=0))
    symbols = [
        Symbol(index=e.slot, name=e.name, name_offset=e.name_offset, value=0, size=0, bind=1,
               type=2, shndx=1)
        for e in layout.exports
    ]
    symbols += [
        Symbol(index=len(symbols) + i, name=name, name_offset=at, value=0, size=0, bind=1,
               type=2, shndx=0)
        for i, (name, at) in enumerate(_imports(data, head))
    ]
    return Elf(
        path=path, bits=32 if head.bits == 32 else 64, byte_order="little", elf_type=3,
        machine=_MACHINES.get(head.machine, f"machine-{head.machine:#x}"),
        sections=tuple(sections), symbols=tuple(symbols), dynamic=(), format="PE",
    )


def _imports(data: bytes, head: _Headers) -> list[tuple[str, int]]:
    return [(name, where) for _, name, where in _import_slots(data, head)]


def _import_slots(data: bytes, head: _Headers) -> list[tuple[int, str, int]]:
    """(IAT slot RVA, imported name, file offset of the name) of each import by name."""
    rva, size = _directory(data, head, _DIR_IMPORT)
    if not rva or not size:
        return []
    found: list[tuple[int, str, int]] = []
    at = _offset(head, rva)
    step, flag = (8, 1 << 63) if head.bits == 64 else (4, 1 << 31)
    while True:
        lookup, _, _, name, first = struct.unpack_from("<IIIII", data, at)
        if not name:
            return found
        # The lookup table names the imports; the loader overwrites the IAT (``first``),
        # whose slots are what code calls through.
        thunk = _offset(head, lookup or first)
        for index in range(1 << 20):
            (entry,) = struct.unpack_from("<Q" if step == 8 else "<I", data, thunk + step * index)
            if not entry:
                break
            if not entry & flag:
                where = _offset(head, entry & 0x7FFFFFFF) + 2  # after the hint
                text = c_string(data, where).decode("utf-8", "surrogateescape")
                found.append((first + step * index, text, where))
        at += 20


def _base_relocations(data: bytes, head: _Headers) -> tuple[int, ...] | None:
    rva, size = _directory(data, head, _DIR_BASERELOC)
    if not rva or not size:
        return None
    found: list[int] = []
    at = _offset(head, rva)
    end = at + size
    while at + 8 <= end:
        page, block = struct.unpack_from("<II", data, at)
        if block < 8:
            break
        count = (min(block, end - at) - 8) // 2
        for entry in struct.unpack_from(f"<{count}H", data, at + 8):
            kind = entry >> 12
            if kind == _REL_BASED_DIR64:
                found.append(page + (entry & 0xFFF))
            elif kind != _REL_BASED_ABSOLUTE:  # padding; HIGHLOW is 32-bit images only
                raise IndexError(f"base relocation type {kind} is not read")
        at += block
    return tuple(found)


def _function_starts(data: bytes, head: _Headers) -> tuple[int, ...]:
    rva, size = _directory(data, head, _DIR_EXCEPTION)
    if not rva or not size or head.bits != 64:
        return ()
    at = _offset(head, rva)
    count = size // 12
    entries = struct.unpack_from(f"<{3 * count}I", data, at)
    return tuple(sorted({entries[i] for i in range(0, 3 * count, 3) if entries[i]}))


def _layout(data: bytes) -> Layout:
    head = _headers(data)
    checksum_offset = head.optional + 64
    (checksum,) = struct.unpack_from("<I", data, checksum_offset)
    security = _directory(data, head, _DIR_SECURITY)
    rva, size = _directory(data, head, _DIR_EXPORT)
    exports: list[Export] = []
    names_at = ordinals_at = dll = -1
    low = high = -1
    if rva and size:
        low = _offset(head, rva)
        high = low + size
        (name_rva, _, _, count, functions, names, ordinals) = struct.unpack_from(
            "<IIIIIII", data, low + 12)
        dll = _offset(head, name_rva) if name_rva else -1
        if count:
            names_at, ordinals_at = _offset(head, names), _offset(head, ordinals)
            for slot in range(count):
                (pointer,) = struct.unpack_from("<I", data, names_at + 4 * slot)
                (ordinal,) = struct.unpack_from("<H", data, ordinals_at + 2 * slot)
                where = _offset(head, pointer)
                text = c_string(data, where).decode("utf-8", "surrogateescape")
                exports.append(Export(text, where, slot, ordinal))
        del functions
    return Layout(
        checksum_offset=checksum_offset, checksum=checksum,
        security_entry=head.directories + 8 * _DIR_SECURITY if head.count > _DIR_SECURITY else -1,
        security=security, names_offset=names_at, ordinals_offset=ordinals_at,
        exports=tuple(exports), dll_name_offset=dll, export_range=(low, high),
    )
