"""A namespace portion importing modules another distribution installs in its namespace:
a sibling portion keeps its name, at any depth of nested namespaces (``ns.sub.beta`` beside
``ns.sub.alpha``); one reached by a relative import that leaves the portion is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Venv, make_wheel, validate_record
from wheelshade import PlanError, shade
from wheelshade.resolve.fetch import IndexOptions
from wheelshade.verify.leaks import verify


def alpha(out: Path, version: str) -> Path:
    init = (
        f"VERSION = {version!r}\n\nfrom ns.beta import helper\n\n\n"
        "def call():\n    return helper.greet() + ' from alpha ' + VERSION\n"
    )
    return make_wheel(out, "ns_alpha", version, {"ns/alpha/__init__.py": init},
                      requires=("ns-beta",))


def beta(out: Path) -> Path:
    files = {"ns/beta/__init__.py": "", "ns/beta/helper.py": "def greet():\n    return 'beta'\n"}
    return make_wheel(out, "ns_beta", "1.0", files)


def test_a_sibling_portion_of_another_distribution_keeps_its_name(tmp_path: Path) -> None:
    result = shade([], [alpha(tmp_path / "old", "1.0")], out_dir=tmp_path / "out")
    (report,) = result.wheels
    name = report.mapping["ns.alpha"]
    validate_record(report.output)
    venv = Venv.create(tmp_path / "venv")
    venv.install("--find-links", tmp_path / "dists", beta(tmp_path / "dists"), report.output,
                 alpha(tmp_path / "new", "2.0"))
    assert venv.pip("check", check=False).returncode == 0
    data = venv.json(
        f"import json, sys\nimport {name} as old\nfirst = old.call()\n"
        "from ns import alpha\nprint(json.dumps([first, alpha.call(), "
        "sorted(m for m in sys.modules if m.startswith('ns.alpha'))]))"
    )
    assert data == ["beta from alpha 1.0", "beta from alpha 2.0", ["ns.alpha"]]


def sub_alpha(out: Path, version: str) -> Path:
    """``ns/sub`` is a namespace ``ns-sub-alpha`` shares with ``ns-sub-beta``; alpha's code
    imports beta beside it, absolute and by ``from ns.sub import ...``."""
    init = (
        f"VERSION = {version!r}\nfrom ns.sub import beta, alpha as me\n"
        "import ns.sub.beta\nimport ns.sub.alpha.impl\n\n\n"
        "def call():\n    return (beta.greet() + ' ' + ns.sub.beta.greet() + ' from alpha '"
        " + me.VERSION + ns.sub.alpha.impl.TAIL)\n"
    )
    files = {"ns/sub/alpha/__init__.py": init, "ns/sub/alpha/impl.py": "TAIL = '!'\n"}
    return make_wheel(out, "ns_sub_alpha", version, files, requires=("ns-sub-beta",))


def sub_beta(out: Path) -> Path:
    return make_wheel(out, "ns_sub_beta", "1.0",
                      {"ns/sub/beta.py": "def greet():\n    return 'beta'\n"})


def test_a_portion_below_a_shared_nested_namespace_keeps_its_siblings(tmp_path: Path) -> None:
    """The portion key starts at the first level that is not a namespace (``ns.sub.alpha``),
    so ``ns.sub.beta`` of another distribution keeps its name, and both versions of alpha
    run beside each other on the one unshaded beta."""
    consumer = make_wheel(tmp_path / "app", "app", "1.0", {"app.py": (
        "import ns.sub.alpha\nfrom ns.sub import alpha as a, beta\n\n\n"
        "def run():\n    return [ns.sub.alpha.call(), a.VERSION, beta.greet()]\n")},
        requires=("ns-sub-alpha==1.0",))
    result = shade([consumer], [sub_alpha(tmp_path / "old", "1.0")], out_dir=tmp_path / "out")
    shaded = next(r for r in result.wheels if r.mapping)
    name = shaded.mapping["ns.sub.alpha"]
    assert set(shaded.mapping) == {"ns.sub.alpha"} and name.endswith(".sub.alpha")
    for report in result.wheels:
        validate_record(report.output)
    venv = Venv.create(tmp_path / "venv")
    venv.install("--find-links", tmp_path / "dists", sub_beta(tmp_path / "dists"),
                 *(r.output for r in result.wheels), sub_alpha(tmp_path / "new", "2.0"))
    assert venv.pip("check", check=False).returncode == 0
    data = venv.json(
        "import json, sys\nimport app\nfirst = app.run()\n"
        "from ns.sub import alpha\nprint(json.dumps([first, alpha.call(), "
        "sorted(m for m in sys.modules if m.startswith('ns.sub.alpha'))]))"
    )
    assert data == [
        ["beta beta from alpha 1.0!", "1.0", "beta"],
        "beta beta from alpha 2.0!",
        ["ns.sub.alpha", "ns.sub.alpha.impl"],
    ]


def test_two_portions_of_one_nested_namespace_shade_as_one_set(tmp_path: Path) -> None:
    """Two distributions of the set install into the nested namespace ``ns/exp/otlp``: their
    keys (``ns.exp.otlp.common``, ``ns.exp.otlp.http``) do not clash."""
    common = make_wheel(tmp_path / "in", "ns_exp_common", "1.0",
                        {"ns/exp/otlp/common/__init__.py": "X = 'common 1.0'\n"})
    http = make_wheel(tmp_path / "in", "ns_exp_http", "1.0", {
        "ns/exp/otlp/http/__init__.py": (
            "from ns.exp.otlp.common import X\n\n\ndef call():\n    return 'http ' + X\n")},
        requires=("ns-exp-common==1.0",))
    result = shade([], [common, http], out_dir=tmp_path / "out")
    mapping = {k: v for r in result.wheels for k, v in r.mapping.items()}
    assert set(mapping) == {"ns.exp.otlp.common", "ns.exp.otlp.http"}
    venv = Venv.create(tmp_path / "venv")
    venv.install(*(r.output for r in result.wheels))
    module = mapping["ns.exp.otlp.http"]
    assert venv.json(
        f"import json\nimport {module} as h\nprint(json.dumps(h.call()))") == "http common 1.0"


def test_a_portion_inside_another_members_regular_package_is_refused(tmp_path: Path) -> None:
    host = make_wheel(tmp_path / "in", "ns_host", "1.0",
                      {"ns/host/__init__.py": "", "ns/host/core.py": ""})
    plugin = make_wheel(tmp_path / "in", "ns_host_plugin", "1.0",
                        {"ns/host/plugin/__init__.py": "from ns.host import core\n"})
    with pytest.raises(PlanError) as info:
        shade([], [host, plugin], out_dir=tmp_path / "out")
    assert any("installs 'ns.host.plugin' inside the package 'ns.host'" in i
               for i in info.value.issues)


def test_a_relative_import_leaving_the_portion_is_refused(tmp_path: Path) -> None:
    files = {"ns/alpha/__init__.py": "from ..beta import helper\n"}
    wheel = make_wheel(tmp_path / "old", "ns_alpha", "1.0", files, requires=("ns-beta",))
    with pytest.raises(PlanError) as info:
        shade([], [wheel], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert issue.startswith(
        "ns-alpha 1.0 imports ns.beta by a relative import that leaves its portion, and "
        "another distribution (ns-beta) installs it in the namespace 'ns'")
    assert not (tmp_path / "out").exists()


def test_a_relative_import_leaving_a_portion_of_a_nested_namespace_is_refused(
    tmp_path: Path,
) -> None:
    files = {"ns/sub/alpha/__init__.py": "from .. import beta\n", "ns/sub/alpha/x.py": ""}
    wheel = make_wheel(tmp_path / "old", "ns_sub_alpha", "1.0", files,
                       requires=("ns-sub-beta",))
    with pytest.raises(PlanError) as info:
        shade([], [wheel], out_dir=tmp_path / "out")
    (issue,) = info.value.issues
    assert issue.startswith("ns-sub-alpha 1.0 imports ns.sub.beta by a relative import")


def test_imports_inside_its_own_portion_and_regular_packages_pass(tmp_path: Path) -> None:
    files = {
        "ns/sub/alpha/__init__.py": "from ns.sub.alpha import impl\nfrom . import impl as i\n",
        "ns/sub/alpha/impl.py": "from ns.sub.alpha.impl2 import x\nfrom .. import alpha\n",
        "ns/sub/alpha/impl2.py": "x = 1\n",
    }
    wheel = make_wheel(tmp_path / "old", "ns_sub_alpha", "1.0", files, requires=("other",))
    (report,) = shade([], [wheel], out_dir=tmp_path / "out").wheels
    assert set(report.mapping) == {"ns.sub.alpha"}


def test_a_regular_package_portion_missing_a_submodule_is_not_a_sibling(tmp_path: Path) -> None:
    """Below ``ns/p/__init__.py`` no other distribution installs: a benchmark importing a
    module the wheel leaves out is not refused here."""
    files = {
        "ns/p/__init__.py": "",
        "ns/p/bench.py": "from ns.p.generated import case_pb2\nfrom ns.p.bench import x\n",
    }
    wheel = make_wheel(tmp_path / "old", "ns_p", "1.0", files, requires=("other",))
    (report,) = shade([], [wheel], out_dir=tmp_path / "out").wheels
    assert set(report.mapping) == {"ns.p"}


def test_verify_watches_only_what_the_portion_installs_in_a_shared_namespace(
    tmp_path: Path,
) -> None:
    """``ns/sub`` is shared: ``ns-other`` (a sibling portion, unshaded) imports
    ``ns.sub.gamma`` of ``ns-sub-gamma``. Neither is the shaded distribution's, so
    loading them is no leak; ``ns.sub.alpha`` under its original name would be."""
    dists = tmp_path / "dists"
    make_wheel(dists, "ns_other", "1.0", {"ns/other/__init__.py": "import ns.sub.gamma\n"},
               requires=("ns-sub-gamma",))
    make_wheel(dists, "ns_sub_gamma", "1.0", {"ns/sub/gamma.py": "G = 1\n"})
    files = {"ns/sub/alpha/__init__.py": "import ns.other\nV = '{v}'\n"}
    for version in ("1.0", "2.0"):
        make_wheel(dists, "ns_sub_alpha", version,
                   {k: t.format(v=version) for k, t in files.items()}, requires=("ns-other",))
    old = dists / "ns_sub_alpha-1.0-py3-none-any.whl"
    (shaded,) = shade([], [old], out_dir=tmp_path / "out").wheels
    index = IndexOptions(find_links=(str(dists),), no_index=True)
    report = verify([shaded.output], with_requirements=["ns-sub-alpha==2.0"], index=index)
    assert report.originals == ("ns.sub.alpha",)
    (verdict,) = report.wheels
    assert verdict.imported and not verdict.leaks


def test_portion_keys_start_at_the_first_level_that_is_not_a_namespace(tmp_path: Path) -> None:
    """``ns/cloud`` (no ``__init__``) is descended into; a compiled module alone in a nested
    namespace folder keeps the folder as its key (its init function names the module, so
    the module cannot take a top-level name: the folder, spelled whole, can)."""
    from wheelshade.wheel.archive import WheelReader
    from wheelshade.wheel.summary import Role, summarise

    files = {
        "ns/cloud/storage/__init__.py": "", "ns/cloud/storage/blob.py": "",
        "ns/cloud/helper.py": "", "ns/_impl/_ext.cpython-311-x86_64-linux-gnu.so": "",
        "ns/proto/__init__.py": "", "ns/proto/sub/x.py": "",
    }
    wheel = make_wheel(tmp_path, "ns_mixed", "1.0", files)
    with WheelReader(wheel) as reader:
        summary = summarise(reader, Role.DEP)
    assert summary.portions("ns") == ("_impl", "cloud.helper", "cloud.storage", "proto")
    assert summary.import_keys() == (
        "ns._impl", "ns.cloud.helper", "ns.cloud.storage", "ns.proto")
