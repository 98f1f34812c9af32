"""End to end on synthetic packages: shade, install with real pip beside the other version, run."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from helpers import Venv, names, read_member, validate_record
from wheelshade import shade
from wheelshade.naming import set_hash

SET_HASH = set_hash(
    [(canonicalize_name("greet"), Version("1.0")), (canonicalize_name("colors"), Version("1.0"))]
)
GREET = f"greet_1_0_{SET_HASH}"
COLORS = f"colors_1_0_{SET_HASH}"


@pytest.fixture(scope="module")
def shaded(fixture_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    shade(
        [fixture_wheels["oldapp"]],
        [fixture_wheels["greet1"], fixture_wheels["colors1"]],
        out_dir=out,
    )
    return out


@pytest.fixture(scope="module")
def env(
    shaded: Path, fixture_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Venv:
    venv = Venv.create(tmp_path_factory.mktemp("env") / "venv")
    venv.install(
        *sorted(shaded.glob("*.whl")),
        fixture_wheels["newapp"],
        fixture_wheels["greet2"],
        fixture_wheels["colors2"],
    )
    return venv


def test_outputs_are_named_by_the_scheme(shaded: Path) -> None:
    assert sorted(p.name for p in shaded.iterdir()) == sorted(
        [
            f"{GREET}-1.0-py3-none-any.whl",
            f"{COLORS}-1.0-py3-none-any.whl",
            "oldapp-0.1-py3-none-any.whl",
        ]
    )
    for whl in shaded.iterdir():
        validate_record(whl)


def test_both_versions_run_in_one_interpreter(env: Venv) -> None:
    data = env.json(
        "import json, sys, oldapp, newapp\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] in ('greet', 'colors'))\n"
        "import greet, colors\n"
        "print(json.dumps({'old': oldapp.report(), 'new': newapp.report(), 'mods': mods,\n"
        "  'greet': greet.__file__, 'colors': colors.__file__}))"
    )
    assert isinstance(data, dict)
    old, new = data["old"], data["new"]
    assert old["hello"] == "hello oldapp in red (colors 1) (greet 1)"
    assert old["version"] == old["alias"] == old["class"] == "1.0"
    assert old["core"] == f"{GREET}.core"
    assert old["sub"] == old["where"] == f"{GREET}.core helpers-1"
    assert old["helpers"] == "helpers-1"
    assert old["colors"] == "red (colors 1)"
    assert old["module_file"] == GREET
    assert old["dist_version"] == "1.0"
    assert old["dynamic"] == {
        "core": "hello dyn in red (colors 1) (greet 1)",
        "sub": f"{GREET}.core helpers-1",
        "dunder": "1.0",
        # sys.modules lookups use the shaded name: the unshaded greet is not consulted.
        "loaded": "1.0",
        "spec": "core",
        "version": "1.0",
        "data": "greet data v1",
        "plugin": "HELLO P IN RED (COLORS 1) (GREET 1)",
        "generated": "hello gen in red (colors 1) (greet 1)",
    }
    assert new == {"hello": "hi newapp in blue (colors 2) (greet 2)", "version": "2.0"}
    # The unshaded names belong to version 2 alone: newapp imported them, nothing of v1 did.
    assert data["greet"].endswith("site-packages/greet/__init__.py")
    assert data["colors"].endswith("site-packages/colors.py")
    assert set(data["mods"]) == {"greet", "greet.core", "colors"}


def test_shaded_copy_leaks_nothing_under_the_original_names(env: Venv) -> None:
    mods = env.json(
        "import json, sys, oldapp\noldapp.report()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('greet', 'colors'))))"
    )
    assert mods == []


def test_pip_is_satisfied(env: Venv) -> None:
    proc = env.pip("check", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_entry_points_are_rewritten_and_scripts_left_out(env: Venv, shaded: Path) -> None:
    text = read_member(shaded / f"{GREET}-1.0-py3-none-any.whl", "entry_points.txt")
    assert "console_scripts" not in text
    assert f"loud = {GREET}.plugins:loud" in text
    out = env.json(
        "import json\nfrom importlib.metadata import entry_points\n"
        "(ep,) = entry_points(group='greet.plugins')\n"
        "print(json.dumps(ep.load()('x')))"
    )
    assert out == "HELLO X IN RED (COLORS 1) (GREET 1)"
    assert not (env.root / "bin" / "greet").read_text().count(GREET)


def test_metadata_points_at_the_shaded_distributions(shaded: Path) -> None:
    greet_meta = read_member(shaded / f"{GREET}-1.0-py3-none-any.whl", ".dist-info/METADATA")
    dist = GREET.replace("_", "-")
    assert f"Name: {dist}\n" in greet_meta
    assert f"Requires-Dist: {COLORS.replace('_', '-')}==1.0\n" in greet_meta
    app_meta = read_member(shaded / "oldapp-0.1-py3-none-any.whl", ".dist-info/METADATA")
    assert "Name: oldapp\n" in app_meta
    assert f"Requires-Dist: {dist}==1.0\n" in app_meta
    top = read_member(shaded / f"{GREET}-1.0-py3-none-any.whl", "top_level.txt")
    assert top.split() == [GREET]
    assert f"{GREET}-1.0.dist-info/RECORD" == names(shaded / f"{GREET}-1.0-py3-none-any.whl")[-1]


def test_provenance_records_the_source(shaded: Path, fixture_wheels: dict[str, Path]) -> None:
    import hashlib

    doc = json.loads(read_member(shaded / f"{GREET}-1.0-py3-none-any.whl", "wheelshade.json"))
    assert doc["original"] == {
        "name": "greet",
        "version": "1.0",
        "sha256": hashlib.sha256(fixture_wheels["greet1"].read_bytes()).hexdigest(),
    }
    assert doc["mapping"] == {"greet": GREET}
    assert doc["shading_set"] == {"colors": "1.0", "greet": "1.0"}


def test_uninstall_removes_exactly_its_own_files(
    shaded: Path, fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = Venv.create(tmp_path / "venv")
    venv.install(*sorted(shaded.glob("*.whl")), fixture_wheels["greet2"], fixture_wheels["colors2"])
    site = next((venv.root / "lib").glob("python3*/site-packages"))
    assert (site / GREET / "core.py").is_file()
    venv.pip("uninstall", "--yes", GREET.replace("_", "-"))
    assert not (site / GREET).exists()
    assert not list(site.glob(f"{GREET}-*.dist-info"))
    assert venv.json("import json, greet; print(json.dumps(greet.VERSION))") == "2.0"


def test_files_without_a_shaded_name_keep_their_bytes(
    shaded: Path, fixture_wheels: dict[str, Path]
) -> None:
    with (
        zipfile.ZipFile(fixture_wheels["greet1"]) as before,
        zipfile.ZipFile(shaded / f"{GREET}-1.0-py3-none-any.whl") as after,
    ):
        assert after.read(f"{GREET}/sub/helpers.py") == before.read("greet/sub/helpers.py")
        assert after.read(f"{GREET}/cli.py") == before.read("greet/cli.py")
        assert after.read(f"{GREET}/core.py") != before.read("greet/core.py")


def test_reproducible(
    fixture_wheels: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outs = []
    for run in ("a", "b"):
        shade(
            [fixture_wheels["oldapp"]],
            [fixture_wheels["greet1"], fixture_wheels["colors1"]],
            out_dir=tmp_path / run,
        )
        outs.append({p.name: p.read_bytes() for p in (tmp_path / run).iterdir()})
    assert outs[0] == outs[1]
    with zipfile.ZipFile(tmp_path / "a" / "oldapp-0.1-py3-none-any.whl") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_a_different_set_gives_different_names(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    result = shade([], [fixture_wheels["greet1"]], out_dir=tmp_path)
    (report,) = result.wheels
    other = report.mapping["greet"]
    assert other.startswith("greet_1_0_") and other != GREET


def test_dependent_that_never_imports_a_dep_is_warned(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    result = shade([fixture_wheels["newapp"]], [fixture_wheels["colors1"]], out_dir=tmp_path)
    assert result.warnings == (
        "newapp-0.1-py3-none-any.whl imports none of the shaded modules (colors); "
        "is it the right wheel?",
        "no dependent imports colors (colors) and no other --dep requires it; "
        "is that --dep intended?",
    )


def test_stack_members_reached_through_other_deps_are_not_warned(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    # oldapp imports greet and colors; a dependent importing only greet still reaches
    # colors through greet's Requires-Dist.
    result = shade(
        [fixture_wheels["leakyapp"]],
        [fixture_wheels["greet1"], fixture_wheels["colors1"]],
        out_dir=tmp_path,
    )
    assert result.warnings == ()
