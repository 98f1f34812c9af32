"""Findings: references to an original name that wheelshade saw but could not rewrite safely."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    #: ``import_module(name)``, ``sys.modules[key]``...: a module name computed at run time.
    DYNAMIC_NAME = "dynamic-name"
    #: A string that starts with an original name but names no module of the shading set.
    UNRESOLVED_STRING = "unresolved-string"
    #: A string shaped like a module path of the set (``"pkg.png"``, a checked prefix
    #: ``"pkg."``) with no evidence that it is one; left unchanged.
    UNPROVEN_MODULE_PATH = "unproven-module-path"
    #: Compiled code that embeds an original module name as a C string.
    BINARY_NAME = "binary-name"
    #: A ``.pth`` file of a shaded dep, left out.
    PTH_DROPPED = "pth-dropped"
    #: A source file that cannot be parsed, kept unchanged (``--on-unparsable=keep``).
    UNPARSABLE = "unparsable"
    #: A compiled module left out because its ``.py`` twin does the same (``--prefer-python``).
    PYTHON_TWIN = "python-twin"
    #: An entry-point group renamed with the shaded code that loads it: plugins registered
    #: under the original group by other distributions are not seen by the shaded copy.
    ENTRY_POINT_GROUP = "entry-point-group"
    #: Files a shaded dep installs outside site-packages (``.data/data``, ``headers``) at
    #: the paths its other releases use: installed beside one, the two share them.
    SHARED_DATA = "shared-data"


@dataclass(frozen=True)
class Finding:
    #: Member path inside the wheel (``flask/app.py``).
    path: str
    line: int | None
    code: Code
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message} [{self.code.value}]"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "code": self.code.value,
            "message": self.message,
        }
