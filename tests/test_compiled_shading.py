"""Shading wheels with compiled modules end to end: same-length names, patched binaries."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import Venv, build_fixture, validate_record, verify_offline, wheelshade
from pypi import wheels
from wheelshade import PlanError, shade
from wheelshade.native.classify import classify
from wheelshade.native.elf import read_elf

MS = ("markupsafe==2.0.1", "markupsafe==3.0.3")


@pytest.fixture(scope="module")
def markupsafe_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str, Path]:
    links = wheels(*MS)
    tmp = tmp_path_factory.mktemp("ms")
    (old,) = links.glob("markupsafe-2.0.1-*.whl")
    result = shade([], [old], out_dir=tmp / "out")
    (report,) = result.wheels
    validate_record(report.output)
    env = Venv.create(tmp / "env")
    env.install("--find-links", links, report.output, "markupsafe==3.0.3")
    return env, report.mapping["markupsafe"], report.output


def test_auto_naming_gives_a_same_length_name(markupsafe_env: tuple[Venv, str, Path]) -> None:
    _, shaded, _ = markupsafe_env
    assert len(shaded) == len("markupsafe") and shaded.isidentifier()


@pytest.mark.parametrize("order", ["shaded first", "unshaded first"])
def test_each_copy_runs_its_own_compiled_code(
    markupsafe_env: tuple[Venv, str, Path], order: str
) -> None:
    env, shaded, _ = markupsafe_env
    imports = [f"import {shaded} as old", "import markupsafe as new"]
    if order == "unshaded first":
        imports.reverse()
    data = env.json(
        "import json, sys\n" + "\n".join(imports) + "\n"
        f"from {shaded} import _speedups\n"
        "print(json.dumps({\n"
        "  'old_compiled': old.escape is _speedups.escape,\n"
        "  'old_markup': type(old.escape('<')) is old.Markup,\n"
        "  'new_markup': type(new.escape('<')) is new.Markup,\n"
        "  'distinct': old.Markup is not new.Markup,\n"
        "  'new_file': new.__file__.endswith('/markupsafe/__init__.py'),\n"
        f"  'shaded_under_original': [m for m, v in sys.modules.items() if "
        f"m.startswith('markupsafe') and '{shaded}' in (getattr(v, '__file__', '') or '')],\n"
        "}))"
    )
    assert data == {
        "old_compiled": True,
        "old_markup": True,
        "new_markup": True,
        "distinct": True,
        "new_file": True,
        "shaded_under_original": [],
    }


def test_alone_it_imports_nothing_of_the_original(markupsafe_env: tuple[Venv, str, Path]) -> None:
    env, shaded, _ = markupsafe_env
    mods = env.json(
        f"import json, sys, {shaded} as m\nm.escape('<')\n"
        "print(json.dumps([k for k in sys.modules if k.startswith('markupsafe')]))"
    )
    assert mods == []


def test_verify_passes(markupsafe_env: tuple[Venv, str, Path]) -> None:
    _, _, wheel = markupsafe_env
    links = wheels(*MS)
    proc = verify_offline([wheel], "markupsafe==3.0.3", links)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readable_naming_refuses_the_binary(tmp_path: Path) -> None:
    links = wheels("markupsafe==2.0.1")
    (old,) = links.glob("markupsafe-2.0.1-*.whl")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wheelshade",
            "shade",
            "--dep",
            str(old),
            "--naming",
            "readable",
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert re.match(
        r"^wheelshade: error: markupsafe-2\.0\.1-.*\.whl: markupsafe/_speedups\..*\.so is compiled "
        r"code that refers to 'markupsafe' by name; readable names cannot be patched into it "
        r"\(use --naming same-length or auto, or leave it out with --drop\)",
        proc.stderr,
    )
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def cext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C fixture: package cextpkg (its _speed imports cextpkg by name; its _tail holds a
    merged-string suspect) and the top-level extension module cexttop."""
    tmp = tmp_path_factory.mktemp("cext")
    return build_fixture("cext", tmp / "dist", tmp / "src")


def repacked(wheel: Path, out: Path, edit: Callable[[Path], None]) -> Path:
    """``wheel`` unpacked, changed by ``edit`` (on the tree) and packed again (new RECORD)."""
    from wheel.wheelfile import WheelFile

    tree = out.parent / (out.name + "-tree")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tree)
    edit(tree)
    (tree / next(tree.glob("*.dist-info")).name / "RECORD").unlink()
    target = out / wheel.name
    out.mkdir(parents=True)
    with WheelFile(target, "w") as wf:
        wf.write_files(str(tree))
    return target


def no_slack(tree: Path) -> None:
    """Make _tail's segment padding non-zero: no room for a standalone copy."""
    (so,) = tree.glob("cextpkg/_tail*.so")
    data = bytearray(so.read_bytes())
    for seg in read_elf(bytes(data), so.name).segments:
        if seg.type == 1 and not seg.flags & 3:
            end = seg.offset + seg.filesz
            data[end:end + (-end % 0x1000)] = b"\xff" * (-end % 0x1000)
    so.write_bytes(bytes(data))


def test_merged_string_suspect_is_refused(cext: Path, tmp_path: Path) -> None:
    crowded = repacked(cext, tmp_path / "crowded", no_slack)
    with pytest.raises(PlanError) as info:
        shade([], [crowded], out_dir=tmp_path / "out")
    assert any(
        "_tail" in i and "cannot be patched safely" in i and "a linker merged them" in i
        for i in info.value.issues
    )
    assert not (tmp_path / "out").exists()


def in_both_orders(
    env: Venv, shaded: str, original: str, expr: str
) -> Iterator[tuple[str, list[Any]]]:
    """Import ``shaded`` and ``original`` as ``a`` and ``b`` in both orders, each time in a
    fresh interpreter, and yield (the name imported first, the JSON value of ``expr``)."""
    for first, second in ((shaded, original), (original, shaded)):
        data = env.json(
            f"import json, sys\nimport {first} as a\nimport {second} as b\n"
            f"print(json.dumps({expr}))"
        )
        assert isinstance(data, list)
        yield first, data


def test_top_level_extension_module_beside_its_unshaded_self(cext: Path, tmp_path: Path) -> None:
    result = shade([], [cext], out_dir=tmp_path / "out")
    (report,) = result.wheels
    top, pkg = report.mapping["cexttop"], report.mapping["cextpkg"]
    assert len(top) == len("cexttop") and len(pkg) == len("cextpkg")
    env = Venv.create(tmp_path / "env")
    env.install(report.output, cext)
    expr = "[a.__name__, b.__name__, a is b, sorted(k for k in sys.modules if k[:4] == 'cext')]"
    for first, data in in_both_orders(env, top, "cexttop", expr):
        second = "cexttop" if first == top else top
        names = {first: data[0], second: data[1]}
        assert names[top] == f"{top}.cexttop" and names["cexttop"] == "cexttop"
        assert data[2] is False and data[3] == ["cexttop"]
    # _split's import literal was merged into "also_cextpkg": its users now read a copy;
    # _tail had none, so one was added in its segment's padding.
    split = env.json(f"import json, {pkg}._split as m, {pkg}._tail as t\n"
                     "print(json.dumps([m.word(), m.package(), m.imported(), t.word()]))")
    assert split == ["also_cextpkg", pkg, pkg, "not_cextpkg"]
    alone = env.json(
        f"import json, sys, {top}, {pkg}\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.startswith('cext'))))"
    )
    assert alone == []


def test_inspect_classifies_binaries() -> None:
    links = wheels("markupsafe==2.0.1")
    (old,) = links.glob("markupsafe-2.0.1-*.whl")
    proc = wheelshade("inspect", old)
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"^binary: +markupsafe/_speedups\.[^;]+\.so; C; init PyInit__speedups "
        r"\(single\); .*names markupsafe, markupsafe\._speedups$",
        proc.stdout,
        re.M,
    )
    assert "[binary-name]" in proc.stdout


def test_naming_choice_is_printed(tmp_path: Path) -> None:
    links = wheels("markupsafe==2.0.1")
    (old,) = links.glob("markupsafe-2.0.1-*.whl")
    proc = wheelshade("shade", "--dep", old, "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"^note: markupsafe -> m[a-z0-9]{9}: same-length name, compiled code refers "
        r"to it \(markupsafe/_speedups\..*\.so\)$",
        proc.stdout,
        re.M,
    )


@pytest.fixture(scope="module")
def grafted(cext: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C fixture as auditwheel would leave it: cexttop needs a grafted library in
    cext.libs/, found through RPATH $ORIGIN/cext.libs (its import fails without it)."""
    from wheel.wheelfile import WheelFile

    from wheelshade.native.patching import find_patchelf

    tmp = tmp_path_factory.mktemp("grafted")
    tree = tmp / "tree"
    with zipfile.ZipFile(cext) as zf:
        zf.extractall(tree)
    (tmp / "helper.c").write_text("int helper_value(void) { return 42; }\n")
    (tree / "cext.libs").mkdir()
    lib = tree / "cext.libs" / "libhelper-0123abcd.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(tmp / "helper.c")], check=True)
    (top,) = tree.glob("cexttop.*.so")
    subprocess.run(
        [
            str(find_patchelf()),
            "--add-needed",
            lib.name,
            "--set-rpath",
            "$ORIGIN/cext.libs",
            str(top),
        ],
        check=True,
    )
    (tree / next(tree.glob("*.dist-info")).name / "RECORD").unlink()
    out = tmp / "dist" / cext.name
    out.parent.mkdir()
    with WheelFile(out, "w") as wf:
        wf.write_files(str(tree))
    return out


def test_grafted_libraries_move_with_the_distribution(grafted: Path, tmp_path: Path) -> None:
    result = shade([], [grafted], out_dir=tmp_path / "out", drop=["cextpkg/_tail*"])
    (report,) = result.wheels
    top = report.mapping["cexttop"]
    libs = report.output.name.split("-", 1)[0] + ".libs"
    with zipfile.ZipFile(report.output) as zf:
        names = zf.namelist()
        (so,) = [n for n in names if n.startswith(f"{top}/cexttop.")]
        info = classify(zf.read(so), so, ["cexttop"])
    assert f"{libs}/libhelper-0123abcd.so" in names
    assert not [n for n in names if n.startswith("cext.libs/")]
    assert (info.rpath or info.runpath) == (f"$ORIGIN/../{libs}",)
    env = Venv.create(tmp_path / "env")
    env.install(report.output, grafted)
    code = f"import {top}, cexttop; print({top}.__name__, cexttop.__name__)"
    assert env.run(code).stdout.split() == [f"{top}.cexttop", "cexttop"]
    env.pip("uninstall", "--yes", "cext")  # the unshaded copy and its cext.libs go
    proc = env.run(f"import {top}; print({top}.name())")
    assert proc.returncode == 0, proc.stderr  # the shaded copy keeps its own libraries


def test_prefer_python_drops_compiled_twins(cext: Path, tmp_path: Path) -> None:
    """A Cython-style wheel: a compiled module beside the .py it was built from."""

    def add_twin(tree: Path) -> None:
        no_slack(tree)
        (tree / "cextpkg" / "_tail.py").write_text("def where():\n    return 'pure python'\n")

    twin = repacked(cext, tmp_path / "dist", add_twin)
    # Without the option, _tail's merged-string suspect refuses the wheel (see above).
    with pytest.raises(PlanError):
        shade([], [twin], out_dir=tmp_path / "refused")
    result = shade([], [twin], out_dir=tmp_path / "out", prefer_python=True)
    (report,) = result.wheels
    assert [f.code.value for f in report.findings] == ["python-twin"]
    pkg = report.mapping["cextpkg"]
    with zipfile.ZipFile(report.output) as zf:
        assert not [n for n in zf.namelist() if "_tail" in n and n.endswith(".so")]
    env = Venv.create(tmp_path / "env")
    env.install(report.output)
    assert env.json(f"import json, {pkg}._tail as t; print(json.dumps(t.where()))") == (
        "pure python"
    )


def test_real_top_level_extension_ujson_beside_another_ujson(tmp_path: Path) -> None:
    links = wheels("ujson==5.9.0", "ujson==5.10.0")
    (old,) = links.glob("ujson-5.9.0-*.whl")
    result = shade([], [old], out_dir=tmp_path / "out")
    (report,) = result.wheels
    shaded = report.mapping["ujson"]
    assert len(shaded) == len("ujson")
    env = Venv.create(tmp_path / "env")
    env.install("--find-links", links, report.output, "ujson==5.10.0")
    for first, second in ((shaded, "ujson"), ("ujson", shaded)):
        data = env.json(
            f"import json, sys\nimport {first}, {second}\n"
            f"old, new = sys.modules[{shaded!r}], sys.modules['ujson']\n"
            "print(json.dumps([old.__version__, new.__version__, old.dumps({'a': [1]}),\n"
            "  old is new, old.__file__.split('/')[-2]]))"
        )
        assert data == ["5.9.0", "5.10.0", '{"a":[1]}', False, shaded]


def test_compiled_package_init_gets_its_init_symbol_renamed(tmp_path: Path) -> None:
    whl = build_fixture("cinit", tmp_path / "dist", tmp_path / "src")
    result = shade([], [whl], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["cinitpkg"]
    assert len(new) == len("cinitpkg")
    with zipfile.ZipFile(report.output) as zf:
        (init,) = [
            n for n in zf.namelist() if n.startswith(f"{new}/__init__.") and n.endswith(".so")
        ]
        info = classify(zf.read(init), init, ["cinitpkg", new])
    assert info.module_name == new and info.init_symbols == (f"PyInit_{new}",)
    env = Venv.create(tmp_path / "env")
    env.install(report.output, whl)
    expr = ("[a.__name__, b.__name__, a.where(), b.where(),"
            " sorted(k for k in sys.modules if k.endswith('.version'))]")
    for first, data in in_both_orders(env, new, "cinitpkg", expr):
        second = "cinitpkg" if first == new else new
        assert dict(zip((first, second), data[:2], strict=True)) == {
            new: new, "cinitpkg": "cinitpkg"}
        assert data[2:4] == ["cinit-1", "cinit-1"]
        assert data[4] == sorted([f"{new}.version", "cinitpkg.version"])
    alone = env.json(
        f"import json, sys, {new}\n{new}.where()\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.startswith('cinitpkg'))))"
    )
    assert alone == []


def test_mypyc_group_library_is_renamed_for_real(tmp_path: Path) -> None:
    """mypyc keeps its strings length-prefixed (no NUL) and its group library finds itself
    in sys.modules by its own name: the library is renamed file, strings and PyInit_."""
    whl = build_fixture("mypycapp", tmp_path / "dist", tmp_path / "src")
    result = shade([], [whl], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["mypycpkg"]
    (group,) = [n for n in report.mapping if n.endswith("__mypyc")]
    shaded_group = report.mapping[group]
    assert len(shaded_group) == len(group)
    assert any("patched compiled module(s) loaded" in n for n in result.notes)
    with zipfile.ZipFile(report.output) as zf:
        (lib,) = [n for n in zf.namelist() if n.startswith(shaded_group)]
        assert "/" not in lib  # a true top-level module, not a wrapper package
        info = classify(zf.read(lib), lib, [group, shaded_group])
    assert info.init_symbols == (f"PyInit_{shaded_group}",)
    env = Venv.create(tmp_path / "env")
    env.install(report.output, whl)
    expr = (f"[a.describe(2), b.describe(3),"
            f" sorted(k for k in sys.modules if k in ({group!r}, {shaded_group!r}))]")
    for first, data in in_both_orders(env, new, "mypycpkg", expr):
        second = "mypycpkg" if first == new else new
        expected = {new: f"{new}.core: ", "mypycpkg": "mypycpkg.core: "}
        assert data[0] == expected[first] + "4" and data[1] == expected[second] + "6"
        assert data[2] == sorted([group, shaded_group])


def test_a_bare_name_used_only_as_an_attribute_keeps_its_bytes(tmp_path: Path) -> None:
    """cattrpkg's module registers an object under the package's own name (as greenlet
    registers its type as ``greenlet``) and imports ``cattrpkg.helpers``: the first is an
    attribute name, left as it is, the second a module, renamed."""
    wheel = build_fixture("cattr", tmp_path / "dist", tmp_path / "src")
    with zipfile.ZipFile(wheel) as archive:
        (so,) = [n for n in archive.namelist() if n.endswith(".so")]
        info = classify(archive.read(so), so, ["cattrpkg"])
    kept = [r for r in info.embedded if r.verdict == "attribute"]
    assert [(r.string, r.detail) for r in kept] == [(
        "cattrpkg",
        "'cattrpkg' on its own is only passed as an attribute name (PyModule_AddObjectRef), "
        "not a module name",
    )]
    assert [r.string for r in info.references if r.kind == "string"] == ["cattrpkg.helpers"]
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["cattrpkg"]
    assert any("patched compiled module(s) loaded" in n for n in result.notes)
    env = Venv.create(tmp_path / "env")
    env.install(report.output)
    data = env.json(
        f"import json, sys\nimport {new}\nfrom {new}._attr import cattrpkg\n"
        f"print(json.dumps([cattrpkg, {new}.helpers.__name__, {new}.helpers.ANSWER,\n"
        "                  sorted(m for m in sys.modules if m.startswith('cattrpkg'))]))"
    )
    assert data == ["an attribute named like the package", f"{new}.helpers", 42, []]
