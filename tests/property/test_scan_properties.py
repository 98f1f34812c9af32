"""Property tests of the textual pre-checks: the fast searches find exactly what the
plain ``\\b`` regexes they replace find (same files, same lines, same statements)."""

from __future__ import annotations

import bisect
import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from wheelshade.rewrite import flows
from wheelshade.rewrite.scan import Patterns

#: The call names the string pass reports on, as the one combined regex spelled them.
_NAME_CALLS = (
    r"\b(?:__import__|import_module|find_spec|resolve_name|get_data|get_loader|find_loader"
    r"|run_module|resource_\w+|files|read_text|read_binary|open_text|open_binary|contents"
    r"|version|distribution|metadata|requires|from_name|get_distribution|require|patch"
    r"|setattr)\s*\(|\bsys\.modules\b"
)
#: Names include a call name (``files``) and ``sys``, whose matches overlap the others'.
NAMES = st.lists(st.sampled_from(["a", "ab", "files", "sys", "℘x", "é"]), min_size=1, max_size=3)
DISTS = st.lists(st.sampled_from(["a", "a-b", "files"]), max_size=2)
PIECES = [
    "a", "ab", "files", "sys", "℘x", "é", "x", "_", "1", ".", "-", " ", "\t", "\n", "\r\n",
    "'", '"', "(", "from ", "import ", "import_module", "resource_x", "sys.modules", "A-B",
    "files(", "patch (", "#", "require", "s", "__import__", "xversion", "resource_", "(",
]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


def _reference(names: tuple[str, ...], dists: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    words = r"\b(?:" + "|".join(map(re.escape, names)) + r")\b"
    quoted = r"['\"]\s*(?:(?:from|import)\s+)?(?:" + "|".join(map(re.escape, names)) + r")\b"
    spellings = [r"[-_.]+".join(map(re.escape, d.split("-"))) for d in dists]
    alternatives = [quoted]
    if spellings:
        alternatives.append(r"(?i:['\"](?:" + "|".join(spellings) + r")\b)")
    quoted_any = "|".join(alternatives)
    return re.compile(words), re.compile(f"{quoted_any}|{_NAME_CALLS}"), re.compile(quoted_any)


def _reference_lines(text: str, words: re.Pattern[str], strings: re.Pattern[str]) -> set[int]:
    lines = re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text)
    starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
    found = {bisect.bisect_right(starts, m.start()) - 1 for m in words.finditer(text)}
    found |= {bisect.bisect_right(starts, m.start()) - 1 for m in strings.finditer(text)}
    return found


@given(names=NAMES, dists=DISTS, text=TEXTS)
def test_fast_searches_match_the_plain_regexes(
    names: list[str], dists: list[str], text: str
) -> None:
    key, dist_key = tuple(sorted(set(names))), tuple(sorted(set(dists)))
    words, strings, quoted = _reference(key, dist_key)
    patterns = Patterns.of(key, dist_key)
    lines = re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text)
    assert patterns.candidate_lines(lines, True) == _reference_lines(text, words, strings)
    assert patterns.candidate_lines(lines, False) == _reference_lines(text, words, words)
    assert patterns.strings_in(text) == bool(strings.search(text))
    assert patterns.words.search(text) == bool(words.search(text))
    old_flows = re.search(r"\b(?:__import__|import_module)\s*\(", text) is not None
    assert flows._IMPORT_CALL_TEXT.search(text) == old_flows
    data = text.encode()
    reference_b = bool(re.search(words.pattern.encode(), data)) or bool(
        re.search(quoted.pattern.encode(), data)
    )
    assert patterns.candidate(data, True) == reference_b
