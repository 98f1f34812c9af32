"""The 2023 scientific stack shaded together, installed with plain pip beside today's releases.

scikit-learn 1.3.2 + scipy 1.11.4 + numpy 1.26.4 are shaded as one set; scipy's METADATA
folds its License over whitespace-only lines, so its ``Requires-Dist: numpy`` sits after them
(class 10 of issue 14). The shaded set installs with plain pip beside scikit-learn 1.7.2 +
scipy 1.16.3 + numpy 2.4.6, both run in one interpreter, and a subset of scikit-learn's and
scipy's own tests gives the same outcome on the shaded copies as on the unshaded originals.
joblib goes in the set too: it imports numpy when scikit-learn loads it, without requiring it,
and kept unshaded it would hand the shaded scikit-learn the unshaded numpy 2 (`wheelshade
verify` finds 85 such leaks in a set of three).
Slow: the shading takes about 2.5 minutes and each venv about 1.5 on a busy machine.
"""

from __future__ import annotations

import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import Venv, read_member, validate_record, verify_offline
from pypi import wheels
from wheelshade import shade

OLD = ("scikit-learn==1.3.2", "scipy==1.11.4", "numpy==1.26.4")
NEW = ("scikit-learn==1.7.2", "scipy==1.16.3", "numpy==2.4.6")
SUPPORT = (
    "joblib==1.5.2",
    "threadpoolctl==3.6.0",
    "pytest==9.2.0",
    "pluggy==1.7.0",
    "iniconfig==2.3.1",
    "packaging==26.4",
    "pygments==2.21.0",
)
#: Their own tests, compiled code included (k-means and sparse construction are Cython/C++).
SUITES = (
    "sklearn/linear_model/tests/test_base.py",
    "sklearn/preprocessing/tests/test_label.py",
    "sklearn/cluster/tests/test_k_means.py",
    "scipy/linalg/tests/test_decomp_cholesky.py",
    "scipy/sparse/tests/test_construct.py",
    "scipy/optimize/tests/test_minimize_constrained.py",
)


def _one(folder: Path, prefix: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return path


#: Three compiled wheels shaded together and two test suites run: minutes, `make test-slow`.
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    folder = wheels(*OLD, *NEW, *SUPPORT)
    out = tmp_path_factory.mktemp("sci")
    names = ("scikit_learn-1.3.2", "scipy-1.11.4", "numpy-1.26.4", "joblib-1.5.2")
    deps = [_one(folder, p) for p in names]
    start = time.monotonic()
    result = shade([], deps, out_dir=out)
    print(f"shading the stack took {time.monotonic() - start:.0f} s")
    mapping = {k: v for w in result.wheels for k, v in w.mapping.items()}
    return folder, out, mapping


def _install(venv: Venv, folder: Path, out: Path | None, *reqs: str | Path) -> None:
    links = ["--find-links", str(folder), *(["--find-links", str(out)] if out else [])]
    venv.install(*links, *reqs)
    proc = venv.pip("check", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.network
def test_scipy_requires_the_shaded_numpy(stack: tuple[Path, Path, dict[str, str]]) -> None:
    _, out, _ = stack
    for wheel in out.glob("*.whl"):
        validate_record(wheel)
    meta = read_member(_one(out, "scipy_1_11_4_"), ".dist-info/METADATA")
    numpy = _one(out, "numpy_1_26_4_").name.split("-")[0].replace("_", "-")
    assert f"Requires-Dist: {numpy}==1.26.4" in meta
    assert not re.search(r"^Requires-Dist: numpy\b(?!-1-26-4-)", meta, re.M)


def _outcomes(venv: Venv, site: Path, mapping: dict[str, str], xml: Path) -> dict[str, str]:
    """Run SUITES from ``site`` (shaded names when ``mapping`` is given) and return each
    test's outcome under its original module name."""
    paths = []
    for suite in SUITES:
        top, _, rest = suite.partition("/")
        paths.append(str(site / mapping.get(top, top) / rest))
    cwd = xml.parent / f"{xml.stem}-cwd"
    cwd.mkdir()
    cmd = [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null"]
    cmd += ["--rootdir", str(cwd), "-W", "ignore", f"--junitxml={xml}", *paths]
    subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    back = {v: k for k, v in mapping.items()}
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        module = case.get("classname", "")
        top, dot, rest = module.partition(".")
        name = back.get(top, top) + dot + rest + "::" + case.get("name", "")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name] = kinds[0] if kinds else "passed"
    return outcomes


@pytest.mark.network
def test_the_stack_runs_beside_todays_releases_and_passes_its_own_tests(
    stack: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, out, mapping = stack
    sk, sp, np = mapping["sklearn"], mapping["scipy"], mapping["numpy"]
    shaded_sk = _one(out, "scikit_learn_1_3_2_").name.split("-")[0].replace("_", "-")
    venv = Venv.create(tmp_path / "shaded")
    start = time.monotonic()
    # Plain pip: no --no-deps; the shaded requirements resolve to the shaded wheels.
    _install(venv, folder, out, shaded_sk, *NEW, "pytest==9.2.0")
    print(f"installing beside today's stack took {time.monotonic() - start:.0f} s")
    data = venv.json(
        f"import json, sys\nimport {sk} as old_sk, {sp} as old_sp, {np} as old_np\n"
        f"from {sk}.linear_model import LinearRegression as Old\n"
        "X, y = [[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.0, 7.0]\n"
        "old = Old().fit(X, y)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy'))\n"
        "import sklearn, scipy, numpy\n"
        "from sklearn.linear_model import LinearRegression as New\n"
        "new = New().fit(X, y)\n"
        "print(json.dumps([old_sk.__version__, old_sp.__version__, old_np.__version__,\n"
        "  sklearn.__version__, scipy.__version__, numpy.__version__,\n"
        "  type(old.coef_).__module__, type(new.coef_).__module__,\n"
        "  float(old.coef_[0]), float(new.coef_[0]), leaked]))"
    )
    assert data == [
        "1.3.2", "1.11.4", "1.26.4", "1.7.2", "1.16.3", "2.4.6", np, "numpy", 2.0, 2.0, []
    ]
    site = venv.root / "lib" / "python3.11" / "site-packages"
    shaded = _outcomes(venv, site, mapping, tmp_path / "shaded.xml")

    base = Venv.create(tmp_path / "original")
    _install(base, folder, None, *OLD, "pytest==9.2.0")
    original = _outcomes(base, base.root / "lib" / "python3.11" / "site-packages", {},
                         tmp_path / "original.xml")
    print(f"{len(original)} tests; outcomes: "
          f"{sorted((k, list(original.values()).count(k)) for k in set(original.values()))}")
    assert len(original) > 300
    assert sum(o == "passed" for o in original.values()) > 300
    different = {k: (original.get(k), shaded.get(k)) for k in {*original, *shaded}
                 if original.get(k) != shaded.get(k)}
    assert different == {}


@pytest.mark.network
def test_verify_finds_no_leak_and_nothing_broken(stack: tuple[Path, Path, dict[str, str]]) -> None:
    folder, out, _ = stack
    start = time.monotonic()
    proc = verify_offline(sorted(out.glob("*.whl")), "scikit-learn==1.7.2", folder)
    print(f"verify took {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert proc.stdout.splitlines()[-1] == "OK: no leak in 4 wheels"
