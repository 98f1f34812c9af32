"""``wheelshade rewrite``: apply a shading map to a source tree in place (packagers' postPatch)."""

from __future__ import annotations

import configparser
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wheelshade.errors import RewriteError, UsageError
from wheelshade.findings import Finding
from wheelshade.rewrite import StringRules, rewrite_file
from wheelshade.rewrite.bound import set_attributes
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import module_names
from wheelshade.wheel.metadata import PROVENANCE_FILE, rewrite_object_ref

#: Folders never descended into: VCS data, virtual environments, caches, build output.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "__pycache__",
        "build",
        "dist",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
    }
)


@dataclass(frozen=True)
class ShadeMap:
    """What to rename: import names, and (from shaded wheels) module lists and dist names."""

    imports: Mapping[str, str]
    modules: frozenset[str] = frozenset()
    dists: Mapping[str, str] = field(default_factory=dict)
    #: Module -> names bound at its module level (under original names); None if unknown.
    attributes: Mapping[str, frozenset[str]] | None = None

    def rules(self) -> StringRules:
        return StringRules(self.imports, self.modules, self.dists, self.attributes)


def parse_maps(items: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        original, sep, shaded = item.partition("=")
        if not sep or not original.isidentifier() or not shaded.isidentifier():
            raise UsageError(f"--map {item!r}: expected ORIGINAL=SHADED, two import names")
        mapping[original] = shaded
    return mapping


def map_from_wheels(wheels: Sequence[Path]) -> ShadeMap:
    """The map recorded in shaded wheels' ``wheelshade.json``, with their module lists."""
    imports: dict[str, str] = {}
    modules: set[str] = set()
    dists: dict[str, str] = {}
    shaded: list[tuple[Path, str]] = []
    for path in wheels:
        with WheelReader(path) as reader:
            member = f"{reader.dist_info}/{PROVENANCE_FILE}"
            names = [m.name for m in reader.members]
            if member not in names:
                raise UsageError(f"{path}: not a shaded wheel (no {PROVENANCE_FILE})")
            doc = json.loads(reader.read(member))
        mapping = dict(doc["mapping"])
        imports.update(mapping)
        back = {shaded: original for original, shaded in mapping.items()}
        data_dir = reader.dist_info[: -len(".dist-info")] + ".data"
        for module in module_names(names, reader.dist_info, data_dir):
            top, dot, rest = module.partition(".")
            if top in back:
                modules.add(back[top] + dot + rest)
        dists[doc["original"]["name"].lower().replace("_", "-").replace(".", "-")] = doc[
            "distribution"
        ]
        shaded.append((path, str(doc["original"]["sha256"])))
    back = {s: o for o, s in imports.items()}
    attributes: dict[str, frozenset[str]] = {}
    for module, bound in set_attributes(shaded).items():
        top, dot, rest = module.partition(".")
        if top in back:
            attributes[back[top] + dot + rest] = bound
    return ShadeMap(imports, frozenset(modules), dists, attributes)


@dataclass(frozen=True)
class TreeResult:
    changed: tuple[Path, ...]
    findings: tuple[Finding, ...]


def _files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".py", ".pyi")) or name in ("pyproject.toml", "setup.cfg"):
                yield Path(folder) / name


def _entry_point_values(path: Path, data: bytes) -> list[str]:
    """Object references in a pyproject.toml's or setup.cfg's entry-point tables."""
    text = data.decode("utf-8")
    if path.name == "pyproject.toml":
        project = tomllib.loads(text).get("project", {})
        groups = [
            project.get("scripts", {}),
            project.get("gui-scripts", {}),
            *project.get("entry-points", {}).values(),
        ]
        return [v for group in groups for v in group.values() if isinstance(v, str)]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    if not parser.has_section("options.entry_points"):
        return []
    values = []
    for value in parser["options.entry_points"].values():
        values += [line.split("=", 1)[1].strip() for line in value.splitlines() if "=" in line]
    return values


def _rewrite_config(path: Path, data: bytes, imports: Mapping[str, str]) -> bytes | None:
    """Point entry points at shaded modules, changing only the referenced values' text."""
    try:
        values = _entry_point_values(path, data)
    except (tomllib.TOMLDecodeError, configparser.Error, UnicodeDecodeError) as exc:
        message = f"cannot read entry points ({exc})".splitlines()[0]
        raise RewriteError(message, path=str(path)) from None
    text = data.decode("utf-8")
    new = text
    for value in sorted(set(values), key=len, reverse=True):
        shaded = rewrite_object_ref(value, imports)
        if shaded != value:
            new = new.replace(value, shaded)
    return new.encode("utf-8") if new != text else None


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rewrite_tree(root: Path, shade_map: ShadeMap, *, check: bool = False) -> TreeResult:
    """Rewrite every source and config file under ``root``; with ``check``, write nothing.

    Every file is rewritten in memory first; only when all succeed are the changed ones
    written (each atomically), so a file that cannot be parsed leaves the tree untouched.
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    rules = shade_map.rules()
    updates: dict[Path, bytes] = {}
    findings: list[Finding] = []
    for path in _files(root):
        data = path.read_bytes()
        where = str(path.relative_to(root))
        if path.suffix in (".py", ".pyi"):
            result = rewrite_file(data, shade_map.imports, path=where, strings=rules)
            findings += result.findings
            new = result.new
        else:
            new = _rewrite_config(path, data, shade_map.imports)
        if new is not None:
            updates[path] = new
    if not check:
        for path, data in updates.items():
            _write_atomically(path, data)
    return TreeResult(tuple(sorted(updates)), tuple(findings))
