"""Whether a shading set can be shaded as given: one release per distribution, one owner
per module, every requirement between its wheels met, a module in every dep."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.utils import NormalizedName, canonicalize_name

from wheelshade.nesting import foreign_siblings, hosts, keys_inside_keys, missing_portions
from wheelshade.wheel.layout import TopKind
from wheelshade.wheel.summary import WheelSummary


def check_set(deps: Sequence[WheelSummary], dependents: Sequence[WheelSummary]) -> list[str]:
    """Every reason the set cannot be shaded as given, one line each."""
    problems: list[str] = []
    seen: dict[NormalizedName, WheelSummary] = {}
    owner: dict[str, WheelSummary] = {}
    for dep in deps:
        if dep.name in seen:
            problems.append(
                f"{dep.name} is given twice as a dep ({seen[dep.name].filename} and "
                f"{dep.filename}); a shading set holds one version of each distribution"
            )
            continue
        seen[dep.name] = dep
        if not dep.top_levels:
            problems.extend(_no_module(dep, deps))
        for key in dep.import_keys():
            if key in owner:
                what = "namespace portion" if "." in key else "top-level module"
                problems.append(
                    f"{dep.filename} and {owner[key].filename} both install the {what} {key!r}"
                )
            owner[key] = dep
        namespaces = {t.name for t in dep.top_levels if t.kind is TopKind.NAMESPACE}
        plain = {k for k in owner if "." not in k} - set(hosts(deps))
        for name in sorted(namespaces & plain):
            problems.append(
                f"{dep.filename} installs a portion of the namespace package {name!r}, which "
                f"{owner[name].filename} installs as a regular package"
            )
    problems.extend(keys_inside_keys(owner))
    problems.extend(missing_portions(deps))
    problems.extend(foreign_siblings(deps))
    for dependent in dependents:
        if dependent.name in seen:
            problems.append(
                f"{dependent.filename} is given both as a dependent and as a --dep "
                f"({seen[dependent.name].filename})"
            )
    for wheel in (*deps, *dependents):
        for req in wheel.metadata.requires:
            pinned = seen.get(canonicalize_name(req.name))
            if pinned is None or pinned is wheel:
                continue
            if not req.specifier.contains(pinned.metadata.version, prereleases=True):
                problems.append(
                    f"{wheel.label} requires {req} but the shading set has "
                    f"{pinned.name} {pinned.metadata.version}"
                )
    return problems


def _no_module(dep: WheelSummary, deps: Sequence[WheelSummary]) -> list[str]:
    """A dep that installs no module: fine when it holds only stubs for packages of the
    set (PEP 561 ``pkg-stubs``, renamed with them), or beside the distributions it pins
    exactly (a
    metapackage whose modules another distribution of the same release installs: both are
    shaded, its ``Requires-Dist`` then names the shaded one); otherwise refused, naming
    those it pins so they can be added."""
    if dep.stub_packages:
        keys = {k for d in deps for k in d.import_keys()}
        missing = [p for p in dep.stub_packages if p not in keys]
        if not missing:
            return []
        return [
            f"{dep.filename}: installs only type stubs, for {', '.join(map(repr, missing))}, "
            "which no wheel of the set installs: stubs take the shaded name of the package "
            "they describe, so add the distribution that installs it with --dep"
        ]
    names = {d.name for d in deps}
    pinned = sorted({
        canonicalize_name(r.name) for r in dep.metadata.requires
        if r.marker is None and any(s.operator in ("==", "===") for s in r.specifier)
    })
    if not pinned:
        return [f"{dep.filename}: installs no importable module, nothing to shade"]
    if set(pinned) & names:
        return []
    return [
        f"{dep.filename}: installs no importable module: it is a metapackage whose modules "
        f"come from {', '.join(pinned)}, which it pins exactly; shade it in the same set: "
        + " ".join(f"--dep {n}" for n in pinned)
    ]
