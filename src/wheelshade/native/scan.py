"""Compiled modules in a shading set: what each one names, which naming it forces, refusals."""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wheelshade.errors import PlanError, WheelFormatError
from wheelshade.findings import Code, Finding
from wheelshade.naming import collapsed
from wheelshade.native.classify import classify
from wheelshade.native.elf import UnsupportedBinary
from wheelshade.native.model import BinaryInfo
from wheelshade.native.patching import problems
from wheelshade.proof import ModuleProof
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import in_site_packages, is_compiled, locate, module_name_of_file
from wheelshade.wheel.summary import WheelSummary


class Naming(enum.Enum):
    """How shaded import names are formed (``--naming``)."""

    READABLE = "readable"  # T_<version>_<hash>
    SAME_LENGTH = "same-length"  # a hash name of T's byte length, patchable inside binaries
    AUTO = "auto"  # same-length only for names a binary refers to


@dataclass(frozen=True)
class BinaryScan:
    #: (wheel path, member) -> what the binary is and which original names it refers to.
    infos: Mapping[tuple[Path, str], BinaryInfo]

    def referenced(self) -> frozenset[str]:
        return frozenset(n for info in self.infos.values() for n in info.names)


def _binaries(summary: WheelSummary) -> list[str]:
    return [
        name
        for name in summary.members
        if is_compiled(name)
        and in_site_packages(locate(name, summary.data_dir))
        and not name.startswith(summary.dist_info + "/")
    ]


def scan(
    summaries: Sequence[WheelSummary],
    readers: Mapping[Path, WheelReader],
    originals: Sequence[str],
    drop: Sequence[str],
    proof: ModuleProof | None = None,
) -> BinaryScan:
    """Classify every compiled module the set keeps (``proof``: see classify); refuse
    formats that cannot be read."""
    infos: dict[tuple[Path, str], BinaryInfo] = {}
    issues: list[str] = []
    for summary in summaries:
        for member in _binaries(summary):
            if any(fnmatch.fnmatch(member, pattern) for pattern in drop):
                continue
            where = f"{summary.filename}: {member}"
            try:
                data = readers[summary.path].read(member)
                infos[(summary.path, member)] = classify(data, where, originals, proof)
            except UnsupportedBinary as exc:
                issues.append(str(exc))
            except WheelFormatError as exc:
                issues.append(f"{where}: {exc.message}")
    if issues:
        raise PlanError(
            issues,
            hint="only ELF (Linux), PE (Windows) and 64-bit Mach-O (macOS) modules can be shaded",
        )
    return BinaryScan(infos)


def same_length_names(
    scan_result: BinaryScan, tops: Sequence[str], naming: Naming
) -> frozenset[str]:
    """The original names that get same-length shaded names under ``naming``.

    ``tops`` holds the import keys: top-level names, and ``ns.portion`` for a namespace
    package's portions, which get a same-length (top-level) name only where compiled code
    spells them: the namespace itself is never renamed.
    """
    if naming is Naming.SAME_LENGTH:
        return frozenset(t for t in tops if "." not in t) | scan_result.referenced() & set(tops)
    if naming is Naming.AUTO:
        return scan_result.referenced() & frozenset(tops)
    return frozenset()


def check(
    scan_result: BinaryScan,
    summaries: Mapping[Path, WheelSummary],
    mapping: Mapping[str, str],
    naming: Naming,
) -> list[str]:
    """Every binary that the chosen names cannot make right, as one line each."""
    issues: list[str] = []
    for (path, member), info in sorted(scan_result.infos.items()):
        summary = summaries[path]
        where = f"{summary.filename}: {member}"
        *dirs, file = member.split("/")
        key = ".".join([*dirs, module_name_of_file(file) or file])
        if dirs and collapsed(key, mapping.get(key, key)):
            issues.append(
                f"{where} is compiled code that is a namespace portion itself ({key!r}); its "
                "init function cannot take a top-level name (leave it out with --drop)"
            )
            continue
        names = [n for n in info.names if n in mapping]
        if not names:
            if info.opaque_strings and mapping:
                issues.extend(problems(info, mapping))
            continue
        if any(len(n.encode()) != len(mapping[n].encode()) for n in names):
            issues.append(
                f"{where} is compiled code that refers to "
                f"{', '.join(repr(n) for n in names)} by name; readable names cannot be patched "
                "into it (use --naming same-length or auto, or leave it out with --drop)"
            )
            continue
        suspects = [r for r in info.suspects if r.name in mapping]
        if suspects:
            first = suspects[0]
            issues.append(
                f"{where}: {len(suspects)} occurrence(s) of a shaded name cannot be patched "
                f"safely; first {first.string[:60]!r} at {first.offset:#x}: {first.detail} "
                "(--drop it, or --prefer-python if it has a .py twin)"
            )
        # The rest (packed Cython strings, lengths) name the wheel and member already.
        issues += problems(replace(info, suspects=()), mapping)
    return issues


#: Unproven strings of one compiled file named in its finding; the rest are counted.
_SHOWN = 3


def unproven_findings(member: str, info: BinaryInfo) -> list[Finding]:
    """One finding for the strings of a compiled file that look like module paths of the
    set but are not proven ones (left unchanged), naming the first few."""
    texts = sorted({r.detail.partition(":")[0] for r in info.embedded if r.verdict == "unproven"})
    if not texts:
        return []
    more = f" and {len(texts) - _SHOWN} more" if len(texts) > _SHOWN else ""
    return [Finding(
        member, None, Code.UNPROVEN_MODULE_PATH,
        f"{len(texts)} string(s) in compiled code look like module paths of the shading set "
        f"with no evidence that they are ({', '.join(texts[:_SHOWN])}{more}); left unchanged",
    )]
