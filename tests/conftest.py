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


# -- Hypothesis profiles ---------------------------------------------------------------------


def _register_hypothesis_profiles() -> None:
    """Profiles for the property and fuzz tests; pick one with ``--hypothesis-profile=NAME``.

    "default" (``make test``): few examples, derandomized and without a database, so the
    suite stays fast and repeatable. "long" (``make proptest``) and "fuzz" (``make fuzz``):
    many random examples; failures are saved in ``.hypothesis/`` and replayed first.
    Hypothesis' pytest plugin loads the profile named on the command line after this file.
    """
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "default",
        max_examples=50,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "long", max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "fuzz",
        max_examples=10_000,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    settings.load_profile("default")


_register_hypothesis_profiles()
