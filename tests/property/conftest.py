"""Fixtures for the rewriter's property tests: a real package and its shaded twin on disk."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The original top-level name, its shaded twin, and the unrelated names the tests import.
ORIGINAL = "a"
SHADED = "a_1_0_deadbeef"
UNRELATED = ("ab", "a_b")
#: The package the generated module runs in, so that relative imports resolve.
HOST = "host"
#: Every module records its own name; ``b`` and ``c`` are submodules.
MODULE = "NAME = __name__\n"


def write_packages(root: Path) -> None:
    for top in (ORIGINAL, SHADED):
        (root / top / "b").mkdir(parents=True)
        (root / top / "__init__.py").write_text(MODULE)
        (root / top / "b" / "__init__.py").write_text(MODULE)
        (root / top / "b" / "c.py").write_text(MODULE)
    (root / "ab").mkdir()
    (root / "ab" / "__init__.py").write_text(MODULE)
    (root / "a_b.py").write_text(MODULE)
    # host.a has the original's name: a relative import of it must never be rewritten.
    (root / HOST).mkdir()
    (root / HOST / "__init__.py").write_text(MODULE)
    (root / HOST / "a.py").write_text(MODULE)
    (root / HOST / "x.py").write_text(MODULE)


def forget_modules() -> None:
    """Drop every test module from ``sys.modules`` so the next run imports them afresh."""
    tops = {ORIGINAL, SHADED, HOST, *UNRELATED}
    for name in [name for name in sys.modules if name.partition(".")[0] in tops]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``a`` (with ``a.b``, ``a.b.c``), ``a_1_0_deadbeef`` likewise, ``ab``, ``a_b``, ``host``."""
    root = tmp_path_factory.mktemp("packages")
    write_packages(root)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        forget_modules()
