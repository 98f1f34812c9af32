"""Run-time leak check: install wheels in a throwaway venv and see what their imports load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelshade.errors import FetchError, UsageError, WheelFormatError
from wheelshade.resolve.fetch import IndexOptions, pip_error
from wheelshade.verify.probe import MARKER as _MARKER
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import (
    EXTENSION_SUFFIXES,
    in_site_packages,
    locate,
    module_name_of_file,
)
from wheelshade.wheel.metadata import PROVENANCE_FILE

__all__ = ["Leak", "VerifyReport", "WheelVerdict", "format_report", "list_modules", "verify"]

_PROBE = Path(__file__).with_name("probe.py")
_TEST_NAMES = frozenset({"tests", "test", "testing", "conftest"})
TEST_MODULE = "test module"


@dataclass(frozen=True)
class Leak:
    """A module under an original (unshaded) name that was imported, or looked for."""

    module: str  # "greet.core"; "<interpreter>" when the probe itself died
    file: str | None  # where it was loaded from; None when it was not found
    cause: str  # "importing leakyapp", "importing oldapp (via greet)"


@dataclass(frozen=True)
class WheelVerdict:
    wheel: str  # file name
    imported: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (module, reason)
    leaks: tuple[Leak, ...]


@dataclass(frozen=True)
class VerifyReport:
    wheels: tuple[WheelVerdict, ...]
    originals: tuple[str, ...]  # original top-level names checked

    @property
    def ok(self) -> bool:
        return not any(w.leaks for w in self.wheels)


@dataclass(frozen=True)
class _Contents:
    """What verification needs from one wheel's archive."""

    path: Path
    modules: tuple[str, ...]  # to import, packages before their submodules
    skipped: tuple[tuple[str, str], ...]
    own: tuple[str, ...]  # the wheel's own top-level names
    mapping: dict[str, str]  # from wheelshade.json; empty for a dependent


def _module_key(name: str) -> list[str]:
    return name.split(".")


def _skip_reason(parts: Sequence[str], *, package: bool) -> str | None:
    # A *package* named tests/testing holds a test suite; a module of that name is often
    # real code (werkzeug.test, flask.testing, jinja2.tests) and is imported like any other.
    packages = parts if package else parts[:-1]
    last = parts[-1]
    if any(p in _TEST_NAMES for p in packages) or last.startswith("test_") or (
        last.endswith("_test") or last == "conftest"
    ):
        return TEST_MODULE
    if parts[-1] == "__main__":
        # Importing a __main__ module runs the program it belongs to.
        return "__main__ module (runs a program when imported)"
    if not all(part.isidentifier() for part in parts):
        return "not an importable module name"
    return None


def list_modules(
    names: Iterable[str], dist_info: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The modules a wheel installs into site-packages, as (to import, skipped with reason)."""
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    found: dict[str, str | None] = {}
    for name in names:
        if name.startswith(dist_info + "/"):
            continue
        loc = locate(name, data_dir)
        parts = loc.path.split("/")
        if not in_site_packages(loc) or "__pycache__" in parts:
            continue
        if not name.endswith((".py", *EXTENSION_SUFFIXES)):
            continue
        stem = module_name_of_file(parts[-1])
        dotted = parts[:-1] if stem == "__init__" else [*parts[:-1], str(stem)]
        if dotted:
            found[".".join(dotted)] = _skip_reason(dotted, package=stem == "__init__")
    order = sorted(found, key=_module_key)
    modules = tuple(m for m in order if found[m] is None)
    return modules, tuple((m, reason) for m in order if (reason := found[m]) is not None)


def _read_mapping(reader: WheelReader) -> dict[str, str]:
    member = f"{reader.dist_info}/{PROVENANCE_FILE}"
    if member not in {m.name for m in reader.members}:
        return {}
    try:
        mapping = json.loads(reader.read(member))["mapping"]
    except (ValueError, KeyError, TypeError):
        mapping = None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise WheelFormatError(f'{member} has no valid "mapping"', path=str(reader.path))
    return dict(mapping)


def _inspect(path: Path) -> _Contents:
    with WheelReader(path) as reader:
        names = [m.name for m in reader.members]
        modules, skipped = list_modules(names, reader.dist_info)
        mapping = _read_mapping(reader)
    own = sorted({m.split(".")[0] for m in modules} | {m.split(".")[0] for m, _ in skipped})
    return _Contents(Path(path), modules, skipped, tuple(own), mapping)


def _venv_python(root: Path) -> Path:
    if os.name == "nt":
        return root / "Scripts" / "python.exe"
    return root / "bin" / "python"


def _run(cmd: Sequence[str], what: str, *, where: Path, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FetchError(f"{what} did not finish within {timeout:.0f} s", path=str(where)) from None
    except OSError as exc:
        raise FetchError(f"{what} could not start ({exc})", path=str(where)) from None
    if proc.returncode != 0:
        raise FetchError(
            f"{what} failed: {pip_error(proc.stderr)}",
            path=str(where),
            hint="every requirement must be given with --with or found through the index options",
        )


def _make_env(
    root: Path,
    wheels: Sequence[Path],
    reqs: Sequence[str],
    index: IndexOptions,
    python: str,
    timeout: float,
) -> Path:
    """A fresh venv holding the wheels and requirements; returns its root."""
    venv = root / "venv"
    cmd = [python, "-m", "venv", "--without-pip", str(venv)]
    _run(cmd, "creating a venv", where=wheels[0], timeout=timeout)
    # The running interpreter's pip drives the venv: no pip copy inside it, which is fast.
    cmd = [python, "-m", "pip", "--python", str(_venv_python(venv)), "install"]
    cmd += ["--disable-pip-version-check", *index.pip_args(), *map(str, wheels), *reqs]
    _run(cmd, "pip install", where=wheels[0], timeout=timeout)
    return venv


def _crash(proc_stderr: str, detail: str) -> Leak:
    lines = [ln.strip() for ln in proc_stderr.splitlines() if ln.strip()]
    markers = [ln[len(_MARKER) :] for ln in lines if ln.startswith(_MARKER)]
    cause = f"interpreter crashed ({detail})"
    if markers:
        cause += f" while importing {markers[-1]}"
    if lines and not lines[-1].startswith(_MARKER):
        cause += f": {lines[-1]}"
    return Leak("<interpreter>", None, cause)


def _shown(file: object, venv: Path) -> str | None:
    """A loaded file's path, with the throwaway venv's (deleted) root shown as ``<venv>``."""
    if not isinstance(file, str):
        return None
    prefix = str(venv) + os.sep
    return "<venv>" + os.sep + file[len(prefix) :] if file.startswith(prefix) else file


def _probe(
    venv: Path, wheel: _Contents, originals: Sequence[str], request: Path, timeout: float
) -> tuple[list[tuple[str, str | None]], list[Leak]]:
    """Import the wheel's modules in a fresh interpreter: per module its skip reason or None."""
    doc = {"modules": list(wheel.modules), "originals": list(originals), "own": list(wheel.own)}
    request.write_text(json.dumps(doc), encoding="utf-8")
    cwd = request.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    # -I: site-packages stay, but the cwd, the script's folder, PYTHON* and user site do not.
    cmd = [str(_venv_python(venv)), "-I", str(_PROBE), str(request)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
        return [], [_crash(stderr, f"no answer within {timeout:.0f} s")]
    try:
        if proc.returncode != 0:
            raise ValueError(f"exit status {proc.returncode}")
        out = json.loads(proc.stdout)
        results = [(str(r["module"]), r["skipped"]) for r in out["results"]]
        leaks = [Leak(str(x["module"]), _shown(x["file"], venv), x["cause"]) for x in out["leaks"]]
    except (ValueError, KeyError, TypeError) as exc:
        return [], [_crash(proc.stderr, str(exc))]
    return results, leaks


def verify(
    wheels: Sequence[Path],
    *,
    with_requirements: Sequence[str] = (),
    index: IndexOptions = IndexOptions(),  # noqa: B008  (frozen, so sharing it is safe)
    python: str = sys.executable,
    timeout: float = 600,
) -> VerifyReport:
    """Install the wheels (and ``with_requirements``) into one throwaway venv, import every
    module of each wheel in a fresh interpreter, and report every module imported under an
    original (unshaded) name of the shaded wheels given.

    ``timeout`` bounds each step (venv creation, pip, each wheel's interpreter) separately.
    """
    contents = [_inspect(Path(w)) for w in wheels]
    originals = tuple(sorted({name for c in contents for name in c.mapping}))
    if not any(c.mapping for c in contents):
        given = ", ".join(Path(w).name for w in wheels) or "no wheels"
        raise UsageError(
            f"no shaded wheel given: none has a .dist-info/{PROVENANCE_FILE} ({given})",
            hint="pass the wheels `wheelshade shade` wrote",
        )
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="wheelshade-verify-") as tmp:
        work = Path(tmp)
        paths = [c.path for c in contents]
        venv = _make_env(work, paths, with_requirements, index, python, timeout)
        for i, wheel in enumerate(contents):
            request = work / f"request-{i}.json"
            results, leaks = _probe(venv, wheel, originals, request, timeout)
            skipped = [*wheel.skipped, *((m, r) for m, r in results if r is not None)]
            verdicts.append(
                WheelVerdict(
                    wheel=wheel.path.name,
                    imported=tuple(m for m, r in results if r is None),
                    skipped=tuple(sorted(skipped, key=lambda s: _module_key(s[0]))),
                    leaks=tuple(leaks),
                )
            )
    return VerifyReport(tuple(verdicts), originals)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_report(report: VerifyReport) -> str:
    """Readable text: a count line per wheel, then its skips and leaks, then the verdict."""
    out = [f"checked imports of: {', '.join(report.originals)}"]
    for w in report.wheels:
        out.append(
            f"{w.wheel}: imported {len(w.imported)}, skipped {len(w.skipped)}, leaks {len(w.leaks)}"
        )
        out.extend(f"  skipped {module}: {reason}" for module, reason in w.skipped)
        for leak in w.leaks:
            where = leak.file or "not found"
            out.append(f"  leak {leak.module} ({where}): {leak.cause}")
    total = sum(len(w.leaks) for w in report.wheels)
    if report.ok:
        out.append(f"OK: no leak in {_plural(len(report.wheels), 'wheel')}")
    else:
        bad = sum(1 for w in report.wheels if w.leaks)
        out.append(f"FAILED: {_plural(total, 'leak')} in {_plural(bad, 'wheel')}")
    return "\n".join(out)
