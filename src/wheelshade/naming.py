"""The naming scheme: how a shading set turns import and distribution names into shaded ones."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import NewType

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelshade.errors import UsageError

#: The tail appended to every name of one dependency, e.g. ``0_12_4_1a2b3c4d``.
Suffix = NewType("Suffix", str)

HASH_LENGTH = 8
_SUFFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def set_hash(pins: Iterable[tuple[NormalizedName, Version]]) -> str:
    """Short lowercase digest of a shading set.

    Only normalised names and versions go in, never wheel bytes or platform tags, so the
    same set gives the same names on every machine and platform; any change to the set
    (another member, another version) gives different names, because each member's code
    is rewritten against the others' shaded names.
    """
    lines = sorted(f"{name}=={version}" for name, version in pins)
    digest = hashlib.sha256("\n".join(lines).encode("ascii")).hexdigest()
    return digest[:HASH_LENGTH]


def version_token(version: Version) -> str:
    """The version as identifier characters: ``0.12.4`` -> ``0_12_4``, ``2.0rc1`` -> ``2_0rc1``."""
    return re.sub(r"[^0-9a-z]", "_", str(version).lower())


def default_suffix(version: Version, digest: str) -> Suffix:
    return Suffix(f"{version_token(version)}_{digest}")


def check_suffix(text: str) -> Suffix:
    """Validate a user-given ``--suffix``: it must keep names valid identifiers."""
    if not _SUFFIX_RE.match(text):
        raise UsageError(
            f"invalid --suffix {text!r}: use lowercase letters, digits and '_', starting "
            "with a letter or digit"
        )
    return Suffix(text)


def shaded_import_name(name: str, suffix: Suffix) -> str:
    return f"{name}_{suffix}"


def shaded_dist_name(name: NormalizedName, suffix: Suffix) -> NormalizedName:
    return canonicalize_name(f"{name}-{suffix}")


def filename_component(name: str) -> str:
    """A distribution name escaped for wheel and dist-info file names (PEP 491 / PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def rename_module(path: str, mapping: Mapping[str, str]) -> str | None:
    """The dotted module name ``path`` under its shaded name, or None if no key covers it.

    Keys are top-level names (``flask``) or, for a namespace package portion, the namespace
    path and the portion at its first level that is not a namespace (``google.auth``,
    ``google.cloud.storage``): ``google.auth.transport`` -> ``<shaded>.transport``, while
    ``google.protobuf`` or ``google.cloud._helpers``, other distributions' portions, are left
    alone. A portion's shaded name is its path under the shaded namespace
    (``<shaded>.cloud.storage``), or a top-level name of the same byte length as the whole
    prefix where compiled code spells it (see collapsed).
    """
    top, dot, rest = path.partition(".")
    if top in mapping:
        return mapping[top] + dot + rest
    end = len(top)
    while dot:
        end = path.find(".", end + 1)
        key = path if end < 0 else path[:end]
        if key in mapping:
            return mapping[key] + path[len(key):]
        dot = "" if end < 0 else "."
    return None


def namespace_heads(mapping: Mapping[str, str]) -> dict[str, str]:
    """Namespace portion keys' namespaces -> their shaded heads (``google`` -> ``google_...``);
    a namespace whose portions all became top-level names -> one of those."""
    ordered = sorted(mapping.items(), key=lambda kv: "." in kv[1])  # shaded heads win
    return {k.split(".")[0]: v.split(".")[0] for k, v in ordered if "." in k}


def collapsed(key: str, shaded: str) -> bool:
    """True for a namespace portion ``ns.portion`` (or ``ns.sub.portion``) shaded to a
    top-level name: compiled code spells the whole prefix, so it gets a name of the prefix's
    length, and the namespace (shared with other distributions) is left alone."""
    return "." in key and "." not in shaded
