"""What planning needs to know about one input wheel, read and cross-checked once."""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelshade.errors import WheelFormatError
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import (
    EXTENSION_SUFFIXES,
    STUBS,
    TopKind,
    TopLevel,
    file_modules,
    in_site_packages,
    locate,
    module_name_of_file,
    module_names,
    parse_top_level_txt,
    top_levels,
)
from wheelshade.wheel.metadata import CoreMetadata, entry_point_groups, read_metadata


class Role(enum.Enum):
    DEP = "dep"
    DEPENDENT = "dependent"


@dataclass(frozen=True)
class WheelSummary:
    """Everything planning needs to know about one input wheel (read by the I/O layer)."""

    path: Path
    role: Role
    filename: str
    version_text: str  # the version as spelled in the file name
    dist_info: str
    members: tuple[str, ...]
    metadata: CoreMetadata
    top_levels: tuple[TopLevel, ...]
    sha256: str
    #: Names listed in ``top_level.txt``, when the wheel has one.
    declared_top_levels: tuple[str, ...] | None = None
    #: The groups (sections) of its ``entry_points.txt``.
    entry_point_groups: tuple[str, ...] = ()
    #: Submodules of its own regular packages that its code imports at module level
    #: (``host.ext``), read only when it requires other distributions.
    own_imports: frozenset[str] = frozenset()
    #: What its namespace portions' code imports at module level inside their namespaces,
    #: resolved (``from ns.sub import x`` gives ``ns.sub`` and ``ns.sub.x``); relative
    #: imports that leave their portion are marked with a leading ``.``.
    namespace_imports: frozenset[str] = frozenset()
    #: Entry-point groups its code loads by a literal name (``entry_points(group="x")``,
    #: ``iter_entry_points("x")``), read only for deps.
    loaded_groups: frozenset[str] = frozenset()

    @property
    def name(self) -> NormalizedName:
        return self.metadata.normalized

    @property
    def data_dir(self) -> str:
        return self.dist_info[: -len(".dist-info")] + ".data"

    @functools.cached_property
    def modules(self) -> frozenset[str]:
        # Read by portions(), the plan and the string rules: one walk of the members.
        return module_names(self.members, self.dist_info, self.data_dir)

    @functools.cached_property
    def files(self) -> frozenset[str]:
        """Its modules and regular packages: ``modules`` less the namespace directories."""
        return file_modules(self.members, self.dist_info, self.data_dir)

    def portions(self, namespace: str) -> tuple[str, ...]:
        """What this wheel installs inside the namespace package ``namespace``, each at its
        first level that is not a namespace itself: ``google/auth/...`` and
        ``google/cloud/storage/...`` (``google/cloud`` shared, no ``__init__``) give
        ``("auth", "cloud.storage")``. Other distributions may install beside each of
        them, never inside."""
        prefix = namespace + "."
        found = set()
        for module in self.modules:
            if not module.startswith(prefix) or module not in self.files:
                continue
            parts = module[len(prefix):].split(".")
            tail = next(
                tail for i in range(1, len(parts) + 1)
                if prefix + (tail := ".".join(parts[:i])) in self.files
            )
            # A compiled module alone in a nested namespace (``ns/_impl/_ext.so``) cannot
            # take a top-level name of its own (its init function names it): the folder,
            # which compiled code spells whole, takes one instead.
            if "." in tail and prefix + tail in self.extensions:
                tail = tail.rpartition(".")[0]
            found.add(tail)
        return tuple(sorted(found))

    @functools.cached_property
    def extensions(self) -> frozenset[str]:
        """Its compiled modules, dotted (``pkg._speedups``)."""
        return frozenset(
            ".".join([*m.split("/")[:-1], module_name_of_file(m.split("/")[-1]) or ""])
            for m in self.members if m.endswith(EXTENSION_SUFFIXES)
        )

    @functools.cached_property
    def stub_packages(self) -> tuple[str, ...]:
        """The packages its PEP 561 stub-only folders describe (``requests-stubs/`` gives
        ``requests``): they take the shaded name of that package."""
        found = set()
        for member in self.members:
            loc = locate(member, self.data_dir)
            head, sep, _ = loc.path.partition("/")
            if (sep and in_site_packages(loc) and head.endswith(STUBS)
                    and head[: -len(STUBS)].isidentifier() and member.endswith(".pyi")):
                found.add(head[: -len(STUBS)])
        return tuple(sorted(found))

    def import_keys(self) -> tuple[str, ...]:
        """The names shading renames: each top-level name, but for a namespace package each
        portion (``google.auth``), since other distributions share the namespace."""
        keys: list[str] = []
        for top in self.top_levels:
            if top.kind is TopKind.NAMESPACE:
                keys.extend(f"{top.name}.{p}" for p in self.portions(top.name))
            else:
                keys.append(top.name)
        return tuple(keys)

    @property
    def label(self) -> str:
        return f"{self.name} {self.metadata.version}"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


#: A module-level import statement: ``from host.ext import x``, ``from .ext import x``,
#: ``import host.ext``.
_IMPORT = re.compile(rb"^(?:from[ \t]+(\.?[\w.]+)[ \t]+import\b|import[ \t]+([\w.]+))", re.M)


#: Test code imports helpers that wheels routinely leave out (``pkg.e2e_test``, fixtures):
#: such an import says nothing about another distribution installing into the package.
_TEST_PACKAGES = frozenset({"test", "tests", "testing"})


def _is_test(parts: Sequence[str]) -> bool:
    stem = parts[-1].removesuffix(".py")
    return (bool(_TEST_PACKAGES.intersection(parts[:-1])) or stem.startswith("test_")
            or stem.endswith("_test") or stem == "conftest")


def _sources(
    reader: WheelReader, tops: Collection[str] | None = None
) -> Iterator[tuple[list[str], bytes]]:
    """The path parts and text of each ``.py`` file outside tests (under ``tops`` only)."""
    for member in reader.members:
        parts = member.name.split("/")
        if (tops is None or parts[0] in tops) and member.name.endswith(".py") and not (
            _is_test(parts)
        ):
            yield parts, reader.read(member.name)


def _own_imports(reader: WheelReader, tops: Sequence[TopLevel]) -> frozenset[str]:
    """Dotted submodules of the wheel's regular packages its code imports at module level."""
    regular = {t.name for t in tops if t.kind is TopKind.PACKAGE}
    found: set[str] = set()
    for parts, text in _sources(reader, regular):
        for match in _IMPORT.finditer(text):
            target = (match.group(1) or match.group(2)).decode("ascii", "replace")
            if target.startswith(".."):
                continue
            if target.startswith("."):
                target = ".".join(parts[:-1]) + target
            if target.split(".")[0] in regular and "." in target.strip("."):
                found.add(target.strip("."))
    return frozenset(found)


#: A module-level ``from X import names`` with its names, parenthesised over lines or not.
_FROM = re.compile(rb"^from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.M)
_PLAIN = re.compile(rb"^import[ \t]+([\w.]+)", re.M)


def _namespace_imports(
    reader: WheelReader, tops: Sequence[TopLevel], files: frozenset[str]
) -> frozenset[str]:
    """Modules inside its namespaces that its portions' code imports (see the field)."""
    spaces = {t.name for t in tops if t.kind is TopKind.NAMESPACE}
    found: set[str] = set()
    for parts, text in _sources(reader, spaces):
        package = parts[:-1]
        # The portion the file belongs to: its first level that is not a namespace.
        stem = parts[-1].removesuffix(".py")
        dotted = package if stem == "__init__" else [*package, stem]
        portion = next((".".join(dotted[:i]) for i in range(2, len(dotted) + 1)
                        if ".".join(dotted[:i]) in files), ".".join(dotted))
        for match in _FROM.finditer(text):
            target = match.group(1).decode("ascii", "replace")
            dots = len(target) - len(target.lstrip("."))
            base = package[: max(0, len(package) - dots + 1)] if dots else []
            module = ".".join([*base, target.lstrip(".")] if target.strip(".") else base)
            # ``from .. import x`` in ``ns/p/__init__.py`` reaches ``ns``: outside ``ns.p``.
            inside = module == portion or module.startswith(portion + ".")
            mark = "." if dots and not inside else ""
            if not module or module.split(".")[0] not in spaces:
                continue
            found.add(mark + module)
            names = match.group(2).decode("ascii", "replace").strip("() \t\n\\")
            for name in names.replace("\n", ",").split(","):
                word = name.split()[0] if name.split() else ""
                if word.isidentifier():
                    found.add(f"{mark}{module}.{word}")
        for match in _PLAIN.finditer(text):
            module = match.group(1).decode("ascii", "replace")
            if module.split(".")[0] in spaces:
                found.add(module)
    return frozenset(found)


#: An entry-point group named by a literal where plugins are looked up.
_GROUP = re.compile(
    rb"""\bgroup\s*=\s*['"]([\w.:-]+)['"]|iter_entry_points\(\s*['"]([\w.:-]+)['"]""")


def _loaded_groups(reader: WheelReader) -> frozenset[str]:
    found: set[str] = set()
    for _, data in _sources(reader):
        if b"entry_points" in data:
            found.update((m.group(1) or m.group(2)).decode("ascii", "replace")
                         for m in _GROUP.finditer(data))
    return frozenset(found)


def summarise(reader: WheelReader, role: Role) -> WheelSummary:
    """Read the facts planning needs, checking that the wheel's names agree with each other."""
    where = str(reader.path)
    try:
        name, version, _, _ = parse_wheel_filename(reader.path.name)
    except InvalidWheelFilename as exc:
        raise WheelFormatError(f"invalid wheel filename ({exc})", path=where) from None
    meta_path = f"{reader.dist_info}/METADATA"
    if meta_path not in {m.name for m in reader.members}:
        raise WheelFormatError(f"{meta_path} is missing", path=where)
    metadata = read_metadata(reader.read(meta_path), where=f"{where}/{meta_path}")
    dist_name, _, dist_version = reader.dist_info[: -len(".dist-info")].partition("-")
    problems = []
    if canonicalize_name(dist_name) != name or metadata.normalized != name:
        problems.append(
            f"names disagree: file name says {name!r}, {reader.dist_info} and METADATA say "
            f"{canonicalize_name(dist_name)!r} and {metadata.normalized!r}"
        )
    if metadata.version != version:
        problems.append(f"file name says version {version}, METADATA says {metadata.version}")
    try:
        dist_info_version = Version(dist_version)
    except InvalidVersion:
        dist_info_version = None
    if dist_info_version != version:
        problems.append(
            f"{reader.dist_info} says version {dist_version!r}, the file name {version}"
        )
    if problems:
        raise WheelFormatError("; ".join(problems), path=where)
    names = tuple(m.name for m in reader.members)
    data_dir = reader.dist_info[: -len(".dist-info")] + ".data"
    top_txt = f"{reader.dist_info}/top_level.txt"
    declared = parse_top_level_txt(reader.read(top_txt)) if top_txt in names else None
    groups: tuple[str, ...] = ()
    if (entry_points := f"{reader.dist_info}/entry_points.txt") in names:
        # An unreadable file is reported, with its reason, when it is rewritten.
        with contextlib.suppress(WheelFormatError):
            groups = entry_point_groups(reader.read(entry_points), where=where)
    tops = top_levels(names, reader.dist_info, data_dir)
    own = _own_imports(reader, tops) if role is Role.DEP and metadata.requires else frozenset()
    return WheelSummary(
        path=reader.path,
        role=role,
        filename=reader.path.name,
        version_text=dist_version or str(version),
        dist_info=reader.dist_info,
        members=names,
        metadata=metadata,
        top_levels=tops,
        sha256=_sha256(reader.path),
        declared_top_levels=declared,
        entry_point_groups=groups,
        own_imports=own,
        namespace_imports=(
            _namespace_imports(reader, tops, file_modules(names, reader.dist_info, data_dir))
            if role is Role.DEP else frozenset()
        ),
        loaded_groups=_loaded_groups(reader) if role is Role.DEP else frozenset(),
    )
