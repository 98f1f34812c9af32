"""Rewrite Python source so shaded packages are reached under their shaded names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import PositionProvider

from wheelshade.errors import RewriteError
from wheelshade.findings import Code, Finding
from wheelshade.layout import is_mypyc_group
from wheelshade.rewrite.flows import ImportLists, import_lists
from wheelshade.rewrite.imports import ImportRenamer
from wheelshade.rewrite.names import ImportAliases, aliases_from_ast
from wheelshade.rewrite.scan import Patterns
from wheelshade.rewrite.segments import Source, decode, innermost_ranges, spans
from wheelshade.rewrite.strings import StringRenamer, StringRules

__all__ = [
    "Rewritten",
    "StringRules",
    "may_change",
    "mentions",
    "rewrite_file",
    "rewrite_source",
]

_LIBCST_HINT = "LibCST cannot parse this statement although CPython can; please report it"


@dataclass(frozen=True)
class Rewritten:
    #: The new bytes, or None when the original bytes stay.
    new: bytes | None
    findings: tuple[Finding, ...] = ()


def mentions(source: bytes, names: Iterable[str]) -> bool:
    """Return True if any of names occurs as a whole word in source.

    A cheap pre-check that lets callers skip parsing files that cannot need a change;
    never used to decide what to rewrite. It may say True for a name that only appears
    in a comment or string, but never False for one that is imported.
    """
    key = tuple(sorted({name.split(".")[0] for name in names}))
    if not key:
        return False
    if not all(name.isascii() for name in key):
        return True  # the bytes of a non-ASCII name depend on the file's encoding
    return Patterns.of(key, ()).words_b.search(source)


def _words(mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The words a source must contain to need a change: top-level names, and the
    namespace of a portion (``from google import auth`` never spells ``google.auth``)."""
    return tuple(sorted({key.split(".")[0] for key in mapping}))


def may_change(source: bytes, mapping: Mapping[str, str], strings: StringRules | None) -> bool:
    """The textual pre-check ``rewrite_file`` starts with: False means no parse is needed."""
    patterns = Patterns.of(_words(mapping), tuple(sorted(strings.dists)) if strings else ())
    return patterns.candidate(source, strings is not None)


def rewrite_source(
    source: bytes,
    mapping: Mapping[str, str],
    *,
    path: str,
    strings: StringRules | None = None,
) -> bytes | None:
    """Return source with shaded names renamed, or None if nothing changed.

    mapping maps an original top-level import name to its shaded top-level name; import
    statements are always rewritten, string literals too when ``strings`` is given (see
    ``StringRenamer``). None means the caller must keep the original bytes. Encoding,
    BOM, line endings, comments and all code other than the rewritten nodes are kept
    byte for byte. Raises RewriteError when the source cannot be parsed as Python 3.
    """
    return rewrite_file(source, mapping, path=path, strings=strings).new


def rewrite_file(
    source: bytes,
    mapping: Mapping[str, str],
    *,
    path: str,
    strings: StringRules | None = None,
) -> Rewritten:
    """``rewrite_source`` plus the findings: references seen but not safely rewritable."""
    for original, shaded in mapping.items():
        # A mypyc group library may start with a digit; no import statement names it. A
        # namespace portion is ``ns.portion`` -> ``shaded_ns.portion``.
        named = all(p.isidentifier() for p in original.split(".")) or is_mypyc_group(original)
        dots = original.count(".")
        valid = dots <= 1 and shaded.count(".") == dots and shaded.replace(".", "").isidentifier()
        if not (named and valid) or original == shaded:
            raise ValueError(f"not a top-level rename: {original!r} -> {shaded!r}")
    patterns = Patterns.of(_words(mapping), tuple(sorted(strings.dists)) if strings else ())
    if not patterns.candidate(source, strings is not None):
        return Rewritten(None)
    src = decode(source, path)
    with_strings = strings is not None
    candidates = patterns.candidate_lines(src.lines, with_strings)
    if not candidates:
        return Rewritten(None)
    aliases = aliases_from_ast(src.tree) if strings is not None else ImportAliases()
    flows = (
        import_lists(src.tree, aliases, src.text) if strings is not None
        else ImportLists({}, frozenset())
    )
    lists = {line: v for line, v in flows.literals.items() if v & frozenset(mapping)}
    candidates |= set(lists)
    parsed = _parse_segments(src, innermost_ranges(src, candidates), path)
    lines = list(src.lines)
    findings: list[Finding] = []
    changed = False
    # Right to left, so replacing one range does not move the ones still to do.
    for (start, end), (module, prefix) in reversed(parsed):
        text = "".join(src.lines[start:end])
        found: list[Finding] = []
        # Each pass walks the whole statement: run only the ones its text can concern.
        listed = frozenset().union(*(v for line, v in lists.items() if start <= line < end))
        if strings is not None and (listed or patterns.strings_in(text)):
            renamer = StringRenamer(strings, aliases, listed)
            before = module
            module = module.visit(renamer)
            found = _located(before, renamer.findings, path, start - prefix.count("\n"))
        findings[:0] = found
        if patterns.words.search(text):
            module = module.visit(ImportRenamer(mapping))
        new = module.code[len(prefix) :]
        if new != text:
            lines[start:end] = [new]
            changed = True
    # A loop's import call fed by a literal list is no longer a name computed at run time.
    findings = [
        f for f in findings if not (f.code is Code.DYNAMIC_NAME and f.line in flows.calls)
    ]
    if not changed:
        return Rewritten(None, tuple(findings))
    return Rewritten("".join(lines).encode(src.encoding), tuple(findings))


#: Makes an indented statement parse on its own; stripped again after the rewrite.
_INDENT_PREFIX = "if True:\n"


def _parse_segments(
    src: Source, ranges: list[tuple[int, int]], path: str
) -> list[tuple[tuple[int, int], tuple[cst.Module, str]]]:
    """Parse each range with LibCST; a range that does not parse on its own (it shares a
    line with its enclosing statement's header) is replaced by its top-level span."""
    top = spans(src)
    chosen: list[tuple[int, int]] = []
    parsed: dict[tuple[int, int], tuple[cst.Module, str]] = {}
    for start, end in ranges:
        if chosen and start < chosen[-1][1]:
            continue  # inside a top-level span already chosen by a fallback
        text = "".join(src.lines[start:end])
        prefix = _INDENT_PREFIX if text[:1] in (" ", "\t") else ""
        try:
            module = cst.parse_module(prefix + text)
        except cst.ParserSyntaxError:
            pass
        else:
            _check_round_trip(module, prefix + text, path, start)
            parsed[(start, end)] = (module, prefix)
            chosen.append((start, end))
            continue
        span = next(s for s in top if s[0] <= start and end <= s[1])
        while chosen and chosen[-1][0] >= span[0]:
            parsed.pop(chosen.pop(), None)
        parsed[span] = (_parse_span(src, span, path), "")
        chosen.append(span)
    return [(r, parsed[r]) for r in chosen]


def _check_round_trip(module: cst.Module, text: str, path: str, start: int) -> None:
    """Refuse a statement LibCST would not give back byte for byte (form feeds in some
    places, CR-only line ends): writing its output would change code nobody asked to.

    Only text with a form feed or a carriage return can differ (LibCST round-trips every
    other valid source exactly), so the costly code generation runs only for those.
    """
    if ("\x0c" in text or "\r" in text) and module.code != text:
        raise RewriteError(
            "LibCST does not reproduce this statement exactly (form feeds or CR-only line "
            "ends); refusing to rewrite it",
            path=path,
            line=start + 1,
            hint="normalise the file's line ends and whitespace, or leave it out with --drop",
        )


def _parse_span(src: Source, span: tuple[int, int], path: str) -> cst.Module:
    text = "".join(src.lines[span[0] : span[1]])
    try:
        module = cst.parse_module(text)
        _check_round_trip(module, text, path, span[0])
        return module
    except cst.ParserSyntaxError as exc:
        raise RewriteError(
            f"cannot parse with LibCST: {exc.message}",
            path=path,
            line=span[0] + exc.raw_line,
            hint=_LIBCST_HINT,
        ) from None


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
