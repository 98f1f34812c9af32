"""Data files a shaded dep installs outside site-packages that name its modules.

Shading keeps such a file's path (``share/jupyter/<pkg>/templates/lab/conf.json``), which the
other release installs too: beside it, both copies read whichever file pip wrote last. One
that names the package's modules (``"pkg.preprocessors.TagRemove"``, loaded by name) then
makes one of the two copies import the other's modules, and no rewrite can serve both (the
other release reads the same bytes). Such a wheel is refused; files that name no module
(man pages, kernel specs, front-end assets) are only reported (``layout.shared_data``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from wheelshade.proof import ModuleProof
from wheelshade.wheel.archive import WheelReader
from wheelshade.wheel.layout import SHARED_SCHEMES, locate
from wheelshade.wheel.summary import WheelSummary

#: Formats a Python package reads as configuration or code (front-end assets, templates
#: and prose are left to the finding).
_READ = (".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".conf", ".py")
#: A whole quoted dotted string: a value or key, not a word of prose.
_QUOTED = re.compile(r"""(["'])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\1""")
#: Files larger than this are not read (data, not configuration).
_MAX_BYTES = 1 << 20


def naming_modules(
    reader: WheelReader, summary: WheelSummary, proof: ModuleProof, names: Iterable[str]
) -> list[str]:
    """One line for the shared data files of ``summary`` that name a module path of the set
    under one of ``names`` (the shaded import keys), or none."""
    heads = tuple(f"{n}." for n in names)
    found: list[tuple[str, str]] = []
    for member in summary.members:
        loc = locate(member, summary.data_dir)
        if loc.scheme not in SHARED_SCHEMES or not loc.path.endswith(_READ):
            continue
        data = reader.read(member)
        if len(data) > _MAX_BYTES:
            continue
        text = data.decode("utf-8", "replace")
        path = next((m.group(2) for m in _QUOTED.finditer(text)
                     if m.group(2).startswith(heads) and _named(m.group(2), proof)), None)
        if path is not None:
            found.append((loc.path, path))
    if not found:
        return []
    (first, path), more = found[0], len(found) - 1
    return [
        f"{summary.filename}: {len(found)} data file(s) installed outside site-packages name "
        f"its modules (first {first!r} names {path!r}{f', and {more} more' if more else ''}); "
        "its other releases install them at the same paths, so beside one both copies read "
        "one file and one of them imports the other's modules"
    ]


def _named(path: str, proof: ModuleProof) -> bool:
    """A module of the set, or a name its sources are seen to bind: data is no code, so a
    module whose names cannot be known (a ``__getattr__``) proves nothing here (an npm
    ``"pkg.js"`` in a front-end ``package.json``)."""
    parent, _, name = path.rpartition(".")
    return path in proof.modules or name in proof.attributes.get(parent, frozenset())
