"""delvewheel's ``_delvewheel_patch_*`` block follows its ``<dist>.libs`` folder's new name."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import make_wheel
from wheelshade import shade
from wheelshade.rewrite.delvewheel import rename_libs

# delvewheel 1.11's block, with os.add_dll_directory (Windows only) recorded instead.
BLOCK = '''# start delvewheel patch
def _delvewheel_patch_1_11_1():
    import os
    if os.path.isdir(libs_dir := os.path.abspath(os.path.join(''' \
    '''os.path.dirname(__file__), os.pardir, 'delvpkg.libs'))):
        ADDED.append(libs_dir)


_delvewheel_patch_1_11_1()
del _delvewheel_patch_1_11_1
# end delvewheel patch
'''


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (BLOCK, BLOCK.replace("'delvpkg.libs'", "'d_1_0_ab.libs'")),
        (BLOCK.replace("'", '"'), BLOCK.replace("'", '"').replace("delvpkg.libs", "d_1_0_ab.libs")),
        (BLOCK.replace("\n", "\r\n"),
         BLOCK.replace("'delvpkg.libs'", "'d_1_0_ab.libs'").replace("\n", "\r\n")),
        # Outside the markers, or not the whole literal: another string, left alone.
        (BLOCK + "NAME = 'delvpkg.libs'\n",
         BLOCK.replace("'delvpkg.libs'", "'d_1_0_ab.libs'") + "NAME = 'delvpkg.libs'\n"),
        (BLOCK.replace("'delvpkg.libs'", "'delvpkg.libs2'"), None),
        ("X = 'delvpkg.libs'\n", None),
    ],
    ids=["single", "double", "crlf", "outside", "longer", "no-block"],
)
def test_rename_libs(source: str, expected: str | None) -> None:
    new = rename_libs(source.encode(), [("delvpkg.libs", "d_1_0_ab.libs")])
    assert new == (None if expected is None else expected.encode())


def test_shaded_package_adds_its_own_libs_folder(tmp_path: Path) -> None:
    init = f'"""A package repaired by delvewheel."""\nADDED = []\n\n\n{BLOCK}\nVALUE = 1\n'
    wheel = make_wheel(tmp_path / "in", "delvpkg", "1.0", {
        "delvpkg/__init__.py": init, "delvpkg.libs/helper-0a1b2c.dll": "not a real DLL"})
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    new = report.mapping["delvpkg"]
    site = tmp_path / "site"
    with zipfile.ZipFile(report.output) as zf:
        zf.extractall(site)
    (libs,) = [p.name for p in site.iterdir() if p.name.endswith(".libs")]
    assert libs != "delvpkg.libs"
    code = f"import json, sys; sys.path.insert(0, {str(site)!r}); import {new} as m; " \
           "print(json.dumps(m.ADDED))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert json.loads(proc.stdout) == [str(site / libs)]
    assert [f.message for f in report.findings] == []
