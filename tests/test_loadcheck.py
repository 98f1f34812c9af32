"""The load check: patched compiled modules are imported before anything is written."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.tags import sys_tags

from helpers import Venv, build_fixture, wheelshade
from wheelshade.native.loadcheck import module_of, unloadable_reason


@pytest.fixture(scope="module")
def cdyn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdynpkg: _dyn imports its package by a name built at run time; _absent needs a
    module that is not installed anywhere."""
    tmp = tmp_path_factory.mktemp("cdyn")
    return build_fixture("cdyn", tmp / "dist", tmp / "src")


def shade_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return wheelshade("shade", *args)


def test_a_module_that_reaches_the_original_at_load_time_stops_the_run(
    cdyn: Path, tmp_path: Path
) -> None:
    before = cdyn.read_bytes()
    out = tmp_path / "out"
    proc = shade_cli("--dep", cdyn, "-o", out, "--drop", "cdynpkg/_absent*")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert re.fullmatch(
        r"wheelshade: error: loading the patched compiled modules reached the original cdynpkg "
        r"\(first checked: cdyn-1\.0-\S+\.whl: cdynpkg/_dyn\S+\.so\) \(please report this "
        r"wheel; --drop the module to leave it out\)", line)
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not list(out.iterdir())
    assert cdyn.read_bytes() == before


def test_without_the_load_check_the_same_leak_is_written(cdyn: Path, tmp_path: Path) -> None:
    # What the check prevents: the static scan passes this binary.
    proc = shade_cli("--dep", cdyn, "-o", tmp_path, "--drop", "cdynpkg/_absent*",
                     "--no-load-check")
    assert proc.returncode == 0, proc.stderr
    assert "loaded" not in proc.stdout
    (shaded,) = tmp_path.glob("*.whl")
    root = tmp_path / "tree"
    for wheel in (shaded, cdyn):  # the shaded copy beside the original
        zipfile.ZipFile(wheel).extractall(root)
    (package,) = [p.name for p in root.iterdir()
                  if p.is_dir() and p.name.startswith("c") and "." not in p.name
                  and p.name != "cdynpkg"]
    probe = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n"
         f"import {package}._dyn as m, json; print(json.dumps([m.package, "
         "sorted(k for k in sys.modules if k.startswith('cdyn'))]))"],
        capture_output=True, text=True,
    )
    assert probe.returncode == 0, probe.stderr
    # The literal was patched, the name built at run time was not: the original is loaded.
    assert probe.stdout.strip() == f'["{package}", ["cdynpkg"]]'


def test_a_module_that_fails_unshaded_too_is_a_note(cdyn: Path, tmp_path: Path) -> None:
    proc = shade_cli("--dep", cdyn, "-o", tmp_path, "--drop", "cdynpkg/_dyn*")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "load" in line]
    assert notes == [
        "note: 1 compiled module(s) not load-checked: they do not load unshaded either here "
        f"(missing dependencies?): {cdyn.name}: cdynpkg/_absent{_suffix(cdyn, '_absent')} "
        "(ModuleNotFoundError: No module named 'wheelshade_absent_dependency')",
    ]
    assert len(list(tmp_path.glob("*.whl"))) == 1


def _suffix(wheel: Path, module: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if f"/{module}." in n and n.endswith(".so")]
    return name[name.index(module) + len(module):]


@pytest.mark.parametrize(("member", "data_dir", "module"), [
    ("pkg/_speed.cpython-311-x86_64-linux-gnu.so", "p-1.data", "pkg._speed"),
    ("pkg/__init__.cpython-311-x86_64-linux-gnu.so", "p-1.data", "pkg"),
    ("top.abi3.so", "p-1.data", "top"),
    ("p-1.data/platlib/pkg/m.so", "p-1.data", "pkg.m"),
    ("p-1.data/scripts/tool.so", "p-1.data", None),
    ("numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so", "p-1.data", None),
    ("pkg/README.txt", "p-1.data", None),
])
def test_module_of(member: str, data_dir: str, module: str | None) -> None:
    assert module_of(member, data_dir) == module


def test_wheels_for_another_platform_are_not_loaded(tmp_path: Path) -> None:
    here = next(iter(sys_tags()))
    assert unloadable_reason([tmp_path / f"p-1.0-{here}.whl"]) is None
    other = tmp_path / "p-1.0-cp311-cp311-macosx_11_0_arm64.whl"
    assert unloadable_reason([other]) == (
        f"{other.name} is built for cp311-cp311-macosx_11_0_arm64, which this interpreter "
        f"({sys.implementation.name} {sys.version.split()[0]}) cannot load")


def test_the_target_environment_provides_dependencies_outside_the_set(
    cdyn: Path, tmp_path: Path
) -> None:
    env = Venv.create(tmp_path / "target")
    site = next((tmp_path / "target" / "lib").glob("python*/site-packages"))
    (site / "wheelshade_absent_dependency.py").write_text("PRESENT = True\n")
    proc = shade_cli("--dep", cdyn, "-o", tmp_path / "out", "--drop", "cdynpkg/_dyn*",
                     "--target-env", str(env.python))
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "load" in line]
    assert notes == ["note: 1 patched compiled module(s) loaded, reaching no original name"]
