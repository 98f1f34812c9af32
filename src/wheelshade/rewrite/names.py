"""Cheap qualified names for calls: which imported function a dotted expression refers to."""

from __future__ import annotations

import ast
import builtins

import libcst as cst

_BUILTINS = frozenset(dir(builtins))


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


class ImportAliases:
    """Local name -> everything it is imported as, over every import statement in a module.

    A module-wide table rather than LibCST's scope analysis (a ``QualifiedNameProvider``
    pass dominated the run time of a whole-wheel rewrite). A name bound by imports in two
    scopes (``version`` from ``importlib.metadata`` in one function, from elsewhere in a
    class) keeps both meanings, as the provider's sets of qualified names would.
    """

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}

    def bind(self, local: str, qualified: str) -> None:
        self.names.setdefault(local, set()).add(qualified)

    def qualify(self, node: cst.BaseExpression) -> set[str]:
        """The imported name an expression refers to: ``im`` -> ``importlib.import_module``."""
        text = dotted(node)
        return set() if text is None else self.qualify_dotted(text)

    def qualify_dotted(self, text: str) -> set[str]:
        """``qualify`` for the source text of a Name/Attribute chain (``"im"``, ``"a.b"``)."""
        head, dot, rest = text.partition(".")
        if head in self.names:
            return {name + dot + rest for name in self.names[head]}
        if head in _BUILTINS:
            return {f"builtins.{text}"}
        return set()


def aliases_from_ast(tree: ast.Module, package: str | None = None) -> ImportAliases:
    """The alias table of a whole module, from the stdlib AST: only parts of a module go
    through LibCST, but the table must cover every import statement of the module.

    ``package`` is the dotted package the module is in (``sqlalchemy`` for
    ``sqlalchemy/__init__.py``); with it, relative imports are bound to absolute names
    (``from . import util as _util`` -> ``sqlalchemy.util``).
    """
    from wheelshade.rewrite.segments import (
        iter_statements,  # segments imports nothing from here; no cycle
    )

    table = ImportAliases()
    for node in iter_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table.bind(alias.asname, alias.name)
                else:
                    top = alias.name.split(".")[0]
                    table.bind(top, top)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            for alias in node.names:
                if alias.name != "*" and module:
                    table.bind(alias.asname or alias.name, f"{module}.{alias.name}")
    return table


def _absolute(node: ast.ImportFrom, package: str | None) -> str | None:
    """The absolute module an ``import from`` reads from, if it can be known."""
    if not node.level:
        return node.module
    if package is None:
        return None
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None
    base = parts[:len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def package_of(path: str) -> str | None:
    """The dotted package a source is in, from its path (``sqlalchemy/sql/base.py``, or
    ``<wheel>/sqlalchemy/sql/base.py`` as the rewriter names members): the directories
    after the last one that is not an identifier (a wheel file, a ``.data`` scheme)."""
    parts = path.split("/")[:-1]
    run: list[str] = []
    for index in range(len(parts) - 1, -1, -1):
        if not parts[index].isidentifier() or (
            index > 0 and parts[index - 1].endswith(".data")
        ):
            break
        run.insert(0, parts[index])
    return ".".join(run) or None


def module_of(path: str) -> str | None:
    """The dotted module a source is, from its path as ``package_of`` reads it."""
    stem = path.rpartition("/")[2].partition(".")[0]
    package = package_of(path)
    if stem == "__init__" or not stem.isidentifier():
        return package if stem == "__init__" else None
    return f"{package}.{stem}" if package else stem


def qualified(func: ast.AST, aliases: ImportAliases) -> set[str]:
    """The qualified names a dotted expression (``mod.f``, ``f``) can refer to; empty when
    it is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return set()
    parts.append(func.id)
    return aliases.qualify_dotted(".".join(reversed(parts)))
