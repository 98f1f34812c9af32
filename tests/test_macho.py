"""Mach-O (macOS) modules: read, classified like their Linux builds, patched, re-signed.

Nothing runs Mach-O here, so the checks are structural: LIEF (an independent parser) reads
every slice as wheelshade does, the same source built for Linux x86-64, Linux aarch64 and
macOS gets the same strings patched, a shaded wheel keeps no original module path, its
``PyInit_`` name resolves through the export trie, and every code page hash is valid
(checked by codesign.py and again here with hashlib).
"""

from __future__ import annotations

import hashlib
import posixpath
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
from wheelshade.rewrite.bound import set_proof
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.summary import Role, summarise

lief = pytest.importorskip("lief")

MAC_ARM = (("macosx_11_0_arm64",), "3.13")
MAC_X86 = (("macosx_10_13_x86_64",), "3.13")
MAC_X86_OLD = (("macosx_10_9_x86_64",), "3.12")
UNIVERSAL = (("macosx_10_13_universal2",), "3.13")
LINUX_X86 = (("manylinux2014_x86_64",), "3.13")
LINUX_X86_312 = (("manylinux2014_x86_64",), "3.12")
LINUX_ARM = (("manylinux2014_aarch64",), "3.13")
UNIVERSAL_11 = (("macosx_11_0_universal2",), "3.13")
LINUX_X86_228 = (("manylinux_2_28_x86_64",), "3.13")
LINUX_ARM_228 = (("manylinux_2_28_aarch64",), "3.13")

#: (requirement, import name, the platforms it is checked on: macOS ones first).
BUILDS = {
    "markupsafe-3.0.2": ("markupsafe==3.0.2", "markupsafe", (MAC_ARM, UNIVERSAL, LINUX_X86,
                                                             LINUX_ARM)),
    "markupsafe-2.1.5": ("markupsafe==2.1.5", "markupsafe", (MAC_X86_OLD, LINUX_X86_312)),
    "msgpack-1.1.0": ("msgpack==1.1.0", "msgpack", (MAC_ARM, MAC_X86, UNIVERSAL, LINUX_X86,
                                                    LINUX_ARM)),
    "rpds-py-0.22.3": ("rpds-py==0.22.3", "rpds", (MAC_ARM, LINUX_X86)),
    # C++; registers its type as the module attribute "greenlet" (not a module name): the
    # call is followed to PyModule_AddObjectRef through Mach-O stubs as through the PLT.
    "greenlet-3.4.0": ("greenlet==3.4.0", "greenlet", (UNIVERSAL_11, LINUX_X86_228,
                                                      LINUX_ARM_228)),
    # Cython 3.3: module names in LZSS-packed string tables, inflated by a loop in the code.
    "sqlalchemy-2.0.58": ("sqlalchemy==2.0.58", "sqlalchemy", (MAC_ARM, LINUX_ARM_228)),
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
            assert kept & {"__TEXT,__const", "__TEXT,__cstring"} and not kept & {
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



# -- the same decisions on every platform ---------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("key", list(BUILDS))
def test_same_strings_patched_on_linux_and_macos(key: str) -> None:
    """One release built for Linux x86-64, Linux aarch64 and macOS (thin and universal2):
    the same module paths are patched, nothing is refused, and what is left alone is left
    because nothing refers to the name on its own (the linkers merge strings differently:
    where a Linux build refers to a tail, that tail is patched as a Cython label)."""
    req, name, builds = BUILDS[key]
    patched: dict[str, dict[str, tuple[object, ...]]] = {}
    for where in builds:
        for member, data in _modules(_wheel(req, where)).items():
            info = classify(data, member, [name])
            label = where[0][0] + ("" if info.format == "ELF" else " " + info.machine)
            assert info.suspects == () and not info.opaque_strings, (label, member)
            assert {r.verdict for r in info.embedded} <= {"never-alone", "attribute"}, label
            assert {r.verdict for r in info.references} <= {"", "used-alone", "label"}, label
            attributes = {r.name for r in info.embedded if r.verdict == "attribute"}
            tables = sorted((t.text, tuple(t.module_paths([name]))) for t in info.tables)
            patched.setdefault(label, {})[member.split(".")[0]] = (
                _paths(data, info, name), attributes, tables)
    first = next(iter(patched.values()))
    assert first and all(p == first for p in patched.values()), patched


# -- shading macOS wheels ----------------------------------------------------------------------


def _page_hashes_valid(thin: bytes) -> bool:
    """Every code page hash of every CodeDirectory, recomputed with hashlib (an independent
    reading of the signature: cs_blobs.h)."""
    ncmds, = struct.unpack_from("<I", thin, 16)
    at, signature = 32, None
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", thin, at)
        if cmd == 0x1D:
            signature = struct.unpack_from("<II", thin, at + 8)
        at += size
    assert signature is not None
    start = signature[0]
    magic, _, count = struct.unpack_from(">III", thin, start)
    assert magic == 0xFADE0CC0
    checked = 0
    for index in range(count):
        slot, offset = struct.unpack_from(">II", thin, start + 12 + 8 * index)
        if slot != 0 and not 0x1000 <= slot < 0x1005:
            continue
        cd = start + offset
        (_, _, version, _, hash_at, _, _, slots, limit, size, kind, _, page) = struct.unpack_from(
            ">IIIIIIIIIBBBB", thin, cd)
        if version >= 0x20300:
            limit = struct.unpack_from(">Q", thin, cd + 56)[0] or limit
        algorithm = {1: "sha1", 2: "sha256", 3: "sha256", 4: "sha384"}[kind]
        step = 1 << page
        for n in range(slots):
            digest = hashlib.new(algorithm, thin[n * step:min((n + 1) * step, limit)]).digest()
            stored = thin[cd + hash_at + n * size:cd + hash_at + (n + 1) * size]
            if digest[:size] != stored:
                return False
            checked += 1
    return checked > 0


@pytest.mark.network
@pytest.mark.parametrize(("key", "where"), MAC_WHEELS, ids=lambda v: v if isinstance(v, str)
                         else v[0][0])
def test_shaded_macos_wheel_is_consistent(
    key: str, where: tuple[tuple[str, ...], str], tmp_path: Path
) -> None:
    """Shaded: LIEF reads every slice, no original module path is left as a string, the
    ``PyInit_`` name still resolves through the export trie, every page hash is valid,
    the fat header and slice sizes are unchanged, and the note says nothing was
    load-checked."""
    req, name, _ = BUILDS[key]
    wheel = _wheel(req, where)
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping[name]
    assert len(new) == len(name)
    (note,) = [n for n in result.notes if "not load-checked" in n]
    assert "macosx" in note and "qemu" not in note
    before, after = _modules(wheel), _modules(report.output)
    assert len(before) == len(after)
    with WheelReader(wheel) as reader:
        proof = set_proof([summarise(reader, Role.DEP)])
    for member, data in after.items():
        original = before[member.replace(new, name, 1)]
        assert is_macho(data) and len(data) == len(original)
        assert fat_slices(data) == fat_slices(original)
        assert data[:4096 if len(fat_slices(data)) > 1 else 0] == original[
            :4096 if len(fat_slices(data)) > 1 else 0]
        # With the set's evidence, as shading classified it: strings that are no module
        # paths of the set (a type's "greenlet.UnswitchableGreenlet") keep their bytes.
        info = classify(data, member, [name, new], proof)
        assert {r.name for r in info.references if r.kind != "symbol"} <= {new}
        assert set(info.packed_names) <= {new} and not info.opaque_strings
        # No C string starts with the original name any more but attribute names (what is
        # left of it is inside longer strings nothing reads it from, as on Linux).
        assert info.suspects == ()
        kept = {r.offset for r in classify(original, member, [name], proof).embedded
                if r.verdict in ("attribute", "unproven")}
        sections = [s for part in read_macho(data, member) for s in part.elf.data_sections]
        left = {m.start() + 1 for m in re.finditer(rb"\0" + name.encode() + rb"[\0.]", data)
                if any(s.offset <= m.start() + 1 < s.end for s in sections)}
        assert left <= kept
        fat = lief.MachO.parse(list(data))
        assert fat is not None and fat.size == len(fat_slices(data))
        module = member.rsplit("/", 1)[1].split(".")[0]
        for index, thin in enumerate(_slices(data)):
            assert f"_PyInit_{module}" in {f.name for f in fat.at(index).exported_functions}
            assert codesign.check(thin) == []
            if codesign.has_signature(thin):
                assert _page_hashes_valid(thin)
            else:  # only x86_64 slices are left unsigned by the linker
                assert fat.at(index).header.cpu_type.name == "X86_64"


@pytest.mark.network
def test_init_rename_in_symbols_and_trie_every_slice() -> None:
    """``PyInit_<old>`` renamed in every slice's symbol table and export trie (with another
    export sharing the trie's ``_`` edge), read back by LIEF; signatures valid again."""
    req, _, _ = BUILDS["msgpack-1.1.0"]
    (member, data), = _modules(_wheel(req, UNIVERSAL)).items()
    out, notes = finish(data, member, ("_cmsgpack", "_cxq2ab3k"))
    assert notes == [] and len(out) == len(data) and out[:4096] == data[:4096]
    fat = lief.MachO.parse(list(out))
    for index, thin in enumerate(_slices(out)):
        binary = fat.at(index)
        names = {f.name for f in binary.exported_functions}
        assert names == {"_PyInit__cxq2ab3k", "___pyx_module_is_main_msgpack___cmsgpack"}
        symbols = {s.name for s in binary.symbols}
        assert "_PyInit__cxq2ab3k" in symbols and "_PyInit__cmsgpack" not in symbols
        assert codesign.check(thin) == []
        assert not codesign.has_signature(thin) or _page_hashes_valid(thin)
    with pytest.raises(Exception, match="defines no PyInit_nothere"):
        finish(data, member, ("nothere", "nothe2e"))


# -- hand-built structures -----------------------------------------------------------------------


def test_trie_round_trip_and_rename_that_splits_an_edge() -> None:
    entries = {b"_PyInit_foo": b"\x00\x80\x20", b"_PyInit_fob": b"\x00\x90\x20",
               b"_other": b"\x00\x10"}
    trie = build_trie(entries)
    assert read_trie(trie, 0, len(trie)) == entries
    # "foo" shares the edge "fo" with "fob": renaming it "fxq" gives it an edge of its own.
    out = bytearray(trie + bytes(8))
    rename_export(out, 0, len(out), b"_PyInit_foo", b"_PyInit_fxq")
    assert read_trie(out, 0, len(out)) == {b"_PyInit_fxq": b"\x00\x80\x20",
                                           b"_PyInit_fob": b"\x00\x90\x20",
                                           b"_other": b"\x00\x10"}
    with pytest.raises(TrieError, match="has no _PyInit_bar"):
        rename_export(out, 0, len(out), b"_PyInit_bar", b"_PyInit_baz")
    with pytest.raises(TrieError, match="needs"):
        rename_export(bytearray(trie), 0, len(trie) - 1, b"_PyInit_fob", b"_PyInit_qqq")


def test_trie_with_a_loop_is_refused() -> None:
    looped = b"\x00\x01a\x00\x00"  # the root's only child is the root
    with pytest.raises(TrieError, match="out of place"):
        read_trie(looped, 0, len(looped))


def test_fat_header_slices() -> None:
    header = struct.pack(">II", 0xCAFEBABE, 2) + struct.pack(">iiIII", 0x01000007, 3, 64, 16, 4)
    header += struct.pack(">iiIII", 0x0100000C, 0, 80, 16, 4)
    data = header.ljust(96, b"\0")
    assert fat_slices(data) == [(64, 16), (80, 16)]
    # A Java class file starts with 0xcafebabe too; its second word is a version >= 45.
    assert not is_macho(struct.pack(">II", 0xCAFEBABE, 52) + bytes(32))
    with pytest.raises(BinaryFormatError, match=r"^x\.so: malformed Mach-O file: truncated"):
        read_macho(data[:90], "x.so")


@pytest.mark.network
def test_truncated_macho_is_one_line_error(tmp_path: Path) -> None:
    from wheel.wheelfile import WheelFile

    from helpers import wheelshade

    req, _, _ = BUILDS["markupsafe-3.0.2"]
    (_, data), = _modules(_wheel(req, MAC_ARM)).items()
    with pytest.raises(BinaryFormatError, match=r"^m\.so: malformed Mach-O file: truncated"):
        classify(data[:0x300], "m.so", ["markupsafe"])
    path = tmp_path / "broken-1.0-cp313-cp313-macosx_11_0_arm64.whl"
    with WheelFile(path, "w") as wf:
        wf.writestr("broken/__init__.py", "")
        wf.writestr("broken/_speedups.cpython-313-darwin.so", data[:0x300])
        wf.writestr("broken-1.0.dist-info/METADATA",
                    "Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
        wf.writestr("broken-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\n"
                    "Root-Is-Purelib: false\nTag: cp313-cp313-macosx_11_0_arm64\n")
    proc = wheelshade("shade", "--dep", path, "-o", tmp_path / "out")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "malformed Mach-O file: truncated" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- load commands that name the package (delocate's .dylibs) ---------------------------------


@pytest.mark.network
def test_relink_in_place_with_padding_and_refused_without_room() -> None:
    """A load-command path set to a same-length, a longer (the header's free space) and a
    far too long path: LIEF reads the first two in every slice, signatures stay valid,
    the slice sizes do not change; the last is refused, saying why."""
    from wheelshade.errors import RewriteError
    from wheelshade.native.macho_patch import relink

    req, _, _ = BUILDS["markupsafe-3.0.2"]
    (member, data), = _modules(_wheel(req, UNIVERSAL)).items()
    old = "/usr/lib/libSystem.B.dylib"
    for new in ("/usr/lib/libSystem.B.dylix", "@loader_path/../markupsafe/.dylibs/libSystem.dylib"):
        out = relink(data, member, [old], [new])
        assert len(out) == len(data) and fat_slices(out) == fat_slices(data)
        fat = lief.MachO.parse(list(out))
        for index, thin in enumerate(_slices(out)):
            assert [lib.name for lib in fat.at(index).libraries] == [new]
            assert codesign.check(thin) == []
    with pytest.raises(RewriteError, match=r"needs \d+ more bytes and the header has \d+ free"):
        relink(data, member, [old], ["/" + "x" * 0x10000])


def test_relocate_reads_loader_path_like_origin() -> None:
    from wheelshade.native.patching import relocate_rpath

    moved = relocate_rpath("@loader_path/../pkg/.dylibs/libz.dylib:@loader_path/.dylibs/a.dylib",
                           "pkg/m.so", "q7z/m.so", {"pkg": "q7z"})
    assert moved == "@loader_path/.dylibs/libz.dylib:@loader_path/.dylibs/a.dylib"


@pytest.mark.network
def test_load_command_naming_the_package_follows_it(tmp_path: Path) -> None:
    """A module that loads ``@loader_path/../markupsafe/.dylibs/...`` (a path through its
    own package's name) loads from the shaded folder after shading, and the library is
    there."""
    from wheel.wheelfile import WheelFile

    from wheelshade.native.macho_patch import relink

    req, _, _ = BUILDS["markupsafe-3.0.2"]
    source = _wheel(req, MAC_ARM)
    link = "@loader_path/../markupsafe/.dylibs/libSystem.B.dylib"
    built = tmp_path / "in" / source.name
    built.parent.mkdir()
    with zipfile.ZipFile(source) as zf, WheelFile(built, "w") as out:
        for name in zf.namelist():
            data = zf.read(name)
            if name.endswith(".so"):
                data = relink(data, name, ["/usr/lib/libSystem.B.dylib"], [link])
                out.writestr("markupsafe/.dylibs/libSystem.B.dylib", b"stand-in")
            if not name.endswith(("/RECORD", "/")):
                out.writestr(name, data)
    result = shade([], [built], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["markupsafe"]
    (member, data), = _modules(report.output).items()
    (part,) = read_macho(data, member)
    (path,) = [d.path for d in part.dylibs]
    target = posixpath.normpath(posixpath.join(posixpath.dirname(member),
                                               path.removeprefix("@loader_path/")))
    assert target == f"{new}/.dylibs/libSystem.B.dylib"
    with zipfile.ZipFile(report.output) as zf:
        assert target in zf.namelist()
    assert codesign.check(data) == [] and _page_hashes_valid(data)


@pytest.mark.network
def test_delocated_wheel_still_finds_its_dylibs(tmp_path: Path) -> None:
    """A delocated wheel (libraries in ``<pkg>/.dylibs``): after shading, every
    ``@loader_path`` load command of every Mach-O file, module or library, names a member
    of the shaded wheel, and every patched slice's page hashes are valid."""
    wheel = _wheel("psycopg2-binary==2.9.13", MAC_ARM)
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["psycopg2"]
    with zipfile.ZipFile(report.output) as zf:
        names = set(zf.namelist())
        machos = {n: zf.read(n) for n in names if n.endswith((".so", ".dylib"))}
    assert f"{new}/.dylibs/libpq.5.dylib" in names
    resolved = 0
    for member, data in machos.items():
        for part in read_macho(data, member):
            for link in part.dylibs:
                if link.path.startswith("@loader_path/"):
                    target = posixpath.normpath(posixpath.join(
                        posixpath.dirname(member), link.path.removeprefix("@loader_path/")))
                    assert target in names, (member, link.path)
                    resolved += 1
            assert codesign.check(data[part.offset:part.end]) == []
    assert resolved >= 3
    (module,) = [m for m in machos if m.endswith(".so")]
    with WheelReader(wheel) as reader:
        proof = set_proof([summarise(reader, Role.DEP)])
    # Left: only strings that are no module paths ("psycopg2.connection.native_connection").
    info = classify(machos[module], module, ["psycopg2"], proof)
    assert info.references == () and info.suspects == ()
    assert any(r.verdict == "unproven" for r in info.embedded)


@pytest.mark.network
def test_damaged_macho_is_always_a_wheelshade_error() -> None:
    """Truncated anywhere in its headers, or with bytes of its load commands or
    ``__LINKEDIT`` tables changed, a module is read, refused or patched; nothing else."""
    import random

    from wheelshade.errors import WheelshadeError

    req, _, _ = BUILDS["markupsafe-3.0.2"]
    (member, data), = _modules(_wheel(req, UNIVERSAL)).items()
    tables = read_macho(data, member)[0].elf.sections[-1].end
    rng = random.Random(15)
    damaged = [data[:cut] for cut in range(0, 0x1000, 24)]
    for low, high in ((0, 0x1000), (tables, len(data))):
        for _ in range(60):
            copy = bytearray(data)
            for _ in range(3):
                copy[rng.randrange(low, high)] = rng.randrange(256)
            damaged.append(bytes(copy))
    for sample in damaged:
        try:
            classify(sample, member, ["markupsafe"])
            finish(sample, member, ("_speedups", "_sxeedups"))
        except WheelshadeError:
            pass
