"""`wheelshade rewrite DIR`: a source tree rewritten in place with the dependents' rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import FIXTURES, Venv, wheelshade
from wheelshade import shade


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return wheelshade("rewrite", *args)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "oldapp"
    shutil.copytree(FIXTURES / "oldapp", root)
    (root / "setup.cfg").write_text(
        "[options.entry_points]\nconsole_scripts =\n    hello = greet.cli:main\n"
    )
    with (root / "pyproject.toml").open("a") as f:
        f.write('\n[project.entry-points."app.plugins"]\nloud = "greet.plugins:loud"\n')
    (root / "oldapp" / "strings.py").write_text(
        "import importlib\nPLUGIN = 'greet.core:hello'\nICON = 'greet.png'\n"
        "HELLO = 'greet.core.hello'\n"
        "def load():\n    return importlib.import_module('greet.sub')\n"
    )
    return root


def test_rewrite_from_shaded_wheels_and_check(
    tree: Path, fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "shaded"
    result = shade([], [fixture_wheels["greet1"], fixture_wheels["colors1"]], out_dir=out)
    greet = next(w for w in result.wheels if w.original == "greet 1.0").mapping["greet"]
    shaded = sorted(out.glob("*.whl"))
    before = (tree / "oldapp" / "__init__.py").read_bytes()

    check = cli(tree, *(a for w in shaded for a in ("--shaded", w)), "--check")
    assert check.returncode == 1
    assert (tree / "oldapp" / "__init__.py").read_bytes() == before  # --check writes nothing
    assert "would rewrite" in check.stdout

    done = cli(tree, *(a for w in shaded for a in ("--shaded", w)))
    assert done.returncode == 0, done.stderr
    assert sorted(Path(line.split(" ", 1)[1]).name for line in done.stdout.splitlines()) == [
        "__init__.py",
        "pyproject.toml",
        "setup.cfg",
        "strings.py",
    ]
    assert f"import {greet} as greet\n" in (tree / "oldapp" / "__init__.py").read_text()
    strings = (tree / "oldapp" / "strings.py").read_text()
    assert f"'{greet}.core:hello'" in strings and f"'{greet}.sub'" in strings
    # The module-level names of the shaded wheels decide: a file named after the package
    # stays, a function of one of its modules moves.
    assert "'greet.png'" in strings and f"'{greet}.core.hello'" in strings
    assert f"hello = {greet}.cli:main" in (tree / "setup.cfg").read_text()
    pyproject = (tree / "pyproject.toml").read_text()
    assert f'loud = "{greet}.plugins:loud"' in pyproject
    assert 'dependencies = ["greet==1.0", "colors==1.0"]' in pyproject  # not an entry point
    # A second pass finds nothing to do: the rewrite is idempotent.
    assert cli(tree, *(a for w in shaded for a in ("--shaded", w)), "--check").returncode == 0

    # The rewritten sources run against the shaded wheels, beside greet 2.
    env = Venv.create(tmp_path / "env")
    env.install(*shaded, fixture_wheels["greet2"], fixture_wheels["colors2"])
    proc = env.run(
        f"import sys; sys.path.insert(0, {str(tree)!r})\n"
        "import oldapp; print(oldapp.report()['hello'])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello oldapp in red (colors 1) (greet 1)"


def test_map_option_and_errors(tree: Path) -> None:
    proc = cli(tree, "--map", "greet=greet_x", "--check")
    assert proc.returncode == 1
    bad = cli(tree, "--map", "greet")
    assert bad.returncode == 1 and "expected ORIGINAL=SHADED" in bad.stderr
    (tree / "oldapp" / "py2.py").write_text('import greet\nprint "x"\n')
    before = (tree / "oldapp" / "__init__.py").read_bytes()
    broken = cli(tree, "--map", "greet=greet_x")
    assert broken.returncode == 2
    assert "oldapp/py2.py:2: cannot parse as Python 3 source" in broken.stderr
    assert (tree / "oldapp" / "__init__.py").read_bytes() == before  # all or nothing
