"""The one place that wires the steps together: read wheels, plan, rewrite, write atomically."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from . import __version__
from .archive import WheelReader, WheelWriter, wheel_order, zip_timestamp
from .binaries import embedded_names
from .errors import PlanError, RewriteError, UsageError, WheelFormatError
from .fetch import IndexOptions, Pin, default_cache_dir, fetch, parse_dep
from .layout import top_levels
from .metadata import (
    PROVENANCE_FILE,
    Provenance,
    edit_entry_points,
    edit_metadata,
    edit_top_level_txt,
    read_metadata,
)
from .naming import Suffix
from .plan import Action, Role, ShadePlan, WheelJob, WheelSummary, make_plan
from .rewrite import StringRules, mentions, rewrite_source


@dataclass(frozen=True)
class WheelReport:
    """What happened to one wheel."""

    role: Role
    original: str  # "flask 0.12.4"
    source: Path
    output: Path
    distribution: str
    mapping: dict[str, str]
    python_files: int
    rewritten: int
    left_out: tuple[str, ...]


@dataclass(frozen=True)
class ShadeResult:
    wheels: tuple[WheelReport, ...]
    warnings: tuple[str, ...]
    digest: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    if problems:
        raise WheelFormatError("; ".join(problems), path=where)
    names = tuple(m.name for m in reader.members)
    data_dir = reader.dist_info[: -len(".dist-info")] + ".data"
    return WheelSummary(
        path=reader.path,
        role=role,
        filename=reader.path.name,
        version_text=dist_version or str(version),
        dist_info=reader.dist_info,
        members=names,
        metadata=metadata,
        top_levels=top_levels(names, reader.dist_info, data_dir),
        sha256=_sha256(reader.path),
    )


def _drop(plan: ShadePlan, patterns: Sequence[str]) -> ShadePlan:
    if not patterns:
        return plan
    jobs = []
    for job in plan.jobs:
        keep = [a for a in job.actions if not any(fnmatch.fnmatch(a.source, p) for p in patterns)]
        gone = tuple(a.source for a in job.actions if a not in keep)
        jobs.append(replace(job, actions=tuple(keep), left_out=job.left_out + gone))
    return replace(plan, jobs=tuple(jobs))


def _check_binaries(plan: ShadePlan, readers: dict[Path, WheelReader]) -> None:
    findings = []
    for job in plan.jobs:
        reader = readers[job.summary.path]
        for act in job.actions:
            if act.action is Action.BINARY:
                hits = embedded_names(reader.read(act.source), plan.mapping)
                if hits:
                    findings.append(
                        f"{job.summary.filename}: {act.source} is compiled code that refers to "
                        f"{', '.join(repr(h) for h in hits)} by name, which cannot be rewritten"
                    )
    if findings:
        raise PlanError(
            findings,
            hint="if the package has a pure-Python fallback, leave the binary out with "
            "--drop 'PATTERN'",
        )


@dataclass
class _Counts:
    python_files: int = 0
    rewritten: int = 0


def _write_job(
    job: WheelJob, plan: ShadePlan, reader: WheelReader, target: Path, keep_scripts: bool
) -> tuple[_Counts, set[str], list[RewriteError]]:
    """Write one output wheel; returns counts, the names its rewritten files import, errors."""
    summary = job.summary
    is_dep = job.new_name is not None
    executable = {m.name: m.executable for m in reader.members}
    by_target = {a.target: a for a in job.actions}
    extra: dict[str, bytes] = {}
    if is_dep:
        shaded = plan.dists[summary.name]
        extra[f"{job.dist_info_out}/{PROVENANCE_FILE}"] = Provenance(
            original_name=summary.metadata.name,
            original_version=str(summary.metadata.version),
            source_sha256=summary.sha256,
            distribution=shaded.name,
            mapping=shaded.mapping,
            shading_set={str(d.original): str(d.version) for d in plan.dists.values()},
            tool_version=__version__,
        ).to_json()
    strings = StringRules(
        plan.mapping, plan.modules, {d.original: d.name for d in plan.dists.values()}
    )
    counts = _Counts()
    used: set[str] = set()
    errors: list[RewriteError] = []
    where = str(summary.path)
    with WheelWriter(target, job.dist_info_out, date_time=zip_timestamp()) as writer:
        for name in wheel_order([*by_target, *extra], job.dist_info_out):
            if name in extra:
                writer.add(name, extra[name])
                continue
            act = by_target[name]
            exe = executable[act.source]
            if act.action in (Action.COPY, Action.BINARY):
                with reader.open(act.source) as stream:
                    writer.add_stream(name, stream, executable=exe)
                continue
            data = reader.read(act.source)
            if act.action is Action.REWRITE:
                counts.python_files += 1
                try:
                    new = rewrite_source(
                        data, plan.mapping, path=f"{where}/{act.source}", strings=strings
                    )
                except RewriteError as exc:
                    errors.append(exc)
                    continue
                if new is not None:
                    counts.rewritten += 1
                    used.update(k for k in plan.mapping if mentions(data, [k]))
                    data = new
            elif act.action is Action.METADATA:
                data = edit_metadata(data, name=job.new_name, requirement=plan.requirement)
            elif act.action is Action.ENTRY_POINTS:
                data, _ = edit_entry_points(
                    data,
                    plan.mapping,
                    drop_scripts=is_dep and not keep_scripts,
                    where=f"{where}/{act.source}",
                )
            elif act.action is Action.TOP_LEVEL and is_dep:
                data = edit_top_level_txt(data, plan.dists[summary.name].mapping)
            writer.add(name, data, executable=exe)
    return counts, used, errors


@contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A private folder inside ``out_dir``; nothing reaches ``out_dir`` unless all succeeds."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".wheelshade-"))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _resolve(deps: Sequence[str | Path | Pin], index: IndexOptions, cache: Path) -> list[Path]:
    paths = []
    for dep in deps:
        spec = dep if isinstance(dep, Pin) else parse_dep(str(dep))
        paths.append(fetch(spec, index=index, cache_dir=cache) if isinstance(spec, Pin) else spec)
    return paths


def shade(
    dependents: Sequence[str | Path],
    deps: Sequence[str | Path | Pin],
    *,
    out_dir: str | Path = "wheelhouse",
    suffix: Suffix | None = None,
    index: IndexOptions | None = None,
    cache_dir: Path | None = None,
    keep_scripts: bool = False,
    drop: Sequence[str] = (),
) -> ShadeResult:
    """Shade ``deps`` as one set and rewrite ``dependents`` against it; write to ``out_dir``."""
    if not deps:
        raise UsageError("no --dep given: name at least one dependency to shade")
    out = Path(out_dir)
    dep_paths = _resolve(deps, index or IndexOptions(), cache_dir or default_cache_dir())
    inputs = [Path(p) for p in dependents]
    for path in inputs:
        if not path.is_file():
            raise UsageError(f"{path}: no such wheel file")
    with ExitStack() as stack:
        readers: dict[Path, WheelReader] = {}
        summaries: dict[Role, list[WheelSummary]] = {Role.DEP: [], Role.DEPENDENT: []}
        for role, paths in ((Role.DEP, dep_paths), (Role.DEPENDENT, inputs)):
            for path in paths:
                reader = stack.enter_context(WheelReader(path))
                reader.verify_record()
                readers[path] = reader
                summaries[role].append(summarise(reader, role))
        plan = _drop(
            make_plan(
                summaries[Role.DEP],
                summaries[Role.DEPENDENT],
                suffix=suffix,
                keep_scripts=keep_scripts,
            ),
            drop,
        )
        _check_outputs(plan, out, [*dep_paths, *inputs])
        _check_binaries(plan, readers)
        return _execute(plan, readers, out, keep_scripts)


def _check_outputs(plan: ShadePlan, out: Path, inputs: Sequence[Path]) -> None:
    names = [job.output_filename for job in plan.jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PlanError([f"two inputs would both be written as {n}" for n in dupes])
    sources = {p.resolve() for p in inputs}
    for name in names:
        if (out / name).resolve() in sources:
            raise UsageError(
                f"{out / name}: writing there would overwrite an input wheel",
                hint="choose another --out-dir",
            )


def _execute(
    plan: ShadePlan, readers: dict[Path, WheelReader], out: Path, keep_scripts: bool
) -> ShadeResult:
    reports: list[WheelReport] = []
    warnings = list(plan.warnings)
    errors: list[RewriteError] = []
    with _staging(out) as stage:
        for job in plan.jobs:
            counts, used, errs = _write_job(
                job, plan, readers[job.summary.path], stage / job.output_filename, keep_scripts
            )
            errors += errs
            summary = job.summary
            if job.new_name is None:
                for dist in plan.dists.values():
                    if not used & set(dist.mapping):
                        warnings.append(
                            f"{summary.filename} never imports {dist.original} "
                            f"({', '.join(sorted(dist.mapping))}); is that --dep intended?"
                        )
            reports.append(
                WheelReport(
                    role=summary.role,
                    original=summary.label,
                    source=summary.path,
                    output=out / job.output_filename,
                    distribution=job.new_name or summary.name,
                    mapping=dict(plan.dists[summary.name].mapping) if job.new_name else {},
                    python_files=counts.python_files,
                    rewritten=counts.rewritten,
                    left_out=job.left_out,
                )
            )
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
            raise RewriteError(
                first.message + more,
                path=first.path,
                line=first.line,
                hint="the file is not valid Python 3 source; shading cannot rewrite it",
            )
        for job in plan.jobs:
            os.replace(stage / job.output_filename, out / job.output_filename)
    return ShadeResult(tuple(reports), tuple(warnings), plan.digest)
