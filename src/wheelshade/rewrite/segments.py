"""Split a module into top-level statements so LibCST parses only the ones that need it.

LibCST parsing dominates the cost of a rewrite, and in a typical module only a few
top-level statements (the imports, a function with a local import) can change. The stdlib
parser (C, an order of magnitude faster) finds the statement boundaries; each candidate
statement is parsed and rewritten by LibCST on its own, everything else keeps its text.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from wheelshade.errors import RewriteError

_PARSE_HINT = (
    "the file may be Python 2 only or use syntax this Python cannot parse; "
    "exclude it from the wheel or port it"
)
_ENCODING_HINT = "declare the file's encoding with a PEP 263 coding comment"
_SNIPPET_LIMIT = 60


@dataclass(frozen=True)
class Source:
    text: str
    encoding: str
    lines: tuple[str, ...]
    tree: ast.Module


def decode(source: bytes, path: str) -> Source:
    """Decode as CPython would (PEP 263 cookie, BOM) and parse with the stdlib parser."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise RewriteError(
            f"cannot parse as Python 3 source: {reason}", path=path, hint=_ENCODING_HINT
        ) from None
    try:
        # Invalid escapes and the like warn at parse time; they are the wheel author's
        # business, not something to print (or, under -W error, to fail) while shading.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        line = exc.lineno if isinstance(exc, SyntaxError) else None
        reason = f"invalid syntax near {_snippet(text, line)}"
        raise RewriteError(
            f"cannot parse as Python 3 source: {reason}", path=path, line=line, hint=_PARSE_HINT
        ) from None
    # Only \n, \r\n and \r end lines for the tokenizer; str.splitlines would also split
    # on form feeds and other separators that are ordinary characters in Python source.
    lines = tuple(io.StringIO(text, newline="").readlines())
    return Source(text, encoding, lines, tree)


def spans(source: Source) -> list[tuple[int, int]]:
    """0-based ``[start, end)`` line ranges of the top-level statements, merged where they
    share a line (``import a; import b``) so each range parses on its own."""
    out: list[tuple[int, int]] = []
    for stmt in source.tree.body:
        start = _start(stmt)
        end = stmt.end_lineno or stmt.lineno
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _snippet(text: str, line: int | None) -> str:
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return "end of file"
    snippet = lines[line - 1].strip("\ufeff \t")
    if len(snippet) > _SNIPPET_LIMIT:
        snippet = snippet[: _SNIPPET_LIMIT - 3] + "..."
    return repr(snippet)


def _start(stmt: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)]) - 1


_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")
#: Per statement type, the fields that hold statements: none for most, so the walks over
#: every statement of a module pass those by without looking.
_NESTED: dict[type[ast.AST], tuple[str, ...]] = {
    kind: tuple(field for field in _STATEMENT_FIELDS if field in kind._fields)
    for kind in ast.stmt.__subclasses__()
}


def _children(stmt: ast.AST) -> list[ast.stmt]:
    """The statements directly nested in a compound statement (bodies, handlers, cases)."""
    out: list[ast.stmt] = []
    for field in _NESTED.get(type(stmt), _STATEMENT_FIELDS):
        for child in getattr(stmt, field, None) or ():
            if isinstance(child, ast.stmt):
                out.append(child)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                out.extend(child.body)
    return out


def iter_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Every statement at any depth; imports are statements, so this finds them all
    without visiting the (many more) expression nodes ``ast.walk`` would."""
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        stmt = todo.pop()
        yield stmt
        todo.extend(_children(stmt))


def _prose(stmt: ast.stmt) -> bool:
    """A bare string statement (a docstring) without doctest examples: the rewrite leaves
    it as it is anyway."""
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
        and ">>> " not in stmt.value.value
    )


def _comment(line: str) -> bool:
    """A line holding only a comment (or nothing): it never needs a rewrite. Inside a
    multi-line string such a line is text no rule renames either (no dotted path or
    import statement starts with ``#``)."""
    text = line.strip()
    return not text or text.startswith("#")


def innermost_ranges(source: Source, candidate: set[int]) -> list[tuple[int, int]]:
    """For each candidate line, the line range of the innermost statement holding it.

    Ranges are whole lines; overlapping ones are merged. A range may not parse on its
    own (``else: import x`` shares its line with a header): the caller then falls back
    to the enclosing top-level span.
    """
    found: set[tuple[int, int]] = set()
    todo: list[tuple[list[ast.stmt], set[int]]] = [(source.tree.body, candidate)]
    while todo:
        body, lines = todo.pop()
        for stmt in body:
            start, end = _start(stmt), stmt.end_lineno or stmt.lineno
            inside = {line for line in lines if start <= line < end}
            if not inside or _prose(stmt):
                continue
            children = _children(stmt)
            in_children = {
                line
                for line in inside
                for child in children
                if _start(child) <= line < (child.end_lineno or child.lineno)
            }
            # A line of a compound statement outside its children is a header line
            # (``class A(pkg.Base):``, ``except pkg.Error:``) or a comment between them;
            # only the former needs the whole statement parsed.
            own = {line for line in inside - in_children if not _comment(source.lines[line])}
            if own or not children:
                found.add((start, end))  # a header line (or a simple statement) is a candidate
            elif in_children:
                todo.append((children, in_children))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
