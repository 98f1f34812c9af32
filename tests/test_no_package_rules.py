"""No rule special-cases a real package: no corpus project's name is a string literal in src/.

A rule that names a real package is a patch for the corpus, not a fix for users. Docstrings
and prose (help texts, messages: anything with whitespace) may use real packages as examples;
a code-like literal (no whitespace) that is a project's name, or a module path or word under
it, is a rule. The allowlist says why each remaining name is a documented Python convention.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "wheelshade"

#: name -> why it may appear as a literal.
ALLOWED = {
    "pip": "wheelshade runs pip as its resolver and fetcher: `python -m pip`",
    "wheel": "the file format and its `.whl` suffix, `Root-Is-Purelib`, WHEEL file, not a package",
    "importlib_metadata": "the importlib.metadata backport: its `version()`/`distribution()` "
    "take distribution names (a documented stdlib API, like importlib.metadata itself)",
    "pytest": "`pytest.importorskip(name)` imports a module by its name: a documented API that "
    "takes module names, as importlib.import_module does",
    "importlib_resources": "the importlib.resources backport: `files()`, `read_text()`... take "
    "package names (a documented stdlib API, like importlib.resources itself)",
    "py": "the `.py` source-file suffix, not the `py` library",
    "toml": "the `.toml` suffix of `pyproject.toml` and `wheelshade.toml`, not the toml library",
    "build": "a `build/` output folder left out of trees, and an internal role tag, not the "
    "`build` front end",
}


def corpus_names() -> set[str]:
    names: set[str] = set()
    projects = tomllib.loads((ROOT / "corpus" / "projects.toml").read_text(encoding="utf-8"))
    names |= {p["name"] for p in projects["project"]}
    suites = tomllib.loads((ROOT / "corpus" / "suites.toml").read_text(encoding="utf-8"))
    names |= {s["name"] for s in suites["suite"]}
    bench = tomllib.loads((ROOT / "benchmarks" / "corpus.toml").read_text(encoding="utf-8"))
    names |= {w["name"] for w in bench["wheel"]}
    spelled: set[str] = set()
    for name in names:
        canonical = canonicalize_name(name)
        spelled |= {canonical, canonical.replace("-", "_")}
    return spelled


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literal_hits(source: str, names: set[str]) -> list[tuple[int, str, str]]:
    """(line, name, literal) for each code-like literal that names one of ``names``."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in skip:
            continue
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str) or re.search(r"\s", value):
            continue
        tokens = {t.lower() for t in re.findall(r"[A-Za-z0-9_-]+", value)}
        hits += [(node.lineno, name, value) for name in sorted(tokens & names)]
    return hits


def test_the_corpus_is_read() -> None:
    names = corpus_names()
    assert {"numpy", "six", "sqlalchemy", "pydantic_core"} <= names


def test_the_check_sees_a_rule() -> None:
    source = '"""six is an example here."""\nif name == "six":\n    x = b"\\x00numpy\\x00"\n'
    assert [(n, v) for _, n, v in literal_hits(source, {"six", "numpy"})] == [
        ("six", "six"), ("numpy", "\x00numpy\x00"),
    ]
    assert literal_hits('help = "resolve with six and numpy"\n', {"six", "numpy"}) == []


def test_no_corpus_project_is_named_in_src() -> None:
    names = corpus_names()
    found, allowed = [], set()
    for path in sorted(SRC.rglob("*.py")):
        for line, name, value in literal_hits(path.read_text(encoding="utf-8"), names):
            if name in ALLOWED:
                allowed.add(name)
            else:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name} in {value!r}")
    assert found == [], "\n".join(found)
    assert allowed == set(ALLOWED), "an allowlist entry no source needs any more: remove it"
