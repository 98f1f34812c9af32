"""A LibCST transformer base that spends less per node than ``cst.CSTTransformer``.

LibCST looks up ``visit_<Node>``/``leave_<Node>`` by a formatted name on every node and
calls ``visit_<Node>_<field>``/``leave_<Node>_<field>`` around every field of every node,
almost all of them no-op stubs; with our few handlers that bookkeeping was about a third of
a visit. Here each node type's handlers are looked up once per class, stubs are dropped,
and the per-field hooks are not offered at all (defining one is an error). ``changed``
says whether any handler replaced a node: when none did, the tree gives back the very
text it was parsed from, so the caller need not generate code to compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import libcst as cst

_NodeT = TypeVar("_NodeT", bound=cst.CSTNode)
_FIELD_HOOK = re.compile(r"(?:visit|leave)_[A-Z][A-Za-z]*_\w+")
_Handler = Callable[..., Any]


def _handler(cls: type, name: str) -> _Handler | None:
    """The class's own handler called ``name``; None for LibCST's no-op stubs."""
    found: _Handler | None = getattr(cls, name, None)
    return None if found is None or getattr(found, "_is_no_op", False) else found


class LeanTransformer(cst.CSTTransformer):
    """``cst.CSTTransformer`` with handlers found once per node type and no field hooks."""

    _visits: ClassVar[dict[type[cst.CSTNode], _Handler | None]]
    _leaves: ClassVar[dict[type[cst.CSTNode], _Handler | None]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks = sorted(name for name in vars(cls) if _FIELD_HOOK.fullmatch(name))
        if hooks:
            raise TypeError(f"{cls.__name__}: field hooks are not called here: {hooks}")
        cls._visits, cls._leaves = {}, {}

    def __init__(self) -> None:
        super().__init__()
        self.changed = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        kind = type(node)
        try:
            visit = self._visits[kind]
        except KeyError:
            visit = self._visits[kind] = _handler(type(self), f"visit_{kind.__name__}")
        return visit is None or visit(self, node) is not False

    def on_leave(
        self, original_node: _NodeT, updated_node: _NodeT
    ) -> _NodeT | cst.RemovalSentinel | cst.FlattenSentinel[_NodeT]:
        kind = type(original_node)
        try:
            leave = self._leaves[kind]
        except KeyError:
            leave = self._leaves[kind] = _handler(type(self), f"leave_{kind.__name__}")
        if leave is None:
            return updated_node
        result: _NodeT | cst.RemovalSentinel | cst.FlattenSentinel[_NodeT]
        result = leave(self, original_node, updated_node)
        self.changed = self.changed or result is not updated_node
        return result

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass
