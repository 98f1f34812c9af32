"""A synthetic dependent wheel: ~20 modules importing a dep's top-level names in the usual forms."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wheel.wheelfile import WheelFile  # type: ignore[import-untyped]

MODULES = 20


@dataclass(frozen=True)
class Target:
    """One top-level name the dependent imports, and a real submodule of it (if any)."""

    top: str
    sub: str | None


def _imports(t: Target, i: int) -> str:
    """Module-level imports of ``t`` in the forms of docs/how-it-works.md's table."""
    lines = [f"import {t.top}", f"import {t.top} as _{t.top}_{i}"]
    if t.sub:
        lines += [
            f"import {t.top}.{t.sub}",
            f"import os, {t.top}.{t.sub} as _{t.top}_sub_{i}, sys",
            f"from {t.top} import {t.sub}",
            f"from {t.top} import ({t.sub} as _{t.top}_from_{i},)",
        ]
    return "\n".join(lines)


def _body(targets: Sequence[Target], i: int) -> str:
    first = targets[0]
    dotted = f"{first.top}.{first.sub}" if first.sub else first.top
    guarded = "\n".join(f"    import {t.top}" for t in targets)
    lazy = "\n".join(f"    import {t.top} as _lazy_{t.top}" for t in targets)
    helpers = "\n\n".join(
        textwrap.dedent(
            f"""\
            def helper_{i}_{j}(values: list[int], scale: int = {j + 1}) -> dict[str, int]:
                \"\"\"Ordinary code that mentions no dependency, as most of a real module.\"\"\"
                totals: dict[str, int] = {{}}
                for n, value in enumerate(values):
                    key = "even" if (value * scale + n) % 2 == 0 else "odd"
                    totals[key] = totals.get(key, 0) + value * scale
                return {{k: v for k, v in sorted(totals.items()) if v > {j}}}
            """
        )
        for j in range(6)
    )
    return (
        f'"""Synthetic dependent module {i}: imports {", ".join(t.top for t in targets)}."""\n\n'
        "from __future__ import annotations\n\n"
        "import importlib\n"
        "import sys\n"
        "from typing import TYPE_CHECKING\n\n"
        + "\n".join(_imports(t, i) for t in targets)
        + "\n\nif TYPE_CHECKING:\n"
        + "\n".join(f"    import {t.top} as _typing_{t.top}" for t in targets)
        + "\n\ntry:\n"
        + guarded
        + "\nexcept ImportError:  # pragma: no cover\n    pass\n\n\n"
        f"def load_{i}() -> object:\n"
        + lazy
        + f'\n    return importlib.import_module("{dotted}")\n\n\n'
        f"def loaded_{i}() -> bool:\n"
        f'    return "{first.top}" in sys.modules\n\n\n'
        + helpers
    )


def build(
    out_dir: Path, name: str, targets: Sequence[Target], requirements: Sequence[str]
) -> Path:
    """Write ``<name>-1.0-py3-none-any.whl`` (package ``name``) into ``out_dir``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"not a simple package name: {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-1.0-py3-none-any.whl"
    dist_info = f"{name}-1.0.dist-info"
    metadata = "Metadata-Version: 2.1\n" f"Name: {name}\n" "Version: 1.0\n" + "".join(
        f"Requires-Dist: {req}\n" for req in requirements
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: wheelshade-benchmarks\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    with WheelFile(path, "w") as wf:
        wf.writestr(f"{name}/__init__.py", f'"""Benchmark dependent on {targets[0].top}."""\n')
        for i in range(MODULES):
            wf.writestr(f"{name}/mod_{i:02d}.py", _body(targets, i))
        wf.writestr(f"{dist_info}/METADATA", metadata)
        wf.writestr(f"{dist_info}/WHEEL", wheel_meta)
    return path
