"""Import failures checked against the original wheels: importing unshaded but not shaded is broken.

A module of a shaded wheel that fails to import may fail for a reason of its own (an optional
dependency, a platform); only the original tells. The originals (given with ``--original``,
else fetched by the name, version and sha256 their ``wheelshade.json`` records) go into a
second throwaway venv with their own dependencies, and the failed modules are imported there
under their original names.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelshade.errors import FetchError, UsageError
from wheelshade.resolve.fetch import IndexOptions, pip_error
from wheelshade.verify.venv import make_env, probe_modules


@dataclass(frozen=True)
class Source:
    """What one verified wheel was made from."""

    wheel: str  # the verified wheel's file name
    name: str  # the original distribution
    version: str
    sha256: str | None  # of the original wheel; None for a dependent (not shaded)
    mapping: Mapping[str, str]  # original import name -> shaded; empty for a dependent
    #: A bundle's bundled parts, each with its own original (``--bundle``).
    parts: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Comparison:
    #: Per verified wheel: (module, reason it fails shaded) for each one that imports unshaded.
    broken: Mapping[str, tuple[tuple[str, str], ...]]
    #: Per verified wheel: why its failed modules could not be compared with the original.
    not_compared: Mapping[str, str]


def original_module(module: str, mapping: Mapping[str, str]) -> str:
    """The name ``module`` of a shaded wheel has in the original: ``greet_1_0_x.core`` ->
    ``greet.core``; a namespace portion ``ns_1_0_x.part.m`` -> ``ns.part.m``."""
    for original, shaded in sorted(mapping.items(), key=lambda kv: -len(kv[1])):
        if module == shaded or module.startswith(shaded + "."):
            return original + module[len(shaded) :]
    return module


def _key(name: str, version: str) -> tuple[NormalizedName, Version] | None:
    try:
        return canonicalize_name(name), Version(version)
    except InvalidVersion:
        return None


def _given(originals: Sequence[Path]) -> dict[tuple[NormalizedName, Version], Path]:
    found = {}
    for path in originals:
        try:
            name, version, _, _ = parse_wheel_filename(Path(path).name)
        except InvalidWheelFilename as exc:
            raise UsageError(f"--original {path}: not a wheel file name ({exc})") from None
        if not Path(path).is_file():
            raise UsageError(f"--original {path}: no such file")
        found[name, version] = Path(path)
    return found


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _download(source: Source, dest: Path, index: IndexOptions, python: str, timeout: float) -> Path:
    """The original wheel, fetched by pip exactly as pinned; FetchError when it is not the
    one that was shaded."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    cmd += ["--disable-pip-version-check", "-d", str(dest), *index.pip_args()]
    cmd.append(f"{source.name}=={source.version}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise FetchError(f"pip download did not finish ({exc})".splitlines()[0]) from None
    if proc.returncode != 0:
        raise FetchError(f"pip download failed: {pip_error(proc.stderr)}")
    found = sorted(dest.glob("*.whl"))
    if not found:
        raise FetchError("pip download gave no wheel")
    path = found[0]
    if source.sha256 and _sha256(path) != source.sha256:
        raise FetchError(f"the {path.name} pip found is not the wheel that was shaded (sha256)")
    return path


def compare(
    failures: Mapping[str, Sequence[tuple[str, str]]],
    sources: Mapping[str, Source],
    originals: Sequence[Path],
    work: Path,
    *,
    index: IndexOptions,
    python: str,
    timeout: float,
    orders: Mapping[str, Sequence[str]] | None = None,
) -> Comparison:
    """Import each failed module (per verified wheel) from its original wheel; a bundle's
    modules from the original of the part each belongs to.

    ``orders`` are the modules the shaded probe imported, per wheel and in its order: the
    originals are imported the same way, so a module that fails only after a sibling was
    imported (two generated copies registering one name in a process-wide registry) fails
    in both, and is no regression.
    """
    units, parts, owner = _units(failures, sources)
    sequences = {
        unit: [m for m in (orders or {}).get(owner[unit], ())
               if _unit(owner[unit], sources[owner[unit]], m)[0] == unit]
        for unit in units
    }
    found = _compare_units(units, parts, originals, work, index, python, timeout, sequences)
    broken: dict[str, tuple[tuple[str, str], ...]] = {}
    not_compared: dict[str, str] = {}
    for unit, regressions in found.broken.items():
        broken[owner[unit]] = (*broken.get(owner[unit], ()), *regressions)
    for unit, reason in found.not_compared.items():
        held = not_compared.get(owner[unit])
        not_compared[owner[unit]] = reason if held in (None, reason) else f"{held}; {reason}"
    return Comparison(broken, not_compared)


def _units(
    failures: Mapping[str, Sequence[tuple[str, str]]], sources: Mapping[str, Source]
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, Source], dict[str, str]]:
    """Failures split by the original they come from: a wheel, or a bundle's part."""
    units: dict[str, list[tuple[str, str]]] = {}
    unit_sources: dict[str, Source] = {}
    owner: dict[str, str] = {}
    for wheel, failed in failures.items():
        for module, reason in failed:
            unit, part = _unit(wheel, sources[wheel], module)
            units.setdefault(unit, []).append((module, reason))
            unit_sources[unit], owner[unit] = part, wheel
    return units, unit_sources, owner


def _unit(wheel: str, source: Source, module: str) -> tuple[str, Source]:
    """The unit (``wheel``, or ``wheel#part`` of a bundle) ``module`` belongs to, and its
    original."""
    part = next((p for p in source.parts if original_module(module, p.mapping) != module),
                source)
    return (wheel if part is source else f"{wheel}#{part.name}"), part


def _compare_units(
    failures: Mapping[str, Sequence[tuple[str, str]]],
    sources: Mapping[str, Source],
    originals: Sequence[Path],
    work: Path,
    index: IndexOptions,
    python: str,
    timeout: float,
    sequences: Mapping[str, Sequence[str]],
) -> Comparison:
    given = _given(originals)
    wheels: dict[str, Path] = {}
    not_compared: dict[str, str] = {}
    for i, (wheel, failed) in enumerate(sorted(failures.items())):
        source = sources[wheel]
        if not failed:
            continue
        key = _key(source.name, source.version)
        if key is not None and key in given:
            wheels[wheel] = given[key]
        elif source.sha256 is None:
            not_compared[wheel] = "not shaded by this set: give its original with --original"
        else:
            try:
                wheels[wheel] = _download(source, work / f"dl-{i}", index, python, timeout)
            except FetchError as exc:
                not_compared[wheel] = (
                    f"original {source.name} {source.version} not found ({exc.message}); "
                    "give it with --original"
                )
    broken: dict[str, tuple[tuple[str, str], ...]] = {}
    if not wheels:
        return Comparison(broken, not_compared)
    try:
        # Every original given goes in: they are the set the failing ones require.
        install = sorted({*wheels.values(), *given.values()})
        venv = make_env(work / "original", install, (), index, python, timeout)
    except FetchError as exc:
        reason = f"the originals do not install together ({exc.message})"
        return Comparison(broken, {**not_compared, **dict.fromkeys(wheels, reason)})
    names = {
        wheel: {m: original_module(m, sources[wheel].mapping)
                for m in [*sequences.get(wheel, ()), *(m for m, _ in failures[wheel])]}
        for wheel in wheels
    }
    # In the shaded probe's order (failures not in it last), each module once.
    modules = list(dict.fromkeys(m for per in names.values() for m in per.values()))
    own = sorted({m.split(".")[0] for m in modules})
    results, crashed = probe_modules(venv, modules, own, (), work / "original.json", timeout)
    if crashed:
        reason = f"the originals' import check failed: {crashed[0].cause}"
        return Comparison(broken, {**not_compared, **dict.fromkeys(wheels, reason)})
    imports = {m for m, reason in results if reason is None}
    for wheel in wheels:
        regressions = tuple((m, r) for m, r in failures[wheel] if names[wheel][m] in imports)
        if regressions:
            broken[wheel] = regressions
    return Comparison(broken, not_compared)
