"""Distributions that install inside another one's package: shaded with it, or asked for.

A namespace portion nested under a regular package (``host/ext/...`` shipped by ``host-ext``,
which imports ``host``) belongs to that package at run time: shaded apart, or left out, the
shaded ``host`` would call into a ``host.ext`` that imports the other, unshaded ``host``. In
the set, the portion moves into the host's shaded package; required but missing from the set,
it is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.utils import canonicalize_name

from wheelshade.wheel.layout import TopKind
from wheelshade.wheel.summary import WheelSummary


def hosts(deps: Sequence[WheelSummary]) -> dict[str, WheelSummary]:
    """Regular packages of the deps by name: where another dep's portion may nest."""
    return {t.name: dep for dep in deps for t in dep.top_levels if t.kind is TopKind.PACKAGE}


def nested_notes(deps: Sequence[WheelSummary], mapping: Mapping[str, str]) -> tuple[str, ...]:
    """One line per dep whose portion nests in another dep's package and moved with it."""
    by_name = hosts(deps)
    notes = []
    for dep in deps:
        for top in dep.top_levels:
            host = by_name.get(top.name)
            if top.kind is not TopKind.NAMESPACE or host is None:
                continue
            for portion in dep.portions(top.name):
                notes.append(
                    f"{dep.label} installs {top.name}/{portion} inside {host.label}'s package "
                    f"{top.name!r}: shaded with it, into {mapping[top.name]}/{portion}"
                )
    return tuple(notes)


def missing_portions(deps: Sequence[WheelSummary]) -> list[str]:
    """A dep whose own code imports (at module level) a subpackage of its package that no
    wheel of the set installs, while it requires distributions outside the set: one of
    them installs it inside the package's tree and would import the unshaded package."""
    installed = frozenset().union(*(d.modules for d in deps))
    in_set = {d.name for d in deps}
    problems = []
    for dep in deps:
        regular = {t.name for t in dep.top_levels if t.kind is TopKind.PACKAGE}
        missing = sorted(
            m for m in dep.own_imports
            if m.split(".")[0] in regular and ".".join(m.split(".")[:2]) not in installed
        )
        outside = sorted({
            canonicalize_name(r.name) for r in dep.metadata.requires
            if canonicalize_name(r.name) not in in_set
            and (r.marker is None or r.marker.evaluate({"extra": ""}))
        })
        if not missing or not outside:
            continue
        portion = ".".join(missing[0].split(".")[:2])
        named = [n for n in outside if canonicalize_name(portion.split(".")[1]) in n]
        candidates = named if len(named) == 1 else outside
        what = (
            f"--dep {candidates[0]}" if len(candidates) == 1
            else f"--dep with the one of {', '.join(candidates)} that installs it"
        )
        problems.append(
            f"{dep.label} imports {portion}, which no wheel of the set installs: a "
            f"distribution it requires installs it inside {portion.split('.')[0]!r} and would "
            f"load the unshaded package; shade it in the same set: {what}"
        )
    return problems
