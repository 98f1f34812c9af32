"""Real wheels whose Cython modules pack their string constants into one table (Cython 3.1+):
zlib-compressed (numpy 2.3, yarl) and LZSS-compressed (SQLAlchemy 2.0.58, Cython 3.3), each
shaded and run beside a newer release of itself, with nothing of the original leaking."""

from __future__ import annotations

import itertools
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Venv
from pypi import wheels
from test_real_compiled import CROSSED, _one, shaded_beside
from wheelshade.native import cyrewrite, cytable
from wheelshade.native.classify import classify
from wheelshade.native.elf import read_elf
from wheelshade.native.patching import check_loads, patch_strings

pytestmark = pytest.mark.network


def _member(wheel: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name)


@pytest.fixture(scope="module")
def numpy2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str]:
    folder = wheels("numpy==2.3.5", "numpy==2.4.6")
    env, mapping = shaded_beside(tmp_path_factory.mktemp("numpy2"), folder, ["numpy-2.3.5"],
                                 "numpy==2.4.6", ["numpy-2.4.6"])
    return env, mapping["numpy"]


@pytest.mark.slow
@pytest.mark.parametrize("shaded_first", [True, False], ids=["shaded-first", "original-first"])
def test_numpy_2_3_with_packed_tables_beside_numpy_2_4(
    numpy2: tuple[Venv, str], shaded_first: bool
) -> None:
    env, new = numpy2
    first, second = (new, "numpy") if shaded_first else ("numpy", new)
    # numpy.random is Cython 3.2 with zlib-packed tables; SFC64's lengths exist only as
    # stores to the stack, the others' as arrays in read-only data.
    data = env.json(
        f"import json, sys\nimport {first}\nimport {second}\n{CROSSED}\nout = {{}}\n"
        f"for np in ({new}, numpy):\n"
        "    rng = np.random.Generator(np.random.SFC64(7))\n"
        "    legacy = np.random.RandomState(3)\n"
        "    out[np.__name__] = [np.__version__, rng.integers(0, 1000, 3).tolist(),\n"
        "        round(float(legacy.rand()), 6), type(rng).__module__,\n"
        "        type(rng.bit_generator).__module__, np.random.bit_generator.__name__]\n"
        f"out['crossed'] = crossed({new!r}, 'numpy')\n"
        "print(json.dumps(out))"
    )
    assert isinstance(data, dict)
    assert data["crossed"] == []
    shaded, original = data[new], data["numpy"]
    assert shaded[0] == "2.3.5" and original[0] == "2.4.6"
    assert shaded[1:3] == original[1:3]  # same streams from the same seeds
    assert shaded[3:] == [f"{new}.random._generator", f"{new}.random._sfc64",
                          f"{new}.random.bit_generator"]
    assert original[3:] == ["numpy.random._generator", "numpy.random._sfc64",
                            "numpy.random.bit_generator"]


def test_small_table_lengths_are_read_from_the_stack() -> None:
    folder = wheels("numpy==2.3.5")
    data = _member(_one(folder, "numpy-2.3.5"), "random/_sfc64.cpython-311-x86_64-linux-gnu.so")
    elf = read_elf(data, "_sfc64.so")
    (table,) = classify(data, "_sfc64.so", ["numpy"]).tables
    assert table.codec == "zlib" and table.bounds is not None
    # No array in read-only data splits it: the split came from the code's stack stores.
    assert cytable._split(table.text, cytable._data_runs(data, elf)) is None
    constants = dict(table.strings())
    renamed = [constants[at] for at, _ in table.module_paths(["numpy"])]
    # ``import numpy``, the module's own name, and two messages that start with a path.
    assert renamed == [b"numpy._core.multiarray failed to import",
                       b"numpy._core.umath failed to import", b"numpy", b"numpy.random._sfc64"]


@pytest.fixture(scope="module")
def yarl_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str]:
    folder = wheels("yarl==1.24.5", "yarl==1.25.1", "multidict==7.2.1", "idna==3.20",
                    "propcache==0.5.4")
    env, mapping = shaded_beside(
        tmp_path_factory.mktemp("yarl"), folder, ["yarl-1.24.5"], "yarl==1.25.1",
        ["yarl-1.25.1", "multidict-7.2.1", "idna-3.20", "propcache-0.5.4"],
        load_checked=False)  # yarl needs multidict, outside the set: the test loads it
    return env, mapping["yarl"]


def test_yarl_quoting_extension_beside_another_yarl(yarl_env: tuple[Venv, str]) -> None:
    env, new = yarl_env
    data = env.json(
        f"import json, sys\nimport {new}, yarl\n{CROSSED}\nout = {{}}\n"
        f"for y in ({new}, yarl):\n"
        "    from importlib import import_module\n"
        "    quoting = import_module(y.__name__ + '._quoting')\n"
        "    url = y.URL('http://example.com/a b/?q=ä')\n"
        "    out[y.__name__] = [y.__version__, str(url), quoting._Quoter.__module__]\n"
        f"out['crossed'] = crossed({new!r}, 'yarl')\n"
        "print(json.dumps(out))"
    )
    assert isinstance(data, dict)
    assert data["crossed"] == []
    quoted = "http://example.com/a%20b/?q=%C3%A4"
    assert data[new] == ["1.24.5", quoted, f"{new}._quoting_c"]
    assert data["yarl"] == ["1.25.1", quoted, "yarl._quoting_c"]


@pytest.fixture
def stored_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams that no longer fit: compression level 0 (stored blocks)."""
    def stored(codec: cytable.Codec, text: bytes) -> Iterator[bytes]:
        assert codec == "zlib"
        yield zlib.compress(text, 0)
    monkeypatch.setattr(cyrewrite, "_compressions", stored)


@pytest.mark.usefixtures("stored_only")
def test_a_table_that_grows_is_moved_and_still_loads(tmp_path: Path) -> None:
    folder = wheels("yarl==1.24.5")
    data = _member(_one(folder, "yarl-1.24.5"), "_quoting_c.cpython-311-x86_64-linux-gnu.so")
    info = classify(data, "_quoting_c.so", ["yarl"])
    (table,) = info.tables
    assert table.mover is not None
    patched = patch_strings(data, info, {"yarl": "y1b2"})
    assert len(patched) == len(data)
    assert patched[table.offset:table.offset + table.size] == bytes(table.size)  # moved away
    (moved,) = classify(patched, "_quoting_c.so", ["y1b2"]).tables
    assert moved.offset != table.offset and moved.size > table.size
    assert [n for _, n in moved.module_paths(["y1b2"])] == ["y1b2"]
    package = tmp_path / "y1b2"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_quoting_c.cpython-311-x86_64-linux-gnu.so").write_bytes(patched)
    check_loads(tmp_path, ["y1b2._quoting_c"], ["yarl"])
    env = Venv.create(tmp_path / "env")
    out = env.json(
        f"import json, sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "from y1b2._quoting_c import _Quoter\n"
        "print(json.dumps([_Quoter()('a b/ä'), _Quoter.__module__]))"
    )
    assert out == ["a%20b%2F%C3%A4", "y1b2._quoting_c"]


@pytest.fixture(scope="module")
def sqlalchemy_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str]:
    folder = wheels("sqlalchemy==2.0.58", "sqlalchemy==2.1.9", "typing-extensions==4.16.0",
                    "greenlet==3.5.6")
    env, mapping = shaded_beside(
        tmp_path_factory.mktemp("sqlalchemy"), folder, ["sqlalchemy-2.0.58"],
        "sqlalchemy==2.1.9", ["sqlalchemy-2.1.9", "typing_extensions-4.16.0", "greenlet-3.5.6"])
    return env, mapping["sqlalchemy"]


def test_sqlalchemy_lzss_tables_beside_another_sqlalchemy(
    sqlalchemy_env: tuple[Venv, str]
) -> None:
    env, new = sqlalchemy_env
    data = env.json(
        f"import json, sys\nimport {new}, sqlalchemy\n{CROSSED}\nout = {{}}\n"
        f"for sa in ({new}, sqlalchemy):\n"
        "    from importlib import import_module\n"
        "    engine = sa.create_engine('sqlite://')\n"
        "    with engine.connect() as conn:\n"
        "        rows = conn.execute(sa.text('select 1 as a, 2 as b')).all()\n"
        "    row = rows[0]\n"
        "    out[sa.__name__] = [sa.__version__, [list(r) for r in rows], row._mapping['b'],\n"
        "        type(row).__mro__[1].__module__]\n"
        f"out['crossed'] = crossed({new!r}, 'sqlalchemy')\n"
        "print(json.dumps(out))"
    )
    assert isinstance(data, dict)
    assert data["crossed"] == []
    shaded, original = data[new], data["sqlalchemy"]
    assert shaded[:3] == ["2.0.58", [[1, 2]], 2] and original[:3] == ["2.1.9", [[1, 2]], 2]
    # The row's base class comes from the compiled (LZSS-packed) extension.
    assert shaded[3] == f"{new}.cyextension.resultproxy"


def test_a_split_with_every_marker_whole_outranks_a_shifted_one() -> None:
    """Lengths read from a shifted start of the same array can cut a table of repetitive
    constants (fused signatures) so that a few markers still come out whole; the split that
    leaves all of them whole is the table's (scikit-learn 1.8's Cython 3.2 modules)."""
    constants = [b"()", b"Expected at least ", b"|", b"?", b" arguments, got ",
                 b"cline_in_traceback", b"__name__", b"__test__", b"__main__",
                 *[b"f[int%d_t[:, ::1],const int%d_t[:]]" % (a, b)
                   for a in (32, 64) for b in (32, 64)] * 3,
                 b"pkg.mod", b"__module__", b"__qualname__"]
    text = b"".join(constants)
    lengths = tuple(len(c) for c in constants)
    right = cytable._split(text, [lengths])
    assert right is not None and len(right) == len(constants) + 1
    # Another run of small words that cuts the text differently, two markers whole by
    # chance and the rest merged with their neighbours: the old rule trusted neither.
    merged = [b"".join(constants[:2]), *constants[2:7], b"__test____main__",
              *constants[9:-3], b"pkg.mod__module__", b"__qualname__"]
    assert b"".join(merged) == text
    other = tuple(len(c) for c in merged)
    assert cytable._split(text, [other]) is not None  # a candidate on its own
    assert cytable._split(text, [other, lengths]) == right
    assert cytable._split(text, [lengths, other]) == right
    pieces = {text[a:b] for a, b in itertools.pairwise(right)}
    assert b"pkg.mod" in pieces
