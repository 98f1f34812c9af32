"""Batch mode: several shading sets in one run, in parallel; one failure does not stop the rest."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace

from wheelshade import __version__
from wheelshade.errors import StrictError, WheelshadeError
from wheelshade.report import to_json
from wheelshade.result import ShadeResult
from wheelshade.rewrite.pool import default_jobs
from wheelshade.shadeset import ShadeSet

SUMMARY_SCHEMA = 1


@dataclass(frozen=True)
class SetOutcome:
    shade_set: ShadeSet
    result: ShadeResult | None
    error: str | None  # the one-line error when the set failed
    exit_status: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BatchResult:
    outcomes: tuple[SetOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def to_json(self) -> dict[str, object]:
        return {
            "schema": SUMMARY_SCHEMA,
            "tool": {"name": "wheelshade", "version": __version__},
            "ok": self.ok,
            "sets": [
                {
                    "name": o.shade_set.label,
                    "ok": o.ok,
                    "error": o.error,
                    "report": to_json(o.result) if o.result is not None else None,
                }
                for o in self.outcomes
            ],
        }


def _run_one(shade_set: ShadeSet, jobs: int, dry_run: bool) -> SetOutcome:
    options = replace(shade_set.options, jobs=jobs, dry_run=dry_run or shade_set.options.dry_run)
    try:
        return SetOutcome(shade_set, replace(shade_set, options=options).run(), None)
    except StrictError as exc:
        result = exc.result if isinstance(exc.result, ShadeResult) else None
        return SetOutcome(shade_set, result, f"wheelshade: error: {exc}", 3)
    except WheelshadeError as exc:
        return SetOutcome(shade_set, None, f"wheelshade: error: {exc}", 2)


def run_batch(
    sets: Sequence[ShadeSet],
    *,
    jobs: int | None = None,
    fail_fast: bool = False,
    dry_run: bool = False,
    on_done: Callable[[SetOutcome, int, int], None] | None = None,
) -> BatchResult:
    """Run every set; in parallel processes when there are several and more than one CPU.

    Outcomes come back in the order of ``sets`` whatever order they finish in. With
    ``fail_fast`` the sets not yet started are skipped after the first failure.
    """
    workers = min(len(sets), jobs or default_jobs())
    done: dict[int, SetOutcome] = {}

    def finish(i: int, outcome: SetOutcome) -> None:
        done[i] = outcome
        if on_done is not None:
            on_done(outcome, len(done), len(sets))

    if workers <= 1:
        for i, shade_set in enumerate(sets):
            finish(i, _run_one(shade_set, jobs or default_jobs(), dry_run))
            if fail_fast and not done[i].ok:
                break
    else:
        method = "fork" if sys.platform == "linux" else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
            # Each set rewrites with one process: the sets themselves use the cores.
            pending: dict[Future[SetOutcome], int] = {
                pool.submit(_run_one, s, 1, dry_run): i for i, s in enumerate(sets)
            }
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = pending.pop(future)
                    finish(i, future.result())
                    if fail_fast and not done[i].ok:
                        for other in pending:
                            other.cancel()
                        pending = {f: j for f, j in pending.items() if not f.cancelled()}
    skipped = [
        SetOutcome(s, None, "wheelshade: skipped after an earlier failure (--fail-fast)", 2)
        for i, s in enumerate(sets)
        if i not in done
    ]
    ordered = [done[i] for i in sorted(done)]
    return BatchResult(tuple(ordered + skipped))
