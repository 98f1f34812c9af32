"""Config files ([tool.wheelshade], wheelshade.toml) and batch mode with a JSON summary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from helpers import wheelshade

DOCS = Path(__file__).parent.parent / "docs"
SUMMARY = json.loads((DOCS / "batch-summary.schema.json").read_text())
REPORT = json.loads((DOCS / "leak-report.schema.json").read_text())


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return wheelshade("shade", *args, cwd=cwd)


@pytest.fixture
def project(fixture_wheels: dict[str, Path], tmp_path: Path) -> Path:
    """A folder with the fixture wheels under dist/ and a broken wheel."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("oldapp", "newapp", "greet1", "colors1", "leakyapp"):
        (dist / fixture_wheels[name].name).write_bytes(fixture_wheels[name].read_bytes())
    (dist / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    return tmp_path


SETS = """
out-dir = "wheelhouse"

[[set]]
name = "old greet for oldapp"
dependents = ["dist/oldapp-*.whl"]
deps = ["dist/greet-1.0-py3-none-any.whl", "dist/colors-1.0-py3-none-any.whl"]

[[set]]
name = "broken"
deps = ["dist/broken-1.0-py3-none-any.whl"]

[[set]]
name = "old greet for leakyapp"
dependents = ["dist/leakyapp-*.whl"]
deps = ["dist/greet-1.0-py3-none-any.whl", "dist/colors-1.0-py3-none-any.whl"]
"""


def test_batch_runs_every_set_and_reports_the_broken_one(project: Path) -> None:
    (project / "wheelshade.toml").write_text(SETS)
    proc = cli(project, "--json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SUMMARY)
    assert [(s["name"], s["ok"]) for s in doc["sets"]] == [
        ("old greet for oldapp", True),
        ("broken", False),
        ("old greet for leakyapp", True),
    ]
    broken = doc["sets"][1]
    assert broken["report"] is None
    assert "broken-1.0-py3-none-any.whl: not a valid zip archive" in broken["error"]
    for s in (doc["sets"][0], doc["sets"][2]):
        jsonschema.validate(s["report"], REPORT)
    # Not a TTY: plain lines, one per set and one per wheel written.
    assert "wheelshade: [3/3]" in proc.stderr
    assert "wrote" in proc.stderr and "Traceback" not in proc.stderr


def test_sets_sharing_a_stack_share_the_shaded_wheels(project: Path) -> None:
    (project / "wheelshade.toml").write_text(
        SETS.replace('[[set]]\nname = "broken"\ndeps = ["dist/broken-1.0-py3-none-any.whl"]\n', "")
    )
    proc = cli(project)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in (project / "wheelhouse").glob("*.whl"))
    # One shaded greet and one shaded colors for both dependents: same set, same names.
    assert len(wheels) == 4
    assert len([w for w in wheels if w.startswith("greet_1_0_")]) == 1
    assert "2 of 2 sets succeeded" in proc.stdout


def test_fail_fast_stops_at_the_first_failure(project: Path) -> None:
    (project / "wheelshade.toml").write_text(SETS.replace("[[set]]", "[[set]]", 1))
    proc = cli(project, "--json", "--fail-fast", "--jobs", "1")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert [s["ok"] for s in doc["sets"]] == [True, False, False]
    assert "skipped after an earlier failure" in doc["sets"][2]["error"]


def test_pyproject_table_is_one_set_and_flags_win(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.wheelshade]\nout-dir = "from-config"\n'
        'dependents = ["dist/oldapp-*.whl"]\n'
        'deps = ["dist/greet-1.0-py3-none-any.whl", "dist/colors-1.0-py3-none-any.whl"]\n'
    )
    proc = cli(project)
    assert proc.returncode == 0, proc.stderr
    assert len(list((project / "from-config").glob("*.whl"))) == 3
    proc = cli(project, "-o", "from-flag")
    assert proc.returncode == 0, proc.stderr
    assert len(list((project / "from-flag").glob("*.whl"))) == 3
    # --dep on the command line replaces the file's deps; the file's out-dir still applies.
    proc = cli(project, "--dep", "dist/colors-1.0-py3-none-any.whl")
    assert proc.returncode == 0, proc.stderr
    assert "colors 1.0" in proc.stdout and "oldapp" not in proc.stdout


def test_config_errors_are_reported_together(project: Path) -> None:
    (project / "wheelshade.toml").write_text('deps = "x"\nbogus = 1\n[[set]]\nalso-bogus = true\n')
    proc = cli(project)
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith("wheelshade: error: ") and "\n" not in line
    for part in ("unknown key 'bogus'", "'deps' must be a list", "set 1: unknown key 'also-bogus'"):
        assert part in line


def test_no_config_no_dep_is_a_usage_error(tmp_path: Path) -> None:
    proc = cli(tmp_path)
    assert proc.returncode == 1
    assert "no --dep given" in proc.stderr and "docs/config.md" in proc.stderr
