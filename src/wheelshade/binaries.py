"""Compiled modules: find the shaded names a binary embeds, which no source rewrite can reach."""

from __future__ import annotations

import re
from collections.abc import Iterable


def embedded_names(data: bytes, names: Iterable[str]) -> tuple[str, ...]:
    """Top-level names that occur in ``data`` as a NUL-bounded module path.

    C strings such as ``"markupsafe"`` or ``"jinja2.runtime"`` sit between NUL bytes in a
    binary's read-only data; a C extension that imports its own package by such a
    string would load the *unshaded* package after a rename. ``PyInit_<name>`` is the
    init symbol of a top-level extension module.
    """
    found: list[str] = []
    for name in sorted(set(names)):
        raw = re.escape(name.encode("ascii"))
        pattern = rb"(?:\x00|PyInit_)" + raw + rb"(?:\x00|\.[A-Za-z_])"
        if re.search(pattern, data):
            found.append(name)
    return tuple(found)
