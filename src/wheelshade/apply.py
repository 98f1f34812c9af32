"""Carry out one wheel's part of the plan: rewrite its members and write the new wheel."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .archive import WheelReader
from .errors import RewriteError
from .findings import Finding
from .metadata import (
    PROVENANCE_FILE,
    Provenance,
    edit_entry_points,
    edit_metadata,
    edit_top_level_txt,
)
from .plan import Action, MemberAction, ShadePlan, WheelJob
from .rewrite import StringRules, mentions, rewrite_file
from .writer import WheelWriter, wheel_order, zip_timestamp


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

    def source(self, act: MemberAction, data: bytes) -> bytes:
        self.python_files += 1
        where = f"{self.job.summary.path}/{act.source}"
        try:
            result = rewrite_file(data, self.plan.mapping, path=where, strings=self.strings)
        except RewriteError as exc:
            self.errors.append(exc)
            return data
        self.findings.extend(
            Finding(act.source, f.line, f.code, f.message) for f in result.findings
        )
        if result.new is None:
            return data
        self.rewritten += 1
        self.used.update(k for k in self.plan.mapping if mentions(data, [k]))
        return result.new

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
        if act.action is Action.REWRITE:
            return self.source(act, data)
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


def write_job(
    job: WheelJob, plan: ShadePlan, reader: WheelReader, target: Path, *, want_diff: bool = False
) -> JobOutcome:
    """Write one output wheel to ``target``; rewrite errors are collected, not raised."""
    state = _JobWriter(job, plan, want_diff)
    executable = {m.name: m.executable for m in reader.members}
    by_target = {a.target: a for a in job.actions}
    extra: dict[str, bytes] = {}
    if job.new_name is not None:
        extra[f"{job.dist_info_out}/{PROVENANCE_FILE}"] = _provenance(job, plan)
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
