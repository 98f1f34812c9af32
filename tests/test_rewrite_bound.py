"""The names a module binds at module level: the evidence that ``"pkg.mod.Name"`` is a path."""

from __future__ import annotations

from pathlib import Path

from helpers import make_wheel
from wheelshade.rewrite import StringRules, rewrite_source
from wheelshade.rewrite.bound import bound_names, set_attributes


def test_module_level_bindings_only() -> None:
    source = (
        "from x import a, \\\n    b as c\n"
        "from y import (d,  # a comment\n    e)\n"
        "import json\nimport os.path as osp\n"
        "if X:\n    f = 1\n    def g():\n        h = 2\nelse:\n    from z import i\n"
        "class K:\n    L = 1\n"
        '__all__ = ["m"]\n'
        "n: int = 4\no, p = 1, 2\nq == r\n"
    )
    assert bound_names(source) == frozenset(
        {"a", "c", "d", "e", "^json", "osp", "f", "g", "i", "K", "__all__", "m", "n", "o", "p"}
    )


def test_star_imports_are_followed_and_unknowable_modules_left_open(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "pkg", "1.0", {
        "pkg/__init__.py": "from .models import *\nfrom os.path import *\nVERSION = 1\n",
        "pkg/models/__init__.py": "from .fields import *\n",
        "pkg/models/fields.py": "class AutoField:\n    pass\n",
        "pkg/lazy.py": "def __getattr__(name):\n    return name\n",
        "pkg/sub.py": "import json\nX = 1\n",
        "solo/__init__.py": "import json\nX = 1\n",
    })
    names = set_attributes([(wheel, "sha")])
    assert names["pkg.models"] == frozenset({"AutoField"})
    assert "pkg" not in names  # star-imports os.path: its names cannot be known
    assert "pkg.lazy" not in names  # __getattr__: any name
    # A plain import binds a name in a submodule, not in a top-level package ("solo.json").
    assert names["pkg.sub"] == frozenset({"json", "X"})
    assert names["solo"] == frozenset({"X"})


def test_a_name_registered_in_a_process_wide_registry_belongs_to_the_package(
    tmp_path: Path,
) -> None:
    """Both copies would register ``pkg.url_quote`` and the last would win for both."""
    wheel = make_wheel(tmp_path, "pkg", "1.0", {
        "pkg/__init__.py": "X = 1\n",
        "pkg/urls.py": (
            "import codecs\n"
            "def _handler(exc):\n    return ('%', exc.end)\n"
            'codecs.register_error("pkg.url_quote", _handler)\n'
        ),
    })
    names = set_attributes([(wheel, "sha-registry")])
    assert "url_quote" in names["pkg"]
    rules = StringRules({"pkg": "pkg_1_0_h"}, frozenset({"pkg", "pkg.urls"}), {}, names)
    before = 'def uri(s, errors="pkg.url_quote"):\n    return s.decode("utf-8", errors)\n'
    after = rewrite_source(before.encode(), rules.imports, path="pkg/urls.py", strings=rules)
    assert after is not None and b'errors="pkg_1_0_h.url_quote"' in after
