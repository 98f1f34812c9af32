"""The rewrite pool: tasks of similar size, largest first; results in input order."""

from __future__ import annotations

import pytest

from wheelshade.errors import RewriteError
from wheelshade.rewrite import Rewritten, StringRules
from wheelshade.rewrite.pool import LARGE, MIN_PARALLEL, SourceRewriter, tasks


@pytest.mark.parametrize(
    ("sizes", "parts", "expected"),
    [
        ([], 4, []),
        ([5], 4, [[0]]),
        ([1, 9, 3, 9], 2, [[1, 3], [2, 0]]),  # ties keep input order
        ([10, 1, 1, 1, 1, 1], 2, [[0], [1, 2, 3, 4, 5]]),
        ([2, 2, 2, 2], 4, [[0], [1], [2], [3]]),
        ([3, 3, 3], 1, [[0, 1, 2]]),
        # Large files go together, so no two of them are parsed at the same time.
        ([LARGE, 5, LARGE + 1, 5], 2, [[2, 0], [1, 3]]),
        ([LARGE], 2, [[0]]),
    ],
    ids=["empty", "one", "ties", "one-big", "even", "one-part", "large", "only-large"],
)
def test_tasks(sizes: list[int], parts: int, expected: list[list[int]]) -> None:
    assert tasks(sizes, parts) == expected


def _sources() -> list[tuple[bytes, str]]:
    """Files of very different sizes, some unchanged, one unparsable."""
    out = []
    for i in range(MIN_PARALLEL * 2):
        body = b"import demo.mod\nx = 'demo.mod'\n" * (1 + i % 7 * 40) if i % 3 else b"y = 1\n"
        out.append((body, f"pkg/m{i}.py"))
    out[5] = (b"import demo\nprint 'x'\n", "pkg/bad.py")
    return out


def _plain(results: list[Rewritten | RewriteError]) -> list[object]:
    return [str(r) if isinstance(r, RewriteError) else r for r in results]


def test_parallel_results_equal_serial_in_input_order() -> None:
    mapping = {"demo": "demo_s"}
    rules = StringRules(mapping, frozenset({"demo", "demo.mod"}))
    items = _sources()
    with SourceRewriter(mapping, rules, jobs=2) as parallel:
        got = parallel.run(items)
    with SourceRewriter(mapping, rules, jobs=1) as serial:
        expected = serial.run(items)
    assert _plain(got) == _plain(expected)
    assert isinstance(got[5], RewriteError) and got[5].path == "pkg/bad.py"
    changed, unchanged = got[1], got[3]
    assert isinstance(changed, Rewritten) and changed.new is not None
    assert unchanged == Rewritten(None)
