"""Run the LibCST passes over one file's candidate statements, each parsed on its own."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import PositionProvider

from wheelshade.errors import RewriteError
from wheelshade.findings import Code, Finding
from wheelshade.rewrite.imports import ImportRenamer
from wheelshade.rewrite.names import ImportAliases
from wheelshade.rewrite.rules import StringRules
from wheelshade.rewrite.scan import Patterns
from wheelshade.rewrite.segments import Source, spans
from wheelshade.rewrite.strings import StringRenamer

_LIBCST_HINT = "LibCST cannot parse this statement although CPython can; please report it"
#: Makes an indented statement parse on its own; stripped again after the rewrite.
_INDENT_PREFIX = "if True:\n"
#: Statements remembered by the import pass are short (the repeated ones are imports);
#: a long one is rarely seen twice and would only hold memory.
_MEMO_CHARS = 2_000

Range = tuple[int, int]


@dataclass(frozen=True)
class Outcome:
    #: The statement's new text, or None when it stays as it is.
    new: str | None
    findings: tuple[Finding, ...] = ()


class _Failed(enum.Enum):
    UNPARSABLE = "does not parse on its own"
    INEXACT = "LibCST does not give it back byte for byte"


@dataclass(frozen=True)
class Passes:
    """The rules one file's statements are rewritten with."""

    mapping: Mapping[str, str]
    strings: StringRules | None
    patterns: Patterns
    aliases: ImportAliases
    #: First line of a literal list a loop feeds to an import call -> its module names.
    lists: Mapping[int, frozenset[str]]
    path: str
    #: Line -> strings on it that the module's data flow shows to be module names.
    proven: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def rewrite(self, src: Source, ranges: list[Range]) -> list[tuple[Range, Outcome]]:
        """Rewrite each range; a range that does not parse on its own (it shares a line
        with its enclosing statement's header) is replaced by its top-level span."""
        top = spans(src)
        chosen: list[Range] = []
        done: dict[Range, Outcome] = {}
        for start, end in ranges:
            if chosen and start < chosen[-1][1]:
                continue  # inside a top-level span already chosen by a fallback
            text = "".join(src.lines[start:end])
            prefix = _INDENT_PREFIX if text[:1] in (" ", "\t") else ""
            outcome = self._statement(text, prefix, start, end)
            if outcome is not None:
                done[(start, end)] = outcome
                chosen.append((start, end))
                continue
            span = next(s for s in top if s[0] <= start and end <= s[1])
            while chosen and chosen[-1][0] >= span[0]:
                done.pop(chosen.pop(), None)
            done[span] = self._span(src, span)
            chosen.append(span)
        return [(r, done[r]) for r in chosen]

    def _span(self, src: Source, span: Range) -> Outcome:
        text = "".join(src.lines[span[0] : span[1]])
        outcome = self._statement(text, "", *span)
        if outcome is not None:
            return outcome
        try:
            cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            raise RewriteError(
                f"cannot parse with LibCST: {exc.message}",
                path=self.path,
                line=span[0] + exc.raw_line,
                hint=_LIBCST_HINT,
            ) from None
        raise AssertionError("a span that parses was reported as unparsable")

    @functools.cached_property
    def _mapping_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.mapping.items()))

    def _statement(self, text: str, prefix: str, start: int, end: int) -> Outcome | None:
        """Both passes over one statement; None when it does not parse on its own."""
        # Each pass walks the whole statement: run only the ones its text can concern.
        imports = self.patterns.words.search(text)
        listed = frozenset[str]().union(
            *(v for line, v in self.lists.items() if start <= line < end)
        )
        if self.strings is None or not (listed or self.patterns.strings_in(text)):
            memo = _import_pass if len(text) <= _MEMO_CHARS else _import_pass.__wrapped__
            new = memo(text, prefix, self._mapping_key, imports)
            if new is _Failed.UNPARSABLE:
                return None
            if new is _Failed.INEXACT:
                raise _inexact(self.path, start)
            return Outcome(new)
        try:
            module = cst.parse_module(prefix + text)
        except cst.ParserSyntaxError:
            return None
        if not _exact(module, prefix + text):
            raise _inexact(self.path, start)
        proven = frozenset[str]().union(
            *(v for line, v in self.proven.items() if start <= line < end)
        )
        renamer = StringRenamer(self.strings, self.aliases, listed, proven)
        renamed = module.visit(renamer)
        found = _located(module, renamer.findings, self.path, start - prefix.count("\n"))
        changed = renamer.changed
        if imports:
            import_renamer = ImportRenamer(self.mapping)
            renamed = renamed.visit(import_renamer)
            changed = changed or import_renamer.changed
        return Outcome(_new_text(renamed, prefix, text) if changed else None, tuple(found))


@functools.lru_cache(maxsize=4096)
def _import_pass(
    text: str, prefix: str, mapping: tuple[tuple[str, str], ...], imports: bool
) -> str | _Failed | None:
    """The import pass alone over one statement: its new text, None when it stays.

    Its result depends on nothing but its arguments (no file context), so a statement
    seen before (pip imports the same names in hundreds of files) is not parsed again.
    """
    try:
        module = cst.parse_module(prefix + text)
    except cst.ParserSyntaxError:
        return _Failed.UNPARSABLE
    if not _exact(module, prefix + text):
        return _Failed.INEXACT
    if not imports:
        return None
    renamer = ImportRenamer(dict(mapping))
    renamed = module.visit(renamer)
    return _new_text(renamed, prefix, text) if renamer.changed else None


def _new_text(module: cst.Module, prefix: str, text: str) -> str | None:
    new = module.code[len(prefix) :]
    return None if new == text else new


def _exact(module: cst.Module, text: str) -> bool:
    """Whether LibCST gives the statement back byte for byte (not always so with form
    feeds in some places or CR-only line ends): writing its output would otherwise change
    code nobody asked to.

    Only text with a form feed or a carriage return can differ (LibCST round-trips every
    other valid source exactly), so the costly code generation runs only for those.
    """
    return not ("\x0c" in text or "\r" in text) or module.code == text


def _inexact(path: str, start: int) -> RewriteError:
    return RewriteError(
        "LibCST does not reproduce this statement exactly (form feeds or CR-only line "
        "ends); refusing to rewrite it",
        path=path,
        line=start + 1,
        hint="normalise the file's line ends and whitespace, or leave it out with --drop",
    )


def _located(
    module: cst.Module, found: list[tuple[cst.CSTNode, Code, str]], path: str, offset: int
) -> list[Finding]:
    """Give findings their line numbers; positions are computed only when there are any."""
    if not found:
        return []
    positions = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return [
        Finding(path, offset + positions[node].start.line, code, message)
        for node, code, message in found
    ]
