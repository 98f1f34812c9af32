"""``--bundle`` on synthetic wheels: the merged metadata, redirected lookups, refusals, pip/uv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag, parse_tag

from helpers import Venv, names, read_member, validate_record, wheelshade
from pypi import wheels
from wheelshade import PlanError, shade
from wheelshade.bundle_meta import Part, requires_dist, requires_python
from wheelshade.rewrite.bundled import LOOKUPS, redirect_lookups
from wheelshade.rewrite.rules import DIST_CALLS
from wheelshade.wheel.tags import merged_tag

D = "oldlib-1-0-abcd1234"
M = "oldlib_1_0_abcd1234._wheelshade_metadata"
CALL = f'__import__("{M}", fromlist=({{0!r}},)).{{0}}'

REDIRECTS = [
    (
        "version",
        f'from importlib.metadata import version\nv = version("{D}")\n',
        f'from importlib.metadata import version\nv = {CALL.format("version")}("{D}")\n',
    ),
    (
        "module-attribute",
        f'import importlib.metadata\nm = importlib.metadata.metadata("{D}")\n',
        f'import importlib.metadata\nm = {CALL.format("metadata")}("{D}")\n',
    ),
    (
        "from-name",
        f'from importlib.metadata import Distribution\nd = Distribution.from_name("{D}")\n',
        f'from importlib.metadata import Distribution\nd = {CALL.format("distribution")}("{D}")\n',
    ),
    (
        "pkg-resources",
        f'import pkg_resources as pr\nv = pr.get_distribution("{D}").version\n',
        f'import pkg_resources as pr\nv = {CALL.format("get_distribution")}("{D}").version\n',
    ),
    (
        "require-with-specifier",
        f'import pkg_resources\npkg_resources.require("{D}>=1")\n',
        f'import pkg_resources\n{CALL.format("require")}("{D}>=1")\n',
    ),
    ("other-dist-unchanged", 'from importlib.metadata import version\nversion("six")\n', None),
    ("not-a-lookup", f'def version(x): ...\nversion("{D}")\n', None),
    ("dynamic-unchanged", "from importlib.metadata import version\nversion(name)\n", None),
]


@pytest.mark.parametrize(("before", "after"), [r[1:] for r in REDIRECTS],
                         ids=[r[0] for r in REDIRECTS])
def test_lookups_of_bundled_dists_are_redirected(before: str, after: str | None) -> None:
    new = redirect_lookups(before.encode(), {D: M}, path="app/x.py")
    assert (new.decode() if new is not None else None) == after


def test_every_distribution_call_of_the_string_pass_is_redirected() -> None:
    assert set(LOOKUPS) >= DIST_CALLS


def _part(name: str, requires: tuple[str, ...] = (), python: str | None = None,
          tag: str = "py3-none-any") -> Part:
    interp, abi, plat = tag.split("-")
    return Part(name, "1.0", tuple(Requirement(r) for r in requires), python,
                frozenset({Tag(interp, abi, plat)}), "0" * 64)


def test_requires_dist_merges_as_pip_would() -> None:
    host = _part("app", ("oldlib[fast]==1.0", "requests>=2", 'click; extra == "cli"'))
    old = _part("oldlib", (
        "requests<3", 'ujson; extra == "fast"', 'rich; extra == "pretty"',
        'colorama; sys_platform == "win32" and extra == "fast"', "helper",
    ))
    helper = _part("helper", ("six",))
    got = [str(r) for r in requires_dist(host, {"oldlib": old, "helper": helper})]
    assert got == [
        "requests<3,>=2", 'click; extra == "cli"', "six", "ujson",
        'colorama; sys_platform == "win32"',
    ]


def test_disjoint_requirements_are_refused_naming_both_sides() -> None:
    host = _part("app", ("a", "b", "c>=2"))
    with pytest.raises(PlanError) as info:
        requires_dist(host, {"a": _part("a", ("c<2",)), "b": _part("b")})
    assert str(info.value).startswith(
        "c: app 1.0 requires c>=2 but a 1.0 requires c<2; no version meets both "
        "(bundle it too: --dep 'c<2'; --with-deps does it automatically)"
    )


def test_python_and_tags_are_intersected() -> None:
    parts = [_part("a", python=">=3.8,!=3.9.*"), _part("b", python="<4,>=3.10")]
    assert requires_python(parts) == "<4,>=3.10"
    with pytest.raises(PlanError, match="no Python version meets"):
        requires_python([_part("a", python="<3"), _part("b", python=">=3.10")])


TAGS = [
    ("pure-shared", ["py2.py3-none-any", "py3-none-any"], "py3-none-any"),
    ("compiled-decides", ["py3-none-any", "cp311-cp311-manylinux_2_17_x86_64"],
     "cp311-cp311-manylinux_2_17_x86_64"),
    ("highest-glibc", ["cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64",
                       "cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64"],
     "cp311-cp311-manylinux_2_27_x86_64"),
    ("abi3-under-cp311", ["cp37-abi3-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_x86_64"],
     "cp311-cp311-manylinux_2_17_x86_64"),
    ("local-build", ["cp311-cp311-linux_x86_64", "cp311-cp311-manylinux_2_17_x86_64"],
     "cp311-cp311-linux_x86_64"),
]


@pytest.mark.parametrize(("parts", "want"), [t[1:] for t in TAGS], ids=[t[0] for t in TAGS])
def test_bundle_tag_is_where_every_part_installs(parts: list[str], want: str) -> None:
    assert merged_tag([(t, frozenset(parse_tag(t))) for t in parts])[0] == want


@pytest.mark.parametrize("parts", [
    ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-macosx_11_0_arm64"],
    ["cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_17_x86_64"],
])
def test_parts_for_different_platforms_are_refused(parts: list[str]) -> None:
    with pytest.raises(PlanError, match="a bundle has one platform"):
        merged_tag([(t, frozenset(parse_tag(t))) for t in parts])


# -- end to end: a dep with every kind of self-lookup, bundled beside its other version -----

OLDLIB = {
    "oldlib/__init__.py": (
        "import importlib.metadata as md\n"
        "import pkg_resources\n"
        "from importlib.metadata import distribution, metadata, version\n"
        "from oldlib import plugin\n"
        "__version__ = version('oldlib')  # while the package is still being imported\n"
        "def lookups():\n"
        "    own = distribution('oldlib')\n"
        "    return {\n"
        "        'version': version('oldlib'),\n"
        "        'metadata': metadata('OldLib')['Version'],\n"
        "        'distribution': own.version,\n"
        "        'from_name': md.Distribution.from_name('oldlib').version,\n"
        "        'entry_points': sorted(e.value for e in own.entry_points),\n"
        "        'pkg_resources': pkg_resources.get_distribution('oldlib').version,\n"
        "        'name': plugin.__name__,\n"
        "        'module_level': __version__,\n"
        "    }\n"
    ),
    "oldlib/plugin.py": "def run():\n    return 'old'\n",
}


def _wheel(out: Path, name: str, version: str, files: dict[str, str], meta: str,
           entry_points: str = "", license_text: str = "") -> Path:
    """A wheel with the given METADATA fields, entry points and license file (wheel's own
    WheelFile writes RECORD)."""
    from wheel.wheelfile import WheelFile

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with WheelFile(path, "w") as wf:
        for member, text in sorted(files.items()):
            wf.writestr(member, text)
        wf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.4\nName: {name}\n"
                    f"Version: {version}\n{meta}\nA description.\n")
        wf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\n"
                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        if entry_points:
            wf.writestr(f"{info}/entry_points.txt", entry_points)
        if license_text:
            wf.writestr(f"{info}/licenses/LICENSE", license_text)
    return path


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("bundle")
    entry_points = ("[console_scripts]\noldlib = oldlib:lookups\n\n"
                    "[oldlib.plugins]\nold = oldlib.plugin:run\n")
    desc = "Description-Content-Type: text/plain\n"
    old = _wheel(tmp / "in", "oldlib", "1.0", OLDLIB,
                 f"License-Expression: MIT\nLicense-File: LICENSE\n{desc}",
                 entry_points, "MIT License\n")
    _wheel(tmp / "links", "oldlib", "2.0", {**OLDLIB, "oldlib/plugin.py": "def run(): ..."},
           "License-Expression: MIT\n", "[oldlib.plugins]\nnew = oldlib.plugin:run\n")
    app = _wheel(tmp / "in", "app", "0.1", {"app/__init__.py": (
        "import importlib.metadata\nimport oldlib\n"
        "def versions():\n"
        "    return importlib.metadata.version('oldlib'), oldlib.lookups()\n"),
        "app-0.1.dist-info/top_level.txt": "app\n", "app-0.1.dist-info/LICENSE": "Apache\n"},
        "Requires-Dist: oldlib==1.0\nLicense-Expression: Apache-2.0\nLicense-File: LICENSE\n"
        + desc)
    shade([app], [old], out_dir=tmp / "out", bundle=True)
    (whl,) = (tmp / "out").glob("*.whl")
    return whl, tmp / "links"


def test_bundle_is_one_valid_wheel_with_licenses_sbom_and_provenance(
    bundled: tuple[Path, Path],
) -> None:
    whl, _ = bundled
    assert whl.name == "app-0.1-py3-none-any.whl"
    assert whl.parent.glob("*.whl").__next__() == whl and len(list(whl.parent.iterdir())) == 1
    validate_record(whl)
    members = names(whl)
    assert {m.split("/")[0] for m in members if ".dist-info/" in m} == {"app-0.1.dist-info"}
    meta = read_member(whl, ".dist-info/METADATA")
    assert "Metadata-Version: 2.4\n" in meta and "License-Expression: Apache-2.0 AND MIT\n" in meta
    assert "Requires-Dist" not in meta
    files = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("License-")
             and line.startswith("License-File")]
    assert files == ["LICENSE", "oldlib/LICENSE"]  # the host's own moved below licenses/
    assert all(f"app-0.1.dist-info/licenses/{f}" in members for f in files)
    sbom = json.loads(read_member(whl, ".dist-info/sboms/wheelshade.cdx.json"))
    (component,) = sbom["components"]
    assert (component["name"], component["version"], component["purl"]) == (
        "oldlib", "1.0", "pkg:pypi/oldlib@1.0"
    )
    assert len(component["hashes"][0]["content"]) == 64
    prov = json.loads(read_member(whl, ".dist-info/wheelshade.json"))
    assert [p["name"] for p in prov["bundled"]] == ["oldlib"]
    assert set(prov["mapping"]) == {"oldlib"}
    entry_points = read_member(whl, ".dist-info/entry_points.txt")
    assert "console_scripts" not in entry_points
    assert "old = oldlib_1_0_" in entry_points


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_bundle_runs_beside_the_other_version_and_uninstalls_clean(
    bundled: tuple[Path, Path], tmp_path: Path, installer: str
) -> None:
    whl, links = bundled
    env = Venv.create(tmp_path / "env")
    env.install("--find-links", links, "--find-links", wheels("setuptools==80.9.0"),
                "oldlib==2.0", "setuptools==80.9.0")
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    _install(installer, env, whl)
    got = env.json("import json, app, oldlib, importlib.metadata as md\n"
                   "v, inner = app.versions()\n"
                   "eps = sorted(e.value for e in md.entry_points(group='oldlib.plugins'))\n"
                   "print(json.dumps([v, inner, md.version('oldlib'), eps]))")
    version, inner, other, plugins = got  # type: ignore[misc]
    assert version == "1.0" and other == "2.0"
    assert inner["version"] == inner["metadata"] == inner["distribution"] == "1.0"
    assert inner["from_name"] == inner["pkg_resources"] == inner["module_level"] == "1.0"
    assert inner["entry_points"] == [inner["name"].replace(".plugin", ".plugin:run")]
    assert inner["name"].startswith("oldlib_1_0_")
    assert plugins == sorted([inner["entry_points"][0], "oldlib.plugin:run"])
    assert env.pip("check", check=False).returncode == 0
    _uninstall(installer, env, "app")
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before


def _uv() -> list[str]:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    return [uv] if uv else [sys.executable, "-m", "uv"]


def _install(installer: str, env: Venv, whl: Path) -> None:
    if installer == "pip":
        env.install(whl)
        return
    subprocess.run([*_uv(), "pip", "install", "--python", str(env.python), "--offline",
                    "--no-index", str(whl)], check=True, capture_output=True)


def _uninstall(installer: str, env: Venv, name: str) -> None:
    if installer == "pip":
        env.pip("uninstall", "-y", name)
        return
    subprocess.run([*_uv(), "pip", "uninstall", "--python", str(env.python), name],
                   check=True, capture_output=True)


def test_bundle_passes_twine_check_strict(bundled: tuple[Path, Path]) -> None:
    whl, _ = bundled
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(whl)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_conflicting_bundle_is_refused_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    a = _wheel(tmp_path / "in", "liba", "1.0", {"liba/__init__.py": ""}, "Requires-Dist: c<2\n")
    b = _wheel(tmp_path / "in", "libb", "1.0", {"libb/__init__.py": ""}, "Requires-Dist: c>=2\n")
    app = _wheel(tmp_path / "in", "app", "0.1", {"app/__init__.py": "import liba, libb\n"},
                 "Requires-Dist: liba\nRequires-Dist: libb\n")
    proc = wheelshade("shade", app, "--dep", a, "--dep", b, "--bundle", "-o", tmp_path / "out")
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "c: liba 1.0 requires c<2 but libb 1.0 requires c>=2; no version meets both" in line
    assert "--dep 'c" in line
    assert not (tmp_path / "out").exists()  # the run made it, and removed it again


def test_bundle_key_in_config(tmp_path: Path) -> None:
    from wheelshade import load_config

    (tmp_path / "wheelshade.toml").write_text('deps = ["x==1"]\nbundle = true\n')
    (shade_set,), _ = load_config(tmp_path / "wheelshade.toml")
    assert shade_set.options.bundle is True


def test_zip_members_are_sorted_dist_info_last(bundled: tuple[Path, Path]) -> None:
    whl, _ = bundled
    with zipfile.ZipFile(whl) as zf:
        order = zf.namelist()
    assert order[-1] == "app-0.1.dist-info/RECORD"
    payload = [n for n in order if ".dist-info/" not in n]
    assert payload == sorted(payload) and order[: len(payload)] == payload


def test_two_bundles_of_one_set_install_together_and_uninstall_apart(tmp_path: Path) -> None:
    """Each bundle's shaded names are its own: removing one never removes the other's files."""
    old = _wheel(tmp_path / "in", "oldlib", "1.0", {"oldlib/__init__.py": "X = 1\n"}, "")
    apps = [
        _wheel(tmp_path / "in", name, "0.1", {f"{name}/__init__.py": "import oldlib\n"},
               "Requires-Dist: oldlib==1.0\n")
        for name in ("one", "two")
    ]
    result = shade(apps, [old], out_dir=tmp_path / "out", bundle=True)
    assert [p.name for p in result.bundles] == ["one-0.1-py3-none-any.whl",
                                                "two-0.1-py3-none-any.whl"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        p.name for p in result.bundles
    ]
    tops = [{n.split("/")[0] for n in names(p)} for p in result.bundles]
    assert not {t for t in tops[0] & tops[1] if t.startswith("oldlib")}
    env = Venv.create(tmp_path / "env")
    env.install(*result.bundles)
    env.pip("uninstall", "-y", "one")
    proc = env.run("import two; print(two.oldlib.X)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


def test_top_level_txt_names_the_bundled_packages(bundled: tuple[Path, Path]) -> None:
    whl, _ = bundled
    listed = read_member(whl, ".dist-info/top_level.txt").split()
    assert listed[0] == "app" and len(listed) == 2 and listed[1].startswith("oldlib_1_0_")


def test_a_module_only_dep_gets_its_metadata_module_beside_it(tmp_path: Path) -> None:
    single = _wheel(tmp_path / "in", "single", "1.0", {"single.py": (
        "from importlib.metadata import version\nVERSION = version('single')\n")}, "")
    app = _wheel(tmp_path / "in", "app", "0.1", {"app/__init__.py": "import single\n"},
                 "Requires-Dist: single==1.0\n")
    (whl,) = shade([app], [single], out_dir=tmp_path / "out", bundle=True).bundles
    (generated,) = [n for n in names(whl) if n.endswith("_wheelshade_metadata.py")]
    assert "/" not in generated and generated.startswith("single_1_0_")
    env = Venv.create(tmp_path / "env")
    env.install(whl)
    proc = env.run("import app; print(app.single.VERSION)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.0"


@pytest.mark.parametrize(("spec", "ok"), [
    (">=2,<3", True), (">1.0,<1.0.1", True), ("==1.0,!=1.0", False), ("~=2.2,<2.2", False),
    ("==1.*,>=2", False), ("<2,>=2", False), (">=2.0rc1,<2.0", False), (">=2.0rc1,<2.1", True),
    ("", True),
])
def test_satisfiable(spec: str, ok: bool) -> None:
    from packaging.specifiers import SpecifierSet

    from wheelshade.bundle_meta import satisfiable

    assert satisfiable(SpecifierSet(spec)) is ok


@pytest.mark.parametrize(("bundles", "why"), [
    ((), "they would replace the unshaded package's; --keep-scripts keeps them"),
    ((Path("app-1.0-py3-none-any.whl"),), "a bundle carries no scripts of its bundled deps"),
])
def test_the_scripts_note_says_why_they_are_left_out(bundles: tuple[Path, ...], why: str) -> None:
    """--keep-scripts does nothing for a bundle, so its note must not offer it."""
    from wheelshade.cli import format_result
    from wheelshade.result import ShadeResult, WheelReport
    from wheelshade.wheel.summary import Role

    report = WheelReport(Role.DEP, "dep 1.0", Path("dep.whl"), Path("out.whl"), "dep-1-0-x",
                         {"dep": "dep_1_0_x"}, 1, 1, (), scripts_dropped=("dep-cli",))
    text = format_result(ShadeResult((report,), (), "x", bundles=bundles))
    assert f"note: dep 1.0: scripts left out ({why}): dep-cli" in text
