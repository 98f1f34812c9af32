"""What shows a dotted string to be a module path of the shading set.

One rule for the string pass (``rewrite/rules.py``) and for the strings of compiled code
(``native/classify.py``): a path is a module of the set, or a name bound at module level in
its longest module prefix. A string under a module of the set with neither (a channel
option key ``"pkg.max_message_length"``, a protobuf message ``"pkg.v1.Request"``) is left
as it is: renamed, a key the other side compares with its own literal would stop matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


def proves(
    path: str,
    modules: frozenset[str],
    attributes: Mapping[str, frozenset[str]] | None,
    opaque: frozenset[str] = frozenset(),
    *,
    deep: bool = True,
) -> bool:
    """True when the dotted ``path`` is a module of ``modules`` or names something bound at
    module level in its longest module prefix (``mod.Name``, or an attribute path below one:
    ``mod.Class.attr``). ``attributes`` maps a module to its bound names; a module it does
    not list (compiled, no stub), or any module when it is None, and a module of ``opaque``
    may bind anything. ``deep=False`` takes no attribute path below a bound name of a
    module with sources (``mod.func.option``): only a compiled module's own strings name
    things that deep (``"mod._ext.Type.method"``, a traceback label)."""
    if path in modules:
        return True
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:i])
        if parent in modules:
            if attributes is None or parent in opaque:
                return True
            names = attributes.get(parent)
            return names is None or (parts[i] in names and (deep or i == len(parts) - 1))
    return False


@dataclass(frozen=True)
class ModuleProof:
    """The evidence one shading set offers, for the strings of its compiled files."""

    #: Dotted names of every module the set's deps install, under their original names.
    modules: frozenset[str] = frozenset()
    #: Module -> the names its sources (``.py``, ``.pyi``) bind at module level.
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Compiled modules: whatever a stub says, the binary itself may define more names
    #: (a type's ``tp_name`` ``"pkg._ext.Internal"``).
    opaque: frozenset[str] = frozenset()

    def native(self, text: str) -> bool:
        """Whether a compiled file's string, read from a shaded name onwards as far as it
        is a dotted path (a trailing dot kept), is a module path: the name alone (the
        module itself; attribute names are told apart by how code uses them), a package
        prefix ``"pkg.sub."`` of a module of the set or ``"pkg."`` of a compiled one (its
        own types' names: cffi checks them by that prefix; a top-level ``"pkg."`` of a
        package with sources may as well prefix option keys), or a proven path."""
        if "." not in text:
            return True
        if text.endswith("."):
            head = text[:-1]
            return head in self.opaque or ("." in head and head in self.modules)
        return proves(text, self.modules, self.attributes, self.opaque, deep=False)
