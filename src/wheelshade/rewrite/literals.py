"""Reading string literals in LibCST trees: their text, pieces, and the shapes that build
module names from them."""

from __future__ import annotations

import re

import libcst as cst

from wheelshade.rewrite.rules import IDENT


def literal_head(node: cst.BaseExpression) -> cst.SimpleString | None:
    """The literal a module name is built from: ``"pkg.%s" % m``, ``"pkg." + m``,
    ``"pkg.{}".format(m)``; None unless its text starts with a dotted prefix."""
    head: cst.BaseExpression | None = None
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo | cst.Add):
        head = node.left
    elif (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "format"
    ):
        head = node.func.value
    if not isinstance(head, cst.SimpleString):
        return None
    body = plain_text(head)
    if body is None or not re.match(rf"{IDENT}(?:\.{IDENT})*\.", body):
        return None
    return head


_NAME_ATTRS = frozenset({"__name__", "__module__"})


def is_module_name(node: cst.BaseExpression) -> bool:
    """``x.__name__``, ``x.__module__``, ``x["__name__"]`` or ``x.get("__name__", ...)``."""
    if isinstance(node, cst.Attribute):
        return node.attr.value in _NAME_ATTRS
    key: cst.BaseExpression | None = None
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        key = index.value if isinstance(index, cst.Index) else None
    elif (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
          and node.func.attr.value == "get" and node.args):
        key = node.args[0].value
    return isinstance(key, cst.SimpleString) and plain_text(key) in _NAME_ATTRS


def literals(node: cst.BaseExpression) -> list[cst.SimpleString]:
    """A string literal, or the string elements of a literal tuple, list or set."""
    if isinstance(node, cst.SimpleString):
        return [node]
    if isinstance(node, cst.Tuple | cst.List | cst.Set):
        return [e.value for e in node.elements if isinstance(e.value, cst.SimpleString)]
    return []


def pieces(node: cst.ConcatenatedString) -> list[cst.BaseString]:
    """The literals of an implicit concatenation, in order (nested ones flattened)."""
    out: list[cst.BaseString] = []
    for part in (node.left, node.right):
        out.extend(pieces(part) if isinstance(part, cst.ConcatenatedString) else [part])
    return out


def elements(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """A value, or the values a literal collection or a comprehension yields."""
    if isinstance(node, cst.Tuple | cst.List | cst.Set):
        return [e.value for e in node.elements]
    if isinstance(node, cst.ListComp | cst.SetComp | cst.GeneratorExp):
        return [node.elt]
    return [node]


def dict_keys(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The keys of a dict display, or the value itself."""
    if isinstance(node, cst.Dict):
        return [e.key for e in node.elements if isinstance(e, cst.DictElement)]
    return [node]


def plain_text(node: cst.SimpleString) -> str | None:
    """The literal's body when it holds no escapes, so body and value are the same text."""
    if "b" in node.prefix.lower() or "\\" in node.value:
        return None
    return node.value[len(node.prefix) + len(node.quote) : -len(node.quote)]


def with_body(node: cst.SimpleString, body: str) -> cst.SimpleString:
    if node.quote in body:
        return node
    return node.with_changes(value=f"{node.prefix}{node.quote}{body}{node.quote}")


def looks_up_plugins(func: cst.BaseExpression, names: set[str]) -> bool:
    """A call that looks up entry points: ``entry_points(...)``, a package's own wrapper of
    it (``pkg.util.metadata.entry_points``), ``.select(...)``, ``iter_entry_points``."""
    last = {n.rpartition(".")[2] for n in names}
    if isinstance(func, cst.Attribute):
        last.add(func.attr.value)
    return bool(last & {"entry_points", "iter_entry_points", "select"})


def is_module_attr(target: cst.BaseExpression) -> bool:
    """``__module__`` (in a class body) or ``x.__module__`` as an assignment target."""
    if isinstance(target, cst.Attribute):
        return target.attr.value == "__module__"
    return isinstance(target, cst.Name) and target.value == "__module__"
