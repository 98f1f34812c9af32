"""Carry out one wheel's part of the plan: rewrite its members and write the new wheel."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from wheelshade import __version__
from wheelshade.binaries import new_rpath, patched, with_rpath
from wheelshade.errors import RewriteError
from wheelshade.findings import Code, Finding
from wheelshade.groups import GroupTracker, own_groups, plugin_groups, tracker
from wheelshade.native.model import BinaryInfo
from wheelshade.native.scan import unproven_findings
from wheelshade.plan import Action, MemberAction, ShadePlan, WheelJob
from wheelshade.rewrite import StringRules, bound, checks, mentions, rewrite_file
from wheelshade.rewrite.bound import set_proof
from wheelshade.rewrite.delvewheel import rename_libs
from wheelshade.rewrite.pool import Batch, SourceRewriter
from wheelshade.timings import Timings
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.metadata import (
    PROVENANCE_FILE,
    Provenance,
    edit_entry_points,
    edit_metadata,
    edit_top_level_txt,
)
from wheelshade.wheel.records import RecordEntry, parse_record
from wheelshade.wheel.summary import Role
from wheelshade.wheel.writer import RawSource, WheelWriter, wheel_order, zip_timestamp


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
    deps = tuple(sorted({(j.summary.path, j.summary.sha256) for j in plan.jobs
                         if j.summary.role is Role.DEP}))
    return StringRules(
        plan.mapping, plan.modules | own_groups(plan),
        {d.original: d.name for d in plan.dists.values()}, bound.set_attributes(deps),
        checks.set_checks(deps, frozenset(plan.mapping), plan.modules), plugin_groups(plan),
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


@dataclass(frozen=True)
class _Sources:
    """One batch of Python sources, read and handed to the rewriter."""

    acts: list[MemberAction]
    datas: list[bytes]
    batch: Batch


class _JobWriter:
    """State of one wheel being written: counts and findings gathered along the way."""

    def __init__(self, job: WheelJob, plan: ShadePlan, want_diff: bool) -> None:
        self.job = job
        self.plan = plan
        self.strings = string_rules(plan)
        self.proof = set_proof([j.summary for j in plan.jobs if j.summary.role is Role.DEP])
        self.want_diff = want_diff
        self.python_files = 0
        self.rewritten = 0
        self.used: set[str] = set()
        self.findings: list[Finding] = list(job.findings)
        self.errors: list[RewriteError] = []
        self.diffs: list[str] = []
        self.scripts_dropped: list[str] = []
        self.groups = GroupTracker((), {})

    def submit(
        self, reader: WheelReader, rewriter: SourceRewriter, batch: list[MemberAction]
    ) -> _Sources:
        """Start rewriting one batch of Python sources (``collect`` takes the results)."""
        datas = [reader.read(a.source) for a in batch]
        items = [  # delvewheel's block is edited first, so the string pass sees the new name
            (rename_libs(d, self.job.libs_renames) or d, f"{self.job.summary.path}/{a.source}")
            for a, d in zip(batch, datas, strict=True)
        ]
        return _Sources(batch, datas, rewriter.submit(items))

    def collect(self, sources: _Sources) -> dict[str, bytes]:
        """Wait for one batch's rewrites; returns the changed sources.

        Unchanged files are not kept: the writer copies them from the input, so memory
        holds the batch being written, its changed files, and the next batch's sources.
        """
        changed: dict[str, bytes] = {}
        batch, datas = sources.acts, sources.datas
        if batch:
            results = sources.batch.results()
            for act, data, result in zip(batch, datas, results, strict=True):
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
                self.groups.see(data, result.new)
                new = result.new or rename_libs(data, self.job.libs_renames)
                if new is None:
                    continue
                self.rewritten += 1
                self.used.update(k for k in self.plan.mapping if mentions(data, [k]))
                changed[act.source] = new
                if self.want_diff:
                    self.diffs.append(_diff(self.job, act, data, new))
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
                groups=self.groups.renames(),
            )
            self.findings.extend(self.groups.findings(act.source))
            self.scripts_dropped.extend(dropped)
            return new
        if act.action is Action.TOP_LEVEL and is_dep:
            return edit_top_level_txt(data, self.plan.dists[self.job.summary.name].mapping)
        return data


_BATCH_BYTES = 4 << 20


def _chunks(
    names: list[str], by_target: Mapping[str, MemberAction], sizes: Mapping[str, int]
) -> Iterator[list[str]]:
    """Consecutive runs of output names whose sources to rewrite total at most
    ``_BATCH_BYTES`` (at least one name each), in writing order."""
    chunk: list[str] = []
    total = 0
    for name in names:
        act = by_target.get(name)
        size = sizes[act.source] if act is not None and act.action is Action.REWRITE else 0
        if chunk and total + size > _BATCH_BYTES:
            yield chunk
            chunk, total = [], 0
        chunk.append(name)
        total += size
    if chunk:
        yield chunk


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
    """Write one output wheel to ``target``; rewrite errors are collected, not raised.

    Members are written in their final order, a chunk at a time: each chunk's sources are
    rewritten (in the process pool) just before they are written.
    """
    state = _JobWriter(job, plan, want_diff)
    sizes = {m.name: m.size for m in reader.members}
    entry_points = f"{job.summary.dist_info}/entry_points.txt"
    if job.new_name is not None and entry_points in sizes:
        where = f"{job.summary.path}/{entry_points}"
        state.groups = tracker(plan, job.summary, reader.read(entry_points), where)
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
    names = wheel_order([*by_target, *extra], job.dist_info_out)
    with (
        RawSource(reader.path) as raw,
        WheelWriter(target, job.dist_info_out, date_time=zip_timestamp()) as writer,
    ):
        put = _Putter(state, reader, writer, raw, record, binaries)
        chunks = list(_chunks(names, by_target, sizes))

        def submit(chunk: list[str]) -> _Sources:
            acts = [by_target[n] for n in chunk if n in by_target]
            rewrite = [a for a in acts if a.action is Action.REWRITE]
            with clock.phase("rewrite sources"):
                return state.submit(reader, rewriter, rewrite)

        sources = submit(chunks[0] if chunks else [])
        for index, chunk in enumerate(chunks):
            with clock.phase("rewrite sources"):
                changed = state.collect(sources)
            # The workers rewrite the next chunk while this one is written; not sooner, so
            # the files of two chunks are never parsed at the same time (memory).
            sources = submit(chunks[index + 1] if index + 1 < len(chunks) else [])
            with clock.phase("write"):
                for name in chunk:
                    if name in extra:
                        writer.add(name, extra[name])
                    else:
                        put(by_target[name], changed)
    return JobOutcome(
        state.python_files,
        state.rewritten,
        frozenset(state.used),
        tuple(state.findings),
        tuple(state.errors),
        tuple(state.diffs),
        tuple(state.scripts_dropped),
    )


class _Putter:
    """Writes one member: rewritten, patched, copied raw, or edited (dist-info files)."""

    def __init__(
        self,
        state: _JobWriter,
        reader: WheelReader,
        writer: WheelWriter,
        raw: RawSource,
        record: Mapping[str, RecordEntry],
        binaries: Mapping[str, BinaryInfo],
    ) -> None:
        self.state, self.reader, self.writer, self.raw = state, reader, writer, raw
        self.record, self.binaries = record, binaries
        self.executable = {m.name: m.executable for m in reader.members}

    def __call__(self, act: MemberAction, changed: dict[str, bytes]) -> None:
        name, exe, plan = act.target, self.executable[act.source], self.state.plan
        info = self.binaries.get(act.source)
        self.state.findings += unproven_findings(act.source, info) if info else []
        patch = act.action is Action.BINARY and info and any(n in plan.mapping for n in info.names)
        # $ORIGIN entries may lead into the shaded packages themselves (pyarrow's modules
        # find libarrow*.so beside them) as well as into renamed library folders.
        dirs = {k: v for k, v in plan.mapping.items() if "." not in k}
        rpath = new_rpath(info, act, dirs | dict(self.state.job.libs_renames)) if info else None
        if act.source in changed:
            self.writer.add(name, changed.pop(act.source), executable=exe)
        elif info and (patch or rpath is not None):
            data = self.reader.read(act.source)
            if patch:
                data = patched(data, act, info, plan, self.state.proof)
            if rpath is not None:
                data = with_rpath(data, rpath, info)
            self.writer.add(name, data, executable=exe)
        elif act.action in (Action.COPY, Action.BINARY, Action.REWRITE):
            zinfo, entry = self.raw.info(act.source), self.record.get(act.source)
            if (
                zinfo is None
                or entry is None
                or not self.writer.add_raw(name, self.raw, zinfo, entry, executable=exe)
            ):
                with self.reader.open(act.source) as stream:
                    self.writer.add_stream(name, stream, executable=exe)
        else:
            data = self.reader.read(act.source)
            new = self.state.content(act, data)
            if self.state.want_diff and new != data:
                self.state.diffs.append(_diff(self.state.job, act, data, new))
            self.writer.add(name, new, executable=exe)
