"""Run inside the census's foreign interpreter: import modules, record what each did.

    python census_probe.py < JSON

JSON: {"path": [folders first on sys.path], "modules": [...], "block": [original top-level
names] or [], "then": a name or null}.
With ``block``, an import hook refuses (and records) every import of an original name, so a
shaded module that reaches for its original fails loudly; ``then`` is imported afterwards,
hook removed, to show the unshaded release loads beside the shaded copy. Prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


class Block:
    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.asked: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            self.asked.append(name)
            raise ImportError(f"original imported: {name}")


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.path[:0] = job["path"]
    block = Block(job["block"]) if job["block"] else None
    if block:
        sys.meta_path.insert(0, block)
    failed: dict[str, str] = {}
    optional: dict[str, str] = {}
    ok = 0
    for name in job["modules"]:
        try:
            importlib.import_module(name)
            ok += 1
        except ModuleNotFoundError as exc:
            top = (exc.name or "").partition(".")[0]
            mine = top in {m.partition(".")[0] for m in job["modules"]}
            if exc.name and not mine and (not block or top not in block.names):
                optional[name] = f"{exc.name}"
            else:
                failed[name] = f"ModuleNotFoundError: {exc}"[:200]
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            failed[name] = f"{type(exc).__name__}: {exc}"[:200]
    out: dict[str, Any] = {"ok": ok, "failed": failed, "optional": optional}
    if block:
        out["asked"] = sorted(set(block.asked))
        out["leaked"] = sorted(k for k in sys.modules if k.partition(".")[0] in block.names)
        sys.meta_path.remove(block)
    if job.get("then"):
        try:
            other = importlib.import_module(job["then"])
            out["then"] = [getattr(other, "__version__", None), other.__name__]
        except BaseException as exc:
            out["then"] = f"{type(exc).__name__}: {exc}"[:200]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
