"""Run a project's bundled test runner inside a suite's venv and record the modules it loaded.

    python runner_probe.py OUT.json -m PKG.tests [ARGS...]
    python runner_probe.py OUT.json PATH/runtests.py [ARGS...]
    python runner_probe.py OUT.json -c "import PKG; PKG.test()"

Bundled runners find their tests by module paths they build at run time (class 6 of issue 14),
which pytest never sees: on a shaded copy they may silently load the *other* version's tests.
The list of loaded modules (name -> file) written to OUT.json shows which copy they ran.
Runs with the venv's own interpreter and the standard library only.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    code = 0
    # as `python -m` / `python -c` would have it: the working directory first, not this file's
    sys.path[0] = os.getcwd()
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            exec(compile(args[1], "<runner>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exc:
        code = int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the runner's own failure is a result too: record what it loaded
        traceback.print_exc()
        code = 1
    modules = {
        name: getattr(mod, "__file__", None)
        for name, mod in list(sys.modules.items())
        if mod is not None
    }
    with open(out, "w") as f:
        json.dump({"exit": code, "modules": modules}, f, indent=1, sort_keys=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
