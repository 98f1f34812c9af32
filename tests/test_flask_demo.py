"""The seed demo as a test: real Flask 0.12.4 stack shaded, run beside real Flask 3."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from helpers import FIXTURES, Venv, build_fixture, validate_record, verify_offline
from pypi import wheels
from wheelshade import IndexOptions, shade

OLD_STACK = (
    "flask==0.12.4",
    "werkzeug==0.16.1",
    "jinja2==2.11.3",
    "markupsafe==2.0.1",
    "itsdangerous==1.1.0",
)
NEW_STACK = (
    "flask==3.1.3",
    "werkzeug==3.1.3",
    "jinja2==3.1.6",
    "markupsafe==3.0.3",
    "itsdangerous==2.2.0",
    "click==8.1.8",
    "blinker==1.9.0",
)
EXAMPLES = FIXTURES.parent.parent / "examples"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Venv]:
    links = wheels(*OLD_STACK, *NEW_STACK)
    tmp = tmp_path_factory.mktemp("demo")
    apps = {}
    for name in ("bizbaz", "foobar"):
        apps[name] = build_fixture(name, tmp / "dist", tmp / "src", root=EXAMPLES)
    out = tmp / "wheelhouse"
    # Resolved through the real fetch path (pip wheel), offline against the pinned cache.
    shade(
        [apps["bizbaz"]],
        list(OLD_STACK),
        out_dir=out,
        cache_dir=tmp / "cache",
        index=IndexOptions(find_links=(str(links),), no_index=True),
    )
    env = Venv.create(tmp / "env")
    env.install("--find-links", links, *sorted(out.glob("*.whl")), apps["foobar"], "flask==3.1.3")
    return out, apps["bizbaz"], env


def test_every_output_is_a_valid_wheel(demo: tuple[Path, Path, Venv]) -> None:
    out, _, _ = demo
    outputs = sorted(out.glob("*.whl"))
    assert len(outputs) == 6
    for whl in outputs:
        validate_record(whl)


def test_both_flasks_serve_a_request_in_one_interpreter(demo: tuple[Path, Path, Venv]) -> None:
    _, _, env = demo
    proc = env.run((EXAMPLES / "run_both.py").read_text())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("bizbaz: flask 0.12.4 from ")
    assert "/flask_0_12_4_" in lines[0]
    assert lines[1] == "bizbaz: GET / -> 200 'bizbaz page rendered by flask 0.12.4&lt;ok&gt;'"
    assert lines[2].startswith("foobar: flask 3.1.3 from ") and "/flask/__init__.py" in lines[2]
    assert lines[3] == "foobar: GET / -> 200 'foobar page rendered by flask 3.1.3&lt;ok&gt;'"


def test_old_stack_loads_nothing_under_original_names(demo: tuple[Path, Path, Venv]) -> None:
    _, _, env = demo
    proc = env.run(
        "import sys, bizbaz\nbizbaz.app.test_client().get('/')\n"
        "tops = {'flask', 'werkzeug', 'jinja2', 'markupsafe', 'itsdangerous'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in tops))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_pip_check_is_clean(demo: tuple[Path, Path, Venv]) -> None:
    _, _, env = demo
    proc = env.pip("check", check=False)
    assert proc.returncode == 0, proc.stdout


def test_compiled_speedups_patched_and_scripts_dropped(demo: tuple[Path, Path, Venv]) -> None:
    out, _, env = demo
    (ms,) = out.glob("markupsafe_2_0_1_*.whl")
    with zipfile.ZipFile(ms) as zf:
        (so,) = [n for n in zf.namelist() if "_speedups" in n and n.endswith(".so")]
    shaded = so.split("/")[0]
    assert len(shaded) == len("markupsafe")  # same-length: the binary was patched to it
    proc = env.run(
        f"import sys, markupsafe, {shaded} as old\n"
        "from {0}._speedups import escape\n".format(shaded)
        + "assert old.escape is escape and type(old.escape('<')) is old.Markup\n"
        "assert type(markupsafe.escape('<')) is markupsafe.Markup\n"
        "print(old.escape('<'))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "&lt;"
    (fl,) = out.glob("flask_0_12_4_*.whl")
    with zipfile.ZipFile(fl) as zf:
        (ep,) = [n for n in zf.namelist() if n.endswith("entry_points.txt")]
        assert b"console_scripts" not in zf.read(ep)


def test_verify_passes_on_the_demo_output(demo: tuple[Path, Path, Venv]) -> None:
    out, _, _ = demo
    proc = verify_offline(sorted(out.glob("*.whl")), "flask==3.1.3", wheels(*NEW_STACK))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK: no leak in 6 wheels")
    assert "bizbaz-0.1-py3-none-any.whl: imported 1, skipped 0, leaks 0" in proc.stdout


def test_with_deps_explicit_pins_path(tmp_path: Path) -> None:
    """--with-deps naming the stack's ranges (the path for indexes without upload times)."""
    from wheelshade.resolve.closure import ClosureOptions

    links = wheels(*OLD_STACK, *NEW_STACK)
    bizbaz = build_fixture("bizbaz", tmp_path / "dist", tmp_path / "src", root=EXAMPLES)
    (tmp_path / "target.txt").write_text("flask==3.1.3\n")
    result = shade(
        [bizbaz],
        ["flask==0.12.4", "werkzeug<1", "jinja2<3", "markupsafe<2.1", "itsdangerous<2"],
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        index=IndexOptions(find_links=(str(links),), no_index=True),
        drop=["markupsafe/_speedups*"],
        with_deps=True,
        closure=ClosureOptions(target_requirements=tmp_path / "target.txt"),
    )
    decided = {d.name: (str(d.version), d.shade) for d in result.decisions}
    assert decided == {
        "click": ("8.1.8", False),  # the target's click meets flask 0.12's click>=2.0
        "flask": ("0.12.4", True),
        "itsdangerous": ("1.1.0", True),
        "jinja2": ("2.11.3", True),
        "markupsafe": ("2.0.1", True),
        "werkzeug": ("0.16.1", True),
    }
    env = Venv.create(tmp_path / "env")
    env.install("--find-links", links, *sorted((tmp_path / "out").glob("*.whl")), "flask==3.1.3")
    proc = env.run("import bizbaz; bizbaz.main()")
    assert proc.returncode == 0, proc.stderr
    assert "GET / -> 200 'bizbaz page rendered by flask 0.12.4&lt;ok&gt;'" in proc.stdout
    assert env.pip("check", check=False).returncode == 0
