"""Obtaining deps: pip in a subprocess honouring index options, and the wheel cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from wheelshade import FetchError, Pin
from wheelshade.resolve.fetch import IndexOptions, fetch, parse_dep


def test_fetch_through_pip_then_from_the_cache(
    fixture_wheels: dict[str, Path], tmp_path: Path
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    shutil.copy(fixture_wheels["colors1"], links)
    cache = tmp_path / "cache"
    pin = Pin("colors", Version("1.0"))
    first = fetch(pin, index=IndexOptions(find_links=(str(links),), no_index=True), cache_dir=cache)
    assert first.parent == cache / "wheels" / "colors"
    assert first.read_bytes() == fixture_wheels["colors1"].read_bytes()
    shutil.rmtree(links)
    # The index is gone: only the cache can answer now.
    again = fetch(pin, index=IndexOptions(no_index=True), cache_dir=cache)
    assert again == first
    assert not list(again.parent.glob(".fetch-*"))


def test_fetch_failure_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^colors==9\.9: pip could not obtain a wheel: ERROR"):
        fetch(Pin("colors", Version("9.9")), index=IndexOptions(no_index=True), cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flask==0.12.4", Pin("flask", Version("0.12.4"))),
        ("Jinja2 == 2.11.3", Pin("Jinja2", Version("2.11.3"))),
    ],
)
def test_parse_dep(text: str, expected: Pin) -> None:
    assert parse_dep(text) == expected
