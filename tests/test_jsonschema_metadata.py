"""jsonschema 3.2.0 reads its own version from its distribution metadata: shading must keep it."""

from __future__ import annotations

from pathlib import Path

from helpers import Venv, validate_record
from pypi import wheels
from wheelshade import IndexOptions, shade

DEPS = ("attrs==25.3.0", "pyrsistent==0.20.0", "six==1.17.0", "setuptools==80.9.0")


def test_shaded_jsonschema_reports_its_version_without_an_unshaded_copy(tmp_path: Path) -> None:
    links = wheels("jsonschema==3.2.0", *DEPS)
    out = tmp_path / "out"
    result = shade(
        [],
        ["jsonschema==3.2.0"],
        out_dir=out,
        cache_dir=tmp_path / "cache",
        index=IndexOptions(find_links=(str(links),), no_index=True),
    )
    (report,) = result.wheels
    shaded = report.mapping["jsonschema"]
    (whl,) = out.glob("*.whl")
    validate_record(whl)
    env = Venv.create(tmp_path / "env")
    env.install("--find-links", links, whl, *DEPS)
    data = env.json(
        "import json, importlib.metadata as md\n"
        f"import {shaded} as js\n"
        "try:\n    md.version('jsonschema'); unshaded = True\n"
        "except md.PackageNotFoundError:\n    unshaded = False\n"
        "ok = js.Draft7Validator({'type': 'integer'}).is_valid(3)\n"
        "print(json.dumps([js.__version__, unshaded, ok]))"
    )
    assert data == ["3.2.0", False, True]
    assert env.pip("check", check=False).returncode == 0
