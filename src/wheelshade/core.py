"""The one place that wires the steps together: read wheels, plan, rewrite, write atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from . import compiled, loadcheck
from .apply import JobOutcome, string_rules, write_job
from .archive import WheelReader
from .closure import ClosureOptions, expand
from .compiled import Naming
from .errors import OutputError, PlanError, RewriteError, StrictError, UsageError, WheelFormatError
from .fetch import IndexOptions, Pin, Target, default_cache_dir, fetch, parse_dep
from .findings import Finding
from .layout import parse_top_level_txt, top_levels
from .metadata import read_metadata
from .naming import Suffix
from .plan import PlanOptions, Role, ShadePlan, WheelJob, WheelSummary, make_plan
from .resolve import Decision
from .rewrite.pool import SourceRewriter
from .timings import Timings


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
    findings: tuple[Finding, ...] = ()
    #: Console/GUI scripts of a shaded dep that were left out.
    scripts_dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShadeResult:
    wheels: tuple[WheelReport, ...]
    warnings: tuple[str, ...]
    digest: str
    #: Unified diffs of every changed text member (only when asked for).
    diffs: tuple[str, ...] = ()
    #: False for a dry run: nothing was written.
    written: bool = True
    #: ``--with-deps``: every member of the resolved closure and why it is (not) shaded.
    decisions: tuple[Decision, ...] = ()
    #: Naming choices worth telling: which names got a same-length name, and why.
    notes: tuple[str, ...] = ()

    @property
    def findings(self) -> int:
        return sum(len(w.findings) for w in self.wheels)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
        declared_top_levels=declared,
    )


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


@contextmanager
def _staging(out_dir: Path, *, keep: bool) -> Iterator[Path]:
    """A private folder inside ``out_dir``; nothing reaches ``out_dir`` unless all succeeds.

    On failure only what this run made goes: its staging folder, and ``out_dir`` itself
    when this run created it and it is empty again (another process may be writing there).
    Operating-system errors (a full disk, a read-only or missing folder) become OutputError.
    """
    created: list[Path] = []
    parent = out_dir
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".wheelshade-"))
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder ({exc.strerror})",
            path=str(out_dir),
            hint="choose another --out-dir",
        ) from None
    try:
        yield stage
    except OSError as exc:
        keep = False
        raise OutputError(
            f"cannot write the output ({exc.strerror or exc})",
            path=str(out_dir),
            hint="free some space or choose another --out-dir",
        ) from None
    except BaseException:
        keep = False
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not keep:
            for folder in created:  # innermost first; rmdir leaves a non-empty one alone
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _resolve(
    deps: Sequence[str | Path | Pin],
    index: IndexOptions,
    cache: Path,
    timeout: float | None,
    target: Target | None,
) -> list[Path]:
    paths = []
    for dep in deps:
        spec = dep if isinstance(dep, Pin) else parse_dep(str(dep))
        if isinstance(spec, Pin):
            spec = fetch(
                spec, index=index, cache_dir=cache, timeout=timeout or 900.0, target=target
            )
        paths.append(spec)
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
    keep_pth: bool = False,
    drop: Sequence[str] = (),
    dry_run: bool = False,
    diff: bool = False,
    strict: bool = False,
    jobs: int | None = None,
    timings: Timings | None = None,
    with_deps: bool = False,
    closure: ClosureOptions | None = None,
    naming: Naming = Naming.AUTO,
    fetch_timeout: float | None = None,
    keep_unparsable: bool = False,
    target: Target | None = None,
    prefer_python: bool = False,
    load_check: bool = True,
) -> ShadeResult:
    """Shade ``deps`` as one set and rewrite ``dependents`` against it; write to ``out_dir``.

    ``dry_run`` does all the work but writes nothing; ``diff`` collects unified diffs of
    every changed file; ``strict`` fails (StrictError, nothing written) on any finding;
    ``jobs`` is how many processes rewrite sources (default: the usable CPUs);
    ``timings`` collects the seconds spent per phase. ``with_deps`` resolves the deps'
    dependency closure with pip and shades the members the target environment (see
    ``closure``) would otherwise hold in an incompatible version. ``naming`` decides
    when shaded names have the original's length so compiled code can be patched.
    """
    clock = timings or Timings()
    if not deps:
        raise UsageError("no --dep given: name at least one dependency to shade")
    out = Path(out_dir)
    inputs = [Path(p) for p in dependents]
    for path in inputs:
        if not path.is_file():
            raise UsageError(f"{path}: no such wheel file")
    decisions: tuple[Decision, ...] = ()
    if with_deps:
        with clock.phase("resolve closure"):
            deps, decisions = expand(
                deps,
                inputs,
                index=index or IndexOptions(),
                options=closure or ClosureOptions(),
                platform=target,
            )
    with clock.phase("fetch"):
        dep_paths = _resolve(
            deps, index or IndexOptions(), cache_dir or default_cache_dir(), fetch_timeout, target
        )
    options = PlanOptions(
        suffix,
        keep_scripts,
        keep_pth,
        tuple(drop),
        keep_unparsable=keep_unparsable,
        prefer_python=prefer_python,
    )
    with ExitStack() as stack:
        readers: dict[Path, WheelReader] = {}
        summaries: dict[Role, list[WheelSummary]] = {Role.DEP: [], Role.DEPENDENT: []}
        for role, paths in ((Role.DEP, dep_paths), (Role.DEPENDENT, inputs)):
            for path in paths:
                with clock.phase("read and verify"):
                    reader = stack.enter_context(WheelReader(path))
                    reader.verify_record()
                    reader.check_wheel_version()
                    readers[path] = reader
                    summaries[role].append(summarise(reader, role))
        with clock.phase("plan"):
            every = [*summaries[Role.DEP], *summaries[Role.DEPENDENT]]
            tops = sorted({t.name for s in summaries[Role.DEP] for t in s.top_levels})
            binaries = compiled.scan(every, readers, tops, options.drop)
            options = replace(
                options, same_length=compiled.same_length_names(binaries, tops, naming)
            )
            plan = make_plan(summaries[Role.DEP], summaries[Role.DEPENDENT], options)
            kept = {(job.summary.path, a.source) for job in plan.jobs for a in job.actions}
            binaries = compiled.BinaryScan({k: v for k, v in binaries.infos.items() if k in kept})
            _check_outputs(plan, out, [*dep_paths, *inputs])
            issues = compiled.check(binaries, {s.path: s for s in every}, plan.mapping, naming)
            if issues:
                raise PlanError(issues, hint="nothing was written")
        with SourceRewriter(plan.mapping, string_rules(plan), jobs=jobs) as rewriter:
            result = _execute(
                plan,
                readers,
                out,
                rewriter,
                clock,
                binaries,
                dry_run=dry_run,
                diff=diff,
                strict=strict,
                load_check=load_check,
                # The target environment has the set's other dependencies installed.
                python=closure.target_env if closure and closure.target_env else sys.executable,
            )
    return replace(
        result, decisions=decisions, notes=_naming_notes(plan, binaries) + result.notes
    )


def _naming_notes(plan: ShadePlan, binaries: compiled.BinaryScan) -> tuple[str, ...]:
    notes = []
    for name in sorted(plan.options.same_length):
        users = sorted(m for (_, m), info in binaries.infos.items() if name in info.names)
        why = (
            f"compiled code refers to it ({users[0]}"
            + (f" and {len(users) - 1} more)" if len(users) > 1 else ")")
            if users
            else "--naming same-length"
        )
        notes.append(f"{name} -> {plan.mapping[name]}: same-length name, {why}")
    return tuple(notes)


def _report(job: WheelJob, plan: ShadePlan, outcome: JobOutcome, out: Path) -> WheelReport:
    summary = job.summary
    return WheelReport(
        role=summary.role,
        original=summary.label,
        source=summary.path,
        output=out / job.output_filename,
        distribution=job.new_name or summary.name,
        mapping=dict(plan.dists[summary.name].mapping) if job.new_name else {},
        python_files=outcome.python_files,
        rewritten=outcome.rewritten,
        left_out=job.left_out,
        findings=outcome.findings,
        scripts_dropped=outcome.scripts_dropped,
    )


def _unused_deps(plan: ShadePlan, used: dict[str, frozenset[str]]) -> list[str]:
    """Warnings for a --dep nothing reaches (likely a typo), and for a dependent that uses none.

    A dep is reached when a dependent imports it or another dep of the set requires it:
    the members of a pinned stack (werkzeug under flask) are not imported by the app.
    """
    warnings = []
    dependents = [job for job in plan.jobs if job.new_name is None]
    imported = frozenset().union(*(used[job.output_filename] for job in dependents))
    required = {
        canonicalize_name(req.name)
        for job in plan.jobs
        if job.new_name is not None
        for req in job.summary.metadata.requires
    }
    for job in dependents:
        if not used[job.output_filename] & set(plan.mapping):
            warnings.append(
                f"{job.summary.filename} imports none of the shaded modules "
                f"({', '.join(sorted(plan.mapping))}); is it the right wheel?"
            )
    if dependents:
        for dist in plan.dists.values():
            if not imported & set(dist.mapping) and dist.original not in required:
                warnings.append(
                    f"no dependent imports {dist.original} ({', '.join(sorted(dist.mapping))}) "
                    "and no other --dep requires it; is that --dep intended?"
                )
    return warnings


def _load_check(
    plan: ShadePlan, binaries: compiled.BinaryScan, stage: Path, python: str
) -> list[str]:
    """Load every compiled module that was patched or moved to a new RPATH (see loadcheck)."""
    targets = []
    for job in plan.jobs:
        data_out = job.dist_info_out.removesuffix(".dist-info") + ".data"
        for act in job.actions:
            info = binaries.infos.get((job.summary.path, act.source))
            if info is None or not (set(info.names) & set(plan.mapping) or job.libs_renames):
                continue
            original = loadcheck.module_of(act.source, job.summary.data_dir)
            shaded = loadcheck.module_of(act.target, data_out)
            if original is not None and shaded is not None:
                where = f"{job.summary.filename}: {act.source}"
                targets.append(loadcheck.Target(original, shaded, where))
    return loadcheck.check(
        [stage / job.output_filename for job in plan.jobs],
        [job.summary.path for job in plan.jobs],
        targets,
        plan.mapping,
        python,
    )


def _execute(
    plan: ShadePlan,
    readers: dict[Path, WheelReader],
    out: Path,
    rewriter: SourceRewriter,
    clock: Timings,
    binaries: compiled.BinaryScan,
    *,
    dry_run: bool,
    diff: bool,
    strict: bool,
    load_check: bool,
    python: str,
) -> ShadeResult:
    reports: list[WheelReport] = []
    warnings = list(plan.warnings)
    errors: list[RewriteError] = []
    diffs: list[str] = []
    used: dict[str, frozenset[str]] = {}
    with _staging(out, keep=not dry_run) as stage:
        for job in plan.jobs:
            outcome = write_job(
                job,
                plan,
                readers[job.summary.path],
                stage / job.output_filename,
                rewriter,
                clock,
                {m: i for (p, m), i in binaries.infos.items() if p == job.summary.path},
                want_diff=diff,
            )
            errors += outcome.errors
            diffs += outcome.diffs
            used[job.output_filename] = outcome.used
            reports.append(_report(job, plan, outcome, out))
        warnings += _unused_deps(plan, used)
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
            raise RewriteError(
                first.message + more, path=first.path, line=first.line, hint=first.hint
            )
        # The workers hold parsed sources; free them before the load check's interpreter.
        rewriter.close()
        notes: list[str] = []
        if load_check:
            with clock.phase("load check"):
                notes = _load_check(plan, binaries, stage, python)
        result = ShadeResult(
            tuple(reports),
            tuple(warnings),
            plan.digest,
            tuple(diffs),
            written=not dry_run,
            notes=tuple(notes),
        )
        if strict and result.findings:
            first_wheel = next(w for w in reports if w.findings)
            raise StrictError(
                f"{result.findings} finding(s) under --strict; first: {first_wheel.findings[0]}",
                path=str(first_wheel.source),
                result=result,
            )
        if not dry_run:
            for job in plan.jobs:
                os.replace(stage / job.output_filename, out / job.output_filename)
    return result
