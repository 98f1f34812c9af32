"""Names bound at module level in each module of the shaded wheels: the evidence that a
string ``"pkg.mod.Name"`` refers to something ``pkg.mod`` defines.

A line scan, not a parse: planning reads every source of the set once (sympy's 1,500
modules), and the stdlib parser would cost seconds there. A statement at column 0 (or at
the first indentation of a top-level ``if``/``try``/``with`` block) that binds a name
(``def``, ``class``, an assignment, an import) counts, and so do the strings of ``__all__``.
A plain ``import json`` counts only in a submodule: in a top-level package a string
``"pkg.json"`` is far more often a file named after the package than that binding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from wheelshade.proof import ModuleProof
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import (
    SOURCE_SUFFIXES,
    in_site_packages,
    locate,
    module_name_of_file,
)
from wheelshade.wheel.summary import WheelSummary

_DEF = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)")
_ASSIGN = re.compile(r"(\w+(?:\s*,\s*\w+)*)\s*(?::[^=\n]*)?=(?!=)")
_STAR = re.compile(r"from\s+(\.*[\w.]*)\s+import\s+\*")
_FROM = re.compile(r"from\s+[\w.]+\s+import\s+(\([^)]*\)|(?:[^\n#;\\]|\\\n)*)")
_IMPORT_AS = re.compile(r"import\s+[\w.]+\s+as\s+(\w+)")
_IMPORT = re.compile(r"import\s+(\w+)")
_ALIAS = re.compile(r"(\w+)(?:\s+as\s+(\w+))?")
_ALL = re.compile(r"^__all__\s*(?:\+?=|\.extend\(|:[^=\n]*=)\s*[\[(]([^\])]*)", re.M)
_QUOTED = re.compile(r"['\"](\w+)['\"]")
#: A name the code registers in a process-wide registry (``codecs.register_error(
#: "pkg.url_quote", handler)``, then ``b.decode(c, "pkg.url_quote")``). Two copies of the
#: package register the same name and the last one wins, so the name is the package's own:
#: renamed with it everywhere, as if ``pkg`` bound ``url_quote``.
_REGISTERED = re.compile(r"\bregister_error\(\s*(['\"])(\w+(?:\.\w+)+)\1")
#: Marks ``from X import *`` in a module's names: X's names are its names too.
_STAR_MARK = "*"
#: Marks a plain ``import json``: a name of a submodule, but not of a top-level package,
#: where ``"pkg.json"`` is far more often a file named after the package.
_PLAIN_MARK = "^"
_BLOCK = r"(?:if|elif|else|try|except|finally|with)\b"
#: A column-0 statement that can bind a name, or opens a block whose body can.
_TOP = re.compile(
    rf"^(?:(?:async\s+)?(?:def|class)\s|from\s|import\s"
    rf"|[A-Za-z_][\w, \t]*(?::[^=\n]*)?=(?!=)|({_BLOCK}))",
    re.M,
)
_COL0 = re.compile(r"^[^ \t\n#]", re.M)
_INDENT = re.compile(r"\n([ \t]+)[^ \t\n#]")


def bound_names(text: str) -> frozenset[str]:
    """The names a module's source binds at module level (see the module docstring)."""
    found: set[str] = set()
    for match in _TOP.finditer(text):
        if match.group(1) is None:
            _bind(text, match.start(), found)
            continue
        end = _COL0.search(text, match.end())
        block = text[match.start() : end.start() if end else len(text)]
        body = _INDENT.search(block)
        if body is not None:
            line = re.compile(rf"^{re.escape(body.group(1))}(?=[^ \t\n#])", re.M)
            for statement in line.finditer(block):
                _bind(block, statement.end(), found)
    for match in _ALL.finditer(text):
        found.update(_QUOTED.findall(match.group(1)))
    return frozenset(found)


def _bind(text: str, pos: int, found: set[str]) -> None:
    if match := _STAR.match(text, pos):
        found.add(_STAR_MARK + match.group(1))  # resolved against the set later
    elif match := _DEF.match(text, pos):
        found.add(match.group(1))
    elif match := _FROM.match(text, pos):
        names = re.sub(r"#[^\n]*|\\\n", " ", match.group(1)).strip("() \t")
        for alias in _ALIAS.finditer(names):
            found.add(alias.group(2) or alias.group(1))
    elif match := _IMPORT_AS.match(text, pos):
        found.add(match.group(1))
    elif match := _IMPORT.match(text, pos):
        found.add(_PLAIN_MARK + match.group(1))
    elif match := _ASSIGN.match(text, pos):
        found.update(n.strip() for n in match.group(1).split(","))


def wheel_attributes(reader: WheelReader) -> dict[str, frozenset[str]]:
    """Module name -> the names its ``.py`` and ``.pyi`` sources bind at module level."""
    data_dir = reader.dist_info[: -len(".dist-info")] + ".data"
    found: dict[str, set[str]] = {}
    for member in reader.members:
        name = member.name
        if not name.endswith(SOURCE_SUFFIXES) or name.startswith(reader.dist_info + "/"):
            continue
        loc = locate(name, data_dir)
        if not in_site_packages(loc):
            continue
        *dirs, filename = loc.path.split("/")
        module = module_name_of_file(filename)
        if module is None or not all(d.isidentifier() for d in dirs):
            continue
        dotted = ".".join(dirs if module == "__init__" else [*dirs, module])
        package = dotted if module == "__init__" else dotted.rpartition(".")[0]
        text = reader.read(name).decode("utf-8", "replace")
        found.setdefault(dotted, set()).update(
            _STAR_MARK + _absolute(n[1:], package) if n.startswith(_STAR_MARK) else n
            for n in bound_names(text)
        )
        for match in _REGISTERED.finditer(text) if "register_error" in text else ():
            owner, _, registered = match.group(2).rpartition(".")
            found.setdefault(owner, set()).add(registered)
    return {module: frozenset(names) for module, names in found.items()}


def _absolute(target: str, package: str) -> str:
    """``from .x import *`` in ``package`` -> ``package.x``."""
    level = len(target) - len(target.lstrip("."))
    if not level:
        return target
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    rest = target[level:]
    return ".".join([*base, rest] if rest else base)


@functools.lru_cache(maxsize=64)
def _cached(path: Path, sha256: str) -> Mapping[str, frozenset[str]]:
    with WheelReader(path) as reader:
        return wheel_attributes(reader)


def set_attributes(wheels: Iterable[tuple[Path, str]]) -> Mapping[str, frozenset[str]]:
    """``wheel_attributes`` over a shading set's wheels (path, sha256), read once per run
    (the plan, the string rules and each wheel's writer ask for the same set)."""
    return _set_cached(tuple(sorted(set(wheels))))


@functools.lru_cache(maxsize=8)
def _set_cached(wheels: tuple[tuple[Path, str], ...]) -> Mapping[str, frozenset[str]]:
    merged: dict[str, frozenset[str]] = {}
    for path, sha256 in wheels:
        for module, names in _cached(path, sha256).items():
            merged[module] = merged.get(module, frozenset()) | names
    resolved: dict[str, frozenset[str]] = {}
    for module in merged:
        known = _resolve(module, merged, set())
        if known is not None:
            resolved[module] = known
    return resolved


def set_proof(deps: Sequence[WheelSummary]) -> ModuleProof:
    """The evidence a shading set's deps give for the strings of its compiled files."""
    return ModuleProof(
        frozenset().union(*(d.modules for d in deps)),
        set_attributes((d.path, d.sha256) for d in deps),
        frozenset().union(*(d.extensions for d in deps)),
    )


def _resolve(
    module: str, merged: Mapping[str, frozenset[str]], seen: set[str]
) -> frozenset[str] | None:
    """A module's names with its star imports followed; None when they cannot be known."""
    names = merged.get(module)
    if names is None or "__getattr__" in names:
        return None
    if module in seen:
        return frozenset()
    seen.add(module)
    out = {n for n in names if not n.startswith((_STAR_MARK, _PLAIN_MARK))}
    if "." in module:
        out.update(n[1:] for n in names if n.startswith(_PLAIN_MARK))
    for star in (n for n in names if n.startswith(_STAR_MARK)):
        inner = _resolve(star[1:], merged, seen)
        if inner is None:
            return None
        out |= inner
    return frozenset(out)
