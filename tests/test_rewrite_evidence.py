"""Evidence across a function boundary: a bare package name given to a class that keeps it in
an attribute, or checked in a helper that other modules feed with module paths."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import make_wheel
from wheelshade.rewrite import StringRules, rewrite_file
from wheelshade.rewrite.checks import set_checks
from wheelshade.rewrite.evidence import proven_strings
from wheelshade.rewrite.names import aliases_from_ast, module_of

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


FS = '''
import os


def pkg_filename(dir_comps, filename):
    if dir_comps[0] != "pkg":
        raise ValueError("Only available for modules under 'pkg'")
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), *dir_comps[1:], filename)
'''
RAW = '''
from pkg._fs import pkg_filename


def load_raw_lib(name):
    split = name.split(".")
    return pkg_filename(split[:-1], split[-1] + ".txt")
'''
MODULES = frozenset({"pkg", "pkg._fs", "pkg._raw", "pkg.cipher", "pkg.sub", "pkg.sub._raw_aes"})


def _checked(tmp_path: Path, files: dict[str, str]) -> dict[str, dict[int, set[str]]]:
    base = {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/_raw_aes.py": ""}
    wheel = make_wheel(tmp_path, "pkg", "1.0", {**base, **{
        path: textwrap.dedent(text).lstrip() for path, text in files.items()}})
    found = set_checks(((wheel, "sha"),), frozenset({"pkg"}), MODULES)
    return {m: {line: set(v) for line, v in lines.items()} for m, lines in found.items()}


@pytest.mark.parametrize(("files", "checked"), [
    # Two hops: the path is split in one module, its parts checked in another.
    ({"pkg/_fs.py": FS, "pkg/_raw.py": RAW,
      "pkg/cipher.py": 'from pkg._raw import load_raw_lib\nD = load_raw_lib("pkg.sub._raw_aes")\n'},
     {"pkg._fs": {4: {"pkg"}}, "pkg.cipher": {1: {"pkg.sub._raw_aes"}}}),
    # One hop, a relative import, a keyword argument, a tuple of names.
    ({"pkg/_fs.py": 'def check(path):\n    if path.split(".")[0] not in ("pkg", "x"):\n'
                    '        raise ValueError(path)\n',
      "pkg/sub/__init__.py": 'from .._fs import check\ncheck(path="pkg.sub._raw_aes")\n'},
     {"pkg._fs": {1: {"pkg"}}, "pkg.sub": {1: {"pkg.sub._raw_aes"}}}),
    # The same module calls its own helper.
    ({"pkg/_fs.py": FS + 'X = pkg_filename("pkg.sub".split("."), "a")\n'
                         'def f(name):\n    return pkg_filename(name.split("."), "b")\n'
                         'Y = f("pkg.sub._raw_aes")\n'},
     {"pkg._fs": {4: {"pkg"}, 10: {"pkg.sub._raw_aes"}}}),
    # Parts unpacked pairwise; the checked parameter given a new value only after the check.
    ({"pkg/_fs.py": FS.replace("    return os.path.join(", "    dir_comps = list(dir_comps[1:])\n"
                                                             "    return os.path.join("),
      "pkg/_raw.py": 'from ._fs import pkg_filename\ndef load(name):\n'
                     '    split = name.split(".")\n'
                     '    dir_comps, base = split[:-1], split[-1]\n'
                     '    return pkg_filename(dir_comps, base)\n'
                     'X = load("pkg.sub._raw_aes")\n'},
     {"pkg._fs": {4: {"pkg"}}, "pkg._raw": {5: {"pkg.sub._raw_aes"}}}),
    # No caller passes a module path: a word compared with words.
    ({"pkg/_fs.py": FS, "pkg/_raw.py": RAW,
      "pkg/cipher.py": 'from pkg._raw import load_raw_lib\nD = load_raw_lib("other.sub.x")\n'},
     {}),
    # A caller passes a path under the name that is no module of this copy (an optional
    # part): it moves with the check, so both copies keep agreeing.
    ({"pkg/_fs.py": FS, "pkg/_raw.py": RAW,
      "pkg/cipher.py": 'from pkg._raw import load_raw_lib\nD = load_raw_lib("pkg.sub._raw_aes")\n'
                       'E = load_raw_lib("pkg.nowhere.x")\n'},
     {"pkg._fs": {4: {"pkg"}},
      "pkg.cipher": {1: {"pkg.sub._raw_aes"}, 2: {"pkg.nowhere.x"}}}),
    # Only paths under the name that are no modules: nothing shows they are module paths.
    ({"pkg/_fs.py": FS, "pkg/_raw.py": RAW,
      "pkg/cipher.py": 'from pkg._raw import load_raw_lib\nD = load_raw_lib("pkg.nowhere.x")\n'},
     {}),
    # A helper of the same name in another module is not the one called.
    ({"pkg/_fs.py": FS, "pkg/_raw.py": RAW.replace("pkg._fs", "os.path"),
      "pkg/cipher.py": 'from pkg._raw import load_raw_lib\nD = load_raw_lib("pkg.sub._raw_aes")\n'},
     {}),
    # The compared value is given another value first; a check by startswith is not a
    # comparison (evidence.py weighs those within one module).
    ({"pkg/_fs.py": 'def check(path):\n    path = "x"\n    return path == "pkg"\n'
                    'def starts(path):\n    return path.startswith("pkg")\n',
      "pkg/cipher.py": 'from pkg._fs import check, starts\ncheck("pkg.sub")\nstarts("pkg.sub")\n'},
     {}),
], ids=["two-hops", "one-hop-relative-keyword", "same-module", "unpacked-pairs", "no-module-path",
        "optional-part", "no-module-under-the-name", "other-helper", "reassigned-or-startswith"])
def test_a_name_checked_against_module_paths_from_other_modules(
    tmp_path: Path, files: dict[str, str], checked: dict[str, dict[int, set[str]]]
) -> None:
    assert _checked(tmp_path, files) == checked


def test_checked_lines_are_renamed_in_their_module() -> None:
    source = textwrap.dedent(FS).lstrip()
    rules = replace(RULES, checked={"pkg._fs": {4: frozenset({"pkg"})}})
    result = rewrite_file(source.encode(), MAPPING, path="w.whl/pkg/_fs.py", strings=rules)
    assert result.new == source.replace('!= "pkg"', f'!= "{S}"').encode()
    # Another module with the same line is not touched.
    other = rewrite_file(source.encode(), MAPPING, path="w.whl/pkg/_other.py", strings=rules)
    assert other.new is None


@pytest.mark.parametrize(("path", "module"), [
    ("w.whl/pkg/_fs.py", "pkg._fs"),
    ("w.whl/pkg/sub/__init__.py", "pkg.sub"),
    ("pkg-1.0.data/purelib/pkg/_fs.py", "pkg._fs"),
    ("six.py", "six"),
    ("w.whl/pkg/bad-name.py", None),
])
def test_the_module_a_rewritten_source_is(path: str, module: str | None) -> None:
    assert module_of(path) == module


HELPER = '''
import importlib.util


def _package_path(package):
    spec = importlib.util.find_spec(package)
    return None if spec is None else spec.origin


{calls}
'''


@pytest.mark.parametrize(("calls", "proven"), [
    ('paths = [p for name in ("pkg", "mcp") if (p := _package_path(name)) is not None]',
     {"pkg", "mcp"}),
    ('for name in ["pkg", "other"]:\n    print(_package_path(name))', {"pkg", "other"}),
    ('found = {name: _package_path(name) for name in ("pkg",)}', {"pkg"}),
    # The loop variable is not what is passed: nothing proven.
    ('for name in ("pkg",):\n    print(_package_path("x" + name))', set()),
    # A loop over literals that no module-name helper is given.
    ('for name in ("pkg",):\n    print(len(name))', set()),
], ids=["comprehension", "for-loop", "dict-comprehension", "other-argument", "no-helper"])
def test_literals_iterated_into_a_module_name_helper_are_module_names(
    calls: str, proven: set[str]
) -> None:
    """A helper whose parameter reaches ``find_spec``, given each name of a literal tuple
    by a loop or comprehension (fastmcp's traceback filter: ``for package in ("fastmcp",
    "mcp", "pydantic") if _get_package_path(package)``): the names are module names."""
    assert _proven(HELPER.format(calls=calls)) == proven


def test_the_iterated_package_name_is_renamed_and_the_others_kept() -> None:
    source = HELPER.format(calls='paths = [_package_path(n) for n in ("pkg", "mcp")]').lstrip()
    result = rewrite_file(source.encode(), MAPPING, path="pkg/log.py", strings=RULES)
    assert result.new is not None
    assert f'for n in ("{S}", "mcp")]' in result.new.decode()
