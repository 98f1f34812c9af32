"""The leak report: what was shaded and every finding, as text and as JSON (schema 1)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from wheelshade import __version__
from wheelshade.result import ShadeResult
from wheelshade.wheel.summary import Role

REPORT_SCHEMA = 1


def to_json(result: ShadeResult) -> dict[str, object]:
    return {
        "schema": REPORT_SCHEMA,
        "tool": {"name": "wheelshade", "version": __version__},
        "digest": result.digest,
        "written": result.written,
        "wheels": [
            {
                "input": str(w.source),
                "output": str(w.output),
                "role": w.role.value,
                "original": w.original,
                "distribution": str(w.distribution),
                "mapping": dict(sorted(w.mapping.items())),
                "python_files": w.python_files,
                "rewritten": w.rewritten,
                "left_out": list(w.left_out),
                "findings": [f.to_json() for f in w.findings],
            }
            for w in result.wheels
        ],
        "warnings": list(result.warnings),
    }


def write_json(result: ShadeResult, path: Path) -> None:
    """Write the report atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(to_json(result), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary(result: ShadeResult, *, limit: int = 5) -> str:
    """A few lines for the terminal: counts per wheel and the first findings."""
    if not result.findings:
        return "leak report: no findings"
    lines = [f"leak report: {result.findings} finding(s) (full list: --report FILE.json)"]
    for w in result.wheels:
        if not w.findings:
            continue
        role = "dep" if w.role is Role.DEP else "dependent"
        lines.append(f"  {w.original} ({role}): {len(w.findings)}")
        lines.extend(f"    {f}" for f in w.findings[:limit])
        if len(w.findings) > limit:
            lines.append(f"    ... and {len(w.findings) - limit} more")
    return "\n".join(lines)
