"""Test helpers: build fixture wheels, make real venvs, install with real pip, run code in them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wheelshade(
    *args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m wheelshade ARGS`` in a fresh interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "wheelshade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
    )


def verify_offline(
    wheels: Sequence[Path], beside: str, links: Path
) -> subprocess.CompletedProcess[str]:
    """``wheelshade verify`` of ``wheels`` with ``beside`` installed too, from ``links`` only."""
    return wheelshade(
        "verify", *wheels, "--with", beside, "--no-index", "--find-links", links
    )


def build_fixture(name: str, out_dir: Path, work: Path, root: Path = FIXTURES) -> Path:
    """Build ``root/<name>`` (tests/fixtures by default) into a wheel with setuptools."""
    src = work / name
    shutil.copytree(root / name, src)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    pip("wheel", "--no-build-isolation", "--no-deps", "--quiet", "-w", str(out_dir), str(src))
    (built,) = set(out_dir.glob("*.whl")) - before
    return built


@dataclass
class Venv:
    """A real virtual environment; pip runs from the test interpreter via ``--python``."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Venv:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        return cls(root)

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def install(self, *args: str | Path, index: bool = False) -> None:
        opts = [] if index else ["--no-index"]
        pip("--python", str(self.python), "install", "--quiet", *opts, *map(str, args))

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return pip("--python", str(self.python), *args, check=check)

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, cwd=self.root
        )

    def json(self, code: str) -> object:
        proc = self.run(code)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])


def names(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as zf:
        return zf.namelist()


def read_member(whl: Path, suffix: str) -> str:
    with zipfile.ZipFile(whl) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(suffix)]
        return zf.read(name).decode()


def validate_record(whl: Path) -> None:
    """Check RECORD with installer's own validation (the rules pip-installing relies on)."""
    from installer.sources import WheelFile

    with WheelFile.open(whl) as source:
        source.validate_record()


def make_wheel(
    out_dir: Path,
    name: str,
    version: str,
    files: dict[str, str],
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
    headers: str = "",
) -> Path:
    """A small wheel from a dict of sources, written by pypa/wheel's WheelFile (own RECORD).

    ``headers`` are METADATA lines written before the ``Requires-Dist`` lines."""
    from wheel.wheelfile import WheelFile

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{version}-py3-none-any.whl"
    dist_info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{headers}" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    wheel = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with WheelFile(path, "w") as wf:
        for member, text in sorted(files.items()):
            wf.writestr(member, text)
        wf.writestr(f"{dist_info}/METADATA", meta)
        wf.writestr(f"{dist_info}/WHEEL", wheel)
    return path
