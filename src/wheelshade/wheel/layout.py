"""What a wheel contains: its importable top-level names and where each member installs."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wheelshade.findings import Code, Finding

EXTENSION_SUFFIXES = (".so", ".pyd")
#: Versioned shared libraries shipped inside a package (pyarrow's ``libarrow_python.so.2500``):
#: not importable, but loaded by its extension modules, and they may import by name too.
_VERSIONED_LIBRARY = re.compile(r"\.so(?:\.[0-9]+)+\Z")
SOURCE_SUFFIXES = (".py", ".pyi")
#: ``.data`` subdirectories whose contents install into site-packages, beside the root.
LIB_SCHEMES = ("purelib", "platlib")


class TopKind(enum.Enum):
    PACKAGE = "package"
    MODULE = "module"
    EXTENSION = "extension"
    NAMESPACE = "namespace"


@dataclass(frozen=True)
class TopLevel:
    name: str
    kind: TopKind


@dataclass(frozen=True)
class Location:
    """Where an archive member lands once installed."""

    #: ``None`` at the wheel root, else the ``.data`` scheme (``purelib``, ``scripts``...).
    scheme: str | None
    #: Path relative to the scheme's root (for root members and purelib/platlib: site-packages).
    path: str


#: The suffix of a PEP 561 stub-only package's folder (``requests-stubs``).
STUBS = "-stubs"


def locate(name: str, data_dir: str) -> Location:
    if name.startswith(data_dir + "/"):
        scheme, _, rest = name[len(data_dir) + 1 :].partition("/")
        return Location(scheme, rest)
    return Location(None, name)


def in_site_packages(loc: Location) -> bool:
    return loc.scheme is None or loc.scheme in LIB_SCHEMES


def module_name_of_file(filename: str) -> str | None:
    """``six.py`` -> ``six``; ``_x.cpython-311-x86_64-linux-gnu.so`` -> ``_x``; else ``None``."""
    if filename.endswith(SOURCE_SUFFIXES):
        return filename.rsplit(".", 1)[0]
    if filename.endswith(EXTENSION_SUFFIXES):
        return filename.split(".", 1)[0]
    return None


def is_python_file(path: str) -> bool:
    return path.endswith(SOURCE_SUFFIXES + EXTENSION_SUFFIXES)


def is_mypyc_group(module: str) -> bool:
    """``<20 hex digits>__mypyc``: the shared library of a mypyc-compiled group of modules.

    Its name may start with a digit: no ``import`` statement can name it, but the
    per-module shims load it with ``PyImport_ImportModule``, so it is a top-level module.
    """
    digits, sep, rest = module.partition("__mypyc")
    return bool(sep) and not rest and len(digits) == 20 and all(
        c in "0123456789abcdef" for c in digits
    )


def top_levels(names: Iterable[str], dist_info: str, data_dir: str) -> tuple[TopLevel, ...]:
    """The importable top-level names a wheel installs, found from the archive itself.

    A directory counts when it holds Python code somewhere below it: with an ``__init__``
    it is a package, without one a namespace portion. ``__pycache__`` and the metadata
    directories never count.
    """
    kinds: dict[str, TopKind] = {}
    for name in names:
        if name.startswith(dist_info + "/"):
            continue
        loc = locate(name, data_dir)
        if not in_site_packages(loc):
            continue
        head, sep, rest = loc.path.partition("/")
        if not sep:
            module = module_name_of_file(head)
            if module is not None and (module.isidentifier() or is_mypyc_group(module)):
                kind = TopKind.EXTENSION if head.endswith(EXTENSION_SUFFIXES) else TopKind.MODULE
                kinds.setdefault(module, kind)
            continue
        if head == "__pycache__" or not head.isidentifier() or not is_python_file(rest):
            continue
        if rest.split("/")[-1].split(".")[0] == "__init__" and "/" not in rest:
            kinds[head] = TopKind.PACKAGE
        elif kinds.get(head) is not TopKind.PACKAGE:
            kinds[head] = TopKind.NAMESPACE
    return tuple(TopLevel(n, kinds[n]) for n in sorted(kinds))


def parse_top_level_txt(data: bytes) -> tuple[str, ...]:
    names = (line.strip() for line in data.decode("utf-8", "replace").splitlines())
    return tuple(sorted({n.replace("/", ".") for n in names if n}))


def top_level_mismatch(found: Sequence[TopLevel], declared: Sequence[str]) -> list[str]:
    """Declared top-level names (``top_level.txt``) the archive does not back up, as findings."""
    have = {t.name for t in found}
    return [
        f"top_level.txt lists {name!r} but the wheel has no such module"
        for name in declared
        if name.split(".")[0] not in have
    ]


def _module_paths(names: Iterable[str], dist_info: str, data_dir: str) -> Iterable[list[str]]:
    """The dotted parts of each module file a wheel installs (``pkg/__init__.py`` -> pkg)."""
    for name in names:
        if name.startswith(dist_info + "/"):
            continue
        loc = locate(name, data_dir)
        if not in_site_packages(loc) or "__pycache__" in loc.path.split("/"):
            continue
        *dirs, filename = loc.path.split("/")
        module = module_name_of_file(filename)
        if module is None or not all(d.isidentifier() for d in dirs):
            continue
        parts = dirs if module == "__init__" else [*dirs, module]
        if parts:
            yield parts


def module_names(names: Iterable[str], dist_info: str, data_dir: str) -> frozenset[str]:
    """Dotted names of every module and package a wheel installs (``pkg``, ``pkg.sub.mod``),
    namespace directories included."""
    return frozenset(
        ".".join(parts[: i + 1])
        for parts in _module_paths(names, dist_info, data_dir)
        for i in range(len(parts))
    )


def file_modules(names: Iterable[str], dist_info: str, data_dir: str) -> frozenset[str]:
    """Dotted names of the modules and regular packages a wheel installs: a file of its own
    (``pkg/__init__.py``, ``pkg/mod.py``), not a namespace directory."""
    return frozenset(".".join(parts) for parts in _module_paths(names, dist_info, data_dir))


def is_compiled(name: str) -> bool:
    """An extension module or a shared library (``.so``, ``.pyd``, ``.so.<version>``)."""
    return name.endswith(EXTENSION_SUFFIXES) or _VERSIONED_LIBRARY.search(name) is not None


def has_python_twin(name: str, members: set[str]) -> bool:
    """``pkg/mod.cpython-311-x86_64-linux-gnu.so`` beside ``pkg/mod.py``."""
    if not name.endswith(EXTENSION_SUFFIXES):
        return False
    folder, _, filename = name.rpartition("/")
    module = filename.split(".", 1)[0]
    return (f"{folder}/{module}.py" if folder else f"{module}.py") in members


def is_pth(loc: Location) -> bool:
    return in_site_packages(loc) and "/" not in loc.path and loc.path.endswith(".pth")


#: ``.data`` schemes that install outside site-packages under paths of their own choosing.
SHARED_SCHEMES = ("data", "headers")


def shared_data(names: Iterable[str], data_dir: str) -> Finding | None:
    """One finding for the files a shaded dep installs outside site-packages: shading keeps
    their paths (``share/jupyter/<pkg>/templates/...``), which the other release installs
    too, so whichever pip writes last is read by both copies, and uninstalling one removes
    the other's. Code that finds them by name (and data naming the package's modules) then
    serves the shaded copy the other release's files."""
    shared = sorted(n for n in names
                    if locate(n, data_dir).scheme in SHARED_SCHEMES)
    if not shared:
        return None
    return Finding(
        shared[0], None, Code.SHARED_DATA,
        f"{len(shared)} file(s) install outside site-packages at paths the original's other "
        f"releases install too (first {locate(shared[0], data_dir).path!r}): installed "
        "beside one, both copies read whichever pip wrote last; check what reads them "
        "(wheelshade verify shows what they make the shaded copy import)",
    )
