"""A date cut-off must hold for every member of the closure, or the run is refused.

pip (26.0 and later, which the resolver requires for ``--uploaded-prior-to``) applies the
cut-off to each file an index lists: a file whose upload time (PEP 700) is missing or not
before the date is not a candidate. It does not apply it to local files: a find-links
folder, a ``file://`` index (a local mirror or wheel cache in ``pip.conf``), a path or a
direct URL carry no upload time, so pip takes their newest release whatever the date.
A closure with such a member is not "as of the date" and would be shaded into a stack
that was never known to work; so each member is checked here, after resolving.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import unquote, urlsplit

from packaging.utils import NormalizedName

from wheelshade.errors import FetchError
from wheelshade.resolve.resolver import Member

#: How many members the one-line refusal names before "and N more".
SHOWN = 4


def unchecked(member: Member) -> str | None:
    """Where ``member`` came from when pip did not apply the cut-off to it, else None."""
    parts = urlsplit(member.url)
    if member.direct:
        return f"direct URL {member.url}" if parts.scheme != "file" else unquote(parts.path)
    if parts.scheme in ("http", "https"):
        return None  # from an index: pip compared its upload time with the date
    if parts.scheme == "file":
        return unquote(parts.path)
    return member.url or "an unknown source"


def check_cutoff(
    members: Sequence[Member], cutoff: str, pinned: Collection[NormalizedName]
) -> None:
    """Refuse (one line) when a member's version was not chosen under ``cutoff``.

    Members in ``pinned`` (an exact ``--dep`` pin or wheel) are the user's choice, not the
    date's, so where they come from does not matter.
    """
    bad = [
        f"{m.name} {m.version} ({where})"
        for m in members
        if m.name not in pinned and (where := unchecked(m)) is not None
    ]
    if not bad:
        return
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    raise FetchError(
        f"--uploaded-prior-to {cutoff} was not applied to {len(bad)} member(s) of the "
        f"closure: pip took them from local files or direct URLs, which have no upload "
        f"time: {', '.join(bad[:SHOWN])}{more}",
        hint="resolve from an index that serves upload times: leave the find-links folders "
        "and file:// indexes out of pip's configuration for this run (PIP_CONFIG_FILE, "
        "PIP_FIND_LINKS), or pin these members with --dep NAME==VERSION",
    )
