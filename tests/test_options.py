"""ShadeOptions: one validated value, built alike by the API, the config reader and the CLI."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from wheelshade import ClosureOptions, ShadeOptions, UsageError
from wheelshade.cli import _cli_overrides, _parser
from wheelshade.config import load_config, override
from wheelshade.native.scan import Naming


def test_defaults_and_normalised_text() -> None:
    options = ShadeOptions(out_dir="out", suffix="v1", naming="same-length", drop=["a/*"])
    assert options.out_dir == Path("out")
    assert options.suffix == "v1"
    assert options.naming is Naming.SAME_LENGTH
    assert options.drop == ("a/*",)
    assert ShadeOptions().load_check is True


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(UsageError) as info:
        ShadeOptions(naming="short", jobs=0, fetch_timeout=-1, uploaded_prior_to="last week",
                     strict="yes")  # type: ignore[arg-type]
    message = str(info.value)
    for part in ("naming must be one of", "jobs must be a whole number", "fetch timeout must be",
                 "uploaded-prior-to must be an ISO 8601 date", "strict must be true or false"):
        assert part in message, message


@pytest.mark.parametrize("suffix", ["", "a-b", "Up", "has space", "dot.ted"])
def test_a_bad_suffix_is_refused(suffix: str) -> None:
    with pytest.raises(UsageError, match="suffix"):
        ShadeOptions(suffix=suffix)


def test_replace_validates_again() -> None:
    with pytest.raises(UsageError, match=r"^jobs must be"):
        replace(ShadeOptions(), jobs=0)


def test_the_keyword_form_is_a_thin_adapter() -> None:
    closure = ClosureOptions(uploaded_prior_to="2020-02-05", target_env="/usr/bin/python3")
    options = ShadeOptions.from_keywords(out_dir="w", closure=closure, strict=True, suffix=None)
    assert options == ShadeOptions(out_dir=Path("w"), strict=True,
                                   uploaded_prior_to="2020-02-05", target_env="/usr/bin/python3")
    assert options.closure.uploaded_prior_to == "2020-02-05"
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*bogus"):
        ShadeOptions.from_keywords(bogus=1)
    with pytest.raises(TypeError, match=r"^ClosureOptions.python is not an option"):
        ShadeOptions.from_keywords(closure=ClosureOptions(python="/opt/other/python"))


def test_config_and_cli_build_the_same_value(tmp_path: Path) -> None:
    (tmp_path / "wheelshade.toml").write_text(
        'deps = ["flask==0.12.4"]\nnaming = "readable"\nload-check = false\n'
        'out-dir = "dist"\njobs = 2\n'
    )
    (sets, settings) = load_config(tmp_path / "wheelshade.toml")
    assert settings == {"jobs": 2}
    assert sets[0].options == ShadeOptions(
        out_dir=tmp_path / "dist", naming=Naming.READABLE, load_check=False
    )
    args = _parser().parse_args(["shade", "--dep", "x==1", "--strict", "-j", "3", "--dry-run"])
    merged = override(sets, **_cli_overrides(args))[0].options
    assert merged == replace(sets[0].options, strict=True, jobs=3, dry_run=True)


def test_a_bad_config_value_names_the_file_and_set(tmp_path: Path) -> None:
    path = tmp_path / "wheelshade.toml"
    path.write_text('[[set]]\ndeps = ["x==1"]\nnaming = "tiny"\n')
    with pytest.raises(UsageError) as info:
        load_config(path)
    assert re.match(rf"^{re.escape(str(path))} set 1: naming must be one of", str(info.value))
