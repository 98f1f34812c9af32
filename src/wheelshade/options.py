"""``ShadeOptions``: every choice a shading run takes, validated once, passed down whole."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from wheelshade.errors import UsageError
from wheelshade.naming import Suffix, check_suffix
from wheelshade.native.scan import Naming
from wheelshade.resolve.closure import ClosureOptions
from wheelshade.resolve.fetch import IndexOptions, Target

_FLAGS = ("keep_scripts", "keep_pth", "prefer_python", "keep_unparsable", "load_check",
          "strict", "with_deps", "dry_run", "diff", "bundle")


@dataclass(frozen=True)
class ShadeOptions:
    """How to shade: the same choices as ``wheelshade shade``'s flags and a config set's keys.

    Built by the CLI, the config reader and the API, each from its own spelling; checked
    here, once, with every problem reported together (UsageError). Text is accepted where
    a caller naturally has text (``suffix``, ``naming``, paths) and stored as the checked
    type, so code below never re-validates.
    """

    out_dir: Path = Path("wheelhouse")
    #: ``NAME_SUFFIX`` instead of ``NAME_<version>_<hash>``.
    suffix: Suffix | None = None
    naming: Naming = Naming.AUTO
    #: Globs of archive members to leave out.
    drop: tuple[str, ...] = ()
    keep_scripts: bool = False
    keep_pth: bool = False
    #: Leave out compiled modules of shaded deps that ship a ``.py`` twin.
    prefer_python: bool = False
    #: ``--on-unparsable=keep``: keep source files that cannot be parsed, reported.
    keep_unparsable: bool = False
    #: Load every patched compiled module with the originals blocked before writing.
    load_check: bool = True
    #: Fail, writing nothing, when the leak report has findings.
    strict: bool = False
    #: Resolve the deps' closure with pip and shade what the target would hold otherwise.
    with_deps: bool = False
    target_requirements: Path | None = None
    target_env: str | None = None
    #: An ISO 8601 date or date-time: resolve the closure as of then.
    uploaded_prior_to: str | None = None
    index: IndexOptions = field(default_factory=IndexOptions)
    #: ``--python-version`` / ``--platform``: the interpreter the wheels are for.
    target: Target = field(default_factory=Target)
    cache_dir: Path | None = None
    #: Seconds pip may take to fetch or build one dep (default 900).
    fetch_timeout: float | None = None
    #: Processes that rewrite sources (default: the usable CPUs).
    jobs: int | None = None
    dry_run: bool = False
    diff: bool = False
    #: One wheel per dependent holding it and the shaded deps (docs/publishing.md).
    bundle: bool = False

    def __post_init__(self) -> None:
        problems: list[str] = []
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "out_dir", Path(self.out_dir))
        for name in ("target_requirements", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, Path(value))
        if isinstance(self.suffix, str):
            try:
                set_(self, "suffix", check_suffix(self.suffix))
            except UsageError as exc:
                problems.append(exc.message)
        if not isinstance(self.naming, Naming):
            try:
                set_(self, "naming", Naming(self.naming))
            except ValueError:
                choices = ", ".join(n.value for n in Naming)
                problems.append(f"naming must be one of {choices}, not {self.naming!r}")
        if isinstance(self.drop, str) or not all(isinstance(d, str) for d in self.drop):
            problems.append("drop must be a list of glob patterns")
        else:
            set_(self, "drop", tuple(self.drop))
        problems += [f"{name} must be true or false, not {getattr(self, name)!r}"
                     for name in _FLAGS if not isinstance(getattr(self, name), bool)]
        if self.jobs is not None and (
            isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1
        ):
            problems.append(f"jobs must be a whole number of at least 1, not {self.jobs!r}")
        timeout = self.fetch_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not math.isfinite(timeout) or timeout <= 0
        ):
            problems.append(f"fetch timeout must be a positive number of seconds, not {timeout!r}")
        if self.uploaded_prior_to is not None and _parse_date(self.uploaded_prior_to) is None:
            problems.append(
                f"uploaded-prior-to must be an ISO 8601 date or date-time (2020-02-05, "
                f"2020-02-05T12:00:00Z), not {self.uploaded_prior_to!r}"
            )
        if problems:
            raise UsageError("; ".join(problems))

    @classmethod
    def from_keywords(cls, **keywords: Any) -> ShadeOptions:
        """The options from ``shade()``'s keyword form; ``closure=ClosureOptions(...)`` is
        spread into its fields. Unknown keywords are a TypeError, as for any call."""
        closure = keywords.pop("closure", None)
        if closure is not None:
            if closure.python != ClosureOptions().python:
                # Never dropped silently: pip runs under the interpreter running wheelshade.
                raise TypeError("ClosureOptions.python is not an option of shade(); run "
                                "wheelshade with the interpreter whose pip should resolve")
            keywords.setdefault("target_requirements", closure.target_requirements)
            keywords.setdefault("target_env", closure.target_env)
            keywords.setdefault("uploaded_prior_to", closure.uploaded_prior_to)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise TypeError(f"shade() got unexpected keyword argument(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in keywords.items() if v is not None})

    @property
    def closure(self) -> ClosureOptions:
        """What ``--with-deps`` resolves against."""
        return ClosureOptions(
            target_requirements=self.target_requirements,
            target_env=self.target_env,
            uploaded_prior_to=self.uploaded_prior_to,
        )


def _parse_date(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
