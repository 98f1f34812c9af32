"""Before/after tables for rewriting imports of shaded packages."""

from __future__ import annotations

import re
from textwrap import dedent

import pytest

from wheelshade.errors import RewriteError
from wheelshade.rewrite import mentions, rewrite_source
from wheelshade.rewrite.segments import decode, innermost_ranges

MAPPING = {"flask": "flask_0_12_4_abcd1234", "jinja2": "jinja2_2_11_3_abcd1234"}


def case(case_id: str, before: str, after: str | None = None) -> object:
    """One table row; after=None means the source must come back unchanged."""
    before = dedent(before)
    return pytest.param(before, before if after is None else dedent(after), id=case_id)


CASES = [
    # import statements
    case("import", "import flask\n", "import flask_0_12_4_abcd1234 as flask\n"),
    case("import-as", "import flask as f\n", "import flask_0_12_4_abcd1234 as f\n"),
    case(
        "import-dotted",
        "import flask.json\n",
        "import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask\n",
    ),
    case(
        "import-dotted-deep",
        "import flask.json.tag\n",
        "import flask_0_12_4_abcd1234.json.tag, flask_0_12_4_abcd1234 as flask\n",
    ),
    case(
        "import-dotted-as", "import flask.json as fj\n", "import flask_0_12_4_abcd1234.json as fj\n"
    ),
    case(
        "import-dotted-spaced",
        "import flask . json\n",
        "import flask_0_12_4_abcd1234 . json, flask_0_12_4_abcd1234 as flask\n",
    ),
    case(
        "import-list",
        "import os, flask.json, sys\n",
        "import os, flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask, sys\n",
    ),
    case(
        "import-two-dotted",
        "import flask.json, flask.cli\n",
        "import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234.cli,"
        " flask_0_12_4_abcd1234 as flask\n",
    ),
    case(
        "import-plain-and-dotted",
        "import flask, flask.json\n",
        "import flask_0_12_4_abcd1234 as flask, flask_0_12_4_abcd1234.json\n",
    ),
    case(
        "import-dotted-and-as",
        "import flask.json, flask as f\n",
        "import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask,"
        " flask_0_12_4_abcd1234 as f\n",
    ),
    case(
        "import-two-packages",
        "import flask.json, jinja2.ext\n",
        "import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask,"
        " jinja2_2_11_3_abcd1234.ext, jinja2_2_11_3_abcd1234 as jinja2\n",
    ),
    case(
        "import-trailing-comment",
        "import flask  # the web framework\n",
        "import flask_0_12_4_abcd1234 as flask  # the web framework\n",
    ),
    case("import-no-final-newline", "import flask", "import flask_0_12_4_abcd1234 as flask"),
    # from-imports
    case("from", "from flask import Flask\n", "from flask_0_12_4_abcd1234 import Flask\n"),
    case(
        "from-as",
        "from flask import Flask as F\n",
        "from flask_0_12_4_abcd1234 import Flask as F\n",
    ),
    case("from-parens", "from flask import (a, b)\n", "from flask_0_12_4_abcd1234 import (a, b)\n"),
    case("from-star", "from flask import *\n", "from flask_0_12_4_abcd1234 import *\n"),
    case(
        "from-dotted",
        "from flask.json import dumps\n",
        "from flask_0_12_4_abcd1234.json import dumps\n",
    ),
    case(
        "from-multiline-comments",
        """\
        from flask import (  # web
            Flask,  # the app
            # a comment line
            request,
        )
        """,
        """\
        from flask_0_12_4_abcd1234 import (  # web
            Flask,  # the app
            # a comment line
            request,
        )
        """,
    ),
    # placements
    case(
        "in-function",
        """\
        def app():
            import flask
            from flask import json
            return flask.Flask(__name__)
        """,
        """\
        def app():
            import flask_0_12_4_abcd1234 as flask
            from flask_0_12_4_abcd1234 import json
            return flask.Flask(__name__)
        """,
    ),
    case(
        "in-class",
        "class A:\n    from flask import Flask\n",
        "class A:\n    from flask_0_12_4_abcd1234 import Flask\n",
    ),
    case(
        "in-try-except",
        """\
        try:
            import flask.json
        except ImportError:  # optional
            flask = None
        """,
        """\
        try:
            import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask
        except ImportError:  # optional
            flask = None
        """,
    ),
    case(
        "in-type-checking",
        """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from flask import Flask
        """,
        """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from flask_0_12_4_abcd1234 import Flask
        """,
    ),
    case(
        "in-nested-if",
        """\
        import sys
        if sys.version_info >= (3, 8):
            if True:
                import jinja2
        else:
            from jinja2 import ext
        """,
        """\
        import sys
        if sys.version_info >= (3, 8):
            if True:
                import jinja2_2_11_3_abcd1234 as jinja2
        else:
            from jinja2_2_11_3_abcd1234 import ext
        """,
    ),
    case(
        "in-with",
        "with ctx():\n    import flask as f\n",
        "with ctx():\n    import flask_0_12_4_abcd1234 as f\n",
    ),
    case(
        "tabs",
        "if x:\n\timport flask\n\tfrom flask import g\n",
        "if x:\n\timport flask_0_12_4_abcd1234 as flask\n\tfrom flask_0_12_4_abcd1234 import g\n",
    ),
    # layout
    case(
        "semicolons",
        "import flask; import sys\n",
        "import flask_0_12_4_abcd1234 as flask; import sys\n",
    ),
    case(
        "continuation-before",
        "import os, \\\n    flask.json\n",
        "import os, \\\n    flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask\n",
    ),
    case(
        "continuation-after",
        "import flask.json, \\\n    sys\n",
        "import flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask, \\\n    sys\n",
    ),
    case(
        "only-imports-change",
        '''\
        """Uses flask: import flask is how."""
        # import flask
        import flask
        x = "flask"
        y = flask.Flask
        z = obj.flask
        ''',
        '''\
        """Uses flask: import flask is how."""
        # import flask
        import flask_0_12_4_abcd1234 as flask
        x = "flask"
        y = flask.Flask
        z = obj.flask
        ''',
    ),
    # left alone
    case("other-package", "import flaskext\n"),
    case("prefixed-package", "from flask_login import x\n"),
    case("relative-module", "from .flask import y\n"),
    case("relative-name", "from . import flask\n"),
    case("relative-parent", "from ..flask.json import y\n"),
    case("future", "from __future__ import annotations\nimport sys\n"),
    case("strings-and-attributes", 'x = "flask"\ny = app.flask.json\n# flask\n'),
    case("already-shaded", "import flask_0_12_4_abcd1234 as flask\n"),
    case("already-shaded-from", "from flask_0_12_4_abcd1234.json import x\n"),
    case("unrelated", "import os\nprint(os.sep)\n"),
]

BYTES_CASES = [
    pytest.param(
        b"import flask\r\nimport os\r\n",
        b"import flask_0_12_4_abcd1234 as flask\r\nimport os\r\n",
        id="crlf",
    ),
    pytest.param(
        b"\xef\xbb\xbfimport flask.json\n",
        b"\xef\xbb\xbfimport flask_0_12_4_abcd1234.json, flask_0_12_4_abcd1234 as flask\n",
        id="bom",
    ),
    pytest.param(
        b"# -*- coding: latin-1 -*-\n# caf\xe9 flask\nimport jinja2\n",
        b"# -*- coding: latin-1 -*-\n# caf\xe9 flask\nimport jinja2_2_11_3_abcd1234 as jinja2\n",
        id="latin-1-changed",
    ),
    pytest.param(
        b"# -*- coding: latin-1 -*-\n# caf\xe9 flask\nx = 'flask'\n", None, id="latin-1-unchanged"
    ),
]


@pytest.mark.parametrize(("before", "after"), CASES)
def test_rewrite(before: str, after: str) -> None:
    result = rewrite_source(before.encode(), MAPPING, path="pkg/mod.py")
    assert result == (None if after == before else after.encode())


@pytest.mark.parametrize(("before", "after"), CASES)
def test_rewrite_is_idempotent(before: str, after: str) -> None:
    assert rewrite_source(after.encode(), MAPPING, path="pkg/mod.py") is None


@pytest.mark.parametrize(("before", "after"), BYTES_CASES)
def test_rewrite_bytes(before: bytes, after: bytes | None) -> None:
    result = rewrite_source(before, MAPPING, path="pkg/mod.py")
    assert result == after
    if result is not None:
        assert rewrite_source(result, MAPPING, path="pkg/mod.py") is None


def test_latin_1_stays_latin_1() -> None:
    source = "# -*- coding: latin-1 -*-\n# café\nfrom flask import g\n"
    result = rewrite_source(source.encode("latin-1"), MAPPING, path="pkg/mod.py")
    assert result is not None
    expected = "# -*- coding: latin-1 -*-\n# café\nfrom flask_0_12_4_abcd1234 import g\n"
    assert result.decode("latin-1") == expected


def test_stub_file() -> None:
    source = b"from flask import Flask as Flask\ndef app() -> Flask: ...\n"
    result = rewrite_source(source, MAPPING, path="pkg/mod.pyi")
    assert result == b"from flask_0_12_4_abcd1234 import Flask as Flask\ndef app() -> Flask: ...\n"


def test_parse_failure_names_path_and_line() -> None:
    source = b'import flask\nprint "x"\n'
    with pytest.raises(RewriteError) as info:
        rewrite_source(source, MAPPING, path="pkg/old.py")
    assert info.value.path == "pkg/old.py"
    assert info.value.line == 2
    assert re.match(
        r"^pkg/old\.py:2: cannot parse as Python 3 source: invalid syntax near 'print \"x\"' \(",
        str(info.value),
    )


def test_undecodable_source_raises() -> None:
    with pytest.raises(RewriteError, match=r"^pkg/bad\.py: cannot parse as Python 3 source: "):
        rewrite_source(b"# caf\xe9\nimport flask\n", MAPPING, path="pkg/bad.py")


def test_unmentioned_file_is_not_parsed() -> None:
    # Python 2 source that cannot need a change is skipped by the textual pre-check.
    assert rewrite_source(b'import os\nprint "x"\n', MAPPING, path="pkg/old.py") is None


@pytest.mark.parametrize("mapping", [
    {"flask.json.x": "a.b"}, {"flask.json": "x.y.z"}, {"flask": "a.b"}, {"flask": "flask"}])
def test_mapping_must_rename_top_level_names(mapping: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not a top-level rename"):
        rewrite_source(b"import flask\n", mapping, path="pkg/mod.py")


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        pytest.param(b"import flaskext\n", ["flask"], False, id="prefix-word"),
        pytest.param(b"import my_flask\n", ["flask"], False, id="suffix-word"),
        pytest.param(b"x = flask.x\n", ["flask"], True, id="attribute"),
        pytest.param(b"import flask\n", ["flask"], True, id="import"),
        pytest.param(b"from flask_login import x\n", ["flask"], False, id="underscore-word"),
        pytest.param(b"import os\n", ["flask", "jinja2"], False, id="none"),
        pytest.param(b"# jinja2\n", ["flask", "jinja2"], True, id="second-name-in-comment"),
        pytest.param(b"import flask\n", [], False, id="no-names"),
        pytest.param(b"import os\n", ["flask\u00e9"], True, id="non-ascii-name-assumed"),
    ],
)
def test_mentions(source: bytes, names: list[str], expected: bool) -> None:
    assert mentions(source, names) is expected


@pytest.mark.parametrize(("source", "candidate", "ranges"), [
    # A comment in a class body mentions the name: nothing to parse.
    ("class A:\n    # flask is great\n    x = 1\n", {1}, []),
    # The header names it: the whole class is one statement to parse.
    ("class A(flask.Base):\n    # flask\n    x = 1\n", {0, 1}, [(0, 3)]),
    # A statement inside names it: only that statement.
    ("class A:\n    # flask\n    import flask\n    y = 2\n", {1, 2}, [(2, 3)]),
    # ``except flask.Error:`` is a header line of the try statement.
    ("try:\n    x = 1\nexcept flask.Error:\n    pass\n", {2}, [(0, 4)]),
], ids=["comment-in-body", "header", "child", "except-header"])
def test_only_statements_with_code_naming_a_module_are_parsed(
    source: str, candidate: set[int], ranges: list[tuple[int, int]]
) -> None:
    src = decode(source.encode(), "m.py")
    assert innermost_ranges(src, candidate) == ranges
