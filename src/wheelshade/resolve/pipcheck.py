"""Which pip wheelshade runs, whether it has the options a run passes, and failure hints."""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from wheelshade.errors import FetchError, suggest

#: The pip releases that added what wheelshade passes to pip: ``install --dry-run
#: --report`` (22.2) and ``--uploaded-prior-to`` (26.0, which also applies it to every
#: file from an index, refusing those without an upload time).
REPORT = Version("22.2")
CUTOFF = Version("26.0")

_NO_SUCH_OPTION = re.compile(r"no such option: (--[\w-]+)")


@functools.cache
def pip_version(python: str) -> Version | None:
    """The version of ``python -m pip``: the pip wheelshade runs (None when it has none)."""
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # "pip 23.2.1 from /venv/lib/python3.11/site-packages/pip (python 3.11)"
    match = re.match(r"pip (\S+) ", proc.stdout)
    if proc.returncode != 0 or match is None:
        return None
    try:
        return Version(match.group(1))
    except InvalidVersion:
        return None


def require_pip(python: str, needed: Version, purpose: str) -> None:
    """Refuse, in one line naming the pip needed and the pip found, when ``python``'s pip
    is older than ``needed`` (pip would otherwise fail with "no such option")."""
    found = pip_version(python)
    if found is not None and found >= needed:
        return
    have = f"{python} -m pip is {found}" if found else f"{python} has no pip"
    raise FetchError(
        f"{purpose} needs pip {needed} or later; {have}",
        hint=f"upgrade it: {python} -m pip install 'pip>={needed}'",
    )


def failure_hint(stderr: str, cmd: Sequence[str], python: str, *alternatives: str) -> str:
    """The hint for a failed pip command: none of ``alternatives`` that repeats an option the
    command passed, and for "no such option" which pip lacks it."""
    missing = _NO_SUCH_OPTION.search(stderr)
    if missing:
        found = pip_version(python)
        return (
            f"{python} -m pip {found or '(unknown version)'} has no {missing.group(1)}; "
            f"upgrade pip: {python} -m pip install -U pip"
        )
    return suggest((a for a in cmd if a.startswith("--")), *alternatives)
