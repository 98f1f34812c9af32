"""Entry-point groups: a package that loads its own plugins by group finds each exactly once,
shaded and unshaded side by side, and the moved group is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Venv, make_wheel, read_member, validate_record
from wheelshade import shade
from wheelshade.findings import Code
from wheelshade.result import WheelReport


def plugy(out: Path, version: str) -> Path:
    """``plugy``: built-in plugins registered under ``[plugy.ext]`` and loaded by group."""
    init = (
        "from importlib.metadata import entry_points\n\n"
        f"VERSION = {version!r}\n\n"
        "def plugins():\n"
        '    return sorted(f"{ep.name}={ep.load()()}" for ep in entry_points(group="plugy.ext"))\n'
    )
    files = {
        "plugy/__init__.py": init,
        "plugy/builtin.py": f"def a():\n    return 'a{version}'\n\n"
        f"def b():\n    return 'b{version}'\n",
        f"plugy-{version}.dist-info/entry_points.txt": (
            "[plugy.ext]\na = plugy.builtin:a\nb = plugy.builtin:b\n\n"
            "[plugy.unused]\nc = plugy.builtin:a\n"
        ),
    }
    return make_wheel(out, "plugy", version, files)


@pytest.fixture(scope="module")
def shaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, WheelReport]:
    tmp = tmp_path_factory.mktemp("groups")
    old, new = plugy(tmp / "in", "1"), plugy(tmp / "new", "2")
    result = shade([], [old], out_dir=tmp / "out")
    (wheel,) = result.wheels
    return wheel.output, new, wheel


def test_the_section_moves_with_the_code_that_loads_it(
    shaded: tuple[Path, Path, WheelReport],
) -> None:
    output, _, _ = shaded
    validate_record(output)
    name = output.name.split("-")[0]
    text = read_member(output, "entry_points.txt")
    assert f"[{name}.ext]\na = {name}.builtin:a\n" in text
    # A group no code of the package names stays: other packages may load it by that name.
    assert "[plugy.unused]\n" in text
    source = read_member(output, f"{name}/__init__.py")
    assert f'entry_points(group="{name}.ext")' in source


def test_the_moved_group_is_a_finding(shaded: tuple[Path, Path, WheelReport]) -> None:
    _, _, wheel = shaded
    (finding,) = [f for f in wheel.findings if f.code is Code.ENTRY_POINT_GROUP]
    assert finding.path.endswith(".dist-info/entry_points.txt")
    assert "'plugy.ext'" in finding.message and "other distributions" in finding.message


def test_each_copy_finds_its_own_plugins_exactly_once(
    shaded: tuple[Path, Path, WheelReport], tmp_path: Path
) -> None:
    output, new, _ = shaded
    name = output.name.split("-")[0]
    venv = Venv.create(tmp_path / "venv")
    venv.install(output, new)
    data = venv.json(
        f"import json, plugy, {name} as old\n"
        "print(json.dumps([old.plugins(), plugy.plugins()]))"
    )
    assert data == [["a=a1", "b=b1"], ["a=a2", "b=b2"]]


def loader(out: Path, version: str) -> Path:
    """``hostx`` loads plugins of a group named like no module, through its own wrapper of
    ``importlib.metadata`` (as packages that support old Pythons do)."""
    files = {
        "hostx/__init__.py": f"VERSION = {version!r}\n",
        "hostx/util/__init__.py": "",
        "hostx/util/meta.py": "from importlib.metadata import entry_points\n",
        "hostx/load.py": (
            "from hostx.util.meta import entry_points\n\n\ndef plugins():\n"
            "    found = entry_points(group='hostx_instrumentor')\n"
            "    return sorted(f'{ep.name}={ep.load()()}' for ep in found)\n"
        ),
    }
    return make_wheel(out, "hostx", version, files)


def plugin(out: Path, version: str) -> Path:
    files = {
        "hostx_plugin/__init__.py": "from hostx import VERSION\n\n\ndef f():\n"
                                    "    return 'p' + VERSION\n",
        f"hostx_plugin-{version}.dist-info/entry_points.txt": (
            "[hostx_instrumentor]\np = hostx_plugin:f\n"),
    }
    return make_wheel(out, "hostx_plugin", version, files, requires=(f"hostx=={version}",))


def test_a_plugin_group_of_the_set_takes_a_name_of_the_set(tmp_path: Path) -> None:
    """Loader and plugin shaded together: the shaded loader finds its own plugin once and
    not the other release's (which imports the unshaded package), and the other release
    finds only its own."""
    result = shade([], [loader(tmp_path / "in", "1.0"), plugin(tmp_path / "in", "1.0")],
                   out_dir=tmp_path / "out")
    by_name = {r.mapping and next(iter(r.mapping)): r for r in result.wheels}
    shaded_plugin = by_name["hostx_plugin"].output
    text = read_member(shaded_plugin, "entry_points.txt")
    group = text.splitlines()[0].strip("[]")
    assert group.startswith("hostx_instrumentor_") and group != "hostx_instrumentor"
    host = by_name["hostx"].mapping["hostx"]
    assert f"entry_points(group='{group}')" in read_member(by_name["hostx"].output,
                                                         f"{host}/load.py")
    assert any(f.code is Code.ENTRY_POINT_GROUP for r in result.wheels for f in r.findings)
    venv = Venv.create(tmp_path / "venv")
    venv.install(*(r.output for r in result.wheels), loader(tmp_path / "new", "2.0"),
                 plugin(tmp_path / "new", "2.0"))
    data = venv.json(
        f"import json, sys\nimport {host}.load as old\nfirst = old.plugins()\n"
        "seen = 'hostx' in sys.modules\nimport hostx.load\n"
        "print(json.dumps([first, seen, hostx.load.plugins()]))"
    )
    assert data == [["p=p1.0"], False, ["p=p2.0"]]
