"""Rewrite Python source so shaded packages are reached under their shaded names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wheelshade.findings import Code, Finding
from wheelshade.rewrite.evidence import proven_strings
from wheelshade.rewrite.flows import ImportLists, import_lists
from wheelshade.rewrite.names import ImportAliases, aliases_from_ast, module_of, package_of
from wheelshade.rewrite.passes import Passes
from wheelshade.rewrite.rules import StringRules
from wheelshade.rewrite.scan import Patterns
from wheelshade.rewrite.segments import decode, innermost_ranges
from wheelshade.wheel.layout import is_mypyc_group

__all__ = [
    "Rewritten",
    "StringRules",
    "may_change",
    "mentions",
    "rewrite_file",
    "rewrite_source",
]

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


def _quoted_names(strings: StringRules | None) -> tuple[str, ...]:
    """Quoted names other than modules the string pass renames: distributions, and plugin
    entry-point groups of the set (``"pkg_plugins"``)."""
    return tuple(sorted({*strings.dists, *strings.groups})) if strings else ()


def may_change(source: bytes, mapping: Mapping[str, str], strings: StringRules | None) -> bool:
    """The textual pre-check ``rewrite_file`` starts with: False means no parse is needed."""
    patterns = Patterns.of(_words(mapping), _quoted_names(strings))
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
        # namespace portion is ``ns.portion`` -> ``shaded_ns.portion`` or a top-level name.
        named = all(p.isidentifier() for p in original.split(".")) or is_mypyc_group(original)
        dots = original.count(".")
        valid = shaded.count(".") in (0, dots) and (
            shaded.replace(".", "").isidentifier())
        if not (named and valid) or original == shaded:
            raise ValueError(f"not a top-level rename: {original!r} -> {shaded!r}")
    patterns = Patterns.of(_words(mapping), _quoted_names(strings))
    if not patterns.candidate(source, strings is not None):
        return Rewritten(None)
    src = decode(source, path)
    with_strings = strings is not None
    candidates = patterns.candidate_lines(src.lines, with_strings)
    if not candidates:
        return Rewritten(None)
    aliases = (
        aliases_from_ast(src.tree, package_of(path)) if strings is not None else ImportAliases()
    )
    flows = (
        import_lists(src.tree, aliases, src.text) if strings is not None
        else ImportLists({}, frozenset())
    )
    lists = {line: v for line, v in flows.literals.items() if v & frozenset(mapping)}
    candidates |= set(lists)
    proven = proven_strings(src.tree, aliases, src.text, mapping) if strings is not None else {}
    checked = strings.checked.get(module_of(path) or "", {}) if strings is not None else {}
    if checked:
        proven = {line: proven.get(line, frozenset()) | checked.get(line, frozenset())
                  for line in {*proven, *checked}}
        candidates |= set(checked)
    passes = Passes(mapping, strings, patterns, aliases, lists, path, proven)
    lines = list(src.lines)
    findings: list[Finding] = []
    changed = False
    # Right to left, so replacing one range does not move the ones still to do.
    for (start, end), outcome in reversed(passes.rewrite(src, innermost_ranges(src, candidates))):
        findings[:0] = outcome.findings
        if outcome.new is not None:
            lines[start:end] = [outcome.new]
            changed = True
    # A loop's import call fed by a literal list is no longer a name computed at run time.
    findings = _capped([
        f for f in findings if not (f.code is Code.DYNAMIC_NAME and f.line in flows.calls)
    ])
    if not changed:
        return Rewritten(None, tuple(findings))
    return Rewritten("".join(lines).encode(src.encoding), tuple(findings))


#: Unproven module paths listed one by one per file; more are counted in one finding (a
#: table of names of modules the wheel does not ship can hold hundreds).
_UNPROVEN_SHOWN = 3


def _capped(findings: list[Finding]) -> list[Finding]:
    unproven = [f for f in findings if f.code is Code.UNPROVEN_MODULE_PATH]
    if len(unproven) <= _UNPROVEN_SHOWN + 1:
        return findings
    rest = unproven[_UNPROVEN_SHOWN:]
    hidden = {id(f) for f in rest}
    kept = [f for f in findings if id(f) not in hidden]
    first = rest[0]
    kept.append(Finding(
        first.path, first.line, first.code,
        f"{len(rest)} more strings from here on look like module paths of the shading set "
        "with no evidence that they are; left unchanged",
    ))
    return kept
