"""A Linux aarch64 compiled wheel shaded here and run under qemu beside its next release."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import aarch64
from pypi import platform_wheels, wheels
from test_native_evidence import GRPC_CALLS
from wheelshade import shade
from wheelshade.native.classify import classify

pytestmark = pytest.mark.network

PLATFORM = (("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.13")
BLOCK = (
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.partition('.')[0] == 'markupsafe':\n"
    "            raise ImportError('original imported: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def _one(folder: Path, prefix: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)]
    return path


def _run(code: str, site: Path) -> object:
    proc = aarch64.python("import json, sys\n" + code, site)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_markupsafe_aarch64_beside_its_next_release(tmp_path: Path) -> None:
    folder = platform_wheels(*PLATFORM, "markupsafe==3.0.2", "markupsafe==3.0.3")
    result = shade([], [_one(folder, "markupsafe-3.0.2-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["markupsafe"]
    assert len(new) == len("markupsafe")
    with zipfile.ZipFile(report.output) as zf:
        (so,) = [n for n in zf.namelist() if n.endswith(".so")]
        info = classify(zf.read(so), so, ["markupsafe", new])
    assert info.machine == "aarch64" and info.suspects == ()
    assert {r.name for r in info.references} == {new}
    aarch64.sysroot()  # skips here, saying why, when the sysroot cannot be built
    site = aarch64.unpack(tmp_path / "site", report.output, _one(folder, "markupsafe-3.0.3-"))
    work = ("out = [m.__name__, m._speedups.__name__, m.escape('<a>'), "
            "type(m.escape('x')).__module__, m._escape_inner is m._speedups._escape_inner]\n")
    alone = _run(f"{BLOCK}import {new} as m\nfrom {new} import _speedups\n{work}"
                 "out.append(sorted(k for k in sys.modules if k.startswith('markupsafe')))\n"
                 "print(json.dumps(out))", site)
    assert alone == [new, f"{new}._speedups", "&lt;a&gt;", new, True, []]
    both = _run(f"import markupsafe, {new}\nfrom markupsafe import _speedups\n"
                f"from {new} import _speedups\nrows = []\n"
                f"for m in ({new}, markupsafe):\n    {work}    rows.append(out)\n"
                "from importlib.metadata import version\n"
                f"rows.append([markupsafe.Markup is {new}.Markup, version('markupsafe')])\n"
                "print(json.dumps(rows))", site)
    assert both == [
        [new, f"{new}._speedups", "&lt;a&gt;", new, True],
        ["markupsafe", "markupsafe._speedups", "&lt;a&gt;", "markupsafe", True],
        [False, "3.0.3"],
    ]


def test_greenlet_aarch64_beside_its_next_release(tmp_path: Path) -> None:
    """A C++ extension whose module registers its type under the package's bare name
    (``PyModule_AddObject(m, "greenlet", type)``): on arm64 that name is the tail of a
    longer message, and only the call it is passed to (found through the PLT) says it is an
    attribute name, so it keeps its bytes, as on x86-64."""
    folder = platform_wheels(*PLATFORM, "greenlet==3.4.0", "greenlet==3.5.6")
    result = shade([], [_one(folder, "greenlet-3.4.0-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["greenlet"]
    aarch64.sysroot()
    site = aarch64.unpack(tmp_path / "site", report.output, _one(folder, "greenlet-3.5.6-"))
    work = ("g = m.greenlet(lambda x: m.getcurrent().parent.switch(x + 1))\n"
            "out = [m.__version__, g.switch(41), type(g).__module__, m._greenlet.__name__,\n"
            "       m._greenlet.greenlet is m.greenlet]\n")
    alone = _run(BLOCK.replace("markupsafe", "greenlet") + f"import {new} as m\n{work}"
                 "out.append(sorted(k for k in sys.modules if k.startswith('greenlet')))\n"
                 "print(json.dumps(out))", site)
    assert alone == ["3.4.0", 42, new, f"{new}._greenlet", True, []]
    both = _run(f"import greenlet, {new}\nrows = []\n"
                f"for m in ({new}, greenlet):\n    " + work.replace("\n", "\n    ")
                + "rows.append(out)\nprint(json.dumps(rows))", site)
    assert both == [["3.4.0", 42, new, f"{new}._greenlet", True],
                    ["3.5.6", 42, "greenlet", "greenlet._greenlet", True]]


def test_numpy_aarch64_beside_the_next_numpy(tmp_path: Path) -> None:
    """numpy 2.3 for aarch64: C modules named through ADRP pairs, Cython modules with packed
    string tables (numpy.random), and OpenBLAS grafted into ``numpy.libs`` (numpy.linalg),
    run under qemu beside numpy 2.4."""
    folder = platform_wheels(*PLATFORM, "numpy==2.3.5", "numpy==2.4.6")
    result = shade([], [_one(folder, "numpy-2.3.5-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["numpy"]
    with zipfile.ZipFile(report.output) as zf:
        generator = next(n for n in zf.namelist() if "random/_generator." in n)
        info = classify(zf.read(generator), generator, ["numpy", new])
    assert info.packed and info.tables and not info.unsplit_names
    assert "numpy" not in info.names
    aarch64.sysroot()
    site = aarch64.unpack(tmp_path / "site", report.output, _one(folder, "numpy-2.4.6-"))
    work = ("a = m.arange(12).reshape(3, 4)\n"
            "rng = m.random.default_rng(1)\n"
            "out = [m.__version__, int(a.sum()), type(a).__module__, round(float(m.linalg.det(\n"
            "    m.eye(3) * 2)), 6), rng.integers(0, 10, 3).tolist(), type(rng).__module__,\n"
            "    m.linalg._umath_linalg.__name__]\n")
    alone = _run(BLOCK.replace("markupsafe", "numpy") + f"import {new} as m\n{work}"
                 "out.append(sorted(k for k in sys.modules if k.startswith('numpy')))\n"
                 "print(json.dumps(out))", site)
    assert alone == ["2.3.5", 66, new, 8.0, [4, 5, 7], f"{new}.random._generator",
                     f"{new}.linalg._umath_linalg", []]
    both = _run(f"import numpy, {new}\nrows = []\n"
                f"for m in ({new}, numpy):\n    " + work.replace("\n", "\n    ")
                + "rows.append(out)\nprint(json.dumps(rows))", site)
    assert both[0] == alone[:-1]
    assert both[1] == ["2.4.6", 66, "numpy", 8.0, [4, 5, 7], "numpy.random._generator",
                       "numpy.linalg._umath_linalg"]


def test_pydantic_with_its_rust_core_aarch64_beside_the_next_pydantic(tmp_path: Path) -> None:
    """pydantic-core's Rust code imports ``pydantic_core`` from a literal run into the next
    one (``...pydantic_coreauto_collapse...``); on arm64 its length comes from a ``mov``
    near the ADRP pair, as on x86-64 from one near the ``lea``."""
    folder = platform_wheels(*PLATFORM, "pydantic-core==2.46.5", "pydantic-core==2.50.5")
    pure = wheels("pydantic==2.13.5", "pydantic==2.14.4", "annotated-types==0.7.0",
                  "typing-inspection==0.4.5", "typing-extensions==4.16.0")
    result = shade([], [_one(pure, "pydantic-2.13.5-"), _one(folder, "pydantic_core-2.46.5-")],
                   out_dir=tmp_path / "out")
    mapping = {k: v for r in result.wheels for k, v in r.mapping.items()}
    new, core = mapping["pydantic"], mapping["pydantic_core"]
    aarch64.sysroot()
    site = aarch64.unpack(tmp_path / "site", *(r.output for r in result.wheels),
                          _one(folder, "pydantic_core-2.50.5-"), *(_one(pure, p) for p in (
                              "pydantic-2.14.4-", "annotated_types-", "typing_inspection-",
                              "typing_extensions-")))
    data = _run(
        BLOCK.replace("name.partition('.')[0] == 'markupsafe'",
                      "name.partition('.')[0] in ('pydantic', 'pydantic_core')")
        + f"import {new} as p\n"
        "class M(p.BaseModel):\n"
        "    x: int\n"
        "try:\n"
        "    M(x='no')\n"
        "except p.ValidationError as exc:\n"
        "    raised = [type(exc).__module__, exc.errors()[0]['type']]\n"
        "out = [p.VERSION, M(x='3').model_dump_json(), raised]\n"
        "sys.meta_path.pop(0)\n"
        "import pydantic\n"
        "class N(pydantic.BaseModel):\n"
        "    x: int\n"
        "out += [pydantic.VERSION, N(x='4').model_dump_json()]\n"
        "print(json.dumps(out))", site)
    assert data == ["2.13.5", '{"x":3}', [f"{core}._pydantic_core", "int_parsing"],
                    "2.14.4", '{"x":4}']


def test_sqlalchemy_lzss_tables_aarch64_beside_the_next_sqlalchemy(tmp_path: Path) -> None:
    """SQLAlchemy 2.0's Cython 3.3 extensions keep their strings in LZSS streams; on arm64
    the stream is found where ``orr wN, wM, #0xff00`` starts the decoder loop, its sizes
    from the compares and the ``mov``/``movk`` around it (arm64_lzss.py)."""
    folder = platform_wheels(*PLATFORM, "sqlalchemy==2.0.58", "sqlalchemy==2.1.9")
    pure = wheels("typing-extensions==4.16.0")
    result = shade([], [_one(folder, "sqlalchemy-2.0.58-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["sqlalchemy"]
    with zipfile.ZipFile(report.output) as zf:
        member = next(n for n in zf.namelist() if "cyextension/resultproxy." in n)
        info = classify(zf.read(member), member, ["sqlalchemy", new])
    assert [t.codec for t in info.tables] == ["lzss"] and "sqlalchemy" not in info.names
    aarch64.sysroot()
    site = aarch64.unpack(tmp_path / "site", report.output, _one(folder, "sqlalchemy-2.1.9-"),
                          _one(pure, "typing_extensions-"))
    work = ("engine = sa.create_engine('sqlite://')\n"
            "with engine.connect() as conn:\n"
            "    row = conn.execute(sa.text('select 1 as a, 2 as b')).all()[0]\n"
            "out = [sa.__version__, list(row), row._mapping['b'],\n"
            "       type(row).__mro__[1].__module__]\n")
    alone = _run(BLOCK.replace("markupsafe", "sqlalchemy") + f"import {new} as sa\n{work}"
                 "out.append(sorted(k for k in sys.modules if k.startswith('sqlalchemy')))\n"
                 "print(json.dumps(out))", site)
    assert alone == ["2.0.58", [1, 2], 2, f"{new}.cyextension.resultproxy", []]
    both = _run(f"import sqlalchemy, {new}\nrows = []\n"
                f"for sa in ({new}, sqlalchemy):\n    " + work.replace("\n", "\n    ")
                + "rows.append(out)\nprint(json.dumps(rows))", site)
    assert both[0] == alone[:-1] and both[1][:3] == ["2.1.9", [1, 2], 2]


def test_grpcio_aarch64_beside_its_next_release(tmp_path: Path) -> None:
    """grpcio's aarch64 core: a merged ``"grpc"`` tail split by moving ``adrp``+``add``
    pairs, and channel-argument keys (some compared inline) that keep their bytes; a server
    and a call through each grpc in one interpreter, under qemu, the shaded one still
    honouring an option passed from Python."""
    folder = platform_wheels(*PLATFORM, "grpcio==1.84.2", "grpcio==1.85.3",
                             "typing-extensions==4.16.0")
    result = shade([], [_one(folder, "grpcio-1.84.2-")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["grpc"]
    aarch64.sysroot()
    site = aarch64.unpack(tmp_path / "site", report.output, _one(folder, "grpcio-1.85.3-"),
                          _one(folder, "typing_extensions-"))
    shaded_row = ["1.84.2", f"{new}._cython.cygrpc", "hi", "RESOURCE_EXHAUSTED"]
    alone = _run(BLOCK.replace("markupsafe", "grpc") + f"import {new}\nMODULES = [{new}]\n"
                 f"{GRPC_CALLS}rows.append(sorted(k for k in sys.modules if k.startswith('grpc.')"
                 " or k == 'grpc'))\nprint(json.dumps(rows))", site)
    assert alone == [shaded_row, []]
    both = _run(f"import grpc, {new}\nMODULES = [{new}, grpc]\n{GRPC_CALLS}"
                "print(json.dumps(rows))", site)
    assert both == [shaded_row, ["1.85.3", "grpc._cython.cygrpc", "hi", "RESOURCE_EXHAUSTED"]]
