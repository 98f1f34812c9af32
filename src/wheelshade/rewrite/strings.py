"""LibCST transformer for module and distribution names written inside string literals."""

from __future__ import annotations

import re
from collections.abc import Callable

import libcst as cst

from wheelshade.findings import Code
from wheelshade.naming import rename_module
from wheelshade.rewrite.lean import LeanTransformer
from wheelshade.rewrite.names import ImportAliases
from wheelshade.rewrite.rules import (
    DIST_CALLS,
    DOTTED,
    IDENT,
    MODULE_CALLS,
    PLAIN_DOTTED,
    SKIP_CALLS,
    SYS_MODULES_METHODS,
    StringRules,
)


def _literal_head(node: cst.BaseExpression) -> cst.SimpleString | None:
    """The literal a module name is built from: ``"pkg.%s" % m``, ``"pkg." + m``,
    ``"pkg.{}".format(m)``; None unless its text starts with a dotted prefix."""
    head: cst.BaseExpression | None = None
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo | cst.Add):
        head = node.left
    elif (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "format"
    ):
        head = node.func.value
    if not isinstance(head, cst.SimpleString):
        return None
    body = _plain_text(head)
    if body is None or not re.match(rf"{IDENT}(?:\.{IDENT})*\.", body):
        return None
    return head


_NAME_ATTRS = frozenset({"__name__", "__module__"})


def _is_module_name(node: cst.BaseExpression) -> bool:
    """``x.__name__``, ``x.__module__``, ``x["__name__"]`` or ``x.get("__name__", ...)``."""
    if isinstance(node, cst.Attribute):
        return node.attr.value in _NAME_ATTRS
    key: cst.BaseExpression | None = None
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        key = index.value if isinstance(index, cst.Index) else None
    elif (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
          and node.func.attr.value == "get" and node.args):
        key = node.args[0].value
    return isinstance(key, cst.SimpleString) and _plain_text(key) in _NAME_ATTRS


def _literals(node: cst.BaseExpression) -> list[cst.SimpleString]:
    """A string literal, or the string elements of a literal tuple, list or set."""
    if isinstance(node, cst.SimpleString):
        return [node]
    if isinstance(node, cst.Tuple | cst.List | cst.Set):
        return [e.value for e in node.elements if isinstance(e.value, cst.SimpleString)]
    return []


def _plain_text(node: cst.SimpleString) -> str | None:
    """The literal's body when it holds no escapes, so body and value are the same text."""
    if "b" in node.prefix.lower() or "\\" in node.value:
        return None
    return node.value[len(node.prefix) + len(node.quote) : -len(node.quote)]


def _with_body(node: cst.SimpleString, body: str) -> cst.SimpleString:
    if node.quote in body:
        return node
    return node.with_changes(value=f"{node.prefix}{node.quote}{body}{node.quote}")


class StringRenamer(LeanTransformer):
    """Rename shaded module and distribution names inside string literals.

    A string is renamed by the role it plays: an argument of a call that takes module
    names (``import_module``, ``find_spec``, ``mock.patch``...) or distribution names
    (``importlib.metadata.version``...), a key of ``sys.modules``, or anywhere when it is
    exactly a dotted path whose module part is installed by a shaded wheel, or code for
    a generated module (``"from jinja2.runtime import "``). Docstrings, bare names
    elsewhere and logger names are left alone.
    """

    def __init__(
        self,
        rules: StringRules,
        aliases: ImportAliases,
        import_list: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self._rules = rules
        self._aliases = aliases
        #: Strings of a tuple/list literal that a loop feeds to an import call (see flows).
        self._import_list = import_list
        self._role: dict[cst.CSTNode, str] = {}
        self._annotations = 0
        #: Findings with the node they are about; the caller turns nodes into lines.
        self.findings: list[tuple[cst.CSTNode, Code, str]] = []

    def _report(self, node: cst.CSTNode, code: Code, message: str) -> None:
        self.findings.append((node, code, message))

    def _check_literal(self, node: cst.BaseExpression, what: str) -> None:
        """Report a name argument that is computed at run time, so no rewrite can reach it."""
        literal = isinstance(node, cst.SimpleString | cst.ConcatenatedString) or (
            isinstance(node, cst.FormattedString)
            and bool(node.parts)
            and isinstance(node.parts[0], cst.FormattedStringText)
        ) or _literal_head(node) is not None
        if not literal:
            self._report(
                node,
                Code.DYNAMIC_NAME,
                f"{what} with a name computed at run time; if it names a shaded module, "
                "the original package is loaded",
            )

    def _qualified(self, node: cst.BaseExpression) -> set[str]:
        return self._aliases.qualify(node)

    def _mark(self, node: cst.CSTNode, role: str) -> None:
        if isinstance(node, cst.SimpleString | cst.FormattedString):
            self._role.setdefault(node, role)
        elif role == "module" and isinstance(node, cst.BaseExpression):
            head = _literal_head(node)
            if head is not None:
                self._role.setdefault(head, "module-head")

    def _is_sys_modules(self, node: cst.BaseExpression) -> bool:
        return "sys.modules" in self._qualified(node)

    def visit_Annotation(self, node: cst.Annotation) -> None:
        # ``-> 'flask.Response'`` is evaluated in this module's namespace, where ``flask``
        # stays bound (``import S as flask``): renaming it would break get_type_hints().
        self._annotations += 1

    def leave_Annotation(
        self, original_node: cst.Annotation, updated_node: cst.Annotation
    ) -> cst.Annotation:
        self._annotations -= 1
        return updated_node

    def visit_Expr(self, node: cst.Expr) -> None:
        # A bare string statement is a docstring or a comment in disguise: prose, not code.
        if isinstance(node.value, cst.SimpleString):
            self._mark(node.value, "skip")

    def visit_Call(self, node: cst.Call) -> None:
        names = self._qualified(node.func)
        func = node.func
        if names & SKIP_CALLS:
            role = "skip"
        elif names & MODULE_CALLS:
            role = "module"
        elif names & DIST_CALLS:
            role = "dist"
        elif (
            isinstance(func, cst.Attribute)
            and func.attr.value in SYS_MODULES_METHODS
            and self._is_sys_modules(func.value)
        ) or (
            isinstance(func, cst.Attribute)
            and func.attr.value == "setattr"
            and isinstance(func.value, cst.Name)
            and func.value.value == "monkeypatch"
        ):
            role = "module"
        else:
            self._own_name_arguments(node, names)
            return
        args = node.args[:1] if role == "dist" else node.args
        for arg in args:
            self._mark(arg.value, role)
        if role != "skip" and node.args and node.args[0].keyword is None:
            callee = cst.Module([]).code_for_node(func)
            self._check_literal(node.args[0].value, f"{callee}()")

    def _own_name_arguments(self, node: cst.Call, names: set[str]) -> None:
        """A shaded package's own import helper given that package's bare name takes it as
        a module name: SQLAlchemy's ``util.preloaded.import_prefix("sqlalchemy")`` loads
        the registered modules whose names start with it, six's ``MovedModule("x", "six")``
        imports it. Only a function whose name says so (``import``, ``module``) counts:
        pip's ``user_cache_dir("pip")`` names a directory, sympy's ``lambdify(x, f,
        "sympy")`` a namespace of its own. Any other bare name stays a word."""
        owners = {
            n.partition(".")[0] for n in names
            if "." in n and any(w in n.rpartition(".")[2].lower() for w in ("import", "module"))
        } & set(self._rules.imports)
        for arg in node.args:
            value = arg.value
            if arg.keyword is None and isinstance(value, cst.SimpleString) and (
                _plain_text(value) in owners
            ):
                self._mark(value, "module")

    def visit_Element(self, node: cst.Element) -> None:
        if not self._import_list:
            return
        value = node.value
        if isinstance(value, cst.SimpleString) and _plain_text(value) in self._import_list:
            self._mark(value, "module")

    def visit_DictElement(self, node: cst.DictElement) -> None:
        # The keys of a table looked up by ``__module__`` (see flows).
        key = node.key
        if self._import_list and isinstance(key, cst.SimpleString) and (
            _plain_text(key) in self._import_list
        ):
            self._mark(key, "module")

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self._is_sys_modules(node.value):
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    self._mark(element.slice.value, "module")
                    self._check_literal(element.slice.value, "sys.modules[...]")

    def visit_Comparison(self, node: cst.Comparison) -> None:
        left = node.left
        for target in node.comparisons:
            right = target.comparator
            if isinstance(target.operator, cst.In | cst.NotIn) and self._is_sys_modules(right):
                self._mark(left, "module")
            # A module's name compared with literals: ``__name__ in ("importlib", "dateutil")``
            # (python-dateutil's stack walk), ``cls.__module__ == "typing_extensions"``.
            for name, other in ((left, right), (right, left)):
                if _is_module_name(name):
                    for literal in _literals(other):
                        self._mark(literal, "module")
            left = right

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        role = self._role.get(original_node, "any")
        if role == "skip" or "b" in updated_node.prefix.lower() or self._annotations:
            return updated_node
        body = _plain_text(updated_node)
        if body is None:
            # Escapes later in the text (``"from jinja2 import x\n"``) do not matter to
            # the leading import, which is all a code string can have renamed.
            start = len(updated_node.prefix) + len(updated_node.quote)
            new_code = self._rules.code(updated_node.value[start:]) if role == "any" else None
            if new_code is None:
                return updated_node
            return updated_node.with_changes(value=updated_node.value[:start] + new_code)
        rename: Callable[[str], str | None]
        if role == "module-head":
            rename = self._rules.module_head
        elif role == "module":
            rename = lambda text: self._rules.module_path(text, bare=True)  # noqa: E731
        elif role == "dist":
            rename = self._rules.dist
        else:
            rename = lambda text: (  # noqa: E731
                self._rules.module_path(text, bare=False) or self._rules.code(text)
            )
        new = rename(body)
        if new is None and role == "any":
            match = DOTTED.match(body)
            if match and "." in body and body.partition(".")[0] in self._rules.imports:
                self._report(
                    original_node,
                    Code.UNRESOLVED_STRING,
                    f"string {body!r} starts with the original name but names no module "
                    "of the shading set; left unchanged",
                )
        return updated_node if new is None else _with_body(updated_node, new)

    def leave_FormattedString(
        self, original_node: cst.FormattedString, updated_node: cst.FormattedString
    ) -> cst.FormattedString:
        # ``import_module(f"flask.ext.{name}")``: only the leading literal part is known.
        # Elsewhere, ``f"litellm.integrations.{item}"`` counts when its literal head is a
        # package prefix of the set (the same rule as ``"pip._vendor." + name``).
        role = self._role.get(original_node, "any")
        if role == "skip" or not updated_node.parts:
            return updated_node
        first = updated_node.parts[0]
        if not isinstance(first, cst.FormattedStringText):
            return updated_node
        if role == "any":
            head = first.value
            if not (head.endswith(".") and len(updated_node.parts) > 1):
                return updated_node
            renamed = self._rules.module_path(head, bare=False)
            if renamed is None:
                return updated_node
            part = first.with_changes(value=renamed)
            return updated_node.with_changes(parts=[part, *updated_node.parts[1:]])
        if role != "module":
            return updated_node
        run = PLAIN_DOTTED.match(first.value)
        renamed = rename_module(run.group(0), self._rules.imports) if run else None
        if run is None or renamed is None:
            return updated_node
        if first.value == run.group(0) and len(updated_node.parts) > 1 and "." not in renamed:
            return updated_node  # f"flask{x}": the name is not known
        part = first.with_changes(value=renamed + first.value[run.end() :])
        return updated_node.with_changes(parts=[part, *updated_node.parts[1:]])
