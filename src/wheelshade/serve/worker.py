"""Run one shade for the server in its own process: ``python -m wheelshade.serve.worker``.

A process per shade keeps the server responsive (no GIL held by LibCST), keeps the
rewrite pool's fork away from the server's threads, and turns any failure into one line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from wheelshade.core import shade
from wheelshade.errors import WheelshadeError
from wheelshade.serve.settings import load_sets


def main() -> int:
    parser = argparse.ArgumentParser(prog="wheelshade.serve.worker")
    parser.add_argument("config", type=Path)
    parser.add_argument("set", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dep", action="append", default=[], type=Path)
    parser.add_argument("--dependent", action="append", default=[], type=Path)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--digest", required=True,
                        help="the set's digest as the server read it (see ServeSet.digest)")
    args = parser.parse_args()
    try:
        chosen = next((s for s in load_sets(args.config) if s.number == args.set), None)
        if chosen is None or chosen.digest != args.digest:
            # Its cache keys would name the options the server read, not these.
            print(f"{args.config} changed since the server started; restart it",
                  file=sys.stderr)
            return 2
        options = replace(chosen.options, out_dir=args.out, cache_dir=args.cache_dir,
                          dry_run=False, diff=False, with_deps=False)
        shade(args.dependent, args.dep, options)
    except WheelshadeError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
