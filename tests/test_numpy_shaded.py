"""numpy 1.26.4 shaded beside numpy 2.3.5: both work in one interpreter, and numpy's own test
files (shipped in the wheel, shaded with it) give the same outcome, test by test, as on an
unshaded numpy 1.26.4."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers import Venv
from pypi import wheels
from wheelshade import shade

OLD, NEW = "numpy==1.26.4", "numpy==2.3.5"

#: numpy's own test files run on both copies, as modules below the package.
SUITE = ("core.tests.test_multiarray", "linalg.tests.test_linalg", "core.tests.test_umath")

#: The options ``numpy.test(label="full")`` passes to pytest (numpy/_pytesttester.py), so the
#: run is configured as numpy configures it when testing an installed numpy.
NUMPY_TEST_ARGS = (
    "-l",
    "-q",
    "-W ignore:Not importing directory",
    "-W ignore:numpy.dtype size changed",
    "-W ignore:numpy.ufunc size changed",
    "-W ignore::UserWarning:cpuinfo",
    "-W ignore:the matrix subclass is not",
    "-W ignore:Importing from numpy.matlib is",
)

#: A pytest plugin loaded into each run (``-p numpy_run_probe``): which conftest modules were
#: loaded and which modules of the original numpy were imported by the end of collection
#: (the shaded package, its conftest and its three test modules are all imported by then),
#: and the first test after which the original numpy shows up in sys.modules.
PROBE = """\
import json, os, sys

_seen = {"conftests": [], "numpy_after_collection": [], "numpy_first_after": None}


def _numpy():
    return sorted(k for k in sys.modules if k == "numpy" or k.startswith("numpy."))


def pytest_collection_finish(session):
    _seen["conftests"] = sorted(k for k in sys.modules if k.rsplit(".", 1)[-1] == "conftest")
    _seen["numpy_after_collection"] = _numpy()


def pytest_runtest_logfinish(nodeid, location):
    if _seen["numpy_first_after"] is None and _numpy():
        _seen["numpy_first_after"] = nodeid


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["NUMPY_RUN_PROBE"], "w") as f:
        json.dump(_seen, f)
"""

#: Run in a fresh interpreter of the side-by-side venv: a meta-path finder, installed before
#: anything is imported, refuses and records every import of "numpy" or "numpy.*"; then NAMES
#: are imported and used. The shaded copy must need nothing of the original to import or work.
BLOCKED_IMPORTS = """\
import importlib, importlib.abc, json, sys, traceback

blocked = []


class BlockNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            blocked.append(name)
            raise ModuleNotFoundError(f"blocked import of {name}", name=name)
        return None


sys.meta_path.insert(0, BlockNumpy())
error = None
work = None
try:
    for name in NAMES:
        importlib.import_module(name)
    np = sys.modules[SHADED]
    work = [
        np.__version__,
        np.linalg.inv(np.array([[2.0, 0, 0], [0, 4.0, 0], [0, 0, 8.0]])).tolist(),
        np.fft.fft(np.ones(4)).real.tolist(),
        int(np.add.reduce(np.arange(10))),
        np.dtype([("x", "<i4"), ("y", "<f8")]).itemsize,
        type(np.random.default_rng(0).random(3)) is np.ndarray,
        np.ma.masked_array([1, 2], mask=[0, 1]).sum().item(),
    ]
except BaseException:
    error = traceback.format_exc()
numpy = sorted(k for k in sys.modules if k == "numpy" or k.startswith("numpy."))
print(json.dumps({"blocked": blocked, "error": error, "work": work, "numpy_modules": numpy}))
"""

#: Run in the side-by-side venv with ORDER, the two import names in the order to import them.
SIDE_BY_SIDE = '''\
import importlib, json, sys, sysconfig
from pathlib import Path

site = Path(sysconfig.get_paths()["purelib"]).resolve()
mods = {name: importlib.import_module(name) for name in ORDER}
old, new = mods[SHADED], mods["numpy"]
M = [[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 8.0]]


def family(top):
    return {k: v for k, v in list(sys.modules.items()) if k == top or k.startswith(top + ".")}


def outside(top, folder):
    """Modules registered under ``top`` whose file is not in site-packages/folder."""
    return sorted(
        k for k, v in family(top).items()
        if getattr(v, "__file__", None)
        and not Path(v.__file__).resolve().is_relative_to(site / folder)
    )


print(json.dumps({
    "versions": [old.__version__, new.__version__],
    "files": [old.__file__ == str(site / SHADED / "__init__.py"),
              new.__file__ == str(site / "numpy" / "__init__.py")],
    "inv": [old.linalg.inv(old.array(M)).tolist(), new.linalg.inv(new.array(M)).tolist()],
    "ufunc": [old.sqrt(old.array([4.0, 9.0])).tolist(), new.sqrt(new.array([4.0, 9.0])).tolist(),
              isinstance(old.sqrt, old.ufunc), isinstance(new.sqrt, new.ufunc)],
    "dtype": [old.dtype([("x", "<i4"), ("y", "<f8")]).itemsize,
              new.dtype([("x", "<i4"), ("y", "<f8")]).itemsize,
              type(old.dtype("f8")) is type(new.dtype("f8"))],
    "scalar_modules": [old.float64.__module__, new.float64.__module__],
    "shared_types": [old.ndarray is new.ndarray, old.dtype is new.dtype, old.ufunc is new.ufunc],
    "own_arrays": [type(old.zeros(1)) is old.ndarray, type(new.zeros(1)) is new.ndarray],
    "multiarray": [old.core.multiarray.__name__, new._core.multiarray.__name__],
    "exchange": [type(old.asarray(new.arange(3))) is old.ndarray,
                 type(new.asarray(old.arange(3))) is new.ndarray,
                 old.asarray(new.arange(3)).tolist()],
    "numpy_outside_numpy": outside("numpy", "numpy"),
    "numpy_inside_shaded": sorted(
        k for k, v in family("numpy").items()
        if getattr(v, "__file__", None)
        and Path(v.__file__).resolve().is_relative_to(site / SHADED)
    ),
    "shaded_outside_shaded": outside(SHADED, SHADED),
    "shaded_named_numpy": sorted(
        k for k, v in family(SHADED).items()
        if getattr(v, "__name__", "").split(".")[0] == "numpy"
    ),
    "many_modules": [len(family(SHADED)) > 50, len(family("numpy")) > 50],
}))
'''


# -- shared setup ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    shaded: str  #: the shaded import name of numpy 1.26.4
    alone: Venv  #: unshaded numpy 1.26.4, nothing else
    beside: Venv  #: the shaded numpy 1.26.4 beside numpy 2.3.5
    tools: Path  #: the folder of the test interpreter's pytest and hypothesis both venvs see


def _tool_distributions(roots: tuple[str, ...]) -> dict[str, importlib.metadata.Distribution]:
    """``roots`` and everything they require (no extras), as installed for this interpreter."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def share_test_tools(folder: Path, *venvs: Venv) -> Path:
    """Let ``venvs`` import this interpreter's pytest and hypothesis without the network.

    This interpreter's site-packages cannot simply be added to a venv's path: it may hold a
    numpy of its own (.venv has numpy 2.4 through matplotlib), which must never be the numpy
    a test imports. So ``folder`` gets a symlink for each top-level entry (module, package,
    dist-info: pytest finds plugins such as hypothesis' through entry points) of pytest,
    hypothesis and their requirements' closure, found from their installed RECORDs rather
    than guessed. The closure is checked to hold nothing named numpy, so no numpy can be
    reached through ``folder`` at all. Each venv gets a .pth naming ``folder``; site appends
    .pth lines to sys.path after the venv's own site-packages, so the venv's packages win
    anyway (checked in test_the_venvs_see_the_shared_tools_but_only_their_own_numpy).
    """
    dists = _tool_distributions(("pytest", "hypothesis"))
    folder.mkdir(parents=True)
    for key, dist in dists.items():
        tops = {Path(str(f)).parts[0] for f in dist.files or ()}
        for top in sorted(tops - {"..", "__pycache__"}):
            assert not top.lower().startswith("numpy"), f"{key} installs {top}"
            link = folder / top
            if not link.exists() and not top.endswith(".pth"):
                link.symlink_to(Path(str(dist.locate_file(top))))
    assert "numpy" not in dists, sorted(dists)
    for venv in venvs:
        site = venv.json("import json, sysconfig; print(json.dumps(sysconfig.get_path('purelib')))")
        assert isinstance(site, str)
        (Path(site) / "_outer_test_tools.pth").write_text(f"{folder}\n")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    links = wheels(OLD, NEW)
    (old,) = links.glob("numpy-1.26.4-*.whl")
    (new,) = links.glob("numpy-2.3.5-*.whl")
    tmp = tmp_path_factory.mktemp("numpy")
    (report,) = shade([], [old], out_dir=tmp / "out").wheels
    alone = Venv.create(tmp / "alone")
    alone.install(old)
    beside = Venv.create(tmp / "beside")
    beside.install(report.output, new)
    tools = share_test_tools(tmp / "tools", alone, beside)
    return Setup(report.mapping["numpy"], alone, beside, tools)


# -- running numpy's own test files -----------------------------------------------------------


@dataclass(frozen=True)
class SuiteRun:
    outcomes: dict[str, str]  #: test id, the package named "numpy" -> outcome
    messages: dict[str, str]  #: test id -> its failure or error (message and traceback)
    probe: dict[str, object]  #: what PROBE saw
    seconds: float
    output: str  #: the tail of pytest's output


def _outcome(case: ET.Element) -> tuple[str, str]:
    tags = {child.tag: child for child in case}
    for tag, outcome in (("failure", "failed"), ("error", "error")):
        if tag in tags:
            # The message attribute can be a bare "AssertionError: "; the text has the detail.
            message = (tags[tag].get("message") or "") + "\n" + (tags[tag].text or "")
            return outcome, message.strip()[:4000]
    if "skipped" in tags:
        xfail = tags["skipped"].get("type") == "pytest.xfail"
        return ("xfailed" if xfail else "skipped"), ""
    return "passed", ""


def _run_suite(venv: Venv, package: str, work: Path) -> SuiteRun:
    """numpy's test files in ``venv``, imported as ``package``; outcomes from the JUnit XML."""
    work.mkdir()
    (work / "pytest.ini").write_text("[pytest]\n")  # the same (empty) configuration for both
    (work / "numpy_run_probe.py").write_text(PROBE)
    site = venv.json("import json, sysconfig; print(json.dumps(sysconfig.get_path('purelib')))")
    assert isinstance(site, str)
    xml, probe = work / "junit.xml", work / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    # No bytecode written through the shared tools' symlinks; one BLAS thread per run, as
    # the two runs share this machine's cores. The memory numpy's tests see as available is
    # fixed: measured, it would depend on what the other run holds at that moment (a test needing
    # 18 GB passed in one run and was skipped in the other), and two such tests at once
    # could exhaust the machine.
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1"}
    env["NPY_AVAILABLE_MEM"] = "8 GB"
    env["NUMPY_RUN_PROBE"] = str(probe)
    args = [
        str(venv.python),
        "-m",
        "pytest",
        "-c",
        str(work / "pytest.ini"),
        # With site-packages as rootdir, test ids name the module (numpy/core/tests/...);
        # numpy's conftest.py, in the package, is loaded as for any package under test.
        "--rootdir",
        site,
        "-p",
        "no:cacheprovider",
        "-p",
        "numpy_run_probe",  # importable: ``python -m`` puts the working directory first
        *NUMPY_TEST_ARGS,
        f"--junitxml={xml}",
        "--pyargs",
        *(f"{package}.{module}" for module in SUITE),
    ]
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=work, env=env, timeout=3600)
    seconds = time.monotonic() - start
    output = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
    assert xml.is_file() and probe.is_file(), f"pytest in {venv.root} did not finish:\n{output}"
    own = re.compile(rf"(?<![\w.]){re.escape(package)}(?=[./])")
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(xml).iter("testcase"):
        test_id = own.sub("numpy", f"{case.get('classname')}::{case.get('name')}")
        assert test_id not in outcomes, f"two results for {test_id}"
        outcomes[test_id], message = _outcome(case)
        if message:
            messages[test_id] = message
    return SuiteRun(outcomes, messages, json.loads(probe.read_text()), seconds, output)


@pytest.fixture(scope="module")
def suites(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """Both runs at once (one process each, about a minute apiece on two cores)."""
    tmp = tmp_path_factory.mktemp("numpy-suites")
    with ThreadPoolExecutor(2) as pool:
        alone = pool.submit(_run_suite, setup.alone, "numpy", tmp / "alone")
        beside = pool.submit(_run_suite, setup.beside, setup.shaded, tmp / "beside")
        return {"unshaded": alone.result(), "shaded": beside.result()}


def _file_of(test_id: str) -> str:
    """The test file's name: ids are numpy.<module>[.<Class>]::<name>[<params>]."""
    module = test_id.split("::", 1)[0]
    return next(m.rsplit(".", 1)[-1] for m in SUITE if f"{module}.".startswith(f"numpy.{m}."))


def _summary(runs: dict[str, SuiteRun]) -> str:
    lines = []
    for label, run in runs.items():
        for module in SUITE:
            name = module.rsplit(".", 1)[-1]
            counts = Counter(o for t, o in run.outcomes.items() if _file_of(t) == name)
            lines.append(f"{label:>8} {name:<15} {dict(sorted(counts.items()))}")
        total = dict(sorted(Counter(run.outcomes.values()).items()))
        lines.append(f"{label:>8} {'total':<15} {total} in {run.seconds:.0f} s")
        if run is runs["shaded"]:
            first = run.probe["numpy_first_after"]
            lines.append(f"{label:>8} {'':<15} numpy 2.3.5 first imported by {first}")
    return "\n".join(lines)


# -- the tests --------------------------------------------------------------------------------


def test_numpy_gets_a_same_length_name(setup: Setup) -> None:
    assert len(setup.shaded) == len("numpy") and setup.shaded.isidentifier()
    assert setup.shaded != "numpy"


def test_the_venvs_see_the_shared_tools_but_only_their_own_numpy(setup: Setup) -> None:
    code = (
        "import importlib.machinery, json, sys, sysconfig\n"
        "import numpy, pytest, hypothesis, _pytest, pluggy, iniconfig, sortedcontainers\n"
        f"tools = {str(setup.tools)!r}\n"
        "site = sysconfig.get_path('purelib')\n"
        "print(json.dumps([\n"
        "  numpy.__file__.startswith(site + '/numpy/'),\n"
        "  all(m.__file__.startswith(tools + '/') for m in (pytest, hypothesis, _pytest, pluggy,\n"
        "      iniconfig, sortedcontainers)),\n"
        "  sys.path.index(site) < sys.path.index(tools),\n"
        f"  [n for n in ('numpy', {setup.shaded!r}) if\n"
        "      importlib.machinery.PathFinder.find_spec(n, [tools]) is not None],\n"
        "]))"
    )
    for venv in (setup.alone, setup.beside):
        assert venv.json(code) == [True, True, True, []], venv.root


def test_the_shaded_copy_imports_and_works_with_numpy_blocked(setup: Setup) -> None:
    s = setup.shaded
    names = [s, *(f"{s}.{m}" for m in ("linalg", "fft", "random", "ma", "polynomial"))]
    names += [f"{s}.{m}" for m in ("lib.recfunctions", "ctypeslib", "testing", "typing")]
    # numpy's test files import cleanly too (after their conftest, which sets the environment
    # variable that _umath_tests needs).
    names += [f"{s}.{m}" for m in ("conftest", *SUITE)]
    data = setup.beside.json(f"NAMES = {names!r}\nSHADED = {s!r}\n" + BLOCKED_IMPORTS)
    assert data == {
        "blocked": [],
        "error": None,
        "work": [
            "1.26.4",
            [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 0.125]],
            [4.0, 0.0, 0.0, 0.0],
            45,
            12,
            True,
            1,
        ],
        "numpy_modules": [],
    }


def test_the_blocking_finder_catches_an_import_of_numpy(setup: Setup) -> None:
    """The control: had the shaded copy imported the original, the test above would see it."""
    s = setup.shaded
    names = [s, "numpy.linalg"]
    data = setup.beside.json(f"NAMES = {names!r}\nSHADED = {s!r}\n" + BLOCKED_IMPORTS)
    assert isinstance(data, dict)
    assert data["blocked"] == ["numpy"] and data["numpy_modules"] == []
    assert "blocked import of numpy" in data["error"]


@pytest.mark.parametrize("order", ["shaded first", "numpy first"])
def test_both_copies_work_side_by_side(setup: Setup, order: str) -> None:
    s = setup.shaded
    names = [s, "numpy"] if order == "shaded first" else ["numpy", s]
    data = setup.beside.json(f"ORDER = {names!r}\nSHADED = {s!r}\n" + SIDE_BY_SIDE)
    inverse = [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 0.125]]
    assert data == {
        "versions": ["1.26.4", "2.3.5"],
        "files": [True, True],
        "inv": [inverse, inverse],
        "ufunc": [[2.0, 3.0], [2.0, 3.0], True, True],
        "dtype": [12, 12, False],
        "scalar_modules": [s, "numpy"],
        "shared_types": [False, False, False],
        "own_arrays": [True, True],
        "multiarray": [f"{s}.core.multiarray", "numpy._core.multiarray"],
        "exchange": [True, True, [0, 1, 2]],
        "numpy_outside_numpy": [],
        "numpy_inside_shaded": [],
        "shaded_outside_shaded": [],
        "shaded_named_numpy": [],
        "many_modules": [True, True],
    }


#: Tests whose outcome shading changes by design, with the failure message expected. A
#: scalar type's repr names its module, and the shaded types live in the shaded package
#: (their tp_name strings are patched, or pickles of them would load the original numpy);
#: this test compares that repr with a literal "numpy.int32".
EXPECTED_DIFFERENCES = {
    "numpy.core.tests.test_multiarray.TestDtypedescr::test_structured_non_void": (
        "(<shaded>.int32, [('a', '<i2'), ('b', '<i2')])"
    ),
}


@pytest.mark.slow
def test_numpy_test_files_give_the_same_outcomes_shaded(
    setup: Setup, suites: dict[str, SuiteRun]
) -> None:
    unshaded, shaded = suites["unshaded"], suites["shaded"]
    for test_id, repr_text in EXPECTED_DIFFERENCES.items():
        assert unshaded.outcomes.get(test_id) == "passed", test_id
        assert shaded.outcomes.get(test_id) == "failed", test_id
        message = shaded.messages.get(test_id) or ""
        assert repr_text.replace("<shaded>", setup.shaded) in message, message
    # Compared as if those passed: every other test must match exactly.
    got = dict(shaded.outcomes) | dict.fromkeys(EXPECTED_DIFFERENCES, "passed")
    summary = _summary(suites)
    for run in (unshaded, shaded):
        assert sum(o == "passed" for o in run.outcomes.values()) > 10_000, (
            f"{summary}\n{run.output}"
        )
        assert {_file_of(t) for t in run.outcomes} == {m.rsplit(".", 1)[-1] for m in SUITE}
    differ = sorted(
        f"{t}: unshaded {unshaded.outcomes.get(t, 'missing')}, "
        f"shaded {got.get(t, 'missing')} "
        f"({shaded.messages.get(t) or unshaded.messages.get(t) or 'no message'})"
        for t in unshaded.outcomes.keys() | got.keys()
        if unshaded.outcomes.get(t) != got.get(t)
    )
    both = sorted(
        t
        for t, o in unshaded.outcomes.items()
        if o in ("failed", "error") and got.get(t) == o
    )
    assert not differ, (
        f"{len(differ)} test(s) differ:\n" + "\n".join(differ) + f"\n{summary}\n"
        f"failing in both ({len(both)}): {both}"
    )
    assert unshaded.outcomes == got


def test_numpy_test_files_load_their_conftest_and_not_the_original(
    setup: Setup, suites: dict[str, SuiteRun]
) -> None:
    unshaded, shaded = suites["unshaded"].probe, suites["shaded"].probe
    assert unshaded["conftests"] == ["numpy.conftest"], unshaded
    assert shaded["conftests"] == [f"{setup.shaded}.conftest"], shaded
    # Collected (conftest and test modules imported) without the original numpy. Data naming
    # it does load numpy 2.3.5 during the tests: TestPickling unpickles pickles written by
    # numpy 1.x ("cnumpy.core._internal\n_reconstruct..."); they give numpy 2.3.5 arrays,
    # which assert_equal accepts. No test before those may import it.
    assert shaded["numpy_after_collection"] == [], shaded
    first = shaded["numpy_first_after"]
    assert isinstance(first, str) and "/test_multiarray.py::TestPickling::" in first, first
