"""The layout's rules: imports point down the stages, never up or sideways; modules stay small.

What import-linter's "layers" contract checks, over the AST so nothing is imported: every
``import``/``from`` of a wheelshade module, at any depth (function-local imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wheelshade"

#: Stages from the bottom up. A module may import its own stage's modules and any lower
#: stage's; stages on one level (rewrite, native) may not import each other.
LEVELS: dict[str, int] = {
    "base": 0,  # errors, findings, naming, proof, timings: shared by every stage
    "wheel": 1,  # reading and writing wheels
    "rewrite": 2,  # Python sources
    "native": 2,  # compiled code
    "resolve": 3,  # fetch, resolve, closure (runs pip)
    "verify": 4,  # run-time checks in throwaway venvs
    "top": 5,  # wiring: core, plan, apply, cli, config, batch, the public API
    "serve": 6,  # the index server: above the API; only cli.py imports it (lazily)
}
BASE = {"errors", "findings", "naming", "proof", "timings"}
MAX_LINES = 410


def stage_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "wheelshade"
    if len(parts) == 1:
        return "top"  # the package itself: the public API
    if parts[1] in LEVELS and parts[1] not in ("base", "top"):
        return parts[1]
    return "base" if parts[1] in BASE else "top"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every wheelshade import in ``source`` of ``module``."""
    tree = ast.parse(source)
    here = module.split(".")
    package = here if is_package else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from wheelshade.native import refs`` imports the module wheelshade.native.refs
            subs = [f"{target}.{a.name}" for a in node.names]
            found += [(node.lineno, s if _is_module(s) else target) for s in subs]
    return [(line, m) for line, m in found if m == "wheelshade" or m.startswith("wheelshade.")]


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


SOURCES = sorted(SRC.rglob("*.py"))


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    mine = stage_of(module)
    out = []
    for line, target in imports_in(source, module, is_package):
        theirs = stage_of(target)
        lazy_serve = module == "wheelshade.cli" and theirs == "serve"
        if theirs != mine and LEVELS[theirs] >= LEVELS[mine] and not lazy_serve:
            out.append(f"{module}:{line}: {mine} imports {target} ({theirs})")
    return out


def test_every_stage_is_a_package() -> None:
    for stage in LEVELS:
        if stage not in ("base", "top"):
            assert (SRC / stage / "__init__.py").is_file(), stage


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_stages(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert violations(source, module_name(path), path.name == "__init__.py") == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)} has {lines} lines; split it by concept"


def test_the_check_catches_an_upward_import() -> None:
    """The rule itself: an import from a lower stage to a higher one is reported."""
    assert stage_of("wheelshade.wheel.archive") == "wheel"
    assert stage_of("wheelshade.errors") == "base"
    assert stage_of("wheelshade.core") == "top"
    assert stage_of("wheelshade") == "top"
    source = "from wheelshade.core import shade\nfrom ..native import refs\n"
    found = violations(source, "wheelshade.wheel.probe")
    assert any("imports wheelshade.core (top)" in v for v in found)
    assert any("imports wheelshade.native.refs (native)" in v for v in found)
    assert violations("from ..errors import UsageError\n", "wheelshade.wheel.probe") == []


def test_siblings_do_not_import_each_other() -> None:
    """rewrite and native are on one level: neither may import the other."""
    source = "def f():\n    from wheelshade.rewrite.rules import StringRules\n"
    found = violations(source, "wheelshade.native.probe")
    assert found and "native imports wheelshade.rewrite.rules (rewrite)" in found[0]
