"""Evidence across the modules of a shading set: a bare package name that a helper compares
with its parameter, where callers elsewhere in the set pass that parameter module paths.

``def data_file(dir_comps, name): if dir_comps[0] != "pkg": raise ...`` in one module,
``load("pkg.sub._raw")`` in another, with ``load`` handing ``path.split(".")[:-1]`` on: the
module path is renamed with the package, so the ``"pkg"`` it is checked against must be
too. No single file shows it, so it is found once per set before any file is rewritten. A
source is parsed only when its text quotes a bare package name (a check) or names a helper
found so far (a call site). Conservative: only ``==``, ``!=``, ``in`` against a value drawn
from a parameter (``p``, ``p[0]``, ``p.split(".")``, a slice), proven only by literal module
paths of the set whose first part is the name, and never when a call site passes a literal
under that name that is no module of the set (it keeps its name, the check must too).
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from wheelshade.rewrite.evidence import target_names
from wheelshade.rewrite.names import ImportAliases, aliases_from_ast, qualified
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import in_site_packages, locate, module_name_of_file

#: Module -> 0-based line -> the bare names on it shown to be module names.
Checked = Mapping[str, Mapping[int, frozenset[str]]]

#: How a value is drawn from a parameter besides subscripts and slices.
_PARTS = frozenset({"split", "rsplit", "partition", "rpartition", "strip"})
_COMPARE = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)
#: Rounds of call sites: the checking function's callers, then those of up to three
#: functions in a row that hand a part of their own parameter on.
_HOPS = 4
_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class _Source:
    module: str
    package: str | None
    text: str


@dataclass(frozen=True)
class _Sink:
    """A parameter of a module-level function whose value reaches checks (``roots``)."""

    module: str
    function: str
    index: int | None  # position at a call; None for keyword-only
    param: str
    roots: frozenset[int]


@dataclass(frozen=True)
class _Root:
    """A bare name compared with a parameter's value: module, 0-based line, the name."""

    module: str
    line: int
    name: str


@functools.lru_cache(maxsize=16)
def set_checks(
    wheels: tuple[tuple[Path, str], ...], tops: frozenset[str], modules: frozenset[str]
) -> Checked:
    """The checked bare names of the set's wheels (path, sha256) that its module paths prove
    (see the module docstring); ``tops`` are the set's top-level names, ``modules`` every
    module it installs."""
    names = sorted(t for t in tops if t.isidentifier())
    if not names:
        return {}
    quoted = "['\"](?:" + "|".join(map(re.escape, names)) + ")['\"]"
    # A quoted bare name right after ``==``/``!=``/``in`` (in a tuple too) or right before one.
    compared = re.compile(rf"(?:[!=]=|\bin)\s*[(\[{{]?[^\n)\]}}]*{quoted}"
                          rf"|{quoted}\s*(?:[!=]=|(?:not\s+)?in\b)")
    roots: list[_Root] = []
    frontier: list[_Sink] = []
    plain = [q + n + q for n in names for q in "'\""]  # a cheap test first: few files quote one
    for source in _sources(wheels):
        if any(p in source.text for p in plain) and compared.search(source.text) and (
            tree := _parse(source.text)
        ) is not None:
            for node in _statements(source.text, tree, plain):
                if isinstance(node, _Function):
                    frontier.extend(_checks(source.module, node, frozenset(names), roots))
    proven: set[int] = set()
    passed: dict[int, set[_Root]] = {}  # root -> the literals call sites pass for it
    seen: dict[tuple[str, str, str], frozenset[int]] = {}
    for _ in range(_HOPS):
        if not frontier:
            break
        by_name: dict[str, list[_Sink]] = {}
        for sink in frontier:
            by_name.setdefault(sink.function, []).append(sink)
        called = [f + "(" for f in by_name]
        homes = {sink.module for sink in frontier}
        tails = {h.rpartition(".")[2] for h in homes}
        found: list[_Sink] = []
        # Read again rather than held: a large set's sources take hundreds of megabytes,
        # and most sets stop before this loop (no check) or after one round.
        for source in _sources(wheels):
            # A call names the function, and its module unless it is the module itself
            # (substring tests: a regex over every source of a large set costs seconds).
            text = source.text
            if not any(c in text for c in called) or not (
                source.module in homes or any(t in text for t in tails)
            ) or (tree := _parse(text)) is None:
                continue
            calls = _Calls(source, tree, by_name, roots, modules)
            calls.run(called)
            proven |= calls.proven
            for index, literals in calls.passed.items():
                passed.setdefault(index, set()).update(literals)
            found.extend(calls.relays)
        frontier = []
        for sink in found:
            key = (sink.module, sink.function, sink.param)
            if not sink.roots <= seen.get(key, frozenset()):
                seen[key] = seen.get(key, frozenset()) | sink.roots
                frontier.append(sink)
    out: dict[str, dict[int, set[str]]] = {}
    for index in sorted(proven):
        # The name checked, and every literal passed for it: renamed together, they agree
        # (one that names no module of this copy, an optional part, still reaches the check).
        for root in (roots[index], *passed.get(index, ())):
            out.setdefault(root.module, {}).setdefault(root.line, set()).add(root.name)
    return {m: {line: frozenset(v) for line, v in lines.items()} for m, lines in out.items()}


def _checks(
    module: str, function: _Function, names: frozenset[str], roots: list[_Root]
) -> list[_Sink]:
    """The parameters of ``function`` whose values are compared with a bare name."""
    flow = _Flow(function)
    reached: dict[str, set[int]] = {}
    for node in ast.walk(function):
        if not (isinstance(node, ast.Compare) and all(isinstance(o, _COMPARE) for o in node.ops)):
            continue
        operands = [node.left, *node.comparators]
        origins = {o for o in (flow.origin(o) for o in operands) if o is not None}
        if len(origins) != 1:
            continue
        (param,) = origins
        for operand in operands:
            items = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [
                operand]
            for item in items:
                if isinstance(item, ast.Constant) and item.value in names:
                    reached.setdefault(param, set()).add(len(roots))
                    roots.append(_Root(module, item.lineno - 1, item.value))
    return [_Sink(module, function.name, _position(function, p), p, frozenset(r))
            for p, r in reached.items()]


class _Calls:
    """The calls of one source to the helpers sought: literal module paths at them prove
    the helpers' checks; a caller's own parameter handed on makes the caller a helper."""

    def __init__(self, source: _Source, tree: ast.Module, sinks: Mapping[str, list[_Sink]],
                 roots: list[_Root], modules: frozenset[str]) -> None:
        self.source = source
        self.tree = tree
        self.sinks = sinks
        self.roots = roots
        self.modules = modules
        self.aliases: ImportAliases = aliases_from_ast(tree, source.package)
        self.proven: set[int] = set()
        self.passed: dict[int, set[_Root]] = {}
        self.relays: list[_Sink] = []

    def run(self, called: list[str]) -> None:
        for statement in _statements(self.source.text, self.tree, called):
            caller = statement if isinstance(statement, _Function) else None
            flow = _Flow(caller) if caller is not None else None
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    self._call(node, caller, flow)

    def _call(self, call: ast.Call, caller: _Function | None, flow: _Flow | None) -> None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        for sink in self.sinks.get(name or "", []):
            if not self._resolves(func, sink):
                continue
            arg = _argument(call, sink)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._weigh(arg.value, sink.roots, arg.lineno - 1)
            elif arg is not None and caller is not None and flow is not None and (
                param := flow.origin(arg)) is not None:
                self.relays.append(_Sink(self.source.module, caller.name,
                                         _position(caller, param), param, sink.roots))

    def _resolves(self, func: ast.expr, sink: _Sink) -> bool:
        if f"{sink.module}.{sink.function}" in qualified(func, self.aliases):
            return True
        return (isinstance(func, ast.Name) and self.source.module == sink.module
                and func.id not in self.aliases.names)

    def _weigh(self, value: str, roots: frozenset[int], line: int) -> None:
        for index in roots:
            if value.partition(".")[0] != self.roots[index].name:
                continue  # another package's path: the check rejects it either way
            self.passed.setdefault(index, set()).add(_Root(self.source.module, line, value))
            if "." in value and value in self.modules:
                self.proven.add(index)


def _argument(call: ast.Call, sink: _Sink) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == sink.param:
            return keyword.value
    index = sink.index
    if index is None or index >= len(call.args) or any(
        isinstance(a, ast.Starred) for a in call.args[: index + 1]
    ):
        return None
    return call.args[index]


def _position(function: _Function, param: str) -> int | None:
    positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    return positional.index(param) if param in positional else None


class _Flow:
    """Which local names of a function hold a value drawn from one of its parameters."""

    def __init__(self, function: _Function) -> None:
        args = function.args
        self.derived = {a.arg: a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        #: Name -> the first line giving it a value not drawn from a parameter; read after
        #: that, which value it holds is unknown (``p = list(p[1:])`` after the check is fine).
        self.given: dict[str, int] = {}
        pairs: list[tuple[str, ast.AST | None, int]] = []
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    pairs.extend(_pairs(target, node.value))
            elif isinstance(node, ast.AugAssign | ast.For | ast.AsyncFor | ast.comprehension):
                pairs.extend((n, None, node.target.lineno) for n in target_names(node.target))
        for _ in range(2):  # a name drawn from one assigned later in the walk
            for name, value, _line in pairs:
                origin = None if value is None else self.origin(value)
                if origin is not None:
                    self.derived.setdefault(name, origin)
        for name, value, line in pairs:
            if value is None or self.origin(value) is None:
                self.given[name] = min(line, self.given.get(name, line))

    def origin(self, node: ast.AST) -> str | None:
        """The parameter a value is drawn from: ``p``, ``p[0]``, ``p[:-1]``, ``p.split(".")``."""
        while True:
            if isinstance(node, ast.Name):
                if self.given.get(node.id, node.lineno) < node.lineno:
                    return None
                return self.derived.get(node.id)
            if isinstance(node, ast.Subscript):
                node = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in _PARTS):
                node = node.func.value
            else:
                return None


def _pairs(target: ast.expr, value: ast.AST) -> list[tuple[str, ast.AST | None, int]]:
    """``a, b = x[:-1], x[-1]`` pairs each name with its own value."""
    if isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List) and (
        len(target.elts) == len(value.elts)
    ):
        return [p for t, v in zip(target.elts, value.elts, strict=True) for p in _pairs(t, v)]
    names = target_names(target)
    return [(n, value, target.lineno) for n in names]


def _statements(text: str, tree: ast.Module, words: list[str]) -> Iterator[ast.stmt]:
    """The top-level statements whose text has one of ``words``: walking all costs seconds."""
    lines = text.splitlines()
    for statement in tree.body:
        segment = "\n".join(lines[statement.lineno - 1 : statement.end_lineno])
        if any(w in segment for w in words):
            yield statement


def _parse(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None  # Python 2 sources and the like: no evidence from them


def _sources(wheels: tuple[tuple[Path, str], ...]) -> Iterator[_Source]:
    """The ``.py`` sources the wheels install into site-packages, with their module names."""
    for path, _ in wheels:
        with WheelReader(path) as reader:
            data_dir = reader.dist_info[: -len(".dist-info")] + ".data"
            for member in reader.members:
                if not member.name.endswith(".py"):
                    continue
                loc = locate(member.name, data_dir)
                *dirs, filename = loc.path.split("/")
                stem = module_name_of_file(filename)
                if not in_site_packages(loc) or stem is None or not all(
                    d.isidentifier() for d in dirs
                ) or (stem == "__init__" and not dirs):
                    continue
                package = ".".join(dirs) or None
                module = package if stem == "__init__" and package else ".".join([*dirs, stem])
                text = reader.read(member.name).decode("utf-8", "replace")
                yield _Source(module, package, text)
