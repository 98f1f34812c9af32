"""End to end for evidence across a function boundary: a package's bare name kept by a loader
class, shaded with ``wheelshade.shade``, installed with pip beside its next version, run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import Venv, make_wheel, validate_record
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
    ''',
    "evpkg/grammars/common.txt": "grammar {v}",
}

PROBE = """
import json, evpkg.load, {shaded}.load as old
print(json.dumps({{
    "data": [old.stdlib_loader("common.txt").decode(),
             evpkg.load.stdlib_loader("common.txt").decode()],
}}))
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
    return data


def test_a_loader_class_reads_its_own_versions_data(results: dict[str, object]) -> None:
    assert results["data"] == ["grammar 1.0", "grammar 2.0"]
