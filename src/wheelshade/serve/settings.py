"""What ``serve`` shades: the config file's sets, with pinned deps and dependent project names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import Version

from wheelshade import __version__
from wheelshade.config import load_serve_sets
from wheelshade.errors import UsageError
from wheelshade.naming import default_suffix, set_hash, shaded_dist_name
from wheelshade.options import ShadeOptions

#: The ShadeOptions fields that change a shaded file's bytes, hence part of every cache key.
_OUTPUT_FIELDS = ("suffix", "naming", "drop", "keep_scripts", "keep_pth", "prefer_python",
                  "keep_unparsable", "load_check", "strict")


@dataclass(frozen=True)
class ServeSet:
    """One ``[[set]]``: deps pinned to one version each, and the projects rewritten against them."""

    number: int  # 1-based, as the config file counts them; part of file URLs
    label: str
    pins: tuple[tuple[NormalizedName, Version], ...]
    dependents: frozenset[NormalizedName]
    options: ShadeOptions
    #: original dep project -> shaded project name (known from the pins alone).
    shaded: dict[NormalizedName, NormalizedName]
    #: Fingerprint of everything but the input bytes that decides the output bytes.
    digest: str


def parse_pin(text: str) -> tuple[NormalizedName, Version]:
    """``name==version`` and nothing else: serve resolves each dep to one exact release."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        req = None
    specs = list(req.specifier) if req else []
    if req is None or req.url or req.extras or req.marker or len(specs) != 1 \
            or specs[0].operator != "==" or "*" in specs[0].version:
        raise UsageError(f"serve needs each dep pinned as NAME==VERSION, not {text!r}")
    return canonicalize_name(req.name), Version(specs[0].version)


def make_set(number: int, label: str, deps: tuple[str, ...], dependents: tuple[str, ...],
             options: ShadeOptions) -> ServeSet:
    if options.with_deps:
        raise UsageError(f"set {number}: with-deps is not supported by serve; list the "
                         "closure's members as NAME==VERSION deps")
    pins = tuple(sorted(parse_pin(d) for d in deps))
    names = []
    for name in dependents:
        try:
            names.append(canonicalize_name(name, validate=True))
        except InvalidName:
            raise UsageError(f"set {number}: {name!r} is not a project name (serve reads "
                             "dependents as upstream project names)") from None
    digest = set_hash(pins)
    shaded = {
        name: shaded_dist_name(name, options.suffix or default_suffix(version, digest))
        for name, version in pins
    }
    fields = {f: repr(getattr(options, f)) for f in _OUTPUT_FIELDS}
    fingerprint = json.dumps(
        {"pins": [f"{n}=={v}" for n, v in pins], "options": fields, "version": __version__},
        sort_keys=True,
    )
    return ServeSet(
        number=number,
        label=label or ", ".join(f"{n}=={v}" for n, v in pins),
        pins=pins,
        dependents=frozenset(names),
        options=options,
        shaded=shaded,
        digest=hashlib.sha256(fingerprint.encode()).hexdigest(),
    )


def load_sets(path: Path) -> list[ServeSet]:
    """Every set of a config file, checked; a problem is a UsageError naming the file."""
    sets = []
    for i, (shade_set, dependents) in enumerate(load_serve_sets(path), start=1):
        try:
            sets.append(make_set(i, shade_set.name, shade_set.deps, dependents,
                                 shade_set.options))
        except UsageError as exc:
            raise UsageError(f"{path}: {exc.message}", hint="see docs/serve.md") from None
    _check_overlaps(sets)
    return sets


def _check_overlaps(sets: list[ServeSet]) -> None:
    """A project is served one way only: shaded by one set, or rewritten by one set."""
    owner: dict[str, int] = {}
    problems = []
    for s in sets:
        for name in [*s.dependents, *s.shaded.values()]:
            if name in owner and owner[name] != s.number:
                problems.append(f"{name} belongs to sets {owner[name]} and {s.number}")
            owner[name] = s.number
        for name in s.dependents & set(s.shaded):
            problems.append(f"set {s.number}: {name} is both a dep and a dependent")
    if problems:
        raise UsageError("; ".join(problems), hint="see docs/serve.md")
