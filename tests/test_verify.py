"""`wheelshade verify`: real venvs, real pip, real imports; planted leaks must be found."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import build_fixture
from wheelshade import FetchError, IndexOptions, UsageError, shade
from wheelshade.verify.leaks import TEST_MODULE, VerifyReport, format_report, list_modules, verify

LOCAL = IndexOptions(no_index=True)


def _shade_and_verify(
    app: str, fixture_wheels: dict[str, Path], out: Path
) -> tuple[VerifyReport, dict[str, str]]:
    result = shade(
        [fixture_wheels[app]], [fixture_wheels["greet1"], fixture_wheels["colors1"]], out_dir=out
    )
    mapping = {k: v for w in result.wheels for k, v in w.mapping.items()}
    report = verify(
        sorted(out.glob("*.whl")),
        with_requirements=[str(fixture_wheels["greet2"]), str(fixture_wheels["colors2"])],
        index=LOCAL,
    )
    return report, mapping


@pytest.fixture(scope="module")
def clean(
    fixture_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[VerifyReport, dict[str, str]]:
    return _shade_and_verify("oldapp", fixture_wheels, tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def leaky(
    fixture_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> VerifyReport:
    return _shade_and_verify("leakyapp", fixture_wheels, tmp_path_factory.mktemp("leaky"))[0]


def test_a_clean_shade_passes(clean: tuple[VerifyReport, dict[str, str]]) -> None:
    report, mapping = clean
    greet = mapping["greet"]
    assert report.ok
    assert report.originals == ("colors", "greet")
    verdicts = {w.wheel: w for w in report.wheels}
    shaded = verdicts[f"{greet}-1.0-py3-none-any.whl"]
    assert {greet, f"{greet}.core", f"{greet}.sub", f"{greet}.sub.helpers"} <= set(shaded.imported)
    assert verdicts["oldapp-0.1-py3-none-any.whl"].imported == ("oldapp",)
    for verdict in report.wheels:
        assert verdict.leaks == () and verdict.skipped == ()


def test_a_dynamic_import_is_a_leak(leaky: VerifyReport) -> None:
    assert not leaky.ok
    verdicts = {w.wheel: w for w in leaky.wheels}
    app = verdicts["leakyapp-0.1-py3-none-any.whl"]
    assert app.imported == ("leakyapp",)
    leaks = {leak.module: leak for leak in app.leaks}
    assert leaks["greet"].cause == "importing leakyapp"
    assert leaks["greet"].file is not None
    assert leaks["greet"].file.replace("\\", "/").endswith("site-packages/greet/__init__.py")
    # What the unshaded greet 2 pulls in is traced back to the import that started it.
    assert leaks["greet.core"].cause == "importing leakyapp (via greet)"
    assert leaks["colors"].cause == "importing leakyapp (via greet.core)"
    # The shaded wheels themselves are clean: the leak is the dependent's alone.
    assert [w.wheel for w in leaky.wheels if w.leaks] == ["leakyapp-0.1-py3-none-any.whl"]


def test_test_modules_are_skipped_not_imported(leaky: VerifyReport) -> None:
    (app,) = [w for w in leaky.wheels if w.wheel.startswith("leakyapp-")]
    # planted.py raises on import, so being skipped is the only way it stays out of the leaks.
    assert app.skipped == (("leakyapp.tests", TEST_MODULE), ("leakyapp.tests.planted", TEST_MODULE))


def test_format_report(leaky: VerifyReport, clean: tuple[VerifyReport, dict[str, str]]) -> None:
    text = format_report(leaky)
    assert "leakyapp-0.1-py3-none-any.whl: imported 1, skipped 2, leaks 3" in text
    assert "  skipped leakyapp.tests.planted: test module" in text
    assert "  leak greet (" in text and "): importing leakyapp" in text
    assert text.endswith("FAILED: 3 leaks in 1 wheel")
    good = format_report(clean[0])
    assert "oldapp-0.1-py3-none-any.whl: imported 1, skipped 0, leaks 0" in good
    assert good.endswith("OK: no leak in 3 wheels")


def test_no_shaded_wheel_is_a_usage_error(fixture_wheels: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match=r"^no shaded wheel given: .*oldapp-0\.1"):
        verify([fixture_wheels["oldapp"], fixture_wheels["greet1"]], index=LOCAL)


def test_pip_failure_is_a_fetch_error(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    result = shade([], [fixture_wheels["greet1"], fixture_wheels["colors1"]], out_dir=tmp_path)
    (greet,) = [w for w in result.wheels if "greet" in w.mapping]
    # The shaded greet without the shaded colors it requires: pip cannot resolve it.
    with pytest.raises(FetchError, match=r"pip install failed: ERROR: ") as info:
        verify([greet.output], index=LOCAL)
    assert info.value.path == str(greet.output)


def _write_package(root: Path, name: str, files: dict[str, str]) -> None:
    pkg = root / name
    for rel, text in files.items():
        (pkg / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name / rel).write_text(textwrap.dedent(text))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.1"

        [tool.setuptools]
        packages = ["{name}"]
        """)
    )


def test_import_failures_are_skipped_and_a_crash_fails(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _write_package(
        src,
        "quirky",
        {
            "__init__.py": "print('noise on stdout must not spoil the report')\n",
            "__main__.py": "raise AssertionError('a __main__ module runs a program')\n",
            "optional.py": "import not_installed_anywhere_xyz.sub\n",
            "broken.py": "raise RuntimeError('boom\\nsecond line')\n",
            "exits.py": "import sys\nsys.exit(2)\n",
            "unshaded.py": "import colors  # the unshaded colors is not installed here\n",
        },
    )
    _write_package(src, "crashy", {"__init__.py": "import os\nos._exit(7)\n"})
    out = tmp_path / "wheels"
    quirky = build_fixture("quirky", out, tmp_path / "work", root=src)
    crashy = build_fixture("crashy", out, tmp_path / "work", root=src)
    (shaded,) = shade([], [fixture_wheels["colors1"]], out_dir=tmp_path / "shaded").wheels

    report = verify([shaded.output, quirky, crashy], index=LOCAL)

    assert not report.ok
    assert report.originals == ("colors",)
    verdicts = {w.wheel.split("-")[0]: w for w in report.wheels}
    assert verdicts["quirky"].imported == ("quirky",)
    assert dict(verdicts["quirky"].skipped) == {
        "quirky.__main__": "__main__ module (runs a program when imported)",
        "quirky.broken": "RuntimeError: boom",
        "quirky.exits": "SystemExit: 2",
        "quirky.optional": "needs optional dependency not_installed_anywhere_xyz",
        "quirky.unshaded": "ModuleNotFoundError: No module named 'colors'",
    }
    (looked_for,) = verdicts["quirky"].leaks
    assert (looked_for.module, looked_for.file) == ("colors", None)
    assert looked_for.cause == "importing quirky.unshaded"
    (crash,) = verdicts["crashy"].leaks
    assert crash.module == "<interpreter>"
    assert "exit status 7" in crash.cause and "while importing crashy" in crash.cause
    assert verdicts[shaded.output.name.split("-")[0]].leaks == ()


@pytest.mark.parametrize(
    ("members", "modules", "skipped"),
    [
        (["pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py"], ["pkg", "pkg.a", "pkg.sub"], []),
        (["x.cpython-311-x86_64-linux-gnu.so", "y.pyd", "z.abi3.so"], ["x", "y", "z"], []),
        (["d-1.data/purelib/p.py", "d-1.data/platlib/q/__init__.py"], ["p", "q"], []),
        (["d-1.data/scripts/s.py", "d-1.data/data/t.py", "d-1.dist-info/u.py"], [], []),
        (["pkg/__pycache__/a.cpython-311.pyc", "pkg/a.pyi", "pkg/a.txt"], [], []),
        (
            [
                "pkg/tests/x.py",
                "pkg/test_a.py",
                "pkg/a_test.py",
                "conftest.py",
                "testing.py",
                "pkg/testing/__init__.py",
                "pkg/test.py",
            ],
            ["pkg.test", "testing"],
            ["conftest", "pkg.a_test", "pkg.test_a", "pkg.testing", "pkg.tests.x"],
        ),
        (["pkg/__main__.py", "pkg/data-dir/x.py"], [], ["pkg.__main__", "pkg.data-dir.x"]),
        (["pkg/sub/m.py", "pkg/__init__.py", "pkg2.py"], ["pkg", "pkg.sub.m", "pkg2"], []),
    ],
    ids=[
        "package",
        "extensions",
        "data-lib",
        "not-site-packages",
        "not-modules",
        "tests",
        "unimportable",
        "order",
    ],
)
def test_list_modules(members: list[str], modules: list[str], skipped: list[str]) -> None:
    found, skips = list_modules(members, "d-1.dist-info")
    assert list(found) == modules
    assert [m for m, _ in skips] == skipped


def _break_module(wheel: Path, member: str, line: str) -> None:
    """Append ``line`` to ``member`` of ``wheel``, in place, with a fresh RECORD: the
    shaded copy then fails where the original imports (a half-renamed pair, class 3)."""
    import zipfile

    from wheel.wheelfile import WheelFile

    with zipfile.ZipFile(wheel) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if not n.endswith(".dist-info/RECORD")}
    files[member] += line.encode()
    wheel.unlink()
    with WheelFile(wheel, "w") as wf:
        for name, data in files.items():
            wf.writestr(name, data)


@pytest.fixture(scope="module")
def broken_set(
    fixture_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("broken")
    result = shade([], [fixture_wheels["greet1"], fixture_wheels["colors1"]], out_dir=out)
    (greet,) = [w for w in result.wheels if "greet" in w.mapping]
    shaded = greet.mapping["greet"]
    # What a half-renamed pair does: the package's own name check sees the shaded name.
    _break_module(
        greet.output,
        f"{shaded}/cli.py",
        '\nif __name__.split(".")[0] != "greet":\n    raise ImportError("not loaded as greet")\n',
    )
    return greet.output, [w.output for w in result.wheels]


def test_a_module_broken_by_shading_is_broken_not_skipped(
    broken_set: tuple[Path, list[Path]], fixture_wheels: dict[str, Path]
) -> None:
    greet, outputs = broken_set
    shaded = greet.name.split("-")[0]
    # The originals are found where pip finds them (here the fixture wheels' folders).
    links = IndexOptions(
        no_index=True,
        find_links=tuple(str(fixture_wheels[n].parent) for n in ("greet1", "colors1")),
    )
    report = verify(
        outputs,
        with_requirements=[str(fixture_wheels["greet2"]), str(fixture_wheels["colors2"])],
        index=links,
    )
    assert not report.ok and report.broken
    verdict = next(w for w in report.wheels if w.wheel == greet.name)
    assert verdict.broken == ((f"{shaded}.cli", "ImportError: not loaded as greet"),)
    assert f"{shaded}.cli" not in dict(verdict.skipped)
    text = format_report(report)
    assert f"  broken {shaded}.cli: ImportError: not loaded as greet" in text
    assert text.splitlines()[-1].startswith("BROKEN: 1 module in 1 wheel")
    assert "not checked: code that runs after import" in text


def test_cli_exit_status_for_broken_and_for_failures_no_original_can_clear(
    broken_set: tuple[Path, list[Path]], fixture_wheels: dict[str, Path]
) -> None:
    from helpers import wheelshade

    _, outputs = broken_set
    beside = ["--with", str(fixture_wheels["greet2"]), "--with", str(fixture_wheels["colors2"])]
    given = [f"--original={fixture_wheels[n]}" for n in ("greet1", "colors1")]
    proc = wheelshade("verify", *outputs, *beside, *given, "--no-index")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "BROKEN: 1 module" in proc.stdout
    # Offline with no original to compare with: the failure is not waved through as OK.
    proc = wheelshade("verify", *outputs, *beside, "--no-index")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "OK" not in proc.stdout
    assert "import failures not compared with the original: original greet 1.0 not found" in (
        proc.stdout
    )
    assert proc.stdout.splitlines()[-1].startswith("UNCHECKED: 1 module of shaded wheels")


def test_a_dependency_importing_the_shaded_package_back_is_named(tmp_path: Path) -> None:
    """A distribution the shaded one requires, kept unshaded, that imports the package back
    by its original name (without requiring it): it runs against the other version."""
    from helpers import make_wheel

    def host(version: str) -> Path:
        files = {
            "host/__init__.py": f"VERSION = {version!r}\nfrom host import select\n",
            "host/select.py": "import matcher\n",
        }
        return make_wheel(tmp_path / "in", "host", version, files, requires=("matcher-lib",))

    old, new = host("1.0"), host("2.0")
    # Installed by a distribution of another name: the hint names the one to give --dep.
    matcher = make_wheel(
        tmp_path / "in", "matcher_lib", "1.0", {"matcher/__init__.py": "import host\n"}
    )
    (shaded,) = shade([], [old], out_dir=tmp_path / "shaded").wheels

    report = verify([shaded.output], with_requirements=[str(new), str(matcher)], index=LOCAL)

    (verdict,) = report.wheels
    assert not report.ok
    assert verdict.back_imports == (("matcher", "host", "matcher_lib"),)
    text = format_report(report)
    assert (
        "  matcher imports host by its original name and is in no verified wheel: shade the "
        "distribution that installs 'matcher' (matcher_lib) in the same set (--dep "
        "matcher_lib)"
    ) in text


def test_a_step_that_times_out_is_stopped_with_the_processes_it_started(tmp_path: Path) -> None:
    """pip runs its resolver in a child process: a timeout must stop that one too, or it
    goes on writing into the venv verify is removing (a traceback instead of one line)."""
    import sys
    import time

    from wheelshade.verify.venv import run_step

    alive = tmp_path / "alive"
    child = (
        "import pathlib, time\n"
        "while True:\n"
        f"    pathlib.Path({str(alive)!r}).write_text(repr(time.time()))\n"
        "    time.sleep(0.05)\n"
    )
    parent = (
        "import pathlib, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        f"while not pathlib.Path({str(alive)!r}).exists():\n"
        "    time.sleep(0.05)\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    with pytest.raises(FetchError, match=r": pip install did not finish within 20 s$"):
        run_step([sys.executable, "-c", parent], "pip install", where=tmp_path, timeout=20)
    assert alive.exists(), "the child never started: the machine is too slow for this test"
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    last = alive.read_text()
    time.sleep(1)
    assert alive.read_text() == last, "the child process is still running"


def test_a_top_level_module_only_the_release_beside_ships_is_a_leak(tmp_path: Path) -> None:
    """The old release's wheel has no accelerator module (built only for some platforms or
    versions); the new one, installed beside, ships it as a top-level module of its own
    name. The shaded code's optional import then runs the other release's code: a leak,
    not a clean result."""
    from helpers import make_wheel

    guarded = "try:\n    from hostc import speed\nexcept ImportError:\n    speed = 'pure'\n"
    old = make_wheel(tmp_path / "in", "host", "1.0", {"host/__init__.py": guarded})
    new = make_wheel(tmp_path / "in", "host", "2.0", {
        "host/__init__.py": "VERSION = '2.0'\n", "hostc.py": "speed = 'accelerated 2.0'\n",
    })
    (shaded,) = shade([], [old], out_dir=tmp_path / "shaded").wheels

    report = verify([shaded.output], with_requirements=[str(new)], index=LOCAL)

    (verdict,) = report.wheels
    assert not report.ok
    assert "hostc" in report.originals
    assert [leak.module for leak in verdict.leaks] == ["hostc"]
    # Without the release beside, nothing ships hostc: the fallback runs, and that is clean.
    alone = verify([shaded.output], index=LOCAL)
    assert alone.ok and "hostc" not in alone.originals


def test_a_compiled_companion_importing_the_package_back_is_named(tmp_path: Path) -> None:
    """The shaded code imports a top-level extension of another distribution, whose
    initialisation imports the package back from C: no Python frame shows it, yet the hint
    must name that distribution, not blame the shaded module that imported it."""
    from helpers import make_wheel

    accel = build_fixture("cback", tmp_path / "in", tmp_path / "build")

    def host(version: str) -> Path:
        files = {
            "hostpkg/__init__.py": f"VERSION = {version!r}\n",
            "hostpkg/errors.py": "class Boom(Exception):\n    pass\n",
            "hostpkg/fast.py": "import _cback\n",
        }
        return make_wheel(tmp_path / "in", "hostpkg", version, files, requires=("cback-accel",))

    old, new = host("1.0"), host("2.0")
    (shaded,) = shade([], [old], out_dir=tmp_path / "shaded").wheels
    report = verify([shaded.output], with_requirements=[str(new), str(accel)], index=LOCAL)
    (verdict,) = report.wheels
    assert not report.ok
    assert verdict.back_imports == (("_cback", "hostpkg", "cback_accel"),)
    assert "shade the distribution that installs '_cback' (cback_accel)" in format_report(report)


def test_a_module_failing_only_after_its_sibling_fails_unshaded_too(tmp_path: Path) -> None:
    """Two generated copies registering one name in a process-wide registry (protobuf's
    descriptor pool, a metrics registry): the second fails after the first in any process,
    shaded or not. The originals are imported in the shaded probe's order, so this is no
    regression; a module that imports alone in the original but not shaded still is."""
    from helpers import make_wheel

    register = (
        "import builtins\nif getattr(builtins, '_regdup_taken', False):\n"
        "    raise TypeError('duplicate name thing')\nbuiltins._regdup_taken = True\n"
    )

    def pkg(version: str) -> Path:
        files = {"regdup/__init__.py": f"VERSION = {version!r}\n",
                 "regdup/v1.py": register, "regdup/v2.py": register,
                 # A real break: a name spelled so that no rule can see it.
                 "regdup/uses.py": "assert __name__.split('.')[0] == 'reg' + 'dup'\n"}
        return make_wheel(tmp_path / "in", "regdup", version, files)

    old, new = pkg("1.0"), pkg("2.0")
    (shaded,) = shade([], [old], out_dir=tmp_path / "shaded").wheels
    report = verify([shaded.output], with_requirements=[str(new)], index=LOCAL,
                    originals=[old])
    (verdict,) = report.wheels
    name = shaded.mapping["regdup"]
    assert [m for m, _ in verdict.broken] == [f"{name}.uses"]
    assert (f"{name}.v2", "TypeError: duplicate name thing") in verdict.skipped
