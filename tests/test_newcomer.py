"""What a new user meets first: an old pip, a hint that repeats the failing option, a date
cut-off that pip's configuration defeats, start-up imports taken for leaks, and staging
folders left by a killed run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import pypi
from helpers import Venv, make_wheel, wheelshade
from index_server import serve_index
from wheelshade import FetchError, IndexOptions, shade
from wheelshade.errors import suggest
from wheelshade.native.loadcheck import probe
from wheelshade.resolve import pipcheck
from wheelshade.resolve.closure import ClosureOptions, expand
from wheelshade.resolve.resolver import resolve_closure

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = "2019-06-01T00:00:00Z", "2024-06-01T00:00:00Z"
CUTOFF = "2020-02-05T00:00:00Z"

# -- the pip wheelshade runs -----------------------------------------------------------------


def test_the_declared_pip_is_the_one_the_cutoff_needs() -> None:
    """`pip install wheelshade` upgrades an old venv pip to one with --uploaded-prior-to."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (req,) = [Requirement(d) for d in meta["project"]["dependencies"] if d.startswith("pip")]
    assert req.specifier.contains(pipcheck.CUTOFF)
    assert not req.specifier.contains(Version("25.3"))


@pytest.fixture(scope="module")
def old_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with pip 23.2.1, the pip a fresh Python 3.11 venv brings."""
    folder = pypi.wheels("pip==23.2.1")
    venv = Venv.create(tmp_path_factory.mktemp("oldpip") / "venv")
    venv.install(folder / "pip-23.2.1-py3-none-any.whl")
    return venv.python


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("links")
    make_wheel(d, "solo", "1.0", {"solo/__init__.py": ""})
    return d


def test_an_old_pip_is_refused_naming_the_pip_needed_and_found(
    old_pip: Path, links: Path
) -> None:
    with pytest.raises(FetchError) as caught:
        resolve_closure(
            ["solo"],
            index=IndexOptions(find_links=(str(links),), no_index=True),
            uploaded_prior_to=CUTOFF,
            python=str(old_pip),
        )
    assert str(caught.value) == (
        f"--uploaded-prior-to needs pip 26.0 or later; {old_pip} -m pip is 23.2.1 "
        f"(upgrade it: {old_pip} -m pip install 'pip>=26.0')"
    )


def test_an_old_pip_still_resolves_without_a_cutoff(old_pip: Path, links: Path) -> None:
    (member,) = resolve_closure(
        ["solo"], index=IndexOptions(find_links=(str(links),), no_index=True), python=str(old_pip)
    )
    assert (member.name, str(member.version)) == ("solo", "1.0")


def test_the_old_pip_failure_hint_never_repeats_the_option(old_pip: Path) -> None:
    """The real message of pip 23.2.1, and the hint built for it."""
    cmd = [str(old_pip), "-m", "pip", "install", "--dry-run", "--uploaded-prior-to", CUTOFF, "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert "no such option: --uploaded-prior-to" in proc.stderr
    hint = pipcheck.failure_hint(
        proc.stderr, cmd, str(old_pip), "pin it with --dep", "pass --uploaded-prior-to"
    )
    assert hint == (
        f"{old_pip} -m pip 23.2.1 has no --uploaded-prior-to; "
        f"upgrade pip: {old_pip} -m pip install -U pip"
    )


# -- hints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], "pin it with --dep, or pass --uploaded-prior-to"),
        (["--uploaded-prior-to"], "pin it with --dep"),
        (["--uploaded-prior-to=2020-01-01"], "pin it with --dep"),
        (["--dep", "--uploaded-prior-to"], ""),
        (["--uploaded-prior"], "pin it with --dep, or pass --uploaded-prior-to"),
    ],
    ids=["nothing-given", "given", "given-with-value", "all-given", "prefix-is-not-the-option"],
)
def test_a_hint_never_suggests_an_option_already_given(given: list[str], expected: str) -> None:
    assert suggest(given, "pin it with --dep", "pass --uploaded-prior-to") == expected


def test_a_failed_fetch_with_find_links_does_not_suggest_find_links(
    links: Path, tmp_path: Path
) -> None:
    proc = wheelshade(
        "shade", "--dep", "nosuch==1.0", "--no-index", "--find-links", links,
        "--cache-dir", tmp_path / "cache", "-o", tmp_path / "out",
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert re.fullmatch(
        r"wheelshade: error: nosuch==1\.0: pip could not obtain a wheel: ERROR: .*"
        r" \(check the name and version\)",
        line,
    )


# -- the date cut-off --------------------------------------------------------------------------


@pytest.fixture
def own_pip_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pip configuration this test controls (PIP_FIND_LINKS and the like unset)."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    config = tmp_path / "pip.conf"
    config.write_text("[global]\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An index where app 1.0 needs helper, with helper 1.0 old and helper 2.0 new; and a
    find-links folder (a local wheel cache) holding helper 2.0 too."""
    d = tmp_path_factory.mktemp("stack")
    cache = d / "cache"
    app = make_wheel(d, "app", "1.0", {"app/__init__.py": "import helper\n"}, ("helper>=1",))
    wheels: dict[Path, str | None] = {
        app: OLD,
        make_wheel(d, "helper", "1.0", {"helper/__init__.py": "V = 1\n"}): OLD,
    }
    make_wheel(cache, "helper", "2.0", {"helper/__init__.py": "V = 2\n"})
    with serve_index(wheels) as url:
        yield url, cache


def resolve(url: str, tmp_path: Path, *deps: str) -> dict[str, str]:
    result = shade(
        [],
        list(deps),
        out_dir=tmp_path / "out",
        cache_dir=tmp_path / "wheels",
        index=IndexOptions(index_url=url),
        with_deps=True,
        dry_run=True,
        closure=ClosureOptions(uploaded_prior_to=CUTOFF),
    )
    return {d.name: str(d.version) for d in result.decisions}


@pytest.mark.usefixtures("own_pip_config")
def test_a_cutoff_from_an_index_with_upload_times_holds(
    stack: tuple[str, Path], tmp_path: Path
) -> None:
    assert resolve(stack[0], tmp_path, "app==1.0") == {"app": "1.0", "helper": "1.0"}


def test_a_find_links_folder_from_pip_config_is_refused_not_ignored(
    stack: tuple[str, Path], own_pip_config: Path, tmp_path: Path
) -> None:
    url, cache = stack
    own_pip_config.write_text(f"[global]\nfind-links = {cache}\n")
    out = tmp_path / "out"
    proc = wheelshade(
        "shade", "--dep", "app==1.0", "--with-deps", "--uploaded-prior-to", CUTOFF,
        "--index-url", url, "--cache-dir", tmp_path / "wheels", "-o", out,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(
        f"wheelshade: error: --uploaded-prior-to {CUTOFF} was not applied to 1 member(s) of "
        f"the closure: pip took them from local files or direct URLs, which have no upload "
        f"time: helper 2.0 ({cache / 'helper-2.0-py3-none-any.whl'}) (resolve from an index"
    )
    assert proc.stdout == ""  # no "shade" decision for a cut-off that did not hold
    assert not out.exists()


def test_a_member_pinned_exactly_may_come_from_a_local_folder(
    stack: tuple[str, Path], own_pip_config: Path, tmp_path: Path
) -> None:
    url, cache = stack
    own_pip_config.write_text(f"[global]\nfind-links = {cache}\n")
    assert resolve(url, tmp_path, "app==1.0", "helper==2.0") == {"app": "1.0", "helper": "2.0"}


@pytest.mark.usefixtures("own_pip_config")
def test_an_index_without_upload_times_is_refused_by_pip(tmp_path: Path) -> None:
    """What makes trusting pip for index files sound: pip (26+) stops at a file of an index
    that gives no upload time, so a mirror without them cannot slip a release past the date."""
    d = tmp_path / "wheels"
    wheels: dict[Path, str | None] = {
        make_wheel(d, "app", "1.0", {"app/__init__.py": ""}, ("helper>=1",)): OLD,
        make_wheel(d, "helper", "1.0", {"helper/__init__.py": ""}): OLD,
        make_wheel(d, "helper", "2.0", {"helper/__init__.py": ""}): None,
    }
    with serve_index(wheels) as url, pytest.raises(FetchError) as caught:
        resolve(url, tmp_path, "app==1.0")
    assert re.fullmatch(
        r"app==1\.0: pip could not resolve the closure: ERROR: Index \S+/helper/ does not "
        r"provide upload-time metadata\. \(pin the conflicting member with an extra --dep, "
        r"or check the index serves upload times \(PEP 700\), which a date cut-off needs\)",
        str(caught.value),
    )


def expand_from_pypi(tmp_path: Path) -> dict[str, str]:
    """flask 0.12.4's closure as of the cut-off, from the real index."""
    (tmp_path / "target.txt").write_text("")
    try:
        _, decisions = expand(
            ["flask==0.12.4"],
            [],
            index=IndexOptions(),
            options=ClosureOptions(
                target_requirements=tmp_path / "target.txt", uploaded_prior_to=CUTOFF
            ),
        )
    except FetchError as exc:
        if pypi._UNREACHABLE.search(str(exc)):
            pytest.skip(f"package index unreachable: {exc}")
        raise
    return {d.name: str(d.version) for d in decisions}


@pytest.mark.network
def test_the_real_index_and_a_local_wheel_cache(own_pip_config: Path, tmp_path: Path) -> None:
    """From PyPI alone the cut-off holds (the demo's stack); a wheel cache in pip.conf
    holding a newer werkzeug is refused, not shaded."""
    assert expand_from_pypi(tmp_path)["werkzeug"] == "0.16.1"
    cache = tmp_path / "wheel-cache"
    make_wheel(cache, "werkzeug", "9.0", {"werkzeug/__init__.py": ""})
    own_pip_config.write_text(f"[global]\nfind-links = {cache}\n")
    with pytest.raises(FetchError, match=r"not applied to 1 member\(s\).*: werkzeug 9\.0 \("):
        expand_from_pypi(tmp_path)


# -- the load check and start-up imports -------------------------------------------------------


@pytest.fixture(scope="module")
def startup_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A venv whose .pth imports ``origmod`` at start-up (as setuptools'
    distutils-precedence.pth imports _distutils_hack), and modules to load: one that
    imports nothing, one that imports ``origmod``."""
    tmp = tmp_path_factory.mktemp("startup")
    venv = Venv.create(tmp / "venv")
    (site,) = (tmp / "venv" / "lib").glob("python*/site-packages")
    (site / "origmod.py").write_text("")
    (site / "origmod-precedence.pth").write_text("import origmod\n")
    root = tmp / "root"
    root.mkdir()
    (root / "shadedmod.py").write_text("X = 1\n")
    (root / "leaky.py").write_text("import origmod\n")
    imported = subprocess.run(
        [str(venv.python), "-I", "-c", "import sys; print('origmod' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )
    assert imported.stdout.strip() == "True"  # the environment imports it by itself
    return venv.python, root


def test_start_up_imports_of_the_environment_are_not_leaks(startup_env: tuple[Path, Path]) -> None:
    python, root = startup_env
    result = probe(root, ["shadedmod"], ["origmod"], str(python))
    assert (dict(result.failed), result.reached) == ({}, ())


def test_a_module_importing_a_start_up_original_still_leaks(
    startup_env: tuple[Path, Path],
) -> None:
    python, root = startup_env
    result = probe(root, ["leaky"], ["origmod"], str(python))
    assert result.reached == ("origmod",)
    assert result.failed["leaky"].startswith("ImportError: wheelshade load check")


# -- staging folders of killed runs ------------------------------------------------------------


def stage_owned_by(out: Path, name: str, pid: int, host: str, started: str | None) -> Path:
    import json

    folder = out / f".wheelshade-{name}"
    folder.mkdir(parents=True)
    (folder / "half.whl").write_bytes(b"partial")
    (folder / ".owner.json").write_text(json.dumps({"pid": pid, "host": host, "started": started}))
    return folder


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid  # reaped: no process has it (until reused, which the start time catches)


def test_staging_folders_of_gone_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from wheelshade.wheel.staging import _host, _start_time

    out = tmp_path / "out"
    host, me, gone = _host(), os.getpid(), dead_pid()
    dead = stage_owned_by(out, "dead", gone, host, None)
    reused = stage_owned_by(out, "reused", me, host, "another-boot:1")
    live = stage_owned_by(out, "live", me, host, _start_time(me))
    elsewhere = stage_owned_by(out, "elsewhere", gone, host + ".other", None)
    # Killed before writing its owner file: the folder's name says whose it was.
    unwritten = out / f".wheelshade-{gone}@{host}-abc123"
    starting = out / f".wheelshade-{me}@{host}-abc123"
    legacy = out / ".wheelshade-k2j4h5"  # no owner recorded, and recent
    for folder in (unwritten, starting, legacy):
        folder.mkdir()
    dep = make_wheel(tmp_path / "links", "solo", "1.0", {"solo/__init__.py": ""})
    shade([], [dep], out_dir=out)
    assert [p for p in (dead, reused, unwritten) if p.exists()] == []
    assert all(p.exists() for p in (live, elsewhere, starting, legacy))
    assert len(list(out.glob("*.whl"))) == 1
