"""Prove patched compiled modules by loading them: the outputs beside the inputs, in a fresh
interpreter, with every original name blocked.

Static checks say a binary names no original any more; only loading it shows that the
dynamic linker still accepts the file, that its init function is found under the new name,
and that nothing it imports at load time reaches the original package. A module that does
not load for a reason unrelated to shading (a missing optional dependency, a platform
library) is judged against the unshaded input loaded the same way: failing in both is a
note, failing only after shading is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

from wheelshade.errors import WheelshadeError
from wheelshade.native import emulation
from wheelshade.wheel.layout import locate, module_name_of_file

#: Seconds one probe interpreter may take (importing numpy's 19 modules takes about 1 s).
TIMEOUT = 300


class LoadCheckError(WheelshadeError):
    """A patched binary failed to load, or loading it reached an original (unshaded) name."""


@dataclass(frozen=True)
class Target:
    """One compiled module to load: its import name before and after shading."""

    original: str
    shaded: str
    member: str  # the archive member, for messages
    #: The output wheel's file name and the binary's machine: who can load it.
    wheel: str = ""
    machine: str = ""


@dataclass(frozen=True)
class Probe:
    #: module -> "ExceptionType: message", for each module that did not import.
    failed: Mapping[str, str]
    #: Original names imported or left in ``sys.modules`` (always empty when unblocked).
    reached: tuple[str, ...]


def module_of(member: str, data_dir: str) -> str | None:
    """The import name of an archive member that installs into site-packages."""
    loc = locate(member, data_dir)
    if loc.scheme not in (None, "purelib", "platlib"):
        return None
    folder, _, filename = loc.path.rpartition("/")
    name = module_name_of_file(filename)
    if name is None:
        return None
    parts = [p for p in folder.split("/") if p]
    if name != "__init__":
        parts.append(name)
    # Grafted libraries (numpy.libs/libopenblas...so) are loaded by modules, not imported.
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def unloadable_reason(wheels: Iterable[Path]) -> str | None:
    """Why this interpreter cannot load the wheels' compiled code, or None if it can."""
    supported = set(sys_tags())
    for wheel in wheels:
        tags = parse_wheel_filename(wheel.name)[3]
        if not tags & supported:
            shown = sorted(str(t) for t in tags)[0]
            return (
                f"{wheel.name} is built for {shown}, which this interpreter "
                f"({sys.implementation.name} {sys.version.split()[0]}) cannot load"
            )
    return None


def check(
    outputs: Sequence[Path],
    inputs: Sequence[Path],
    targets: Sequence[Target],
    originals: Iterable[str],
    python: str = sys.executable,
    environ: Mapping[str, str] = os.environ,
) -> list[str]:
    """Load ``targets`` from ``outputs``; return notes, raise LoadCheckError on a real failure.

    Each module is loaded by an interpreter that can: this one (or ``python``) when its
    wheel's tags fit here, else by its binary's machine an emulated one (see emulation),
    when configured; a module no interpreter can load is noted, with how to enable one.
    """
    if not targets:
        return []
    here = emulation.host(python)
    groups: dict[emulation.Interpreter, list[Target]] = {}
    skipped: dict[str, int] = {}
    for target in targets:
        chosen = _interpreter_for(target, outputs, here, environ)
        if isinstance(chosen, str):
            skipped[chosen] = skipped.get(chosen, 0) + 1
        else:
            groups.setdefault(chosen, []).append(target)
    notes = [f"compiled modules not load-checked: {reason}" for reason in skipped]
    blocked = sorted(set(originals))
    with tempfile.TemporaryDirectory(prefix="wheelshade-load-") as tmp:
        roots = _Roots(outputs, inputs, Path(tmp))
        for interpreter, group in groups.items():
            notes += _check_group(interpreter, group, blocked, roots)
    return notes


def _interpreter_for(
    target: Target, outputs: Sequence[Path], here: emulation.Interpreter,
    environ: Mapping[str, str],
) -> emulation.Interpreter | str:
    """Who loads ``target``, or why nobody can."""
    mine = [p for p in outputs if p.name == target.wheel]
    reason = unloadable_reason(mine or outputs)
    if reason is None:
        return here
    # A Windows module is loaded by a Windows CPython whatever its machine.
    windows = bool(mine) and all(
        t.platform.startswith("win") for t in parse_wheel_filename(mine[0].name)[3])
    machine = emulation.WINDOWS if windows else target.machine
    emulated = emulation.configured(machine, environ) if mine else None
    if emulated is None:
        return reason + emulation.how_to_enable(machine)
    if emulated.loads(mine[0]):
        return emulated
    shown = sorted(str(t) for t in parse_wheel_filename(mine[0].name)[3])[0]
    return f"{mine[0].name} is built for {shown}, which {emulated.label} cannot load"


class _Roots:
    """The staged outputs and the inputs unpacked once each, when first needed."""

    def __init__(self, outputs: Sequence[Path], inputs: Sequence[Path], tmp: Path) -> None:
        self._wheels = {"shaded": outputs, "original": inputs}
        self._tmp = tmp
        self._made: dict[str, Path] = {}

    def __getitem__(self, kind: str) -> Path:
        if kind not in self._made:
            self._made[kind] = _install(self._wheels[kind], self._tmp / kind)
        return self._made[kind]


def _check_group(
    interpreter: emulation.Interpreter, targets: Sequence[Target], blocked: Sequence[str],
    roots: _Roots,
) -> list[str]:
    command = interpreter.command
    shaded = probe(roots["shaded"], [t.shaded for t in targets], blocked, command)
    if shaded.reached:
        first = next((t for t in targets if t.shaded in shaded.failed), targets[0])
        raise LoadCheckError(
            f"loading the patched compiled modules reached the original "
            f"{', '.join(shaded.reached)} (first checked: {first.member})"
            + (f" (loaded by {interpreter.label})" if interpreter.emulated else ""),
            hint="please report this wheel; --drop the module to leave it out",
        )
    # Only what failed shaded is tried unshaded: failing both ways is not shading's doing.
    unshaded = Probe({}, ())
    if shaded.failed:
        unshaded = probe(roots["original"], [t.original for t in targets], [], command)
    unchecked: list[str] = []
    for target in targets:
        error = shaded.failed.get(target.shaded)
        if error is None:
            continue
        if target.original in unshaded.failed:
            unchecked.append(f"{target.member} ({unshaded.failed[target.original]})")
            continue
        raise LoadCheckError(
            f"{target.member} loads unshaded but not after shading: {error}"
            + (f" (loaded by {interpreter.label})" if interpreter.emulated else ""),
            hint="please report this wheel; --drop the module to leave it out",
        )
    loaded = len(targets) - len(unchecked)
    by = f" by {interpreter.label}" if interpreter.emulated else ""
    where = f"in {interpreter.label}" if interpreter.emulated else "here"
    notes = [f"{loaded} patched compiled module(s) loaded{by}, reaching no original name"]
    if unchecked:
        more = f" and {len(unchecked) - 1} more" if len(unchecked) > 1 else ""
        notes.append(
            f"{len(unchecked)} compiled module(s) not load-checked: they do not load unshaded "
            f"either {where} (missing dependencies?): {unchecked[0]}{more}"
        )
    return notes[0 if loaded else 1:]


def _install(wheels: Sequence[Path], root: Path) -> Path:
    """Unpack what ``wheels`` install into site-packages (root and purelib/platlib members).

    Inputs were verified when read and outputs are this run's own, so a plain unpack is
    enough; scripts, headers and data are not needed to import anything.
    """
    site = root / "site"
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            data_dir = _data_dir(zf.namelist())
            for info in zf.infolist():
                loc = locate(info.filename, data_dir)
                if info.is_dir() or loc.scheme not in (None, "purelib", "platlib"):
                    continue
                dest = site.joinpath(*loc.path.split("/"))
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    return site


def _data_dir(names: Iterable[str]) -> str:
    tops = {n.split("/", 1)[0] for n in names}
    return next((t for t in sorted(tops) if t.endswith(".data")), "\0")


def probe(
    root: Path, modules: Sequence[str], blocked: Sequence[str], python: str | Sequence[str]
) -> Probe:
    """Import each of ``modules`` (``root`` first on the path) with ``blocked`` names refused.

    Only imports caused by loading ``modules`` count: originals the interpreter imported at
    start-up are taken out of ``sys.modules`` first, and are reached only if imported again.

    ``python`` is an interpreter, or a command that runs one (``qemu-aarch64 -L ROOT ...``).
    """
    command = [python] if isinstance(python, str) else list(python)
    script = _PROBE.format(root=str(root), modules=list(modules), blocked=list(blocked))
    try:
        proc = subprocess.run(
            [*command, "-I", "-c", script], capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise LoadCheckError(f"loading compiled modules took over {TIMEOUT} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LoadCheckError(
            "the interpreter loading the compiled modules crashed"
            + (f": {detail[-1]}" if detail else f" (exit {proc.returncode})"),
            hint="please report this wheel; --drop the module to leave it out",
        )
    found = json.loads(lines[-1])
    return Probe(dict(found["failed"]), tuple(found["reached"]))


_PROBE = """\
import importlib, json, sys
BLOCKED = set({blocked!r})
reached = []
def blocked(name):
    top, _, rest = name.partition(".")
    return top in BLOCKED or (bool(rest) and top + "." + rest.partition(".")[0] in BLOCKED)
class Block:
    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            reached.append(name)
            raise ImportError("wheelshade load check: import of original name " + name)
        return None
# What the interpreter imported at start-up (site, .pth files such as setuptools'
# distutils-precedence.pth) is the environment's, not the patched modules' doing. Set
# aside, an original name imported again by a patched module meets the blocker.
for name in [k for k in sys.modules if blocked(k)]:
    del sys.modules[name]
sys.meta_path.insert(0, Block())
sys.path.insert(0, {root!r})
failed = {{}}
for module in {modules!r}:
    try:
        importlib.import_module(module)
    except BaseException as exc:
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        failed[module] = type(exc).__name__ + (": " + text if text else "")
reached = sorted(set(reached) | {{k for k in sys.modules if blocked(k)}})
print(json.dumps({{"failed": failed, "reached": reached}}))
"""
