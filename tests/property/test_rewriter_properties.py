"""Property tests of ``rewrite_source``: generated modules using every import form and placement.

For a module importing ``a`` (with ``a.b`` and ``a.b.c``) the rewritten module must parse,
bind the same names to the same modules once ``a`` is shaded to ``a_1_0_deadbeef`` (both
packages exist on disk, see conftest), load nothing under the original name, and be left
alone by a second rewrite. A module that names no shaded package must come back as None.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wheelshade.rewrite import StringRules, rewrite_source

from .conftest import HOST, ORIGINAL, SHADED, forget_modules

MAPPING = {ORIGINAL: SHADED}
STRINGS = StringRules(MAPPING, frozenset({"a", "a.b", "a.b.c"}))
#: Module -> names ``from <module> import ...`` may take (submodules and attributes).
MEMBERS = {
    "a": ("b", "NAME"),
    "a.b": ("c", "NAME"),
    "a.b.c": ("NAME",),
    "ab": ("NAME",),
    "a_b": ("NAME",),
}
SHADED_MODULES = ("a", "a.b", "a.b.c")
UNRELATED_MODULES = ("ab", "a_b")
#: ``from . import <name>`` and ``from .<name> import NAME`` inside the host package.
RELATIVE = ("a", "x")
ALIASES = ("x", "y", "a", "b", "ab", "NAME")
PATH = "host/generated.py"


# -- generating modules ----------------------------------------------------------------------


@st.composite
def dotted(draw: st.DrawFn, module: str) -> str:
    """A module path as written, sometimes with spaces around the dots (``a . b``)."""
    dot = draw(st.sampled_from([".", ".", ".", " . "]))
    return dot.join(module.split("."))


@st.composite
def asname(draw: st.DrawFn) -> str:
    alias = draw(st.none() | st.sampled_from(ALIASES))
    return "" if alias is None else f" as {alias}"


@st.composite
def import_stmt(draw: st.DrawFn, modules: tuple[str, ...]) -> str:
    """``import m1 [as x], m2, ...``, sometimes continued with a backslash."""
    alias = st.none() | st.sampled_from(ALIASES)
    parts = draw(st.lists(st.tuples(st.sampled_from(modules), alias), min_size=1, max_size=3))
    text = [draw(dotted(module)) + (f" as {name}" if name else "") for module, name in parts]
    sep = draw(st.sampled_from([", ", ", ", ", \\\n        "]))
    return "import " + sep.join(text)


@st.composite
def from_stmt(draw: st.DrawFn, modules: tuple[str, ...]) -> str:
    """``from m import n [as x], ...``, sometimes parenthesised over several lines."""
    module = draw(st.sampled_from(modules))
    names = draw(st.lists(st.sampled_from(MEMBERS[module]), min_size=1, max_size=3))
    parts = [name + draw(asname()) for name in names]
    if draw(st.booleans()):
        return f"from {draw(dotted(module))} import " + ", ".join(parts)
    return f"from {draw(dotted(module))} import (\n    " + ",\n    ".join(parts) + ",\n)"


@st.composite
def relative_stmt(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(RELATIVE))
    if draw(st.booleans()):
        return f"from . import {name}{draw(asname())}"
    return f"from .{name} import NAME{draw(asname())}"


def statement(modules: tuple[str, ...], *, star: bool) -> st.SearchStrategy[str]:
    """One import statement (or two on a line) using ``modules`` or unrelated ones."""
    everything = modules + UNRELATED_MODULES
    options = [
        import_stmt(everything),
        from_stmt(everything),
        relative_stmt(),
        import_stmt(UNRELATED_MODULES),
    ]
    if star:
        options.append(st.sampled_from(everything).map(lambda m: f"from {m} import *"))
    single = st.one_of(options)
    comment = st.sampled_from(["", "", f"  # import {ORIGINAL}.b", "  # noqa"])
    joined = st.tuples(single, single).map(lambda pair: "; ".join(pair))
    return st.tuples(single | joined, comment).map("".join)


@dataclass(frozen=True)
class Block:
    """Statements placed at module level or inside a def, class, try or TYPE_CHECKING block."""

    kind: str  # "module", "def", "class", "try", "type_checking"
    body: tuple[Block | str, ...]
    fallback: tuple[Block | str, ...] = ()  # the except branch of a try


def block(
    modules: tuple[str, ...], kind: str, depth: int, *, star: bool = True
) -> st.SearchStrategy[Block]:
    """A block of 1-4 items; ``star`` says ``import *`` is allowed (not in a def or class)."""
    star = star and kind not in ("def", "class")
    items: st.SearchStrategy[Block | str] = statement(modules, star=star)
    if depth > 0:
        kinds = st.sampled_from(["def", "class", "try", "type_checking"])
        items = items | kinds.flatmap(lambda k: block(modules, k, depth - 1, star=star))
    body = st.lists(items, min_size=1, max_size=4).map(tuple)
    if kind == "try":
        # Sometimes the try body fails half way, so the except branch runs as well.
        failing = st.sampled_from(
            ["", "import a.missing", "from a.b import missing"]
            if modules
            else ["", "import ab.missing", "from a_b import missing"]
        )
        tried = st.tuples(body, failing).map(lambda pair: pair[0] + ((pair[1],) if pair[1] else ()))
        return st.builds(Block, st.just(kind), tried, body)
    return st.builds(Block, st.just(kind), body)


@dataclass
class Render:
    """Turns a block tree into source text; results of defs and classes are kept in ``_rN``."""

    indent: str
    counter: int = 0

    def module(self, top: Block) -> str:
        return "".join(self.lines(top.body, 0))

    def lines(self, items: tuple[Block | str, ...], level: int) -> list[str]:
        out: list[str] = []
        pad = self.indent * level
        for item in items:
            if isinstance(item, str):
                out.append(pad + item + "\n")
                continue
            self.counter += 1
            n = self.counter
            inner = pad + self.indent
            if item.kind == "def":
                out.append(f"{pad}def _f{n}():\n")
                out += self.lines(item.body, level + 1)
                out.append(f"{inner}return dict(locals())\n")
                out.append(f"{pad}_r{n} = _f{n}()\n")
            elif item.kind == "class":
                out.append(f"{pad}class _C{n}:\n")
                out += self.lines(item.body, level + 1)
                out.append(f"{pad}_r{n} = dict(vars(_C{n}))\n")
            elif item.kind == "try":
                out.append(f"{pad}try:\n")
                out += self.lines(item.body, level + 1)
                out.append(f"{pad}except ImportError:\n")
                out += self.lines(item.fallback, level + 1)
            else:
                out.append(f"{pad}if TYPE_CHECKING:\n")
                out += self.lines(item.body, level + 1)
        return out


@st.composite
def modules(draw: st.DrawFn, names: tuple[str, ...] = SHADED_MODULES) -> bytes:
    """Module source as bytes: LF, CRLF or mixed line ends; spaces or tab indents."""
    top = draw(block(names, "module", depth=2))
    text = Render(draw(st.sampled_from(["    ", "\t", "  "]))).module(top)
    ending = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    if ending == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=text.count("\n"), max_size=text.count("\n")))
        pieces = text.split("\n")
        text = "".join(
            piece + ("\r\n" if flip else "\n") for piece, flip in zip(pieces, flips, strict=False)
        )
    else:
        text = text.replace("\n", ending)
    return text.encode()


#: Modules that never name the shaded package, though ``a`` appears in comments and strings.
unrelated_modules = st.tuples(
    modules(names=()),
    st.sampled_from(["", "# import a\n", "S = 'a.b'\n", "a_b_c = 1\n", "'''import a'''\n"]),
).map(lambda pair: pair[1].encode() + pair[0])


# -- running modules -------------------------------------------------------------------------


def unshade(value: str) -> str:
    if value == SHADED or value.startswith(SHADED + "."):
        return ORIGINAL + value[len(SHADED) :]
    return value


def canonical(value: object) -> object:
    """What a bound value means, with the shaded name mapped back to the original."""
    if isinstance(value, types.ModuleType):
        return ("module", unshade(value.__name__))
    if isinstance(value, str):
        return unshade(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, types.FunctionType | type):
        return (type(value).__name__, value.__qualname__)
    return repr(value)


def run(source: bytes) -> dict[str, object]:
    """Execute ``source`` as module ``host.generated``; return its namespace, canonicalised."""
    forget_modules()
    namespace: dict[str, object] = {
        "__name__": f"{HOST}.generated",
        "__package__": HOST,
        "__builtins__": builtins,
        "TYPE_CHECKING": True,  # so the TYPE_CHECKING blocks run too
    }
    exec(compile(source, PATH, "exec", dont_inherit=True), namespace)
    loaded = sorted(name for name in sys.modules if name.partition(".")[0] == ORIGINAL)
    result = canonical(namespace)
    assert isinstance(result, dict)
    result["loaded originals"] = loaded
    return result


# -- properties ------------------------------------------------------------------------------


@given(source=modules())
def test_rewritten_module_parses_and_binds_the_same_names(packages: Path, source: bytes) -> None:
    new = rewrite_source(source, MAPPING, path=PATH)
    if new is None:  # nothing imports the shaded package here
        new = source
    else:
        ast.parse(new)
    before, after = run(source), run(new)
    assert after.pop("loaded originals") == []
    before.pop("loaded originals")
    assert without_extra_binding(after, before) == before


def without_extra_binding(after: dict[str, object], before: dict[str, object]) -> object:
    """``after`` less the one name the rewrite may add: ``import a.b`` becomes
    ``import a_1_0_deadbeef.b, a_1_0_deadbeef as a``, which binds ``a_1_0_deadbeef`` too
    (docs/how-it-works.md); compared in nested namespaces (defs, classes) as well."""
    out: dict[str, object] = {}
    for key, value in after.items():
        if key == SHADED and key not in before and value == ("module", ORIGINAL):
            continue
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            value = without_extra_binding(value, old)
        out[key] = value
    return out


@given(source=modules())
def test_rewriting_twice_changes_nothing(packages: Path, source: bytes) -> None:
    for strings in (None, STRINGS):
        new = rewrite_source(source, MAPPING, path=PATH, strings=strings)
        if new is not None:
            ast.parse(new)
            assert rewrite_source(new, MAPPING, path=PATH, strings=strings) is None


@given(source=unrelated_modules)
def test_module_without_the_shaded_name_is_left_alone(packages: Path, source: bytes) -> None:
    assert rewrite_source(source, MAPPING, path=PATH) is None


@pytest.mark.parametrize(
    "source", [b"import a, a.b as a, a.b\n", b"import a, ab as a, a.b\n"], ids=["self", "other"]
)
def test_plain_import_rebound_in_the_same_statement(packages: Path, source: bytes) -> None:
    # Found by the property above: the extra 'a_1_0_deadbeef as a' after 'import
    # a_1_0_deadbeef.b' was left out because of the plain 'import a', though 'as a' rebound it.
    new = rewrite_source(source, MAPPING, path=PATH)
    assert new is not None
    assert run(new)["a"] == run(source)["a"] == ("module", "a")
