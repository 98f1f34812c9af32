"""The benchmark corpus: pinned wheels from corpus.toml, fetched by pip into a git-ignored cache."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

CORPUS_FILE = Path(__file__).resolve().parent / "corpus.toml"

#: The interpreter and platform every pin is for; pure wheels ignore them.
TARGET = (
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", "3.11",
    "--abi", "cp311",
    "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
)

#: pip's messages when it cannot reach the package index at all.
UNREACHABLE = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|ConnectTimeout|"
    r"ReadTimeout|No route to host",
)


class CorpusError(Exception):
    """The corpus file is wrong, or pip fetched something other than the pin."""


class IndexUnreachable(CorpusError):
    """The package index cannot be reached: the only reason to skip a wheel."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str
    rewrite_dominated: bool
    why: str
    group: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"

    def requirement_line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}\n"


def load(path: Path = CORPUS_FILE) -> list[Pin]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    pins = []
    for entry in data.get("wheel", []):
        try:
            pins.append(
                Pin(
                    name=str(canonicalize_name(entry["name"])),
                    version=str(entry["version"]),
                    sha256=str(entry["sha256"]).lower(),
                    rewrite_dominated=bool(entry.get("rewrite_dominated", False)),
                    why=str(entry.get("why", "")),
                    group=entry.get("group"),
                )
            )
        except KeyError as exc:
            raise CorpusError(f"{path}: a [[wheel]] entry has no {exc.args[0]!r}") from None
    if not pins:
        raise CorpusError(f"{path}: no [[wheel]] entries")
    return pins


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _cached(pin: Pin, folder: Path) -> Path | None:
    for path in folder.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        if name == pin.name and str(version) == pin.version and sha256_of(path) == pin.sha256:
            return path
    return None


def fetch(pin: Pin, folder: Path, python: str = sys.executable) -> Path:
    """The pinned wheel, downloaded once; pip's own configuration decides the index.

    Raises IndexUnreachable when the index cannot be reached, CorpusError on any other
    failure (a hash mismatch above all: the pin is wrong or the file changed).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if found := _cached(pin, folder):
        return found
    # One pin per pip run: pip refuses two pins of one name, and it reports per file.
    with tempfile.TemporaryDirectory(prefix="bench-req-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text(pin.requirement_line(), encoding="utf-8")
        proc = subprocess.run(
            [
                python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--require-hashes", *TARGET, "-r", str(req_file), "-d", str(folder),
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        if UNREACHABLE.search(proc.stderr):
            raise IndexUnreachable(f"{pin.label}: package index unreachable ({last})")
        raise CorpusError(f"{pin.label}: pip download failed:\n{proc.stderr.strip()}")
    found = _cached(pin, folder)
    if found is None:
        raise CorpusError(f"{pin.label}: pip succeeded but no wheel with the pinned sha256 is in "
                          f"{folder}")
    return found


def top_levels(wheel: Path) -> list[str]:
    """Top-level import names: root packages (with ``__init__.py``) and root modules."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            parts = member.split("/")
            if parts[0].endswith((".dist-info", ".data")):
                continue
            if len(parts) == 1 and parts[0].endswith(".py"):
                names.add(parts[0][:-3])
            elif len(parts) == 2 and parts[1] == "__init__.py":
                names.add(parts[0])
    return sorted(names)


def submodule(wheel: Path, top: str) -> str | None:
    """A public submodule of ``top``, for the synthetic dependent's ``import top.sub`` forms."""
    with zipfile.ZipFile(wheel) as zf:
        members = set(zf.namelist())
    candidates = sorted(
        m.split("/")[1].removesuffix(".py")
        for m in members
        if m.startswith(f"{top}/")
        and m.count("/") in (1, 2)
        and (m.endswith(".py") if m.count("/") == 1 else m.endswith("/__init__.py"))
    )
    public = [c for c in candidates if not c.startswith("_") and c.isidentifier()]
    return public[0] if public else None
