"""What the server lists and hands out: shaded deps, rewritten dependents, everything else as is.

Synchronous (it reads upstreams and runs shades); the web layer calls it from threads.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import NormalizedName, parse_wheel_filename

from wheelshade import __version__
from wheelshade.errors import WheelshadeError
from wheelshade.serve.cache import Entry, ShadeCache, sha256_of
from wheelshade.serve.fit import conflicts
from wheelshade.serve.settings import ServeSet
from wheelshade.serve.upstream import (
    PageCache,
    UpFile,
    Upstream,
    has_credentials,
    project_of,
    wheel_metadata,
)

log = logging.getLogger("wheelshade.serve")


class ShadeFailed(WheelshadeError):
    """A shade the server ran failed; the message is its one-line reason."""


@dataclass(frozen=True)
class Link:
    """One file on a served project page (PEP 503/691/658/700 fields)."""

    filename: str
    url: str  # absolute, or relative to the server's root ("/files/...")
    sha256: str | None
    requires_python: str | None
    yanked: bool | str
    metadata: bool | str  # False, True, or the sha256 of the .metadata file
    size: int | None
    upload_time: str | None


class Repository:
    """The sets, the upstreams and the cache, and the rules that join them."""

    def __init__(self, sets: list[ServeSet], upstreams: list[Upstream], cache: ShadeCache,
                 config: Path | None, page_ttl: float = 60.0,
                 shade_timeout: float = 1800.0, eager: bool = False) -> None:
        self.sets = sets
        self.upstreams = upstreams
        self.pages = PageCache(upstreams, page_ttl)
        self.cache = cache
        self.config = config
        self.shade_timeout = shade_timeout
        #: Shade every release of a dependent when its page is asked for, so the page
        #: lists every hash and size (slow once per release, on a cold cache).
        self.eager = eager
        self._tags: dict[Tag, int] = {t: i for i, t in enumerate(sys_tags())}
        self._fits: dict[tuple[int, str], bool] = {}
        self._lock = threading.Lock()

    # -- who is what -----------------------------------------------------------------
    def shaded_owner(self, project: NormalizedName) -> tuple[ServeSet, NormalizedName] | None:
        for s in self.sets:
            for original, shaded in s.shaded.items():
                if shaded == project:
                    return s, original
        return None

    def dependent_owner(self, project: NormalizedName) -> ServeSet | None:
        return next((s for s in self.sets if project in s.dependents), None)

    def set_by_number(self, number: int) -> ServeSet | None:
        return next((s for s in self.sets if s.number == number), None)

    def project_names(self) -> list[str]:
        names: set[str] = set()
        for up in self.upstreams:
            try:
                names.update(self.pages.projects(up))
            except WheelshadeError as exc:
                log.warning("%s", exc)
        for s in self.sets:
            names.update(s.shaded.values())
        return sorted(names)

    # -- pages -------------------------------------------------------------------------
    def page(self, project: NormalizedName) -> list[Link] | None:
        owner = self.shaded_owner(project)
        if owner is not None:
            return self._shaded_page(*owner)
        serve_set = self.dependent_owner(project)
        files = self.pages.files(project)
        if files is None:
            return None
        if serve_set is not None:
            return self._dependent_page(serve_set, files)
        return [self._passthrough_link(project, f) for f in files]

    def _shaded_page(self, serve_set: ServeSet, original: NormalizedName) -> list[Link]:
        inputs = self.dep_inputs(serve_set)
        entry = self.dep_entry(serve_set, inputs)
        source = inputs[original]
        art = next(a for a in entry.artifacts.values()
                   if parse_wheel_filename(a.filename)[0] == serve_set.shaded[original])
        return [Link(
            filename=art.filename,
            url=f"/files/{serve_set.number}/deps/{art.filename}",
            sha256=art.sha256,
            requires_python=source.requires_python,
            yanked=source.yanked,
            metadata=art.metadata_sha256,
            size=art.size,
            upload_time=source.upload_time,
        )]

    def _dependent_page(self, serve_set: ServeSet, files: list[UpFile]) -> list[Link]:
        """Every wheel release, rewritten; sdists are left out (they would install the
        original imports). Hashes are listed for the files already shaded."""
        links = []
        inputs: dict[NormalizedName, UpFile] | None = None
        for f in files:
            if not f.filename.endswith(".whl") or f.sha256 is None:
                continue
            if not self.fits(serve_set, f):
                links.append(self._passthrough_link(_wheel_project(f), f))
                continue
            art = None
            if inputs is None:
                inputs = self.dep_inputs(serve_set)
            entry = (self.dependent_entry(serve_set, f) if self.eager
                     else self.cache.get(self._dependent_key(serve_set, inputs, f)))
            if entry is not None:
                art = entry.artifacts.get(f.filename)
            links.append(Link(
                filename=f.filename,
                url=f"/files/{serve_set.number}/{f.sha256}/{f.filename}",
                sha256=art.sha256 if art else None,
                requires_python=f.requires_python,
                yanked=f.yanked,
                metadata=art.metadata_sha256 if art else True,
                size=art.size if art else None,
                upload_time=f.upload_time,
            ))
        return links

    def fits(self, serve_set: ServeSet, f: UpFile) -> bool:
        """Whether the release's requirements admit the set's pins; one that does not (it
        moved on to a newer version, say) is served as it is upstream."""
        key = (serve_set.number, f.sha256 or "")
        with self._lock:
            known = self._fits.get(key)
        if known is None:
            problems = conflicts(self._metadata(f), dict(serve_set.pins))
            known = not problems
            if problems:
                log.info("set %d: %s is served unchanged: %s", serve_set.number, f.filename,
                         "; ".join(problems))
            with self._lock:
                self._fits[key] = known
        return known

    def _metadata(self, f: UpFile) -> bytes:
        """The release's METADATA: the upstream's PEP 658 file (checked against its hash
        when one is listed), else read from the wheel (fetched into the cache)."""
        if f.metadata:
            data = b"".join(self.upstreams[f.upstream].chunks(f, metadata=True))
            if not isinstance(f.metadata, str) or hashlib.sha256(data).hexdigest() == f.metadata:
                return data
        return wheel_metadata(self._fetch(f))

    def _passthrough_link(self, project: NormalizedName, f: UpFile) -> Link:
        direct = f.source.startswith(("http://", "https://")) and not has_credentials(f.source)
        url = (f.source.split("#", 1)[0] if direct
               else f"/files/up/{f.upstream}/{project}/{f.filename}")
        return Link(f.filename, url, f.sha256, f.requires_python, f.yanked, f.metadata,
                    f.size, f.upload_time)

    # -- shading -----------------------------------------------------------------------
    def dep_inputs(self, serve_set: ServeSet) -> dict[NormalizedName, UpFile]:
        """For each pinned dep, the upstream wheel that suits this interpreter best."""
        chosen = {}
        for name, version in serve_set.pins:
            best: tuple[int, UpFile] | None = None
            for f in self.pages.files(name) or []:
                if not f.filename.endswith(".whl"):
                    continue
                _, v, _, tags = parse_wheel_filename(f.filename)
                rank = min((self._tags.get(t, 1 << 30) for t in tags), default=1 << 30)
                if v == version and rank < (1 << 30) and (best is None or rank < best[0]):
                    best = (rank, f)
            if best is None:
                raise ShadeFailed(f"set {serve_set.number}: no upstream has a wheel of "
                                  f"{name}=={version} for this interpreter")
            chosen[name] = best[1]
        return chosen

    def _dep_key(self, serve_set: ServeSet, inputs: dict[NormalizedName, UpFile]) -> str:
        shas = sorted(f"{f.sha256}" for f in inputs.values())
        return _key("deps", serve_set.digest, *shas)

    def _dependent_key(self, serve_set: ServeSet, inputs: dict[NormalizedName, UpFile],
                       f: UpFile) -> str:
        return _key("dependent", f.sha256 or "", self._dep_key(serve_set, inputs))

    def dep_entry(self, serve_set: ServeSet, inputs: dict[NormalizedName, UpFile]) -> Entry:
        def build(out: Path) -> None:
            self._shade(serve_set, [self._fetch(f) for f in inputs.values()], [], out)

        return self.cache.build(self._dep_key(serve_set, inputs), build)

    def dependent_entry(self, serve_set: ServeSet, f: UpFile) -> Entry:
        inputs = self.dep_inputs(serve_set)

        def build(out: Path) -> None:
            work = out.parent / "work"
            work.mkdir()
            deps = [self._fetch(d) for d in inputs.values()]
            self._shade(serve_set, deps, [self._fetch(f)], work)
            (work / f.filename).rename(out / f.filename)

        return self.cache.build(self._dependent_key(serve_set, inputs, f), build)

    def _fetch(self, f: UpFile) -> Path:
        """The upstream file in the cache, checked against the sha256 its upstream lists."""
        assert f.sha256 is not None
        path = self.cache.input_path(f.sha256, f.filename)
        if path.exists() and sha256_of(path) == f.sha256:
            return path
        self.upstreams[f.upstream].download(f, path)
        return path

    def _shade(self, serve_set: ServeSet, deps: list[Path], dependents: list[Path],
               out: Path) -> None:
        if self.config is None:
            raise ShadeFailed("no config file: nothing to shade")
        command = [sys.executable, "-m", "wheelshade.serve.worker", str(self.config),
                   str(serve_set.number), str(out), "--cache-dir", str(self.cache.root / "pip"),
                   "--digest", serve_set.digest]
        command += [a for d in deps for a in ("--dep", str(d))]
        command += [a for d in dependents for a in ("--dependent", str(d))]
        what = dependents[0].name if dependents else f"set {serve_set.number} deps"
        log.info("shading %s", what)
        start = time.monotonic()
        try:
            proc = subprocess.run(command, capture_output=True, text=True,
                                  timeout=self.shade_timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ShadeFailed(f"shading {what} took over {self.shade_timeout:.0f} s") from None
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
            raise ShadeFailed(f"shading {what} failed: {lines[-1]}")
        log.info("shaded %s in %.2f s", what, time.monotonic() - start)

    # -- files -------------------------------------------------------------------------
    def shaded_file(self, number: int, part: str, filename: str) -> Path | None:
        """``/files/<set>/deps/<name>`` or ``/files/<set>/<input sha256>/<name>``, with an
        optional ``.metadata`` tail; None when no such file is served."""
        serve_set = self.set_by_number(number)
        if serve_set is None:
            return None
        wheel = filename.removesuffix(".metadata")
        if part == "deps":
            entry = self.dep_entry(serve_set, self.dep_inputs(serve_set))
        else:
            project = project_of(wheel)
            if project is None or project not in serve_set.dependents:
                return None
            f = self.pages.by_sha256(project, part)
            if f is None or f.filename != wheel or not self.fits(serve_set, f):
                return None
            entry = self.dependent_entry(serve_set, f)
        if wheel not in entry.artifacts:
            return None
        return entry.path(filename)

    def passthrough(self, number: int, project: NormalizedName, filename: str
                    ) -> tuple[UpFile, Iterator[bytes]] | None:
        """A file of an upstream that the client cannot be sent to directly (a folder, or
        a URL with credentials): found by name in the project's listing, never by a path."""
        if not 0 <= number < len(self.upstreams):
            return None
        metadata = filename.endswith(".metadata")
        f = self.pages.find(project, filename.removesuffix(".metadata"))
        if f is None or f.upstream != number or (metadata and not f.metadata):
            return None
        return f, self.upstreams[number].chunks(f, metadata=metadata)


def _wheel_project(f: UpFile) -> NormalizedName:
    return parse_wheel_filename(f.filename)[0]


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join((__version__, *parts)).encode()).hexdigest()
