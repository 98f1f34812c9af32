"""Textual pre-checks: which files, lines and statements can need a rewrite.

Regexes here only *find* candidates; LibCST decides what changes. Each pattern starts
with a literal or a set of first characters, so ``re`` skips ahead with a fast scan
instead of trying the whole pattern at every position. A leading ``\\b`` would disable
that scan (it made the candidate search three times slower on pip), so word starts are
checked by hand instead: a match that does not start a word lies inside one, and a
match that does start a word cannot begin inside it, so dropping the first never hides
the second.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import AnyStr, Generic

#: Calls the string pass reports on even when no string names a shaded module.
_CALL_NAMES = (
    "__import__", "import_module", "find_spec", "resolve_name", "get_data", "get_loader",
    "find_loader", "run_module", "files", "read_text", "read_binary", "open_text",
    "open_binary", "contents", "version", "distribution", "metadata", "requires",
    "from_name", "get_distribution", "require", "patch", "setattr",
)
_WORD = re.compile(r"\w")
_WORD_B = re.compile(rb"\w")


@dataclass(frozen=True)
class _WordStart(Generic[AnyStr]):
    """A pattern that must match at a word start (``\\b`` + pattern), searched fast."""

    pattern: re.Pattern[AnyStr]
    word: re.Pattern[AnyStr]  # ``\w``, of the same kind (str or bytes) as the pattern
    #: False when ``\b`` stays in the pattern: some match can start with a character
    #: that is no word character (``℘`` may start an identifier; in bytes, any non-ASCII
    #: letter), and there ``\b`` means something else than a word start.
    by_hand: bool

    def starts(self, text: AnyStr) -> Iterator[int]:
        for match in self.pattern.finditer(text):
            start = match.start()
            if not self.by_hand or start == 0 or self.word.match(text, start - 1) is None:
                yield start

    def search(self, text: AnyStr) -> bool:
        return next(self.starts(text), None) is not None


def _word_start(pattern: str, first: Sequence[str]) -> tuple[_WordStart[str], _WordStart[bytes]]:
    """The str and the bytes search for ``\\b`` + pattern, whose matches start with one
    of the characters in ``first``."""
    by_hand = all(_WORD.match(c) for c in first)
    by_hand_b = all(c.isascii() and _WORD.match(c) for c in first)
    return (
        _WordStart(re.compile(pattern if by_hand else r"\b" + pattern), _WORD, by_hand),
        _WordStart(
            re.compile((pattern if by_hand_b else r"\b" + pattern).encode()), _WORD_B, by_hand_b
        ),
    )


@dataclass(frozen=True)
class Calls:
    """Where a call of one of some functions starts: ``\\b(?:names)\\s*\\(``.

    Searched backwards from each ``(``, on the reversed text (a copy made at memory speed):
    a literal first character lets ``re`` jump from one parenthesis to the next instead of
    stopping at every letter a name starts with (ten times faster on pip). Both ways the
    word before the parenthesis must be a whole one, so they find the same calls.
    """

    reversed_pattern: re.Pattern[str]

    @staticmethod
    def of(names: Sequence[str], prefixes: Sequence[str] = ()) -> Calls:
        """Calls of ``names``, and of any longer word that starts with one of ``prefixes``."""
        words = [re.escape(name[::-1]) for name in names]
        words += [r"\w+" + re.escape(prefix[::-1]) for prefix in prefixes]
        return Calls(re.compile(r"\(\s*(?:" + "|".join(words) + r")(?!\w)"))

    def starts(self, text: str) -> Iterator[int]:
        size = len(text)
        for match in self.reversed_pattern.finditer(text[::-1]):
            yield size - match.end()

    def search(self, text: str) -> bool:
        return self.reversed_pattern.search(text[::-1]) is not None


_CALL_SEARCH = Calls.of(_CALL_NAMES, ["resource_"])
_SYS_MODULES = _word_start(r"sys\.modules\b", "s")[0]


@dataclass(frozen=True)
class Patterns:
    """Textual pre-checks, as bytes (whole file) and as text (lines, one statement)."""

    words: _WordStart[str]  # a shaded top-level name as a whole word
    quoted: re.Pattern[str]  # a quote opening a string that names a shaded module or dist
    words_b: _WordStart[bytes]
    quoted_b: re.Pattern[bytes]
    #: An import statement of a shaded name inside a larger string (a template's block, an
    #: escaped line start); a real line start counts only in a statement with a long string.
    embedded: re.Pattern[str] | None = None

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(names: tuple[str, ...], dists: tuple[str, ...]) -> Patterns:
        alternatives = "(?:" + "|".join(map(re.escape, names)) + r")\b"
        # A quote opening a string that starts with a name or with an import of it, or a
        # quoted distribution name in any spelling that normalises to one of ``dists``.
        # (``"import os, pkg; ..."``: a later name of an import list too)
        named = r"\s*(?:(?:from|import)\s+(?:[\w.]+(?:\s+as\s+\w+)?\s*,\s*)*)?" + alternatives
        spellings = [r"[-_.]+".join(map(re.escape, d.split("-"))) for d in dists]
        if spellings:
            named += r"|(?i:(?:" + "|".join(spellings) + r")\b)"
        quoted = rf"['\"](?:{named})"
        words, words_b = _word_start(alternatives, [name[:1] for name in names])
        embedded = re.compile(
            r"(<%!?|\{%-?|\\n|\n|>>> )[ \t]*(?:from|import)[ \t]+" + alternatives
        )
        return Patterns(
            words, re.compile(quoted), words_b, re.compile(quoted.encode()), embedded
        )

    def candidate(self, source: bytes, with_strings: bool) -> bool:
        """Whether a file can need a change: it names a shaded module somewhere."""
        return self.words_b.search(source) or (
            with_strings and self.quoted_b.search(source) is not None
        )

    def strings_in(self, text: str) -> bool:
        """Whether a statement holds anything the string pass acts or reports on."""
        return (
            self.quoted.search(text) is not None
            or _CALL_SEARCH.search(text)
            or _SYS_MODULES.search(text)
            or self._embedded_in(text)
        )

    def _embedded_in(self, text: str) -> bool:
        if self.embedded is None:
            return False
        long_string = '"""' in text or "'''" in text
        return any(
            m.group(1) != "\n" or long_string for m in self.embedded.finditer(text)
        )

    def candidate_lines(self, lines: Sequence[str], with_strings: bool) -> set[int]:
        """Indexes of the lines with a candidate.

        The searches run apart, so one can no longer hide a match of another that starts
        inside its own. Only a quoted import can hide one on a later line
        (``"\\n  from pkg``), and the name it ends with is a match of ``words``.
        """
        starts = list(itertools.accumulate((len(line) for line in lines), initial=0))
        text = "".join(lines)
        found = set(self.words.starts(text))
        if with_strings:
            found.update(m.start() for m in self.quoted.finditer(text))
            found.update(_CALL_SEARCH.starts(text))
            found.update(_SYS_MODULES.starts(text))
        return {bisect.bisect_right(starts, pos) - 1 for pos in found}
