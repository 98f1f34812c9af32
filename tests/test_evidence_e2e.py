"""End to end for evidence across a function boundary: a package's bare name kept by a loader
class, or checked in one module against module paths another module passes, shaded with
``wheelshade.shade``, installed with pip beside its next version, run."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from helpers import Venv, make_wheel, validate_record, verify_offline
from wheelshade import shade

#: One package, two versions; each version's data and modules say which version they are.
SOURCES = {
    # Class A: the package's name given to a loader class that reads data with it.
    "evpkg/__init__.py": 'VERSION = "{v}"\n',
    "evpkg/load.py": '''
        import pkgutil


        class FromPackageLoader:
            def __init__(self, pkg_name, search_paths=("grammars",)):
                self.pkg_name = pkg_name
                self.search_paths = search_paths

            def __call__(self, path):
                return pkgutil.get_data(self.pkg_name, self.search_paths[0] + "/" + path)


        stdlib_loader = FromPackageLoader("evpkg", ("grammars",))


        class Label:  # its attribute reaches no module-name call: a word
            def __init__(self, text):
                self.text = text

            def __str__(self):
                return self.text


        BRAND = Label("evpkg")
    ''',
    "evpkg/grammars/common.txt": "grammar {v}",
    # Class B: a module path split in one module, its first part checked in another.
    "evpkg/_fs.py": '''
        import os


        def pkg_filename(dir_comps, filename):
            if dir_comps[0] != "evpkg":
                raise ValueError("Only available for modules under 'evpkg'")
            return os.path.join(os.path.dirname(__file__), *dir_comps[1:], filename)
    ''',
    "evpkg/_raw.py": '''
        from evpkg._fs import pkg_filename


        def load_raw_lib(name):
            split = name.split(".")
            with open(pkg_filename(split[:-1], split[-1] + ".txt")) as f:
                return f.read()
    ''',
    "evpkg/cipher.py": '''
        from evpkg._raw import load_raw_lib

        DATA = load_raw_lib("evpkg.sub._raw_aes")
    ''',
    "evpkg/sub/__init__.py": "",
    "evpkg/sub/_raw_aes.py": "",
    "evpkg/sub/_raw_aes.txt": "aes {v}",
}

PROBE = """
import json, evpkg.load, {shaded}.load as old
out = {{"data": [old.stdlib_loader("common.txt").decode(),
                 evpkg.load.stdlib_loader("common.txt").decode()], "brand": str(old.BRAND)}}
try:
    import {shaded}.cipher as old_cipher
    out["raw"] = old_cipher.DATA
except ValueError as e:
    out["raw"] = repr(e)
import evpkg.cipher
out["raw_other"] = evpkg.cipher.DATA
print(json.dumps(out))
"""


def _wheel(out: Path, version: str) -> Path:
    files = {path: textwrap.dedent(text).lstrip().format(v=version)
             for path, text in SOURCES.items()}
    return make_wheel(out, "evpkg", version, files)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("evidence-e2e")
    one, two = _wheel(work / "in1", "1.0"), _wheel(work / "in2", "2.0")
    result = shade([], [one], out_dir=work / "out")
    (report,) = result.wheels
    (shaded,) = (work / "out").glob("*.whl")
    validate_record(shaded)
    venv = Venv.create(work / "venv")
    venv.install(shaded, two)
    data = venv.json(PROBE.format(shaded=report.mapping["evpkg"]))
    assert isinstance(data, dict)
    links = work / "links"  # both versions: verify compares import failures with the original
    links.mkdir()
    for wheel in (one, two):
        shutil.copy(wheel, links)
    proc = verify_offline([shaded], "evpkg==2.0", links)
    data["verify"] = [proc.returncode, proc.stdout + proc.stderr]
    return data


def test_a_loader_class_reads_its_own_versions_data(results: dict[str, object]) -> None:
    assert results["data"] == ["grammar 1.0", "grammar 2.0"]
    assert results["brand"] == "evpkg"  # a class keeping the name as a word keeps it


def test_a_name_checked_against_paths_from_other_modules_moves_with_them(
    results: dict[str, object]
) -> None:
    assert (results["raw"], results["raw_other"]) == ("aes 1.0", "aes 2.0")


def test_verify_finds_no_leak_and_nothing_broken(results: dict[str, object]) -> None:
    returncode, output = results["verify"]  # type: ignore[misc]
    assert returncode == 0, output
    assert output.rstrip().endswith("OK: no leak in 1 wheel")
