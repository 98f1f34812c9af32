"""The exception hierarchy: every expected failure is a WheelshadeError subclass."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_OPTION = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


def suggest(given: Iterable[str], *alternatives: str) -> str:
    """A hint: the ``alternatives`` joined with ", or ", leaving out each that names an
    option in ``given``.

    A hint that suggests the option that was just given (and failed, as in "no such
    option: --x (... or pass --x)") sends the user round in a circle, so every hint built
    from the options of a failed command goes through here.
    """
    have = {g.split("=", 1)[0] for g in given}
    kept = [a for a in alternatives if not set(_OPTION.findall(a)) & have]
    return ", or ".join(kept)


class WheelshadeError(Exception):
    """Root of every error wheelshade reports to the user (the CLI prints it on one line)."""

    #: Suggested next step shown after the message, or empty.
    hint: str = ""

    def __init__(self, message: str, *, path: str | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(WheelshadeError):
    """The command line or API arguments are inconsistent."""


class ArchiveError(WheelshadeError):
    """A wheel is not a readable, safe zip archive."""


class WheelFormatError(WheelshadeError):
    """A wheel is a zip but breaks the wheel spec (name, dist-info, RECORD, metadata)."""


class OutputError(WheelshadeError):
    """The output folder cannot be created or written (full disk, read-only, not a folder)."""


class FetchError(WheelshadeError):
    """A dependency could not be obtained as a wheel."""


class RewriteError(WheelshadeError):
    """A source file could not be rewritten safely."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(message, path=path, hint=hint)
        self.line = line

    def __str__(self) -> str:
        where = self.path or ""
        if self.path and self.line is not None:
            where = f"{self.path}:{self.line}"
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class PlanError(WheelshadeError):
    """The shading set is inconsistent; carries every conflict found, not just the first."""

    #: How many issues the one-line message shows; ``issues`` keeps them all.
    SHOWN = 5

    def __init__(self, issues: Sequence[str], *, hint: str = "") -> None:
        self.issues = tuple(issues)
        shown = "; ".join(self.issues[: self.SHOWN])
        more = len(self.issues) - self.SHOWN
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""), hint=hint)


class StrictError(WheelshadeError):
    """``--strict`` was given and the leak report has findings; nothing was written."""

    def __init__(self, message: str, *, path: str | None = None, result: object = None) -> None:
        super().__init__(message, path=path, hint="see the leak report; fix or accept them")
        #: The ShadeResult that had the findings, for the report.
        self.result = result
