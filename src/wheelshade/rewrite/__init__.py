"""Rewrite Python source so imports of shaded packages use their shaded names."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import PositionProvider

from wheelshade.errors import RewriteError
from wheelshade.findings import Code, Finding
from wheelshade.rewrite.imports import ImportRenamer
from wheelshade.rewrite.names import ImportAliases
from wheelshade.rewrite.strings import StringRenamer, StringRules

__all__ = ["Rewritten", "StringRules", "mentions", "rewrite_file", "rewrite_source"]


@dataclass(frozen=True)
class Rewritten:
    #: The new bytes, or None when the original bytes stay.
    new: bytes | None
    findings: tuple[Finding, ...] = ()


_PARSE_HINT = (
    "the file may be Python 2 only or use syntax LibCST cannot parse; "
    "exclude it from the wheel or port it"
)
_ENCODING_HINT = "declare the file's encoding with a PEP 263 coding comment"
_SNIPPET_LIMIT = 60


def mentions(source: bytes, names: Iterable[str]) -> bool:
    """Return True if any of names occurs as a whole word in source.

    A cheap pre-check that lets callers skip parsing files that cannot need a change;
    never use it to decide what to rewrite. It may say True for a name that only
    appears in a comment or string, but never False for one that is imported.
    """
    key = tuple(sorted(set(names)))
    if not key:
        return False
    if not all(name.isascii() for name in key):
        return True  # the bytes of a non-ASCII name depend on the file's encoding
    return _word_pattern(key).search(source) is not None


@functools.lru_cache(maxsize=64)
def _word_pattern(names: tuple[str, ...]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(name.encode("ascii")) for name in names)
    return re.compile(rb"\b(?:" + alternatives + rb")\b")


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
        if not (original.isidentifier() and shaded.isidentifier()) or original == shaded:
            raise ValueError(f"not a top-level rename: {original!r} -> {shaded!r}")
    dists = tuple(strings.dists) if strings else ()
    in_strings = strings is not None and (
        _string_pattern(tuple(sorted(mapping))).search(source) is not None
        or (bool(dists) and _dist_pattern(dists).search(source) is not None)
    )
    if not in_strings and not mentions(source, mapping.keys()):
        return Rewritten(None)
    module = _parse(source, path)
    findings: tuple[Finding, ...] = ()
    if strings is not None and (in_strings or _NAME_CALLS.search(source)):
        aliases = ImportAliases()
        module.visit(aliases)
        renamer = StringRenamer(strings, aliases)
        parsed = module
        module = module.visit(renamer)
        findings = _located(parsed, renamer.findings, path)
    new_source = module.visit(ImportRenamer(mapping)).bytes
    return Rewritten(None if new_source == source else new_source, findings)


#: Calls and lookups the string pass reports on even when no string names a shaded module.
_NAME_CALLS = re.compile(
    rb"__import__|import_module|find_spec|resolve_name|get_data|get_loader|find_loader"
    rb"|run_module|sys\.modules|resource_|resources|metadata|get_distribution|require\("
)


def _located(
    module: cst.Module, found: list[tuple[cst.CSTNode, Code, str]], path: str
) -> tuple[Finding, ...]:
    """Give findings their line numbers; positions are computed only when there are any."""
    if not found:
        return ()
    wrapper = cst.MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    return tuple(Finding(path, positions[node].start.line, code, msg) for node, code, msg in found)


@functools.lru_cache(maxsize=64)
def _string_pattern(names: tuple[str, ...]) -> re.Pattern[bytes]:
    """A quote opening a string that starts with a name, or with an import of it."""
    alternatives = b"|".join(re.escape(name.encode()) for name in names)
    return re.compile(rb"[\'\"]\s*(?:(?:from|import)\s+)?(?:" + alternatives + rb")\b")


@functools.lru_cache(maxsize=64)
def _dist_pattern(names: tuple[str, ...]) -> re.Pattern[bytes]:
    """A quoted distribution name in any spelling that normalises to one of ``names``."""
    spellings = (
        rb"[-_.]+".join(re.escape(part.encode()) for part in name.split("-")) for name in names
    )
    return re.compile(rb"[\'\"](?:" + b"|".join(spellings) + rb")\b", re.IGNORECASE)


def _parse(source: bytes, path: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        reason = f"invalid syntax near {_snippet(source, exc.raw_line)}"
        raise RewriteError(
            f"cannot parse as Python 3 source: {reason}",
            path=path,
            line=exc.raw_line,
            hint=_PARSE_HINT,
        ) from exc
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        # Raised while decoding: a missing or unknown coding declaration, or invalid bytes.
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise RewriteError(
            f"cannot parse as Python 3 source: {reason}",
            path=path,
            line=exc.lineno if isinstance(exc, SyntaxError) else None,
            hint=_ENCODING_HINT,
        ) from exc


def _snippet(source: bytes, line: int) -> str:
    """Return the offending line, shortened, for the error message."""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return "end of file"
    text = lines[line - 1].decode("utf-8", "backslashreplace").strip("\ufeff \t")
    if len(text) > _SNIPPET_LIMIT:
        text = text[: _SNIPPET_LIMIT - 3] + "..."
    return repr(text)
