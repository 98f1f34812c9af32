"""Declarative configuration: ``[tool.wheelshade]`` in pyproject.toml, or a wheelshade.toml."""

from __future__ import annotations

import glob
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from wheelshade.errors import UsageError
from wheelshade.options import ShadeOptions
from wheelshade.resolve.fetch import IndexOptions, Target
from wheelshade.shadeset import ShadeSet

CONFIG_FILES = ("wheelshade.toml", "pyproject.toml")

#: Keys a set may have (also allowed at the top level, as defaults for every set).
_SET_KEYS = {
    "name": str,
    "deps": list,
    "dependents": list,
    "out-dir": str,
    "suffix": str,
    "drop": list,
    "keep-scripts": bool,
    "keep-pth": bool,
    "strict": bool,
    "with-deps": bool,
    "target-requirements": str,
    "target-env": str,
    "uploaded-prior-to": str,
    "find-links": list,
    "index-url": str,
    "extra-index-url": list,
    "no-index": bool,
    "cache-dir": str,
    "naming": str,
    "on-unparsable": str,
    "python-version": str,
    "prefer-python": bool,
    "platform": list,
    "load-check": bool,
    "bundle": bool,
}
_TOP_ONLY = {"set": list, "jobs": int, "fail-fast": bool}


def find_config(cwd: Path) -> Path | None:
    """``wheelshade.toml`` if present, else a pyproject.toml that has ``[tool.wheelshade]``."""
    for name in CONFIG_FILES:
        path = cwd / name
        if path.is_file() and (name != "pyproject.toml" or _table(path) is not None):
            return path
    return None


def _table(path: Path) -> dict[str, Any] | None:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable TOML file ({exc})") from None
    if path.name == "pyproject.toml":
        table = doc.get("tool", {}).get("wheelshade")
        return table if isinstance(table, dict) else None
    return doc


def _check(table: Mapping[str, Any], where: str, allowed: Mapping[str, type]) -> list[str]:
    problems = []
    for key, value in table.items():
        kind = allowed.get(key)
        if kind is None:
            problems.append(f"{where}: unknown key {key!r}")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{where}: {key!r} must be a {kind.__name__}")
    return problems


def _set_from(table: Mapping[str, Any], base: Path) -> ShadeSet:
    def path(key: str) -> Path | None:
        value = table.get(key)
        return (base / value) if value is not None else None

    dependents: list[Path] = []
    for pattern in table.get("dependents", []):
        matches = sorted(glob.glob(str(base / pattern)))
        if not matches:
            raise UsageError(f"dependents pattern {pattern!r} matches no file (relative to {base})")
        dependents.extend(Path(m) for m in matches)
    deps = tuple(
        str(base / d) if str(d).endswith(".whl") else str(d) for d in table.get("deps", [])
    )
    return ShadeSet(
        deps=deps,
        dependents=tuple(dependents),
        name=table.get("name", ""),
        options=ShadeOptions(
            out_dir=path("out-dir") or base / "wheelhouse",
            suffix=table.get("suffix"),
            drop=tuple(table.get("drop", [])),
            keep_scripts=table.get("keep-scripts", False),
            keep_pth=table.get("keep-pth", False),
            strict=table.get("strict", False),
            with_deps=table.get("with-deps", False),
            target_requirements=path("target-requirements"),
            target_env=table.get("target-env"),
            uploaded_prior_to=table.get("uploaded-prior-to"),
            index=IndexOptions(
                find_links=tuple(
                    str(base / f) if not str(f).startswith(("http:", "https:", "file:")) else f
                    for f in table.get("find-links", [])
                ),
                index_url=table.get("index-url"),
                extra_index_urls=tuple(table.get("extra-index-url", [])),
                no_index=table.get("no-index", False),
            ),
            cache_dir=path("cache-dir"),
            naming=table.get("naming", "auto"),
            keep_unparsable=_on_unparsable(table.get("on-unparsable", "fail")),
            target=Target(table.get("python-version"), tuple(table.get("platform", []))),
            prefer_python=table.get("prefer-python", False),
            load_check=table.get("load-check", True),
            bundle=table.get("bundle", False),
        ),
    )


def _on_unparsable(value: str) -> bool:
    if value not in ("fail", "keep"):
        raise UsageError(f"on-unparsable must be 'fail' or 'keep', not {value!r}")
    return value == "keep"


def load_config(path: Path) -> tuple[list[ShadeSet], dict[str, Any]]:
    """The sets a config file declares, and its top-level batch settings (jobs, fail-fast).

    Top-level set keys are defaults for every ``[[set]]``; without any ``[[set]]`` table
    the top level itself is the one set. Every problem is reported at once.
    """
    table = _table(path)
    if table is None:
        raise UsageError(f"{path}: has no [tool.wheelshade] table")
    where = f"{path} [tool.wheelshade]" if path.name == "pyproject.toml" else str(path)
    problems = _check(table, where, {**_SET_KEYS, **_TOP_ONLY})
    defaults = {k: v for k, v in table.items() if k in _SET_KEYS}
    raw_sets = table.get("set", [{}]) if isinstance(table.get("set", []), list) else []
    for i, raw in enumerate(raw_sets):
        if not isinstance(raw, dict):
            problems.append(f"{where}: set {i + 1} must be a table")
            continue
        problems += _check(raw, f"{where} set {i + 1}", _SET_KEYS)
    if problems:
        raise UsageError("; ".join(problems), hint="see docs/config.md")
    base = path.parent
    sets = []
    for i, raw in enumerate(raw_sets):
        merged = {**defaults, **raw}
        if not merged.get("deps"):
            raise UsageError(f"{where}: set {i + 1} has no deps", hint="see docs/config.md")
        try:
            sets.append(_set_from(merged, base))
        except UsageError as exc:
            raise UsageError(
                f"{where} set {i + 1}: {exc.message}", hint="see docs/config.md"
            ) from None
    settings: dict[str, Any] = {k: table[k] for k in ("jobs", "fail-fast") if k in table}
    return sets, settings


def top_level_set(path: Path) -> ShadeSet:
    """The file's top-level settings alone, as the base for a set given on the command line."""
    table = _table(path) or {}
    where = f"{path} [tool.wheelshade]" if path.name == "pyproject.toml" else str(path)
    problems = _check(table, where, {**_SET_KEYS, **_TOP_ONLY})
    if problems:
        raise UsageError("; ".join(problems), hint="see docs/config.md")
    defaults = {
        k: v for k, v in table.items() if k in _SET_KEYS and k not in ("deps", "dependents")
    }
    try:
        return _set_from(defaults, path.parent)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}", hint="see docs/config.md") from None


def override(sets: list[ShadeSet], **changes: Any) -> list[ShadeSet]:
    """Command-line flags win over the file: apply every given (non-None) flag to each set."""
    given = {k: v for k, v in changes.items() if v is not None}
    return [replace(s, options=replace(s.options, **given)) for s in sets]


def load_serve_sets(path: Path) -> list[tuple[ShadeSet, tuple[str, ...]]]:
    """For ``wheelshade serve``: each set with its pinned deps, and its ``dependents`` read
    as upstream project names (not wheel globs, as ``shade`` reads them)."""
    table = _table(path)
    if table is None:
        raise UsageError(f"{path}: has no [tool.wheelshade] table")
    where = f"{path} [tool.wheelshade]" if path.name == "pyproject.toml" else str(path)
    problems = _check(table, where, {**_SET_KEYS, **_TOP_ONLY})
    defaults = {k: v for k, v in table.items() if k in _SET_KEYS}
    raw_sets = table.get("set", [{}]) if isinstance(table.get("set", []), list) else []
    out = []
    for i, raw in enumerate(raw_sets):
        if not isinstance(raw, dict):
            problems.append(f"{where}: set {i + 1} must be a table")
            continue
        problems += _check(raw, f"{where} set {i + 1}", _SET_KEYS)
        merged = {**defaults, **raw}
        names = tuple(str(n) for n in merged.pop("dependents", []))
        if not merged.get("deps"):
            problems.append(f"{where}: set {i + 1} has no deps")
        elif not problems:
            try:
                out.append((_set_from(merged, path.parent), names))
            except UsageError as exc:
                problems.append(f"{where} set {i + 1}: {exc.message}")
    if problems:
        raise UsageError("; ".join(problems), hint="see docs/serve.md")
    return out
