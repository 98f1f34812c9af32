"""Obtaining dependency wheels: local paths as given, pins through pip, with a wheel cache."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from wheelshade.errors import FetchError, UsageError, suggest
from wheelshade.resolve.pipcheck import failure_hint


@dataclass(frozen=True)
class IndexOptions:
    """pip options passed through unchanged; anything else comes from the user's pip config."""

    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    no_index: bool = False

    def pip_args(self) -> list[str]:
        args: list[str] = []
        for link in self.find_links:
            args += ["--find-links", link]
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        if self.no_index:
            args.append("--no-index")
        return args


@dataclass(frozen=True)
class Target:
    """The interpreter and platform the shaded wheels are for; default: the running one.

    Passed to pip as ``--python-version``/``--platform`` (which need ``--only-binary
    :all:``: an sdist cannot be built for another interpreter).
    """

    python_version: str | None = None
    platforms: tuple[str, ...] = ()

    @property
    def foreign(self) -> bool:
        return self.python_version is not None or bool(self.platforms)

    def pip_args(self) -> list[str]:
        if not self.foreign:
            return []
        args = ["--only-binary=:all:"]
        if self.python_version:
            args += ["--python-version", self.python_version]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args

    def tags(self) -> list[Tag]:
        """Tags a wheel for this target may carry, best first (as pip ranks them)."""
        if not self.foreign:
            return list(sys_tags())
        version = None
        if self.python_version:
            try:
                version = tuple(int(p) for p in self.python_version.split(".")[:2])
            except ValueError:
                raise UsageError(
                    f"--python-version {self.python_version!r}: expected a version like 3.10"
                ) from None
        platforms = list(self.platforms) or None
        return [
            *cpython_tags(version, platforms=platforms),
            *compatible_tags(version, platforms=platforms),
        ]


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def pip_error(stderr: str) -> str:
    """The line of pip's output that says what went wrong (its first ``ERROR:`` line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no output"]
    return errors[0]


def default_cache_dir() -> Path:
    if env := os.environ.get("WHEELSHADE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wheelshade"


def parse_dep(text: str) -> Path | Pin:
    """A ``--dep`` value: a path to a ``.whl`` or an exact ``NAME==VERSION`` pin."""
    if text.endswith(".whl"):
        path = Path(text)
        if not path.is_file():
            raise UsageError(f"--dep {text}: no such wheel file")
        return path
    try:
        req = Requirement(text)
    except InvalidRequirement:
        req = None
    specs = list(req.specifier) if req else []
    if req is None or req.url or req.marker or len(specs) != 1 or specs[0].operator != "==":
        raise UsageError(
            f"--dep {text!r}: expected NAME==VERSION or a path to a .whl file "
            "(shading needs one exact version)"
        )
    try:
        version = Version(specs[0].version)
    except ValueError:
        raise UsageError(f"--dep {text!r}: {specs[0].version!r} is not a version") from None
    return Pin(req.name, version)


def _best_cached(folder: Path, pin: Pin, supported: Sequence[Tag]) -> Path | None:
    rank = {tag: i for i, tag in enumerate(supported)}
    best: tuple[int, Path] | None = None
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name != canonicalize_name(pin.name) or version != pin.version:
            continue
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, path)
    return best[1] if best else None


def fetch(
    pin: Pin,
    *,
    index: IndexOptions,
    cache_dir: Path,
    python: str = sys.executable,
    timeout: float = 900.0,
    target: Target | None = None,
) -> Path:
    """A wheel for ``pin``, from the cache or through ``pip wheel --no-deps``.

    For another interpreter or platform (``target``) it is ``pip download --no-deps``
    of a compatible wheel instead: sdists cannot be built for a foreign target.

    pip runs in a subprocess of the given interpreter so the user's pip configuration,
    credentials and sdist builds (a release without a wheel for this Python) all apply.
    """
    folder = cache_dir / "wheels" / canonicalize_name(pin.name)
    target = target or Target()
    tags = target.tags()
    cached = _best_cached(folder, pin, tags)
    if cached is not None:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
        cmd = [
            python,
            "-m",
            "pip",
            *(["download", "--dest"] if target.foreign else ["wheel", "--wheel-dir"]),
            tmp,
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            *index.pip_args(),
            *target.pip_args(),
            str(pin),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FetchError(
                f"pip did not finish within {timeout:.0f} s",
                path=str(pin),
                hint=suggest(
                    index.pip_args(),
                    "check the index is reachable",
                    "pass --find-links/--no-index",
                ),
            ) from None
        if proc.returncode != 0:
            raise FetchError(
                f"pip could not obtain a wheel: {pip_error(proc.stderr)}",
                path=str(pin),
                hint=failure_hint(
                    proc.stderr,
                    cmd,
                    python,
                    "check the name and version",
                    "pass --find-links/--index-url",
                ),
            )
        built = _best_cached(Path(tmp), pin, tags)
        if built is None:
            raise FetchError("pip produced no wheel usable by this interpreter", path=str(pin))
        final = folder / built.name
        # Another process may have filled the cache meanwhile; either copy is the same wheel.
        os.replace(built, final)
    return final


def fetch_deps(
    deps: Sequence[str | Path | Pin],
    index: IndexOptions,
    cache: Path,
    timeout: float | None,
    target: Target | None,
) -> list[Path]:
    """Each dep as a wheel path: paths as given, pins fetched (or taken from the cache)."""
    paths = []
    for dep in deps:
        spec = dep if isinstance(dep, Pin) else parse_dep(str(dep))
        if isinstance(spec, Pin):
            spec = fetch(
                spec, index=index, cache_dir=cache, timeout=timeout or 900.0, target=target
            )
        paths.append(spec)
    return paths
