"""The command line's grammar: every subcommand, flag and help text (cli.py acts on them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wheelshade import __version__
from wheelshade.native.scan import Naming
from wheelshade.resolve.fetch import IndexOptions


def _index_flags(parser: argparse.ArgumentParser) -> None:
    idx = parser.add_argument_group("package index (passed to pip)")
    idx.add_argument("--find-links", action="append", default=[], metavar="DIR_OR_URL")
    idx.add_argument("--index-url", metavar="URL")
    idx.add_argument("--extra-index-url", action="append", default=[], metavar="URL")
    idx.add_argument("--no-index", action="store_true")


def index_options(args: argparse.Namespace) -> IndexOptions:
    return IndexOptions(
        find_links=tuple(args.find_links),
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_url),
        no_index=args.no_index,
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wheelshade",
        description="Shade dependency wheels so two versions of a package run in one interpreter.",
    )
    parser.add_argument("--version", action="version", version=f"wheelshade {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sh = sub.add_parser(
        "shade",
        help="shade --dep wheels and rewrite the dependent wheels to use them",
        description="Rename each --dep to a version-specific name and rewrite every given "
        "wheel to import the renamed copy.",
    )
    sh.add_argument("wheels", nargs="*", type=Path, metavar="WHEEL",
                    help="dependent wheels to rewrite")
    sh.add_argument("--dep", action="append", default=[], metavar="NAME==VERSION|WHEEL",
                    help="a dependency to shade (repeatable); all --dep form one shading set")
    sh.add_argument("-o", "--out-dir", type=Path,
                    help="where to write the wheels (default: wheelhouse/)")
    sh.add_argument("--suffix", help="use NAME_SUFFIX instead of NAME_<version>_<hash>")
    sh.add_argument("--naming", choices=[n.value for n in Naming],
                    help="readable: NAME_<version>_<hash>; same-length: a hash name of the "
                    "original's length, which compiled code can be patched to; auto (default): "
                    "same-length only for names a compiled module refers to")
    sh.add_argument("--drop", action="append", metavar="PATTERN",
                    help="leave out archive members matching this glob (repeatable), e.g. "
                    "a compiled speed-up that has a pure-Python fallback")
    sh.add_argument("--keep-scripts", action="store_true", default=None,
                    help="keep console/GUI scripts of shaded deps (they clash with the "
                    "unshaded package's scripts)")
    sh.add_argument("--keep-pth", action="store_true", default=None,
                    help="keep .pth files of shaded deps, renamed and rewritten (they run at "
                    "every interpreter start)")
    sh.add_argument("--prefer-python", action="store_true", default=None,
                    help="leave out compiled modules of shaded deps that ship a .py twin "
                    "(Cython builds such as pydantic 1.x): slower, but no binary to patch")
    sh.add_argument("--no-load-check", dest="load_check", action="store_false", default=None,
                    help="do not load patched compiled modules in a fresh interpreter before "
                    "writing (by default each is loaded with the original names blocked)")
    sh.add_argument("--on-unparsable", choices=["fail", "keep"],
                    help="a source file that cannot be parsed as Python 3: fail (default), or "
                    "keep it unchanged and report it when it mentions a shaded name")
    sh.add_argument("--fetch-timeout", type=float, metavar="SECONDS",
                    help="give up on pip fetching or building one dep after this long "
                    "(default: 900)")
    sh.add_argument("--cache-dir", type=Path,
                    help="wheel cache (default: $WHEELSHADE_CACHE_DIR or ~/.cache/wheelshade)")
    sh.add_argument("--bundle", action="store_true", default=None,
                    help="write one wheel per dependent that holds it and the shaded deps "
                    "(docs/publishing.md)")
    sh.add_argument("--dry-run", action="store_true", help="do everything but write nothing")
    sh.add_argument("--diff", action="store_true",
                    help="print a unified diff of every rewritten file")
    sh.add_argument("--report", type=Path, metavar="FILE.json",
                    help="write the full leak report as JSON (docs/leak-report.md)")
    sh.add_argument("-j", "--jobs", type=int, metavar="N",
                    help="processes that rewrite sources (default: the usable CPUs)")
    sh.add_argument("--timings", action="store_true",
                    help="print the seconds spent per phase (also WHEELSHADE_TIMINGS=1)")
    sh.add_argument("--strict", action="store_true", default=None,
                    help="fail (exit status 3, nothing written) when the leak report has findings")
    res = sh.add_argument_group("dependency closure (--with-deps)")
    res.add_argument("--with-deps", action="store_true", default=None,
                     help="resolve the deps' dependency closure with pip and shade each member "
                     "the target environment would hold in an incompatible version; --dep may "
                     "then also be a range (--dep 'werkzeug<1') that constrains the closure")
    res.add_argument("--target-requirements", type=Path, metavar="FILE",
                     help="requirements the target environment is built from")
    res.add_argument("--target-env", metavar="PYTHON",
                     help="an interpreter whose installed distributions are the target")
    res.add_argument("--python-version", metavar="X.Y",
                     help="resolve and fetch for this Python version (pip's option; only "
                     "wheels, no sdist builds)")
    res.add_argument("--platform", action="append", metavar="TAG",
                     help="resolve and fetch for this platform tag, e.g. "
                     "manylinux2014_x86_64 (repeatable; pip's option)")
    res.add_argument("--uploaded-prior-to", metavar="DATE",
                     help="resolve the closure as of this date (pip's option; needs an index "
                     "that serves upload times)")
    _index_flags(sh)
    cfg = sh.add_argument_group("configuration and batch mode")
    cfg.add_argument("--config", type=Path, metavar="FILE",
                     help="read sets and defaults from FILE (default: ./wheelshade.toml, else "
                     "[tool.wheelshade] in ./pyproject.toml)")
    cfg.add_argument("--no-config", action="store_true", help="ignore any config file")
    cfg.add_argument("--json", action="store_true",
                     help="print a JSON summary of every set on stdout (docs/config.md)")
    cfg.add_argument("--fail-fast", action="store_true",
                     help="stop at the first set that fails (default: run them all)")
    sh.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    ve = sub.add_parser(
        "verify",
        help="install wheels into a throwaway venv and check at run time that nothing leaks",
        description="Install the wheels (and --with requirements) into a throwaway venv, import "
        "every module of every wheel in a fresh interpreter, and fail if any module under an "
        "original name of the shading set is loaded.",
    )
    ve.add_argument("wheels", nargs="+", type=Path, metavar="WHEEL")
    ve.add_argument("--with", dest="with_", action="append", default=[], metavar="REQ",
                    help="also install this requirement or wheel (e.g. the other version)")
    ve.add_argument("--original", action="append", default=[], type=Path, metavar="WHEEL",
                    help="the wheel a shaded one was made from, to compare import failures "
                    "with (default: fetched as its wheelshade.json records it)")
    _index_flags(ve)
    rw = sub.add_parser(
        "rewrite",
        help="apply a shading map to a source tree in place (imports, strings, entry points)",
        description="Rewrite the .py/.pyi files and the entry points in pyproject.toml and "
        "setup.cfg under DIR with the same rules as `shade` uses for dependents.",
    )
    rw.add_argument("directory", type=Path, metavar="DIR")
    rw.add_argument("--map", action="append", default=[], metavar="ORIGINAL=SHADED",
                    help="an import-name rename (repeatable)")
    rw.add_argument("--shaded", action="append", default=[], type=Path, metavar="WHEEL",
                    help="take the map from a shaded wheel's wheelshade.json (repeatable); "
                    "also renames module paths in strings and distribution lookups")
    rw.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if anything would change (for CI)")
    ins = sub.add_parser(
        "inspect", help="show a wheel's names, imports and findings without writing anything"
    )
    ins.add_argument("wheel", type=Path, metavar="WHEEL")
    sub.add_parser("serve", add_help=False, help="run a package index that shades on the fly "
                   "(pip install wheelshade[serve]; see docs/serve.md)")
    return parser
