"""The load check under emulation: patched aarch64 modules loaded by an aarch64 CPython
run with ``qemu-aarch64 -L SYSROOT`` (``WHEELSHADE_QEMU_AARCH64``), or noted as not checked."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest

import aarch64
from helpers import wheelshade
from pypi import platform_wheels, wheels
from wheelshade import binaries, shade
from wheelshade.native import emulation
from wheelshade.native.loadcheck import LoadCheckError, probe

pytestmark = pytest.mark.network

PLATFORM = (("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.13")


@pytest.fixture(scope="module")
def markupsafe() -> Path:
    """MarkupSafe 3.0.2 for manylinux aarch64, cp313: one patched C extension module."""
    folder = platform_wheels(*PLATFORM, "markupsafe==3.0.2")
    (wheel,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith("markupsafe-3.0.2-")]
    return wheel


@pytest.fixture(scope="module")
def configured() -> dict[str, str]:
    """The environment that points the load check at the cached sysroot (built once)."""
    qemu, root = aarch64.sysroot()  # skips, saying why, when it cannot be built
    return {emulation.VARIABLES["aarch64"]: str(root), emulation.QEMU_VARIABLE: str(qemu)}


def test_a_patched_aarch64_module_is_loaded_under_qemu(
    markupsafe: Path, configured: dict[str, str], tmp_path: Path
) -> None:
    proc = wheelshade("shade", "--dep", markupsafe, "-o", tmp_path, env=configured)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "load" in line]
    assert len(notes) == 1, proc.stdout
    assert re.fullmatch(
        r"note: 1 patched compiled module\(s\) loaded by cpython 3\.13\.\d+ for aarch64 under "
        r"qemu \(WHEELSHADE_QEMU_AARCH64\), reaching no original name", notes[0])
    assert len(list(tmp_path.glob("*aarch64*.whl"))) == 1


@pytest.mark.skipif(platform.machine() == "aarch64", reason="aarch64 modules load natively here")
def test_without_a_sysroot_the_note_says_aarch64_modules_were_not_load_checked(
    markupsafe: Path, tmp_path: Path
) -> None:
    proc = wheelshade("shade", "--dep", markupsafe, "-o", tmp_path,
                      env={emulation.VARIABLES["aarch64"]: ""})
    assert proc.returncode == 0, proc.stderr
    (note,) = [line for line in proc.stdout.splitlines() if "load" in line]
    assert re.fullmatch(
        r"note: compiled modules not load-checked: \S+aarch64\.whl is built for "
        r"cp313-cp313-manylinux\S+_aarch64, which this interpreter \(\w+ [\d.]+\S*\) cannot "
        r"load; to load-check aarch64 modules under qemu-aarch64, set WHEELSHADE_QEMU_AARCH64 "
        r"to a sysroot holding an aarch64 usr/bin/python3\.X \(see docs/cli\.md, 'Load check "
        r"under emulation'\)", note)


def test_a_broken_patch_stops_the_run_under_qemu(
    markupsafe: Path, configured: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The init function's name corrupted after patching: the module loads unshaded, not
    shaded, and only loading it (under qemu) can tell."""
    patch = binaries.patch_strings

    def broken(data: bytes, *args: object) -> bytes:
        out = patch(data, *args)  # type: ignore[arg-type]
        assert b"PyInit__speedups\0" in out
        return out.replace(b"PyInit__speedups\0", b"PyInit__speedupz\0")

    monkeypatch.setattr(binaries, "patch_strings", broken)
    for name, value in configured.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    with pytest.raises(LoadCheckError, match=(
            r"^\S+aarch64\.whl: markupsafe/_speedups\S+\.so loads unshaded but not after "
            r"shading: ImportError: .*PyInit__speedups.* \(loaded by cpython 3\.13\.\d+ for "
            r"aarch64 under qemu \(WHEELSHADE_QEMU_AARCH64\)\)")):
        shade([], [markupsafe], out_dir=out)
    assert not out.exists() or not list(out.iterdir())


def test_an_original_name_imported_under_qemu_is_reached(
    configured: dict[str, str], tmp_path: Path
) -> None:
    """The blocker works in the emulated interpreter: an import of an original name from a
    loaded module is refused and reported."""
    interpreter = emulation.configured("aarch64", configured)
    assert interpreter is not None
    (tmp_path / "shadedpkg").mkdir()
    (tmp_path / "shadedpkg" / "__init__.py").write_text("import origpkg.sub\n")
    result = probe(tmp_path, ["shadedpkg"], ["origpkg"], interpreter.command)
    assert result.reached == ("origpkg",)
    assert result.failed["shadedpkg"].startswith("ImportError: wheelshade load check: import")


@pytest.mark.parametrize(("tag", "loads"), [
    ("cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64", True),
    ("cp311-abi3-manylinux_2_28_aarch64", True),
    ("py3-none-any", True),
    ("cp312-cp312-manylinux_2_17_aarch64", False),
    ("cp313-cp313-musllinux_1_2_aarch64", False),
    ("cp313-cp313-manylinux_2_17_x86_64", False),
    ("cp313-cp313-manylinux_2_99_aarch64", False),
])
def test_the_emulated_interpreter_loads_the_wheels_its_tags_admit(
    configured: dict[str, str], tag: str, loads: bool
) -> None:
    interpreter = emulation.configured("aarch64", configured)
    assert interpreter is not None and interpreter.emulated
    assert interpreter.loads(Path(f"p-1.0-{tag}.whl")) is loads


def test_a_sysroot_without_python_is_a_clear_error(markupsafe: Path, tmp_path: Path) -> None:
    (tmp_path / "root" / "usr" / "bin").mkdir(parents=True)
    proc = wheelshade("shade", "--dep", markupsafe, "-o", tmp_path / "out",
                      env={emulation.VARIABLES["aarch64"]: str(tmp_path / "root")})
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line == (
        f"wheelshade: error: WHEELSHADE_QEMU_AARCH64={tmp_path / 'root'}: no usr/bin/python3.* "
        "there (point it at a sysroot with the foreign CPython unpacked into it; see "
        "docs/cli.md, 'Load check under emulation')")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the pinned host wheel is x86-64")
def test_the_sysroot_is_consulted_only_for_modules_that_need_it(tmp_path: Path) -> None:
    """A module this interpreter loads is loaded here, even beside a broken sysroot setting."""
    folder = wheels("markupsafe==3.0.3")
    (wheel,) = [p for p in folder.glob("markupsafe-3.0.3-*x86_64*.whl")]
    proc = wheelshade("shade", "--dep", wheel, "-o", tmp_path,
                      env={emulation.VARIABLES["aarch64"]: str(tmp_path / "missing")})
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "load" in line]
    assert notes == ["note: 1 patched compiled module(s) loaded, reaching no original name"]
