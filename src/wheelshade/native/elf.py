"""A small read-only ELF reader (stdlib ``struct``): headers, sections, dynamic symbols and tags."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from wheelshade.errors import WheelFormatError

ByteOrder = Literal["little", "big"]

# Section types and flags (System V ABI).
SHT_PROGBITS = 1
SHT_DYNAMIC = 6
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_COMPRESSED = 0x800
SHN_UNDEF = 0
SHN_XINDEX = 0xFFFF
# Program header type and flags.
PT_LOAD = 1
PF_X, PF_W = 1, 2

# Dynamic tags.
DT_NULL = 0
DT_NEEDED = 1
DT_SONAME = 14
DT_RPATH = 15
DT_RUNPATH = 29

#: Allocated, non-executable PROGBITS sections that hold no C strings (unwind tables, GOT).
_NOT_STRING_DATA = frozenset(
    {".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".got", ".got.plt", ".ARM.exidx"}
)

_MACH_O = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")

_MACHINES = {
    3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64",
    183: "aarch64", 243: "riscv", 258: "loongarch",
}


class BinaryFormatError(WheelFormatError):
    """A file that claims to be ELF (or PE, or Mach-O) is truncated or malformed."""

    def __init__(self, path: str, reason: str, kind: str = "ELF") -> None:
        super().__init__(f"malformed {kind} file: {reason}", path=path)
        self.reason = reason


class UnsupportedBinary(WheelFormatError):
    """A compiled file in a format wheelshade cannot read or patch yet (32-bit Mach-O, unknown)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(
            f"{kind} binaries are not supported yet (only ELF, as on Linux, PE, as on "
            "Windows, and 64-bit Mach-O, as on macOS, can be inspected and patched)",
            path=path,
            hint="leave the file out with --drop 'PATTERN', or shade the Linux wheel",
        )
        self.kind = kind


@dataclass(frozen=True)
class Section:
    """One section header; ``offset``/``size`` locate its bytes in the file."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Segment:
    """One program header; ``header`` is the file offset of the header itself."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    header: int


@dataclass(frozen=True)
class Symbol:
    """A dynamic symbol; ``name_offset`` is the file offset of its name in ``.dynstr``."""

    index: int
    name: str
    name_offset: int
    value: int
    size: int
    bind: int
    type: int
    shndx: int

    @property
    def defined(self) -> bool:
        return self.shndx != SHN_UNDEF


@dataclass(frozen=True)
class Elf:
    """The parts of an ELF file that wheelshade looks at."""

    path: str
    bits: Literal[32, 64]
    byte_order: ByteOrder
    elf_type: int
    machine: str
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]
    #: (tag, value) of each ``.dynamic`` entry before DT_NULL; string values already resolved.
    dynamic: tuple[tuple[int, int | str], ...]
    segments: tuple[Segment, ...] = ()
    #: The file format read into this shape: ``"ELF"``, ``"PE"`` (see pe.py) or ``"Mach-O"``.
    format: str = "ELF"
    #: Function start addresses when the format lists them itself (Mach-O's
    #: ``LC_FUNCTION_STARTS``); None: read ``.eh_frame_hdr`` (see function_starts).
    starts: tuple[int, ...] | None = None
    #: (file offset, target address) of each pointer the loader fixes up, when the format
    #: says so outside ELF relocations (Mach-O chained fixups and rebase opcodes).
    fixups: tuple[tuple[int, int], ...] = ()
    #: (address, imported name) of each call stub and symbol pointer, when the format says
    #: so outside ELF relocations (Mach-O's indirect symbols); the callers' PLT otherwise.
    imports: tuple[tuple[int, str], ...] = ()

    @property
    def kind(self) -> str:
        """The machine, with the format when it is not ELF (``"x86_64 PE"``)."""
        return self.machine if self.format == "ELF" else f"{self.machine} {self.format}"

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def dynamic_strings(self, tag: int) -> tuple[str, ...]:
        return tuple(v for t, v in self.dynamic if t == tag and isinstance(v, str))

    @property
    def needed(self) -> tuple[str, ...]:
        return self.dynamic_strings(DT_NEEDED)

    @property
    def soname(self) -> str | None:
        names = self.dynamic_strings(DT_SONAME)
        return names[0] if names else None

    @property
    def rpath(self) -> tuple[str, ...]:
        return _split_paths(self.dynamic_strings(DT_RPATH))

    @property
    def runpath(self) -> tuple[str, ...]:
        return _split_paths(self.dynamic_strings(DT_RUNPATH))

    @property
    def data_sections(self) -> tuple[Section, ...]:
        """Allocated, non-executable PROGBITS sections: where a binary keeps its C strings."""
        return tuple(
            s for s in self.sections
            if s.type == SHT_PROGBITS
            and s.flags & SHF_ALLOC
            and not s.flags & (SHF_EXECINSTR | SHF_COMPRESSED)
            and s.name not in _NOT_STRING_DATA
            and s.size
        )


def sniff(data: bytes, path: str) -> None:
    """Raise UnsupportedBinary unless ``data`` starts like an ELF file."""
    if data[:4] == b"\x7fELF":
        return
    magic = data[:4]
    if magic in _MACH_O:
        raise UnsupportedBinary(path, "Mach-O")
    if magic in (b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca"):
        # Java class files share 0xcafebabe; their next word (a version) is >= 45.
        count = int.from_bytes(data[4:8], "big" if magic[0] == 0xCA else "little")
        if count < 45:
            raise UnsupportedBinary(path, "Mach-O universal")
    if data[:2] == b"MZ":
        raise UnsupportedBinary(path, "PE (Windows)")
    raise UnsupportedBinary(path, "unrecognised (not ELF, Mach-O or PE)")


def read_elf(data: bytes, path: str) -> Elf:
    """Parse ``data`` (the whole file); raise UnsupportedBinary or BinaryFormatError."""
    sniff(data, path)
    try:
        return _parse(data, path)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise BinaryFormatError(path, f"truncated or inconsistent headers ({exc})") from None


def c_string(data: bytes, offset: int) -> bytes:
    """The NUL-terminated byte string starting at ``offset``."""
    end = data.find(b"\x00", offset)
    if end < 0:
        raise IndexError(f"unterminated string at offset {offset:#x}")
    return data[offset:end]


def _parse(data: bytes, path: str) -> Elf:
    bits: Literal[32, 64]
    if data[4] == 1:
        bits = 32
    elif data[4] == 2:
        bits = 64
    else:
        raise BinaryFormatError(path, f"unknown ELF class {data[4]}")
    if data[5] not in (1, 2):
        raise BinaryFormatError(path, f"unknown ELF data encoding {data[5]}")
    order: ByteOrder = "little" if data[5] == 1 else "big"
    end = "<" if order == "little" else ">"
    word = "Q" if bits == 64 else "I"
    (e_type, e_machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = struct.unpack_from(f"{end}HHI{word}{word}{word}IHHHHHH", data, 16)
    if not shoff:
        raise BinaryFormatError(path, "no section headers (stripped with sstrip?)")
    sh_fmt = f"{end}II{word}{word}{word}{word}II{word}{word}"
    if struct.calcsize(sh_fmt) > shentsize:
        raise BinaryFormatError(path, f"section header size {shentsize} too small")
    first = struct.unpack_from(sh_fmt, data, shoff)
    if shnum == 0:  # extended numbering: the real count is in section 0
        shnum = first[5]
    if shstrndx == SHN_XINDEX:
        shstrndx = first[6]
    raw = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
    for fields in raw:
        if fields[1] != SHT_NOBITS and fields[4] + fields[5] > len(data):
            raise BinaryFormatError(path, "a section extends past the end of the file")
    names_at = raw[shstrndx][4] if shstrndx < shnum else 0
    sections = tuple(
        Section(
            index=i,
            name=c_string(data, names_at + f[0]).decode("utf-8", "replace") if names_at else "",
            type=f[1], flags=f[2], addr=f[3], offset=f[4], size=f[5], link=f[6], entsize=f[9],
        )
        for i, f in enumerate(raw)
    )
    return Elf(
        path=path,
        bits=bits,
        byte_order=order,
        elf_type=e_type,
        machine=_MACHINES.get(e_machine, f"machine-{e_machine}"),
        sections=sections,
        symbols=_symbols(data, sections, end, bits),
        dynamic=_dynamic(data, sections, end, bits),
        segments=_segments(data, phoff, phentsize, phnum, end, bits),
    )


def _segments(
    data: bytes, phoff: int, entsize: int, count: int, end: str, bits: int
) -> tuple[Segment, ...]:
    if not phoff or not count:
        return ()
    fmt = f"{end}IIQQQQQQ" if bits == 64 else f"{end}IIIIIIII"
    if struct.calcsize(fmt) > entsize:
        raise IndexError(f"program header size {entsize} too small")
    out = []
    for index in range(count):
        at = phoff + index * entsize
        fields = struct.unpack_from(fmt, data, at)
        if bits == 64:
            kind, flags, offset, vaddr, _, filesz, memsz, align = fields
        else:
            kind, offset, vaddr, _, filesz, memsz, flags, align = fields
        out.append(Segment(kind, flags, offset, vaddr, filesz, memsz, align, at))
    return tuple(out)


def _symbols(data: bytes, sections: tuple[Section, ...], end: str, bits: int) -> tuple[Symbol, ...]:
    table = next((s for s in sections if s.type == SHT_DYNSYM), None)
    if table is None or table.link >= len(sections):
        return ()
    strtab = sections[table.link]
    fmt = f"{end}IBBHQQ" if bits == 64 else f"{end}IIIBBH"
    size = struct.calcsize(fmt)
    step = table.entsize or size
    symbols = []
    for index in range(table.size // step):
        fields = struct.unpack_from(fmt, data, table.offset + index * step)
        if bits == 64:
            name, info, _, shndx, value, sym_size = fields
        else:
            name, value, sym_size, info, _, shndx = fields
        if name >= strtab.size:
            raise IndexError(f"symbol {index} name outside .dynstr")
        at = strtab.offset + name
        symbols.append(Symbol(
            index=index, name=c_string(data, at).decode("utf-8", "surrogateescape"),
            name_offset=at, value=value, size=sym_size, bind=info >> 4, type=info & 0xF,
            shndx=shndx,
        ))
    return tuple(symbols)


def _dynamic(
    data: bytes, sections: tuple[Section, ...], end: str, bits: int
) -> tuple[tuple[int, int | str], ...]:
    table = next((s for s in sections if s.type == SHT_DYNAMIC), None)
    if table is None:
        return ()
    strtab = sections[table.link] if table.link < len(sections) else None
    fmt = f"{end}qQ" if bits == 64 else f"{end}iI"
    step = struct.calcsize(fmt)
    entries: list[tuple[int, int | str]] = []
    for index in range(table.size // step):
        tag, value = struct.unpack_from(fmt, data, table.offset + index * step)
        if tag == DT_NULL:
            break
        if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH) and strtab is not None:
            text = c_string(data, strtab.offset + value).decode("utf-8", "surrogateescape")
            entries.append((tag, text))
        else:
            entries.append((tag, value))
    return tuple(entries)


def _split_paths(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for v in values for p in v.split(":") if p)


def function_starts(data: bytes, elf: Elf) -> list[int]:
    """Sorted start addresses of every function with unwind information (``.eh_frame_hdr``).

    The header's binary-search table lists each FDE's initial location; only the usual
    encoding (``DW_EH_PE_datarel | DW_EH_PE_sdata4``, 0x3b) is read, else none are known.
    A format that lists its function starts (Mach-O) gives them instead.
    """
    if elf.starts is not None:
        return list(elf.starts)
    if elf.format == "PE":  # its unwind table is ``.pdata``
        from wheelshade.native.pe import read_tables

        return list(read_tables(data, elf.path).starts)
    header = elf.section(".eh_frame_hdr")
    if header is None or header.size < 12:
        return []
    raw = data[header.offset:header.end]
    version, pointer_enc, count_enc, table_enc = raw[:4]
    sizes = {0x03: 4, 0x0B: 4, 0x1B: 4, 0x04: 8, 0x0C: 8, 0x1C: 8}
    if version != 1 or table_enc != 0x3B or pointer_enc not in sizes or count_enc != 0x03:
        return []
    at = 4 + sizes[pointer_enc]
    (count,) = struct.unpack_from("<I", raw, at)
    at += 4
    count = min(count, (len(raw) - at) // 8)
    table = struct.unpack_from(f"<{2 * count}i", raw, at)
    return sorted(header.addr + table[i] for i in range(0, 2 * count, 2))
