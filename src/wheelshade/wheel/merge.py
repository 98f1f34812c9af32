"""Merging wheels into one: METADATA header edits, entry points, license files, WHEEL."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence

from wheelshade.wheel.metadata import SCRIPT_GROUPS, header_fields, read_entry_points

#: Files in a dist-info folder that carry license or notice text (older wheels put them at
#: the folder's top, Metadata 2.4 under ``licenses/``).
_LICENSE_NAME = re.compile(r"(?i)^(licen[cs]e|copying|notice|authors|copyright)([._-].*)?$")


def header_values(data: bytes, key: str) -> list[str]:
    """Every value of one METADATA header field (continuation lines joined)."""
    lines = data.splitlines(keepends=True)
    found = []
    for start, end in ((f.start, f.end) for f in header_fields(lines)):
        field = b"".join(lines[start:end]).decode("utf-8", "replace")
        name, _, value = field.partition(":")
        if name.strip().lower() == key.lower():
            found.append(" ".join(value.split()))
    return found


def edit_headers(
    data: bytes,
    *,
    drop: Callable[[str, str], bool],
    replace: dict[str, str],
    add: Sequence[tuple[str, str]],
) -> bytes:
    """METADATA with fields ``drop(key, value)`` says removed, ``replace``'s keys set in place
    (or added), and ``add`` appended to the header; the body and other fields keep their bytes.
    """
    lines = data.splitlines(keepends=True)
    spans = [(f.start, f.end) for f in header_fields(lines)]
    out: list[bytes] = []
    pending = {k.lower(): (k, v) for k, v in replace.items()}
    for start, end in spans:
        field = b"".join(lines[start:end])
        key, _, value = field.decode("utf-8", "replace").partition(":")
        lowered = key.strip().lower()
        if lowered in pending:
            name, new = pending.pop(lowered)
            out.append(f"{name}: {new}\n".encode())
        elif not drop(lowered, " ".join(value.split())):
            out.append(field if field.endswith(b"\n") else field + b"\n")
    out.extend(f"{k}: {v}\n".encode() for k, v in [*pending.values(), *add])
    rest = lines[spans[-1][1] :] if spans else lines
    return b"".join(out) + b"".join(rest)


def merge_entry_points(
    parts: Iterable[tuple[str, bytes | None, bool]],
) -> tuple[bytes, list[str], list[str]]:
    """One entry_points.txt from several, the first part's entries winning a clash.

    ``parts`` are (label, file or None, whether its scripts are left out). Returns the file,
    the scripts left out (``label: name``) and the clashes left out.
    """
    groups: dict[str, dict[str, str]] = {}
    dropped: list[str] = []
    clashes: list[str] = []
    for label, data, drop_scripts in parts:
        if data is None:
            continue
        parser = read_entry_points(data, where=f"{label}: entry_points.txt")
        for group in parser.sections():
            for key, value in parser[group].items():
                if drop_scripts and group in SCRIPT_GROUPS:
                    dropped.append(f"{label}: {key}")
                elif key in groups.setdefault(group, {}):
                    clashes.append(f"{label}: [{group}] {key}")
                else:
                    groups[group][key] = value.replace("\n", "\n    ")
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in groups.items()
        if entries
    )
    return text.encode("utf-8"), dropped, clashes


def license_members(members: Iterable[str], dist_info: str, declared: Iterable[str]) -> list[str]:
    """The dist-info members that are license files: declared by ``License-File`` (found under
    ``licenses/`` or at the folder's top), everything under ``licenses/``, and files named
    like a license at the top. Paths are relative to the dist-info folder."""
    inside = {m[len(dist_info) + 1 :] for m in members if m.startswith(dist_info + "/")}
    found = {p for p in inside if p.startswith("licenses/")}
    found |= {p for p in inside if "/" not in p and _LICENSE_NAME.match(p)}
    for path in declared:
        found |= {p for p in (f"licenses/{path}", path) if p in inside}
    return sorted(found)


def license_target(path: str) -> str:
    """Where a license file of a part goes below ``licenses/<part>/``."""
    return path.removeprefix("licenses/")


def wheel_file(tags: Sequence[str], *, purelib: bool, generator: str, build: str = "") -> bytes:
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: {generator}",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
        *(f"Tag: {tag}" for tag in tags),
    ]
    if build:
        lines.append(f"Build: {build}")
    return ("\n".join(lines) + "\n\n").encode()


def data_target(name: str, data_dir: str, host_data_dir: str) -> str:
    """A ``<part>.data/<scheme>/...`` member moved into the bundle's own ``.data`` folder."""
    return posixpath.join(host_data_dir, name[len(data_dir) + 1 :])
