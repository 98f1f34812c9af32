"""LibCST transformer that points absolute imports of shaded packages at their new names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import libcst as cst

#: The module part of an import: ``flask`` is a Name, ``flask.json`` an Attribute chain.
DottedName = cst.Name | cst.Attribute


def top_name(dotted: cst.BaseExpression) -> cst.Name | None:
    """Return the leftmost Name of a dotted module name, or None if it is not one."""
    while isinstance(dotted, cst.Attribute):
        dotted = dotted.value
    return dotted if isinstance(dotted, cst.Name) else None


def replace_top(dotted: DottedName, new: str) -> DottedName:
    """Rename the leftmost component, keeping every dot and its whitespace as written."""
    if isinstance(dotted, cst.Name):
        return dotted.with_changes(value=new)
    inner = dotted.value
    if not isinstance(inner, cst.Name | cst.Attribute):
        return dotted  # not a module path; the grammar does not produce this in imports
    return dotted.with_changes(value=replace_top(inner, new))


class ImportRenamer(cst.CSTTransformer):
    """Rewrite ``import X...`` and ``from X... import`` where X is an original top-level name.

    Only absolute imports are touched: a relative import always refers to the importing
    package itself, never to a shaded dependency. Local names stay bound exactly as the
    original statement bound them, so the rest of the module needs no change.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        super().__init__()
        self._mapping = dict(mapping)

    def _shaded(self, dotted: cst.BaseExpression) -> str | None:
        top = top_name(dotted)
        return self._mapping.get(top.value) if top is not None else None

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = updated_node.names
        if not any(self._shaded(alias.name) for alias in names):
            return updated_node
        # A plain ``import flask`` (no ``as``) already binds ``flask``; dotted imports then
        # need no extra alias for it.
        bound_plainly = {
            alias.name.value
            for alias in names
            if alias.asname is None and isinstance(alias.name, cst.Name)
        }
        last_dotted = self._last_dotted_index(names)
        new_names: list[cst.ImportAlias] = []
        for index, alias in enumerate(names):
            top = top_name(alias.name)
            shaded = self._shaded(alias.name)
            if top is None or shaded is None:
                new_names.append(alias)
                continue
            renamed = alias.with_changes(name=replace_top(alias.name, shaded))
            if alias.asname is not None:
                new_names.append(renamed)  # ``import flask.json as fj`` binds only fj
            elif isinstance(alias.name, cst.Name):
                new_names.append(renamed.with_changes(asname=_as(top.value)))
            elif last_dotted.get(top.value) != index or top.value in bound_plainly:
                new_names.append(renamed)
            else:
                # ``import flask.json`` also binds ``flask``; keep that binding with one
                # extra alias after the last dotted import of the package. It takes over
                # the comma (and any backslash continuation) that followed this alias.
                new_names.append(renamed.with_changes(comma=cst.MaybeSentinel.DEFAULT))
                new_names.append(
                    cst.ImportAlias(name=cst.Name(shaded), asname=_as(top.value), comma=alias.comma)
                )
        return updated_node.with_changes(names=new_names)

    def _last_dotted_index(self, names: Sequence[cst.ImportAlias]) -> dict[str, int]:
        """Map each shaded top name to the index of its last ``import top.sub`` without ``as``."""
        last: dict[str, int] = {}
        for index, alias in enumerate(names):
            top = top_name(alias.name)
            if (
                top is not None
                and top.value in self._mapping
                and alias.asname is None
                and isinstance(alias.name, cst.Attribute)
            ):
                last[top.value] = index
        return last

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        module = updated_node.module
        if updated_node.relative or module is None:
            return updated_node
        shaded = self._shaded(module)
        if shaded is None:
            return updated_node
        return updated_node.with_changes(module=replace_top(module, shaded))


def _as(name: str) -> cst.AsName:
    return cst.AsName(name=cst.Name(name))
