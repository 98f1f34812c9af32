"""``ShadeSet``: one shading set (deps, dependents) and the options to run it with, as a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wheelshade.core import shade
from wheelshade.options import ShadeOptions
from wheelshade.result import ShadeResult
from wheelshade.timings import Timings


@dataclass(frozen=True)
class ShadeSet:
    """Deps shaded together and the dependents rewritten against them; a config file's
    ``[[tool.wheelshade.set]]`` table maps onto it, its keys onto ``options``."""

    deps: tuple[str, ...]
    dependents: tuple[Path, ...] = ()
    name: str = ""
    options: ShadeOptions = field(default_factory=ShadeOptions)

    @property
    def label(self) -> str:
        return self.name or ", ".join(self.deps)

    def run(self, *, timings: Timings | None = None) -> ShadeResult:
        return shade(self.dependents, self.deps, self.options, timings=timings)
