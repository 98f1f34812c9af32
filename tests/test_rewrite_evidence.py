"""Evidence across a function boundary: a bare package name given to a class that keeps it in
an attribute, or checked in a helper that other modules feed with module paths."""

from __future__ import annotations

import ast
import textwrap

import pytest

from wheelshade.rewrite import StringRules, rewrite_file
from wheelshade.rewrite.evidence import proven_strings
from wheelshade.rewrite.names import aliases_from_ast

S = "pkg_1_0_abcd1234"
MAPPING = {"pkg": S}
RULES = StringRules(MAPPING, frozenset({"pkg", "pkg.load", "pkg.sub", "pkg.sub._raw_aes"}),
                    {"pkg": "pkg-1-0-abcd1234"}, {})

LOADER = '''
import pkgutil


class FromPackageLoader:
    def __init__(self, pkg_name, search_paths=("grammars",)):
        self.pkg_name = pkg_name
        self.search_paths = search_paths

    def __call__(self, path):
        return pkgutil.get_data(self.pkg_name, path)


{calls}
'''


def _proven(source: str) -> set[str]:
    tree = ast.parse(source)
    found = proven_strings(tree, aliases_from_ast(tree, "pkg"), source, MAPPING)
    return set().union(*found.values()) if found else set()


@pytest.mark.parametrize(("calls", "proven"), [
    ('stdlib_loader = FromPackageLoader("pkg", ("grammars",))', {"pkg"}),
    ('loader = FromPackageLoader(pkg_name="pkg")', {"pkg"}),
    # The other parameter never reaches a module-name call.
    ('loader = FromPackageLoader("pkg", search_paths=("pkg",))', {"pkg"}),
    ('loader = FromPackageLoader(search_paths=("pkg",), pkg_name=name)', set()),
    # A same-named call of something else proves nothing.
    ('loader = Other("pkg")', set()),
], ids=["positional", "keyword", "other-parameter", "only-other-parameter", "other-callable"])
def test_a_constructor_argument_kept_for_a_module_name_call_is_one(
    calls: str, proven: set[str]
) -> None:
    assert _proven(LOADER.format(calls=calls)) == proven


@pytest.mark.parametrize(("before", "after"), [
    # The package hands its own name to a loader class that reads its data with it.
    (LOADER.format(calls='stdlib_loader = FromPackageLoader("pkg", ("grammars",))'),
     LOADER.format(calls=f'stdlib_loader = FromPackageLoader("{S}", ("grammars",))')),
    # The stored parameter's default, and an import built from the attribute.
    ('import importlib\n\n\nclass Plugins:\n'
     '    def __init__(self, package="pkg"):\n        self.package = package\n\n'
     '    def load(self, name):\n'
     '        return importlib.import_module(self.package + "." + name)\n',
     'import importlib\n\n\nclass Plugins:\n'
     f'    def __init__(self, package="{S}"):\n        self.package = package\n\n'
     '    def load(self, name):\n'
     '        return importlib.import_module(self.package + "." + name)\n'),
    # An attribute that never reaches a module-name call: a label, kept.
    ('class Label:\n    def __init__(self, name):\n        self.name = name\n\n'
     '    def __str__(self):\n        return self.name.upper()\n\n\nL = Label("pkg")\n',
     None),
], ids=["loader-class", "default", "label-kept"])
def test_a_class_kept_package_name_is_renamed_when_a_method_imports_it(
    before: str, after: str | None
) -> None:
    source = textwrap.dedent(before).lstrip()
    result = rewrite_file(source.encode(), MAPPING, path="pkg/load.py", strings=RULES)
    expected = None if after is None else textwrap.dedent(after).lstrip().encode()
    assert result.new == expected
