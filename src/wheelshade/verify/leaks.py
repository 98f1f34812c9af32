"""Run-time leak check: install wheels in a throwaway venv and see what their imports load."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from wheelshade.errors import UsageError, WheelFormatError
from wheelshade.resolve.fetch import IndexOptions
from wheelshade.verify.compare import Comparison, Source, compare
from wheelshade.verify.venv import Leak, installed_tops, make_env, owners, probe_modules
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import (
    EXTENSION_SUFFIXES,
    in_site_packages,
    locate,
    module_name_of_file,
)
from wheelshade.wheel.metadata import PROVENANCE_FILE

__all__ = ["Leak", "VerifyReport", "WheelVerdict", "format_report", "list_modules", "verify"]

_TEST_NAMES = frozenset({"tests", "test", "testing", "conftest"})
TEST_MODULE = "test module"
_MAIN = "__main__ module (runs a program when imported)"
_NOT_A_NAME = "not an importable module name"
#: What an import check cannot see, said with every report.
NOT_CHECKED = (
    "not checked: code that runs after import (call paths, templates, plugins, test "
    "loaders), and modules never imported (tests, __main__)"
)


@dataclass(frozen=True)
class WheelVerdict:
    wheel: str  # file name
    imported: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (module, reason)
    leaks: tuple[Leak, ...]
    #: (module, reason) of each module that fails to import here but imports unshaded.
    broken: tuple[tuple[str, str], ...] = ()
    #: Why this wheel's import failures could not be compared with its original, if so.
    not_compared: str | None = None
    #: A shaded wheel (with ``wheelshade.json``), not a dependent.
    shaded: bool = False
    #: (importer, original module) for each module outside every verified wheel that
    #: imported an original name: a distribution installed beside the shaded one (a
    #: dependency) that imports it back, so it runs against the other version.
    #: (importer, original module it imports, the distribution installing the importer).
    back_imports: tuple[tuple[str, str, str], ...] = ()

    @property
    def unchecked(self) -> int:
        """Import failures of a shaded wheel that no original could clear."""
        failed = [s for s in self.skipped if s[1] != TEST_MODULE and not _never_tried(s[1])]
        return len(failed) if self.shaded and self.not_compared else 0


@dataclass(frozen=True)
class VerifyReport:
    wheels: tuple[WheelVerdict, ...]
    originals: tuple[str, ...]  # original top-level names checked

    @property
    def ok(self) -> bool:
        return not any(w.leaks or w.unchecked for w in self.wheels) and not self.broken

    @property
    def broken(self) -> bool:
        return any(w.broken for w in self.wheels)


@dataclass(frozen=True)
class _Contents:
    """What verification needs from one wheel's archive."""

    path: Path
    modules: tuple[str, ...]  # to import, packages before their submodules
    skipped: tuple[tuple[str, str], ...]
    own: tuple[str, ...]  # the wheel's own top-level names
    mapping: dict[str, str]  # from wheelshade.json; empty for a dependent
    source: Source  # what it was made from


def _back_imports(
    leaks: Sequence[Leak], own: frozenset[str], originals: Sequence[str],
    installers: Mapping[str, str],
) -> tuple[tuple[str, str, str], ...]:
    """Leaks started by a module of none of the verified wheels (``importing pkg_1_0_x.sel
    (via helper.match)``): that module comes from a distribution installed beside them."""
    found: dict[str, str] = {}
    for leak in leaks:
        via = re.search(r"\(via ([\w.]+)\)", leak.cause)
        if via is None:
            continue
        importer = via.group(1)
        # The leaked modules import each other; below a namespace portion (``ns.part``)
        # the top name alone does not say it is one of them.
        original = any(importer == o or importer.startswith(o + ".") for o in originals)
        if importer.split(".")[0] not in own and not original:
            found.setdefault(importer, leak.module)
    return tuple(sorted((importer, module, installers.get(importer.split(".")[0], ""))
                        for importer, module in found.items()))


def _never_tried(reason: str) -> bool:
    return reason in (_MAIN, _NOT_A_NAME)


def _module_key(name: str) -> list[str]:
    return name.split(".")


def _skip_reason(parts: Sequence[str], *, package: bool) -> str | None:
    # A *package* named tests/testing holds a test suite; a module of that name is often
    # real code (werkzeug.test, flask.testing, jinja2.tests) and is imported like any other.
    packages = parts if package else parts[:-1]
    last = parts[-1]
    if any(p in _TEST_NAMES for p in packages) or last.startswith("test_") or (
        last.endswith("_test") or last == "conftest"
    ):
        return TEST_MODULE
    if parts[-1] == "__main__":
        # Importing a __main__ module runs the program it belongs to.
        return _MAIN
    if not all(part.isidentifier() for part in parts):
        return _NOT_A_NAME
    return None


def list_modules(
    names: Iterable[str], dist_info: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The modules a wheel installs into site-packages, as (to import, skipped with reason)."""
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    found: dict[str, str | None] = {}
    for name in names:
        if name.startswith(dist_info + "/"):
            continue
        loc = locate(name, data_dir)
        parts = loc.path.split("/")
        if not in_site_packages(loc) or "__pycache__" in parts:
            continue
        if not name.endswith((".py", *EXTENSION_SUFFIXES)):
            continue
        stem = module_name_of_file(parts[-1])
        dotted = parts[:-1] if stem == "__init__" else [*parts[:-1], str(stem)]
        if dotted:
            found[".".join(dotted)] = _skip_reason(dotted, package=stem == "__init__")
    order = sorted(found, key=_module_key)
    modules = tuple(m for m in order if found[m] is None)
    return modules, tuple((m, reason) for m in order if (reason := found[m]) is not None)


def _read_source(reader: WheelReader) -> Source:
    """The original distribution, from ``wheelshade.json``; the wheel itself for a dependent."""
    member = f"{reader.dist_info}/{PROVENANCE_FILE}"
    if member not in {m.name for m in reader.members}:
        name, _, version = reader.dist_info.removesuffix(".dist-info").partition("-")
        return Source(reader.path.name, name, version, None, {})
    mapping: object = None
    fields: list[object] = []
    try:
        doc = json.loads(reader.read(member))
        mapping, original = doc["mapping"], doc["original"]
        fields = [original["name"], original["version"], original["sha256"]]
    except (ValueError, KeyError, TypeError):
        pass
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ) or len(fields) != 3 or not all(isinstance(x, str) for x in fields):
        raise WheelFormatError(
            f'{member} has no valid "mapping" and "original"', path=str(reader.path)
        )
    name, version, sha = map(str, fields)
    bundled = doc.get("bundled") if isinstance(doc, dict) else None
    parts = tuple(
        Source(reader.path.name, str(p.get("name")), str(p.get("version")),
               str(p.get("sha256")), dict(p["mapping"]))
        for p in (bundled if isinstance(bundled, list) else ())
        if isinstance(p, dict) and isinstance(p.get("mapping"), dict)
    )
    return Source(reader.path.name, name, version, sha, dict(mapping), parts)


def _inspect(path: Path) -> _Contents:
    with WheelReader(path) as reader:
        names = [m.name for m in reader.members]
        modules, skipped = list_modules(names, reader.dist_info)
        source = _read_source(reader)
    own = sorted({m.split(".")[0] for m in modules} | {m.split(".")[0] for m, _ in skipped})
    return _Contents(Path(path), modules, skipped, tuple(own), dict(source.mapping), source)


def _watched(contents: _Contents) -> list[str]:
    """Original names to watch: the mapping's keys, but below a portion that is itself a
    namespace (``ns.sub`` of ``ns/sub/alpha``, shared with other distributions) only what
    the wheel installs there (``ns.sub.alpha``)."""
    modules = {*contents.modules, *(m for m, _ in contents.skipped)}
    names = []
    for key, shaded in contents.mapping.items():
        names.extend(_below(key, shaded, modules) if "." in key else [key])
    return names


def _below(key: str, shaded: str, modules: set[str]) -> list[str]:
    if shaded in modules:
        return [key]
    children = sorted({m[len(shaded) + 1:].split(".")[0] for m in modules
                       if m.startswith(shaded + ".")})
    return [n for c in children for n in _below(f"{key}.{c}", f"{shaded}.{c}", modules)]


def verify(
    wheels: Sequence[Path],
    *,
    with_requirements: Sequence[str] = (),
    index: IndexOptions = IndexOptions(),  # noqa: B008  (frozen, so sharing it is safe)
    python: str = sys.executable,
    timeout: float = 600,
    originals: Sequence[Path] = (),
) -> VerifyReport:
    """Install the wheels (and ``with_requirements``) into one throwaway venv, import every
    module of each wheel in a fresh interpreter, and report every module imported under an
    original (unshaded) name of the shaded wheels given.

    Modules that fail to import are imported again from the original wheels (``originals``,
    else fetched as ``wheelshade.json`` records them) in a second venv: each one that imports
    there is broken. ``timeout`` bounds each step (venv, pip, each interpreter) separately.
    """
    contents = [_inspect(Path(w)) for w in wheels]
    names = tuple(sorted({name for c in contents for name in _watched(c)}))
    if not any(c.mapping for c in contents):
        given = ", ".join(Path(w).name for w in wheels) or "no wheels"
        raise UsageError(
            f"no shaded wheel given: none has a .dist-info/{PROVENANCE_FILE} ({given})",
            hint="pass the wheels `wheelshade shade` wrote",
        )
    probed = []
    # A step stopped on a timeout may leave files behind that a slow child still writes.
    tmp_dir = tempfile.TemporaryDirectory(prefix="wheelshade-verify-", ignore_cleanup_errors=True)
    with tmp_dir as tmp:
        work = Path(tmp)
        paths = [c.path for c in contents]
        venv = make_env(work, paths, with_requirements, index, python, timeout)
        own_tops = frozenset(t for c in contents for t in c.own)
        shaded_dists = {canonicalize_name(c.source.name) for c in contents if c.mapping}
        names = (*names, *sorted(installed_tops(venv, shaded_dists) - own_tops - set(names)))
        installers = owners(venv)
        for i, wheel in enumerate(contents):
            request = work / f"request-{i}.json"
            probed.append(probe_modules(venv, wheel.modules, wheel.own, names, request, timeout))
        failures = {
            c.path.name: [(m, r) for m, r in results if r is not None]
            for c, (results, _) in zip(contents, probed, strict=True)
        }
        sources = {c.path.name: c.source for c in contents}
        if any(failures.values()):
            comparison = compare(
                failures, sources, originals, work, index=index, python=python, timeout=timeout,
                orders={c.path.name: c.modules for c in contents},
            )
        else:
            comparison = Comparison({}, {})
    verdicts = []
    own = frozenset(t for c in contents for t in c.own)
    for wheel, (results, leaks) in zip(contents, probed, strict=True):
        broken = comparison.broken.get(wheel.path.name, ())
        failed = [(m, r) for m, r in failures[wheel.path.name] if (m, r) not in broken]
        skipped = [*wheel.skipped, *failed]
        verdicts.append(
            WheelVerdict(
                wheel=wheel.path.name,
                imported=tuple(m for m, r in results if r is None),
                skipped=tuple(sorted(skipped, key=lambda s: _module_key(s[0]))),
                leaks=tuple(leaks),
                broken=broken,
                not_compared=comparison.not_compared.get(wheel.path.name),
                shaded=bool(wheel.mapping),
                back_imports=_back_imports(leaks, own, names, installers),
            )
        )
    return VerifyReport(tuple(verdicts), names)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_report(report: VerifyReport) -> str:
    """Readable text: a count line per wheel, its skips, leaks and broken modules, then
    what was not checked and the verdict."""
    out = [f"checked imports of: {', '.join(report.originals)}"]
    for w in report.wheels:
        out.append(
            f"{w.wheel}: imported {len(w.imported)}, skipped {len(w.skipped)}, "
            f"leaks {len(w.leaks)}, broken {len(w.broken)}"
        )
        out.extend(f"  skipped {module}: {reason}" for module, reason in w.skipped)
        for leak in w.leaks:
            where = leak.file or "not found"
            out.append(f"  leak {leak.module} ({where}): {leak.cause}")
        for importer, module, dist in w.back_imports:
            top = importer.split(".")[0]
            which = f" ({dist})" if dist else ""
            out.append(
                f"  {importer} imports {module} by its original name and is in no verified "
                f"wheel: shade the distribution that installs {top!r}{which} in the same set "
                f"(--dep {dist or 'NAME'})"
            )
        out.extend(
            f"  broken {module}: {reason} (imports from the original wheel)"
            for module, reason in w.broken
        )
        if w.not_compared:
            out.append(f"  import failures not compared with the original: {w.not_compared}")
    out.append(NOT_CHECKED)
    total = sum(len(w.leaks) for w in report.wheels)
    unchecked = sum(w.unchecked for w in report.wheels)
    if report.ok:
        out.append(f"OK: no leak in {_plural(len(report.wheels), 'wheel')}")
    if total:
        bad = sum(1 for w in report.wheels if w.leaks)
        out.append(f"FAILED: {_plural(total, 'leak')} in {_plural(bad, 'wheel')}")
    if unchecked:
        out.append(
            f"UNCHECKED: {_plural(unchecked, 'module')} of shaded wheels failed to import and "
            "could not be compared with the original (give it with --original)"
        )
    if report.broken:
        count = sum(len(w.broken) for w in report.wheels)
        bad = sum(1 for w in report.wheels if w.broken)
        out.append(
            f"BROKEN: {_plural(count, 'module')} in {_plural(bad, 'wheel')} import from the "
            "original wheel but not shaded"
        )
    return "\n".join(out)
