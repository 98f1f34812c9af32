"""Mach-O (macOS) modules: read, classified like their Linux builds, patched, re-signed.

Nothing runs Mach-O here, so the checks are structural: LIEF (an independent parser) reads
every slice as wheelshade does, the same source built for Linux x86-64, Linux aarch64 and
macOS gets the same strings patched, a shaded wheel keeps no original module path, its
``PyInit_`` name resolves through the export trie, and every code page hash is valid
(checked by codesign.py and again here with hashlib).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zipfile
from pathlib import Path

import pytest

from pypi import platform_wheels
from wheelshade import shade
from wheelshade.native import codesign
from wheelshade.native.classify import classify
from wheelshade.native.elf import BinaryFormatError
from wheelshade.native.macho import fat_slices, is_macho, read_macho
from wheelshade.native.macho_patch import exported, finish
from wheelshade.native.macho_trie import TrieError, build_trie, read_trie, rename_export
from wheelshade.native.model import BinaryInfo

lief = pytest.importorskip("lief")

MAC_ARM = (("macosx_11_0_arm64",), "3.13")
MAC_X86 = (("macosx_10_13_x86_64",), "3.13")
MAC_X86_OLD = (("macosx_10_9_x86_64",), "3.12")
UNIVERSAL = (("macosx_10_13_universal2",), "3.13")
LINUX_X86 = (("manylinux2014_x86_64",), "3.13")
LINUX_X86_312 = (("manylinux2014_x86_64",), "3.12")
LINUX_ARM = (("manylinux2014_aarch64",), "3.13")

#: (requirement, import name, the platforms it is checked on: macOS ones first).
BUILDS = {
    "markupsafe-3.0.2": ("markupsafe==3.0.2", "markupsafe", (MAC_ARM, UNIVERSAL, LINUX_X86,
                                                             LINUX_ARM)),
    "markupsafe-2.1.5": ("markupsafe==2.1.5", "markupsafe", (MAC_X86_OLD, LINUX_X86_312)),
    "msgpack-1.1.0": ("msgpack==1.1.0", "msgpack", (MAC_ARM, MAC_X86, UNIVERSAL, LINUX_X86,
                                                    LINUX_ARM)),
    "rpds-py-0.22.3": ("rpds-py==0.22.3", "rpds", (MAC_ARM, LINUX_X86)),
}
MAC_WHEELS = [(key, where) for key, (_, _, builds) in BUILDS.items() for where in builds
              if where[0][0].startswith("macosx")]


def _wheel(req: str, where: tuple[tuple[str, ...], str]) -> Path:
    folder = platform_wheels(*where, req)
    name, version = req.split("==")
    stem = f"{name.replace('-', '_')}-{version}-".lower()
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(stem)]
    return path


def _modules(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.endswith(".so")}


def _paths(data: bytes, info: BinaryInfo, name: str) -> set[str]:
    """The module paths patching renames: the name and the ``.identifier``s after it."""
    path = re.compile(re.escape(name.encode()) + rb"(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
    found = set()
    for ref in info.references:
        if ref.kind != "symbol":
            match = path.match(data, ref.offset)
            assert match is not None
            found.add(match.group().decode())
    return found


def _slices(data: bytes) -> list[bytes]:
    return [data[at:at + size] for at, size in fat_slices(data)]


# -- reading, against LIEF ----------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize(("key", "where"), MAC_WHEELS, ids=lambda v: v if isinstance(v, str)
                         else v[0][0])
def test_reads_every_slice_like_lief(key: str, where: tuple[tuple[str, ...], str]) -> None:
    """Sections, defined symbols, function starts, pointer fixups and exports of every
    slice, as LIEF reads them."""
    req, _, _ = BUILDS[key]
    for member, data in _modules(_wheel(req, where)).items():
        fat = lief.MachO.parse(list(data))
        parts = read_macho(data, member)
        assert fat is not None and fat.size == len(parts)
        for index, part in enumerate(parts):
            binary, elf = fat.at(index), part.elf
            assert elf.format == "Mach-O" and elf.machine == {
                "ARM64": "aarch64", "X86_64": "x86_64"}[binary.header.cpu_type.name]
            theirs = {(f"{s.segment_name},{s.name}", s.virtual_address, s.size,
                       None if "ZEROFILL" in s.type.name else s.offset) for s in binary.sections}
            assert {(s.name, s.addr, s.size, None if s.type == 8 else s.offset - part.offset)
                    for s in elf.sections} == theirs
            kept = {s.name for s in elf.data_sections}
            assert "__TEXT,__const" in kept and not kept & {
                "__TEXT,__text", "__TEXT,__stubs", "__TEXT,__unwind_info", "__DATA_CONST,__got"}
            defined = {"_" + s.name for s in elf.symbols if s.defined}
            # nlist n_type: external (0x01), not a debugging entry (0xe0), not undefined
            assert defined == {s.name for s in binary.symbols if s.origin.name == "SYMTAB"
                               and s.raw_type & 0xE1 == 0x01 and s.raw_type & 0x0E}
            assert set(elf.starts or ()) == {binary.imagebase + f for f in
                                             binary.function_starts.functions}
            stored = {(elf_address(part, at)) for at, _ in elf.fixups}
            # LIEF lists the rebases (classic opcodes or chained fixups) as relocations.
            assert stored == {r.address for r in binary.relocations}
            assert {n.decode() for n in exported(data[part.offset:part.end], member)} == {
                f.name for f in binary.exported_functions}


def elf_address(part: object, offset: int) -> int:
    for section in part.elf.sections:  # type: ignore[attr-defined]
        if section.type != 8 and section.offset <= offset < section.end:
            return int(section.addr + offset - section.offset)
    raise AssertionError(f"no section holds {offset:#x}")

