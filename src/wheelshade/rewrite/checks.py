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

from wheelshade.rewrite.names import ImportAliases, aliases_from_ast, qualified
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import in_site_packages, locate, module_name_of_file

#: Module -> 0-based line -> the bare names on it shown to be module names.
Checked = Mapping[str, Mapping[int, frozenset[str]]]

#: How a value is drawn from a parameter besides subscripts and slices.
_PARTS = frozenset({"split", "rsplit", "partition", "rpartition", "strip"})
_COMPARE = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)
#: Helpers followed back through at most this many functions that hand the value on.
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
    quoted = re.compile("['\"](?:" + "|".join(map(re.escape, names)) + ")['\"]")
    roots: list[_Root] = []
    frontier: list[_Sink] = []
    for source in _sources(wheels):
        if quoted.search(source.text) and (tree := _parse(source.text)) is not None:
            for node in tree.body:
                if isinstance(node, _Function):
                    frontier.extend(_checks(source.module, node, frozenset(names), roots))
    proven: set[int] = set()
    conflicts: set[int] = set()
    seen: dict[tuple[str, str, str], frozenset[int]] = {}
    for _ in range(_HOPS):
        if not frontier:
            break
        by_name: dict[str, list[_Sink]] = {}
        for sink in frontier:
            by_name.setdefault(sink.function, []).append(sink)
        word = re.compile(r"\b(?:" + "|".join(map(re.escape, by_name)) + r")\b")
        found: list[_Sink] = []
        for source in _sources(wheels):
            if word.search(source.text) and (tree := _parse(source.text)) is not None:
                calls = _Calls(source, tree, by_name, roots, modules)
                calls.run()
                proven |= calls.proven
                conflicts |= calls.conflicts
                found.extend(calls.relays)
        frontier = []
        for sink in found:
            key = (sink.module, sink.function, sink.param)
            if not sink.roots <= seen.get(key, frozenset()):
                seen[key] = seen.get(key, frozenset()) | sink.roots
                frontier.append(sink)
    out: dict[str, dict[int, set[str]]] = {}
    for index in sorted(proven - conflicts):
        root = roots[index]
        out.setdefault(root.module, {}).setdefault(root.line, set()).add(root.name)
    return {m: {line: frozenset(v) for line, v in lines.items()} for m, lines in out.items()}


def _checks(
    module: str, function: _Function, names: frozenset[str], roots: list[_Root]
) -> list[_Sink]:
    """The parameters of ``function`` whose values are compared with a bare name."""
    derived = _derivations(function)
    reached: dict[str, set[int]] = {}
    for node in ast.walk(function):
        if not (isinstance(node, ast.Compare) and all(isinstance(o, _COMPARE) for o in node.ops)):
            continue
        operands = [node.left, *node.comparators]
        origins = {o for o in (_origin(o, derived) for o in operands) if o is not None}
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
        self.conflicts: set[int] = set()
        self.relays: list[_Sink] = []

    def run(self) -> None:
        for statement in self.tree.body:
            caller = statement if isinstance(statement, _Function) else None
            derived = _derivations(caller) if caller is not None else {}
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    self._call(node, caller, derived)

    def _call(self, call: ast.Call, caller: _Function | None, derived: dict[str, str]) -> None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        for sink in self.sinks.get(name or "", []):
            if not self._resolves(func, sink):
                continue
            arg = _argument(call, sink)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._weigh(arg.value, sink.roots)
            elif arg is not None and caller is not None and (
                param := _origin(arg, derived)) is not None:
                self.relays.append(_Sink(self.source.module, caller.name,
                                         _position(caller, param), param, sink.roots))

    def _resolves(self, func: ast.expr, sink: _Sink) -> bool:
        if f"{sink.module}.{sink.function}" in qualified(func, self.aliases):
            return True
        return (isinstance(func, ast.Name) and self.source.module == sink.module
                and func.id not in self.aliases.names)

    def _weigh(self, value: str, roots: frozenset[int]) -> None:
        for index in roots:
            if value.partition(".")[0] != self.roots[index].name:
                continue  # another package's path: the check rejects it either way
            if "." in value and value in self.modules:
                self.proven.add(index)
            else:  # a literal that keeps its name: the check must keep it too
                self.conflicts.add(index)


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


def _derivations(function: _Function) -> dict[str, str]:
    """Local name -> the parameter its value is drawn from. A name also given any other
    value is left out: which value a comparison sees is then unknown."""
    args = function.args
    derived = {a.arg: a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    assigns = [n for n in ast.walk(function) if isinstance(n, ast.Assign)]
    killed: set[str] = set()
    for _ in range(2):  # a name drawn from one assigned later in the walk
        for node in assigns:
            origin = _origin(node.value, derived)
            for name in (n for t in node.targets for n in _target_names(t)):
                if origin is None:
                    killed.add(name)
                else:
                    derived.setdefault(name, origin)
    return {k: v for k, v in derived.items() if k not in killed}


def _origin(node: ast.AST, derived: Mapping[str, str]) -> str | None:
    """The parameter a value is drawn from: ``p``, ``p[0]``, ``p[:-1]``, ``p.split(".")``."""
    while True:
        if isinstance(node, ast.Name):
            return derived.get(node.id)
        if isinstance(node, ast.Subscript):
            node = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in _PARTS):
            node = node.func.value
        else:
            return None


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n.id for n in target.elts if isinstance(n, ast.Name)]
    return []


def _parse(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError):
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
