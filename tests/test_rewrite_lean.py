"""LeanTransformer visits like ``cst.CSTTransformer`` for the handlers it offers."""

from __future__ import annotations

import libcst as cst
import pytest

from wheelshade.rewrite.lean import LeanTransformer

SOURCE = "x = f(a, 'b')\ndef g(y=h(1)):\n    return [y, 'c']\n"


class _Upper:
    """Upper-cases strings, and skips everything inside a call's arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def visit_Call(self, node: cst.Call) -> bool:
        self.seen.append(cst.Module([]).code_for_node(node.func))
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.seen.append(node.value)

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        return updated_node.with_changes(value=updated_node.value.upper())


class _Lean(_Upper, LeanTransformer):
    pass


class _Plain(_Upper, cst.CSTTransformer):
    pass


def test_same_result_and_visits_as_libcst() -> None:
    module = cst.parse_module(SOURCE)
    lean, plain = _Lean(), _Plain()
    assert module.visit(lean).code == module.visit(plain).code == SOURCE.replace("'c'", "'C'")
    assert lean.seen == plain.seen == ["x", "f", "g", "y", "h", "y"]


def test_field_hooks_are_refused() -> None:
    with pytest.raises(TypeError, match="field hooks are not called here"):

        class _Hooked(LeanTransformer):
            def visit_Call_func(self, node: cst.Call) -> None:
                pass
