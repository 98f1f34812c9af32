"""Pure planning: from summaries of the input wheels to every rename and edit, validated at once."""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelshade.errors import PlanError
from wheelshade.findings import Code, Finding
from wheelshade.naming import (
    Suffix,
    collapsed,
    default_suffix,
    filename_component,
    set_hash,
    shaded_dist_name,
    shaded_import_name,
)
from wheelshade.native.patching import same_length_name
from wheelshade.nesting import (
    nested_notes,
    unclaimed_imports,
)
from wheelshade.setcheck import check_set
from wheelshade.wheel.layout import (
    EXTENSION_SUFFIXES,
    STUBS,
    TopKind,
    has_python_twin,
    in_site_packages,
    is_compiled,
    is_mypyc_group,
    is_pth,
    locate,
    module_name_of_file,
    shared_data,
    top_level_mismatch,
)
from wheelshade.wheel.metadata import PROVENANCE_FILE
from wheelshade.wheel.records import _SIGNATURES
from wheelshade.wheel.summary import Role, WheelSummary


class Action(enum.Enum):
    COPY = "copy"
    REWRITE = "rewrite"  # Python source: rewritten when it mentions a shaded name
    BINARY = "binary"  # compiled module: checked for embedded shaded names, then copied
    PTH = "pth"  # a .pth file of a shaded dep, kept: its import lines are rewritten
    METADATA = "metadata"
    ENTRY_POINTS = "entry_points"
    TOP_LEVEL = "top_level"


@dataclass(frozen=True)
class PlanOptions:
    suffix: Suffix | None = None
    #: Keep console/GUI scripts and ``.data/scripts`` of shaded deps.
    keep_scripts: bool = False
    #: Keep ``.pth`` files of shaded deps (renamed, import lines rewritten).
    keep_pth: bool = False
    #: Globs of archive members to leave out.
    drop: tuple[str, ...] = ()
    #: Original names that get a same-length name (compiled code refers to them).
    same_length: frozenset[str] = frozenset()
    #: Keep source files that cannot be parsed unchanged instead of failing.
    keep_unparsable: bool = False
    #: Leave out compiled modules of shaded deps that ship a ``.py`` twin (Cython builds).
    prefer_python: bool = False
    #: More pins for the digest (``--bundle``: the host, so each bundle's names are its own).
    salt: tuple[tuple[NormalizedName, Version], ...] = ()


@dataclass(frozen=True)
class ShadedDist:
    original: NormalizedName
    version: Version
    name: NormalizedName
    mapping: Mapping[str, str]
    #: Its stub-only folders -> their new names (``requests-stubs`` ->
    #: ``requests_2_31_0_<hash>-stubs``): no import names, so kept out of ``mapping``.
    stubs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberAction:
    source: str
    target: str
    action: Action


@dataclass(frozen=True)
class WheelJob:
    summary: WheelSummary
    output_filename: str
    dist_info_out: str
    new_name: NormalizedName | None  # the shaded distribution name, None for dependents
    actions: tuple[MemberAction, ...]
    left_out: tuple[str, ...]  # members deliberately not carried over, for the report
    findings: tuple[Finding, ...] = ()
    #: New members: the packages top-level extension modules move into.
    generated: tuple[tuple[str, bytes], ...] = ()
    #: Grafted library folders renamed with the distribution (``pillow.libs`` -> ...).
    libs_renames: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ShadePlan:
    mapping: Mapping[str, str]
    dists: Mapping[NormalizedName, ShadedDist]
    jobs: tuple[WheelJob, ...]
    digest: str
    #: Dotted names of every module the deps install, under their original names.
    modules: frozenset[str] = frozenset()
    options: PlanOptions = field(default_factory=lambda: PlanOptions())
    warnings: tuple[str, ...] = field(default=())

    def requirement(self, req: Requirement) -> Requirement | None:
        """A ``Requires-Dist`` on a member of the set, pointed at its shaded distribution."""
        dist = self.dists.get(canonicalize_name(req.name))
        if dist is None:
            return None
        new = Requirement(str(req))
        new.name = dist.name
        new.url = None
        new.specifier = type(req.specifier)(f"=={dist.version}")
        return new


def _move(path: str, mapping: Mapping[str, str], extensions: frozenset[str] = frozenset()) -> str:
    """Where a member moves; ``extensions`` are the top-level extension modules renamed."""
    head, sep, rest = path.partition("/")
    if sep:
        if head in mapping:
            return mapping[head] + sep + rest
        parts = path.split("/")
        for i in range(1, len(parts)):
            portion = module_name_of_file(parts[i]) or parts[i]
            key = ".".join([*parts[:i], portion])
            if key not in mapping:
                continue
            if collapsed(key, mapping[key]):  # nsx/fastpart/x.py -> <top>/x.py
                inner = "/".join(parts[i + 1:])
                return mapping[key] + ("/" + inner if inner else parts[i][len(portion):])
            return mapping[key].split(".")[0] + sep + rest
        return path
    module = module_name_of_file(head)
    if module is None or module not in mapping:
        return path
    if head.endswith(EXTENSION_SUFFIXES):
        if is_mypyc_group(module):
            # A mypyc group library registers and finds itself under its own name: it is
            # renamed for real (file, strings and PyInit_ symbol; same-length).
            return mapping[module] + head[len(module) :]
        # A top-level extension module moves, file name unchanged, into a package of the
        # shaded name whose generated __init__ hands it out (see wrapper_source).
        return f"{mapping[module]}/{head}"
    if head.endswith(".pyi") and module in extensions:
        return f"{mapping[module]}/__init__.pyi"  # the stub describes the package now
    return mapping[module] + head[len(module) :]


def wrapper_source(original: str, filename: str) -> bytes:
    """``__init__.py`` of the package a shaded top-level extension module moves into.

    The module is loaded as the submodule ``<shaded>.<original>``: its init function is
    still ``PyInit_<original>``, which the loader finds from the last part of the name,
    and no spec ever carries the bare original name (on CPython 3.11 loading one would
    replace the user's own ``sys.modules[original]``). Then the package replaces itself
    in ``sys.modules``, so ``import <shaded>`` gives the extension module itself.
    """
    return (
        f'"""The extension module {original!r} ({filename}), shaded by wheelshade."""\n\n'
        "import sys as _sys\n\n"
        f"from . import {original} as _extension\n\n"
        "_sys.modules[__name__] = _extension\n"
    ).encode()


def _classify(path: str) -> Action:
    if path.endswith((".py", ".pyi")):
        return Action.REWRITE
    if is_compiled(path):
        return Action.BINARY
    return Action.COPY


def _actions(
    wheel: WheelSummary, dist_info_out: str, own: Mapping[str, str], options: PlanOptions
) -> tuple[list[MemberAction], list[str], list[Finding], tuple[tuple[str, bytes], ...],
           tuple[tuple[str, str], ...]]:
    """Member-by-member moves; ``own`` is this wheel's own renames (empty for dependents)."""
    actions: list[MemberAction] = []
    left_out: list[str] = []
    shared = shared_data(wheel.members, wheel.data_dir) if own else None
    findings: list[Finding] = [] if shared is None else [shared]
    generated: dict[str, bytes] = {}
    libs: dict[str, str] = {}
    data_out = dist_info_out[: -len(".dist-info")] + ".data"
    extensions = frozenset(
        t.name for t in wheel.top_levels if t.kind is TopKind.EXTENSION and t.name in own
    )
    members = set(wheel.members)
    for name in wheel.members:
        if any(fnmatch.fnmatch(name, pattern) for pattern in options.drop):
            left_out.append(name)
            continue
        if name.startswith(wheel.dist_info + "/"):
            base = name[len(wheel.dist_info) + 1 :]
            target = f"{dist_info_out}/{base}"
            if base in ("RECORD", *_SIGNATURES) or base == PROVENANCE_FILE:
                continue  # rewritten by the writer / replaced by fresh provenance
            action = {
                "METADATA": Action.METADATA,
                "entry_points.txt": Action.ENTRY_POINTS,
                "top_level.txt": Action.TOP_LEVEL,
            }.get(base, Action.COPY)
            actions.append(MemberAction(name, target, action))
            continue
        if own and options.prefer_python and has_python_twin(name, members):
            left_out.append(name)
            findings.append(
                Finding(
                    name,
                    None,
                    Code.PYTHON_TWIN,
                    "compiled module left out for its .py twin (--prefer-python): slower",
                )
            )
            continue
        # Compiled caches would hold stale code under the old names; pip recompiles anyway.
        if "/__pycache__/" in f"/{name}" and name.endswith(".pyc"):
            left_out.append(name)
            continue
        loc = locate(name, wheel.data_dir)
        if own and is_pth(loc):
            # A .pth runs at every interpreter start: kept, both versions would run it.
            if not options.keep_pth:
                left_out.append(name)
                findings.append(
                    Finding(
                        name,
                        None,
                        Code.PTH_DROPPED,
                        "a .pth file runs at interpreter start-up; the unshaded package's copy "
                        "already does, so the shaded copy's is left out (--keep-pth keeps it)",
                    )
                )
                continue
            prefix = dist_info_out.split("-", 1)[0]
            moved = f"{prefix}-{loc.path}"
            target = moved if loc.scheme is None else f"{data_out}/{loc.scheme}/{moved}"
            actions.append(MemberAction(name, target, Action.PTH))
            continue
        head = loc.path.split("/", 1)[0]
        if own and in_site_packages(loc) and head.endswith(".libs") and "/" in loc.path:
            # auditwheel grafts shared libraries into <dist>.libs, found by RPATH: two
            # versions must not share (and then uninstall) each other's copies.
            new_head = dist_info_out.split("-", 1)[0] + ".libs"
            libs[head] = new_head
            moved = new_head + loc.path[len(head) :]
            target = moved if loc.scheme is None else f"{data_out}/{loc.scheme}/{moved}"
            actions.append(MemberAction(name, target, _classify(name)))
            continue
        if loc.scheme is None:
            target = _move(loc.path, own, extensions)
        elif loc.scheme == "scripts" and own and not options.keep_scripts:
            left_out.append(name)
            continue
        else:
            moved = _move(loc.path, own, extensions) if in_site_packages(loc) else loc.path
            target = f"{data_out}/{loc.scheme}/{moved}"
        action = _classify(name) if in_site_packages(loc) else Action.COPY
        actions.append(MemberAction(name, target, action))
        module = module_name_of_file(loc.path)
        if (
            module in extensions
            and not is_mypyc_group(module)
            and "/" not in loc.path
            and action is Action.BINARY
        ):
            wrapper = target.rsplit("/", 1)[0] + "/__init__.py"
            generated.setdefault(wrapper, wrapper_source(module, loc.path))
    return (actions, left_out, findings, tuple(sorted(generated.items())),
            tuple(sorted(libs.items())))


def make_plan(
    deps: Sequence[WheelSummary],
    dependents: Sequence[WheelSummary],
    options: PlanOptions = PlanOptions(),
) -> ShadePlan:
    """Decide every name, move and edit; raise PlanError listing every conflict found."""
    problems = check_set(deps, dependents)
    if problems:
        raise PlanError(problems, hint="fix the shading set and run again")
    digest = set_hash([*((d.name, d.metadata.version) for d in deps), *options.salt])
    mapping: dict[str, str] = {}
    dists: dict[NormalizedName, ShadedDist] = {}
    taken = {t.name for wheel in (*deps, *dependents) for t in wheel.top_levels}
    tops: dict[NormalizedName, dict[str, str]] = {}
    for dep in deps:
        tail = options.suffix or default_suffix(dep.metadata.version, digest)
        tops[dep.name] = {
            t.name: same_length_name(t.name, digest, taken)
            if t.name in options.same_length
            else shaded_import_name(t.name, tail)
            for t in dep.top_levels
            if t.kind is not TopKind.NAMESPACE
        }
        taken.update(tops[dep.name].values())
        mapping.update(tops[dep.name])
    for dep in deps:
        tail = options.suffix or default_suffix(dep.metadata.version, digest)
        renames = tops[dep.name]
        for top in dep.top_levels:
            if top.kind is TopKind.NAMESPACE:
                # Into a shaded namespace or the shaded package it nests in (nesting.py);
                # where compiled code spells ``ns.portion``, a top-level package of that
                # prefix's length (the binary's strings are patched whole; ``ns`` stays).
                head = mapping.get(top.name) or shaded_import_name(top.name, tail)
                for portion in dep.portions(top.name):
                    key = f"{top.name}.{portion}"
                    renames[key] = (
                        same_length_name(key, digest, taken | set(renames.values()))
                        if key in options.same_length else f"{head}.{portion}")
        taken.update(renames.values())
        # A portion nested in a shaded package is renamed with it: no key of its own.
        mapping.update({k: v for k, v in renames.items() if k.split(".")[0] not in mapping})
        stubs = {f"{p}{STUBS}": f"{mapping[p]}{STUBS}" for p in dep.stub_packages if p in mapping}
        dists[dep.name] = ShadedDist(
            dep.name, dep.metadata.version, shaded_dist_name(dep.name, tail), renames, stubs
        )
    jobs: list[WheelJob] = []
    for wheel in (*deps, *dependents):
        shaded = dists.get(wheel.name) if wheel.role is Role.DEP else None
        if shaded is not None:
            component = filename_component(shaded.name)
            rest = wheel.filename.split("-", 1)[1]
            out_name = f"{component}-{rest}"
            dist_info_out = f"{component}-{wheel.version_text}.dist-info"
            own: Mapping[str, str] = {**shaded.mapping, **shaded.stubs}
        else:
            out_name, dist_info_out, own = wheel.filename, wheel.dist_info, {}
        actions, left_out, findings, generated, libs = _actions(wheel, dist_info_out, own, options)
        jobs.append(WheelJob(
            wheel, out_name, dist_info_out, shaded.name if shaded else None, tuple(actions),
            tuple(left_out), tuple(findings), generated, libs,
        ))
    modules = frozenset().union(*(dep.modules for dep in deps))
    warnings = nested_notes(deps, mapping) + unclaimed_imports(deps) + tuple(
        f"{dep.filename}: {finding}"
        for dep in deps
        if dep.declared_top_levels is not None
        for finding in top_level_mismatch(dep.top_levels, dep.declared_top_levels)
    )
    return ShadePlan(mapping, dists, tuple(jobs), digest, modules, options, warnings)
