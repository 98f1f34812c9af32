"""Run inside a verification venv: import modules one by one and record imports of originals.

Run as a script (``python -I probe.py REQUEST.json``); stdlib only, and no syntax
newer than Python 3.8, because it runs under whatever interpreter the venv was made from.
Annotations are never evaluated (``from __future__ import annotations``), so they may use
newer syntax. It prints one JSON document on stdout: ``{"results": [...], "leaks": [...]}``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import FrameType, ModuleType
from typing import Any

#: Written to stderr before each import, so a hard crash (a segfaulting extension) can be
#: pinned on the module that caused it from the last such line.
MARKER = "wheelshade-probe: importing "
#: Modules whose frames are import machinery, not the code that asked for the import.
_MACHINERY = ("importlib", "_frozen_importlib")


def _top(name: str) -> str:
    return name.partition(".")[0]


def _is_original(name: str, originals: frozenset[str]) -> bool:
    """``name`` is an original module: under a top-level name, or under a namespace
    portion (``google.auth``, while ``google.protobuf`` is someone else's) at any depth."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in originals for i in range(1, len(parts) + 1))


_EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)


class LeakRecorder:
    """A meta path finder that never finds anything; it only notes imports of originals."""

    def __init__(self, originals: Sequence[str], own: Sequence[str] = ()) -> None:
        self.originals = frozenset(originals)
        self.own = frozenset(own)
        self.target = ""  # the module the probe is importing right now
        self.causes: dict[str, str] = {}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if _is_original(fullname, self.originals) and fullname not in self.causes:
            importer = _importer(sys._getframe(1))
            if importer is None or _top(importer) in self.own:
                # Compiled code shows no frame: a module of another distribution still
                # initialising (an accelerator the shaded code imported) asked for it.
                importer = self._foreign_initialising() or importer
            self.causes[fullname] = self._cause(importer)
        return None

    def _foreign_initialising(self) -> str | None:
        for name, module in list(sys.modules.items()):
            spec = getattr(module, "__spec__", None)
            if getattr(spec, "_initializing", False) is True and not (
                _top(name) in self.own or _is_original(name, self.originals)
            ) and str(getattr(spec, "origin", "")).endswith(_EXTENSIONS):
                return name
        return None

    def _cause(self, importer: str | None) -> str:
        if not self.target:
            return "interpreter start-up (site or a .pth file)"
        text = "importing " + self.target
        if importer and importer != self.target and importer != "__main__":
            text += " (via " + importer + ")"
        return text

    def sweep(self) -> None:
        """Attribute original modules that reached ``sys.modules`` without an import."""
        for name in list(sys.modules):
            if _is_original(name, self.originals) and name not in self.causes:
                cause = self._cause(None)
                self.causes[name] = cause + " (put in sys.modules)" if self.target else cause


def _importer(frame: FrameType | None) -> str | None:
    """The module whose code asked for the import: the first frame outside the machinery."""
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if frame.f_globals is not globals() and not (
            isinstance(name, str) and name.startswith(_MACHINERY)
        ):
            return name if isinstance(name, str) else None
        frame = frame.f_back
    return None


def _reason(exc: BaseException, own: Sequence[str], originals: Sequence[str]) -> str:
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    if isinstance(missing, str) and missing:
        top = _top(missing)
        original = _is_original(missing, frozenset(originals))
        if not original and top not in own and not _installed(top):
            return "needs optional dependency " + top
    lines = str(exc).strip().splitlines()
    return type(exc).__name__ + (": " + lines[0] if lines else "")


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _file_of(module: ModuleType | None) -> str | None:
    where = getattr(module, "__file__", None)
    return where if isinstance(where, str) else None


def probe(request: dict[str, Any]) -> dict[str, Any]:
    originals: list[str] = request["originals"]
    own: list[str] = request["own"]
    recorder = LeakRecorder(originals, own)
    recorder.sweep()
    # Already loaded at start-up: a .pth file of an unshaded package installed beside
    # (setuptools' distutils-precedence.pth imports _distutils_hack), not the wheels
    # under test, which cannot install files under an original name.
    startup = set(recorder.causes)
    sys.meta_path.insert(0, recorder)
    results: list[tuple[str, str | None]] = []
    for module in request["modules"]:
        recorder.target = module
        sys.stderr.write(MARKER + module + "\n")
        sys.stderr.flush()
        try:
            importlib.import_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a module may call sys.exit() on import
            results.append((module, _reason(exc, own, originals)))
        else:
            results.append((module, None))
        recorder.sweep()
    leaks = [
        {"module": name, "file": _file_of(sys.modules.get(name)), "cause": cause}
        for name, cause in sorted(recorder.causes.items())
        if name not in startup
    ]
    return {
        "results": [{"module": m, "skipped": reason} for m, reason in results],
        "leaks": leaks,
    }


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as f:
        request = json.load(f)
    # Imported code may print; keep the real stdout for the report and send fd 1 to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  (lives as long as the probe)
    report = probe(request)
    out.write(json.dumps(report) + "\n")
    out.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: threads or atexit hooks of imported code could hang or fail.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
