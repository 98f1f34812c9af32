"""The one place that wires the steps together: read wheels, plan, rewrite, write atomically."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelshade.apply import JobOutcome, string_rules, write_job
from wheelshade.bundle import make_bundles
from wheelshade.errors import (
    PlanError,
    RewriteError,
    StrictError,
    UsageError,
)
from wheelshade.native import loadcheck
from wheelshade.native import scan as compiled
from wheelshade.options import ShadeOptions
from wheelshade.plan import PlanOptions, ShadePlan, WheelJob, make_plan
from wheelshade.resolve.closure import expand
from wheelshade.resolve.fetch import Pin, default_cache_dir, fetch_deps
from wheelshade.resolve.resolver import Decision
from wheelshade.result import ShadeResult, WheelReport
from wheelshade.rewrite.bound import set_proof
from wheelshade.rewrite.pool import SourceRewriter
from wheelshade.timings import Timings
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.shared import naming_modules
from wheelshade.wheel.staging import staging
from wheelshade.wheel.summary import Role, WheelSummary, summarise


def _check_outputs(plan: ShadePlan, out: Path, inputs: Sequence[Path]) -> None:
    _check_outputs_free([job.output_filename for job in plan.jobs], out, inputs)


def _check_outputs_free(names: Sequence[str], out: Path, inputs: Sequence[Path]) -> None:
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


def shade(
    dependents: Sequence[str | Path],
    deps: Sequence[str | Path | Pin],
    options: ShadeOptions | None = None,
    *,
    timings: Timings | None = None,
    **keywords: Any,
) -> ShadeResult:
    """Shade ``deps`` as one set and rewrite ``dependents`` against it (see ShadeOptions).

    ``timings`` collects the seconds spent per phase. The keyword form
    (``shade(a, d, out_dir="w", strict=True)``) builds the options from the keywords.
    """
    if keywords:
        if options is not None:
            raise TypeError("shade() takes options or keywords, not both")
        options = ShadeOptions.from_keywords(**keywords)
    opts, clock = options or ShadeOptions(), timings or Timings()
    if opts.bundle and len(dependents) > 1:
        return _bundle_each(dependents, deps, opts, clock)
    return _shade(dependents, deps, opts, clock)


def _bundle_each(
    dependents: Sequence[str | Path], deps: Sequence[str | Path | Pin], opts: ShadeOptions,
    clock: Timings,
) -> ShadeResult:
    """One run per dependent (each bundle's shaded names are its own); all or nothing."""
    out, done = opts.out_dir, []
    with staging(out, keep=not opts.dry_run) as outer:
        for i, dependent in enumerate(dependents):
            done.append(_shade([dependent], deps, replace(opts, out_dir=outer / str(i)), clock))
        bundles = [b for r in done for b in r.bundles]
        _check_outputs_free([b.name for b in bundles], out, [*map(Path, dependents)])
        for path in bundles if not opts.dry_run else ():
            os.replace(path, out / path.name)
    return replace(
        done[0],
        wheels=tuple(replace(w, output=out / w.output.name) for r in done for w in r.wheels),
        warnings=tuple(dict.fromkeys(w for r in done for w in r.warnings)),
        notes=tuple(dict.fromkeys(n for r in done for n in r.notes)),
        decisions=tuple(dict.fromkeys(d for r in done for d in r.decisions)),
        bundles=tuple(out / b.name for b in bundles),
    )


def _shade(
    dependents: Sequence[str | Path],
    deps: Sequence[str | Path | Pin],
    opts: ShadeOptions,
    clock: Timings,
) -> ShadeResult:
    if not deps:
        raise UsageError("no --dep given: name at least one dependency to shade")
    out = opts.out_dir
    inputs = [Path(p) for p in dependents]
    if opts.bundle and not inputs:
        raise UsageError("--bundle needs a dependent wheel to bundle the deps into")
    for path in inputs:
        if not path.is_file():
            raise UsageError(f"{path}: no such wheel file")
    decisions: tuple[Decision, ...] = ()
    if opts.with_deps:
        with clock.phase("resolve closure"):
            deps, decisions = expand(
                deps,
                inputs,
                index=opts.index,
                options=opts.closure,
                platform=opts.target,
            )
    with clock.phase("fetch"):
        dep_paths = fetch_deps(
            deps, opts.index, opts.cache_dir or default_cache_dir(), opts.fetch_timeout,
            opts.target,
        )
    options = PlanOptions(
        opts.suffix,
        opts.keep_scripts,
        opts.keep_pth,
        opts.drop,
        keep_unparsable=opts.keep_unparsable,
        prefer_python=opts.prefer_python,
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
        if opts.bundle:
            host = NormalizedName(f"bundled-into-{summaries[Role.DEPENDENT][0].name}")
            options = replace(options, salt=((host, Version("0")),))
        with clock.phase("plan"):
            every = [*summaries[Role.DEP], *summaries[Role.DEPENDENT]]
            # Import keys: a namespace's portions (``ns.portion``), never the shared ``ns``.
            tops = sorted({k for s in summaries[Role.DEP] for k in s.import_keys()})
            proof = set_proof(summaries[Role.DEP])
            binaries = compiled.scan(every, readers, tops, options.drop, proof)
            options = replace(
                options, same_length=compiled.same_length_names(binaries, tops, opts.naming)
            )
            plan = make_plan(summaries[Role.DEP], summaries[Role.DEPENDENT], options)
            kept = {(job.summary.path, a.source) for job in plan.jobs for a in job.actions}
            binaries = compiled.BinaryScan({k: v for k, v in binaries.infos.items() if k in kept})
            _check_outputs(plan, out, [*dep_paths, *inputs])
            issues = compiled.check(binaries, {s.path: s for s in every}, plan.mapping, opts.naming)
            issues += [issue for s in summaries[Role.DEP]
                       for issue in naming_modules(readers[s.path], s, proof, tops)]
            if issues:
                raise PlanError(issues, hint="nothing was written")
        with SourceRewriter(plan.mapping, string_rules(plan), jobs=opts.jobs) as rewriter:
            result = _execute(
                plan,
                readers,
                out,
                rewriter,
                clock,
                binaries,
                opts,
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
    notes += [f"{info.path}: its {_SIGNATURES.get(info.format, _SIGNATURES['PE'])}"
              for info in binaries.infos.values()
              if info.signed and set(info.names) & set(plan.mapping)]
    return tuple(notes)


#: What patching does to a signed binary, by format.
_SIGNATURES = {
    "PE": "Authenticode signature is removed (patching invalidates it)",
    "Mach-O": "certificate signature is replaced by an ad hoc one (patching invalidates it)",
}


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
                targets.append(loadcheck.Target(
                    original, shaded, where, job.output_filename, info.loader))
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
    opts: ShadeOptions,
) -> ShadeResult:
    reports: list[WheelReport] = []
    warnings = list(plan.warnings)
    errors: list[RewriteError] = []
    diffs: list[str] = []
    used: dict[str, frozenset[str]] = {}
    with staging(out, keep=not opts.dry_run) as stage:
        for job in plan.jobs:
            outcome = write_job(
                job,
                plan,
                readers[job.summary.path],
                stage / job.output_filename,
                rewriter,
                clock,
                {m: i for (p, m), i in binaries.infos.items() if p == job.summary.path},
                want_diff=opts.diff,
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
        if opts.load_check:
            # The target environment has the set's other dependencies installed.
            python = opts.target_env or sys.executable
            with clock.phase("load check"):
                notes = _load_check(plan, binaries, stage, python)
        result = ShadeResult(
            tuple(reports),
            tuple(warnings),
            plan.digest,
            tuple(diffs),
            written=not opts.dry_run,
            notes=tuple(notes),
        )
        if opts.strict and result.findings:
            first_wheel = next(w for w in reports if w.findings)
            raise StrictError(
                f"{result.findings} finding(s) under --strict; first: {first_wheel.findings[0]}",
                path=str(first_wheel.source),
                result=result,
            )
        if opts.bundle:
            with clock.phase("bundle"):
                return _bundle(plan, stage, out, result, [*readers])
        if not opts.dry_run:
            for job in plan.jobs:
                os.replace(stage / job.output_filename, out / job.output_filename)
    return result


def _bundle(
    plan: ShadePlan, stage: Path, out: Path, result: ShadeResult, inputs: Sequence[Path]
) -> ShadeResult:
    """Merge the staged outputs into one wheel per dependent and move only those out."""
    made = make_bundles(plan, stage)
    _check_outputs_free([p.name for p in made.paths.values()], out, inputs)
    first = next(iter(made.paths.values()))
    wheels = tuple(
        replace(w, output=out / made.paths.get(w.output.name, first).name)
        for w in result.wheels
    )
    if result.written:
        for path in made.paths.values():
            os.replace(path, out / path.name)
    return replace(
        result,
        wheels=wheels,
        warnings=result.warnings + made.warnings,
        notes=result.notes + made.notes,
        bundles=tuple(out / p.name for p in made.paths.values()),
    )
