"""``--with-deps``: turn the user's deps into the full shading set, with a reason per member."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelshade.errors import UsageError
from wheelshade.resolve.cutoff import check_cutoff
from wheelshade.resolve.fetch import IndexOptions, Pin, Target
from wheelshade.resolve.resolver import (
    Decision,
    decide,
    read_requirements_file,
    resolve_closure,
    target_from_environment,
    target_from_requirements,
)
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.metadata import read_metadata


@dataclass(frozen=True)
class ClosureOptions:
    #: Requirements the target environment is built from (``--target-requirements``).
    target_requirements: Path | None = None
    #: An interpreter whose installed distributions are the target (``--target-env``).
    target_env: str | None = None
    #: pip's ``--uploaded-prior-to`` for the closure (an ISO 8601 date).
    uploaded_prior_to: str | None = None
    python: str = sys.executable


def _dep_requirement(dep: str | Path | Pin) -> tuple[str, Requirement | None]:
    """The string pip resolves for a --dep, and the requirement it constrains (if any)."""
    if isinstance(dep, Pin):
        return str(dep), Requirement(str(dep))
    text = str(dep)
    if text.endswith(".whl"):
        if not Path(text).is_file():
            raise UsageError(f"--dep {text}: no such wheel file")
        return str(Path(text).resolve()), None
    try:
        return text, Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"--dep {text!r}: not a requirement ({exc})") from None


def _dependents_requirements(dependents: Sequence[Path], skip: set[NormalizedName]) -> list[str]:
    """The dependents' own requirements other than the deps being shaded."""
    reqs: list[str] = []
    for path in dependents:
        with WheelReader(path) as reader:
            meta = read_metadata(
                reader.read(f"{reader.dist_info}/METADATA"), where=f"{path}/METADATA"
            )
        for req in meta.requires:
            if canonicalize_name(req.name) in skip:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                reqs.append(str(req))
    return reqs


def _exact(requirements: Sequence[Requirement]) -> set[NormalizedName]:
    """The names a requirement pins to one version (``flask==0.12.4``)."""
    return {
        canonicalize_name(r.name)
        for r in requirements
        if any(s.operator in ("==", "===") and "*" not in s.version for s in r.specifier)
    }


def expand(
    deps: Sequence[str | Path | Pin],
    dependents: Sequence[Path],
    *,
    index: IndexOptions,
    options: ClosureOptions,
    platform: Target | None = None,
) -> tuple[list[str | Path | Pin], tuple[Decision, ...]]:
    """The shading set for ``--with-deps``: each member to shade, and every decision made."""
    texts: list[str] = []
    constraints: list[Requirement] = []
    wheels: dict[NormalizedName, Path] = {}
    for dep in deps:
        text, req = _dep_requirement(dep)
        texts.append(text)
        if req is not None:
            constraints.append(req)
        elif text.endswith(".whl"):
            wheels[canonicalize_name(Path(text).name.split("-")[0])] = Path(text)
    closure = resolve_closure(
        texts,
        index=index,
        uploaded_prior_to=options.uploaded_prior_to,
        python=options.python,
        target=platform,
    )
    if options.uploaded_prior_to:
        check_cutoff(closure, options.uploaded_prior_to, {*wheels, *_exact(constraints)})
    explicit = options.target_env is not None or options.target_requirements is not None
    target: dict[NormalizedName, Version]
    if options.target_env is not None:
        target = target_from_environment(options.target_env)
    elif options.target_requirements is not None:
        target = target_from_requirements(
            read_requirements_file(options.target_requirements),
            index=index,
            python=options.python,
            target=platform,
        )
    else:
        requested = {m.name for m in closure if m.requested}
        target = target_from_requirements(
            _dependents_requirements(dependents, requested),
            index=index,
            python=options.python,
            target=platform,
        )
    decisions = tuple(
        decide(
            closure,
            target,
            constraints=constraints,
            cutoff=options.uploaded_prior_to is not None,
            target_known=explicit,
        )
    )
    chosen: list[str | Path | Pin] = [
        wheels.get(d.name) or Pin(d.name, d.version) for d in decisions if d.shade
    ]
    return chosen, decisions
