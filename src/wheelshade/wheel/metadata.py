"""Reading and editing dist-info files: METADATA, entry_points.txt, top_level.txt, provenance."""

from __future__ import annotations

import configparser
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelshade.errors import WheelFormatError
from wheelshade.naming import namespace_heads, rename_module

SCRIPT_GROUPS = ("console_scripts", "gui_scripts")
PROVENANCE_FILE = "wheelshade.json"
PROVENANCE_SCHEMA = 1


@dataclass(frozen=True)
class CoreMetadata:
    name: str
    version: Version
    requires: tuple[Requirement, ...]

    @property
    def normalized(self) -> NormalizedName:
        return canonicalize_name(self.name)


def read_metadata(data: bytes, *, where: str) -> CoreMetadata:
    """Parse METADATA, checking the fields wheelshade relies on; every problem is reported."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WheelFormatError(f"METADATA is not UTF-8 ({exc.reason})", path=where) from None
    raw, _ = parse_email(text)
    problems: list[str] = []
    name = raw.get("name")
    if not name:
        problems.append("METADATA has no Name")
    version: Version | None = None
    try:
        version = Version(raw.get("version", ""))
    except InvalidVersion:
        problems.append(f"METADATA has an invalid Version {raw.get('version')!r}")
    requires: list[Requirement] = []
    for line in raw.get("requires_dist", []):
        try:
            requires.append(Requirement(line))
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "unparsable"
            problems.append(f"invalid Requires-Dist {line!r} ({reason})")
    if problems or name is None or version is None:
        raise WheelFormatError("; ".join(problems), path=where)
    return CoreMetadata(name, version, tuple(requires))


def _header_fields(lines: list[bytes]) -> list[tuple[int, int]]:
    """(start, end) line spans of each header field, continuation lines included."""
    spans: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if line.strip() == b"":
            break
        if line[:1] in (b" ", b"\t") and spans:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def edit_metadata(
    data: bytes,
    *,
    name: str | None,
    requirement: Callable[[Requirement], Requirement | None],
) -> bytes:
    """Set ``Name`` and map each ``Requires-Dist``; every other byte is kept.

    The header block is edited line by line rather than round-tripped through ``email``,
    so the long description and the header folding of untouched fields stay identical.
    """
    lines = data.splitlines(keepends=True)
    out: list[bytes] = []
    pos = 0
    for start, end in _header_fields(lines):
        out.extend(lines[pos:start])
        pos = end
        field = b"".join(lines[start:end])
        key, _, value = field.partition(b":")
        eol = b"\r\n" if field.endswith(b"\r\n") else b"\n"
        lowered = key.strip().lower()
        if lowered == b"name" and name is not None:
            out.append(b"Name: " + name.encode() + eol)
        elif lowered == b"requires-dist":
            text = " ".join(value.decode("utf-8").split())
            new = requirement(Requirement(text))
            out.append(b"Requires-Dist: " + str(new).encode() + eol if new else field)
        else:
            out.append(field)
    out.extend(lines[pos:])
    return b"".join(out)


def rewrite_object_ref(value: str, mapping: Mapping[str, str]) -> str:
    """Entry-point object reference: ``flask.cli:main [x]`` -> ``<shaded>.cli:main [x]``."""
    head = value.lstrip()
    module = head.split(":", 1)[0].split("[", 1)[0].strip()
    renamed = rename_module(module, mapping)
    if renamed is None:
        return value
    indent = value[: len(value) - len(head)]
    return indent + renamed + head[len(module) :]


def edit_entry_points(
    data: bytes, mapping: Mapping[str, str], *, drop_scripts: bool, where: str
) -> tuple[bytes, tuple[str, ...]]:
    """Point entry points at shaded modules; optionally leave out script groups.

    Returns the new file and the names of the scripts left out.
    """
    # A [DEFAULT] group is a group like any other here, not defaults for every group: give
    # the parser's defaults section a name no header line can spell.
    parser = configparser.ConfigParser(
        delimiters=("=",), interpolation=None, strict=False, default_section="\n"
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(data.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        msg = f"entry_points.txt is not a valid INI file ({exc})".splitlines()[0]
        raise WheelFormatError(msg, path=where) from None
    dropped: list[str] = []
    out = io.StringIO()
    for group in parser.sections():
        if drop_scripts and group in SCRIPT_GROUPS:
            dropped.extend(parser[group])
            continue
        out.write(f"[{group}]\n")
        for key, value in parser[group].items():
            # A value continued over several lines stays continued (indented) when written.
            value = rewrite_object_ref(value, mapping).replace("\n", "\n    ")
            out.write(f"{key} = {value}\n")
        out.write("\n")
    return out.getvalue().encode("utf-8"), tuple(dropped)


def edit_top_level_txt(data: bytes, mapping: Mapping[str, str]) -> bytes:
    lines = data.decode("utf-8", "replace").splitlines()
    new = []
    for line in lines:
        top, dot, rest = line.strip().partition("/")
        heads = namespace_heads(mapping)  # a namespace's portions moved to a shaded one
        new.append(mapping.get(top, heads.get(top, top)) + dot + rest if top else line)
    return "".join(f"{line}\n" for line in new).encode("utf-8")


@dataclass(frozen=True)
class Provenance:
    """What ``<dist-info>/wheelshade.json`` records about a shaded distribution."""

    original_name: str
    original_version: str
    source_sha256: str
    distribution: str
    mapping: Mapping[str, str]
    shading_set: Mapping[str, str]
    tool_version: str

    def to_json(self) -> bytes:
        doc = {
            "schema": PROVENANCE_SCHEMA,
            "tool": {"name": "wheelshade", "version": self.tool_version},
            "original": {
                "name": self.original_name,
                "version": self.original_version,
                "sha256": self.source_sha256,
            },
            "distribution": self.distribution,
            "mapping": dict(sorted(self.mapping.items())),
            "shading_set": dict(sorted(self.shading_set.items())),
        }
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
