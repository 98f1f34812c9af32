"""Debian packages fetched and unpacked privately, for tests: no change to the system's dpkg state.

``apt-get download`` runs under a private ``APT_CONFIG`` (its own lists, cache and empty status
file), and each ``.deb`` is unpacked with ``dpkg -x``. A test that needs it skips, saying why,
when apt-get or dpkg is missing or the archive cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

MIRROR = "http://deb.debian.org/debian"
UNREACHABLE = ("Could not resolve", "Temporary failure", "Failed to fetch",
               "Network is unreachable", "Connection failed", "Unable to connect")


def download(work: Path, suite: str, architecture: str, packages: Sequence[str],
             why: str) -> list[Path]:
    """The ``.deb`` files of ``packages`` (exactly these, no dependencies) from ``suite``,
    downloaded into ``work/debs``; ``why`` names what they are for in a skip message."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        pytest.skip(f"apt-get and dpkg are needed to fetch {why}")
    env = apt_env(work, suite, [architecture])
    apt(["apt-get", "update"], env, work, why)
    debs = work / "debs"
    debs.mkdir()
    apt(["apt-get", "download", *packages], env, debs, why)
    return sorted(debs.glob("*.deb"))


def apt_env(work: Path, suite: str, architectures: Sequence[str]) -> dict[str, str]:
    """The environment for apt under a private configuration in ``work/apt`` (its own
    lists, cache and empty status file), the first architecture the native one."""
    return {**os.environ, "APT_CONFIG": str(_apt_config(work, suite, architectures)),
            "LC_ALL": "C"}


def extract(deb: Path, into: Path) -> None:
    subprocess.run(["dpkg", "-x", str(deb), str(into)], check=True)


def _apt_config(work: Path, suite: str, architectures: Sequence[str]) -> Path:
    apt = work / "apt"
    for folder in ("state/lists/partial", "cache/archives/partial", "parts", "prefs"):
        (apt / folder).mkdir(parents=True)
    (apt / "state" / "status").touch()
    arches = ",".join(architectures)
    (apt / "sources.list").write_text(f"deb [arch={arches}] {MIRROR} {suite} main\n")
    conf = apt / "apt.conf"
    conf.write_text("\n".join([
        f'Dir::State "{apt}/state";', f'Dir::State::status "{apt}/state/status";',
        f'Dir::Cache "{apt}/cache";', f'Dir::Etc::SourceList "{apt}/sources.list";',
        f'Dir::Etc::SourceParts "{apt}/parts";', f'Dir::Etc::PreferencesParts "{apt}/prefs";',
        f'APT::Architecture "{architectures[0]}";',
        "APT::Architectures { " + " ".join(f'"{a}";' for a in architectures) + " };",
        'Debug::NoLocking "true";', 'Acquire::Languages "none";',
        'APT::Sandbox::User "root";', "",
    ]))
    return conf


def apt(args: list[str], env: dict[str, str], cwd: Path, why: str) -> str:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    failed = proc.returncode != 0 or "\nE: " in f"\n{proc.stderr}" or "\nW: Failed" in (
        f"\n{proc.stderr}")
    if failed:
        if any(marker in proc.stderr for marker in UNREACHABLE):
            pytest.skip(f"Debian archive unreachable, cannot fetch {why}: "
                        f"{proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"{' '.join(args[:2])} failed:\n{proc.stderr}")
    return proc.stdout
