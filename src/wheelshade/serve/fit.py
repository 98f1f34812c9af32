"""Whether a dependent's release can be rewritten against a set: its requirements admit the pins."""

from __future__ import annotations

from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import compat32

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version


def conflicts(metadata: bytes, pins: Mapping[NormalizedName, Version]) -> list[str]:
    """Each ``Requires-Dist`` of ``metadata`` on a pinned project that the pin does not
    satisfy (``shade`` refuses such a set; the release has no use for the shaded copy)."""
    message = BytesParser(policy=compat32).parsebytes(metadata)
    out = []
    for text in message.get_all("Requires-Dist") or []:
        try:
            req = Requirement(str(text))
        except InvalidRequirement:
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is not None and not req.specifier.contains(version, prereleases=True):
            out.append(f"requires {req}, the set has {req.name} {version}")
    return out
