"""Planning on wheels with .data directories, single modules and a disagreeing top_level.txt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Venv, make_wheel, names, read_member, wheelshade
from wheelshade import PlanError, shade


def test_data_dir_purelib_and_scripts(tmp_path: Path) -> None:
    whl = make_wheel(
        tmp_path / "in",
        "datapkg",
        "1.0",
        {
            "datapkg-1.0.data/purelib/datapkg/__init__.py": "from datapkg.inner import X\n",
            "datapkg-1.0.data/purelib/datapkg/inner.py": "X = 'data 1'\n",
            "datapkg-1.0.data/scripts/datapkg-tool": "#!python\nprint('tool')\n",
            "datapkg-1.0.data/data/share/datapkg.txt": "shared\n",
            "datapkg-1.0.dist-info/top_level.txt": "datapkg\nmissingmod\n",
        },
    )
    result = shade([], [whl], out_dir=tmp_path / "out")
    (report,) = result.wheels
    shaded = report.mapping["datapkg"]
    prefix = f"{shaded}-1.0.data"
    assert sorted(n for n in names(report.output) if ".data/" in n) == [
        f"{prefix}/data/share/datapkg.txt",
        f"{prefix}/purelib/{shaded}/__init__.py",
        f"{prefix}/purelib/{shaded}/inner.py",
    ]
    assert "datapkg-1.0.data/scripts/datapkg-tool" in report.left_out
    assert any(
        re.search(r"top_level\.txt lists 'missingmod' but the wheel has no such module", w)
        for w in result.warnings
    )
    env = Venv.create(tmp_path / "env")
    env.install(report.output)
    assert env.json(f"import json, {shaded} as d; print(json.dumps(d.X))") == "data 1"


def test_single_module_dep_is_renamed(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    result = shade([], [fixture_wheels["colors1"]], out_dir=tmp_path / "out")
    (report,) = result.wheels
    assert f"{report.mapping['colors']}.py" in names(report.output)


def test_conflicts_are_reported_together(tmp_path: Path) -> None:
    a = make_wheel(tmp_path / "a", "alpha", "1.0", {"shared/__init__.py": "", "ns/x/m.py": ""})
    b = make_wheel(tmp_path / "b", "beta", "1.0", {"shared/__init__.py": "", "ns/x/m.py": "",
                                                   "ns/x/n.py": "", "ns/y/o.py": ""})
    with pytest.raises(PlanError) as info:
        shade([], [a, b], out_dir=tmp_path / "out")
    issues = sorted(info.value.issues)
    assert len(issues) == 2
    assert any("both install the top-level module 'shared'" in i for i in issues)
    # Namespace portions are shaded one by one, at their first level that is not a
    # namespace (``ns/x`` is one): only the module both install conflicts.
    assert any("both install the namespace portion 'ns.x.m'" in i for i in issues)
    assert not (tmp_path / "out").exists()


def test_files_installed_outside_site_packages_are_a_finding(tmp_path: Path) -> None:
    """``.data/data`` files keep their paths (``share/<pkg>/templates/conf.json``), which the
    other release installs too: both copies would read whichever pip wrote last."""
    from wheelshade.findings import Code

    files = {"tmplpkg/__init__.py": "",
             "tmplpkg-1.0.data/data/share/tmplpkg/templates/conf.json": "{}",
             "tmplpkg-1.0.data/data/share/tmplpkg/templates/index.html": ""}
    wheel = make_wheel(tmp_path / "in", "tmplpkg", "1.0", files)
    (report,) = shade([], [wheel], out_dir=tmp_path / "out").wheels
    (finding,) = [f for f in report.findings if f.code is Code.SHARED_DATA]
    assert "2 file(s) install outside site-packages" in finding.message
    assert "'share/tmplpkg/templates/conf.json'" in finding.message
    plain = make_wheel(tmp_path / "in2", "plainpkg", "1.0", {"plainpkg/__init__.py": ""})
    (report,) = shade([], [plain], out_dir=tmp_path / "out2").wheels
    assert not [f for f in report.findings if f.code is Code.SHARED_DATA]


def test_shared_data_that_names_the_packages_modules_is_refused(tmp_path: Path) -> None:
    """A template's ``conf.json`` at a shared path names ``tmplpkg.filters.Upper``, which the
    package loads by name: beside another release both copies read one file, so one of them
    imports the other's modules, and no rewrite serves both. Refused in one line per file,
    nothing written. A string that only looks like a path (``"tmplpkg.png"``) is no module."""
    conf = '{"preprocessors": ["tmplpkg.filters.Upper"], "logo": "tmplpkg.png"}'
    files = {"tmplpkg/__init__.py": "", "tmplpkg/filters.py": "class Upper:\n    pass\n",
             "tmplpkg-1.0.data/data/share/tmplpkg/templates/conf.json": conf,
             "tmplpkg-1.0.data/data/share/tmplpkg/templates/other.json": '{"logo": "tmplpkg.png"}',
             "tmplpkg-1.0.data/data/share/man/man1/tmplpkg.1": '"tmplpkg.filters.Upper"'}
    wheel = make_wheel(tmp_path / "in", "tmplpkg", "1.0", files)
    before = wheel.read_bytes()
    with pytest.raises(PlanError) as info:
        shade([], [wheel], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert issue.startswith(f"{wheel.name}: 1 data file(s) installed outside site-packages "
                            "name its modules (first 'share/tmplpkg/templates/conf.json' names "
                            "'tmplpkg.filters.Upper');")
    assert "\n" not in issue
    assert not (tmp_path / "out").exists() and wheel.read_bytes() == before
    proc = wheelshade("shade", "--dep", wheel, "-o", tmp_path / "out")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "conf.json" in proc.stderr and not (tmp_path / "out").exists()


def test_a_metapackage_is_shaded_with_the_distribution_it_pins(tmp_path: Path) -> None:
    """A distribution that installs no module and pins the one that does (``==``, same
    release) is a metapackage: alone it is refused, naming the ``--dep`` to add; with it,
    both are shaded and its requirement names the shaded distribution, so pip installs
    the pair beside another release of the implementation."""
    meta = make_wheel(tmp_path / "in", "metapkg", "1.0", {}, requires=("metapkg-impl==1.0",))
    impl = make_wheel(tmp_path / "in", "metapkg_impl", "1.0",
                      {"metapkg/__init__.py": "VERSION = '1.0'\n"})
    other = make_wheel(tmp_path / "in2", "metapkg_impl", "2.0",
                       {"metapkg/__init__.py": "VERSION = '2.0'\n"})
    with pytest.raises(PlanError) as info:
        shade([], [meta], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert issue.endswith("it is a metapackage whose modules come from metapkg-impl, which it "
                          "pins exactly; shade it in the same set: --dep metapkg-impl")
    lone = make_wheel(tmp_path / "in3", "lonely", "1.0", {})
    with pytest.raises(PlanError, match="installs no importable module, nothing to shade "):
        shade([], [lone], out_dir=tmp_path / "out")
    result = shade([], [meta, impl], out_dir=tmp_path / "out")
    new = next(w for w in result.wheels if w.mapping).mapping["metapkg"]
    env = Venv.create(tmp_path / "env")
    env.install(other)
    shaded_meta = next(w.output for w in result.wheels if not w.mapping)
    env.install("--find-links", tmp_path / "out", shaded_meta)
    assert env.json(f"import json, metapkg, {new}\n"
                    f"print(json.dumps([metapkg.VERSION, {new}.VERSION]))") == ["2.0", "1.0"]
    assert env.pip("check").returncode == 0


def test_type_stubs_take_the_shaded_name_of_the_package_they_describe(tmp_path: Path) -> None:
    """A stub-only distribution (PEP 561 ``fakepkg-stubs/``) shaded with the package it
    describes: its folder becomes ``<shaded>-stubs`` and its own imports are rewritten, so
    a type checker finds the stubs for code that imports the shaded name. Alone it is
    refused: the stubs would name no module."""
    impl = make_wheel(tmp_path / "in", "fakepkg", "1.0",
                      {"fakepkg/__init__.py": "from .sub import make\n",
                       "fakepkg/sub.py": "def make():\n    return 1\n"})
    stubs = make_wheel(tmp_path / "in", "types_fakepkg", "1.0", {
        "fakepkg-stubs/__init__.pyi": "from fakepkg.sub import make as make\n",
        "fakepkg-stubs/sub.pyi": "def make() -> int: ...\n",
        "fakepkg-stubs/METADATA.toml": 'version = "1.0"\n'})
    with pytest.raises(PlanError) as info:
        shade([], [stubs], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert "installs only type stubs, for 'fakepkg', which no wheel of the set installs" in issue
    result = shade([], [impl, stubs], out_dir=tmp_path / "out")
    new = result.wheels[0].mapping["fakepkg"]
    shaded_stubs = next(w.output for w in result.wheels if not w.mapping)
    assert sorted(names(shaded_stubs))[:3] == [
        f"{new}-stubs/METADATA.toml", f"{new}-stubs/__init__.pyi", f"{new}-stubs/sub.pyi"]
    assert f"from {new}.sub import make as make" in read_member(shaded_stubs, "__init__.pyi")
    env = Venv.create(tmp_path / "env")
    env.install(*(w.output for w in result.wheels))
    app = tmp_path / "app.py"
    app.write_text(f"import {new} as fakepkg\nreveal_type(fakepkg.make())\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", str(env.python), "--no-incremental",
         str(app)], capture_output=True, text=True)
    # From the stub: the untyped source alone would give Any.
    assert re.search(r'Revealed type is "(builtins\.)?int"', proc.stdout), proc.stdout + proc.stderr
