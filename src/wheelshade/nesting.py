"""Distributions installing into another one's package or namespace: nested, asked for, refused.

A namespace portion nested under a regular package (``host/ext/...`` shipped by ``host-ext``,
which imports ``host``) belongs to that package at run time: shaded apart, or left out, the
shaded ``host`` would call into a ``host.ext`` that imports the other, unshaded ``host``. In
the set, the portion moves into the host's shaded package; required but missing from the set,
it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

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
                    f"{dep.label} installs {top.name}/{portion.replace('.', '/')} inside "
                    f"{host.label}'s package {top.name!r}: shaded with it, into "
                    f"{mapping[top.name]}/{portion.replace('.', '/')}"
                )
    return tuple(notes)


def keys_inside_keys(owner: Mapping[str, WheelSummary]) -> list[str]:
    """A portion key of one wheel inside another wheel's key (``ns/host/plugin`` where
    ``ns/host`` is a regular package of another wheel): not a namespace there."""
    problems = []
    for key, dep in owner.items():
        parts = key.split(".")
        for inner in (".".join(parts[:i]) for i in range(2, len(parts))):
            if inner in owner and owner[inner] is not dep:
                problems.append(
                    f"{dep.filename} installs {key!r} inside the package {inner!r} of "
                    f"{owner[inner].filename}, which is not a namespace there"
                )
    return problems


def _unbacked(deps: Sequence[WheelSummary]) -> Iterator[tuple[WheelSummary, str, list[str]]]:
    """Per dep: the first subpackage of its own package its code imports (at module level)
    that no wheel of the set installs while it requires distributions outside the set, and
    those distributions, the conventionally named (``host-ext`` for ``host.ext``) first."""
    installed = frozenset().union(*(d.modules for d in deps))
    in_set = {d.name for d in deps}
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
        if missing and outside:
            portion = ".".join(missing[0].split(".")[:2])
            named = [str(n) for n in outside if canonicalize_name(portion.split(".")[1]) in n]
            yield dep, portion, named


def missing_portions(deps: Sequence[WheelSummary]) -> list[str]:
    """A dep importing a subpackage of its package that a distribution it requires, named
    for it, installs inside the package's tree: that one would import the unshaded
    package, so it is asked for."""
    problems = []
    for dep, portion, named in _unbacked(deps):
        if not named:
            continue
        what = (
            f"--dep {named[0]}" if len(named) == 1
            else f"--dep with the one of {', '.join(named)} that installs it"
        )
        problems.append(
            f"{dep.label} imports {portion}, which no wheel of the set installs: a "
            f"distribution it requires installs it inside {portion.split('.')[0]!r} and would "
            f"load the unshaded package; shade it in the same set: {what}"
        )
    return problems


def unclaimed_imports(deps: Sequence[WheelSummary]) -> tuple[str, ...]:
    """The same with no required distribution named for the subpackage: most often an
    import the package itself leaves broken (a stale module), said rather than refused;
    ``wheelshade verify`` shows a leak if a required distribution does install it."""
    return tuple(
        f"{dep.label} imports {portion}, which no wheel of the set installs and no "
        f"distribution it requires is named for; if one installs it inside "
        f"{portion.split('.')[0]!r}, shade that one in the same set too (--dep)"
        for dep, portion, named in _unbacked(deps) if not named
    )


def foreign_siblings(deps: Sequence[WheelSummary]) -> list[str]:
    """A namespace portion whose code reaches a module beside it that no wheel of the set
    installs by a relative import leaving the portion: shaded, the import would look inside
    the shaded namespace. Absolute imports of modules beside it (``ns.other``, or
    ``ns.sub.other`` beside ``ns.sub.portion``) keep their name: portion keys start at the
    first level that is not a namespace, so no other distribution installs below one."""
    installed = frozenset().union(*(d.modules for d in deps))
    files = frozenset().union(*(d.files for d in deps))
    hosted = set(hosts(deps))
    problems = []
    for dep in deps:
        missing = sorted(
            m.lstrip(".") for m in dep.namespace_imports
            if m.startswith(".") and m.lstrip(".").split(".")[0] not in hosted
            and _missing(m.lstrip("."), installed, files)
        )
        if not missing:
            continue
        module = missing[0]
        space = module.rpartition(".")[0]
        required = sorted({
            canonicalize_name(r.name) for r in dep.metadata.requires
            if r.marker is None or r.marker.evaluate({"extra": ""})
        })
        # Distributions of a namespace are conventionally named after it (``ns-sub-beta``).
        named = [n for n in required if n.startswith(canonicalize_name(space))] or required
        source = f" ({' or '.join(named)})" if named else ""
        problems.append(
            f"{dep.label} imports {module} by a relative import that leaves its portion, "
            f"and another distribution{source} installs it in the namespace {space!r}: "
            f"shaded, the import would look for it inside the shaded namespace, so a "
            f"portion importing another distribution's modules of its namespace cannot be "
            f"shaded"
        )
    return problems


def _missing(module: str, installed: frozenset[str], files: frozenset[str]) -> bool:
    """Not installed by the set: neither the module nor, for ``pkg.name`` of a regular
    ``pkg`` of the set, the package that may define ``name`` itself."""
    if module in installed:
        return False
    parent = module.rpartition(".")[0]
    return parent not in files
