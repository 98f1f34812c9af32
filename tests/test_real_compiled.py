"""Real compiled wheels shaded beside another version of themselves: a Cython package
(PyYAML) and one with grafted libraries (Pillow's pillow.libs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Venv, verify_offline
from pypi import wheels
from wheelshade import shade
from wheelshade.native.scan import Naming

#: Lists, in a fresh interpreter, every module whose file lies in one package but which is
#: registered under a name of the other (a shaded module under an original name, or back).
CROSSED = """
import os
def crossed(shaded, original):
    bad = []
    for key, mod in list(sys.modules.items()):
        where = getattr(mod, '__file__', None) or ''
        parts = where.split(os.sep)
        if key.partition('.')[0] == original and shaded in parts:
            bad.append(key)
        if key.partition('.')[0] == shaded and original in parts:
            bad.append(key)
    return bad
"""


def verify(wheel: Path | list[Path], beside: str, folder: Path) -> str:
    """``wheelshade verify`` of ``wheel`` beside ``beside``, offline from ``folder``."""
    proc = verify_offline(wheel if isinstance(wheel, list) else [wheel], beside, folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _one(folder: Path, prefix: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return path


def shaded_beside(
    tmp: Path, folder: Path, deps: list[str], beside: str, others: list[str],
    *, load_checked: bool = True,
) -> tuple[Venv, dict[str, str]]:
    """Shade the wheels named by the ``deps`` prefixes together, check that their compiled
    modules were load-checked (unless a dependency outside the set is needed to load
    them), ``verify`` them beside ``beside``, and install them with the ``others`` wheels
    into a venv that ``pip check`` passes. Returns the venv and the import-name mapping."""
    result = shade([], [_one(folder, d) for d in deps], out_dir=tmp / "out")
    loaded = any("patched compiled module(s) loaded" in n for n in result.notes)
    assert loaded is load_checked, result.notes
    outputs = [r.output for r in result.wheels]
    verify(outputs, beside, folder)
    env = Venv.create(tmp / "env")
    env.install(*outputs, *(_one(folder, o) for o in others))
    assert env.pip("check").returncode == 0
    return env, {k: v for r in result.wheels for k, v in r.mapping.items()}


@pytest.fixture(scope="module")
def pyyaml(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str, str]:
    folder = wheels("pyyaml==6.0.1", "pyyaml==6.0.3")
    tmp = tmp_path_factory.mktemp("pyyaml")
    result = shade([], [_one(folder, "pyyaml-6.0.1")], out_dir=tmp / "out")
    (report,) = result.wheels
    verify(report.output, "pyyaml==6.0.3", folder)
    new = report.mapping["yaml"]
    assert len(new) == len("yaml") and len(report.mapping["_yaml"]) == len("_yaml")
    assert any("patched compiled module(s) loaded" in n for n in result.notes)
    env = Venv.create(tmp / "env")
    env.install(report.output, _one(folder, "pyyaml-6.0.3"))
    return env, new, report.mapping["_yaml"]


@pytest.mark.network
@pytest.mark.parametrize("shaded_first", [True, False], ids=["shaded-first", "original-first"])
def test_cython_pyyaml_beside_another_pyyaml(
    pyyaml: tuple[Venv, str, str], shaded_first: bool
) -> None:
    env, new, shim = pyyaml
    first, second = (new, "yaml") if shaded_first else ("yaml", new)
    data = env.json(
        f"import json, sys\nimport {first}\nimport {second}\n{CROSSED}\n"
        "out = {}\n"
        f"for m in ({new}, yaml):\n"
        "    doc = m.load('a: [1, 2]\\nb: {c: d}', Loader=m.CSafeLoader)\n"
        "    out[m.__name__] = [m.__version__, m.__with_libyaml__, doc,\n"
        "        m.cyaml.CParser.__module__, type(m.CSafeLoader('x')).__mro__[1].__module__,\n"
        "        m.dump({'k': [1]}, Dumper=m.CSafeDumper)]\n"
        f"out['crossed'] = crossed({new!r}, 'yaml') + crossed({shim!r}, '_yaml')\n"
        "print(json.dumps(out))"
    )
    assert isinstance(data, dict)
    doc = {"a": [1, 2], "b": {"c": "d"}}
    assert data[new] == ["6.0.1", True, doc, f"{new}._yaml", f"{new}._yaml", "k:\n- 1\n"]
    assert data["yaml"] == ["6.0.3", True, doc, "yaml._yaml", "yaml._yaml", "k:\n- 1\n"]
    assert data["crossed"] == []


@pytest.mark.network
def test_cython_pyyaml_alone_imports_nothing_of_the_original(
    pyyaml: tuple[Venv, str, str],
) -> None:
    env, new, _ = pyyaml
    leaked = env.json(
        "import json, sys\n"
        f"import {new}\n{new}.load('a: 1', Loader={new}.CLoader)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.partition('.')[0] in "
        "('yaml', '_yaml'))))"
    )
    assert leaked == []


@pytest.fixture(scope="module")
def pillow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    folder = wheels("pillow==12.3.0", "pillow==13.0.0")
    tmp = tmp_path_factory.mktemp("pillow")
    # PIL is too short for a same-length name: readable names, leaving out the two
    # modules whose binaries name PIL (Tk support and LittleCMS).
    result = shade(
        [], [_one(folder, "pillow-12.3.0")], out_dir=tmp / "out",
        naming=Naming.READABLE,
        drop=["PIL/_imagingtk*", "PIL/_imagingcms*"],
    )
    (report,) = result.wheels
    verify(report.output, "pillow==13.0.0", folder)
    return report.output, _one(folder, "pillow-13.0.0"), report.mapping["PIL"], report.distribution


PILLOW_WORK = (
    "import json, io\n"
    "from {pkg} import Image, ImageFilter, features\n"
    "im = Image.new('RGB', (64, 48), (200, 30, 60)).filter(ImageFilter.GaussianBlur(2))\n"
    "buf = io.BytesIO(); im.save(buf, 'PNG'); buf.seek(0)\n"
    "back = Image.open(buf); back.load()\n"
    "jpeg = io.BytesIO(); back.save(jpeg, 'JPEG'); jpeg.seek(0)\n"
    "print(json.dumps([Image.__version__, back.size, back.getpixel((10, 10)),\n"
    "    Image.open(jpeg).format, features.check('jpg'), features.check('zlib')]))"
)


@pytest.mark.network
def test_pillow_with_grafted_libraries_beside_another_pillow(
    pillow: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    shaded, other, new, dist = pillow
    env = Venv.create(tmp_path / "env")
    env.install(shaded, other)
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    libs = sorted(p.name for p in site.glob("*.libs"))
    assert libs == sorted(["pillow.libs", f"{dist.replace('-', '_')}.libs"])
    assert env.pip("check").returncode == 0
    for pkg, version in ((new, "12.3.0"), ("PIL", "13.0.0")):
        data = env.json(PILLOW_WORK.format(pkg=pkg))
        assert isinstance(data, list)
        assert data[0] == version and data[1] == [64, 48] and data[3:] == ["JPEG", True, True]
    both = env.json(
        f"import json, sys\nimport {new}.Image as a\nimport PIL.Image as b\n{CROSSED}\n"
        "print(json.dumps([a.__version__, b.__version__, a.core.__name__, b.core.__name__,\n"
        f"    crossed({new!r}, 'PIL')]))"
    )
    assert both == ["12.3.0", "13.0.0", f"{new}._imaging", "PIL._imaging", []]


@pytest.mark.network
@pytest.mark.parametrize("remove", ["shaded", "other"])
def test_uninstalling_either_pillow_leaves_the_other_working(
    pillow: tuple[Path, Path, str, str], tmp_path: Path, remove: str
) -> None:
    shaded, other, new, dist = pillow
    env = Venv.create(tmp_path / "env")
    env.install(shaded, other)
    env.pip("uninstall", "--yes", dist if remove == "shaded" else "pillow")
    pkg, version = ("PIL", "13.0.0") if remove == "shaded" else (new, "12.3.0")
    data = env.json(PILLOW_WORK.format(pkg=pkg))
    assert isinstance(data, list) and data[0] == version and data[3:] == ["JPEG", True, True]
    site = next((tmp_path / "env" / "lib").glob("python*/site-packages"))
    kept = "pillow.libs" if remove == "shaded" else f"{dist.replace('-', '_')}.libs"
    assert [p.name for p in site.glob("*.libs")] == [kept]
    assert any((site / kept).iterdir())


PANDAS_WORK = (
    "    df = pd.DataFrame({'x': [1.5, 2.5, None],\n"
    "                       't': pd.to_datetime(['2020-01-01', '2021-06-01', None])})\n"
    "    arr = df['x'].to_numpy()\n"
    "    out[pd.__name__] = [pd.__version__, type(arr).__module__, float(df['x'].sum()),\n"
    "        str(df['t'].max()), df.groupby(df['x'] > 2).size().tolist(),\n"
    "        repr(pd.Timestamp('2020-01-01') - pd.NaT), pd.NaT is pd.NaT,\n"
    "        type(pd.NaT).__module__]\n"
)


@pytest.mark.slow
@pytest.mark.network
def test_pandas_and_numpy_shaded_together_beside_pandas_3_and_numpy_2(tmp_path: Path) -> None:
    """The stretch case: pandas' nattype passes "numpy" to its type-import check as the
    tail of "to_numpy"; that use is moved to a standalone copy (split), and the load check
    and both import orders prove it."""
    folder = wheels(
        "pandas==1.5.3", "numpy==1.26.4", "pandas==3.0.6", "numpy==2.3.5",
        "python-dateutil==3.0.0", "pytz==2026.6", "tzdata==2026.6", "six==1.17.0",
    )
    result = shade(
        [], [_one(folder, "pandas-1.5.3"), _one(folder, "numpy-1.26.4")],
        out_dir=tmp_path / "out",
    )
    reports = {r.original: r for r in result.wheels}
    pd_new = reports["pandas 1.5.3"].mapping["pandas"]
    np_new = reports["numpy 1.26.4"].mapping["numpy"]
    assert any("patched compiled module(s) loaded" in n for n in result.notes)
    verify([r.output for r in result.wheels], "pandas==3.0.6", folder)
    env = Venv.create(tmp_path / "env")
    env.install(
        *(r.output for r in result.wheels),
        *(_one(folder, p) for p in ("pandas-3.0.6", "numpy-2.3.5", "python_dateutil-3.0.0",
                                    "pytz-2026.6", "tzdata-2026.6", "six-1.17.0")),
    )
    assert env.pip("check").returncode == 0
    for first, second in ((pd_new, "pandas"), ("pandas", pd_new)):
        data = env.json(
            f"import json, sys\nimport {first}\nimport {second}\n{CROSSED}\nout = {{}}\n"
            f"for pd in ({pd_new}, pandas):\n" + PANDAS_WORK
            + f"out['crossed'] = crossed({pd_new!r}, 'pandas') + crossed({np_new!r}, 'numpy')\n"
            "print(json.dumps(out))"
        )
        assert isinstance(data, dict)
        common = [4.0, "2021-06-01 00:00:00", [2, 1], "NaT", True]
        assert data[pd_new] == ["1.5.3", np_new, *common, f"{pd_new}._libs.tslibs.nattype"]
        assert data["pandas"][:7] == ["3.0.6", "numpy", *common]
        assert data["pandas"][7].partition(".")[0] == "pandas"  # 3.x: pandas.api.typing
        assert data["crossed"] == []


@pytest.mark.network
def test_greenlet_whose_type_is_named_like_its_package(tmp_path: Path) -> None:
    """greenlet registers its type as ``greenlet`` (``PyModule_AddObjectRef``): that bare
    string is an attribute name and keeps its bytes, while ``greenlet._greenlet`` and the
    ``greenlet.greenlet`` type name are renamed; both versions switch greenlets."""
    folder = wheels("greenlet==3.4.0", "greenlet==3.5.6")
    env, mapping = shaded_beside(tmp_path, folder, ["greenlet-3.4.0"], "greenlet==3.5.6",
                                 ["greenlet-3.5.6"])
    new = mapping["greenlet"]
    data = env.json(
        f"import json, sys\nimport {new}, greenlet\n{CROSSED}\nout = {{}}\n"
        f"for g in ({new}, greenlet):\n"
        "    seen = []\n"
        "    def run(x):\n"
        "        seen.append(x)\n"
        "        seen.append(g.getcurrent().parent.switch(x + 1))\n"
        "    child = g.greenlet(run)\n"
        "    first = child.switch(1)\n"
        "    child.switch(10)\n"
        "    out[g.__name__] = [g.__version__, first, seen, type(child).__module__,\n"
        "                       g._greenlet.greenlet is g.greenlet]\n"
        f"out['crossed'] = crossed({new!r}, 'greenlet')\n"
        "print(json.dumps(out))"
    )
    assert data == {
        new: ["3.4.0", 2, [1, 10], new, True],
        "greenlet": ["3.5.6", 2, [1, 10], "greenlet", True],
        "crossed": [],
    }
