"""--with-deps: closure resolution and the per-member decisions, against a local index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Venv, make_wheel
from index_server import serve_index
from wheelshade import IndexOptions, Target, shade
from wheelshade.resolve.closure import ClosureOptions

OLD, NEW = "2019-06-01T00:00:00Z", "2024-06-01T00:00:00Z"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oldlib 1.0 needs helper>=1 and tool>=1; each of those has an old and a new release."""
    d = tmp_path_factory.mktemp("index")

    def lib(name: str, version: str, *requires: str) -> Path:
        return make_wheel(d, name, version, {f"{name}/__init__.py": f"V = {version!r}\n"}, requires)

    wheels = {
        make_wheel(
            d,
            "oldlib",
            "1.0",
            {"oldlib/__init__.py": "import helper, tool\nV = '1.0'\n"},
            ("helper>=1", "tool>=1"),
        ): OLD,
        lib("helper", "1.0"): OLD,
        lib("helper", "2.0"): NEW,
        lib("tool", "1.0"): OLD,
        lib("tool", "2.0"): NEW,
        make_wheel(d, "app", "1.0", {"app/__init__.py": "import oldlib\n"}, ("oldlib==1.0",)): OLD,
        lib("pylib", "1.0"): OLD,
        make_wheel(d, "pylib", "2.0", {"pylib/__init__.py": ""}, requires_python=">=3.12"): NEW,
    }
    old = os.environ.get("PIP_CONFIG_FILE")
    os.environ["PIP_CONFIG_FILE"] = os.devnull  # only this index, whatever pip.conf says
    with serve_index(wheels) as url:
        yield url
    if old is None:
        os.environ.pop("PIP_CONFIG_FILE")
    else:
        os.environ["PIP_CONFIG_FILE"] = old


def decisions(
    index: str,
    tmp_path: Path,
    *deps: str,
    target: str,
    cutoff: str | None = None,
) -> dict[str, tuple[str, bool]]:
    (tmp_path / "target.txt").write_text(target)
    result = shade(
        [],
        list(deps),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        index=IndexOptions(index_url=index),
        with_deps=True,
        closure=ClosureOptions(
            target_requirements=tmp_path / "target.txt", uploaded_prior_to=cutoff
        ),
    )
    return {d.name: (str(d.version), d.shade) for d in result.decisions}


def test_date_cutoff_shades_members_newer_in_the_target(index: str, tmp_path: Path) -> None:
    got = decisions(
        index,
        tmp_path,
        "oldlib==1.0",
        target="helper==2.0\ntool==1.0\n",
        cutoff="2020-01-01T00:00:00Z",
    )
    assert got == {
        "oldlib": ("1.0", True),  # pinned
        "helper": ("1.0", True),  # the target's 2.0 came after the cutoff: unproven
        "tool": ("1.0", False),  # the target holds the same version
    }
    wheels = sorted(p.name for p in (tmp_path / "out").glob("*.whl"))
    assert [w.split("_")[0] for w in wheels] == ["helper", "oldlib"]


def test_without_cutoff_a_satisfying_target_version_is_kept(index: str, tmp_path: Path) -> None:
    got = decisions(index, tmp_path, "oldlib==1.0", target="helper==2.0\ntool==1.0\n")
    # The closure takes the newest: helper 2.0 (same as target), tool 2.0 (target's 1.0 meets >=1).
    assert got == {"oldlib": ("1.0", True), "helper": ("2.0", False), "tool": ("2.0", False)}


def test_explicit_extra_pin_forces_a_member_into_the_set(index: str, tmp_path: Path) -> None:
    got = decisions(index, tmp_path, "oldlib==1.0", "helper<2", target="helper==2.0\ntool==2.0\n")
    assert got == {"oldlib": ("1.0", True), "helper": ("1.0", True), "tool": ("2.0", False)}


def test_absent_from_target_is_kept_only_for_an_explicit_target(index: str, tmp_path: Path) -> None:
    got = decisions(index, tmp_path, "oldlib==1.0", target="tool==2.0\n")
    assert got["helper"] == ("2.0", False)  # the target has no helper: nothing to clash with
    result = shade(
        [],
        ["oldlib==1.0"],
        out_dir=tmp_path / "out2",
        cache_dir=tmp_path / "c2",
        index=IndexOptions(index_url=index),
        with_deps=True,
    )
    assert all(d.shade for d in result.decisions)  # no target given: isolate everything


def test_shaded_closure_runs_beside_the_target(index: str, tmp_path: Path) -> None:
    (tmp_path / "target.txt").write_text("helper==2.0\ntool==2.0\n")
    result = shade(
        [],
        ["oldlib==1.0"],
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        index=IndexOptions(index_url=index),
        with_deps=True,
        closure=ClosureOptions(
            target_requirements=tmp_path / "target.txt", uploaded_prior_to="2020-01-01T00:00:00Z"
        ),
    )
    oldlib = next(w for w in result.wheels if w.original == "oldlib 1.0").mapping["oldlib"]
    env = Venv.create(tmp_path / "env")
    env.install(
        "--index-url",
        index,
        *sorted((tmp_path / "out").glob("*.whl")),
        "helper==2.0",
        "tool==2.0",
        index=True,
    )
    data = env.json(
        f"import json, {oldlib} as o, helper, tool\n"
        "print(json.dumps([o.V, o.helper.V, o.tool.V, helper.V, tool.V]))"
    )
    assert data == ["1.0", "1.0", "1.0", "2.0", "2.0"]
    assert env.pip("check", check=False).returncode == 0


def test_closure_is_resolved_for_the_target_interpreter(index: str, tmp_path: Path) -> None:
    def version(python: str) -> str:
        result = shade(
            [],
            ["pylib"],
            out_dir=tmp_path / python,
            cache_dir=tmp_path / "c",
            index=IndexOptions(index_url=index),
            with_deps=True,
            target=Target(python_version=python),
        )
        (decision,) = result.decisions
        (report,) = result.wheels
        assert report.original == f"pylib {decision.version}"  # fetched for that target too
        return str(decision.version)

    # pylib 2.0 needs Python 3.12: for 3.10 the resolver must fall back to 1.0.
    assert version("3.10") == "1.0"
    assert version("3.12") == "2.0"


def test_a_kept_member_that_needs_a_shaded_one_is_shaded_too() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    from wheelshade.resolve.resolver import Member, decide

    def member(name: str, version: str, *requires: str, requested: bool = False) -> Member:
        reqs = tuple(Requirement(r) for r in requires)
        return Member(canonicalize_name(name), Version(version), reqs, requested)

    closure = [
        member("boto3", "1.0", "botocore==1.0", "s3transfer>=0.1", requested=True),
        member("botocore", "1.0"),
        member("s3transfer", "0.2", "botocore>=1.0"),
        member("jmespath", "1.0"),
    ]
    target = {
        canonicalize_name(n): Version(v)
        for n, v in [("botocore", "2.0"), ("s3transfer", "0.2"), ("jmespath", "1.0")]
    }
    got = {d.name: (d.shade, d.reason) for d in decide(closure, target)}
    assert got["botocore"][0] is True  # the target's 2.0 does not meet ==1.0
    # s3transfer is the same version in the target, but kept it would import botocore 2.0.
    assert got["s3transfer"] == (
        True,
        "requires botocore, which is shaded (kept, it would import the target's copy)",
    )
    assert got["jmespath"] == (False, "the target holds the same version 1.0")
