"""``--bundle``: merge each dependent's shaded output with the shaded deps into one wheel.

Runs on the staging folder after shading, before anything reaches the output folder: the
dependent keeps its ``.dist-info`` (the only one a wheel may have), each dep's payload joins
it as extra top-level packages, each dep's metadata lookups are pointed at a generated module
(``rewrite.bundled``), and the dist-info gains the merged requirements, entry points, license
files, an SBOM and the provenance of every part (``bundle_meta``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, parse_wheel_filename

from wheelshade import __version__
from wheelshade.bundle_meta import (
    Part,
    license_expression,
    provenance,
    requires_dist,
    requires_python,
    sbom,
)
from wheelshade.errors import PlanError
from wheelshade.naming import filename_component
from wheelshade.plan import ShadePlan, WheelJob
from wheelshade.rewrite.bundled import MODULE_NAME, metadata_module_source, redirect_lookups
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.merge import (
    data_target,
    edit_headers,
    header_values,
    license_members,
    license_target,
    merge_entry_points,
    wheel_file,
)
from wheelshade.wheel.metadata import PROVENANCE_FILE
from wheelshade.wheel.records import RecordEntry, parse_record
from wheelshade.wheel.tags import merged_tag
from wheelshade.wheel.writer import RawSource, WheelWriter, wheel_order, zip_timestamp

SBOM_FILE = "sboms/wheelshade.cdx.json"


@dataclass(frozen=True)
class BundleOutcome:
    #: Dependent output file name -> the bundle written for it (in the staging folder).
    paths: Mapping[str, Path]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Source:
    """Where one member of the bundle comes from, and how it is written."""

    wheel: Path
    name: str
    #: Bytes to write instead of the member's own (edited or generated files).
    data: bytes | None = None


def _part(job: WheelJob, staged: WheelReader, mapping: Mapping[str, str]) -> Part:
    meta = staged.read(f"{job.dist_info_out}/METADATA")

    def first(key: str) -> str | None:
        return next(iter(header_values(meta, key)), None)

    summary = job.summary
    return Part(
        name=summary.metadata.name,
        version=str(summary.metadata.version),
        requires=summary.metadata.requires,
        requires_python=first("Requires-Python"),
        tags=frozenset(parse_wheel_filename(staged.path.name)[3]),
        sha256=summary.sha256,
        license_expression=first("License-Expression"),
        license_text=first("License"),
        mapping=dict(mapping),
    )


def _module_for(job: WheelJob, members: set[str], shaded: Mapping[str, str]) -> str:
    """The dotted name of a dep's generated metadata module: inside its first package,
    else beside it at the top level."""
    for top in sorted(shaded.values()):
        path = top.replace(".", "/")
        if f"{path}/__init__.py" in members:
            return f"{top}.{MODULE_NAME}"
    assert job.new_name is not None
    return f"{filename_component(job.new_name)}{MODULE_NAME}"


def make_bundles(plan: ShadePlan, stage: Path) -> BundleOutcome:
    """Write one bundle per dependent into ``stage/bundles`` from the shaded wheels in
    ``stage``; raises PlanError (nothing written) when the parts cannot be merged."""
    deps = [job for job in plan.jobs if job.new_name is not None]
    hosts = [job for job in plan.jobs if job.new_name is None]
    folder = stage / "bundles"
    folder.mkdir()
    paths: dict[str, Path] = {}
    warnings: list[str] = []
    notes: list[str] = []
    for host in hosts:
        path, w, n = _bundle(plan, stage, host, deps, folder)
        paths[host.output_filename] = path
        warnings += w
        notes += n
    return BundleOutcome(paths, tuple(dict.fromkeys(warnings)), tuple(dict.fromkeys(notes)))


def _bundle(
    plan: ShadePlan, stage: Path, host: WheelJob, deps: Sequence[WheelJob], folder: Path
) -> tuple[Path, list[str], list[str]]:
    readers = {job.output_filename: WheelReader(stage / job.output_filename)
               for job in (host, *deps)}
    try:
        return _write(plan, readers, host, deps, folder)
    finally:
        for reader in readers.values():
            reader.close()


def _write(
    plan: ShadePlan,
    readers: Mapping[str, WheelReader],
    host: WheelJob,
    deps: Sequence[WheelJob],
    folder: Path,
) -> tuple[Path, list[str], list[str]]:
    warnings: list[str] = []
    hreader = readers[host.output_filename]
    hinfo = host.dist_info_out
    hdata = hinfo.removesuffix(".dist-info") + ".data"
    hpart = _part(host, hreader, {})
    parts: dict[NormalizedName, Part] = {}
    modules: dict[NormalizedName, str] = {}
    for job in deps:
        reader = readers[job.output_filename]
        dist = plan.dists[job.summary.name]
        parts[job.summary.name] = _part(job, reader, dist.mapping)
        members = {m.name for m in reader.members}
        modules[job.summary.name] = _module_for(job, members, dist.mapping)
    targets: dict[str, str] = {plan.dists[k].name: v for k, v in modules.items()}

    requires = requires_dist(hpart, parts)
    python = requires_python([hpart, *parts.values()])
    tag_text, purelib = merged_tag([(p.label, p.tags) for p in (hpart, *parts.values())])
    expression, why = license_expression([hpart, *parts.values()])
    if why:
        warnings.append(f"{host.summary.filename}: the bundle gets no License-Expression: {why}")

    merge = _Collector(hinfo)
    hmeta = hreader.read(f"{hinfo}/METADATA")
    merge.host(hreader, hpart.label, header_values(hmeta, "License-File"))
    for job in deps:
        reader, part, module = (
            readers[job.output_filename], parts[job.summary.name], modules[job.summary.name]
        )
        merge.dep(reader, job, part, hdata)
        merge.tops.update(t.split(".")[0] for t in part.mapping.values())
        merge.tops.add(module.split(".")[0])
        merge.generated(module, job, part, reader, hpart)
    if merge.clashes:
        raise PlanError(
            [f"two parts of the bundle install {c}" for c in merge.clashes],
            hint="leave one out with --drop",
        )
    entry_points, dropped, ep_clashes = merge_entry_points(merge.entry_parts)
    notes = merge.notes
    if dropped:
        notes.append(f"{hpart.label}: console scripts of bundled deps left out: "
                     + ", ".join(dropped))
    warnings += [f"entry point {c} left out: the bundle already has one" for c in ep_clashes]

    def add(name: str, data: bytes) -> None:
        merge.sources[f"{hinfo}/{name}"] = _Source(hreader.path, "", data)

    if entry_points:
        add("entry_points.txt", entry_points)
    if merge.has_tops:
        add("top_level.txt", "".join(f"{t}\n" for t in sorted(merge.tops)).encode())
    add("METADATA", _metadata(hmeta, requires, python, expression, merge.license_files))
    build = parse_wheel_filename(hreader.path.name)[2]
    add("WHEEL", wheel_file(
        [str(t) for t in sorted(parse_wheel_filename(f"x-1-{tag_text}.whl")[3], key=str)],
        purelib=purelib, generator=f"wheelshade {__version__}",
        build=str(build[0]) + build[1] if build else "",
    ))
    bundled = list(parts.values())
    add(SBOM_FILE, sbom(hpart, bundled, __version__))
    add(PROVENANCE_FILE, provenance(hpart, bundled, modules, __version__))
    head = hreader.path.name[:-4].split("-")
    filename = "-".join([*head[:-3], tag_text]) + ".whl"
    path = folder / filename
    _emit(path, hinfo, merge.sources, readers, targets)
    return path, warnings, notes


class _Collector:
    """Every member of one bundle, by target name, gathered from its parts; clashes kept."""

    def __init__(self, dist_info: str) -> None:
        self.dist_info = dist_info
        self.sources: dict[str, _Source] = {}
        self.clashes: list[str] = []
        self.notes: list[str] = []
        #: Metadata 2.4: every License-File is a path below licenses/, and exists.
        self.license_files: list[str] = []
        #: top_level.txt (when the host has one) names the bundled packages too, so that
        #: ``packages_distributions()`` finds the bundle as their owner.
        self.tops: set[str] = set()
        self.has_tops = False
        self.entry_parts: list[tuple[str, bytes | None, bool]] = []

    def put(self, target: str, source: _Source) -> None:
        if target in self.sources:
            first = self.sources[target].wheel.name
            self.clashes.append(f"{target} ({first} and {source.wheel.name})")
        else:
            self.sources[target] = source

    def host(self, reader: WheelReader, label: str, declared: Sequence[str]) -> None:
        info = self.dist_info
        licenses = set(license_members([m.name for m in reader.members], info, declared))
        self.license_files += [license_target(rel) for rel in sorted(licenses)]
        for member in reader.members:
            name = member.name
            base = name[len(info) + 1 :] if name.startswith(info + "/") else None
            if base == "top_level.txt":
                self.tops.update(reader.read(name).decode("utf-8", "replace").split())
                self.has_tops = True
            elif base == "entry_points.txt":
                self.entry_parts.append((label, reader.read(name), False))
            elif base in ("RECORD", "METADATA", "WHEEL", PROVENANCE_FILE):
                continue  # written anew
            elif base is not None and base in licenses and not base.startswith("licenses/"):
                self.put(f"{info}/licenses/{base}", _Source(reader.path, name))
            else:
                self.put(name, _Source(reader.path, name))

    def dep(self, reader: WheelReader, job: WheelJob, part: Part, host_data: str) -> None:
        info = job.dist_info_out
        data = info.removesuffix(".dist-info") + ".data"
        names = [m.name for m in reader.members]
        meta = reader.read(f"{info}/METADATA")
        for rel in license_members(names, info, header_values(meta, "License-File")):
            target = f"{part.key}/{license_target(rel)}"
            self.license_files.append(target)
            self.put(f"{self.dist_info}/licenses/{target}", _Source(reader.path, f"{info}/{rel}"))
        ep = f"{info}/entry_points.txt"
        self.entry_parts.append((part.label, reader.read(ep) if ep in names else None, True))
        for name in names:
            if name.startswith(f"{info}/sboms/"):
                rest = name[len(info) + len("/sboms/") :]
                self.put(f"{self.dist_info}/sboms/{part.key}/{rest}", _Source(reader.path, name))
            elif name.startswith(info + "/"):
                continue  # the dep's dist-info lives on in the generated module and the SBOM
            elif name.startswith(data + "/scripts/"):
                self.notes.append(f"{part.label}: script {posixpath.basename(name)} left out "
                                  "of the bundle (it would replace the unshaded package's)")
            elif name.startswith(data + "/"):
                self.put(data_target(name, data, host_data), _Source(reader.path, name))
            else:
                self.put(name, _Source(reader.path, name))

    def generated(
        self, module: str, job: WheelJob, part: Part, reader: WheelReader, host: Part
    ) -> None:
        files = {"METADATA": _original_metadata(job)}
        ep = f"{job.dist_info_out}/entry_points.txt"
        if ep in {m.name for m in reader.members}:
            files["entry_points.txt"] = reader.read(ep).decode("utf-8")
        source = metadata_module_source(
            part.name, part.version, files, host=f"{host.name} {host.version}"
        )
        self.put(module.replace(".", "/") + ".py", _Source(reader.path, "", source))


def _original_metadata(job: WheelJob) -> str:
    with WheelReader(job.summary.path) as reader:
        return reader.read(f"{job.summary.dist_info}/METADATA").decode("utf-8", "replace")


def _metadata(
    data: bytes,
    requires: Sequence[Requirement],
    python: str | None,
    expression: str | None,
    license_files: Sequence[str],
) -> bytes:
    def drop(key: str, value: str) -> bool:
        if key in ("requires-dist", "license-file", "license-expression", "requires-python"):
            return True
        # PEP 639: a License-Expression replaces the License field and license classifiers.
        return expression is not None and (
            key == "license" or (key == "classifier" and value.startswith("License ::"))
        )

    add: list[tuple[str, str]] = []
    if python:
        add.append(("Requires-Python", python))
    if expression:
        add.append(("License-Expression", expression))
    add += [("License-File", f) for f in license_files]
    add += [("Requires-Dist", str(r)) for r in requires]
    return edit_headers(data, drop=drop, replace={"Metadata-Version": "2.4"}, add=add)


def _emit(
    target: Path,
    dist_info: str,
    sources: Mapping[str, _Source],
    readers: Mapping[str, WheelReader],
    lookups: Mapping[str, str],
) -> None:
    by_path = {r.path: r for r in readers.values()}
    modes = {r.path: {m.name: m.executable for m in r.members} for r in readers.values()}
    records: dict[Path, dict[str, RecordEntry]] = {}
    raws: dict[Path, RawSource] = {}
    try:
        with WheelWriter(target, dist_info, date_time=zip_timestamp()) as writer:
            for name in wheel_order(sources, dist_info):
                source = sources[name]
                if source.data is not None:
                    writer.add(name, source.data)
                    continue
                reader = by_path[source.wheel]
                executable = modes[source.wheel][source.name]
                if name.endswith(".py"):
                    data = reader.read(source.name)
                    new = redirect_lookups(data, lookups, path=f"{source.wheel.name}/{name}")
                    writer.add(name, data if new is None else new, executable=executable)
                    continue
                if source.wheel not in raws:
                    raws[source.wheel] = RawSource(source.wheel)
                    record = parse_record(
                        reader.read(f"{reader.dist_info}/RECORD"), wheel=str(source.wheel)
                    )
                    records[source.wheel] = {e.path: e for e in record}
                raw, entry = raws[source.wheel], records[source.wheel].get(source.name)
                zinfo = raw.info(source.name)
                if zinfo is None or entry is None or not writer.add_raw(
                    name, raw, zinfo, entry, executable=executable
                ):
                    with reader.open(source.name) as stream:
                        writer.add_stream(name, stream, executable=executable)
    finally:
        for raw in raws.values():
            raw.close()
