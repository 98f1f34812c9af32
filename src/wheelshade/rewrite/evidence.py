"""Evidence from a module's data flow that a bare name or a prefix in a string is a module
name: it is compared with, or checked against, a value that is one.

``parts = path.split("."); if parts[0] != "pkg": raise`` guards a helper that imports
``path``: the ``"pkg"`` must move with the (renamed) module paths the package passes it.
``if k.startswith("pkg."): opts[k[len("pkg."):]] = v`` over configuration keys must not:
the literal looks the same, so the value it is checked against decides. A value is a
module name when it reaches an import call or ``sys.modules``, or is read from
``__name__``, ``__module__``, ``__package__`` or ``__spec__.name``, or iterates
``sys.modules``; its parts (``split``, ``partition``, a slice) are parts of one. Each
function is its own scope; the module's own statements (classes included) are another. A
``self`` attribute reaching an import call, or checked against a module name, crosses
them: what the class gives it (``__init__``'s parameter stored in it, by its default or at
calls of the class in the module) is a module name. Evidence across modules: ``checks.py``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from typing import TypeGuard

from wheelshade.rewrite.names import ImportAliases, qualified
from wheelshade.rewrite.rules import MODULE_CALLS, MODULE_METHODS

_NAME_ATTRS = frozenset({"__name__", "__module__", "__package__"})
#: Attributes that only ever hold a module's name (a function's ``__name__`` does not).
_MODULE_ATTRS = frozenset({"__module__", "__package__"})
_PART_METHODS = frozenset({"split", "rsplit", "partition", "rpartition", "strip", "lower"})
_CHECK_METHODS = frozenset({"startswith", "removeprefix", "replace", "find", "index"})
#: ``name.split("pkg.")``: the separator is checked against the module name too.
_SPLIT_METHODS = frozenset({"split", "rsplit", "partition", "rpartition"})
#: The import protocol's finder and loader methods take a module's full name first.
_IMPORTER_METHODS = frozenset({"find_spec", "find_module", "load_module"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def proven_strings(
    tree: ast.Module, aliases: ImportAliases, text: str, names: Mapping[str, str]
) -> dict[int, frozenset[str]]:
    """0-based line -> the strings on it that the data flow shows to be module names.

    Only strings that are a bare shaded name or a package prefix (``"pkg"``, ``"pkg.x."``)
    or a name pattern (``"pkg.tests.%s"``) need it; a file with none is not walked.
    """
    words = "|".join(re.escape(n) for n in names)
    if not words or not re.search(rf"""['"](?:{words})(?:['"]|\.)""", text):
        return {}
    found: dict[int, set[str]] = {}
    attributes: set[str] = set()  # ``self.X`` checked against a module name somewhere
    functions = {
        id(n): n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    takes: dict[str, list[tuple[int | None, str]]] = {}  # function -> module-name parameters
    for scope in _scopes(tree):
        checker = _Scope(list(_nodes(scope)), aliases, found, attributes)
        if isinstance(scope, ast.FunctionDef) and scope.name in _IMPORTER_METHODS:
            params = [a.arg for a in (*scope.args.posonlyargs, *scope.args.args)]
            checker.valued.update(params[1:2] if params[:1] in (["self"], ["cls"])
                                  else params[:1])
        checker.run()
        function = functions.get(id(scope))
        if function is not None and (taken := _module_parameters(function, checker.valued)):
            takes[function.name] = taken
    if attributes:
        _prove_attributes(tree, attributes, found)
        takes.update(_constructors(tree, attributes))
    if takes:
        _prove_arguments(tree, takes, found)
    return {line: frozenset(values) for line, values in found.items()}


def _module_parameters(
    function: ast.FunctionDef | ast.AsyncFunctionDef, valued: set[str]
) -> list[tuple[int | None, str]]:
    """The parameters of a module-level function that reach a module-name call (by
    position, None for keyword-only): ``def resource(package, name): return files(package)
    / name`` takes a module name first, so ``resource("pkg", "data")`` passes one."""
    args = function.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    return [*((i, p) for i, p in enumerate(positional) if p in valued),
            *((None, a.arg) for a in args.kwonlyargs if a.arg in valued)]


def _prove_arguments(
    tree: ast.Module, takes: dict[str, list[tuple[int | None, str]]], found: dict[int, set[str]]
) -> None:
    """The literals passed to those parameters anywhere in the module."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in takes):
            continue
        for index, name in takes[node.func.id]:
            given = [k.value for k in node.keywords if k.arg == name]
            if index is not None and index < len(node.args):
                given.append(node.args[index])
            for value in given:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.lineno - 1, set()).add(value.value)
    # A loop variable over a literal list, passed on: ``for p in ("pkg", "x"): helper(p)``.
    for scope, variable, literals in _literal_loops(tree):
        if any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in takes and any(
                   isinstance(v, ast.Name) and v.id == variable
                   for v in _given(node, takes[node.func.id]))
               for node in ast.walk(scope)):
            for literal in literals:
                found.setdefault(literal.lineno - 1, set()).add(str(literal.value))


def _given(call: ast.Call, taken: list[tuple[int | None, str]]) -> Iterator[ast.expr]:
    """The arguments ``call`` passes to the parameters in ``taken``."""
    for index, name in taken:
        yield from (k.value for k in call.keywords if k.arg == name)
        if index is not None and index < len(call.args):
            yield call.args[index]


def _literal_loops(tree: ast.Module) -> Iterator[tuple[ast.AST, str, list[ast.Constant]]]:
    """(the loop or comprehension, its variable, the string literals it iterates) for each
    ``for`` and comprehension over a literal tuple or list of strings."""
    for node in ast.walk(tree):
        if isinstance(node, ast.For | ast.AsyncFor):
            pairs: list[tuple[ast.expr, ast.expr]] = [(node.target, node.iter)]
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            pairs = [(g.target, g.iter) for g in node.generators]
        else:
            continue
        for target, iterated in pairs:
            if not (isinstance(target, ast.Name) and isinstance(iterated, ast.Tuple | ast.List)):
                continue
            literals = [e for e in iterated.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if literals and len(literals) == len(iterated.elts):
                yield node, target.id, literals


def _constructors(tree: ast.Module, names: set[str]) -> dict[str, list[tuple[int | None, str]]]:
    """The parameters of each class's ``__init__`` stored in such an attribute, by position
    at a call of the class: ``Loader("pkg")`` for ``def __init__(self, package): self.package
    = package`` where a method reads ``pkgutil.get_data(self.package, path)``."""
    takes: dict[str, list[tuple[int | None, str]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for init in node.body:
            if not (isinstance(init, ast.FunctionDef) and init.name == "__init__"):
                continue
            stored = {inner.value.id for inner in ast.walk(init) if isinstance(inner, ast.Assign)
                      and isinstance(inner.value, ast.Name) and any(
                          _is_self_attribute(t) and t.attr in names for t in inner.targets)}
            taken = [(None if i is None else i - 1, p)  # ``self`` is not passed
                     for i, p in _module_parameters(init, stored) if i != 0]
            if taken:
                takes[node.name] = taken
    return takes


def _prove_attributes(tree: ast.Module, names: set[str], found: dict[int, set[str]]) -> None:
    """The literals an attribute checked against module names is given: ``self.prefix =
    "pkg."``, a class attribute ``prefix = "pkg."``, or a parameter's default that
    ``__init__`` stores (``def __init__(self, prefix="pkg."): self.prefix = prefix``)."""
    def prove(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.setdefault(node.lineno - 1, set()).add(node.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in names for t in statement.targets
                ):
                    prove(statement.value)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]],
                            args.defaults, strict=True))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults,
                                                   strict=True) if d is not None})
        for inner in ast.walk(node):
            if isinstance(inner, ast.Assign) and any(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                and t.value.id == "self" and t.attr in names for t in inner.targets
            ):
                value = inner.value
                prove(defaults.get(value.id) if isinstance(value, ast.Name) else value)


def _scopes(tree: ast.Module) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTIONS):
            yield node


def _nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope, nested functions left out (each is a scope of its own)."""
    todo = [*ast.iter_child_nodes(scope)]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _FUNCTIONS):
            todo.extend(ast.iter_child_nodes(node))


class _Scope:
    def __init__(
        self, nodes: list[ast.AST], aliases: ImportAliases, found: dict[int, set[str]],
        attributes: set[str],
    ) -> None:
        self.nodes = nodes
        self.aliases = aliases
        self.found = found
        self.attributes = attributes
        self.valued: set[str] = set()  # local names holding a module name or a part of one

    def run(self) -> None:
        for _ in range(2):  # a name valued through another one found later in the walk
            for node in self.nodes:
                self._collect(node)
        if not self.valued and not any(
            isinstance(n, ast.Attribute | ast.Name) and self._is_valued(n) for n in self.nodes
        ):
            return
        for node in self.nodes:
            self._check(node)

    def _takes_modules(self, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in MODULE_METHODS:
            return True
        return bool(qualified(func, self.aliases) & MODULE_CALLS)

    def _collect(self, node: ast.AST) -> None:
        if isinstance(node, ast.Call):  # ``make_module(name, __package__="pkg")``
            for keyword in node.keywords:
                if keyword.arg in _MODULE_ATTRS:
                    self._prove_source(keyword.value)
        if isinstance(node, ast.Call) and node.args and self._takes_modules(node):
            self._value_name(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_sys_modules(node.value, self.aliases):
            self._value_name(node.slice)
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.In | ast.NotIn) for op in node.ops
        ) and any(_is_sys_modules(c, self.aliases) for c in node.comparators):
            self._value_name(node.left)
        elif isinstance(node, ast.For | ast.comprehension) and _iterates_modules(
            node.iter, self.aliases
        ):
            target = node.target
            if isinstance(target, ast.Tuple) and target.elts:
                target = target.elts[0]
            self._value_name(target)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if self._is_valued(node.value):
                for target in targets:
                    for name in target_names(target):
                        self.valued.add(name)
            elif any((isinstance(t, ast.Name) and t.id in self.valued)
                     or (isinstance(t, ast.Attribute) and t.attr in _MODULE_ATTRS)
                     for t in targets):
                # ``name = "pkg"`` later imported; ``module.__package__ = "pkg"``
                self._prove_source(node.value)

    def _value_name(self, node: ast.AST) -> None:
        """The local name a module name is held in: ``v``, ``v + "..."``, ``f"{v}..."``,
        ``"%s.base" % v``, ``"{}.base".format(v)``."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(
            node.left, ast.Constant
        ) and isinstance(node.left.value, str) and node.left.value.startswith("%s"):
            node = node.right.elts[0] if isinstance(node.right, ast.Tuple) else node.right
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
              and str(node.func.value.value).startswith("{") and node.args):
            node = node.args[0]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                node = node.left  # ``v + "." + name``
        elif (head := _joined_head(node)) is not None:
            self._prove(head)  # ``import_module("".join(["pkg", dot, rest]))``
            return
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            node = first.value if isinstance(first, ast.FormattedValue) else first
        if isinstance(node, ast.Name):
            self.valued.add(node.id)
        elif _is_self_attribute(node):
            self.attributes.add(node.attr)  # the literals it is given are module names

    def _is_valued(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.valued or node.id in ("__name__", "__package__")
        if isinstance(node, ast.Attribute):
            if node.attr in _NAME_ATTRS:
                return True
            inner = node.value
            spec = (isinstance(inner, ast.Name) and inner.id == "__spec__") or (
                isinstance(inner, ast.Attribute) and inner.attr == "__spec__")
            return node.attr == "name" and spec
        if isinstance(node, ast.Subscript):  # ``parts[0]``, ``f_globals["__name__"]``
            return self._is_valued(node.value) or _is_name_key(node.slice)
        if isinstance(node, ast.BoolOp):  # ``g.get("__name__") or ""``
            return any(self._is_valued(v) for v in node.values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "get" and node.args and _is_name_key(node.args[0]):
                return True
            return node.func.attr in _PART_METHODS and self._is_valued(node.func.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._is_valued(node.left)
        return False

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(self._is_valued(o) for o in operands):
                for operand in operands:
                    self._prove(operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _CHECK_METHODS | _SPLIT_METHODS and node.args and (
                self._is_valued(node.func.value)
            ):
                self._prove(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            lower = node.slice.lower
            if (isinstance(lower, ast.Call) and isinstance(lower.func, ast.Name)
                    and lower.func.id == "len" and lower.args and self._is_valued(node.value)):
                self._prove(lower.args[0])

    def _prove(self, node: ast.AST) -> None:
        """Record a literal (or the literals of a tuple, list or set) as a module name; an
        attribute of ``self`` for the literals it is given elsewhere in the module."""
        if _is_self_attribute(node):
            self.attributes.add(node.attr)
        items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
        for item in items:
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                self.found.setdefault(item.lineno - 1, set()).add(item.value)

    def _prove_source(self, node: ast.AST) -> None:
        """The literals a module-name variable is given: ``"pkg"``, ``["pkg.a", ...]``,
        ``"pkg.tests.%s" % m`` (in a comprehension too)."""
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            node = node.elt
        items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
        for item in items:
            if isinstance(item, ast.BinOp):
                item = item.left
            elif (isinstance(item, ast.Call) and isinstance(item.func, ast.Attribute)
                  and item.func.attr == "format"):
                item = item.func.value
            self._prove(_joined_head(item) or item)


def _joined_head(node: ast.AST) -> ast.AST | None:
    """``"pkg"`` of ``"".join(["pkg", dot, rest])`` (a separator literal, a literal list)."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join" and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str) and len(node.args) == 1
            and isinstance(node.args[0], ast.List | ast.Tuple) and node.args[0].elts):
        return node.args[0].elts[0]
    return None


def _is_self_attribute(node: ast.AST) -> TypeGuard[ast.Attribute]:
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "self")


def _is_name_key(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in ("__name__", "__module__")


def target_names(target: ast.AST) -> list[str]:
    """The plain names an assignment target binds (``a``, ``a, b``)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n.id for n in target.elts if isinstance(n, ast.Name)]
    return []


def _is_sys_modules(node: ast.AST, aliases: ImportAliases) -> bool:
    return "sys.modules" in qualified(node, aliases)


def _iterates_modules(node: ast.AST, aliases: ImportAliases) -> bool:
    """``sys.modules``, ``sys.modules.keys()``/``.items()``, ``list(sys.modules)``..."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("keys", "items"):
            return _is_sys_modules(node.func.value, aliases)
        return bool(node.args) and _iterates_modules(node.args[0], aliases)
    return _is_sys_modules(node, aliases)
