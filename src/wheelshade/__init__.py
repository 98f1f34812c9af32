"""wheelshade: shade dependency wheels so two versions of a package run in one interpreter."""

from __future__ import annotations

__version__ = "0.1.0"

from wheelshade.batch import BatchResult, SetOutcome, run_batch
from wheelshade.config import find_config, load_config
from wheelshade.core import shade
from wheelshade.errors import (
    ArchiveError,
    FetchError,
    PlanError,
    RewriteError,
    UsageError,
    WheelFormatError,
    WheelshadeError,
)
from wheelshade.findings import Code, Finding
from wheelshade.options import ShadeOptions
from wheelshade.resolve.closure import ClosureOptions
from wheelshade.resolve.fetch import IndexOptions, Pin, Target
from wheelshade.resolve.resolver import Decision
from wheelshade.result import ShadeResult, WheelReport
from wheelshade.shadeset import ShadeSet

__all__ = [
    "ArchiveError",
    "BatchResult",
    "ClosureOptions",
    "Code",
    "Decision",
    "FetchError",
    "Finding",
    "IndexOptions",
    "Pin",
    "PlanError",
    "RewriteError",
    "SetOutcome",
    "ShadeOptions",
    "ShadeResult",
    "ShadeSet",
    "Target",
    "UsageError",
    "WheelFormatError",
    "WheelReport",
    "WheelshadeError",
    "__version__",
    "find_config",
    "load_config",
    "run_batch",
    "shade",
]
