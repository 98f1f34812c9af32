"""Reading and editing dist-info files: METADATA, entry_points.txt, top_level.txt, provenance."""

from __future__ import annotations

import configparser
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
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


#: A line that belongs to the header block, as the ``email`` parser (``compat32``, which
#: ``packaging.metadata`` and so pip use) decides it: a field, a continuation, or an mbox
#: ``From `` line. Any other line, the empty separator first of all, ends the block; a
#: whitespace-only line is a continuation.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")


@dataclass(frozen=True)
class HeaderField:
    """One header field: its name as written and the lines it spans, continuations included."""

    key: str
    start: int
    end: int


def header_fields(lines: Sequence[bytes]) -> list[HeaderField]:
    """The header fields of METADATA split into lines (``splitlines(keepends=True)``).

    The one reading of the header block, shared by the reader and the editor, following
    ``email.feedparser`` line for line so that what pip reads is what wheelshade edits.
    """
    fields: list[HeaderField] = []
    current: HeaderField | None = None
    for i, line in enumerate(lines):
        if not _HEADER_LINE.match(line):
            break
        if line[:1] in (b" ", b"\t"):
            if current is not None:  # a continuation with no field before it is dropped
                current = fields[-1] = HeaderField(current.key, current.start, i + 1)
            continue
        current = None
        if line.startswith(b"From "):
            continue  # an mbox envelope line, not a field
        key = line[: line.index(b":")]
        if key:
            current = HeaderField(key.decode("ascii"), i, i + 1)
            fields.append(current)
    return fields


def _value(lines: Sequence[bytes], field: HeaderField) -> str:
    text = b"".join(lines[field.start : field.end]).partition(b":")[2]
    return " ".join(text.decode("utf-8").split())


def read_metadata(data: bytes, *, where: str) -> CoreMetadata:
    """Parse METADATA, checking the fields wheelshade relies on; every problem is reported.

    Name, Version and Requires-Dist come from :func:`header_fields`, the reading the editor
    uses; ``packaging`` reads them too, and any disagreement is refused, never shaded.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WheelFormatError(f"METADATA is not UTF-8 ({exc.reason})", path=where) from None
    lines = data.splitlines(keepends=True)
    values: dict[str, list[str]] = {}
    for field in header_fields(lines):
        values.setdefault(field.key.lower(), []).append(_value(lines, field))
    raw, _ = parse_email(text)
    problems: list[str] = []
    names = values.get("name", [])
    name = names[0] if len(names) == 1 else None
    if not name:
        problems.append("METADATA has no Name")
    version: Version | None = None
    versions = values.get("version", [])
    try:
        version = Version(versions[0] if len(versions) == 1 else "")
    except InvalidVersion:
        problems.append(f"METADATA has an invalid Version {', '.join(versions)!r}")
    requires: list[Requirement] = []
    for line in values.get("requires-dist", []):
        try:
            requires.append(Requirement(line))
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "unparsable"
            problems.append(f"invalid Requires-Dist {line!r} ({reason})")
    seen = [" ".join(r.split()) for r in raw.get("requires_dist", [])]
    if not problems and (
        seen != values.get("requires-dist", []) or " ".join(raw.get("name", "").split()) != name
    ):
        problems.append(
            "METADATA's header block reads differently to packaging and to wheelshade's "
            "editor (Name or Requires-Dist); refusing to rewrite it"
        )
    if problems or name is None or version is None:
        raise WheelFormatError("; ".join(problems), path=where)
    return CoreMetadata(name, version, tuple(requires))


def _line_end(line: bytes) -> bytes:
    for eol in (b"\r\n", b"\n", b"\r"):
        if line.endswith(eol):
            return eol
    return b""


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
    for field in header_fields(lines):
        out.extend(lines[pos : field.start])
        pos = field.end
        text = b"".join(lines[field.start : field.end])
        eol = _line_end(lines[field.end - 1])
        lowered = field.key.lower()
        if lowered == "name" and name is not None:
            out.append(b"Name: " + name.encode() + eol)
        elif lowered == "requires-dist":
            new = requirement(Requirement(_value(lines, field)))
            out.append(b"Requires-Dist: " + str(new).encode() + eol if new else text)
        else:
            out.append(text)
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


def read_entry_points(data: bytes, *, where: str) -> configparser.ConfigParser:
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
    return parser


def entry_point_groups(data: bytes, *, where: str) -> tuple[str, ...]:
    """The groups (section names) of entry_points.txt, in file order."""
    return tuple(read_entry_points(data, where=where).sections())


def edit_entry_points(
    data: bytes,
    mapping: Mapping[str, str],
    *,
    drop_scripts: bool,
    where: str,
    groups: Mapping[str, str] | None = None,
) -> tuple[bytes, tuple[str, ...]]:
    """Point entry points at shaded modules; optionally leave out script groups.

    ``groups`` renames sections: a group the shaded code now loads under its shaded name.
    Returns the new file and the names of the scripts left out.
    """
    parser = read_entry_points(data, where=where)
    dropped: list[str] = []
    out = io.StringIO()
    for group in parser.sections():
        if drop_scripts and group in SCRIPT_GROUPS:
            dropped.extend(parser[group])
            continue
        out.write(f"[{(groups or {}).get(group, group)}]\n")
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
