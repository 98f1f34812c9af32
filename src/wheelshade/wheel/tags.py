"""The tag of a wheel merged from several: where every part installs, said as specifically."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from packaging.tags import Tag

from wheelshade.errors import PlanError

_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_VERSIONED = re.compile(r"(manylinux|musllinux|macosx)_(\d+)_(\d+)_(.+)")
_LEGACY_TAG = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(.+)")
_CPYTHON = re.compile(r"cp(\d)(\d+)")

#: (kind, architecture) -> the lowest version of that kind a part's tags accept.
_Platforms = dict[tuple[str, str], tuple[int, ...]]


def is_pure(tags: Iterable[Tag]) -> bool:
    return all(t.abi == "none" and t.platform == "any" for t in tags)


def _platform(tag: str) -> tuple[str, str, tuple[int, ...]]:
    if match := _VERSIONED.fullmatch(tag):
        return match[1], match[4], (int(match[2]), int(match[3]))
    if match := _LEGACY_TAG.fullmatch(tag):
        return "manylinux", match[2], _LEGACY[match[1]]
    if tag.startswith("linux_"):
        return "linux", tag[len("linux_") :], ()
    return tag, "", ()


def _platforms(tags: Iterable[Tag]) -> _Platforms:
    found: _Platforms = {}
    for tag in tags:
        kind, arch, version = _platform(tag.platform)
        key = (kind, arch)
        found[key] = min(found.get(key, version), version)
        if kind in ("manylinux", "musllinux"):
            # A plain linux_<arch> wheel is what every Linux accepts: the weakest claim.
            found[("linux", arch)] = ()
    return found


def _spell(kind: str, arch: str, version: tuple[int, ...]) -> str:
    if not arch:
        return kind
    return f"{kind}_{'_'.join(map(str, version))}_{arch}" if version else f"{kind}_{arch}"


def _cpython(interpreter: str) -> tuple[int, int] | None:
    match = _CPYTHON.fullmatch(interpreter)
    return (int(match[1]), int(match[2])) if match else None


def _covers(pairs: set[tuple[str, str]], want: tuple[str, str]) -> bool:
    """Whether a part built for ``pairs`` loads where ``want`` (interpreter, abi) does."""
    if want in pairs:
        return True
    version = _cpython(want[0])
    for interpreter, abi in pairs:
        built = _cpython(interpreter)
        if abi == "abi3" and built and version and built[0] == version[0] and built <= version:
            return True
    return False


def merged_tag(parts: Sequence[tuple[str, frozenset[Tag]]]) -> tuple[str, bool]:
    """The compressed tag (``py3-none-any``) of a wheel holding every part, and whether it
    is pure Python. ``parts`` are (label, tags) pairs.

    Compiled parts decide: the bundle loads where all of them do (the highest manylinux
    version any of them needs; ``cp311`` over ``abi3``); parts built for different platforms
    or interpreters are refused. Pure parts keep the Python tags they all share.
    """
    compiled = [(label, tags) for label, tags in parts if not is_pure(tags)]
    if not compiled:
        shared = set.intersection(*({t.interpreter for t in tags} for _, tags in parts))
        if not shared:
            shown = ", ".join(f"{label} ({_show(tags)})" for label, tags in parts)
            raise PlanError([f"the parts share no Python tag: {shown}"])
        return ".".join(sorted(shared)) + "-none-any", True
    merged = _compiled(compiled)
    if merged is None:
        first = compiled[0]
        other = next((c for c in compiled[1:] if _compiled([first, c]) is None), compiled[-1])
        raise PlanError(
            [f"{first[0]} is built for {_show(first[1])} but {other[0]} for {_show(other[1])}; "
             "a bundle has one platform and interpreter"],
            hint="bundle wheels built for the same platform",
        )
    return merged, False


def _compiled(parts: Sequence[tuple[str, frozenset[Tag]]]) -> str | None:
    pairs = [{(t.interpreter, t.abi) for t in tags} for _, tags in parts]
    loads = [p for p in sorted(set().union(*pairs)) if all(_covers(s, p) for s in pairs)]
    # The most specific: a version-specific ABI over abi3, then the newest interpreter.
    loads.sort(key=lambda p: (p[1] != "abi3", _cpython(p[0]) or (0, 0)), reverse=True)
    platforms = [_platforms(tags) for _, tags in parts]
    common = set.intersection(*(set(p) for p in platforms))
    specific = {k for k in common if k[0] != "linux" or not any(
        o[1] == k[1] and o[0] != "linux" for o in common)}
    if not loads or not specific:
        return None
    interpreter, abi = loads[0]
    tags = sorted(_spell(*k, max(p[k] for p in platforms)) for k in specific)
    return f"{interpreter}-{abi}-{'.'.join(tags)}"


def _show(tags: frozenset[Tag]) -> str:
    return ".".join(sorted({f"{t.interpreter}-{t.abi}-{t.platform}" for t in tags})[:3])
