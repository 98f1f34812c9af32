"""End to end for the string rules: a package whose strings play every role of issue 14's
classes 1-3, 5 and 6, shaded with the CLI, installed with pip beside its next version, run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from helpers import Venv, make_wheel, wheelshade

#: One package, two versions: each string below looks like a module path of it.
SOURCES = {
    "strpkg/__init__.py": '''
        import json

        from ._loader import load

        VERSION = "{v}"
        ICON = "strpkg.png"  # class 1: a resource file named after its package
        CONFIG = "strpkg.json"  # the same, though the package binds a name json
        HELP = ("see the plugins in " "strpkg.plugins")  # class 6: one string, prose
        plugins = load("strpkg.plugins")  # class 3: the helper checks the bare name


        def icon():
            from importlib import resources
            return resources.files(__name__).joinpath(ICON).read_text()


        def config():
            from importlib import resources
            return json.loads(resources.files(__name__).joinpath(CONFIG).read_text())


        def options(conf):  # class 2: a prefix check over keys that are no module names
            out = {{}}
            for k, v in conf.items():
                if k.startswith("strpkg."):
                    out[k[len("strpkg."):]] = v
            return out
    ''',
    "strpkg/strpkg.png": "icon {v}",
    "strpkg/strpkg.json": '{{"version": "{v}"}}',
    "strpkg/_loader.py": '''
        import importlib


        def load(path):
            parts = path.split(".")
            if parts[0] != "strpkg":
                raise ImportError(f"not a module of this package: {{path}}")
            return importlib.import_module(path)
    ''',
    "strpkg/plugins.py": 'NAME = "plugins-{v}"\n',
    "strpkg/exceptions.py": 'class Oops(Exception):\n    VERSION = "{v}"\n',
    # Class 5: Python embedded in a template block.
    "strpkg/templates.py": '''
        SOURCE = """<%! from strpkg.exceptions import Oops %>"""


        def render():
            namespace = {{}}
            exec(SOURCE[len("<%!"):-len("%>")].strip(), namespace)
            return namespace["Oops"].VERSION
    ''',
    # Class 6: the bundled test runner loads test modules by built names.
    "strpkg/tests/__init__.py": "",
    "strpkg/tests/test_a.py": '''
        import unittest

        import strpkg


        class T(unittest.TestCase):
            def test_version(self):
                self.assertEqual(strpkg.VERSION, "{v}")
    ''',
    "strpkg/runtests.py": '''
        import unittest

        MODULES = ["test_a"]


        def run():
            names = ["strpkg.tests.%s" % m for m in MODULES]
            suite = unittest.TestLoader().loadTestsFromNames(names)
            ids = [t.id() for t in _flat(suite)]
            result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(suite)
            return ids, result.wasSuccessful()


        def _flat(suite):
            for test in suite:
                yield from _flat(test) if isinstance(test, unittest.TestSuite) else [test]
    ''',
}

PROBE = """
import json, strpkg, {shaded} as old
from {shaded} import runtests, templates
from strpkg import runtests as new_runtests, templates as new_templates
ids, ok = runtests.run()
print(json.dumps({{
    "icon": [old.icon(), strpkg.icon()],
    "config": [old.config(), strpkg.config()],
    "options": old.options({{"strpkg.debug": 1, "other": 2}}),
    "plugins": [old.plugins.NAME, strpkg.plugins.NAME],
    "help": old.HELP,
    "render": [templates.render(), new_templates.render()],
    "tests": [ids, ok, new_runtests.run()[1]],
}}))
"""


def _wheel(out: Path, version: str) -> Path:
    files = {path: textwrap.dedent(text).lstrip().format(v=version)
             for path, text in SOURCES.items()}
    return make_wheel(out, "strpkg", version, files)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str]:
    work = tmp_path_factory.mktemp("strings-e2e")
    one, two = _wheel(work / "in1", "1.0"), _wheel(work / "in2", "2.0")
    proc = wheelshade("shade", "--dep", one, "-o", work / "out", "--report",
                      work / "report.json", "-q")
    assert proc.returncode == 0, proc.stderr
    (shaded,) = (work / "out").glob("*.whl")
    venv = Venv.create(work / "venv")
    venv.install(shaded, two)
    top = shaded.name.split("-")[0]
    data = venv.json(PROBE.format(shaded=top))
    assert isinstance(data, dict)
    return data, top


def test_every_role_runs_its_own_version(results: tuple[dict[str, object], str]) -> None:
    data, top = results
    assert data["icon"] == ["icon 1.0", "icon 2.0"]  # class 1: the file is found
    assert data["config"] == [{"version": "1.0"}, {"version": "2.0"}]
    assert data["options"] == {"debug": 1}  # class 2: the option is not dropped
    assert data["plugins"] == ["plugins-1.0", "plugins-2.0"]  # class 3: both halves move
    assert data["help"] == "see the plugins in strpkg.plugins"  # class 6: prose stays
    assert data["render"] == ["1.0", "2.0"]  # class 5: the template imports its own copy
    ids, ok, new_ok = data["tests"]  # type: ignore[misc]
    assert ids == [f"{top}.tests.test_a.T.test_version"] and ok and new_ok  # class 6


def test_declined_renames_are_reported(tmp_path_factory: pytest.TempPathFactory,
                                       results: tuple[dict[str, object], str]) -> None:
    report = json.loads(next(
        Path(p).read_text() for p in tmp_path_factory.getbasetemp().glob("strings-e2e*/report.json")
    ))
    found = {(f["path"], f["code"]) for w in report["wheels"] for f in w["findings"]}
    assert ("strpkg/__init__.py", "unproven-module-path") in found
