"""What one measured subprocess does: the floor repack, the peer tool, a timed wheelshade run.

run.py starts ``python benchmarks/tasks.py TASK ...`` in a fresh process per measurement, so
each figure includes interpreter start-up, like the wheelshade command it is compared with.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def repack(source: zipfile.ZipFile, target: Path) -> None:
    """Read every member and write it to a new zip, deflated: what any repack costs."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for info in source.infolist():
            if info.is_dir():
                continue
            data = source.read(info)
            new = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            new.external_attr = info.external_attr
            new.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(new, data)


def pack_tree(tree: Path, target: Path) -> None:
    """Zip a directory tree (deflated), files sorted: the floor for an unpacked wheel."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            out.write(path, path.relative_to(tree).as_posix())


def floor(wheels: Sequence[Path], out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            repack(zf, out_dir / wheel.name)
    return 0


def _renamed(member: str, renames: dict[str, str]) -> str:
    head, sep, rest = member.partition("/")
    if sep:
        return f"{renames.get(head, head)}/{rest}"
    stem, dot, ext = head.rpartition(".")
    return f"{renames.get(stem, stem)}.{ext}" if dot and ext == "py" else head


def peer(tool: Path, wheels: Sequence[Path], renames: dict[str, str], work: Path) -> int:
    """Unpack, run python-rewrite-imports over the tree, repack; print a JSON summary.

    The tool failing (a crash, or no renamed package afterwards) is a result, not an error:
    the summary says ``failed`` and why, and the exit status is still 0.
    """
    tree = work / "tree"
    result: dict[str, Any] = {"status": "ok", "message": "", "changed": 0}
    start = time.perf_counter()
    originals: dict[str, bytes] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tree)
            originals.update(
                (m, zf.read(m)) for m in zf.namelist() if m.endswith((".py", ".pyi"))
            )
    result["unpack"] = time.perf_counter() - start
    cmd = [str(tool), "--path", str(tree)]
    for old, new in renames.items():
        cmd += ["--replace", old, new]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    result["rewrite"] = time.perf_counter() - start
    missing = [
        new for old, new in renames.items()
        if not (tree / new).is_dir() and not (tree / f"{new}.py").is_file()
        and ((tree / old).is_dir() or (tree / f"{old}.py").is_file())
    ]
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        result.update(status="failed", message=lines[-1][:200])
    elif missing:
        result.update(status="failed", message=f"produced no output: {', '.join(missing)} absent")
    else:
        result["changed"] = sum(
            1
            for member, data in originals.items()
            if (path := tree / _renamed(member, renames)).is_file() and path.read_bytes() != data
        )
        start = time.perf_counter()
        pack_tree(tree, work / "peer.zip")
        result["repack"] = time.perf_counter() - start
    shutil.rmtree(tree, ignore_errors=True)
    print(json.dumps(result))
    return 0


def _role(job: object) -> str:
    role = getattr(getattr(job, "summary", None), "role", None)
    return str(getattr(role, "value", role))


def shade(argv: Sequence[str], timing_json: Path) -> int:
    """``wheelshade`` CLI in this process, timing each output wheel's rewrite-and-write.

    Wraps ``wheelshade.core.write_job`` when it exists (an internal: if it is renamed, only
    the total is recorded and run.py says so).
    """
    # Imported here: only the timed process imports wheelshade, never run.py.
    import wheelshade.core as core
    from wheelshade.cli import main

    jobs: list[dict[str, Any]] = []
    original: Callable[..., Any] | None = getattr(core, "write_job", None)
    if original is not None:
        inner = original

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                job = args[0] if args else kwargs.get("job")
                jobs.append({"role": _role(job), "seconds": time.perf_counter() - start})

        setattr(core, "write_job", timed)  # noqa: B010 - replacing an internal on purpose
    start = time.perf_counter()
    code = main(list(argv))
    total = time.perf_counter() - start
    timing_json.write_text(
        json.dumps({"total": total, "per_job": original is not None, "jobs": jobs}),
        encoding="utf-8",
    )
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tasks.py")
    sub = parser.add_subparsers(dest="task", required=True)
    fl = sub.add_parser("floor", help="repack each wheel as a plain zip")
    fl.add_argument("out_dir", type=Path)
    fl.add_argument("wheels", nargs="+", type=Path)
    pe = sub.add_parser("peer", help="unpack, run python-rewrite-imports, repack")
    pe.add_argument("--tool", type=Path, required=True)
    pe.add_argument("--work", type=Path, required=True)
    pe.add_argument("--replace", nargs=2, action="append", default=[], metavar=("OLD", "NEW"))
    pe.add_argument("wheels", nargs="+", type=Path)
    sh = sub.add_parser("shade", help="wheelshade CLI with per-wheel timing")
    sh.add_argument("--timing-json", type=Path, required=True)
    sh.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.task == "floor":
        return floor(args.wheels, args.out_dir)
    if args.task == "peer":
        return peer(args.tool, args.wheels, dict(args.replace), args.work)
    rest = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return shade(rest, args.timing_json)


if __name__ == "__main__":
    sys.exit(main())
