"""A statement the import pass alone concerns is rewritten once per text; what it gives
back depends on the text and the mapping only, never on the file it came from."""

from __future__ import annotations

import pytest

from wheelshade.errors import RewriteError
from wheelshade.rewrite import StringRules, rewrite_source
from wheelshade.rewrite.passes import _import_pass

IMPORT = "from demo.mod import x\n"


def test_same_statement_under_two_mappings() -> None:
    for shaded in ("demo_a", "demo_b", "demo_a"):
        new = rewrite_source(IMPORT.encode(), {"demo": shaded}, path="m.py")
        assert new == f"from {shaded}.mod import x\n".encode()


def test_same_statement_with_and_without_the_string_pass() -> None:
    source = b"import demo; NAME = 'demo.mod'\n"
    rules = StringRules({"demo": "S"}, frozenset({"demo", "demo.mod"}))
    for _ in range(2):  # the second round meets what the first left in the memo
        plain = rewrite_source(source, {"demo": "S"}, path="m.py")
        with_strings = rewrite_source(source, {"demo": "S"}, path="m.py", strings=rules)
        assert plain == b"import S as demo; NAME = 'demo.mod'\n"
        assert with_strings == b"import S as demo; NAME = 'S.mod'\n"


def test_indented_statement_and_its_top_level_twin() -> None:
    source = b"import demo\ndef f():\n    import demo\n"
    new = rewrite_source(source, {"demo": "S"}, path="m.py")
    assert new == b"import S as demo\ndef f():\n    import S as demo\n"


def test_unchanged_statement_comes_back_as_none() -> None:
    # ``demo`` is a word of the statement, but the statement imports nothing.
    assert rewrite_source(b"demo = 1\n", {"demo": "S"}, path="m.py") is None


@pytest.mark.parametrize("_round", [1, 2])
def test_refusal_is_not_remembered_as_a_result(_round: int) -> None:
    # LibCST does not give CR-only line ends back; every file saying so is refused.
    with pytest.raises(RewriteError, match=r"m\.py:1: LibCST does not reproduce"):
        rewrite_source(b"import demo\rx = 1\r", {"demo": "S"}, path="m.py")


def test_memo_holds_short_statements_only() -> None:
    _import_pass.cache_clear()
    long_import = "from demo import (\n" + "    name,\n" * 400 + ")\n"
    rewrite_source(long_import.encode(), {"demo": "S"}, path="m.py")
    rewrite_source(IMPORT.encode(), {"demo": "S"}, path="m.py")
    assert _import_pass.cache_info().currsize == 1
