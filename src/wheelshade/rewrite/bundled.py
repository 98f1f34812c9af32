"""Bundles: metadata lookups of a bundled distribution redirected to values recorded at shade time.

A bundled dep keeps no ``.dist-info`` of its own (a wheel has one), so
``importlib.metadata.version("<shaded dist>")`` would find nothing, or worse another
installed copy. After the string pass has pointed such calls at the shaded distribution
name, this pass replaces the function called by the same function of a small generated
module inside the bundled package (``metadata_module_source``), which answers from what was
recorded when the bundle was made.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping

import libcst as cst
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wheelshade.errors import RewriteError
from wheelshade.rewrite.names import ImportAliases, aliases_from_ast, package_of

#: Metadata calls on one distribution -> the generated module's function that answers it.
LOOKUPS: dict[str, str] = {
    **{
        f"{mod}.{fn}": fn
        for mod in ("importlib.metadata", "importlib_metadata")
        for fn in ("version", "distribution", "metadata", "files", "requires")
    },
    "importlib.metadata.Distribution.from_name": "distribution",
    "importlib_metadata.Distribution.from_name": "distribution",
    "pkg_resources.get_distribution": "get_distribution",
    "pkg_resources.require": "require",
    "pkg_resources.working_set.require": "require",
}

#: The generated module's file name inside a bundled package.
MODULE_NAME = "_wheelshade_metadata"


def _dist_of(node: cst.BaseExpression) -> str | None:
    """The distribution a literal first argument names (``"a-1-0-x"``, ``"a-1-0-x>=1"``)."""
    if not isinstance(node, cst.SimpleString) or "b" in node.prefix.lower():
        return None
    value = node.evaluated_value
    if not isinstance(value, str):
        return None
    try:
        return canonicalize_name(Requirement(value).name)
    except InvalidRequirement:
        return None


class _Redirect(cst.CSTTransformer):
    def __init__(self, aliases: ImportAliases, targets: Mapping[str, str]) -> None:
        super().__init__()
        self.aliases = aliases
        self.targets = targets
        self.count = 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not updated.args:
            return updated
        function = next(
            (LOOKUPS[q] for q in sorted(self.aliases.qualify(original.func)) if q in LOOKUPS),
            None,
        )
        dist = _dist_of(updated.args[0].value)
        if function is None or dist is None or dist not in self.targets:
            return updated
        self.count += 1
        # __import__ with a fromlist gives the submodule itself, needs no import statement
        # (so no scope or placement question) and works while the package initialises.
        module = cst.parse_expression(
            f"__import__({json.dumps(self.targets[dist])}, fromlist=({function!r},))"
        )
        return updated.with_changes(func=cst.Attribute(module, cst.Name(function)))


def redirect_lookups(source: bytes, targets: Mapping[str, str], *, path: str) -> bytes | None:
    """``source`` with metadata lookups of bundled distributions redirected, or None.

    ``targets`` maps a shaded distribution name to the dotted name of its generated module.
    """
    words = [re.escape(name) for name in targets]
    if not words or not re.search(("[\"'](?:" + "|".join(words) + ")").encode(), source):
        return None
    try:
        module = cst.parse_module(source)
        tree = ast.parse(source)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        raise RewriteError(f"cannot be parsed ({exc})".splitlines()[0], path=path) from None
    redirect = _Redirect(aliases_from_ast(tree, package_of(path)), targets)
    new = module.visit(redirect)
    return new.code.encode(module.encoding) if redirect.count else None


def metadata_module_source(
    name: str, version: str, files: Mapping[str, str], *, host: str
) -> bytes:
    """The generated module: the functions ``LOOKUPS`` names, answering for one bundled dist.

    ``files`` are its dist-info text files as shaded (METADATA, entry_points.txt).
    """
    return _TEMPLATE.format(
        name=name,
        version=version,
        host=host,
        files=json.dumps(dict(sorted(files.items())), indent=4),
    ).encode("utf-8")


_TEMPLATE = '''\
"""Metadata of {name} {version}, bundled into {host} by wheelshade (recorded when shaded).

The distribution keeps no .dist-info of its own inside the bundle: its metadata lookups
were pointed here, so they answer for this copy and never for another installed version.
"""

import importlib.metadata as _metadata
import pathlib as _pathlib

NAME = {name!r}
VERSION = {version!r}
_FILES = {files}


class _Distribution(_metadata.Distribution):
    def read_text(self, filename):
        return _FILES.get(filename)

    def locate_file(self, path):
        return _pathlib.Path(__file__).parent.parent / path


_DIST = _Distribution()


def distribution(name=None):
    return _DIST


def version(name=None):
    return VERSION


def metadata(name=None):
    return _DIST.metadata


def files(name=None):
    return None


def requires(name=None):
    return _DIST.requires


class _PkgResourcesDistribution:
    """What pkg_resources.get_distribution gives, as far as callers commonly use it."""

    project_name = NAME
    key = NAME.lower()
    version = VERSION
    location = str(_pathlib.Path(__file__).parent.parent)

    @property
    def parsed_version(self):
        from packaging.version import Version

        return Version(VERSION)

    def has_metadata(self, name):
        return name in _FILES

    def get_metadata(self, name):
        return _FILES[name]

    def requires(self, extras=()):
        return []

    def __repr__(self):
        return f"{{NAME}} {{VERSION}} (bundled)"


def get_distribution(name=None):
    return _PkgResourcesDistribution()


def require(*requirements):
    return [_PkgResourcesDistribution()]
'''
