"""What a shading run did: one report per wheel, and the run's result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wheelshade.findings import Finding
from wheelshade.resolve.resolver import Decision
from wheelshade.wheel.summary import Role


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
    #: ``--bundle``: the one wheel written per dependent (the other outputs are inside).
    bundles: tuple[Path, ...] = ()

    @property
    def findings(self) -> int:
        return sum(len(w.findings) for w in self.wheels)
