"""Carry out one wheel's part of the plan: rewrite its members and write the new wheel."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .archive import WheelReader
from .binaries import BinaryInfo, classify
from .errors import RewriteError
from .findings import Code, Finding
from .metadata import (
    PROVENANCE_FILE,
    Provenance,
    edit_entry_points,
    edit_metadata,
    edit_top_level_txt,
)
from .patching import patch_strings
from .plan import Action, MemberAction, ShadePlan, WheelJob
from .records import parse_record
from .rewrite import StringRules, mentions, rewrite_file
from .rewrite.pool import SourceRewriter
from .timings import Timings
from .writer import RawSource, WheelWriter, wheel_order, zip_timestamp


@dataclass(frozen=True)
class JobOutcome:
    python_files: int
    rewritten: int
    #: Original top-level names that the wheel's rewritten files referred to.
    used: frozenset[str]
    findings: tuple[Finding, ...]
    errors: tuple[RewriteError, ...]
    diffs: tuple[str, ...]
    #: Console/GUI entry points left out of a shaded dep.
    scripts_dropped: tuple[str, ...] = ()


def string_rules(plan: ShadePlan) -> StringRules:
    return StringRules(
        plan.mapping, plan.modules, {d.original: d.name for d in plan.dists.values()}
    )


def _provenance(job: WheelJob, plan: ShadePlan) -> bytes:
    summary = job.summary
    shaded = plan.dists[summary.name]
    return Provenance(
        original_name=summary.metadata.name,
        original_version=str(summary.metadata.version),
        source_sha256=summary.sha256,
        distribution=shaded.name,
        mapping=shaded.mapping,
        shading_set={str(d.original): str(d.version) for d in plan.dists.values()},
        tool_version=__version__,
    ).to_json()


def _diff(job: WheelJob, act: MemberAction, old: bytes, new: bytes) -> str:
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            a, b, f"a/{job.summary.filename}/{act.source}", f"b/{job.output_filename}/{act.target}"
        )
    )


class _JobWriter:
    """State of one wheel being written: counts and findings gathered along the way."""

    def __init__(self, job: WheelJob, plan: ShadePlan, want_diff: bool) -> None:
        self.job = job
        self.plan = plan
        self.strings = string_rules(plan)
        self.want_diff = want_diff
        self.python_files = 0
        self.rewritten = 0
        self.used: set[str] = set()
        self.findings: list[Finding] = list(job.findings)
        self.errors: list[RewriteError] = []
        self.diffs: list[str] = []
        self.scripts_dropped: list[str] = []

    def sources(self, reader: WheelReader, rewriter: SourceRewriter) -> dict[str, bytes]:
        """Rewrite every Python source of the wheel, in batches; returns the changed ones.

        Unchanged files are not kept: the writer copies them from the input later, so
        memory holds at most one batch of sources plus the files that changed.
        """
        acts = [a for a in self.job.actions if a.action is Action.REWRITE]
        changed: dict[str, bytes] = {}
        for batch in _batches(acts, reader):
            datas = [reader.read(a.source) for a in batch]
            items = [
                (d, f"{self.job.summary.path}/{a.source}")
                for a, d in zip(batch, datas, strict=True)
            ]
            for act, data, result in zip(batch, datas, rewriter.run(items), strict=True):
                self.python_files += 1
                if isinstance(result, RewriteError):
                    if not self.plan.options.keep_unparsable:
                        self.errors.append(result)
                    elif mentions(data, self.plan.mapping):
                        # Kept as it is: if it imports a shaded name, that import leaks.
                        self.findings.append(
                            Finding(
                                act.source,
                                result.line,
                                Code.UNPARSABLE,
                                f"kept unchanged, cannot be parsed ({result.message}); it mentions "
                                "a shaded name",
                            )
                        )
                    continue
                self.findings.extend(
                    Finding(act.source, f.line, f.code, f.message) for f in result.findings
                )
                if result.new is None:
                    continue
                self.rewritten += 1
                self.used.update(k for k in self.plan.mapping if mentions(data, [k]))
                changed[act.source] = result.new
                if self.want_diff:
                    self.diffs.append(_diff(self.job, act, data, result.new))
        return changed

    def pth(self, act: MemberAction, data: bytes) -> bytes:
        """Rewrite the import lines of a kept ``.pth`` file; path lines stay as they are."""
        lines = data.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.startswith((b"import ", b"import\t")):
                where = f"{self.job.summary.path}/{act.source}"
                new = rewrite_file(line, self.plan.mapping, path=where, strings=self.strings).new
                lines[i] = new if new is not None else line
        return b"".join(lines)

    def content(self, act: MemberAction, data: bytes) -> bytes:
        is_dep = self.job.new_name is not None
        if act.action is Action.PTH:
            return self.pth(act, data)
        if act.action is Action.METADATA:
            return edit_metadata(data, name=self.job.new_name, requirement=self.plan.requirement)
        if act.action is Action.ENTRY_POINTS:
            new, dropped = edit_entry_points(
                data,
                self.plan.mapping,
                drop_scripts=is_dep and not self.plan.options.keep_scripts,
                where=f"{self.job.summary.path}/{act.source}",
            )
            self.scripts_dropped.extend(dropped)
            return new
        if act.action is Action.TOP_LEVEL and is_dep:
            return edit_top_level_txt(data, self.plan.dists[self.job.summary.name].mapping)
        return data


def _patched(reader: WheelReader, act: MemberAction, info: BinaryInfo, plan: ShadePlan) -> bytes:
    """A compiled module with its references to shaded names patched in place (same length).

    Checked afterwards: classifying the result must find no shaded original name left.
    """
    data = patch_strings(reader.read(act.source), info, plan.mapping)
    after = classify(data, info.path, plan.mapping)
    # PyInit_ symbols are checked in planning (a top-level module keeps its own).
    left = sorted({r.name for r in (*after.references, *after.suspects) if r.kind != "symbol"})
    if left:
        raise RewriteError(
            f"still refers to {', '.join(left)} after patching",
            path=info.path,
            hint="please report this wheel",
        )
    return data


_BATCH_BYTES = 32 << 20


def _batches(acts: list[MemberAction], reader: WheelReader) -> Iterator[list[MemberAction]]:
    """Consecutive groups of sources of at most ``_BATCH_BYTES`` (at least one file each)."""
    sizes = {m.name: m.size for m in reader.members}
    batch: list[MemberAction] = []
    total = 0
    for act in acts:
        if batch and total + sizes[act.source] > _BATCH_BYTES:
            yield batch
            batch, total = [], 0
        batch.append(act)
        total += sizes[act.source]
    if batch:
        yield batch


def write_job(
    job: WheelJob,
    plan: ShadePlan,
    reader: WheelReader,
    target: Path,
    rewriter: SourceRewriter,
    clock: Timings,
    binaries: Mapping[str, BinaryInfo],
    *,
    want_diff: bool = False,
) -> JobOutcome:
    """Write one output wheel to ``target``; rewrite errors are collected, not raised."""
    state = _JobWriter(job, plan, want_diff)
    with clock.phase("rewrite sources"):
        changed = state.sources(reader, rewriter)
    executable = {m.name: m.executable for m in reader.members}
    by_target = {a.target: a for a in job.actions}
    extra: dict[str, bytes] = dict(job.generated)
    if job.new_name is not None:
        extra[f"{job.dist_info_out}/{PROVENANCE_FILE}"] = _provenance(job, plan)
    record = {
        e.path: e
        for e in parse_record(
            reader.read(f"{job.summary.dist_info}/RECORD"), wheel=str(job.summary.path)
        )
    }
    with (
        clock.phase("write"),
        RawSource(reader.path) as raw,
        WheelWriter(target, job.dist_info_out, date_time=zip_timestamp()) as writer,
    ):
        for name in wheel_order([*by_target, *extra], job.dist_info_out):
            if name in extra:
                writer.add(name, extra[name])
                continue
            act = by_target[name]
            exe = executable[act.source]
            if act.source in changed:
                writer.add(name, changed.pop(act.source), executable=exe)
            elif (
                act.action is Action.BINARY
                and act.source in binaries
                and any(n in plan.mapping for n in binaries[act.source].names)
            ):
                writer.add(name, _patched(reader, act, binaries[act.source], plan), executable=exe)
            elif act.action in (Action.COPY, Action.BINARY, Action.REWRITE):
                info = raw.info(act.source)
                entry = record.get(act.source)
                if (
                    info is None
                    or entry is None
                    or not writer.add_raw(name, raw, info, entry, executable=exe)
                ):
                    with reader.open(act.source) as stream:
                        writer.add_stream(name, stream, executable=exe)
            else:
                data = reader.read(act.source)
                new = state.content(act, data)
                if want_diff and new != data:
                    state.diffs.append(_diff(job, act, data, new))
                writer.add(name, new, executable=exe)
    return JobOutcome(
        state.python_files,
        state.rewritten,
        frozenset(state.used),
        tuple(state.findings),
        tuple(state.errors),
        tuple(state.diffs),
        tuple(state.scripts_dropped),
    )
