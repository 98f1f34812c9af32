"""Before/after table for names inside strings: module paths, sys.modules, metadata lookups."""

from __future__ import annotations

import textwrap

import pytest

from wheelshade.rewrite import StringRules, rewrite_file, rewrite_source

S = "flask_0_12_4_abcd1234"
J = "jinja2_2_11_3_abcd1234"
MAPPING = {"flask": S, "jinja2": J}
RULES = StringRules(
    MAPPING,
    frozenset(
        {"flask", "flask.json", "flask.app", "flask.cli", "jinja2", "jinja2.ext", "jinja2.runtime"}
    ),
    {"flask": "flask-0-12-4-abcd1234", "jinja2": "jinja2-2-11-3-abcd1234"},
    # What each module binds at module level (``bound.py``): ``"flask.png"`` is no name.
    {"flask": frozenset({"request_ctx", "Flask"}), "flask.json": frozenset({"dumps"}),
     "flask.app": frozenset({"Flask"}), "flask.cli": frozenset({"main"}),
     "jinja2": frozenset({"Template"}), "jinja2.ext": frozenset({"autoescape", "with_", "do"}),
     "jinja2.runtime": frozenset({"Context"})},
)

CASES: list[tuple[str, str, str]] = [
    (
        "import_module",
        'import importlib\nimportlib.import_module("flask.json")\n',
        f'import importlib\nimportlib.import_module("{S}.json")\n',
    ),
    (
        "import_module-bare",
        'import importlib\nm = importlib.import_module("flask")\n',
        f'import importlib\nm = importlib.import_module("{S}")\n',
    ),
    (
        "import_module-alias",
        'from importlib import import_module as im\nim("flask.app")\n',
        f'from importlib import import_module as im\nim("{S}.app")\n',
    ),
    (
        "import_module-package-arg",
        'from importlib import import_module\nimport_module(".json", "flask")\n',
        f'from importlib import import_module\nimport_module(".json", "{S}")\n',
    ),
    (
        "import_module-package-kwarg",
        'from importlib import import_module\nimport_module(".json", package="flask")\n',
        f'from importlib import import_module\nimport_module(".json", package="{S}")\n',
    ),
    ("dunder-import", 'm = __import__("flask")\n', f'm = __import__("{S}")\n'),
    (
        "find_spec",
        'import importlib.util\nimportlib.util.find_spec("flask")\n',
        f'import importlib.util\nimportlib.util.find_spec("{S}")\n',
    ),
    (
        "resolve_name",
        'import pkgutil\npkgutil.resolve_name("flask.app:Flask")\n',
        f'import pkgutil\npkgutil.resolve_name("{S}.app:Flask")\n',
    ),
    (
        "fstring-leading-literal",
        'from importlib import import_module\nimport_module(f"flask.ext.{name}")\n',
        f'from importlib import import_module\nimport_module(f"{S}.ext.{{name}}")\n',
    ),
    (
        "fstring-other-package",
        'from importlib import import_module\nimport_module(f"flaskext.{name}")\n',
        None,
    ),
    (
        "sys-modules-subscript",
        'import sys\nm = sys.modules["flask"]\n',
        f'import sys\nm = sys.modules["{S}"]\n',
    ),
    (
        "sys-modules-get",
        'import sys\nm = sys.modules.get("flask.json")\n',
        f'import sys\nm = sys.modules.get("{S}.json")\n',
    ),
    (
        "sys-modules-in",
        'import sys\nok = "flask" in sys.modules\n',
        f'import sys\nok = "{S}" in sys.modules\n',
    ),
    (
        "sys-modules-not-in",
        'import sys\nok = "flask" not in sys.modules\n',
        f'import sys\nok = "{S}" not in sys.modules\n',
    ),
    (
        "metadata-version",
        'from importlib import metadata\nv = metadata.version("flask")\n',
        'from importlib import metadata\nv = metadata.version("flask-0-12-4-abcd1234")\n',
    ),
    (
        "metadata-version-spelling",
        'import importlib.metadata\nv = importlib.metadata.version("Flask")\n',
        'import importlib.metadata\nv = importlib.metadata.version("flask-0-12-4-abcd1234")\n',
    ),
    (
        "metadata-distribution",
        'from importlib.metadata import distribution\nd = distribution("Jinja2")\n',
        'from importlib.metadata import distribution\nd = distribution("jinja2-2-11-3-abcd1234")\n',
    ),
    (
        "metadata-backport",
        'import importlib_metadata\nimportlib_metadata.files("flask")\n',
        'import importlib_metadata\nimportlib_metadata.files("flask-0-12-4-abcd1234")\n',
    ),
    (
        "pkg_resources-get_distribution",
        'import pkg_resources\npkg_resources.get_distribution("flask").version\n',
        'import pkg_resources\npkg_resources.get_distribution("flask-0-12-4-abcd1234").version\n',
    ),
    (
        "pkg_resources-require",
        'import pkg_resources\npkg_resources.require("Flask>=0.10")\n',
        'import pkg_resources\npkg_resources.require("flask-0-12-4-abcd1234>=0.10")\n',
    ),
    (
        "pkg_resources-resource",
        'import pkg_resources\npkg_resources.resource_filename("flask", "x")\n',
        f'import pkg_resources\npkg_resources.resource_filename("{S}", "x")\n',
    ),
    (
        "resources-files",
        'from importlib import resources\nresources.files("flask")\n',
        f'from importlib import resources\nresources.files("{S}")\n',
    ),
    (
        "pkgutil-get_data",
        'import pkgutil\npkgutil.get_data("flask", "a.txt")\n',
        f'import pkgutil\npkgutil.get_data("{S}", "a.txt")\n',
    ),
    (
        "mock-patch",
        'from unittest import mock\nmock.patch("flask.app.Flask.run")\n',
        f'from unittest import mock\nmock.patch("{S}.app.Flask.run")\n',
    ),
    (
        "monkeypatch-setattr",
        'def test(monkeypatch):\n    monkeypatch.setattr("flask.app.x", 1)\n',
        f'def test(monkeypatch):\n    monkeypatch.setattr("{S}.app.x", 1)\n',
    ),
    (
        "dotted-module-attr-literal",
        'EXT = ["jinja2.ext.autoescape", "jinja2.ext.with_"]\n',
        f'EXT = ["{J}.ext.autoescape", "{J}.ext.with_"]\n',
    ),
    ("dotted-module-literal", 'name = "flask.json"\n', f'name = "{S}.json"\n'),
    ("module-colon-attr", 'ref = "flask.cli:main"\n', f'ref = "{S}.cli:main"\n'),
    (
        "generated-code",
        'w("from jinja2.runtime import " + ", ".join(names))\n',
        f'w("from {J}.runtime import " + ", ".join(names))\n',
    ),
    (
        "generated-code-with-escape",
        "w('from jinja2.runtime import x\\n')\n",
        f"w('from {J}.runtime import x\\n')\n",
    ),
    ("generated-import", 'code = "import jinja2\\n"\n', f'code = "import {J} as jinja2\\n"\n'),
    (
        "generated-import-then-use",
        'exec("import flask\\nflask.x()\\n")\n',
        f'exec("import {S} as flask\\nflask.x()\\n")\n',
    ),
    (
        "generated-import-dotted",
        'c = "import flask.json"\n',
        f'c = "import {S}.json, {S} as flask"\n',
    ),
    ("generated-import-aliased", 'c = "import flask as f"\n', f'c = "import {S} as f"\n'),
    ("annotation-string", "def f() -> 'flask.json':\n    pass\n", None),
    ("annotation-variable", 'x: "flask.json" = 1\n', None),
    ("single-quotes-raw-prefix", "x = r'jinja2.ext.do'\n", f"x = r'{J}.ext.do'\n"),
    (
        "name-imported-twice-in-two-scopes",
        "class C:\n    from flask import VERSION as version\n"
        "def f():\n    from importlib.metadata import version\n    return version('flask')\n",
        f"class C:\n    from {S} import VERSION as version\n"
        "def f():\n    from importlib.metadata import version\n"
        "    return version('flask-0-12-4-abcd1234')\n",
    ),
    (
        "package-prefix-for-run-time-names",
        'name = "flask.json." + sub\nrest = mod.__name__[len("jinja2."):]\n',
        f'name = "{S}.json." + sub\nrest = mod.__name__[len("{J}."):]\n',
    ),
    (
        "fstring-package-prefix-anywhere",
        'path = f"flask.json.{item}"\nother = f"flask.nosuch.{item}"\n',
        f'path = f"{S}.json.{{item}}"\nother = f"flask.nosuch.{{item}}"\n',
    ),
    # Left alone: not module references.
    ("logger-name", 'import logging\nlog = logging.getLogger("flask.app")\n', None),
    ("bare-name-elsewhere", 'KEY = {"flask": 1}\n', None),
    ("not-a-module-of-the-set", 'env = {"jinja2.x.y": 1, "flask.a.b.c": 2}\n', None),
    ("module-plus-one-attribute", 'KEY = "flask.request_ctx"\n', f'KEY = "{S}.request_ctx"\n'),
    # Class 1: a resource file named after its package is no module path.
    ("resource-file-named-after-package", 'ICON = "flask.png"\nDATA = "jinja2.ext.json"\n', None),
    ("resource-file-in-a-call", 'open_resource("flask.json.gz")\n', None),
    # Class 2: a prefix checked against keys that are not module names.
    (
        "prefix-check-on-config-keys",
        'for k, v in conf.items():\n    if k.startswith("flask."):\n'
        '        opts[k[len("flask."):]] = v\n',
        None,
    ),
    # Class 6: an implicitly concatenated literal is one string.
    ("concatenated-prose", 'msg = ("see the module " "flask.json")\n', None),
    ("concatenated-path", 'name = ("flask." "json")\n', f'name = ("{S}." "json")\n'),
    (
        "concatenated-module-call",
        'import importlib\nimportlib.import_module("jinja2" ".ext")\n',
        f'import importlib\nimportlib.import_module("{J}" ".ext")\n',
    ),
    ("other-package", 'x = "flaskext.cache"\ny = "flask_login.utils"\n', None),
    ("prefix-of-no-module", 'p = "flask.nosuch."\nq = "werkzeug."\n', None),
    ("prose", 'msg = "flask.json is deprecated, use json"\n', None),
    ("docstring", '"""See flask.json for details."""\n', None),
    ("module-docstring-exact-path", '"""flask.json"""\n', None),
    ("bytes", 'b = b"flask.json"\n', None),
    ("comment", "# importlib.import_module('flask.json')\n", None),
    ("variable-arg", "import importlib\nimportlib.import_module(name)\n", None),
    ("other-dist", 'from importlib import metadata\nmetadata.version("flask-login")\n', None),
    # A module name built at run time from a literal package prefix.
    (
        "import_module-percent-format",
        'import importlib\nimportlib.import_module("flask.%s" % name)\n',
        f'import importlib\nimportlib.import_module("{S}.%s" % name)\n',
    ),
    (
        "import_module-str-format",
        'import importlib\nimportlib.import_module("jinja2.{}".format(name))\n',
        f'import importlib\nimportlib.import_module("{J}.{{}}".format(name))\n',
    ),
    (
        "import_module-concatenated-prefix",
        'import importlib\nimportlib.import_module("flask.ext." + name)\n',
        f'import importlib\nimportlib.import_module("{S}.ext." + name)\n',
    ),
    ("percent-format-outside-a-call", 'x = "flask.%s" % name\n', None),
    ("percent-format-other-package",
     'import importlib\nimportlib.import_module("other.%s" % name)\n', None),
    # A loop feeds a literal list of names to an import call (pandas' hard dependencies).
    (
        "import-list-by-name",
        'DEPS = ("flask", "pytz")\nfor _d in DEPS:\n    try:\n        __import__(_d)\n'
        "    except ImportError:\n        pass\n",
        f'DEPS = ("{S}", "pytz")\nfor _d in DEPS:\n    try:\n        __import__(_d)\n'
        "    except ImportError:\n        pass\n",
    ),
    (
        "import-list-literal",
        'import importlib as il\nfor m in ["jinja2", "x"]:\n    il.import_module(m)\n',
        f'import importlib as il\nfor m in ["{J}", "x"]:\n    il.import_module(m)\n',
    ),
    (
        "import-list-assigned-twice",
        'DEPS = ("flask",)\nDEPS = ("x",)\nfor d in DEPS:\n    __import__(d)\n', None,
    ),
    ("import-list-not-the-loop-variable",
     'DEPS = ("flask",)\nfor d in DEPS:\n    __import__(other)\n', None),
    ("list-not-imported", 'DEPS = ("flask",)\nfor d in DEPS:\n    print(d)\n', None),
]


@pytest.mark.parametrize(("before", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_string_rewrite(before: str, after: str | None) -> None:
    result = rewrite_source(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert (result.decode() if result is not None else None) == after
    if result is not None:
        assert rewrite_source(result, MAPPING, path="m.py", strings=RULES) is None


def test_a_literal_package_prefix_is_no_dynamic_name() -> None:
    source = (b"import importlib\nimportlib.import_module('flask.%s' % a)\n"
              b"importlib.import_module('%s.x' % a)\n")
    result = rewrite_file(source, MAPPING, path="m.py", strings=RULES)
    assert [(f.line, f.code.value) for f in result.findings] == [(3, "dynamic-name")]


def test_an_import_list_is_no_dynamic_name_any_more() -> None:
    source = b'DEPS = ("flask", "pytz")\nfor d in DEPS:\n    __import__(d)\n__import__(name)\n'
    result = rewrite_file(source, MAPPING, path="m.py", strings=RULES)
    assert result.new is not None and result.new.startswith(f'DEPS = ("{S}"'.encode())
    assert [(f.line, f.code.value) for f in result.findings] == [(4, "dynamic-name")]


def test_strings_and_imports_together() -> None:
    before = textwrap.dedent('''\
        """Module doc mentioning flask.json."""
        import flask
        from importlib import import_module

        json = import_module("flask.json")  # keep this comment
    ''')
    after = textwrap.dedent(f'''\
        """Module doc mentioning flask.json."""
        import {S} as flask
        from importlib import import_module

        json = import_module("{S}.json")  # keep this comment
    ''')
    result = rewrite_source(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result is not None and result.decode() == after


def test_without_string_rules_only_imports_change() -> None:
    src = b'import importlib\nimportlib.import_module("flask.json")\n'
    assert rewrite_source(src, MAPPING, path="m.py") is None


def test_invalid_escape_in_a_docstring_neither_warns_nor_fails() -> None:
    # flask 0.12's app.py has "\s" in a docstring: CPython warns, the rewrite must not.
    src = b'def f():\n    """HTTPException\\s are raised"""\n    import flask\n'
    result = rewrite_source(src, MAPPING, path="m.py", strings=RULES)
    assert (
        result
        == f'def f():\n    """HTTPException\\s are raised"""\n    import {S} as flask\n'.encode()
    )


def test_only_statements_that_need_it_change() -> None:
    src = textwrap.dedent("""\
        # header comment
        import os ,  sys   # odd spacing kept

        def f( x ):
            return  x


        from flask import  Flask   # comment kept
        class  C :  pass
    """)
    result = rewrite_source(src.encode(), MAPPING, path="m.py", strings=RULES)
    assert result is not None
    assert result.decode() == src.replace("from flask import", f"from {S} import")


@pytest.mark.parametrize(("path", "before", "after"), [
    # SQLAlchemy's __init__: its own registry loads every module whose name starts with it.
    ("flask/__init__.py", 'from . import util as _util\n_util.preloaded.import_prefix("flask")\n',
     f'from . import util as _util\n_util.preloaded.import_prefix("{S}")\n'),
    # As the shading pipeline names members: the wheel's path, then the member.
    ("/tmp/flask-0.12.4-py3-none-any.whl/flask/__init__.py",
     'from .util import preloaded\npreloaded.import_prefix("flask")\n',
     f'from .util import preloaded\npreloaded.import_prefix("{S}")\n'),
    ("flask-0.12.4.data/purelib/flask/__init__.py",
     'from .util import preloaded\npreloaded.import_prefix("flask")\n',
     f'from .util import preloaded\npreloaded.import_prefix("{S}")\n'),
    # A submodule's relative import two levels up, and an absolute one from a dependent.
    ("flask/sql/base.py", 'from ..util import preloaded\npreloaded.import_prefix("flask")\n',
     f'from ..util import preloaded\npreloaded.import_prefix("{S}")\n'),
    ("app/m.py", 'import flask\nflask.MovedModule("spam", "flask", "flask")\n',
     f'import {S} as flask\nflask.MovedModule("spam", "{S}", "{S}")\n'),
    # Only the callee's own package, only positional, only the exact bare name.
    ("app/m.py", 'import flask\nflask.import_all("jinja2", key="flask", x="flask app")\n',
     f'import {S} as flask\nflask.import_all("jinja2", key="flask", x="flask app")\n'),
    # A function whose name does not say it imports: pip's user_cache_dir("pip") names a
    # directory, sympy's lambdify(x, f, "sympy") a namespace.
    ("flask/m.py", 'from .utils.appdirs import user_cache_dir\nuser_cache_dir("flask")\n', None),
    ("app/m.py", 'import flask\nflask.lambdify(x, f, "flask")\n', f'import {S} as flask\n'
     'flask.lambdify(x, f, "flask")\n'),
    # Not a shaded package's function: a word.
    ("app/m.py", 'from . import util\nutil.register("flask")\n', None),
])
def test_a_packages_own_function_takes_its_bare_name_as_a_module(
    path: str, before: str, after: str | None
) -> None:
    assert rewrite_file(before.encode(), MAPPING, path=path, strings=RULES).new == (
        None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # pydantic's lazy attributes: a table of bare names feeding a computed import.
    (
        "from importlib import import_module\n"
        '_dynamic: "dict[str, tuple[str, str]]" = {\n'
        '    "Markup": ("flask", "."),\n'
        '    "thing": (__spec__.parent, ".x"),\n'
        "}\n"
        "def __getattr__(name):\n"
        "    package, module = _dynamic[name]\n"
        "    return import_module(module, package=package)\n",
        "from importlib import import_module\n"
        '_dynamic: "dict[str, tuple[str, str]]" = {\n'
        f'    "Markup": ("{S}", "."),\n'
        '    "thing": (__spec__.parent, ".x"),\n'
        "}\n"
        "def __getattr__(name):\n"
        "    package, module = _dynamic[name]\n"
        "    return import_module(module, package=package)\n",
    ),
    # The same table in a module whose imports are all literal: a table of words.
    (
        "from importlib import import_module\n"
        'OWNERS = {"Markup": ("flask", ".")}\n'
        'import_module("json")\n',
        None,
    ),
])
def test_a_lookup_table_feeding_a_computed_import_holds_module_names(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # A dotted object name below a module-level name (``mod.Class.attr``, as a CLI option
    # resolved with ``pkgutil.resolve_name``): the module-level name is the evidence.
    ('args = ["--validator", "flask.app.Flask.json_class"]\n',
     f'args = ["--validator", "{S}.app.Flask.json_class"]\n'),
    # Below a name the module does not bind it is no object path.
    ('args = ["--data", "flask.app.png.x"]\n', None),
])
def test_an_attribute_path_below_a_module_level_name_is_renamed(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # A docstring's doctest examples are code: a package's own runner (``DocTestSuite``)
    # runs them, and their imports must reach the shaded copy; the prose stays.
    ('def f():\n    """Use flask.\n\n    >>> import flask as json\n'
     '    >>> from flask.json import dumps\n    """\n',
     'def f():\n    """Use flask.\n\n    >>> import ' + S + ' as json\n'
     '    >>> from ' + S + '.json import dumps\n    """\n'),
    # Without examples a docstring is prose, whatever it says.
    ('def f():\n    """Use flask.\n\n    import flask\n    """\n', None),
])
def test_doctest_examples_in_docstrings_are_code(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # ``python -m pkg`` in a subprocess: the argument after ``-m`` is a module to run.
    ('import subprocess, sys\nsubprocess.run([sys.executable, "-m", "flask"])\n',
     f'import subprocess, sys\nsubprocess.run([sys.executable, "-m", "{S}"])\n'),
    ('import sys\ncmd = (sys.executable, "-X", "dev", "-m", "jinja2", "x")\n',
     f'import sys\ncmd = (sys.executable, "-X", "dev", "-m", "{J}", "x")\n'),
    # ``-m`` of another program (a commit message) is no module.
    ('cmd = ["git", "commit", "-m", "flask"]\n', None),
])
def test_a_module_run_with_python_m_is_a_module_name(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # Code for a subprocess, statements on one line: ``python -c "import os, pkg; ..."``.
    ('code = "import flask; func = 1"\n', f'code = "import {S} as flask; func = 1"\n'),
    ('code = "import os, flask; func = 1"\n', f'code = "import os, {S} as flask; func = 1"\n'),
    ('code = "import os, flask.json, jinja2 as j\\nx = 1"\n',
     f'code = "import os, {S}.json, {S} as flask, {J} as j\\nx = 1"\n'),
    # The same in an f-string: its literal head is the code (ujson's leak checks).
    ('code = f"import functools, flask; func = {x}"\n',
     f'code = f"import functools, {S} as flask; func = {{x}}"\n'),
    ('code = f"from flask.json import dumps\\nf = {x}"\n',
     f'code = f"from {S}.json import dumps\\nf = {{x}}"\n'),
    # Prose stays prose: an import list of other names, an f-string that is a message.
    ('code = "import os, sys; x = 1"\n', None),
    ('msg = f"flask could not {x}"\n', None),
])
def test_generated_code_on_one_line_in_lists_and_f_strings(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # A package that presents its classes under its top-level name (``obj.__module__ =
    # "pkg"``, for pickle and reprs): left alone, pickle finds the other installed version.
    ('def public(obj):\n    obj.__module__ = "flask"\n    return obj\n',
     f'def public(obj):\n    obj.__module__ = "{S}"\n    return obj\n'),
    ('class C:\n    __module__ = "flask"\n', f'class C:\n    __module__ = "{S}"\n'),
    ('setattr(cls, "__module__", "jinja2")\n', f'setattr(cls, "__module__", "{J}")\n'),
    # A name given to ``__name__`` or ``__qualname__`` is the object's own: a word.
    ('def f(obj):\n    obj.__name__ = "flask"\n    obj.__qualname__ = "flask"\n', None),
    ('setattr(cls, "__name__", "flask")\n', None),
])
def test_a_string_assigned_to_module_is_a_module_name(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # python-dateutil's stack walk skips its own frames by their module's name.
    ('if frame.f_globals.get("__name__") not in ("importlib", "flask"):\n    pass\n',
     f'if frame.f_globals.get("__name__") not in ("importlib", "{S}"):\n    pass\n'),
    ('ok = cls.__module__ == "flask.app" or "jinja2" != mod.__name__\n',
     f'ok = cls.__module__ == "{S}.app" or "{J}" != mod.__name__\n'),
    ('ok = g["__name__"] in {"flask"}\n', f'ok = g["__name__"] in {{"{S}"}}\n'),
    # Compared with anything else, a bare name stays a word.
    ('ok = name == "flask"\n', None),
    # typing_extensions' protocol allowlist, keyed by module and read with __module__.
    ('ALLOW = {\n    "collections.abc": ["Callable"],\n    "flask": ["Buffer"],\n}\n'
     'def allowed(base):\n    return base.__name__ in ALLOW.get(base.__module__, [])\n',
     f'ALLOW = {{\n    "collections.abc": ["Callable"],\n    "{S}": ["Buffer"],\n}}\n'
     'def allowed(base):\n    return base.__name__ in ALLOW.get(base.__module__, [])\n'),
    # The same dict never looked up by a module's name: its keys are words.
    ('ALLOW = {"flask": ["Buffer"]}\ndef allowed(key):\n    return ALLOW.get(key, [])\n',
     None),
])
def test_strings_compared_with_or_keyed_by_a_module_name_are_module_names(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # Class 3: the package's own helper checks the (renamed) module paths it imports.
    ('import importlib\ndef load(path):\n    parts = path.split(".")\n'
     '    if parts[0] != "flask":\n        raise ImportError(path)\n'
     '    return importlib.import_module(path)\n',
     'import importlib\ndef load(path):\n    parts = path.split(".")\n'
     f'    if parts[0] != "{S}":\n        raise ImportError(path)\n'
     '    return importlib.import_module(path)\n'),
    ('def load(path):\n    if path.split(".")[0] == "flask":\n        return __import__(path)\n',
     f'def load(path):\n    if path.split(".")[0] == "{S}":\n        return __import__(path)\n'),
    ('from importlib import import_module\ndef load(path):\n'
     '    if not path.startswith("flask."):\n        raise ValueError(path)\n'
     '    return import_module(path)\n',
     'from importlib import import_module\ndef load(path):\n'
     f'    if not path.startswith("{S}."):\n        raise ValueError(path)\n'
     '    return import_module(path)\n'),
    # Names read from sys.modules and __name__ are module names.
    ('import sys\nfor name in list(sys.modules):\n    if name.startswith("flask."):\n'
     '        del sys.modules[name]\n',
     f'import sys\nfor name in list(sys.modules):\n    if name.startswith("{S}."):\n'
     '        del sys.modules[name]\n'),
    ('def f():\n    head, _, _ = __name__.partition(".")\n    return head == "flask"\n',
     f'def f():\n    head, _, _ = __name__.partition(".")\n    return head == "{S}"\n'),
    # Class 2: the same shapes over values that are not module names stay.
    ('def opts(conf):\n    out = {}\n    for k, v in conf.items():\n'
     '        if k.startswith("flask."):\n            out[k[len("flask."):]] = v\n'
     '    return out\n', None),
    ('def check(key):\n    parts = key.split(".")\n    return parts[0] == "flask"\n', None),
    # A module name in one function says nothing of a same-named variable in another.
    ('import importlib\ndef a(path):\n    return importlib.import_module(path)\n'
     'def b(path):\n    return path.startswith("flask.")\n', None),
])
def test_a_checked_name_is_a_module_name_when_the_checked_value_is_one(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="flask/m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


def test_unproven_module_paths_are_reported() -> None:
    source = (b'ICON = "flask.png"\nfor k in conf:\n    if k.startswith("flask."):\n'
              b'        pass\nOK = "flask.json"\n')
    result = rewrite_file(source, MAPPING, path="m.py", strings=RULES)
    assert result.new == source.replace(b'"flask.json"', f'"{S}.json"'.encode())
    assert [(f.line, f.code.value) for f in result.findings] == [
        (1, "unproven-module-path"), (3, "unproven-module-path")]


@pytest.mark.parametrize(("before", "after"), [
    # Class 5: Python imports embedded in template strings (Mako blocks, template lines).
    ('T = """<%! from flask.json import dumps %>\n${dumps(x)}"""\n',
     f'T = """<%! from {S}.json import dumps %>\n${{dumps(x)}}"""\n'),
    ('T = "<%!\\n    import flask\\n%>${flask.x}"\n',
     f'T = "<%!\\n    import {S} as flask\\n%>${{flask.x}}"\n'),
    ('T = """\n<%!\n  from jinja2.ext import do\n  import flask.json\n%>\n"""\n',
     f'T = """\n<%!\n  from {J}.ext import do\n  import {S}.json, {S} as flask\n%>\n"""\n'),
    ('T = "<% from jinja2 import x %> and {% import flask %}"\n',
     f'T = "<% from {J} import x %> and {{% import {S} as flask %}}"\n'),
    # Prose that mentions an import is no statement.
    ('msg = "to use it, import flask first"\n', None),
    ('msg = """Usage: then from flask import x.\nimport flask is needed by"""\n', None),
    ('T = "<%! from flaskext import y %>"\n', None),
])
def test_imports_embedded_in_template_strings(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # Class 6: test loaders and importorskip take module names, built ones too.
    ('import unittest\ns = unittest.TestLoader().loadTestsFromNames(\n'
     '    ["flask.tests.%s" % m for m in MODS])\n',
     f'import unittest\ns = unittest.TestLoader().loadTestsFromNames(\n'
     f'    ["{S}.tests.%s" % m for m in MODS])\n'),
    ('loader.loadTestsFromName("flask.tests.{}".format(name))\n',
     f'loader.loadTestsFromName("{S}.tests.{{}}".format(name))\n'),
    ('loader.loadTestsFromNames(("flask.tests.test_a", "jinja2.tests"))\n',
     f'loader.loadTestsFromNames(("{S}.tests.test_a", "{J}.tests"))\n'),
    ('import pytest\nflask = pytest.importorskip("flask", reason="flask")\n',
     f'import pytest\nflask = pytest.importorskip("{S}", reason="flask")\n'),
    ('import unittest\ndef suite():\n    names = ["flask.tests.%s" % m for m in MODS]\n'
     '    return unittest.TestLoader().loadTestsFromNames(names)\n',
     f'import unittest\ndef suite():\n    names = ["{S}.tests.%s" % m for m in MODS]\n'
     '    return unittest.TestLoader().loadTestsFromNames(names)\n'),
])
def test_test_loaders_take_module_names(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


@pytest.mark.parametrize(("before", "after"), [
    # An entry-point group is named after its package: renamed as always (the package's
    # entry_points.txt sections move with it).
    ('import pkg_resources\nfor ep in pkg_resources.iter_entry_points("flask.commands"):\n'
     '    pass\n',
     'import pkg_resources\nfor ep in pkg_resources.iter_entry_points('
     f'"{S}.commands"):\n    pass\n'),
    # ``__doc__ = ...`` is a docstring; a message showing an import to type is prose.
    ('__doc__ = """Example:\n\nfrom flask import json\n"""\n', None),
    ('warn("""The module moved. Use instead:\n    from flask import json\n""")\n', None),
    # Code pieces of a concatenation are rewritten piece by piece.
    ('setup = ("import flask\\n"\n         "import jinja2.ext\\n")\n',
     f'setup = ("import {S} as flask\\n"\n         "import {J}.ext, {J} as jinja2\\n")\n'),
    # A value that reaches an import through "%s.base" % v, and f_globals.get("__name__").
    ('from importlib import import_module\ndef load(name):\n'
     '    if name == "flask.old":\n        name = "flask.json"\n'
     '    return import_module("%s.base" % name)\n',
     'from importlib import import_module\ndef load(name):\n'
     f'    if name == "{S}.old":\n        name = "{S}.json"\n'
     '    return import_module("%s.base" % name)\n'),
    ('def f(frame):\n    name = frame.f_globals.get("__name__") or ""\n'
     '    return name.startswith("flask.")\n',
     'def f(frame):\n    name = frame.f_globals.get("__name__") or ""\n'
     f'    return name.startswith("{S}.")\n'),
    # A submodule prefix names a module of the set; the top-level one alone proves nothing.
    ('alias = alias.removeprefix("flask.json.")\n',
     f'alias = alias.removeprefix("{S}.json.")\n'),
    # The import protocol: a finder's first argument is a module's full name.
    ('class Hook:\n    def find_module(self, fullname, path=None):\n'
     '        if fullname.startswith("flask.") and fullname != "flask.ext.X":\n'
     '            return self\n',
     'class Hook:\n    def find_module(self, fullname, path=None):\n'
     f'        if fullname.startswith("{S}.") and fullname != "{S}.ext.X":\n'
     '            return self\n'),
    ('import sys\nfor name, mod in list(sys.modules.items()):\n'
     '    if name[:6] == "flask.":\n        pass\n',
     'import sys\nfor name, mod in list(sys.modules.items()):\n'
     f'    if name[:6] == "{S}.":\n        pass\n'),
    # A prefix kept in an attribute and split off names that are imported (a registry of
    # modules to preload): the literal the attribute is given is a module prefix.
    ('class Registry:\n    def __init__(self, prefix="flask."):\n'
     '        self.prefix = prefix\n        self.deps = set()\n'
     '    def load(self):\n        for module in self.deps:\n'
     '            key = module.split(self.prefix)[-1].replace(".", "_")\n'
     '            __import__(module)\n',
     'class Registry:\n    def __init__(self, prefix="' + S + '."):\n'
     '        self.prefix = prefix\n        self.deps = set()\n'
     '    def load(self):\n        for module in self.deps:\n'
     '            key = module.split(self.prefix)[-1].replace(".", "_")\n'
     '            __import__(module)\n'),
    # The same attribute checked against configuration keys: not a module prefix.
    ('class Options:\n    prefix = "flask."\n'
     '    def read(self, cfg):\n'
     '        return {k[len(self.prefix):]: v for k, v in cfg.items()\n'
     '                if k.startswith(self.prefix)}\n',
     None),
    # A mirror package builds its modules' names with str.join and sets __package__:
    # the head literal is a module name, imported or assigned directly or through a name.
    ('from importlib import import_module\n\n\ndef load(dot, rest, module):\n'
     '    name = "".join(["flask", dot, rest])\n    import_module(name)\n'
     '    import_module("".join(("flask", dot, rest)))\n'
     '    module.__package__ = "".join(["flask", dot, rest])\n'
     '    label = "".join(["flask", dot, rest])\n    return label\n',
     'from importlib import import_module\n\n\ndef load(dot, rest, module):\n'
     f'    name = "".join(["{S}", dot, rest])\n    import_module(name)\n'
     f'    import_module("".join(("{S}", dot, rest)))\n'
     f'    module.__package__ = "".join(["{S}", dot, rest])\n'
     '    label = "".join(["flask", dot, rest])\n    return label\n'),
    # A table keyed by modules' names (looked up by ``__name__``) read by a literal key
    # too, and a module attribute passed by keyword: both move with the table's keys.
    ('TABLE = {"flask": {"x": 1}}\nNAMES = set(TABLE["flask"])\n\n\n'
     'def get(pkg):\n    return TABLE[pkg.__name__]\n\n\n'
     'mod = make_module(__name__, __package__="flask")\n',
     f'TABLE = {{"{S}": {{"x": 1}}}}\nNAMES = set(TABLE["{S}"])\n\n\n'
     'def get(pkg):\n    return TABLE[pkg.__name__]\n\n\n'
     f'mod = make_module(__name__, __package__="{S}")\n'),
    # A registry keyed by module names, filled by subscript, iterated into an import call.
    ('from importlib import import_module\ninfo = {}\ninfo["flask"] = 1\n'
     'info["flask.json"] = 2\n\n\ndef register(info=info):\n'
     '    for module, sigs in info.items():\n        import_module(module)\n',
     f'from importlib import import_module\ninfo = {{}}\ninfo["{S}"] = 1\n'
     f'info["{S}.json"] = 2\n\n\ndef register(info=info):\n'
     '    for module, sigs in info.items():\n        import_module(module)\n'),
    # A literal key of a table nothing looks up by a module's name stays.
    ('TABLE = {"flask": 1}\nVALUE = TABLE["flask"]\n', None),
])
def test_more_evidence_and_code(before: str, after: str | None) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


def test_many_unproven_paths_in_one_file_are_counted_in_one_finding() -> None:
    source = "".join(f'X{i} = "flask.file{i}"\n' for i in range(10)).encode()
    result = rewrite_file(source, MAPPING, path="m.py", strings=RULES)
    assert result.new is None
    assert [f.line for f in result.findings] == [1, 2, 3, 4]
    assert result.findings[-1].message.startswith("7 more strings")


@pytest.mark.parametrize(("before", "after"), [
    # A package hands its own name to a helper of its own that passes it to a module-name
    # call: the literal at the call site is a module name (the helper's parameter says so).
    ('from importlib import resources\n\n\ndef resource(package, name):\n'
     '    return resources.files(package) / name\n\n\nPROTO = resource("flask", "_proto")\n',
     'from importlib import resources\n\n\ndef resource(package, name):\n'
     f'    return resources.files(package) / name\n\n\nPROTO = resource("{S}", "_proto")\n'),
    ('import importlib\n\n\ndef load(*, module):\n    return importlib.import_module(module)\n\n\n'
     'x = load(module="flask")\n',
     'import importlib\n\n\ndef load(*, module):\n    return importlib.import_module(module)\n\n\n'
     f'x = load(module="{S}")\n'),
    # The other parameter, and a helper whose parameter reaches no such call, prove nothing.
    ('def label(package, name):\n    return package + ":" + name\n\n\nx = label("flask", "a")\n',
     None),
])
def test_a_literal_passed_to_a_parameter_that_takes_module_names(
    before: str, after: str | None
) -> None:
    result = rewrite_file(before.encode(), MAPPING, path="m.py", strings=RULES)
    assert result.new == (None if after is None else after.encode())


def test_sys_modules_update_keys_are_module_names() -> None:
    """A package registering an alias of an optional companion (``sys.modules.update({
    "pkg.health": companion})``) must register it under its shaded name: kept, the shaded
    copy would plant its companion under the original name for the other release."""
    mapping = {"pkg": "pkg_1_0_h", "pkg_health": "pkg_health_1_0_h"}
    rules = StringRules(mapping, modules=frozenset({"pkg", "pkg_health"}),
                        attributes={"pkg": frozenset(), "pkg_health": frozenset()})
    source = (
        "import sys\nimport pkg_health\nsys.modules.update({'pkg.health': pkg_health})\n"
        "table = {'pkg.health': 1}\n"
    )
    new = rewrite_source(source.encode(), mapping, path="pkg/__init__.py", strings=rules)
    assert new is not None
    assert new.decode() == (
        "import sys\nimport pkg_health_1_0_h as pkg_health\n"
        "sys.modules.update({'pkg_1_0_h.health': pkg_health})\ntable = {'pkg.health': 1}\n"
    )
