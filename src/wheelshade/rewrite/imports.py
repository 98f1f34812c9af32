"""LibCST transformer that points absolute imports of shaded packages at their new names."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import libcst as cst

from wheelshade.rewrite.lean import LeanTransformer

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


class ImportRenamer(LeanTransformer):
    """Rewrite ``import X...`` and ``from X... import`` where X is an original top-level name.

    Only absolute imports are touched: a relative import always refers to the importing
    package itself, never to a shaded dependency. Local names stay bound exactly as the
    original statement bound them, so the rest of the module needs no change.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        super().__init__()
        self._mapping = {k: v for k, v in mapping.items() if "." not in k}
        #: Namespaces (dotted) with shaded portions: ``google`` -> {``auth``: shaded head},
        #: ``google.cloud`` -> {``storage``: shaded head}; the head replaces the top name.
        self._portions: dict[str, dict[str, str]] = {}
        #: Portions shaded to a top-level name: ``nsx`` -> {``fastpart``: the new name}.
        self._tops: dict[str, dict[str, str]] = {}
        for key, value in mapping.items():
            if "." in key:
                namespace, _, portion = key.rpartition(".")
                into = self._portions if "." in value else self._tops
                into.setdefault(namespace, {})[portion] = value.split(".")[0]
        #: The top names of those namespaces: only chains starting with one can change.
        self._spaces = {n.split(".")[0] for n in (*self._portions, *self._tops)}

    def on_visit(self, node: cst.CSTNode) -> bool:
        # Imports are statements, never inside an expression or another small statement,
        # and they change as a whole: below those only the chains of a namespace portion
        # can change (``leave_Attribute``). Not walking them is most of a statement's nodes.
        if not self._portions and not self._tops and _below_imports(type(node)):
            return False
        return super().on_visit(node)

    def _shaded(self, dotted: cst.BaseExpression) -> str | None:
        """The new leftmost name of a module path, or None when it is not shaded."""
        top = top_name(dotted)
        if top is None:
            return None
        if top.value in self._mapping:
            return self._mapping[top.value]
        if top.value not in self._spaces:
            return None
        parts = (dotted_text(dotted) or "").split(".")
        for end in range(1, len(parts)):
            head = self._portions.get(".".join(parts[:end]), {}).get(parts[end])
            if head is not None:
                return head
        return None

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.Attribute | cst.Name:
        # ``google.auth.default()`` after ``import google.auth`` (rewritten to import the
        # shaded namespace): the chain must name the shaded namespace too. Only the chains
        # of a shaded portion change; ``google.protobuf`` stays. A portion with a top-level
        # name replaces the pair (``nsx.fastpart.x`` -> ``<top>.x``), in import statements
        # too, which then need nothing else.
        value = updated_node.value
        first = top_name(value)
        if first is None or first.value not in self._spaces:
            return updated_node
        namespace = dotted_text(value)
        if namespace in self._tops:
            top = self._tops[namespace].get(updated_node.attr.value)
            if top is not None:
                return cst.Name(top, lpar=updated_node.lpar, rpar=updated_node.rpar)
        if namespace in self._portions and isinstance(value, cst.Name | cst.Attribute):
            head = self._portions[namespace].get(updated_node.attr.value)
            if head is not None:
                return updated_node.with_changes(value=replace_top(value, head))
        return updated_node

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = updated_node.names
        if not any(self._shaded(alias.name) for alias in names):
            return updated_node
        needs_alias = self._needs_extra_alias(names)
        new_names: list[cst.ImportAlias] = []
        for index, alias in enumerate(names):
            top = top_name(alias.name)
            shaded = self._shaded(alias.name)
            if top is None or shaded is None:
                new_names.append(alias)
                continue
            renamed = alias.with_changes(name=replace_top(alias.name, shaded))
            if top.value not in self._mapping:
                new_names.append(renamed)  # a portion: chains are renamed (leave_Attribute)
            elif alias.asname is not None:
                new_names.append(renamed)  # ``import flask.json as fj`` binds only fj
            elif isinstance(alias.name, cst.Name):
                new_names.append(renamed.with_changes(asname=_as(top.value)))
            elif index not in needs_alias:
                new_names.append(renamed)
            else:
                # ``import flask.json`` also binds ``flask``; keep that binding with one
                # extra alias right after it. It takes over the comma (and any backslash
                # continuation) that followed this alias.
                new_names.append(renamed.with_changes(comma=cst.MaybeSentinel.DEFAULT))
                new_names.append(
                    cst.ImportAlias(name=cst.Name(shaded), asname=_as(top.value), comma=alias.comma)
                )
        return updated_node.with_changes(names=new_names)

    def _needs_extra_alias(self, names: Sequence[cst.ImportAlias]) -> set[int]:
        """Indexes of ``import T.x`` aliases after which ``S as T`` must be added.

        Aliases bind in order, so only the last one binding ``T`` decides what ``T`` is
        afterwards. When that is ``import T.x`` (which, rewritten, binds ``S`` rather than
        ``T``), ``T`` must still end up bound to ``S``: an earlier plain ``import T``
        (rewritten to ``import S as T``) already does that unless something rebinds ``T``
        in between (``import a, a.b as a, a.b``); otherwise add the alias.
        """
        last: dict[str, int] = {}
        for index, alias in enumerate(names):
            last[_binds(alias)] = index
        out: set[int] = set()
        for name, index in last.items():
            alias = names[index]
            if name not in self._mapping or alias.asname is not None:
                continue
            if not isinstance(alias.name, cst.Attribute):
                continue
            # Rewritten, ``import T.y`` binds S, not T: only the others say what T is.
            binders = [
                a
                for a in names[:index]
                if _binds(a) == name
                and not (a.asname is None and isinstance(a.name, cst.Attribute))
            ]
            plain_before = bool(binders) and binders[-1].asname is None
            if not plain_before:
                out.add(index)
        return out

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.FlattenSentinel[cst.BaseSmallStatement]:
        module = updated_node.module
        if updated_node.relative or module is None:
            return updated_node
        namespace = dotted_text(module)
        if namespace in self._tops:
            split = self._from_tops(updated_node, module)
            if split is not None:
                return split
        if namespace in self._portions:
            return self._from_namespace(updated_node, module)
        shaded = self._shaded(module)
        if shaded is None:
            return updated_node
        return updated_node.with_changes(module=replace_top(module, shaded))

    def _from_tops(
        self, node: cst.ImportFrom, module: DottedName
    ) -> cst.FlattenSentinel[cst.BaseSmallStatement] | None:
        """``from nsx import fastpart [as f]`` where the portion has a top-level name:
        ``import <top> as fastpart`` (the rest of the names stay a ``from`` import)."""
        namespace = dotted_text(module) or ""
        tops = self._tops[namespace]
        if isinstance(node.names, cst.ImportStar):
            return None
        moved = [a for a in node.names if isinstance(a.name, cst.Name) and a.name.value in tops]
        if not moved:
            return None
        parts: list[cst.BaseSmallStatement] = [
            cst.Import(names=[cst.ImportAlias(
                name=cst.Name(tops[cst.ensure_type(a.name, cst.Name).value]),
                asname=a.asname or _as(cst.ensure_type(a.name, cst.Name).value))])
            for a in moved
        ]
        rest = [a for a in node.names if a not in moved]
        if rest:
            last = rest[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            remaining = node.with_changes(names=[*rest[:-1], last], lpar=None, rpar=None)
            if namespace in self._portions:
                done = self._from_namespace(remaining, module)
                parts += done.nodes if isinstance(done, cst.FlattenSentinel) else [done]
            else:
                parts.append(remaining)
        parts = [p.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for p in parts[:-1]] + [
            parts[-1].with_changes(semicolon=node.semicolon)]
        return cst.FlattenSentinel(parts)

    def _from_namespace(
        self, node: cst.ImportFrom, module: DottedName
    ) -> cst.ImportFrom | cst.FlattenSentinel[cst.BaseSmallStatement]:
        """``from google import auth``: from the shaded namespace when the names are shaded
        portions. ``from google import auth, protobuf`` mixes in another distribution's
        portion: one statement per namespace (``from S import auth; from google import
        protobuf``), in the order the names first appear."""
        original = cst.ensure_type(top_name(module), cst.Name).value
        portions = self._portions[dotted_text(module) or ""]
        if isinstance(node.names, cst.ImportStar):
            return node
        groups: dict[str, list[cst.ImportAlias]] = {}
        for alias in node.names:
            name = alias.name.value if isinstance(alias.name, cst.Name) else ""
            groups.setdefault(portions.get(name, original), []).append(alias)
        if list(groups) == [original]:
            return node
        if len(groups) == 1:
            return node.with_changes(module=replace_top(module, next(iter(groups))))
        parts: list[cst.BaseSmallStatement] = []
        for index, (head, aliases) in enumerate(groups.items()):
            last = aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            parts.append(node.with_changes(
                module=replace_top(module, head),
                names=[*aliases[:-1], last],
                lpar=None if len(aliases) == 1 else node.lpar,
                rpar=None if len(aliases) == 1 else node.rpar,
                semicolon=node.semicolon if index == len(groups) - 1 else cst.MaybeSentinel.DEFAULT,
            ))
        return cst.FlattenSentinel(parts)


@functools.cache
def _below_imports(kind: type[cst.CSTNode]) -> bool:
    return issubclass(kind, cst.BaseExpression | cst.BaseSmallStatement)


def dotted_text(dotted: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a chain of names, or None when it is not one."""
    parts: list[str] = []
    while isinstance(dotted, cst.Attribute):
        parts.append(dotted.attr.value)
        dotted = dotted.value
    if not isinstance(dotted, cst.Name):
        return None
    return ".".join([dotted.value, *reversed(parts)])


def _binds(alias: cst.ImportAlias) -> str:
    """The local name an import alias binds: its ``as`` name, else its top-level name."""
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    top = top_name(alias.name)
    return top.value if top is not None else ""


def _as(name: str) -> cst.AsName:
    return cst.AsName(name=cst.Name(name))
