"""Results of a benchmark run: the model, the printed table, the targets, JSON and the chart."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import Sample

#: Targets the summary line checks (docs: benchmarks/README.md).
MAX_FLOOR_RATIO = 2.0
MIN_PEER_RATIO = 5.0
MAX_PEAK_MB = 200.0

OK = "ok"
REFUSED = "refused"  # wheelshade declined the input, with its one-line error
FAILED = "failed"  # the peer crashed or wrote nothing
TIMEOUT = "timeout"
SKIPPED = "skipped"  # not run (peer unavailable, or --no-peer)
ERROR = "error"  # a real error: makes run.py exit non-zero


@dataclass
class Outcome:
    """Every run of one measurement (floor, shade, dependent or peer) for one row."""

    status: str = OK
    message: str = ""
    samples: list[Sample] = field(default_factory=list)
    #: Seconds reported from inside the process (dependent: the dependent wheel's part).
    inner: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self, status: str, message: str) -> None:
        self.status, self.message = status, message

    @property
    def measured(self) -> bool:
        return self.status == OK and bool(self.samples)

    @property
    def seconds(self) -> float | None:
        return statistics.median(s.seconds for s in self.samples) if self.measured else None

    @property
    def cpu_seconds(self) -> float | None:
        return statistics.median(s.cpu_seconds for s in self.samples) if self.measured else None

    @property
    def inner_seconds(self) -> float | None:
        return statistics.median(self.inner) if self.measured and self.inner else None

    @property
    def peak_mb(self) -> float | None:
        return max(s.peak_mb for s in self.samples) if self.samples else None

    @property
    def max_rss_mb(self) -> float | None:
        return max(s.max_rss_mb for s in self.samples) if self.samples else None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "inner_seconds": self.inner_seconds,
            "peak_mb": _round(self.peak_mb),
            "runs": [
                {
                    "seconds": round(s.seconds, 4),
                    "cpu_seconds": round(s.cpu_seconds, 4),
                    "max_rss_mb": round(s.max_rss_mb, 1),
                    "tree_pss_mb": round(s.tree_mb, 1),
                }
                for s in self.samples
            ],
            **self.extra,
        }


@dataclass
class Row:
    """One line of the table: a corpus wheel, or a group of them shaded as one set."""

    label: str
    wheels: list[str]
    files: int
    rewrite_dominated: bool
    why: str
    floor: Outcome = field(default_factory=Outcome)
    shade: Outcome = field(default_factory=Outcome)
    dependent: Outcome = field(default_factory=Outcome)
    peer: Outcome = field(default_factory=Outcome)
    python_files: int | None = None
    rewritten: int | None = None

    @property
    def floor_ratio(self) -> float | None:
        return _ratio(self.shade.seconds, self.floor.seconds)

    @property
    def cpu_floor_ratio(self) -> float | None:
        return _ratio(self.shade.cpu_seconds, self.floor.cpu_seconds)

    @property
    def peer_ratio(self) -> float | None:
        return _ratio(self.peer.seconds, self.shade.seconds)

    @property
    def peak_mb(self) -> float | None:
        """Peak memory of wheelshade's runs, all its processes together (what a machine needs)."""
        peaks = [p for p in (self.shade.peak_mb, self.dependent.peak_mb) if p is not None]
        return max(peaks) if peaks else None

    @property
    def max_rss_mb(self) -> float | None:
        """Peak RSS of wheelshade's largest single process (ru_maxrss)."""
        peaks = [p for p in (self.shade.max_rss_mb, self.dependent.max_rss_mb) if p is not None]
        return max(peaks) if peaks else None

    def outcomes(self) -> dict[str, Outcome]:
        return {
            "floor": self.floor, "shade": self.shade, "dependent": self.dependent,
            "peer": self.peer,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wheels": self.wheels,
            "files": self.files,
            "python_files": self.python_files,
            "rewritten": self.rewritten,
            "rewrite_dominated": self.rewrite_dominated,
            "why": self.why,
            "ratio_to_floor": _round(self.floor_ratio, 3),
            "cpu_ratio_to_floor": _round(self.cpu_floor_ratio, 3),
            "peer_over_wheelshade": _round(self.peer_ratio, 3),
            "peak_mb": _round(self.peak_mb),
            "max_rss_mb": _round(self.max_rss_mb),
            **{kind: o.to_json() for kind, o in self.outcomes().items()},
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


# -- the printed table --------------------------------------------------------------------------


def _cell(o: Outcome, notes: list[str], label: str, kind: str, seconds: float | None) -> str:
    if o.status == OK:
        return "-" if seconds is None else f"{seconds:.2f}"
    if o.message:
        notes.append(f"[{len(notes) + 1}] {label} {kind}: {o.status}: {o.message}")
        return f"{o.status} [{len(notes)}]"
    return o.status


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1f}x"


def table(rows: list[Row]) -> str:
    header = (
        "wheel", "files", "py/rewritten", "floor s", "shade s", "x floor", "dependent s",
        "peer s", "peer/shade", "peak MB", "1-proc MB",
    )
    notes: list[str] = []
    lines: list[tuple[str, ...]] = [header]
    for r in rows:
        py = "-" if r.python_files is None else f"{r.python_files}/{r.rewritten}"
        dependent = r.dependent.inner_seconds or r.dependent.seconds
        lines.append((
            r.label,
            str(r.files),
            py,
            _cell(r.floor, notes, r.label, "floor", r.floor.seconds),
            _cell(r.shade, notes, r.label, "shade", r.shade.seconds),
            _x(r.floor_ratio),
            _cell(r.dependent, notes, r.label, "dependent", dependent),
            _cell(r.peer, notes, r.label, "peer", r.peer.seconds),
            _x(r.peer_ratio),
            "-" if r.peak_mb is None else f"{r.peak_mb:.0f}",
            "-" if r.max_rss_mb is None else f"{r.max_rss_mb:.0f}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(line, widths, strict=True)))
        for line in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out + (["", *notes] if notes else []))


# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    met: bool | None  # None: nothing to check it on
    detail: str

    def __str__(self) -> str:
        word = {True: "met", False: "NOT MET", None: "not checked"}[self.met]
        return f"{self.name}: {word} ({self.detail})"


def targets(rows: list[Row]) -> list[Verdict]:
    floor = [(r.label, x) for r in rows if (x := r.floor_ratio) is not None]
    slow = [f"{label} {x:.2f}x" for label, x in floor if x > MAX_FLOOR_RATIO]
    worst = max(floor, key=lambda p: p[1], default=None)
    v_floor = Verdict(
        f"shading <= {MAX_FLOOR_RATIO:g}x floor per wheel",
        None if not floor else not slow,
        ("over: " + ", ".join(slow)) if slow
        else f"worst {worst[0]} {worst[1]:.1f}x" if worst else "no wheel measured",
    )
    dominated = [r for r in rows if r.rewrite_dominated]
    compared = [(r.label, x) for r in dominated if (x := r.peer_ratio) is not None]
    short = [f"{label} {x:.2f}x" for label, x in compared if x < MIN_PEER_RATIO]
    absent = [f"{r.label} (peer {r.peer.status})" for r in dominated if r.peer_ratio is None]
    detail = ", ".join([*(short or [f"{label} {x:.2f}x" for label, x in compared]), *absent])
    v_peer = Verdict(
        f">= {MIN_PEER_RATIO:g}x faster than the peer where rewriting dominates",
        None if not compared else not short,
        detail or "no rewrite-dominated wheel",
    )
    peaks = [(r.label, p) for r in rows if (p := r.peak_mb) is not None]
    single = {r.label: r.max_rss_mb or 0.0 for r in rows}
    big = [
        f"{label} {p:.0f} MB, largest single process {single[label]:.0f} MB"
        for label, p in peaks if p >= MAX_PEAK_MB
    ]
    top = max(peaks, key=lambda p: p[1], default=None)
    v_mem = Verdict(
        f"peak memory < {MAX_PEAK_MB:g} MB (all processes together)",
        None if not peaks else not big,
        ("over: " + ", ".join(big)) if big
        else f"largest {top[0]} {top[1]:.0f} MB" if top else "nothing measured",
    )
    return [v_floor, v_peer, v_mem]


# -- JSON and chart -----------------------------------------------------------------------------


def write_json(path: Path, meta: dict[str, Any], rows: list[Row], verdicts: list[Verdict]) -> None:
    data = {
        **meta,
        "targets": [{"target": v.name, "met": v.met, "detail": v.detail} for v in verdicts],
        "rows": [r.to_json() for r in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_chart(path: Path, rows: list[Row], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label.replace(" stack", "\nstack") for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    panels = (
        (left, [r.floor_ratio for r in rows], [r.shade for r in rows], MAX_FLOOR_RATIO,
         "wheelshade time / floor time (lower is better)", "target <= 2x", "tab:blue"),
        (right, [r.peer_ratio for r in rows], [r.peer for r in rows], MIN_PEER_RATIO,
         "peer time / wheelshade time (higher is better)", "target >= 5x", "tab:orange"),
    )
    for ax, values, outcomes, target, ylabel, target_label, colour in panels:
        xs = range(len(rows))
        heights = [v or 0.0 for v in values]
        applies = [ax is left or r.rewrite_dominated for r in rows]
        bars = ax.bar(xs, heights, color=colour, alpha=1.0)
        for bar, on in zip(bars, applies, strict=True):
            if not on:
                bar.set_alpha(0.35)
        ax.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=target_label)
        if ax is right:
            ax.axhline(1.0, color="grey", linewidth=0.8, label="parity")
            ax.bar([0], [0], color=colour, alpha=0.35, label="target does not apply")
        top = max([*heights, target]) * 1.25
        ax.set_ylim(0, top)
        for x, bar, value, row, o in zip(xs, bars, values, rows, outcomes, strict=True):
            if value is not None:
                text = f"{value:.1f}x"
            elif ax is right and row.shade.status != OK:
                text = f"shade\n{row.shade.status}"
            else:
                text = o.status if o.status != OK else "n/a"
            ax.text(x, bar.get_height() + top * 0.01, text, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), labels, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" text chunk: matplotlib's default names its web site, and results are committed.
    fig.savefig(path, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
