"""Where a run spends its time, by phase, for ``--timings`` / ``WHEELSHADE_TIMINGS=1``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Seconds per phase, accumulated over a run (phases may repeat, once per wheel)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def report(self) -> str:
        total = sum(self.seconds.values()) or 1.0
        width = max((len(n) for n in self.seconds), default=0)
        lines = [
            f"  {name.ljust(width)}  {secs:8.3f} s  {100 * secs / total:5.1f}%"
            for name, secs in self.seconds.items()
        ]
        return "timings:\n" + "\n".join(lines)
