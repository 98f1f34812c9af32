"""Bad input through the CLI: one line naming the file and the problem, exit 2, nothing written."""

from __future__ import annotations

import hashlib
import re
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import wheelshade

run_cli = wheelshade


def rewrite_zip(
    src: Path, dst: Path, edit: Callable[[str, bytes], list[tuple[str, bytes]]]
) -> Path:
    """Copy a wheel member by member through ``edit`` (which may rename, drop or add)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the duplicate-name case writes a duplicate on purpose
        for info in zin.infolist():
            for name, data in edit(info.filename, zin.read(info)):
                zout.writestr(name, data)
    return dst


def _tamper(name: str, data: bytes) -> list[tuple[str, bytes]]:
    return [(name, data + b"# changed\n" if name == "colors.py" else data)]


def _dotdot(name: str, data: bytes) -> list[tuple[str, bytes]]:
    extra = [("../evil.py", b"x = 1\n")] if name == "colors.py" else []
    return [(name, data), *extra]


def _duplicate(name: str, data: bytes) -> list[tuple[str, bytes]]:
    return [(name, data), (name, data)] if name == "colors.py" else [(name, data)]


def _no_dist_info(name: str, data: bytes) -> list[tuple[str, bytes]]:
    return [] if ".dist-info/" in name else [(name, data)]


def _python2(name: str, data: bytes) -> list[tuple[str, bytes]]:
    if name == "colors.py":
        return [(name, b'import colors\nprint "hi"\n')]
    if name.endswith("RECORD"):
        digest = hashlib.sha256(b'import colors\nprint "hi"\n').digest()
        import base64

        h = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        lines = [
            f"colors.py,sha256={h},25" if line.startswith("colors.py,") else line
            for line in data.decode().splitlines()
        ]
        return [(name, ("\n".join(lines) + "\n").encode())]
    return [(name, data)]


CASES = {
    "not-a-zip": (None, r"not a valid zip archive"),
    "truncated": (None, r"not a valid zip archive"),
    "dotdot": (_dotdot, r"\.\./evil\.py"),
    "duplicate": (_duplicate, r"duplicate"),
    "no-dist-info": (_no_dist_info, r"dist-info"),
    "tampered": (_tamper, r"RECORD hash mismatch for colors\.py"),
    "python2-source": (_python2, r"colors\.py:2: cannot parse as Python 3 source"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_dep_wheel(case: str, fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    good = fixture_wheels["colors1"]
    bad = tmp_path / "in" / good.name
    bad.parent.mkdir()
    edit, pattern = CASES[case]
    if case == "not-a-zip":
        bad.write_bytes(b"this is not a zip file\n")
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        assert edit is not None
        rewrite_zip(good, bad, edit)
    before = bad.read_bytes()
    out = tmp_path / "out"
    proc = run_cli("shade", "--dep", bad, "-o", out, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"^wheelshade: error: .*" + pattern, lines[0]), lines[0]
    assert str(bad) in lines[0]
    assert not out.exists()
    assert bad.read_bytes() == before


def test_invalid_wheel_filename(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "colors.whl"
    shutil.copy(fixture_wheels["colors1"], bad)
    proc = run_cli("shade", "--dep", bad, "-o", tmp_path / "out")
    assert proc.returncode == 2
    assert re.match(r"^wheelshade: error: .*colors\.whl: invalid wheel filename", proc.stderr)
    assert not (tmp_path / "out").exists()


def test_dep_that_cannot_be_found(tmp_path: Path) -> None:
    empty = tmp_path / "links"
    empty.mkdir()
    proc = run_cli(
        "shade",
        "--dep",
        "nosuchpkg-wheelshade==1.0",
        "--no-index",
        "--find-links",
        empty,
        "--cache-dir",
        tmp_path / "cache",
        "-o",
        tmp_path / "out",
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.match(
        r"^wheelshade: error: nosuchpkg-wheelshade==1\.0: pip could not obtain a wheel", proc.stderr
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--dep", "flask>=1"], r"expected NAME==VERSION or a path to a \.whl"),
        (["--dep", "missing.whl"], r"--dep missing\.whl: no such wheel file"),
        (["--dep", "x==1", "--suffix", "Bad-Suffix"], r"invalid --suffix"),
        ([], r"no --dep given"),
    ],
    ids=["range", "missing-file", "bad-suffix", "no-dep"],
)
def test_usage_errors(args: list[str], pattern: str, tmp_path: Path) -> None:
    proc = run_cli("shade", *args, "-o", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert re.match(r"^wheelshade: error: .*" + pattern, proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists()


def test_conflicting_requirement_is_reported(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    # newapp requires greet>=2; shading greet 1.0 for it cannot satisfy that.
    proc = run_cli(
        "shade",
        fixture_wheels["newapp"],
        "--dep",
        fixture_wheels["greet1"],
        "--dep",
        fixture_wheels["colors1"],
        "-o",
        tmp_path / "out",
    )
    assert proc.returncode == 2
    assert re.match(
        r"^wheelshade: error: newapp 0\.1 requires greet>=2 but the shading set has greet 1\.0",
        proc.stderr,
    )
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_an_input(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    app = tmp_path / fixture_wheels["oldapp"].name
    shutil.copy(fixture_wheels["oldapp"], app)
    before = app.read_bytes()
    proc = run_cli(
        "shade",
        app,
        "--dep",
        fixture_wheels["greet1"],
        "--dep",
        fixture_wheels["colors1"],
        "-o",
        tmp_path,
    )
    assert proc.returncode == 1
    assert "would overwrite an input wheel" in proc.stderr
    assert app.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [app.name]


def test_success_prints_the_table(fixture_wheels: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli(
        "shade",
        fixture_wheels["oldapp"],
        "--dep",
        fixture_wheels["greet1"],
        "--dep",
        fixture_wheels["colors1"],
        "-o",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"greet 1\.0\s+dep\s+greet -> greet_1_0_[0-9a-f]{8}\s+greet-1-0-", proc.stdout)
    assert re.search(r"oldapp 0\.1\s+dependent\s+-\s+oldapp\s+1/1 files", proc.stdout)
    assert re.search(r"^note: greet 1\.0: scripts left out \(.*--keep-scripts.*\): greet$",
                     proc.stdout, re.M)
