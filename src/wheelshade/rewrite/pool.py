"""Rewrite many files across processes; results come back in input order."""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from types import TracebackType

from wheelshade.errors import RewriteError
from wheelshade.rewrite import Rewritten, StringRules, may_change, rewrite_file

#: Below this many files to parse, starting worker processes costs more than it saves.
MIN_PARALLEL = 24
#: Tasks per worker and batch: enough that the last, smallest ones even out the load.
_TASKS_PER_JOB = 8
#: A source this large parses into tens of MB of syntax trees (sympy's 337 KB test_spin.py
#: peaks at 76 MB in ``ast.parse``); two at once pushed sympy's run past 200 MB.
LARGE = 128 << 10

_Result = Rewritten | RewriteError
_ErrorTuple = tuple[str, str, str | None, int | None, str]
_Outs = Callable[[], list[Rewritten | _ErrorTuple]]
_worker_rules: tuple[Mapping[str, str], StringRules | None] | None = None


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _init(mapping: Mapping[str, str], strings: StringRules | None) -> None:
    global _worker_rules  # one worker process, one set of rules: set once at start
    _worker_rules = (mapping, strings)


#: A rewrite allocates many short-lived objects (syntax trees) and makes almost no cycles:
#: at the default threshold (700) the collector ran a thousand times over pip's sources and
#: took a sixth of the rewrite time.
_GC_THRESHOLD = 50_000


def _init_worker(mapping: Mapping[str, str], strings: StringRules | None) -> None:
    _init(mapping, strings)
    # What the worker inherited (LibCST, the rules) lives as long as it does: frozen, the
    # collector no longer walks it, nor copies its pages from the parent by touching them.
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])


def _work(item: tuple[bytes, str]) -> Rewritten | _ErrorTuple:
    assert _worker_rules is not None
    mapping, strings = _worker_rules
    source, path = item
    try:
        return rewrite_file(source, mapping, path=path, strings=strings)
    except RewriteError as exc:
        # Keyword fields do not survive pickling an exception; send them as a tuple.
        return ("error", exc.message, exc.path, exc.line, exc.hint)


def _work_many(items: list[tuple[bytes, str]]) -> list[Rewritten | _ErrorTuple]:
    return [_work(item) for item in items]


def tasks(sizes: Sequence[int], parts: int) -> list[list[int]]:
    """Indexes of ``sizes`` grouped into about ``parts`` tasks of similar total size,
    largest first: big files start early, and the small ones left for the end let the
    workers finish together (in file order, one worker was often left with a big file
    while the other idled).

    The files of ``LARGE`` bytes or more form the first task together, so no two of them
    are parsed at the same time: their syntax trees are what the workers' memory peaks on.
    """
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    large = [i for i in order if sizes[i] >= LARGE]
    target = sum(sizes) / max(1, parts)
    out: list[list[int]] = []
    total = target  # the first file starts a task
    for index in order[len(large) :]:
        if total >= target:
            out.append([])
            total = 0
        out[-1].append(index)
        total += sizes[index]
    return [large, *out] if large else out


class Batch:
    """The rewrites of one batch of files, started by ``SourceRewriter.submit``."""

    def __init__(self, size: int, todo: list[int], outs: _Outs) -> None:
        self._size, self._todo, self._outs = size, todo, outs

    def results(self) -> list[_Result]:
        """One result per file, in input order; waits for the pool when it must."""
        results: list[_Result] = [Rewritten(None)] * self._size
        for i, out in zip(self._todo, self._outs(), strict=True):
            if isinstance(out, tuple):
                _, message, path, line, hint = out
                results[i] = RewriteError(message, path=path, line=line, hint=hint)
            else:
                results[i] = out
        return results


class SourceRewriter:
    """Runs ``rewrite_file`` over batches of files, in a process pool when it pays off.

    Files that cannot need a change are answered in this process without parsing; only
    the rest go to the workers. Output order is input order, so results are deterministic.
    """

    def __init__(
        self, mapping: Mapping[str, str], strings: StringRules | None, *, jobs: int | None = None
    ) -> None:
        self.mapping = dict(mapping)
        self.strings = strings
        self.jobs = default_jobs() if jobs is None else max(1, jobs)
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            # fork shares the already imported LibCST with the workers; elsewhere spawn.
            method = "fork" if sys.platform == "linux" else "spawn"
            self._pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_worker,
                initargs=(self.mapping, self.strings),
            )
        return self._pool

    def submit(self, items: Sequence[tuple[bytes, str]]) -> Batch:
        """Start rewriting ``items``: in the pool they run while the caller goes on (it
        writes the previous batch meanwhile); otherwise they run on ``Batch.results()``."""
        todo = [
            i
            for i, (source, _) in enumerate(items)
            if may_change(source, self.mapping, self.strings)
        ]
        chosen = [items[i] for i in todo]
        if self.jobs > 1 and len(todo) >= MIN_PARALLEL:
            return Batch(len(items), todo, self._parallel(chosen))
        return Batch(len(items), todo, functools.partial(self._serial, chosen))

    def run(self, items: Sequence[tuple[bytes, str]]) -> list[_Result]:
        return self.submit(items).results()

    def _serial(self, items: list[tuple[bytes, str]]) -> list[Rewritten | _ErrorTuple]:
        _init(self.mapping, self.strings)
        return [_work(item) for item in items]

    def _parallel(self, items: list[tuple[bytes, str]]) -> _Outs:
        pool = self._executor()
        groups = tasks([len(source) for source, _ in items], self.jobs * _TASKS_PER_JOB)
        futures = [pool.submit(_work_many, [items[i] for i in group]) for group in groups]

        def gather() -> list[Rewritten | _ErrorTuple]:
            outs: list[Rewritten | _ErrorTuple | None] = [None] * len(items)
            for group, future in zip(groups, futures, strict=True):
                for i, out in zip(group, future.result(), strict=True):
                    outs[i] = out
            return [out for out in outs if out is not None]

        return gather

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SourceRewriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
