"""wheelshade: shade dependency wheels so two versions of a package run in one interpreter."""

from __future__ import annotations

__version__ = "0.1.0"

from .batch import BatchResult, SetOutcome, run_batch
from .closure import ClosureOptions
from .config import find_config, load_config
from .core import ShadeResult, WheelReport, shade
from .errors import (
    ArchiveError,
    FetchError,
    PlanError,
    RewriteError,
    UsageError,
    WheelFormatError,
    WheelshadeError,
)
from .fetch import IndexOptions, Pin, Target
from .findings import Code, Finding
from .resolve import Decision
from .shadeset import ShadeSet

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
