"""musllinux wheels shade exactly like the manylinux build of the same version.

The same source built against musl and against glibc must come out with the same verdicts:
the same strings patched, kept or refused, the same packed tables, the same init symbol.
Structural only: no musl-linked CPython runs here (Debian packages the musl C library and
its tools, not a CPython built on it), so the shaded musllinux wheel is not imported.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from pypi import platform_wheels, wheels
from wheelshade import shade
from wheelshade.native.classify import classify
from wheelshade.native.model import BinaryInfo

pytestmark = pytest.mark.network

MUSL = (("musllinux_1_1_x86_64", "musllinux_1_2_x86_64"), "3.11")
#: requirement -> (wheel file prefix, import name): C, C++, Cython 3 LZSS tables, Rust.
CASES = {
    "markupsafe==3.0.2": ("markupsafe-3.0.2-", "markupsafe"),
    "greenlet==3.4.0": ("greenlet-3.4.0-", "greenlet"),
    "sqlalchemy==2.0.58": ("sqlalchemy-2.0.58-", "sqlalchemy"),
    "pydantic-core==2.46.5": ("pydantic_core-2.46.5-", "pydantic_core"),
}


def _one(folder: Path, prefix: str, tag: str) -> Path:
    (path,) = [p for p in folder.glob("*.whl")
               if p.name.lower().startswith(prefix) and tag in p.name]
    return path


def _text(string: str) -> str:
    """A string's printable end: an ``unbounded`` one starts in the binary data before it,
    which differs between two builds (bytes shown as ``\\xNN``)."""
    return re.split(r"\\x[0-9a-f]{2}|[^\x20-\x7e]", string)[-1]


def _verdicts(info: BinaryInfo) -> dict[str, object]:
    """What was decided, without where: offsets differ between two builds."""
    return {
        "patch": sorted((_text(r.string), r.kind) for r in info.references),
        "refuse": sorted(_text(r.string) for r in info.suspects),
        "keep": sorted(_text(r.string) for r in info.embedded),
        "tables": sorted(t.codec for t in info.tables),
        "init": info.init_symbols,
        "cython": info.cython_version,
    }


def _compiled(wheel: Path, names: list[str]) -> dict[str, dict[str, object]]:
    with zipfile.ZipFile(wheel) as zf:
        return {
            n.split(".cpython-")[0].split(".abi3")[0]: _verdicts(classify(zf.read(n), n, names))
            for n in zf.namelist() if n.endswith(".so")
        }


@pytest.mark.parametrize("req", list(CASES), ids=[r.split("==")[0] for r in CASES])
def test_musllinux_same_verdicts_as_manylinux(req: str, tmp_path: Path) -> None:
    prefix, name = CASES[req]
    musl = _one(platform_wheels(*MUSL, req), prefix, "musllinux")
    glibc = _one(wheels(req), prefix, "manylinux")
    shaded = {}
    for label, wheel in (("musl", musl), ("glibc", glibc)):
        (report,) = shade([], [wheel], out_dir=tmp_path / label).wheels
        shaded[label] = report
    new = shaded["musl"].mapping[name]
    # Names are chosen from the version and the set, not the build: the same for both.
    assert shaded["glibc"].mapping == shaded["musl"].mapping
    before = _compiled(musl, [name])
    assert before and before == _compiled(glibc, [name])
    after = {label: _compiled(r.output, [name, new]) for label, r in shaded.items()}
    assert after["musl"] == after["glibc"]
    # And nothing of the original name is left where the patch list said it would go.
    assert all(not any(s == name for s, _ in v["patch"]) for v in _compiled(
        shaded["musl"].output, [name]).values())
