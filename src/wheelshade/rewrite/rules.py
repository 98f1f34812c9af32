"""What the string pass may rename: the calls that take module names, and ``StringRules``."""

from __future__ import annotations

import ast
import re
import textwrap
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wheelshade.naming import rename_module
from wheelshade.proof import proves

IDENT = r"[A-Za-z_]\w*"
#: A whole string that is a dotted path, optionally ``module:attr`` (a value, not source).
DOTTED = re.compile(rf"^({IDENT}(?:\.{IDENT})*)(?::({IDENT}(?:\.{IDENT})*))?$")
#: Code written into a string for a generated module: ``"from jinja2.runtime import "``.
CODE = re.compile(rf"^(\s*(?:from|import)\s+)({IDENT})(?=[.\s\\'\";,]|$)")
#: ``import a, b.c as d`` to the end of its statement (``;``, a line end, an escaped one).
IMPORT_LIST = re.compile(
    rf"^([ \t]*import[ \t]+)({IDENT}(?:\.{IDENT})*(?:[ \t]+as[ \t]+{IDENT})?"
    rf"(?:[ \t]*,[ \t]*{IDENT}(?:\.{IDENT})*(?:[ \t]+as[ \t]+{IDENT})?)*)(?=[ \t]*(?:$|[;\n\r\\]))"
)
#: An import statement inside a larger string: after a line start (a newline, or an escaped
#: one in the literal's source), a template block opener (``<%!``, ``<%``, ``{%``) or a
#: doctest prompt (``>>> ``), as a
#: whole statement (``from D import``, or ``import D`` ending there), never a word in prose.
EMBEDDED = re.compile(
    rf"(?:\n|\\n|<%!?|\{{%-?|>>> )"
    rf"(?P<stmt>[ \t]*(?:from[ \t]+{IDENT}(?:\.{IDENT})*[ \t]+import[ \t(\\]"
    rf"|import[ \t]+{IDENT}(?:\.{IDENT})*(?=[ \t]*(?:$|\n|\\|;|,|%>|-?%\}}|as[ \t]))))"
)
PLAIN_DOTTED_TAIL = re.compile(rf"(?:\.{IDENT})*")
PLAIN_DOTTED = re.compile(rf"{IDENT}(?:\.{IDENT})*")

#: Calls whose string arguments are module names (any spelling, even a bare top-level name).
MODULE_CALLS = frozenset(
    {
        "builtins.__import__",
        "importlib.__import__",
        "importlib.import_module",
        "importlib.find_loader",
        "importlib.util.find_spec",
        "importlib.util.resolve_name",
        "pkgutil.resolve_name",
        "pkgutil.get_data",
        "pkgutil.get_loader",
        "pkgutil.find_loader",
        "runpy.run_module",
        "mock.patch",
        "mock.patch.object",
        "unittest.mock.patch",
        "pytest.importorskip",
        *(
            f"{mod}.{fn}"
            for mod in ("importlib.resources", "importlib_resources")
            for fn in (
                "files",
                "read_text",
                "read_binary",
                "open_text",
                "open_binary",
                "path",
                "contents",
                "is_resource",
            )
        ),
        *(
            f"pkg_resources.resource_{fn}"
            for fn in (
                "filename",
                "string",
                "stream",
                "exists",
                "isdir",
                "listdir",
            )
        ),
    }
)
#: Calls whose first argument is a distribution name (or, for ``require``, a requirement).
DIST_CALLS = frozenset(
    {
        *(
            f"{mod}.{fn}"
            for mod in ("importlib.metadata", "importlib_metadata")
            for fn in (
                "version",
                "distribution",
                "metadata",
                "files",
                "requires",
                "Distribution.from_name",
            )
        ),
        "pkg_resources.get_distribution",
        "pkg_resources.require",
        "pkg_resources.working_set.require",
    }
)
#: Calls whose string arguments are entry-point group names (``"pkg.plugins"``): named after
#: a package, not its modules, and renamed as they always were so the package's own
#: ``entry_points.txt`` sections can move with them.
ENTRY_POINT_CALLS = frozenset({
    "pkg_resources.iter_entry_points",
    "importlib.metadata.entry_points",
    "importlib_metadata.entry_points",
})
#: Module calls whose other arguments are no module names (a reason, a version).
FIRST_ARG_CALLS = frozenset({"pytest.importorskip"})
#: Methods whose first argument is a module path or a list of them, whatever the object:
#: a test loader given ``"pkg.tests.%s" % m`` loads the tests of whichever ``pkg`` is found.
MODULE_METHODS = frozenset({"loadTestsFromName", "loadTestsFromNames"})
#: Names that look like modules but are not: a logger named after its package stays.
SKIP_CALLS = frozenset({"logging.getLogger"})
SYS_MODULES_METHODS = frozenset(
    {"get", "pop", "setdefault", "update", "__contains__", "__getitem__"})


@dataclass(frozen=True)
class StringRules:
    """What the string pass may rename."""

    imports: Mapping[str, str]
    #: Dotted names of every module the shaded wheels install, under their original names.
    modules: frozenset[str] = frozenset()
    #: Normalised original distribution name -> shaded distribution name.
    dists: Mapping[str, str] = field(default_factory=dict)
    #: Module -> the names bound at its module level (``bound.py``); None when unknown,
    #: and then any name under a module of the set is taken for an attribute of it.
    attributes: Mapping[str, frozenset[str]] | None = None
    #: Module -> 0-based line -> bare names the set's call sites show to be module names
    #: (``checks.py``: a helper compares them with module paths other modules pass it).
    checked: Mapping[str, Mapping[int, frozenset[str]]] = field(default_factory=dict)
    #: Plugin entry-point groups named like no module -> their names in the set.
    groups: Mapping[str, str] = field(default_factory=dict)

    def module_path(
        self, value: str, *, bare: bool, prefix: bool = True, bound: bool = True
    ) -> str | None:
        """Rename a dotted path; ``bare`` allows a lone top-level name (call contexts).

        A package prefix ending in a dot (``"pip._vendor." + name``) counts when the
        package is a module of the set: it is how code builds submodule names at run time.
        A top-level one (``"pkg."``) may as well be checked against configuration keys
        (``k.startswith("pkg.")``): it counts only with ``prefix`` (the caller has the
        evidence), as a bare ``"pkg"`` does only with ``bare``.
        """
        if self.is_package_prefix(value) and (prefix or "." in value[:-1]):
            package = rename_module(value[:-1], self.imports)
            if package is not None:
                return package + "."
        match = DOTTED.match(value)
        if not match:
            return None
        path, attr = match.group(1), match.group(2)
        renamed = rename_module(path, self.imports)
        if renamed is None:
            return None
        if not bare and not self._is_module_reference(path, attr is not None, bound):
            return None
        return renamed + (f":{attr}" if attr is not None else "")

    def is_package_prefix(self, value: str) -> bool:
        """``"pkg."``, ``"pkg.sub."``: a module of the set followed by a dot."""
        return value.endswith(".") and not value.endswith("..") and value[:-1] in self.modules

    def _is_module_reference(self, path: str, has_attr: bool, bound: bool = True) -> bool:
        """True when the path is a module of the set (``mod``, ``mod:x``) or a name bound at
        module level in one (``mod.Name``): ``"pkg.png"`` under a package that binds no
        ``png`` is a file name."""
        if has_attr:
            return path in self.modules
        if "." not in path:
            return False  # a bare name may be a logger, a dict key, a word: too ambiguous
        return proves(path, self.modules, self.attributes if bound else None)

    def unproven(self, value: str) -> bool:
        """A string shaped like a module path under a module of the set that no evidence
        shows to be one (``"pkg.png"``, a checked prefix ``"pkg."``)."""
        if self.is_package_prefix(value):
            return "." not in value[:-1]
        match = DOTTED.match(value)
        return bool(match and match.group(2) is None and "." in value
                    and value.rpartition(".")[0] in self.modules)

    def module_head(self, value: str) -> str | None:
        """The leading package of a module name built at run time (``"dateutil.%s"``)."""
        run = PLAIN_DOTTED.match(value)
        if run is None or "." not in value[: run.end() + 1]:  # a dot in it or right after
            return None
        renamed = rename_module(run.group(0), self.imports)
        return None if renamed is None else renamed + value[run.end() :]

    def code(self, body: str) -> str | None:
        """``"from T.x import y"`` -> shaded; ``"import T"`` keeps binding ``T`` (an alias),
        exactly as the import-statement rules do for real source."""
        listed = IMPORT_LIST.match(body)
        if listed:
            items = [self._import_item(i.strip()) for i in listed.group(2).split(",")]
            new = ", ".join(items)
            if new == ", ".join(i.strip() for i in listed.group(2).split(",")):
                return None
            return listed.group(1) + new + body[listed.end(2) :]
        match = CODE.match(body)
        if match and match.group(2) not in self.imports:
            # A namespace portion (``from google.auth import x``): only the from-form.
            run = PLAIN_DOTTED.match(body, match.start(2))
            renamed = rename_module(run.group(0), self.imports) if run else None
            if renamed is None or not match.group(1).lstrip().startswith("from") or not run:
                return None
            return body[: match.start(2)] + renamed + body[run.end() :]
        if not match:
            return None
        top, shaded, rest = match.group(2), self.imports[match.group(2)], body[match.end(2) :]
        if not match.group(1).lstrip().startswith("import"):
            return match.group(1) + shaded + rest
        dotted = PLAIN_DOTTED_TAIL.match(rest)
        tail = dotted.group(0) if dotted else ""
        after = rest[len(tail) :]
        if after[:1] not in ("", "\n", "\r", ";", " ", "\\") or after.lstrip(" ")[:2] == "as":
            return match.group(1) + shaded + rest  # ``import T as x``, lists: no alias needed
        alias = f", {shaded} as {top}" if tail else f" as {top}"
        return match.group(1) + shaded + tail + alias + after

    def _import_item(self, item: str) -> str:
        """One name of ``import a, b``: ``T`` -> ``S as T``, ``T.x`` -> ``S.x, S as T`` (the
        statement binds ``T``), ``T.x as y`` -> ``S.x as y``; other names unchanged."""
        name, _, alias = _split_alias(item)
        top, dot, tail = name.partition(".")
        shaded = self.imports.get(top)
        if shaded is None:
            return item
        if alias:
            return f"{shaded}{dot}{tail} as {alias}"
        return f"{shaded}.{tail}, {shaded} as {top}" if dot else f"{shaded} as {top}"

    def doctest_code(self, text: str) -> str | None:
        """A docstring's doctest examples (``>>> import pkg``) rewritten; its prose kept."""
        new = text
        for match in reversed(list(EMBEDDED.finditer(text))):
            if match.group(0).startswith(">>> "):
                statement = self.code(new[match.start("stmt") :])
                if statement is not None:
                    new = new[: match.start("stmt")] + statement
        return new if new != text else None

    def embedded_code(self, text: str, value: str | None = None) -> str | None:
        """``code`` for a string that starts with an import statement, and for every import
        statement embedded further in it (``"<%! from pkg.x import y %>"``, a template's
        lines): each is rewritten as the statement it is. A statement at a line start
        counts inside a template block, or when the whole string (``value``, the literal's
        value when ``text`` is its source) is Python code: a message that shows an import
        to type is prose."""
        new, changed = text, False
        code: bool | None = None
        for match in reversed(list(EMBEDDED.finditer(text))):
            start = match.start("stmt")
            if match.group(0)[:1] in ("\n", "\\") and not _in_block(text, match.start()):
                if code is None:
                    code = _parses(text if value is None else value)
                if not code:
                    continue
            statement = self.code(new[start:])
            if statement is not None:
                new, changed = new[:start] + statement, True
        head = self.code(new)
        if head is not None:
            new, changed = head, True
        return new if changed else None

    def dist(self, value: str) -> str | None:
        shaded = self.dists.get(canonicalize_name(value))
        if shaded is not None:
            return shaded
        try:
            req = Requirement(value)
        except InvalidRequirement:
            return None
        shaded = self.dists.get(canonicalize_name(req.name))
        if shaded is None:
            return None
        return shaded + value.strip()[len(req.name) :]


def _split_alias(item: str) -> tuple[str, str, str]:
    """``"a.b as c"`` -> ``("a.b", "as", "c")``; ``"a.b"`` -> ``("a.b", "", "")``."""
    parts = item.split()
    return (parts[0], "as", parts[2]) if len(parts) == 3 else (item, "", "")


def _in_block(text: str, pos: int) -> bool:
    """Whether ``pos`` lies inside an open template block (``<%`` or ``{%`` not closed)."""
    opener = max(text.rfind("<%", 0, pos), text.rfind("{%", 0, pos))
    closer = max(text.rfind("%>", 0, pos), text.rfind("%}", 0, pos))
    return opener > closer


def _parses(value: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(textwrap.dedent(value))
    except (SyntaxError, ValueError):
        return False
    return True
