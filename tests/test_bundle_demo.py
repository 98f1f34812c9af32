"""The README demo as a bundle: bizbaz and the Flask 0.12.4 stack in one wheel, beside Flask 3."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import Venv, build_fixture, names, read_member, validate_record, verify_offline
from pypi import wheels
from test_bundle import _uv
from test_flask_demo import EXAMPLES, NEW_STACK, OLD_STACK
from wheelshade import IndexOptions, shade
from wheelshade.resolve.closure import ClosureOptions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    links = wheels(*OLD_STACK, *NEW_STACK)
    tmp = tmp_path_factory.mktemp("bundle-demo")
    bizbaz = build_fixture("bizbaz", tmp / "dist", tmp / "src", root=EXAMPLES)
    foobar = build_fixture("foobar", tmp / "dist", tmp / "src", root=EXAMPLES)
    (tmp / "target.txt").write_text("flask==3.1.3\n")
    result = shade(
        [bizbaz],
        ["flask==0.12.4", "werkzeug<1", "jinja2<3", "markupsafe<2.1", "itsdangerous<2"],
        out_dir=tmp / "out",
        cache_dir=tmp / "cache",
        index=IndexOptions(find_links=(str(links),), no_index=True),
        with_deps=True,
        closure=ClosureOptions(target_requirements=tmp / "target.txt"),
        bundle=True,
    )
    (bundle,) = result.bundles
    assert sorted((tmp / "out").iterdir()) == [bundle]
    return bundle, foobar, links


def test_one_compiled_wheel_with_one_dist_info(demo: tuple[Path, Path, Path]) -> None:
    bundle, _, _ = demo
    # markupsafe's C speed-up is inside: the bundle is platlib with its platform tag.
    assert bundle.name == "bizbaz-0.1-cp311-cp311-linux_x86_64.whl"
    validate_record(bundle)
    members = names(bundle)
    assert {m.split("/")[0] for m in members if ".dist-info/" in m} == {"bizbaz-0.1.dist-info"}
    assert any("_speedups" in m and m.endswith(".so") for m in members)
    assert "Root-Is-Purelib: false" in read_member(bundle, ".dist-info/WHEEL")
    meta = read_member(bundle, ".dist-info/METADATA")
    assert [line for line in meta.splitlines() if line.startswith("Requires-Dist")] == [
        "Requires-Dist: click>=2.0"
    ]
    licenses = [line[len("License-File: "):] for line in meta.splitlines()
                if line.startswith("License-File: ")]
    assert sorted(p.split("/")[0] for p in licenses) == [
        "flask", "itsdangerous", "jinja2", "markupsafe", "werkzeug"
    ]
    assert all(f"bizbaz-0.1.dist-info/licenses/{p}" in members for p in licenses)
    sbom = json.loads(read_member(bundle, ".dist-info/sboms/wheelshade.cdx.json"))
    assert {c["purl"] for c in sbom["components"]} == {
        f"pkg:pypi/{pin.replace('==', '@')}" for pin in OLD_STACK
    }


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_bundle_beside_flask_3(
    demo: tuple[Path, Path, Path], tmp_path: Path, installer: str
) -> None:
    bundle, foobar, links = demo
    env = Venv.create(tmp_path / "env")
    env.install("--find-links", links, foobar, "flask==3.1.3")
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    if installer == "pip":
        env.install("--find-links", links, bundle)
    else:
        subprocess.run([*_uv(), "pip", "install", "--python", str(env.python), "--offline",
                        "--no-index", "--find-links", str(links), str(bundle)],
                       check=True, capture_output=True)
    proc = env.run((EXAMPLES / "run_both.py").read_text())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1] == "bizbaz: GET / -> 200 'bizbaz page rendered by flask 0.12.4&lt;ok&gt;'"
    assert lines[3] == "foobar: GET / -> 200 'foobar page rendered by flask 3.1.3&lt;ok&gt;'"
    assert env.pip("check", check=False).returncode == 0
    # The bundled flask's metadata lookups answer 0.12.4; the installed flask's stay 3.1.3.
    got = env.json(
        "import json, importlib, importlib.metadata as md, bizbaz\n"
        "m = importlib.import_module(bizbaz.flask.__name__ + '._wheelshade_metadata')\n"
        "print(json.dumps([m.version('x'), m.metadata('x')['Version'],\n"
        "    m.distribution('x').version, m.get_distribution('x').version,\n"
        "    md.version('flask'), md.version('bizbaz')]))"
    )
    assert got == ["0.12.4", "0.12.4", "0.12.4", "0.12.4", "3.1.3", "0.1"]
    if installer == "pip":
        env.pip("uninstall", "-y", "bizbaz")
    else:
        subprocess.run([*_uv(), "pip", "uninstall", "--python", str(env.python), "bizbaz"],
                       check=True, capture_output=True)
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before


def test_verify_and_inspect_a_bundle(demo: tuple[Path, Path, Path]) -> None:
    bundle, _, _ = demo
    proc = verify_offline([bundle], "flask==3.1.3", wheels(*NEW_STACK))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK: no leak in 1 wheel")
    from wheelshade.inspect_wheel import format_inspection, inspect_wheel

    text = format_inspection(inspect_wheel(bundle))
    assert "bundles:      Flask 0.12.4 as flask_0_12_4_" in text
    assert text.count("bundles:") == 1 and "itsdangerous 1.1.0 as" in text
