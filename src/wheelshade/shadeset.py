"""``ShadeSet``: one shading set and everything needed to run it, as a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .closure import ClosureOptions
from .compiled import Naming
from .core import ShadeResult, shade
from .fetch import IndexOptions, Target
from .naming import check_suffix
from .timings import Timings


@dataclass(frozen=True)
class ShadeSet:
    """Deps shaded together, the dependents rewritten against them, and how.

    The same fields as ``wheelshade shade``'s options; a config file's
    ``[[tool.wheelshade.set]]`` table maps onto it key by key (``out-dir`` -> ``out_dir``).
    """

    deps: tuple[str, ...]
    dependents: tuple[Path, ...] = ()
    name: str = ""
    out_dir: Path = Path("wheelhouse")
    suffix: str | None = None
    drop: tuple[str, ...] = ()
    keep_scripts: bool = False
    keep_pth: bool = False
    strict: bool = False
    with_deps: bool = False
    target_requirements: Path | None = None
    target_env: str | None = None
    uploaded_prior_to: str | None = None
    index: IndexOptions = field(default_factory=IndexOptions)
    cache_dir: Path | None = None
    naming: Naming = Naming.AUTO
    #: ``--on-unparsable=keep``: keep source files that cannot be parsed, reported.
    keep_unparsable: bool = False
    #: ``--python-version`` / ``--platform``: the interpreter the wheels are for.
    target: Target = field(default_factory=Target)
    #: ``--prefer-python``: drop compiled modules of shaded deps that have ``.py`` twins.
    prefer_python: bool = False
    load_check: bool = True

    @property
    def label(self) -> str:
        return self.name or ", ".join(self.deps)

    def run(
        self,
        *,
        jobs: int | None = None,
        dry_run: bool = False,
        diff: bool = False,
        timings: Timings | None = None,
        fetch_timeout: float | None = None,
    ) -> ShadeResult:
        return shade(
            self.dependents,
            self.deps,
            out_dir=self.out_dir,
            suffix=check_suffix(self.suffix) if self.suffix else None,
            index=self.index,
            cache_dir=self.cache_dir,
            keep_scripts=self.keep_scripts,
            keep_pth=self.keep_pth,
            drop=self.drop,
            dry_run=dry_run,
            diff=diff,
            strict=self.strict,
            jobs=jobs,
            timings=timings,
            fetch_timeout=fetch_timeout,
            with_deps=self.with_deps,
            naming=self.naming,
            keep_unparsable=self.keep_unparsable,
            target=self.target,
            prefer_python=self.prefer_python,
            load_check=self.load_check,
            closure=ClosureOptions(
                target_requirements=self.target_requirements,
                target_env=self.target_env,
                uploaded_prior_to=self.uploaded_prior_to,
            ),
        )
