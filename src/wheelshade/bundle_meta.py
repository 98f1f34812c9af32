"""A bundle's metadata from its parts: Requires-Dist, Requires-Python, tags, licenses, SBOM."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelshade.errors import PlanError


@dataclass(frozen=True)
class Part:
    """One wheel going into a bundle, as its original metadata describes it."""

    name: str  # as spelled in METADATA
    version: str
    requires: tuple[Requirement, ...]
    requires_python: str | None
    tags: frozenset[Tag]
    sha256: str
    license_expression: str | None = None
    license_text: str | None = None
    #: Original import name -> shaded import name (empty for the host).
    mapping: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> NormalizedName:
        return canonicalize_name(self.name)

    @property
    def label(self) -> str:
        return f"{self.key} {self.version}"

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{self.key}@{self.version}"


def _substitute(items: Sequence[object], extras: frozenset[NormalizedName]) -> bool | str:
    """A parsed marker with its ``extra`` tests decided by ``extras``: True, False, or the
    rest of the marker as text (pip evaluates ``extra`` against the extras asked for)."""
    groups: list[list[bool | str]] = [[]]
    for item in items:
        if item == "or":
            groups.append([])
        elif item == "and":
            continue
        elif isinstance(item, list):
            inner = _substitute(item, extras)
            groups[-1].append(inner if isinstance(inner, bool) else f"({inner})")
        elif isinstance(item, tuple):
            lhs, op, rhs = (node.serialize() for node in item)
            if "extra" in (lhs, rhs) and op in ("==", "!="):
                value = canonicalize_name((rhs if lhs == "extra" else lhs).strip("'\""))
                groups[-1].append((value in extras) == (op == "=="))
            else:
                groups[-1].append(f"{lhs} {op} {rhs}")
    alternatives: list[str] = []
    for group in groups:
        if False in group:
            continue
        rest = [g for g in group if isinstance(g, str)]
        if not rest:
            return True
        alternatives.append(" and ".join(rest))
    return " or ".join(alternatives) if alternatives else False


def _and(a: Marker | None, b: Marker | None) -> Marker | None:
    if a is None or b is None:
        return a or b
    return a if str(a) == str(b) else Marker(f"({a}) and ({b})")


def satisfiable(spec: SpecifierSet) -> bool:
    """Whether any version meets every specifier: tried at each bound and just beside it."""
    points = {Version("0")}
    for item in spec:
        try:
            version = Version(item.version.removesuffix(".*"))
        except InvalidVersion:
            return True  # ``===`` of an arbitrary string: not ours to judge
        release = version.release
        points |= {
            version,
            Version(".".join(map(str, (*release, 0, 0, 0, 1)))),
            Version(".".join(map(str, (*release[:-1], release[-1] + 1)))),
        }
    return any(spec.contains(p, prereleases=True) for p in points)


@dataclass
class _Need:
    req: Requirement
    marker: Marker | None
    owner: str


def requires_dist(host: Part, bundled: Mapping[NormalizedName, Part]) -> list[Requirement]:
    """The bundle's Requires-Dist: the host's own minus the bundled dists, plus what the
    bundled dists require that is not bundled (extras resolved as pip does, markers kept,
    duplicates intersected). Raises PlanError when two sides need disjoint versions."""
    needs: list[_Need] = []
    # Bundled code is in the wheel whatever the host's markers say, so its plain
    # requirements always apply; an extra asked for adds its extra's requirements.
    queue: list[tuple[NormalizedName, frozenset[NormalizedName], Marker | None]] = [
        (name, frozenset(), None) for name in bundled
    ]
    for req in host.requires:
        key = canonicalize_name(req.name)
        if key in bundled:
            if req.extras:
                extras = frozenset(canonicalize_name(e) for e in req.extras)
                queue.append((key, extras, req.marker))
        else:
            needs.append(_Need(req, req.marker, host.label))
    seen: set[tuple[str, frozenset[str], str]] = set()
    while queue:
        name, extras, context = queue.pop(0)
        if (name, extras, str(context)) in seen:
            continue
        seen.add((name, extras, str(context)))
        part = bundled[name]
        for req in part.requires:
            rest = True if req.marker is None else _substitute(req.marker._markers, extras)
            if rest is False:
                continue
            marker = _and(None if rest is True else Marker(str(rest)), context)
            key = canonicalize_name(req.name)
            if key in bundled:
                asked = frozenset(canonicalize_name(e) for e in req.extras)
                if asked:
                    queue.append((key, asked, marker))
            else:
                needs.append(_Need(req, marker, part.label))
    return _merge(needs, bundled)


def _merge(needs: list[_Need], bundled: Mapping[NormalizedName, Part]) -> list[Requirement]:
    groups: dict[tuple[str, str], list[_Need]] = {}
    for need in needs:
        groups.setdefault((canonicalize_name(need.req.name), str(need.marker or "")), []).append(
            need
        )
    problems: list[str] = []
    out: list[Requirement] = []
    for (name, marker_text), group in groups.items():
        # An unconditional requirement applies alongside every conditional one.
        plain = groups.get((name, "")) if marker_text else None
        together = group + (plain or [])
        for i, a in enumerate(together):
            for b in together[i + 1 :]:
                if not satisfiable(a.req.specifier & b.req.specifier):
                    problems.append(_conflict(name, a, b, bundled))
        first = group[0].req
        new = Requirement(str(first))
        new.marker = group[0].marker
        new.extras = set().union(*(n.req.extras for n in group))
        specs = [str(n.req.specifier) for n in group if n.req.specifier]
        new.specifier = SpecifierSet(",".join(specs))
        if str(new) not in {str(r) for r in out}:
            out.append(new)
    if problems:
        raise PlanError(sorted(set(problems)), hint="nothing was written")
    return out


def _conflict(name: str, a: _Need, b: _Need, bundled: Mapping[NormalizedName, Part]) -> str:
    hosts = {str(p.label) for p in bundled.values()}
    pick = a if a.owner in hosts else b
    return (
        f"{name}: {a.owner} requires {a.req.name}{a.req.specifier or ' (any)'} but "
        f"{b.owner} requires {b.req.name}{b.req.specifier or ' (any)'}; no version meets "
        f"both (bundle it too: --dep '{name}{pick.req.specifier}'; --with-deps does it "
        "automatically)"
    )


def requires_python(parts: Sequence[Part]) -> str | None:
    """The intersection of the parts' Requires-Python; PlanError when nothing meets it."""
    specs = []
    for part in parts:
        if not part.requires_python:
            continue
        try:
            specs.append((part, SpecifierSet(part.requires_python)))
        except InvalidSpecifier:
            raise PlanError(
                [f"{part.label}: invalid Requires-Python {part.requires_python!r}"]
            ) from None
    if not specs:
        return None
    joined = SpecifierSet(",".join(str(s) for _, s in specs))
    if not satisfiable(joined):
        shown = ", ".join(f"{p.label} needs {s}" for p, s in specs)
        raise PlanError([f"no Python version meets every part of the bundle: {shown}"])
    return str(_simplest(joined))


def _simplest(spec: SpecifierSet) -> SpecifierSet:
    """The same set without what another specifier implies: of ``>=2.7,>=3.6,!=3.0.*``
    only ``>=3.6`` is left."""
    lower = [s for s in spec if s.operator in (">=", ">")]
    upper = [s for s in spec if s.operator in ("<=", "<")]
    keep = [s for s in spec if s not in lower and s not in upper]
    if lower:
        floor = max(lower, key=lambda s: (Version(s.version), s.operator == ">"))
        keep.append(floor)
        # An exclusion entirely below the floor excludes nothing the floor lets in.
        keep = [s for s in keep if s.operator != "!=" or _meets(floor, s)]
    if upper:
        keep.append(min(upper, key=lambda s: (Version(s.version), s.operator == "<=")))
    simpler = SpecifierSet(",".join(map(str, keep)))
    return simpler if str(simpler) != "" else spec


def _meets(floor: Specifier, exclusion: Specifier) -> bool:
    """Whether ``exclusion`` (``!=V`` or ``!=V.*``) may matter above ``floor``."""
    try:
        excluded = Version(exclusion.version.removesuffix(".*"))
        bound = Version(floor.version)
    except InvalidVersion:
        return True
    return excluded.release[: len(bound.release)] >= bound.release[: len(excluded.release)]


def license_expression(parts: Sequence[Part]) -> tuple[str | None, str | None]:
    """The combined SPDX expression (AND of every part's), or None and why not."""
    exprs = []
    for part in parts:
        if not part.license_expression:
            return None, f"{part.label} declares no License-Expression"
        try:
            exprs.append(canonicalize_license_expression(part.license_expression))
        except InvalidLicenseExpression:
            return None, f"{part.label}'s License-Expression is not valid SPDX"
    unique = list(dict.fromkeys(exprs))
    if len(unique) == 1:
        return unique[0], None
    return " AND ".join(f"({e})" if " OR " in e else e for e in unique), None


def sbom(host: Part, bundled: Sequence[Part], tool_version: str) -> bytes:
    """A CycloneDX 1.6 SBOM (PEP 770) listing every bundled component; deterministic."""

    def component(part: Part, with_hash: bool) -> dict[str, object]:
        doc: dict[str, object] = {
            "type": "library",
            "bom-ref": part.purl,
            "name": part.name,
            "version": part.version,
            "purl": part.purl,
        }
        if with_hash:
            doc["hashes"] = [{"alg": "SHA-256", "content": part.sha256}]
        if part.license_expression:
            doc["licenses"] = [{"expression": part.license_expression}]
        elif part.license_text and len(part.license_text) <= 80:
            doc["licenses"] = [{"license": {"name": part.license_text}}]
        if part.mapping:
            doc["properties"] = [
                {"name": "wheelshade:shaded-as", "value": f"{k}={v}"}
                for k, v in sorted(part.mapping.items())
            ]
        return doc

    refs = [p.purl for p in bundled]
    serial = uuid.uuid5(uuid.NAMESPACE_URL, "wheelshade:" + ",".join([host.purl, *refs]))
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "tools": {
                "components": [
                    {"type": "application", "name": "wheelshade", "version": tool_version}
                ]
            },
            "component": component(host, False),
        },
        "components": [component(p, True) for p in bundled],
        "dependencies": [{"ref": host.purl, "dependsOn": refs}],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def provenance(
    host: Part, bundled: Sequence[Part], modules: Mapping[NormalizedName, str], tool_version: str
) -> bytes:
    """``wheelshade.json`` of a bundle: the host, every bundled part, and the union of the
    renames (``mapping``, what ``wheelshade verify`` checks)."""
    mapping = {k: v for p in bundled for k, v in p.mapping.items()}
    doc = {
        "schema": 1,
        "tool": {"name": "wheelshade", "version": tool_version},
        "original": {"name": host.name, "version": host.version, "sha256": host.sha256},
        "distribution": host.key,
        "mapping": dict(sorted(mapping.items())),
        "shading_set": {p.key: p.version for p in bundled},
        "bundled": [
            {
                "name": p.name,
                "version": p.version,
                "sha256": p.sha256,
                "mapping": dict(sorted(p.mapping.items())),
                "metadata_module": modules.get(p.key),
            }
            for p in bundled
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
