"""``wheelshade inspect``: what a wheel installs and imports, and what shading could not reach."""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wheelshade.errors import WheelFormatError
from wheelshade.findings import Code, Finding
from wheelshade.native.classify import classify
from wheelshade.native.model import BinaryInfo
from wheelshade.rewrite import StringRules, rewrite_file
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import TopLevel, is_python_file
from wheelshade.wheel.metadata import PROVENANCE_FILE
from wheelshade.wheel.summary import Role, summarise

#: Placeholder suffix: inspection runs the rewriter only for its findings, never writes.
_PROBE = "_wheelshade_probe"


@dataclass(frozen=True)
class Inspection:
    wheel: Path
    name: str
    version: str
    top_levels: tuple[TopLevel, ...]
    requires: tuple[str, ...]
    #: Top-level names imported by absolute imports that the wheel does not install itself.
    imports: tuple[str, ...]
    findings: tuple[Finding, ...]
    provenance: dict[str, object] | None
    binaries: tuple[BinaryInfo, ...] = ()


def _imported_tops(source: bytes) -> set[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def inspect_wheel(path: Path) -> Inspection:
    with WheelReader(path) as reader:
        reader.verify_record()
        summary = summarise(reader, Role.DEPENDENT)
        own = {t.name for t in summary.top_levels}
        sources = [
            m.name
            for m in reader.members
            if m.name.endswith((".py", ".pyi")) and not m.name.startswith(summary.dist_info)
        ]
        tops: set[str] = set()
        for name in sources:
            tops |= _imported_tops(reader.read(name))
        imports = sorted(tops - own - set(sys.stdlib_module_names) - {"__future__"})
        watched = sorted(own | set(imports))
        mapping = {n: n + _PROBE for n in watched if n.isidentifier()}
        rules = StringRules(mapping, summary.modules)
        findings: list[Finding] = []
        for name in sources:
            try:
                result = rewrite_file(reader.read(name), mapping, path=name, strings=rules)
            except Exception as exc:  # inspection reports, it does not stop
                findings.append(Finding(name, None, Code.DYNAMIC_NAME, f"not parsed: {exc}"))
                continue
            findings.extend(Finding(name, f.line, f.code, f.message) for f in result.findings)
        binaries: list[BinaryInfo] = []
        for member in reader.members:
            if is_python_file(member.name) and member.name.endswith((".so", ".pyd")):
                try:
                    info = classify(reader.read(member.name), member.name, watched)
                except WheelFormatError as exc:
                    findings.append(Finding(member.name, None, Code.BINARY_NAME, exc.message))
                    continue
                binaries.append(info)
                if info.names:
                    findings.append(
                        Finding(
                            member.name,
                            None,
                            Code.BINARY_NAME,
                            f"compiled code names {', '.join(info.names)}: shading patches it "
                            "in place (--naming auto/same-length) or refuses it",
                        )
                    )
                findings.extend(
                    Finding(
                        member.name,
                        None,
                        Code.BINARY_NAME,
                        f"{ref.string[:60]!r} at {ref.offset:#x} cannot be patched: {ref.detail}",
                    )
                    for ref in info.suspects
                )
        prov_name = f"{summary.dist_info}/{PROVENANCE_FILE}"
        provenance = None
        if prov_name in {m.name for m in reader.members}:
            provenance = json.loads(reader.read(prov_name))
    return Inspection(
        wheel=path,
        name=summary.metadata.name,
        version=str(summary.metadata.version),
        top_levels=summary.top_levels,
        requires=tuple(str(r) for r in summary.metadata.requires),
        imports=tuple(imports),
        findings=tuple(findings),
        provenance=provenance,
        binaries=tuple(binaries),
    )


def format_inspection(info: Inspection) -> str:
    lines = [
        f"wheel:        {info.wheel.name}",
        f"distribution: {info.name} {info.version}",
        "installs:     "
        + (", ".join(f"{t.name} ({t.kind.value})" for t in info.top_levels) or "-"),
        "requires:     " + (", ".join(info.requires) or "-"),
        "imports:      " + (", ".join(info.imports) or "-"),
    ]
    if info.provenance:
        original = info.provenance.get("original")
        lines.append(f"shaded from:  {json.dumps(original)}")
        parts = info.provenance.get("bundled")
        if isinstance(parts, list) and parts:  # a --bundle wheel: its parts (docs/publishing.md)
            lines.append("bundles:      " + ", ".join(
                f"{p.get('name')} {p.get('version')} as {', '.join(p.get('mapping', {}).values())}"
                for p in parts if isinstance(p, dict)
            ))
    for binary in info.binaries:
        lines.append(f"binary:       {_describe(binary)}")
    lines.append(f"findings:     {len(info.findings)}")
    lines.extend(f"  {f}".replace(_PROBE, "<shaded>") for f in info.findings)
    return "\n".join(lines)


def _describe(info: BinaryInfo) -> str:
    """One line per compiled module: what it is and which names it embeds."""
    kind = (
        "Cython " + (info.cython_version or "?") if info.cython else "mypyc" if info.mypyc else "C"
    )
    parts = [info.path, kind, f"init {', '.join(info.init_symbols) or '-'} ({info.init_phase})"]
    if info.rpath or info.runpath:
        parts.append(f"rpath {':'.join(info.rpath + info.runpath)}")
    refs = [r.string for r in info.references]
    if refs:
        parts.append(f"names {', '.join(sorted(set(refs)))}")
    verdicts = Counter(r.verdict for r in (*info.references, *info.embedded) if r.verdict)
    if verdicts:
        parts.append(", ".join(f"{n} {_VERDICTS[v]}" for v, n in sorted(verdicts.items())))
    if info.redirects:
        parts.append(f"{len(info.redirects)} reference(s) to move")
    if info.suspects:
        parts.append(f"{len(info.suspects)} cannot be patched (see findings)")
    return "; ".join(parts)


#: How inspect words each reference-analysis verdict (see binaries.Reference.verdict).
_VERDICTS = {
    "used-alone": "merged tail(s) used alone (patched)",
    "never-alone": "inside longer strings only (left)",
    "label": "in Cython init labels (patched)",
    "split": "merged tail(s) split onto a standalone copy",
    "attribute": "attribute names only, not modules (left)",
}
