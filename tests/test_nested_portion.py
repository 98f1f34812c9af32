"""A required distribution that installs inside the shaded package's tree (``host-ext`` ships
``host/ext`` and imports ``host``): shaded with it and said so, or asked for by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Venv, make_wheel, validate_record
from wheelshade import PlanError, shade


def host(out: Path, version: str) -> Path:
    init = (
        f"VERSION = {version!r}\n\n"
        "from host.ext import impl  # the portion another distribution installs\n\n\n"
        "def call():\n    return impl.answer()\n"
    )
    return make_wheel(out, "host", version, {"host/__init__.py": init}, requires=("host-ext",))


def host_ext(out: Path, version: str) -> Path:
    impl = "import host\n\n\ndef answer():\n    return 'ext sees host ' + host.VERSION\n"
    files = {"host/ext/__init__.py": "", "host/ext/impl.py": impl}
    return make_wheel(out, "host_ext", version, files)


def test_a_nested_portion_in_the_set_is_shaded_into_the_host(tmp_path: Path) -> None:
    old = [host(tmp_path / "old", "1.0"), host_ext(tmp_path / "old", "1.0")]
    new = [host(tmp_path / "new", "2.0"), host_ext(tmp_path / "new", "2.0")]
    result = shade([], old, out_dir=tmp_path / "out")
    shaded = {w.original.split()[0]: w for w in result.wheels}
    name = shaded["host"].mapping["host"]
    assert shaded["host-ext"].mapping == {"host.ext": f"{name}.ext"}
    (note,) = [w for w in result.warnings if "inside" in w]
    said = f"installs host/ext inside host 1.0's package 'host': shaded with it, into {name}/ext"
    assert said in note
    for wheel in result.wheels:
        validate_record(wheel.output)
    venv = Venv.create(tmp_path / "venv")
    # Plain pip: the shaded host's Requires-Dist names the shaded host-ext, found beside it.
    venv.install("--find-links", tmp_path / "out", shaded["host"].output, *new)
    assert venv.pip("check", check=False).returncode == 0
    data = venv.json(
        f"import json, sys, {name} as old\nfirst = old.call()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'host')\n"
        "import host\nprint(json.dumps([first, loaded, host.call()]))"
    )
    assert data == ["ext sees host 1.0", [], "ext sees host 2.0"]


def test_a_nested_portion_missing_from_the_set_is_asked_for(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as info:
        shade([], [host(tmp_path / "old", "1.0")], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert "host 1.0 imports host.ext, which no wheel of the set installs" in issue
    assert issue.endswith("shade it in the same set: --dep host-ext")
    assert not (tmp_path / "out").exists()


def test_a_test_module_importing_a_left_out_test_package_is_not_a_portion(tmp_path: Path) -> None:
    """Wheels routinely ship test modules without the test helpers they import
    (``host/dynamic/test_client.py: from host.e2e_test import base``): that says nothing
    about a distribution installing into ``host``, so the set shades as it is."""
    files = {
        "host/__init__.py": "VERSION = '1.0'\n",
        "host/dynamic/__init__.py": "",
        "host/dynamic/test_client.py": "from host.e2e_test import base\n",
        "host/tests/test_more.py": "import host.fixtures\n",
    }
    wheel = make_wheel(tmp_path / "old", "host", "1.0", files, requires=("other-dist",))
    (report,) = shade([], [wheel], out_dir=tmp_path / "out").wheels
    assert report.mapping["host"].startswith("host_1_0_")


def test_an_import_no_required_distribution_is_named_for_is_said_not_refused(
    tmp_path: Path,
) -> None:
    """``host/cli/fuse.py`` imports a ``host.fuse`` the package no longer ships (a stale
    module, broken unshaded too) and nothing it requires is named for it: a note, and the
    set shades; a distribution named for it (``host-ext``) is still asked for."""
    files = {"host/__init__.py": "VERSION = '1.0'\n", "host/cli/__init__.py": "",
             "host/cli/fuse.py": "from host.fuse import Mount\n"}
    wheel = make_wheel(tmp_path / "old", "host", "1.0", files, requires=("aiohttp", "fsspec"))
    result = shade([], [wheel], out_dir=tmp_path / "out")
    (report,) = result.wheels
    assert report.mapping["host"].startswith("host_1_0_")
    assert any("imports host.fuse, which no wheel of the set installs and no distribution "
               "it requires is named for" in w for w in result.warnings)
