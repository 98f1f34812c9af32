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


class ImportAliases(cst.CSTVisitor):
    """Local name -> everything it is imported as, over every import statement in a module.

    A module-wide table rather than LibCST's scope analysis (a ``QualifiedNameProvider``
    pass dominated the run time of a whole-wheel rewrite). A name bound by imports in two
    scopes (``version`` from ``importlib.metadata`` in one function, from elsewhere in a
    class) keeps both meanings, as the provider's sets of qualified names would.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, set[str]] = {}

    def bind(self, local: str, qualified: str) -> None:
        self.names.setdefault(local, set()).add(qualified)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.bind(alias.asname.name.value, name)
            else:
                top = name.split(".")[0]
                self.bind(top, top)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = dotted(node.module)
        if module is None:
            return
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            local = alias.name.value
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.bind(local, f"{module}.{alias.name.value}")

    def qualify(self, node: cst.BaseExpression) -> set[str]:
        """The imported name an expression refers to: ``im`` -> ``importlib.import_module``."""
        text = dotted(node)
        if text is None:
            return set()
        head, dot, rest = text.partition(".")
        if head in self.names:
            return {name + dot + rest for name in self.names[head]}
        if head in _BUILTINS:
            return {f"builtins.{text}"}
        return set()


def aliases_from_ast(tree: ast.Module) -> ImportAliases:
    """The same table as visiting with ``ImportAliases``, built from the stdlib AST.

    Used when only parts of a module go through LibCST: the table must still cover every
    import statement of the whole module.
    """
    from .segments import iter_statements  # segments imports nothing from here; no cycle

    table = ImportAliases()
    for node in iter_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table.bind(alias.asname, alias.name)
                else:
                    top = alias.name.split(".")[0]
                    table.bind(top, top)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                if alias.name != "*":
                    table.bind(alias.asname or alias.name, f"{node.module}.{alias.name}")
    return table
