"""LibCST transformer for module and distribution names written inside string literals."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import libcst as cst

from wheelshade.findings import Code
from wheelshade.naming import rename_module
from wheelshade.rewrite.lean import LeanTransformer
from wheelshade.rewrite.literals import (
    dict_keys,
    elements,
    is_module_attr,
    is_module_name,
    literal_head,
    literals,
    looks_up_plugins,
    pieces,
    plain_text,
    with_body,
)
from wheelshade.rewrite.names import ImportAliases
from wheelshade.rewrite.rules import (
    DIST_CALLS,
    DOTTED,
    ENTRY_POINT_CALLS,
    FIRST_ARG_CALLS,
    MODULE_CALLS,
    MODULE_METHODS,
    PLAIN_DOTTED,
    SKIP_CALLS,
    SYS_MODULES_METHODS,
    StringRules,
)


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
        proven: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self._rules = rules
        self._aliases = aliases
        #: Strings of a tuple/list literal that a loop feeds to an import call (see flows).
        self._import_list = import_list
        #: Strings the module's data flow shows to be module names (see evidence).
        self._proven = proven
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
        ) or literal_head(node) is not None
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
        if isinstance(node, cst.SimpleString | cst.FormattedString | cst.ConcatenatedString):
            self._role.setdefault(node, role)
        elif role == "module" and isinstance(node, cst.BaseExpression):
            head = literal_head(node)
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
        # A bare string statement is a docstring or a comment in disguise: prose, not code,
        # but for its doctest examples, which a test runner executes.
        if isinstance(node.value, cst.SimpleString | cst.ConcatenatedString):
            doctest = isinstance(node.value, cst.SimpleString) and ">>> " in node.value.value
            self._mark(node.value, "doctest" if doctest else "skip")

    def visit_Assign(self, node: cst.Assign) -> None:
        # ``__doc__ = """..."""`` is a docstring too.
        if any(isinstance(t.target, cst.Name) and t.target.value == "__doc__"
               for t in node.targets):
            self._mark(node.value, "skip")
        # ``obj.__module__ = "pkg"`` (a class presented under its package, for pickle and
        # reprs) names a module: pickle looks the class up there.
        if any(is_module_attr(t.target) for t in node.targets):
            self._mark(node.value, "module")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        head = literal_head(node)
        if head is not None:
            self._role.setdefault(head, "build")

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        # ``"text " "pkg.x.Y"`` is one string: judged whole in leave, never piece by piece.
        for part in (node.left, node.right):
            self._role[part] = "skip"

    def visit_Call(self, node: cst.Call) -> None:
        names = self._qualified(node.func)
        func = node.func
        head = literal_head(node)
        if head is not None:
            self._role.setdefault(head, "build")
        if isinstance(func, cst.Attribute) and func.attr.value in MODULE_METHODS and node.args:
            # A test loader's names, one or a list of them, literal or built.
            first = node.args[0].value
            for value in elements(first):
                self._mark(value, "module")
            return
        if names & SKIP_CALLS:
            role = "skip"
        elif names & MODULE_CALLS:
            role = "module"
        elif names & DIST_CALLS:
            role = "dist"
        elif names & ENTRY_POINT_CALLS:
            role = "group"
        elif looks_up_plugins(func, names):
            # A package's own wrapper (``pkg.util.metadata.entry_points``), ``.select()``:
            # only the group keyword names a group.
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "group":
                    self._mark(arg.value, "group")
            return
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
        elif isinstance(func, cst.Name) and func.value == "setattr" and len(node.args) == 3 and (
            isinstance(node.args[1].value, cst.SimpleString)
            and plain_text(node.args[1].value) == "__module__"
        ):
            self._mark(node.args[2].value, "module")
            return
        else:
            self._own_name_arguments(node, names)
            return
        args = node.args[:1] if role == "dist" or names & FIRST_ARG_CALLS else node.args
        for value in (k for arg in args for k in dict_keys(arg.value)):
            self._mark(value, role)  # ``sys.modules.update({"pkg.alias": m})``: the keys
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
                plain_text(value) in owners
            ):
                self._mark(value, "module")

    def visit_List(self, node: cst.List) -> None:
        self._python_m(node.elements)

    def visit_Tuple(self, node: cst.Tuple) -> None:
        self._python_m(node.elements)

    def _python_m(self, elements: Sequence[cst.BaseElement]) -> None:
        """``[sys.executable, ..., "-m", "pkg"]``: a module run in a subprocess."""
        if not elements or "sys.executable" not in self._qualified(elements[0].value):
            return
        for flag, value in pairwise(elements):
            if isinstance(flag.value, cst.SimpleString) and plain_text(flag.value) == "-m":
                self._mark(value.value, "module")
                return

    def _listed(self, node: cst.BaseExpression) -> None:
        """A literal the module's flows found to be a module name (see flows): in a list
        fed to an import call, a key of a table looked up by ``__module__`` or by it."""
        if self._import_list and isinstance(node, cst.SimpleString) and (
            plain_text(node) in self._import_list
        ):
            self._mark(node, "module")

    def visit_Element(self, node: cst.Element) -> None:
        self._listed(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._listed(node.key)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        modules = self._is_sys_modules(node.value)
        for element in node.slice:
            if isinstance(element.slice, cst.Index):
                self._listed(element.slice.value)
                if modules:
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
                if is_module_name(name):
                    for literal in literals(other):
                        self._mark(literal, "module")
            left = right

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        role = self._role.get(original_node, "any")
        if role == "skip" or "b" in updated_node.prefix.lower() or self._annotations:
            return updated_node
        if role == "doctest":
            new_text = self._rules.doctest_code(updated_node.value)
            return updated_node if new_text is None else updated_node.with_changes(value=new_text)
        body = plain_text(updated_node)
        if body is None:
            return self._code_piece(updated_node) if role == "any" else updated_node
        new = self._rename(body, role, original_node)
        return updated_node if new is None else with_body(updated_node, new)

    def _code_piece(self, node: cst.SimpleString) -> cst.SimpleString:
        """The imports in a string with escapes: those later in the text (``"from jinja2
        import x\\n"``) do not matter to the statements, all a code string can have renamed."""
        start = len(node.prefix) + len(node.quote)
        text = node.value[start : -len(node.quote)]
        value = node.evaluated_value
        new_code = self._rules.embedded_code(text, value) if isinstance(value, str) else None
        if new_code is None:
            return node
        return node.with_changes(value=node.value[:start] + new_code + node.quote)

    def _rename(self, body: str, role: str, node: cst.CSTNode) -> str | None:
        """The new text of a string playing ``role``; None (and maybe a finding) if none."""
        rules = self._rules
        if role == "module-head":
            return rules.module_head(body)
        if role == "module":
            return rules.module_path(body, bare=True)
        if role == "dist":
            return rules.dist(body)
        if role == "group":
            return rules.module_path(body, bare=False, bound=False) or rules.groups.get(body)
        if body in self._proven:
            new = rules.module_path(body, bare=True) or rules.module_head(body)
        elif role == "build":  # ``"pkg.sub." + name``: a name under a package of the set
            new = rules.module_path(body, bare=False)
        else:
            new = rules.module_path(body, bare=False, prefix=False)
        new = new or rules.embedded_code(body)
        if new is None and rules.unproven(body):
            self._report(
                node,
                Code.UNPROVEN_MODULE_PATH,
                f"string {body!r} looks like a module path of the shading set, but nothing "
                "shows it is one (not a module, no module-level name, reaches no import "
                "call or module name); left unchanged",
            )
        elif new is None and DOTTED.match(body) and "." in body and (
            body.partition(".")[0] in rules.imports
        ):
            self._report(
                node,
                Code.UNRESOLVED_STRING,
                f"string {body!r} starts with the original name but names no module "
                "of the shading set; left unchanged",
            )
        return new

    def leave_ConcatenatedString(
        self, original_node: cst.ConcatenatedString, updated_node: cst.ConcatenatedString
    ) -> cst.ConcatenatedString:
        role = self._role.get(original_node, "any")
        parts = pieces(updated_node)
        bodies = [plain_text(p) if isinstance(p, cst.SimpleString) else None for p in parts]
        if role == "skip" or self._annotations:
            return updated_node
        texts = [b for b in bodies if b is not None]
        new = self._rename("".join(texts), role, original_node) if (
            len(texts) == len(bodies)) else None
        if new is None:
            return self._code_pieces(updated_node) if role == "any" else updated_node
        whole = "".join(texts)
        # Where the change lies: it must fall inside one piece to be written back.
        same = 0
        while same < min(len(whole), len(new)) and whole[same] == new[same]:
            same += 1
        tail = 0
        while tail < min(len(whole), len(new)) - same and whole[-1 - tail] == new[-1 - tail]:
            tail += 1
        offset = 0
        for piece, text in zip(parts, texts, strict=True):
            if offset <= same and len(whole) - tail <= offset + len(text):
                body = new[offset : len(new) - (len(whole) - offset - len(text))]
                assert isinstance(piece, cst.SimpleString)
                new_node = updated_node.deep_replace(piece, with_body(piece, body))
                assert isinstance(new_node, cst.ConcatenatedString)
                return new_node
            offset += len(text)
        return self._code_pieces(updated_node)  # changes in several pieces

    def _code_pieces(self, node: cst.ConcatenatedString) -> cst.ConcatenatedString:
        """Whole statements of code in each piece, piece by piece (``("import a\\n"
        "import b\\n")``): the only rename that may span pieces."""
        parts: list[cst.BaseExpression] = []
        for part in (node.left, node.right):
            if isinstance(part, cst.ConcatenatedString):
                part = self._code_pieces(part)
            elif isinstance(part, cst.SimpleString) and "b" not in part.prefix.lower():
                part = self._code_piece(part)
            parts.append(part)
        if parts[0] is node.left and parts[1] is node.right:
            return node
        return node.with_changes(left=parts[0], right=parts[1])

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
            # ``f"import os, pkg; f = {code}"``: code for a subprocess, its head the imports
            code = self._rules.code(head)
            if code is not None:
                part = first.with_changes(value=code)
                return updated_node.with_changes(parts=[part, *updated_node.parts[1:]])
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
