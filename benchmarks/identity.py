"""Prove a refactoring changed no output: shade the benchmark corpus and hash every file written.

    .venv/bin/python benchmarks/identity.py record before.json   # on the old commit
    .venv/bin/python benchmarks/identity.py record after.json    # on the new one
    .venv/bin/python benchmarks/identity.py compare before.json after.json

Each case of corpus.toml (every wheel alone, every group as one set, and each case's
synthetic dependent) is shaded with the CLI in a fresh subprocess; the sha256 of every output
wheel is recorded. ``compare`` exits non-zero and names the cases whose bytes differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import corpus
from run import dependent_wheel, fetch_corpus, make_cases


def record(target: Path) -> int:
    paths, skipped = fetch_corpus(corpus.load())
    if skipped:
        print(f"not recorded (index unreachable): {', '.join(skipped)}", file=sys.stderr)
    outputs: dict[str, dict[str, str]] = {}
    for case in make_cases(corpus.load(), paths):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            deps = [a for w in case.wheels for a in ("--dep", str(w))]
            argv = [sys.executable, "-m", "wheelshade", "shade", "-q", str(dependent_wheel(case)),
                    *deps, "-o", str(out), "--cache-dir", str(Path(tmp) / "cache")]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            key = case.row.label
            if proc.returncode != 0:
                outputs[key] = {"error": proc.stderr.strip().splitlines()[-1:][0]}
            else:
                outputs[key] = {
                    p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(out.glob("*.whl"))
                }
            print(f"{key}: {len(outputs[key])} file(s)", file=sys.stderr)
    target.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def compare(before: Path, after: Path) -> int:
    old = json.loads(before.read_text(encoding="utf-8"))
    new = json.loads(after.read_text(encoding="utf-8"))
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    for key in differ:
        print(f"differs: {key}\n  before {old.get(key)}\n  after  {new.get(key)}")
    files = sum(len(v) for v in new.values())
    print(f"{len(new) - len(differ)} of {len(new)} cases byte-identical ({files} wheels)")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("target", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        return record(args.target)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
