from __future__ import annotations

from pathlib import Path

import pytest

from helpers import build_fixture

FIXTURE_WHEELS = ("greet1", "greet2", "colors1", "colors2", "oldapp", "newapp", "leakyapp")


@pytest.fixture(scope="session")
def fixture_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every synthetic fixture package, built once per session into a wheel."""
    work = tmp_path_factory.mktemp("fixture-src")
    out = tmp_path_factory.mktemp("fixture-wheels")
    return {name: build_fixture(name, out / name, work) for name in FIXTURE_WHEELS}
