"""Namespace package portions: ``acme/greet`` (no ``acme/__init__.py``) is shaded as the
portion ``acme.greet``; ``acme.other``, another distribution's portion, is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Venv, build_fixture, read_member
from wheelshade import shade
from wheelshade.plan import PlanError
from wheelshade.rewrite import StringRules, rewrite_source


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("acme")
    return {
        name: build_fixture(name, tmp / "dist", tmp / "src")
        for name in ("acmegreet1", "acmegreet2", "acmeother", "acmeapp")
    }


@pytest.fixture(scope="module")
def shaded(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("out")
    result = shade([built["acmeapp"]], [built["acmegreet1"]], out_dir=out)
    reports = {r.original.split()[0]: r for r in result.wheels}
    dep = reports["acme-greet"]
    ((key, value),) = dep.mapping.items()
    assert key == "acme.greet" and value.endswith(".greet") and value.startswith("acme_1_0_")
    return {"dep": dep.output, "app": reports["acmeapp"].output, "head": Path(value.split(".")[0])}


def test_the_portion_moves_into_a_shaded_namespace(shaded: dict[str, Path]) -> None:
    head = str(shaded["head"])
    init = read_member(shaded["dep"], f"{head}/greet/__init__.py")
    assert f"import {head}.greet.words" in init
    assert f"{head}.greet.words.GREETING" in init
    assert f'importlib.import_module("{head}.greet.words")' in init
    assert read_member(shaded["dep"], "top_level.txt").split() == [head]
    assert f"greet = {head}.greet.plugin:hook" in read_member(shaded["dep"], "entry_points.txt")
    app = read_member(shaded["app"], "acmeapp/__init__.py")
    assert f"import {head}.greet\nimport acme.other\nfrom {head} import greet as g\n" in app
    assert f"from {head}.greet.words import GREETING" in app
    assert f"{head}.greet.hello" in app and "acme.other.NAME" in app


def test_both_versions_and_the_other_portion_run_together(
    built: dict[str, Path], shaded: dict[str, Path], tmp_path: Path
) -> None:
    env = Venv.create(tmp_path / "env")
    env.install(shaded["dep"], shaded["app"], built["acmegreet2"], built["acmeother"])
    assert env.pip("check").returncode == 0
    head = str(shaded["head"])
    data = env.json(
        "import json, sys\nimport acmeapp\nimport acme.greet\nimport acme.other\n"
        "print(json.dumps([acmeapp.run(), acme.greet.hello('you'), acme.other.NAME,\n"
        "  sorted(k for k in sys.modules if k.startswith('acme.greet'))]))"
    )
    assert data == [
        ["hello app from acme.greet 1.0", "1.0", "hello", "acme.other", f"{head}.greet.words"],
        "howdy you from acme.greet 2.0",
        "acme.other",
        ["acme.greet", "acme.greet.words"],
    ]


def test_a_portion_given_twice_is_refused(built: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(PlanError) as info:
        shade([], [built["acmegreet1"], built["acmegreet2"]], out_dir=tmp_path / "out")
    assert any("given twice" in i for i in info.value.issues)


def test_alone_the_app_loads_nothing_of_the_original_portion(
    built: dict[str, Path], shaded: dict[str, Path], tmp_path: Path
) -> None:
    env = Venv.create(tmp_path / "env")
    env.install(shaded["dep"], shaded["app"], built["acmegreet2"], built["acmeother"])
    loaded = env.json(
        "import json, sys\nimport acmeapp\nacmeapp.run()\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.startswith('acme'))))"
    )
    head = str(shaded["head"])
    assert loaded == sorted(["acme", "acme.other", "acmeapp", head, f"{head}.greet",
                             f"{head}.greet.words"])


NS = {"google.auth": "g_1_0_h.auth", "google.oauth2": "g_1_0_h.oauth2"}


@pytest.mark.parametrize(("before", "after"), [
    ("from google import auth\n", "from g_1_0_h import auth\n"),
    ("from google import protobuf\n", None),
    ("import google\n", None),
    ("from google import auth, protobuf\n",
     "from g_1_0_h import auth; from google import protobuf\n"),
    ("from google import (protobuf,\n    auth as a, oauth2)\n",
     "from google import protobuf; from g_1_0_h import (auth as a, oauth2)\n"),
    ("if x:\n    from google import protobuf, auth; y = 2\n",
     "if x:\n    from google import protobuf; from g_1_0_h import auth; y = 2\n"),
    ("import google.auth.transport\nr = google.auth.transport.Request()\n"
     "m = google.protobuf.message\n",
     "import g_1_0_h.auth.transport\nr = g_1_0_h.auth.transport.Request()\n"
     "m = google.protobuf.message\n"),
    ("import google.oauth2 as o\nfrom google.auth.crypt import x\n",
     "import g_1_0_h.oauth2 as o\nfrom g_1_0_h.auth.crypt import x\n"),
], ids=["from-ns", "other-portion", "bare-namespace", "mixed", "mixed-parenthesized",
        "mixed-in-a-block", "chains", "dotted"])
def test_namespace_portion_rewrites(before: str, after: str | None) -> None:
    result = rewrite_source(before.encode(), NS, path="m.py", strings=StringRules(NS))
    assert (result.decode() if result is not None else None) == after


DEEP = {"google.auth": "g_1_0_h.auth", "google.cloud.storage": "g_3_0_h.cloud.storage",
        "nsx.sub.fastpart": "t5gq4ivbx2z7dmqa"}


@pytest.mark.parametrize(("before", "after"), [
    ("from google.cloud import storage\n", "from g_3_0_h.cloud import storage\n"),
    ("from google.cloud import _helpers\n", None),
    ("from google.cloud import storage, _helpers as h\n",
     "from g_3_0_h.cloud import storage; from google.cloud import _helpers as h\n"),
    ("import google.cloud.storage\nc = google.cloud.storage.Client()\n"
     "h = google.cloud._helpers\na = google.auth.x\n",
     "import g_3_0_h.cloud.storage\nc = g_3_0_h.cloud.storage.Client()\n"
     "h = google.cloud._helpers\na = g_1_0_h.auth.x\n"),
    ("from google.cloud.storage.blob import Blob\n",
     "from g_3_0_h.cloud.storage.blob import Blob\n"),
    ("import google.cloud\n", None),
    ("from nsx.sub import fastpart as f, other\n",
     "import t5gq4ivbx2z7dmqa as f; from nsx.sub import other\n"),
    ("import nsx.sub.fastpart.x\ny = nsx.sub.fastpart.x.f()\n",
     "import t5gq4ivbx2z7dmqa.x\ny = t5gq4ivbx2z7dmqa.x.f()\n"),
    ("s = 'google.cloud.storage.blob'\nt = 'google.cloud._helpers'\n",
     "s = 'g_3_0_h.cloud.storage.blob'\nt = 'google.cloud._helpers'\n"),
], ids=["from-nested-ns", "sibling", "mixed", "chains", "dotted", "bare-nested-namespace",
        "collapsed-from", "collapsed-chain", "strings"])
def test_portions_below_a_nested_namespace_rewrite(before: str, after: str | None) -> None:
    modules = frozenset({"google.cloud.storage", "google.cloud.storage.blob", "google.auth"})
    rules = StringRules(DEEP, modules=modules)
    result = rewrite_source(before.encode(), DEEP, path="m.py", strings=rules)
    assert (result.decode() if result is not None else None) == after
