"""METADATA whose header block goes on past a whitespace-only line: shaded, installed, resolved."""

from __future__ import annotations

from pathlib import Path

from helpers import Venv, make_wheel, read_member, validate_record
from wheelshade import shade

#: A License folded over lines, some holding only spaces (scientific wheels ship such blocks):
#: the email parser reads them as continuations, so the Requires-Dist after them is a header.
LICENSE = (
    "License: Copyright (c) 2001-2023, the authors\n"
    "        \n"
    "        All rights reserved.\n"
    " \n"
    "        Redistribution and use in source and binary forms ...\n"
)


def test_requires_dist_after_a_license_with_blank_lines_is_rewritten(tmp_path: Path) -> None:
    wheels = tmp_path / "in"
    top = make_wheel(
        wheels,
        "blanklic",
        "1.0",
        {"blanklic/__init__.py": "import leafdep\n\ndef which():\n    return leafdep.V\n"},
        requires=("leafdep>=1,<2",),
        headers=LICENSE,
    )
    leaf1 = make_wheel(wheels, "leafdep", "1.0", {"leafdep/__init__.py": "V = 1\n"})
    leaf2 = make_wheel(tmp_path / "new", "leafdep", "2.0", {"leafdep/__init__.py": "V = 2\n"})
    out = tmp_path / "out"
    shade([], [top, leaf1], out_dir=out)
    (shaded_top,) = out.glob("blanklic_*.whl")
    (shaded_leaf,) = out.glob("leafdep_*.whl")
    for whl in (shaded_top, shaded_leaf):
        validate_record(whl)
    meta = read_member(shaded_top, ".dist-info/METADATA")
    leaf_dist = shaded_leaf.name.split("-")[0].replace("_", "-")
    assert f"Requires-Dist: {leaf_dist}==1.0\n" in meta
    assert "leafdep>=1" not in meta
    assert LICENSE in meta  # the folded field is kept byte for byte

    # Plain pip (no --no-deps) resolves the rewritten requirement from the shaded wheels.
    venv = Venv.create(tmp_path / "venv")
    venv.install("--find-links", out, shaded_top.name.split("-")[0], leaf2)
    assert venv.pip("check", check=False).returncode == 0
    shaded_name = shaded_top.name.split("-")[0]
    data = venv.json(
        f"import json, leafdep, {shaded_name} as old\n"
        "print(json.dumps([old.which(), leafdep.V]))"
    )
    assert data == [1, 2]
