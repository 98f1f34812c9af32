"""Project pages in both forms: PEP 503 HTML and PEP 691 JSON, chosen by the Accept header."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from wheelshade.serve.repository import Link

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
#: PEP 700's fields (size, upload-time, versions) are API version 1.1.
API_VERSION = "1.1"
_FORMATS = (JSON, HTML, TEXT_HTML)


def negotiate(accept: str | None, forced: str | None = None) -> str | None:
    """The media type to answer with (PEP 691), or None when the client accepts none.

    ``?format=`` wins, as on PyPI; no Accept header means HTML, as PEP 503 clients expect.
    """
    if forced:
        return forced if forced in _FORMATS else None
    if not accept:
        return TEXT_HTML
    best: tuple[float, int, str] | None = None
    for item in accept.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        candidates = _FORMATS if kind in ("*/*", "application/*") else (
            (TEXT_HTML,) if kind == "text/*" else (kind,))
        for rank, candidate in enumerate(_FORMATS):
            if candidate in candidates and quality > 0:
                score = (quality, -rank, candidate)
                if best is None or score[:2] > best[:2]:
                    best = score
    return best[2] if best else None


def _html(title: str, body: Sequence[str]) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        + "".join(f"{line}<br/>\n" for line in body)
        + "</body>\n</html>\n"
    ).encode()


def index_page(names: Sequence[str], kind: str) -> bytes:
    if kind == JSON:
        doc = {"meta": {"api-version": API_VERSION},
               "projects": [{"name": n} for n in names]}
        return json.dumps(doc).encode()
    return _html("Simple index", [
        f'<a href="{html.escape(n)}/">{html.escape(n)}</a>' for n in names
    ])


def _url(link: Link, base: str) -> str:
    return base + link.url if link.url.startswith("/") else link.url


def project_page(project: str, links: Sequence[Link], versions: Sequence[str], kind: str,
                 base: str) -> bytes:
    """``base`` is the server's root URL (no trailing slash): file URLs are made absolute
    so a page saved or proxied elsewhere still points here."""
    if kind == JSON:
        doc = {
            "meta": {"api-version": API_VERSION},
            "name": project,
            "versions": list(versions),
            "files": [_json_file(link, base) for link in links],
        }
        return json.dumps(doc).encode()
    return _html(f"Links for {project}", [_anchor(link, base) for link in links])


def _json_file(link: Link, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "filename": link.filename,
        "url": _url(link, base),
        "hashes": {"sha256": link.sha256} if link.sha256 else {},
    }
    if link.requires_python:
        out["requires-python"] = link.requires_python
    if link.metadata:
        meta = {"sha256": link.metadata} if isinstance(link.metadata, str) else True
        out["core-metadata"] = meta
        out["dist-info-metadata"] = meta  # PEP 714: the old key too, for older clients
    if link.yanked:
        out["yanked"] = link.yanked
    if link.size is not None:
        out["size"] = link.size
    if link.upload_time:
        out["upload-time"] = link.upload_time
    return out


def _anchor(link: Link, base: str) -> str:
    href = _url(link, base) + (f"#sha256={link.sha256}" if link.sha256 else "")
    attrs = [f'href="{html.escape(href)}"']
    if link.requires_python:
        attrs.append(f'data-requires-python="{html.escape(link.requires_python)}"')
    if link.metadata:
        value = f"sha256={link.metadata}" if isinstance(link.metadata, str) else "true"
        attrs.append(f'data-core-metadata="{value}"')
        attrs.append(f'data-dist-info-metadata="{value}"')
    if link.yanked:
        reason = link.yanked if isinstance(link.yanked, str) else ""
        attrs.append(f'data-yanked="{html.escape(reason)}"')
    return f"<a {' '.join(attrs)}>{html.escape(link.filename)}</a>"
