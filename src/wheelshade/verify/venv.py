"""Throwaway venvs for verification: make one with pip, run the import probe inside it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from wheelshade.errors import FetchError
from wheelshade.resolve.fetch import IndexOptions, pip_error
from wheelshade.verify.probe import MARKER as _MARKER
from wheelshade.wheel.layout import module_name_of_file

_PROBE = Path(__file__).with_name("probe.py")


@dataclass(frozen=True)
class Leak:
    """A module under an original (unshaded) name that was imported, or looked for."""

    module: str  # "greet.core"; "<interpreter>" when the probe itself died
    file: str | None  # where it was loaded from; None when it was not found
    cause: str  # "importing leakyapp", "importing oldapp (via greet)"


def venv_python(root: Path) -> Path:
    if os.name == "nt":
        return root / "Scripts" / "python.exe"
    return root / "bin" / "python"


def run_step(cmd: Sequence[str], what: str, *, where: Path, timeout: float) -> None:
    try:
        # A session of its own: on a timeout the whole tree goes (pip runs its resolver in
        # a child process, which would go on writing into the venv being removed).
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=os.name != "nt",
        )
    except OSError as exc:
        raise FetchError(f"{what} could not start ({exc})", path=str(where)) from None
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        raise FetchError(f"{what} did not finish within {timeout:.0f} s", path=str(where)) from None
    if proc.returncode != 0:
        raise FetchError(
            f"{what} failed: {pip_error(stderr)}",
            path=str(where),
            hint="every requirement must be given with --with or found through the index options",
        )


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    """Stop ``proc`` and every process it started (its session, where there are sessions)."""
    if os.name == "nt":
        proc.kill()
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def make_env(
    root: Path,
    wheels: Sequence[Path],
    reqs: Sequence[str],
    index: IndexOptions,
    python: str,
    timeout: float,
) -> Path:
    """A fresh venv under ``root`` holding the wheels and requirements; returns its root."""
    venv = root / "venv"
    cmd = [python, "-m", "venv", "--without-pip", str(venv)]
    run_step(cmd, "creating a venv", where=wheels[0], timeout=timeout)
    # The running interpreter's pip drives the venv: no pip copy inside it, which is fast.
    cmd = [python, "-m", "pip", "--python", str(venv_python(venv)), "install"]
    cmd += ["--disable-pip-version-check", *index.pip_args(), *map(str, wheels), *reqs]
    run_step(cmd, "pip install", where=wheels[0], timeout=timeout)
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


def probe_modules(
    venv: Path,
    modules: Sequence[str],
    own: Sequence[str],
    originals: Sequence[str],
    request: Path,
    timeout: float,
) -> tuple[list[tuple[str, str | None]], list[Leak]]:
    """Import ``modules`` in a fresh interpreter: per module its failure reason or None."""
    doc = {"modules": list(modules), "originals": list(originals), "own": list(own)}
    request.write_text(json.dumps(doc), encoding="utf-8")
    cwd = request.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    # -I: site-packages stay, but the cwd, the script's folder, PYTHON* and user site do not.
    cmd = [str(venv_python(venv)), "-I", str(_PROBE), str(request)]
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


def installed_tops(venv: Path, dists: Collection[str]) -> frozenset[str]:
    """Top-level import names that the distributions ``dists`` (canonical names) have
    installed in ``venv``, read from their RECORD files; inside a namespace package, the
    names of what they install there.

    An unshaded release installed beside a shaded one can ship a top-level module the
    shaded release's wheel lacks (an accelerator built only for some platforms or
    versions): the shaded code's ``try: from accel import ...`` then loads the other
    release's copy, which is as much a leak as importing the package itself.
    """
    found: set[str] = set()
    for name, paths in _records(venv):
        if canonicalize_name(name) not in dists:
            continue
        # A namespace package (no ``__init__``) is shared with other distributions: only
        # what this one installs below it (``ns.part``, ``ns.sub.part``) is its own.
        packages = {p.rpartition("/")[0] for p in paths
                    if p.rpartition("/")[2].startswith("__init__.")}
        for path in paths:
            parts = path.split("/")
            if parts[0].endswith((".dist-info", ".data", ".pth")) or parts[0] in ("", ".."):
                continue
            for depth in range(1, len(parts) + 1):
                if depth == len(parts) or "/".join(parts[:depth]) in packages:
                    stem = module_name_of_file(parts[-1]) if depth == len(parts) else ""
                    names = [*parts[: depth - 1], stem or parts[depth - 1]]
                    if stem is not None and all(
                        n.isidentifier() and n != "__pycache__" for n in names
                    ):
                        found.add(".".join(names))
                    break
    return frozenset(found)


def _records(venv: Path) -> Iterator[tuple[str, list[str]]]:
    """Each installed distribution's name (as its dist-info spells it) and RECORD paths."""
    for record in (*venv.glob("lib/python*/site-packages/*.dist-info/RECORD"),
                   *venv.glob("Lib/site-packages/*.dist-info/RECORD")):
        name = record.parent.name.removesuffix(".dist-info").rpartition("-")[0]
        yield name, [line.split(",", 1)[0] for line in
                     record.read_text(encoding="utf-8", errors="replace").splitlines()]


def owners(venv: Path) -> dict[str, str]:
    """Top-level import name -> the distribution that installs it in ``venv``."""
    found: dict[str, str] = {}
    for name, paths in _records(venv):
        for path in paths:
            top = path.split("/")[0]
            module = module_name_of_file(top) if "/" not in path else top
            if module and module.isidentifier():
                found.setdefault(module, name)
    return found
