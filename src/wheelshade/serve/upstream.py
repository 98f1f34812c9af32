"""The indexes and wheel folders ``serve`` reads from: project pages, files, hash checks."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from pypi_simple import NoSuchProjectError, PyPISimple

from wheelshade.errors import WheelshadeError

CHUNK = 1 << 16


class UpstreamError(WheelshadeError):
    """An upstream could not be read, or served a file that does not match its hash."""


@dataclass(frozen=True)
class UpFile:
    """One file an upstream lists for a project, as its project page describes it."""

    filename: str
    source: str  # an absolute URL (index) or path (folder)
    sha256: str | None
    requires_python: str | None
    yanked: bool | str  # False, True, or the reason
    metadata: bool | str  # a PEP 658 file: False, True, or its sha256
    size: int | None
    upload_time: str | None
    upstream: int  # index into the server's upstream list


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``, for
    logs, pages and errors."""
    return _USERINFO.sub("***@", text)


def has_credentials(url: str) -> bool:
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None


def iso(timestamp: datetime.datetime | float) -> str:
    """PEP 700's upload-time form: UTC, ISO 8601, ``Z``."""
    if not isinstance(timestamp, datetime.datetime):
        timestamp = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    stamp = timestamp.astimezone(datetime.UTC).replace(tzinfo=None)
    return stamp.isoformat(timespec="microseconds") + "Z"


def project_of(filename: str) -> NormalizedName | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[0]
        return parse_sdist_filename(filename)[0]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def wheel_metadata(path: Path) -> bytes:
    """The METADATA member of a wheel's top-level ``.dist-info`` folder."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist()
                 if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(names) != 1:
            raise UpstreamError(f"{path.name}: expected one .dist-info/METADATA, "
                                f"found {len(names)}")
        return zf.read(names[0])


class Upstream:
    """What the server needs from an upstream; see IndexUpstream and FolderUpstream."""

    number: int
    label: str  # for logs and pages: never holds credentials

    def files(self, project: NormalizedName) -> list[UpFile] | None:
        raise NotImplementedError

    def projects(self) -> list[str]:
        raise NotImplementedError

    def chunks(self, file: UpFile, metadata: bool = False) -> Iterator[bytes]:
        raise NotImplementedError

    def download(self, file: UpFile, dest: Path) -> None:
        """Copy ``file`` to ``dest`` (atomically) after checking it against its sha256."""
        if file.sha256 is None:
            raise UpstreamError(f"{file.filename}: {self.label} lists no sha256 for it; "
                                "serve shades only files it can check")
        digest = hashlib.sha256()
        part = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            with part.open("wb") as out:
                for chunk in self.chunks(file):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != file.sha256:
                raise UpstreamError(f"{file.filename}: sha256 {digest.hexdigest()} does not "
                                    f"match the {file.sha256} that {self.label} lists")
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)


class IndexUpstream(Upstream):
    """A PEP 503/691 index, read with pypi-simple (JSON preferred, HTML understood)."""

    def __init__(self, number: int, url: str, timeout: float = 30.0) -> None:
        self.number = number
        self.url = url if url.endswith("/") else url + "/"
        self.label = redact(self.url)
        self.timeout = timeout
        self._local = threading.local()

    def _client(self) -> PyPISimple:
        # requests sessions are not thread-safe: one per worker thread.
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = PyPISimple(self.url, session=requests.Session())
        return client

    def files(self, project: NormalizedName) -> list[UpFile] | None:
        try:
            page = self._client().get_project_page(project, timeout=self.timeout)
        except NoSuchProjectError:
            return None
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError(f"{self.label}: cannot read the page of {project}: "
                                f"{redact(str(exc))}") from None
        return [
            UpFile(
                filename=p.filename,
                source=p.url,
                sha256=p.digests.get("sha256"),
                requires_python=p.requires_python,
                yanked=(p.yanked_reason or True) if p.is_yanked else False,
                metadata=(p.metadata_digests or {}).get("sha256") or bool(p.has_metadata),
                size=p.size,
                upload_time=iso(p.upload_time) if p.upload_time else None,
                upstream=self.number,
            )
            for p in page.packages
        ]

    def projects(self) -> list[str]:
        try:
            return list(self._client().get_index_page(timeout=self.timeout).projects)
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError(f"{self.label}: cannot read the index: "
                                f"{redact(str(exc))}") from None

    def chunks(self, file: UpFile, metadata: bool = False) -> Iterator[bytes]:
        url = file.source.split("#", 1)[0] + (".metadata" if metadata else "")
        try:
            with self._client().s.get(url, stream=True, timeout=self.timeout) as resp:
                resp.raise_for_status()
                yield from resp.iter_content(CHUNK)
        except requests.RequestException as exc:
            raise UpstreamError(f"{self.label}: cannot fetch {file.filename}: "
                                f"{redact(str(exc))}") from None


class FolderUpstream(Upstream):
    """A local folder of wheels and sdists: upload time is the file's mtime."""

    def __init__(self, number: int, folder: Path) -> None:
        self.number = number
        self.folder = folder.resolve()
        self.label = str(self.folder)
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def _sha256(self, path: Path, stat: os.stat_result) -> str:
        key = (path.name, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = _hash_file(path)
            with self._lock:
                self._hashes[key] = known
        return known

    def _listing(self) -> dict[NormalizedName, list[Path]]:
        out: dict[NormalizedName, list[Path]] = {}
        for path in sorted(self.folder.iterdir()):
            name = project_of(path.name) if path.is_file() else None
            if name is not None:
                out.setdefault(name, []).append(path)
        return out

    def files(self, project: NormalizedName) -> list[UpFile] | None:
        paths = self._listing().get(project)
        if paths is None:
            return None
        out = []
        for path in paths:
            stat = path.stat()
            out.append(UpFile(
                filename=path.name,
                source=str(path),
                sha256=self._sha256(path, stat),
                requires_python=None,
                yanked=False,
                metadata=path.name.endswith(".whl"),
                size=stat.st_size,
                upload_time=iso(stat.st_mtime),
                upstream=self.number,
            ))
        return out

    def projects(self) -> list[str]:
        return list(self._listing())

    def chunks(self, file: UpFile, metadata: bool = False) -> Iterator[bytes]:
        path = Path(file.source)
        if path.parent != self.folder:  # the listing made it; never a client's path
            raise UpstreamError(f"{file.filename}: not in {self.label}")
        if metadata:
            yield wheel_metadata(path)
            return
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_upstream(number: int, spec: str) -> Upstream:
    if spec.startswith(("http://", "https://")):
        return IndexUpstream(number, spec)
    path = Path(spec.removeprefix("file://"))
    if not path.is_dir():
        raise UpstreamError(f"upstream {spec!r} is neither an http(s) index URL nor a folder")
    return FolderUpstream(number, path)


class PageCache:
    """Upstream project pages kept for ``ttl`` seconds, so a burst of requests reads once."""

    def __init__(self, upstreams: list[Upstream], ttl: float) -> None:
        self.upstreams = upstreams
        self.ttl = ttl
        self._pages: dict[NormalizedName, tuple[float, list[UpFile] | None]] = {}
        self._names: dict[int, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def projects(self, up: Upstream) -> list[str]:
        """The upstream's project list, reused for ``ttl`` (PyPI's has 700,000 names)."""
        now = time.monotonic()
        with self._lock:
            hit = self._names.get(up.number)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        names = up.projects()
        with self._lock:
            self._names[up.number] = (now, names)
        return names

    def files(self, project: NormalizedName) -> list[UpFile] | None:
        """The first upstream that has the project wins (no mixing: no dependency confusion)."""
        now = time.monotonic()
        with self._lock:
            hit = self._pages.get(project)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = None
        for up in self.upstreams:
            found = up.files(project)
            if found is not None:
                break
        with self._lock:
            self._pages[project] = (now, found)
        return found

    def find(self, project: NormalizedName, filename: str) -> UpFile | None:
        return next((f for f in self.files(project) or [] if f.filename == filename), None)

    def by_sha256(self, project: NormalizedName, sha256: str) -> UpFile | None:
        return next((f for f in self.files(project) or [] if f.sha256 == sha256), None)


def canonical(name: str) -> NormalizedName:
    return canonicalize_name(name)
