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
    """Local name -> what it was imported as, over every import statement in a module.

    A module-wide table rather than LibCST's scope analysis: shadowing an imported
    function with a local of the same name is rare in practice, and the table costs a
    fraction of a ``QualifiedNameProvider`` pass, which dominated the run time of a
    whole-wheel rewrite.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[str, str] = {}

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.names[alias.asname.name.value] = name
            else:
                top = name.split(".")[0]
                self.names[top] = top

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
            self.names[local] = f"{module}.{alias.name.value}"

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """The imported name an expression refers to: ``im`` -> ``importlib.import_module``."""
        text = dotted(node)
        if text is None:
            return None
        head, dot, rest = text.partition(".")
        if head in self.names:
            return self.names[head] + dot + rest
        if head in _BUILTINS:
            return f"builtins.{text}"
        return None


def aliases_from_ast(tree: ast.Module) -> ImportAliases:
    """The same table as visiting with ``ImportAliases``, built from the stdlib AST.

    Used when only parts of a module go through LibCST: the table must still cover every
    import statement of the whole module.
    """
    table = ImportAliases()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    table.names[top] = top
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                if alias.name != "*":
                    table.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return table
