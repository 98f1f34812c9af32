"""Windows amd64 wheels (PE ``.pyd`` modules) shaded, checked with an independent parser."""

from __future__ import annotations

import json
import random
import re
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from pypi import platform_wheels, wheels
from wheelshade import shade
from wheelshade.errors import RewriteError, WheelshadeError
from wheelshade.native import refs
from wheelshade.native.classify import classify
from wheelshade.native.elf import BinaryFormatError, read_elf
from wheelshade.native.model import Reference
from wheelshade.native.pe import is_pe, read_layout, read_pe, read_tables
from wheelshade.native.pe_patch import checksum, finish, rename_export
from wheelshade.native.x86_64_calls import Calls

pefile = pytest.importorskip("pefile")

pytestmark = pytest.mark.network

WINDOWS = (("win_amd64",), "3.11")


def _one(folder: Path, prefix: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return path


def _member(wheel: Path, suffix: str) -> tuple[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(suffix)]
        return name, zf.read(name)


def _exports(data: bytes) -> list[bytes]:
    pe = pefile.PE(data=data)
    return [e.name for e in pe.DIRECTORY_ENTRY_EXPORT.symbols]


def _patched(data: bytes, refs: Iterable[Reference]) -> set[bytes]:
    """The C strings patching starts at (the string a reference is displayed with may begin
    earlier, after binary data)."""
    return {data[r.offset:data.index(b"\0", r.offset)] for r in refs if r.kind != "symbol"}


def _speedups(version: str) -> bytes:
    folder = platform_wheels(*WINDOWS, f"markupsafe=={version}")
    return _member(_one(folder, f"markupsafe-{version}-"), ".pyd")[1]


def test_reads_a_pyd_like_pefile() -> None:
    """Sections, machine, exports and CheckSum field as pefile reads them; the export
    directory's names are symbols, not string data."""
    data = _speedups("3.0.2")
    pe = pefile.PE(data=data)
    elf = read_pe(data, "_speedups.pyd")
    assert (elf.format, elf.machine, elf.bits, elf.kind) == ("PE", "x86_64", 64, "x86_64 PE")
    raw = {(s.Name.rstrip(b"\0").decode(), s.PointerToRawData) for s in pe.sections}
    assert {(s.name, s.offset) for s in elf.sections if s.name != ".edata"} >= {
        r for r in raw if r[0] in (".text", ".rdata", ".data")}
    assert [s.name for s in elf.data_sections] == [".rdata", ".rdata", ".data"]
    assert [s.name for s in elf.symbols if s.defined] == [e.decode() for e in _exports(data)]
    assert "PyModule_Create2" in {s.name for s in elf.symbols if not s.defined}
    layout = read_layout(data, "_speedups.pyd")
    assert layout.checksum == pe.OPTIONAL_HEADER.CheckSum
    assert layout.security == (0, 0)


@pytest.mark.parametrize("edit", ["as-is", "one-byte", "odd-length"])
def test_checksum_is_pefiles(edit: str) -> None:
    data = bytearray(_speedups("3.0.2"))
    if edit == "one-byte":
        data[0x1234] ^= 0x5A
    elif edit == "odd-length":
        data += b"\x07"
    field = read_layout(bytes(data), "x").checksum_offset
    assert checksum(bytes(data), field) == pefile.PE(data=bytes(data)).generate_checksum()


def test_signature_removed_and_checksum_kept_valid() -> None:
    """A signed image (certificate table at the end) loses its table, the directory entry
    is cleared, and a non-zero CheckSum is made right again."""
    plain = _speedups("3.0.2")
    layout = read_layout(plain, "x")
    signed = bytearray(plain) + b"\x30\x82" + bytes(510)
    struct.pack_into("<II", signed, layout.security_entry, len(plain), 512)
    struct.pack_into("<I", signed, layout.checksum_offset, 0x1234)
    out, removed = finish(bytes(signed), "x")
    assert removed and out[:layout.checksum_offset] == plain[:layout.checksum_offset]
    assert len(out) == len(plain) and read_layout(out, "x").security == (0, 0)
    assert pefile.PE(data=out).verify_checksum()
    assert finish(plain, "x") == (plain, False)  # a zero CheckSum stays zero


def test_export_rename_keeps_the_table_sorted() -> None:
    folder = platform_wheels(*WINDOWS, "ujson==5.9.0")
    _, data = _member(_one(folder, "ujson-5.9.0-"), ".pyd")
    assert _exports(data) == [b"JSON_DecodeObject", b"JSON_EncodeObject", b"PyInit_ujson"]
    # A new name that sorts first moves its pointer and ordinal to the front.
    out = rename_export(data, "PyInit_ujson", "AAInit_ujson", "ujson.pyd")
    pe = pefile.PE(data=out)
    rows = [(e.name, e.address) for e in pe.DIRECTORY_ENTRY_EXPORT.symbols]
    before = dict((e.name, e.address) for e in pefile.PE(data=data).DIRECTORY_ENTRY_EXPORT.symbols)
    assert [n for n, _ in rows] == sorted(n for n, _ in rows)
    assert rows[0] == (b"AAInit_ujson", before[b"PyInit_ujson"])
    assert dict(rows[1:]) == {k: v for k, v in before.items() if k != b"PyInit_ujson"}
    with pytest.raises(ValueError, match="exports no 'PyInit_nope'"):
        rename_export(data, "PyInit_nope", "PyInit_nop2", "ujson.pyd")


def test_markupsafe_windows_patches_what_linux_patches(tmp_path: Path) -> None:
    """The same strings are patched in the Windows build as in the Linux x86-64 build of
    the same release, and none is left; the output parses and its checksum is valid."""
    linux = _member(_one(wheels("markupsafe==3.0.2"), "markupsafe-3.0.2-"), ".so")[1]
    windows = _speedups("3.0.2")
    on_linux = classify(linux, "so", ["markupsafe"])
    on_windows = classify(windows, "pyd", ["markupsafe"])
    assert on_windows.machine == "x86_64" and on_windows.suspects == ()
    assert (_patched(windows, on_windows.references) == _patched(linux, on_linux.references)
            == {b"markupsafe._speedups"})
    folder = platform_wheels(*WINDOWS, "markupsafe==3.0.2", "markupsafe==3.0.3")
    result = shade([], [_one(folder, "markupsafe-3.0.2-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["markupsafe"]
    assert len(new) == len("markupsafe")
    assert any("not load-checked" in n for n in result.notes)
    name, out = _member(report.output, ".pyd")
    assert name == f"{new}/_speedups.cp311-win_amd64.pyd" and is_pe(out)
    after = classify(out, name, ["markupsafe", new])
    assert [r.string for r in after.references if r.kind == "string"] == [f"{new}._speedups"]
    assert after.suspects == () and b"markupsafe" not in out
    assert _exports(out) == [b"PyInit__speedups"]
    assert pefile.PE(data=out).OPTIONAL_HEADER.CheckSum in (0, checksum(out, 0x160))


def test_ujson_windows_patches_what_linux_patches(tmp_path: Path) -> None:
    """A top-level extension module: moved into its shaded wrapper package, it keeps its
    file name and ``PyInit_ujson`` (as on Linux); its strings are patched as on Linux."""
    linux = _member(_one(wheels("ujson==5.9.0"), "ujson-5.9.0-"), ".so")[1]
    folder = platform_wheels(*WINDOWS, "ujson==5.9.0", "ujson==5.10.0")
    windows = _member(_one(folder, "ujson-5.9.0-"), ".pyd")[1]
    assert (_patched(windows, classify(windows, "pyd", ["ujson"]).references)
            == _patched(linux, classify(linux, "so", ["ujson"]).references)
            == {b"ujson", b"ujson.JSONDecodeError"})
    result = shade([], [_one(folder, "ujson-5.9.0-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["ujson"]
    name, out = _member(report.output, ".pyd")
    assert name == f"{new}/ujson.cp311-win_amd64.pyd"
    assert _exports(out) == [b"JSON_DecodeObject", b"JSON_EncodeObject", b"PyInit_ujson"]
    after = classify(out, name, ["ujson", new])
    assert _patched(out, after.references) == {new.encode(), f"{new}.JSONDecodeError".encode()}
    assert after.suspects == ()
    pe = pefile.PE(data=out)
    assert not pe.OPTIONAL_HEADER.CheckSum or pe.verify_checksum()


def test_init_export_renamed_with_the_dll_name() -> None:
    """A module imported under its shaded name (a compiled package ``__init__``) gets
    ``PyInit_<new>`` in the export name table, still sorted; the DLL name follows."""
    folder = platform_wheels(*WINDOWS, "ujson==5.9.0")
    _, data = _member(_one(folder, "ujson-5.9.0-"), ".pyd")
    out, signed = finish(data, "ujson.pyd", ("ujson", "u2x7q"))
    pe = pefile.PE(data=out)
    assert not signed and _exports(out) == [
        b"JSON_DecodeObject", b"JSON_EncodeObject", b"PyInit_u2x7q"]
    assert pe.DIRECTORY_ENTRY_EXPORT.name == b"u2x7q.cp311-win_amd64.pyd"
    with pytest.raises(RewriteError, match="changes the byte length"):
        finish(data, "ujson.pyd", ("ujson", "ujson2"))


def _signed(plain: bytes) -> bytes:
    """``plain`` with a (dummy) certificate table appended and a valid non-zero CheckSum."""
    layout = read_layout(plain, "x")
    signed = bytearray(plain) + b"\x30\x82" + bytes(510)
    struct.pack_into("<II", signed, layout.security_entry, len(plain), 512)
    struct.pack_into("<I", signed, layout.checksum_offset,
                     checksum(bytes(signed), layout.checksum_offset))
    return bytes(signed)


def test_signed_wheel_shaded_with_a_note(tmp_path: Path) -> None:
    """A signed ``.pyd`` loses its signature when patched, and the run says so; the
    CheckSum it had is recomputed for the patched bytes."""
    from wheel.wheelfile import WheelFile

    source = _one(platform_wheels(*WINDOWS, "markupsafe==3.0.2"), "markupsafe-3.0.2-")
    (tmp_path / "in").mkdir()
    copy = tmp_path / "in" / source.name
    with zipfile.ZipFile(source) as old, WheelFile(copy, "w") as new:
        for item in old.infolist():
            if not item.filename.endswith("/RECORD"):
                data = old.read(item)
                new.writestr(item, _signed(data) if is_pe(data) else data)
    assert classify(_member(copy, ".pyd")[1], "pyd", ["markupsafe"]).signed
    result = shade([], [copy], out_dir=tmp_path / "out")
    (report,) = result.wheels
    name, out = _member(report.output, ".pyd")
    assert f"{source.name}: {name.replace(report.mapping['markupsafe'], 'markupsafe')}: its " \
        "Authenticode signature is removed (patching invalidates it)" in result.notes
    pe = pefile.PE(data=out)
    assert pe.OPTIONAL_HEADER.DATA_DIRECTORY[4].Size == 0 and b"\x30\x82\0\0\0\0" not in out
    assert pe.OPTIONAL_HEADER.CheckSum and pe.verify_checksum()


def test_tail_used_only_in_a_longer_string_is_left_as_in_linux() -> None:
    """A name that ends a longer string is left when nothing refers to it on its own: PE
    reference analysis (.pdata function starts, RIP-relative code, base relocations) says
    so, as ELF reference analysis does for the Linux build of the same release."""
    linux = _member(_one(wheels("markupsafe==3.0.2"), "markupsafe-3.0.2-"), ".so")[1]
    on_linux = classify(linux, "so", ["_speedups"])
    info = classify(_speedups("3.0.2"), "pyd", ["_speedups"])
    assert info.suspects == on_linux.suspects == ()
    assert [(r.kind, r.verdict) for r in info.embedded] == [
        (r.kind, r.verdict) for r in on_linux.embedded] == [("tail", "never-alone")]


def test_reference_tables_are_pefiles() -> None:
    """What PE reference analysis reads is what pefile reads: ``.pdata`` function starts,
    ``IMAGE_REL_BASED_DIR64`` fields, and import address table slots with their names."""
    for data in (_speedups("3.0.2"), _member(_one(platform_wheels(*WINDOWS, "ujson==5.9.0"),
                                                  "ujson-5.9.0-"), ".pyd")[1]):
        pe = pefile.PE(data=data)
        base = pe.OPTIONAL_HEADER.ImageBase
        tables = read_tables(data, "x")
        assert tables.image_base == base
        assert list(tables.starts) == sorted(
            {f.struct.BeginAddress for f in pe.DIRECTORY_ENTRY_EXCEPTION})
        assert tables.relocations is not None and sorted(tables.relocations) == sorted(
            e.rva for block in pe.DIRECTORY_ENTRY_BASERELOC for e in block.entries
            if e.type == pefile.RELOCATION_TYPE["IMAGE_REL_BASED_DIR64"])
        assert tables.slots == {
            i.address - base: i.name.decode() for d in pe.DIRECTORY_ENTRY_IMPORT
            for i in d.imports if i.name}


def test_who_refers_to_a_string_in_a_pyd() -> None:
    """The module definition's name is reached through a rebased pointer in ``.data``; a
    name passed to ``PyModule_AddObject`` in rdx (the Windows x64 second argument) is
    found through the import address table, as through the PLT on Linux."""
    data = _speedups("3.0.2")
    pe, elf = pefile.PE(data=data), read_pe(data, "x")
    at = refs.address_of(elf, data.index(b"\0markupsafe._speedups\0") + 1)
    assert at is not None
    sites = refs.find(data, elf, {at})
    (pointer,) = [s for s in sites if s.kind == "pointer"]
    assert pe.get_qword_at_rva(pe.get_rva_from_offset(pointer.offset)) == (
        pe.OPTIONAL_HEADER.ImageBase + at)
    data = _member(_one(platform_wheels(*WINDOWS, "ujson==5.9.0"), "ujson-5.9.0-"), ".pyd")[1]
    elf = read_pe(data, "x")
    at = refs.address_of(elf, data.index(b"\0JSONDecodeError\0") + 1)
    assert at is not None
    calls = Calls(data, elf)
    assert {calls.name_argument_of(s) for s in refs.find(data, elf, {at})} == {
        "PyModule_AddObject"}


LINUX_313 = (("manylinux2014_x86_64", "manylinux_2_17_x86_64"), "3.13")
WINDOWS_313 = (("win_amd64",), "3.13")


def _module_paths(data: bytes, names: list[str]) -> set[str]:
    """The strings in ``data``'s data sections that name one of ``names`` as a module
    (not as the tail of a dotted path, nor in a ``tag:yaml.org`` URI), with path
    separators made ``/``."""
    binary = read_pe(data, "x") if is_pe(data) else read_elf(data, "x")
    token = re.compile(rb"(?<![\w.:])(?:%s)(?!\w)" % b"|".join(n.encode() for n in names))
    return {
        m.group().decode().replace("\\\\", "/").replace("\\", "/")
        for s in binary.data_sections
        for m in re.finditer(rb"[\x20-\x7e]{3,}", data[s.offset:s.end]) if token.search(m.group())
    }


@pytest.mark.parametrize(("req", "names", "verdicts", "left"), [
    ("msgpack==1.1.0", ["msgpack"], {("unbounded", "msgpack", "label")},
     {"msgpack/_cmsgpack.c", "msgpack/_cmsgpack.pyx", "msgpack/_packer.pyx",
      "msgpack/_unpacker.pyx"}),
    ("pyyaml==6.0.2", ["yaml", "_yaml"],
     {("unbounded", "yaml", "label"), ("tail", "_yaml", "label")},
     {"yaml/_yaml.c", "yaml/_yaml.pyx"}),
], ids=["msgpack", "pyyaml"])
def test_cython_windows_build_gets_its_linux_verdicts(
    tmp_path: Path, req: str, names: list[str], verdicts: set[tuple[str, str, str]],
    left: set[str],
) -> None:
    """Cython modules whose Windows builds were refused ("references cannot be analysed":
    their init labels hold the module path) get the verdicts of their Linux build, and after
    shading both builds name the original modules in the same strings only (source file
    paths, and prose in docstrings), none of them a module path."""
    found = []
    for platform, suffix in ((LINUX_313, ".so"), (WINDOWS_313, ".pyd")):
        wheel = _one(platform_wheels(*platform, req), req.replace("==", "-") + "-")
        info = classify(_member(wheel, suffix)[1], "m", names)
        assert info.suspects == ()
        result = shade([], [wheel], out_dir=tmp_path / suffix[1:])
        out = _member(result.wheels[0].output, suffix)[1]
        found.append(({(r.kind, r.name, r.verdict) for r in info.references if r.verdict},
                      _module_paths(out, names)))
    assert found[0] == found[1]
    assert found[0][0] == verdicts
    path = re.compile(r"(?:{})(?:\.\w+)*".format("|".join(names)))
    assert {p for p in found[0][1] if "/" in p} == left
    assert not any(path.fullmatch(p) for p in found[0][1])


BLOCK = (
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.partition('.')[0] == 'markupsafe':\n"
    "            raise ImportError('original imported: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_markupsafe_windows_runs_under_wine_beside_its_next_release(tmp_path: Path) -> None:
    """The shaded 3.0.2 build loads its patched ``_speedups.pyd`` with every original name
    blocked, then the unshaded 3.0.3 loads its own beside it (Windows CPython 3.13, wine)."""
    import windows

    folder = platform_wheels(("win_amd64",), "3.13", "markupsafe==3.0.2", "markupsafe==3.0.3")
    result = shade([], [_one(folder, "markupsafe-3.0.2-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["markupsafe"]
    site = tmp_path / "site"
    for wheel in (report.output, _one(folder, "markupsafe-3.0.3-")):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    proc = windows.python(
        f"import json, sys\n{BLOCK}import {new} as m\nfrom {new} import _speedups as s\n"
        "out = [s.__name__, s.__file__.endswith('.pyd'), str(m.escape('<a>')),\n"
        "       type(m.escape('x')).__module__, m._escape_inner is s._escape_inner,\n"
        "       sorted(k for k in sys.modules if k.startswith('markupsafe'))]\n"
        "sys.meta_path.pop(0)\n"
        "import markupsafe\nfrom markupsafe import _speedups as t\n"
        "from importlib.metadata import version\n"
        "out += [t.__name__, markupsafe._escape_inner is t._escape_inner,\n"
        "        markupsafe.Markup is m.Markup, version('markupsafe')]\n"
        "print(json.dumps(out))\n", site)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [
        f"{new}._speedups", True, "&lt;a&gt;", new, True, [],
        "markupsafe._speedups", True, False, "3.0.3",
    ]


def test_broken_pe_is_a_clear_error(tmp_path: Path) -> None:
    """Truncated or scrambled PE headers give one typed error naming the file, never a
    traceback; a shading run refuses the wheel with it."""
    data = _speedups("3.0.2")
    rng = random.Random(15)
    for case in range(300):
        broken = bytearray(data[:rng.randrange(0x40, len(data))] if case % 2 else data)
        for _ in range(case % 5):
            broken[rng.randrange(0x40, min(0x400, len(broken)))] = rng.randrange(256)
        raw = bytes(broken)
        try:
            classify(raw, "pyd", ["markupsafe"])
        except WheelshadeError as exc:
            assert exc.path == "pyd"
        try:
            finish(raw, "pyd", ("_speedups", "_speedupz"))
        except WheelshadeError as exc:
            assert exc.path == "pyd"
    with pytest.raises(BinaryFormatError, match=r"^pyd: malformed PE file: truncated"):
        classify(data[:0x200], "pyd", ["markupsafe"])
