"""Benchmark wheelshade against the floor (a plain repack) and a peer tool on real wheels.

    make bench                       # or: .venv/bin/python benchmarks/run.py [--runs N]

Fetches the pinned corpus (corpus.toml) into .cache/bench/, measures every wheel in fresh
subprocesses, prints a table and writes benchmarks/results/latest.json and latest.png.
Missed targets are reported, not fatal: the exit status is non-zero only for real errors.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import corpus
import measure
import report
import synth
from report import ERROR, FAILED, OK, REFUSED, SKIPPED, TIMEOUT, Outcome, Row

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".cache" / "bench"
RESULTS = HERE / "results"
TASKS = HERE / "tasks.py"

#: The peer: python-rewrite-imports from nixpkgs-pytools (a rope-based module rename), with
#: its rope pinned so that reruns compare the same thing.
PEER_PINS = ("nixpkgs-pytools==1.3.0", "rope==1.15.2")
PEER_VENV = CACHE / "peer-venv"


@dataclass(frozen=True)
class Case:
    """What one row measures: the wheels shaded together as one set."""

    row: Row
    wheels: tuple[Path, ...]
    pins: tuple[corpus.Pin, ...]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- setup --------------------------------------------------------------------------------------


def fetch_corpus(pins: Sequence[corpus.Pin]) -> tuple[dict[str, Path], list[str]]:
    paths: dict[str, Path] = {}
    skipped: list[str] = []
    for pin in pins:
        try:
            paths[pin.label] = corpus.fetch(pin, CACHE / "wheels")
        except corpus.IndexUnreachable as exc:
            log(f"skipping {pin.label}: {exc}")
            skipped.append(pin.label)
    return paths, skipped


def peer_tool() -> tuple[Path | None, str]:
    """The peer's executable, installed into its own venv once; or None and why not."""
    tool = PEER_VENV / "bin" / "python-rewrite-imports"
    stamp = PEER_VENV / ".bench-pins"
    wanted = "\n".join(PEER_PINS)
    if tool.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return tool, ""
    log(f"installing the peer into {PEER_VENV.relative_to(REPO)}: {', '.join(PEER_PINS)}")
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    proc = subprocess.run(
        [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", *PEER_PINS],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        if corpus.UNREACHABLE.search(proc.stderr):
            return None, "package index unreachable, peer not installed"
        raise RuntimeError(f"installing the peer failed:\n{proc.stderr.strip()}")
    stamp.write_text(wanted, encoding="utf-8")
    return tool, ""


def make_cases(pins: Sequence[corpus.Pin], paths: dict[str, Path]) -> list[Case]:
    cases = []
    groups: dict[str, list[corpus.Pin]] = {}
    for pin in pins:
        if pin.group:
            groups.setdefault(pin.group, []).append(pin)
    for members in [[p] for p in pins] + list(groups.values()):
        if not all(p.label in paths for p in members):
            continue
        wheels = tuple(paths[p.label] for p in members)
        label = members[0].label if len(members) == 1 else str(members[0].group)
        files = 0
        for w in wheels:
            with zipfile.ZipFile(w) as zf:
                files += sum(1 for i in zf.infolist() if not i.is_dir())
        row = Row(
            label=label,
            wheels=[w.name for w in wheels],
            files=files,
            rewrite_dominated=all(p.rewrite_dominated for p in members),
            why=members[0].why if len(members) == 1 else "the whole stack as one shading set",
        )
        cases.append(Case(row, wheels, tuple(members)))
    return cases


def dependent_wheel(case: Case) -> Path:
    targets = [
        synth.Target(top, corpus.submodule(wheel, top))
        for wheel in case.wheels
        for top in corpus.top_levels(wheel)
    ]
    slug = re.sub(r"[^a-z0-9]+", "_", case.row.label.lower()).strip("_")
    return synth.build(
        CACHE / "dependents",
        f"bench_dependent_{slug}",
        targets,
        [f"{p.name}=={p.version}" for p in case.pins],
    )


# -- one measurement ----------------------------------------------------------------------------


def _refusal(stderr: str) -> str | None:
    """wheelshade's one-line error, shortened to its first clause; None if it crashed.

    A usage error (argparse's ``usage:`` lines) is the benchmark's fault, never a refusal.
    """
    lines = [ln for ln in stderr.splitlines() if ln.startswith("wheelshade: error: ")]
    if not lines or "usage: " in stderr or "Traceback (most recent call last)" in stderr:
        return None
    text = lines[0].removeprefix("wheelshade: error: ")
    clauses = text.split("; ")
    first = clauses[0]
    # The file name is in the row already; keep the reason.
    first = re.sub(r"^(?:\S+\.whl: )+", "", first)
    if len(clauses) > 1:
        first += f" (and {len(clauses) - 1} more)"
    return first


def _last_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


def _timings(stderr: str) -> dict[str, float]:
    """Phase seconds from wheelshade's ``WHEELSHADE_TIMINGS=1`` block, if it prints one."""
    phases: dict[str, float] = {}
    inside = False
    for line in stderr.splitlines():
        if line.strip() == "timings:":
            inside = True
            continue
        if inside:
            m = re.match(r"^\s+(.+?)\s+([0-9.]+) s\b", line)
            if not m:
                break
            phases[m.group(1)] = float(m.group(2))
    return phases


class Bench:
    def __init__(self, runs: int, timeout: float, tool: Path | None, peer_skip: str) -> None:
        self.runs = runs
        self.timeout = timeout
        self.tool = tool
        self.peer_skip = peer_skip
        self.python = sys.executable

    def _wheelshade_outcome(self, o: Outcome, sample: measure.Sample) -> bool:
        """Record a wheelshade run; False when it did not succeed (and why is in ``o``)."""
        if sample.timed_out:
            o.stop(ERROR, f"timed out after {self.timeout:.0f} s")
        elif sample.returncode == 0:
            o.samples.append(sample)
            return True
        elif sample.returncode == 2 and (reason := _refusal(sample.stderr)):
            o.stop(REFUSED, reason)
        else:
            o.stop(ERROR, f"exit status {sample.returncode}: {_last_line(sample.stderr)}")
        return False

    def startup(self) -> float | None:
        """Median seconds of ``python -m wheelshade --version``: the fixed cost of every run."""
        times = []
        for _ in range(self.runs):
            sample = measure.run([self.python, "-m", "wheelshade", "--version"],
                                 timeout=self.timeout)
            if sample.returncode != 0:
                return None
            times.append(sample.seconds)
        return statistics.median(times)

    def floor(self, case: Case, tmp: Path) -> None:
        o = case.row.floor
        sample = measure.run(
            [self.python, str(TASKS), "floor", str(tmp / "out"), *map(str, case.wheels)],
            timeout=self.timeout,
        )
        if sample.returncode != 0:
            o.stop(ERROR, _last_line(sample.stderr))
        else:
            o.samples.append(sample)

    def shade(self, case: Case, tmp: Path) -> None:
        o = case.row.shade
        rep = tmp / "report.json"
        deps = [a for w in case.wheels for a in ("--dep", str(w))]
        sample = measure.run(
            [self.python, "-m", "wheelshade", "shade", "-q", *deps, "-o", str(tmp / "out"),
             "--cache-dir", str(tmp / "cache"), "--report", str(rep)],
            timeout=self.timeout,
            env={**os.environ, "WHEELSHADE_TIMINGS": "1"},
        )
        if not self._wheelshade_outcome(o, sample):
            return
        data = json.loads(rep.read_text(encoding="utf-8"))
        wheels = [w for w in data["wheels"] if w["role"] == "dep"]
        case.row.python_files = sum(w["python_files"] for w in wheels)
        case.row.rewritten = sum(w["rewritten"] for w in wheels)
        o.extra["mapping"] = {k: v for w in wheels for k, v in w["mapping"].items()}
        o.extra["findings"] = sum(len(w["findings"]) for w in wheels)
        if phases := _timings(sample.stderr):
            o.extra.setdefault("phases", []).append(phases)

    def dependent(self, case: Case, wheel: Path, tmp: Path) -> None:
        o = case.row.dependent
        rep = tmp / "report.json"
        timing = tmp / "timing.json"
        deps = [a for w in case.wheels for a in ("--dep", str(w))]
        sample = measure.run(
            [self.python, str(TASKS), "shade", "--timing-json", str(timing), "--", "shade",
             str(wheel), "-q", *deps, "-o", str(tmp / "out"), "--cache-dir", str(tmp / "cache"),
             "--report", str(rep)],
            timeout=self.timeout,
        )
        if not self._wheelshade_outcome(o, sample):
            return
        clock = json.loads(timing.read_text(encoding="utf-8"))
        if clock["per_job"]:
            o.inner.append(sum(j["seconds"] for j in clock["jobs"] if j["role"] == "dependent"))
            o.extra["inner_is"] = "rewriting and writing the dependent wheel"
        else:
            o.extra["inner_is"] = "total: wheelshade.core.write_job not found to time per wheel"
        data = json.loads(rep.read_text(encoding="utf-8"))
        mine = [w for w in data["wheels"] if w["role"] == "dependent"]
        o.extra["dependent_python_files"] = sum(w["python_files"] for w in mine)
        o.extra["dependent_rewritten"] = sum(w["rewritten"] for w in mine)

    def peer(self, case: Case, tmp: Path) -> None:
        o = case.row.peer
        if self.tool is None:
            o.stop(SKIPPED, self.peer_skip)
            return
        mapping: dict[str, str] = case.row.shade.extra.get("mapping") or {
            top: f"{top}_{re.sub(r'[^0-9a-z]', '_', p.version)}_bench"
            for p, w in zip(case.pins, case.wheels, strict=True)
            for top in corpus.top_levels(w)
        }
        replaces = [a for old, new in sorted(mapping.items()) for a in ("--replace", old, new)]
        sample = measure.run(
            [self.python, str(TASKS), "peer", "--tool", str(self.tool), "--work", str(tmp),
             *replaces, *map(str, case.wheels)],
            timeout=self.timeout,
        )
        if sample.timed_out:
            o.stop(TIMEOUT, f"no result after {self.timeout:.0f} s")
            return
        if sample.returncode != 0:
            o.stop(ERROR, _last_line(sample.stderr))
            return
        result = json.loads(sample.stdout.strip().splitlines()[-1])
        if result["status"] != OK:
            o.stop(FAILED, result["message"])
            return
        o.samples.append(sample)
        o.extra.setdefault("parts", []).append(
            {k: round(result[k], 4) for k in ("unpack", "rewrite", "repack")}
        )
        o.extra["changed"] = result["changed"]

    def case(self, case: Case) -> None:
        wheel = dependent_wheel(case)
        row = case.row
        for i in range(self.runs):
            steps: list[tuple[str, Callable[[Path], None]]] = [
                ("floor", functools.partial(self.floor, case)),
                ("shade", functools.partial(self.shade, case)),
                ("dependent", functools.partial(self.dependent, case, wheel)),
                ("peer", functools.partial(self.peer, case)),
            ]
            done = []
            for kind, step in steps:
                o = row.outcomes()[kind]
                if o.status != OK:
                    continue  # refused, failed or an error once: it would be again
                with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
                    step(Path(tmp))
                done.append(f"{kind} " + (f"{o.samples[-1].seconds:.2f}s" if o.status == OK
                                          else o.status))
            log(f"  {row.label} run {i + 1}/{self.runs}: {', '.join(done) or 'nothing to run'}")


# -- main ---------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _meta(runs: int, tool: Path | None) -> dict[str, Any]:
    dirty = _git("status", "--porcelain", "--", "src")
    return {
        "schema": 1,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wheelshade": {
            "version": metadata.version("wheelshade"),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "src_modified": bool(dirty) if dirty is not None else None,
        },
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "runs": runs,
        "statistic": "median wall seconds of the runs; peak memory is the maximum",
        "peer": {"tool": "python-rewrite-imports", "pins": list(PEER_PINS)}
        if tool else None,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median; default 3)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only this corpus wheel or group (repeatable); results go to "
                   "results/partial.*.tmp instead of latest.*")
    p.add_argument("--no-peer", action="store_true", help="do not install or run the peer")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds before one measurement is stopped (default 600)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.runs < 1:
        log("run.py: error: --runs must be at least 1")
        return 2
    try:
        pins = corpus.load()
    except corpus.CorpusError as exc:
        log(f"run.py: error: {exc}")
        return 2
    if args.only:
        wanted = {w.lower() for w in args.only}
        pins = [p for p in pins if {p.name, p.label, (p.group or "").lower()} & wanted]
        if not pins:
            log(f"run.py: error: nothing in the corpus matches {', '.join(args.only)}")
            return 2
    try:
        paths, skipped = fetch_corpus(pins)
    except corpus.CorpusError as exc:
        log(f"run.py: error: {exc}")
        return 2
    if not paths:
        log("run.py: the package index is unreachable and no corpus wheel is cached: "
            "nothing measured, results left as they were")
        return 0
    tool, peer_skip = (None, "--no-peer") if args.no_peer else peer_tool()
    if tool is None:
        log(f"peer not run: {peer_skip}")
    cases = make_cases(pins, paths)
    bench = Bench(args.runs, args.timeout, tool, peer_skip)
    # Warm-up, untimed: byte-compile wheelshade, LibCST and the peer on first use.
    subprocess.run([sys.executable, "-m", "wheelshade", "--version"], capture_output=True)
    if tool is not None:
        subprocess.run([str(tool), "--help"], capture_output=True)
    log(f"measuring {len(cases)} rows, {args.runs} run(s) each, with {sys.executable}")
    meta = _meta(args.runs, tool)  # before measuring: the commit measured is the one at start
    load_start = os.getloadavg()[0]
    if load_start >= 0.5:
        log(f"note: the machine is busy (1-minute load {load_start:.1f} before measuring): other "
            "processes share the CPUs, so timings are inflated and ratios noisier")
    startup = bench.startup()
    for case in cases:
        bench.case(case)
    load_end = os.getloadavg()[0]
    rows = [c.row for c in cases]
    verdicts = report.targets(rows)
    print(report.table(rows))
    if skipped:
        print(f"\nskipped (package index unreachable): {', '.join(skipped)}")
    print(f"\nmachine load (1-minute average) before/after: {load_start:.1f}/{load_end:.1f} "
          f"on {os.cpu_count()} CPUs (this benchmark itself adds about 1 while measuring)")
    if startup is not None:
        print(f"wheelshade start-up (python -m wheelshade --version): {startup:.2f} s, "
              "part of every shade and dependent figure")
    print()
    for v in verdicts:
        print(f"target {v}")
    partial = bool(args.only or args.no_peer)
    if (after := _git("rev-parse", "--short", "HEAD")) != meta["wheelshade"]["commit"]:
        meta["wheelshade"]["commit_after"] = after  # others committed while this ran
    meta["wheelshade_startup_seconds"] = None if startup is None else round(startup, 4)
    meta["load_average_1min"] = {"before": round(load_start, 2), "after": round(load_end, 2)}
    title = (
        f"wheelshade {meta['wheelshade']['commit'] or ''} "
        f"- median of {args.runs} run(s), Python {meta['python']}, {meta['cpus']} CPUs, "
        f"{meta['date']}"
    )
    json_path = RESULTS / ("partial.json.tmp" if partial else "latest.json")
    png_path = RESULTS / ("partial.png.tmp" if partial else "latest.png")
    report.write_json(json_path, meta, rows, verdicts)
    report.write_chart(png_path, rows, title)
    print(f"\nwrote {json_path.relative_to(REPO)} and {png_path.relative_to(REPO)}")
    errors = [(r.label, k, o.message) for r in rows for k, o in r.outcomes().items()
              if o.status == ERROR]
    for label, kind, message in errors:
        log(f"run.py: error: {label} {kind}: {message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
