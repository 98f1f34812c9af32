"""Module names that reach an import call through a loop (``for m in DEPS: __import__(m)``)
or a lookup table (pydantic's ``_dynamic_imports``).

pandas checks its hard dependencies this way (``hard_dependencies = ("numpy", "pytz",
"dateutil")``, then ``__import__(_dependency)`` in a loop). The strings are bare names, which
the string pass leaves alone anywhere else, yet here they are module names just as surely
as an argument written into the call. Only the plain shape is followed: the loop iterates a
literal tuple or list of strings, or a name assigned such a literal exactly once (as a
statement anywhere in the module), and the loop's own variable is the first argument of an
import call in its body.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from wheelshade.rewrite.names import ImportAliases, qualified
from wheelshade.rewrite.scan import Calls
from wheelshade.rewrite.segments import iter_statements

_IMPORT_CALLS = frozenset(
    {"builtins.__import__", "importlib.import_module", "importlib.__import__"}
)


@dataclass(frozen=True)
class ImportLists:
    #: 0-based first line of each statement holding such a literal -> its string values.
    literals: dict[int, frozenset[str]]
    #: 1-based lines of the import calls these literals feed (their names are known now).
    calls: frozenset[int]


#: A lookup by a module's name, ``x[y.__module__]`` or ``x.get(y.__name__``, in the text.
_LOOKUP_TEXT = re.compile(r"(?:\[|\.get\()\s*[\w.]+\.__(?:module|name)__\b")
#: The cheap test first: a file that calls no import function by these names has none.
_IMPORT_CALL_TEXT = Calls.of(["__import__", "import_module"])


def import_lists(tree: ast.Module, aliases: ImportAliases, text: str) -> ImportLists:
    """Every literal list of module names that a loop feeds to an import call in ``text``
    (the source of ``tree``)."""
    keyed = _module_keyed(tree, text)
    if not _IMPORT_CALL_TEXT.search(text):
        return ImportLists(keyed, frozenset())
    tables = {**keyed, **_lookup_tables(tree, aliases)}
    loops = list(_loops(tree))
    if not loops:
        return ImportLists(tables, frozenset())
    literals: dict[str, list[ast.Assign]] = {}
    for node in iter_statements(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    literals.setdefault(target.id, []).append(node)
    found: dict[int, frozenset[str]] = dict(tables)
    calls: set[int] = set()
    for loop in loops:
        target = loop.target
        if isinstance(target, ast.Tuple) and target.elts:
            target = target.elts[0]  # ``for name, info in TABLE.items()``
        if not isinstance(target, ast.Name):
            continue
        lines = _imports(loop, target.id, aliases)
        if not lines:
            continue
        table = _table_keys(loop.iter, tree)
        if table:
            for line, key in table:
                found[line] = found.get(line, frozenset()) | {key}
            calls |= lines
            continue
        if target is not loop.target:
            continue
        holder: ast.stmt = loop
        values = _strings(loop.iter)
        if isinstance(loop.iter, ast.Name):
            assigned = literals.get(loop.iter.id, [])
            if len(assigned) != 1:
                continue
            holder, values = assigned[0], _strings(assigned[0].value)
        if values:
            line = holder.lineno - 1
            found[line] = found.get(line, frozenset()) | values
            calls |= lines
    return ImportLists(found, frozenset(calls))


def _lookup_tables(tree: ast.Module, aliases: ImportAliases) -> dict[int, frozenset[str]]:
    """Module names in a lookup table that feeds an import call with a computed name.

    pydantic resolves its lazy attributes through ``_dynamic_imports = {"ValidationError":
    ("pydantic_core", "."), ...}``, then ``import_module(module_name, package=package)``.
    When a module calls an import function with a computed name or package, the strings in
    the tuples and lists that are values of a module-level dict literal are module names.
    """
    dynamic = any(
        isinstance(node, ast.Call)
        and qualified(node.func, aliases) & _IMPORT_CALLS
        and any(not isinstance(value, ast.Constant) for value in (
            *node.args[:1], *(k.value for k in node.keywords if k.arg in ("name", "package"))
        ))
        for node in ast.walk(tree)
    )
    if not dynamic:
        return {}
    found: dict[int, frozenset[str]] = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if not isinstance(value, ast.Dict):
            continue
        strings = frozenset().union(*(
            _strings(v) for v in value.values if isinstance(v, ast.Tuple | ast.List)
        ))
        if strings:
            found[node.lineno - 1] = strings
    return found


def _module_keyed(tree: ast.Module, text: str) -> dict[int, frozenset[str]]:
    """The string keys of module-level dict literals looked up by a module's name.

    typing_extensions allows ``Buffer`` as a protocol base through ``_PROTO_ALLOWLIST =
    {..., "typing_extensions": ["Buffer"]}`` read with ``.get(base.__module__, [])``: its
    keys are module names.
    """
    tables: dict[str, list[tuple[int, ast.Dict]]] = {}
    for statement in tree.body:  # the cheap part first: most modules have no such literal
        if isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(
            statement.value, ast.Dict
        ):
            targets = (statement.targets if isinstance(statement, ast.Assign)
                       else [statement.target])
            for target in targets:
                if isinstance(target, ast.Name):
                    tables.setdefault(target.id, []).append(
                        (statement.lineno - 1, statement.value))
    if not tables or not _LOOKUP_TEXT.search(text):
        return {}
    found: dict[int, frozenset[str]] = {}
    lookups = list(_lookups(tree))
    keyed = set()
    for holder, key in lookups:
        if not (isinstance(key, ast.Attribute) and key.attr in ("__module__", "__name__")):
            continue
        keyed.add(holder.id)
        for line, table in tables.pop(holder.id, []):
            keys = frozenset(k.value for k in table.keys
                             if isinstance(k, ast.Constant) and isinstance(k.value, str))
            if keys:
                found[line] = keys
    # The same table looked up by a literal (``TABLE["pkg"]``): that key is one too.
    for holder, key in lookups:
        if holder.id in keyed and isinstance(key, ast.Constant) and isinstance(key.value, str):
            line = key.lineno - 1
            found[line] = found.get(line, frozenset()) | {key.value}
    return found


def _lookups(tree: ast.Module) -> Iterator[tuple[ast.Name, ast.expr]]:
    """``holder[key]`` and ``holder.get(key, ...)`` of a plain name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            yield node.value, node.slice
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get" and node.args
              and isinstance(node.func.value, ast.Name)):
            yield node.func.value, node.args[0]


def _table_keys(iterated: ast.expr, tree: ast.Module) -> list[tuple[int, str]]:
    """The literal keys (0-based line, key) of a module-level table a loop iterates by key
    (``TABLE``, ``TABLE.keys()``, ``TABLE.items()``): its dict literal's and those given by
    ``TABLE["pkg"] = ...`` statements."""
    if (isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Attribute)
            and iterated.func.attr in ("keys", "items") and not iterated.args):
        iterated = iterated.func.value
    if not isinstance(iterated, ast.Name):
        return []
    found = []
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == iterated.id and isinstance(
                node.value, ast.Dict
            ):
                found += [(k.lineno - 1, k.value) for k in node.value.keys
                          if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                  and target.value.id == iterated.id and isinstance(target.slice, ast.Constant)
                  and isinstance(target.slice.value, str)):
                found.append((target.lineno - 1, target.slice.value))
    return found


def _loops(tree: ast.Module) -> Iterator[ast.For]:
    for node in iter_statements(tree):
        if isinstance(node, ast.For):
            yield node


def _strings(node: ast.expr) -> frozenset[str]:
    if not isinstance(node, ast.Tuple | ast.List) or not node.elts:
        return frozenset()
    if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return frozenset()
    return frozenset(
        e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
    )


def _imports(loop: ast.For, variable: str, aliases: ImportAliases) -> set[int]:
    """Lines of the import calls in ``loop`` whose first argument is ``variable``."""
    return {
        node.lineno
        for node in ast.walk(loop)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == variable
        and qualified(node.func, aliases) & _IMPORT_CALLS
    }
