"""Dry run and diff, the leak report and its schema, --strict, .pth files, inspect."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest

from helpers import Venv, make_wheel, names, wheelshade

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "leak-report.schema.json").read_text())


cli = wheelshade


def shade_args(fixture_wheels: dict[str, Path], out: Path) -> list[str | Path]:
    return [
        "shade",
        fixture_wheels["oldapp"],
        "--dep",
        fixture_wheels["greet1"],
        "--dep",
        fixture_wheels["colors1"],
        "-o",
        out,
    ]


def test_dry_run_with_diff_writes_nothing(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli(*shade_args(fixture_wheels, out), "--dry-run", "--diff")
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert re.search(
        r"^--- a/oldapp-0\.1-py3-none-any\.whl/oldapp/__init__\.py$", proc.stdout, re.M
    )
    assert re.search(r"^\+import greet_1_0_[0-9a-f]{8} as greet$", proc.stdout, re.M)
    assert re.search(r"^-Requires-Dist: greet==1\.0$", proc.stdout, re.M)
    assert "would write" in proc.stdout


def test_report_matches_its_schema(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = cli(*shade_args(fixture_wheels, tmp_path / "out"), "--report", report)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, SCHEMA)
    (greet,) = [w for w in doc["wheels"] if w["original"] == "greet 1.0"]
    dynamic = [f for f in greet["findings"] if f["code"] == "dynamic-name"]
    # resolve_name(PLUGINS[0]) and import_module(name): names known only at run time.
    assert [(f["path"], f["line"]) for f in dynamic] == [
        ("greet/dynamic.py", 24),
        ("greet/dynamic.py", 31),
    ]
    assert "leak report: 2 finding(s)" in proc.stdout


def test_strict_fails_on_findings_and_writes_nothing(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    out, report = tmp_path / "out", tmp_path / "report.json"
    proc = cli(*shade_args(fixture_wheels, out), "--strict", "--report", report)
    assert proc.returncode == 3, proc.stderr
    assert re.search(
        r"^wheelshade: error: .*greet-1\.0-py3-none-any\.whl: 2 finding\(s\) under --strict; "
        r"first: greet/dynamic\.py:24: pkgutil\.resolve_name\(\) with a name computed",
        proc.stderr,
        re.M,
    )
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    jsonschema.validate(json.loads(report.read_text()), SCHEMA)


def test_strict_passes_without_findings(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    proc = cli(
        "shade",
        fixture_wheels["newapp"],
        "--dep",
        fixture_wheels["colors2"],
        "--strict",
        "-o",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "out").glob("*.whl"))) == 2


@pytest.fixture
def pth_wheels(tmp_path: Path) -> dict[str, Path]:
    """A dep that ships a start-up hook in a .pth file, in two versions."""

    def hook(version: str) -> dict[str, str]:
        return {
            "hooky_hook.pth": "import hooky_startup\n",
            "hooky_startup.py": "import os\nos.environ['HOOKS'] = "
            f"os.environ.get('HOOKS', '') + 'v{version};'\n",
            "hooky/__init__.py": f"VERSION = {version!r}\n",
        }

    return {
        "old": make_wheel(tmp_path / "w", "hooky", "1.0", hook("1.0")),
        "new": make_wheel(tmp_path / "w", "hooky", "2.0", hook("2.0")),
    }


def test_pth_left_out_by_default(pth_wheels: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = cli("shade", "--dep", pth_wheels["old"], "-o", tmp_path / "out", "--report", report)
    assert proc.returncode == 0, proc.stderr
    (whl,) = (tmp_path / "out").glob("*.whl")
    assert not [n for n in names(whl) if n.endswith(".pth")]
    codes = [f["code"] for w in json.loads(report.read_text())["wheels"] for f in w["findings"]]
    assert codes == ["pth-dropped"]
    env = Venv.create(tmp_path / "env")
    env.install(whl, pth_wheels["new"])
    assert env.json("import json, os; print(json.dumps(os.environ['HOOKS']))") == "v2.0;"


def test_pth_kept_is_renamed_and_rewritten(pth_wheels: dict[str, Path], tmp_path: Path) -> None:
    proc = cli("shade", "--dep", pth_wheels["old"], "-o", tmp_path / "out", "--keep-pth")
    assert proc.returncode == 0, proc.stderr
    (whl,) = (tmp_path / "out").glob("*.whl")
    (pth,) = [n for n in names(whl) if n.endswith(".pth")]
    assert re.fullmatch(r"hooky_1_0_[0-9a-f]{8}-hooky_hook\.pth", pth)
    env = Venv.create(tmp_path / "env")
    env.install(whl, pth_wheels["new"])
    hooks = env.json("import json, os; print(json.dumps(os.environ['HOOKS']))")
    assert isinstance(hooks, str) and sorted(hooks.split(";")) == ["", "v1.0", "v2.0"]


def test_inspect(fixture_wheels: dict[str, Path]) -> None:
    proc = cli("inspect", fixture_wheels["greet1"])
    assert proc.returncode == 0, proc.stderr
    assert "distribution: greet 1.0" in proc.stdout
    assert re.search(r"^installs: +greet \(package\)$", proc.stdout, re.M)
    assert re.search(r"^imports: +colors$", proc.stdout, re.M)
    assert re.search(
        r"greet/dynamic\.py:31: importlib\.import_module\(\) .*\[dynamic-name\]", proc.stdout
    )


def test_on_unparsable_keep(tmp_path: Path) -> None:
    py2 = 'print "python 2"\n'
    whl = make_wheel(
        tmp_path / "in",
        "legacy",
        "1.0",
        {
            "legacy/__init__.py": "from legacy import compat\n",
            "legacy/compat.py": "import legacy\n" + py2,  # mentions the shaded name
            "legacy/other.py": py2,  # does not
        },
    )
    report = tmp_path / "r.json"
    failed = cli("shade", "--dep", whl, "-o", tmp_path / "fail")
    assert failed.returncode == 2 and "legacy/compat.py:2: cannot parse" in failed.stderr
    proc = cli(
        "shade", "--dep", whl, "-o", tmp_path / "out", "--on-unparsable", "keep", "--report", report
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, SCHEMA)
    findings = doc["wheels"][0]["findings"]
    assert [(f["path"], f["code"]) for f in findings] == [("legacy/compat.py", "unparsable")]
    (out,) = (tmp_path / "out").glob("*.whl")
    shaded = doc["wheels"][0]["mapping"]["legacy"]
    with zipfile.ZipFile(out) as zf:
        assert zf.read(f"{shaded}/compat.py").decode() == "import legacy\n" + py2
        assert zf.read(f"{shaded}/other.py").decode() == py2
        assert zf.read(f"{shaded}/__init__.py").decode() == f"from {shaded} import compat\n"


def test_verify_ignores_start_up_imports_of_the_unshaded_copy(
    pth_wheels: dict[str, Path], tmp_path: Path
) -> None:
    # hooky 2.0 (unshaded, installed beside) imports hooky_startup from its .pth at every
    # start-up; that is not the shaded hooky 1.0 leaking (setuptools' _distutils_hack case).
    out = tmp_path / "out"
    assert cli("shade", "--dep", pth_wheels["old"], "-o", out).returncode == 0
    (whl,) = out.glob("*.whl")
    proc = cli("verify", whl, "--with", pth_wheels["new"], "--no-index")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: no leak" in proc.stdout
