"""Linux aarch64 CPython under qemu, for tests: a private Debian sysroot, built once.

Debian's arm64 ``python3.13`` (and ``libstdc++6``) packages with their dependencies are
fetched by ``apt-get download`` under a private ``APT_CONFIG`` (its own lists, cache and empty
status file: the system's dpkg state is never touched) and unpacked with ``dpkg -x`` into
``.cache/aarch64/root``; Debian's statically linked ``qemu-aarch64`` (package ``qemu-user``)
runs it with ``-L root`` (no binfmt_misc needed). A test that needs it skips, saying why, when
apt-get is missing or the archive cannot be reached.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

import debian

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "aarch64"
SUITE = "trixie"
#: What the sysroot is built from (their dependencies come along).
PACKAGES = ("python3.13:arm64", "libstdc++6:arm64")
WHY = "the aarch64 sysroot"


def sysroot() -> tuple[Path, Path]:
    """(qemu-aarch64, sysroot), built under .cache/aarch64 the first time."""
    qemu, root = CACHE / "qemu" / "usr" / "bin" / "qemu-aarch64", CACHE / "root"
    if not (qemu.exists() and (root / "usr" / "bin" / "python3.13").exists()):
        if not (shutil.which("apt-get") and shutil.which("dpkg")):
            pytest.skip("apt-get and dpkg are needed to build the aarch64 sysroot")
        _build()
    return qemu, root


def python(code: str, *paths: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the aarch64 python3.13 under qemu, ``paths`` first on sys.path."""
    qemu, root = sysroot()
    prefix = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run(
        [str(qemu), "-L", str(root), str(root / "usr" / "bin" / "python3.13"), "-I", "-c",
         prefix + code],
        capture_output=True, text=True, timeout=timeout,
    )


def unpack(target: Path, *wheels: Path) -> Path:
    """Wheels unpacked into one folder, as an installer would for platlib-only wheels
    (what the compiled ones used here are)."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
    return target


def _build() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
    try:
        env = debian.apt_env(work, SUITE, ["arm64", "amd64"])
        debian.apt(["apt-get", "update"], env, work, WHY)
        listing = debian.apt(["apt-cache", "depends", "--recurse", "--no-recommends",
                              "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                              "--no-enhances", *PACKAGES], env, work, WHY)
        wanted = sorted({
            line for line in listing.splitlines()
            if line and not line.startswith((" ", "<")) and not line.endswith(":amd64")
        })
        debs = work / "debs"
        debs.mkdir()
        debian.apt(["apt-get", "download", *wanted, "qemu-user:amd64"], env, debs, WHY)
        for deb in sorted(debs.glob("*.deb")):
            into = work / ("qemu" if deb.name.startswith("qemu-user_") else "root")
            debian.extract(deb, into)
        keep = work / "qemu" / "usr" / "bin" / "qemu-aarch64"  # of every emulator shipped
        keep.rename(work / "qemu-aarch64")
        shutil.rmtree(work / "qemu")
        keep.parent.mkdir(parents=True)
        (work / "qemu-aarch64").rename(keep)
        # Debian has merged /usr: the loader is asked for as /lib/ld-linux-aarch64.so.1.
        (work / "root" / "lib").symlink_to("usr/lib")
        for name in ("qemu", "root"):  # another session may have finished first
            if not (CACHE / name).exists():
                (work / name).rename(CACHE / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
