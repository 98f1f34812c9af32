"""Command line: parse arguments, call the API, turn a WheelshadeError into one line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from wheelshade.batch import SetOutcome, run_batch
from wheelshade.cli_args import index_options as _index
from wheelshade.cli_args import parser as _parser
from wheelshade.config import find_config, load_config, override, top_level_set
from wheelshade.errors import StrictError, UsageError, WheelshadeError
from wheelshade.report import summary, write_json
from wheelshade.resolve.fetch import Target
from wheelshade.result import ShadeResult
from wheelshade.shadeset import ShadeSet
from wheelshade.timings import Timings
from wheelshade.wheel.summary import Role

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_ERROR = 2
EXIT_FINDINGS = 3
EXIT_BROKEN = 4  # verify: a module imports from the original wheel but not shaded


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_decisions(result: ShadeResult) -> str:
    rows = [("closure member", "version", "decision", "reason")]
    rows += [
        (d.name, str(d.version), "shade" if d.shade else "keep", d.reason)
        for d in result.decisions
    ]
    return _table(rows) + "\n"


def format_result(result: ShadeResult) -> str:
    rows = [("wheel", "role", "imports as", "distribution", "rewritten")]
    for w in result.wheels:
        imports = ", ".join(f"{k} -> {v}" for k, v in sorted(w.mapping.items())) or "-"
        rows.append((
            w.original,
            "dep" if w.role is Role.DEP else "dependent",
            imports,
            str(w.distribution),
            f"{w.rewritten}/{w.python_files} files",
        ))
    out = [format_decisions(result)] if result.decisions else []
    out += [_table(rows), ""]
    for w in result.wheels:
        scripts = [*w.scripts_dropped, *(n for n in w.left_out if ".data/scripts/" in n)]
        if scripts:
            why = ("a bundle carries no scripts of its bundled deps" if result.bundles
                   else "they would replace the unshaded package's; --keep-scripts keeps them")
            out.append(f"note: {w.original}: scripts left out ({why}): {', '.join(scripts)}")
    out.extend(f"note: {note}" for note in result.notes)
    out.append(summary(result))
    verb = "wrote" if result.written else "would write"
    out.extend(f"{verb} {path}" for path in result.bundles or [w.output for w in result.wheels])
    return "\n".join(out)


def _cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The set options given on the command line (None where not given)."""
    index_given = args.find_links or args.index_url or args.extra_index_url or args.no_index
    return {
        "out_dir": args.out_dir,
        "suffix": args.suffix,
        "drop": tuple(args.drop) if args.drop else None,
        "keep_scripts": args.keep_scripts,
        "keep_pth": args.keep_pth,
        "strict": args.strict,
        "with_deps": args.with_deps,
        "target_requirements": args.target_requirements,
        "target_env": args.target_env,
        "uploaded_prior_to": args.uploaded_prior_to,
        "cache_dir": args.cache_dir,
        "naming": args.naming,
        "keep_unparsable": args.on_unparsable == "keep" if args.on_unparsable else None,
        "prefer_python": args.prefer_python,
        "load_check": args.load_check,
        "target": Target(args.python_version, tuple(args.platform or ()))
        if args.python_version or args.platform
        else None,
        "index": _index(args) if index_given else None,
        "jobs": args.jobs,
        "fetch_timeout": args.fetch_timeout,
        "dry_run": args.dry_run or None,
        "diff": args.diff or None,
        "bundle": args.bundle,
    }


def _sets(args: argparse.Namespace) -> tuple[list[ShadeSet], dict[str, Any]]:
    """The shading sets to run: from --dep, or from the config file; flags win."""
    config = args.config
    if config is None and not args.no_config:
        config = find_config(Path.cwd())
    if args.dep:
        base = top_level_set(config) if config is not None else ShadeSet(deps=())
        sets = [replace(base, deps=tuple(args.dep), dependents=tuple(args.wheels))]
        settings: dict[str, Any] = {}
    elif config is not None:
        if args.wheels:
            raise UsageError(
                "dependent wheels given without --dep",
                hint="give --dep, or list the dependents in the config file",
            )
        sets, settings = load_config(config)
    else:
        raise UsageError(
            "no --dep given: name at least one dependency to shade",
            hint="or declare sets in wheelshade.toml / [tool.wheelshade]; see docs/config.md",
        )
    return override(sets, **_cli_overrides(args)), settings


def _shade(args: argparse.Namespace) -> int:
    sets, settings = _sets(args)
    if len(sets) > 1 or args.json:
        return _batch(args, sets, settings)
    timings = Timings() if args.timings or os.environ.get("WHEELSHADE_TIMINGS") == "1" else None
    try:
        result = sets[0].run(timings=timings)
    except StrictError as exc:
        if args.report and isinstance(exc.result, ShadeResult):
            write_json(exc.result, args.report)
            print(summary(exc.result), file=sys.stderr)
        raise
    if args.report:
        write_json(result, args.report)
    for warning in result.warnings:
        print(f"wheelshade: warning: {warning}", file=sys.stderr)
    if args.diff:
        sys.stdout.write("".join(result.diffs))
    if not args.quiet:
        print(format_result(result))
    if timings is not None:
        print(timings.report(), file=sys.stderr)
    return EXIT_OK


def _batch(args: argparse.Namespace, sets: list[ShadeSet], settings: dict[str, Any]) -> int:
    if args.report or args.diff:
        raise UsageError("--report and --diff take one set; use --json for several")
    tty = sys.stderr.isatty()

    def progress(outcome: SetOutcome, done: int, total: int) -> None:
        status = "ok" if outcome.ok else "FAILED"
        if tty:
            print(f"\r[{done}/{total}] {outcome.shade_set.label}: {status}\033[K",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
        else:
            print(f"wheelshade: [{done}/{total}] set {outcome.shade_set.label}: {status}",
                  file=sys.stderr)
        if outcome.error:
            print(outcome.error if not tty else f"\n{outcome.error}", file=sys.stderr)
        elif outcome.result is not None and not tty:
            for w in outcome.result.wheels:
                print(f"wheelshade:   wrote {w.output} ({w.original}, "
                      f"{w.rewritten}/{w.python_files} files rewritten)", file=sys.stderr)

    result = run_batch(
        sets,
        jobs=args.jobs or settings.get("jobs"),
        fail_fast=args.fail_fast or bool(settings.get("fail-fast")),
        dry_run=args.dry_run,
        on_done=progress,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    failed = [o for o in result.outcomes if not o.ok]
    if not args.quiet and not args.json:
        print(f"{len(result.outcomes) - len(failed)} of {len(result.outcomes)} sets succeeded")
    return max((o.exit_status for o in failed), default=EXIT_OK)


def _verify(args: argparse.Namespace) -> int:
    from wheelshade.verify.leaks import format_report, verify

    report = verify(
        args.wheels, with_requirements=args.with_, index=_index(args), originals=args.original
    )
    print(format_report(report))
    if report.broken:
        return EXIT_BROKEN
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _rewrite(args: argparse.Namespace) -> int:
    from wheelshade.tree import ShadeMap, map_from_wheels, parse_maps, rewrite_tree

    shade_map = map_from_wheels(args.shaded) if args.shaded else ShadeMap({})
    extra = parse_maps(args.map)
    if extra:
        shade_map = ShadeMap({**shade_map.imports, **extra}, shade_map.modules, shade_map.dists)
    if not shade_map.imports:
        raise UsageError("nothing to rename: give --map ORIGINAL=SHADED or --shaded WHEEL")
    result = rewrite_tree(args.directory, shade_map, check=args.check)
    verb = "would rewrite" if args.check else "rewrote"
    for path in result.changed:
        print(f"{verb} {path}")
    for finding in result.findings:
        print(f"wheelshade: finding: {finding}", file=sys.stderr)
    print(f"{len(result.changed)} file(s) {verb.split()[-1]}", file=sys.stderr)
    return EXIT_USAGE if args.check and result.changed else EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    from wheelshade.inspect_wheel import format_inspection, inspect_wheel

    print(format_inspection(inspect_wheel(args.wheel)))
    return EXIT_OK


def _serve(argv: list[str]) -> int:
    try:
        from wheelshade.serve.main import main as serve_main
    except ImportError as exc:
        print(f"wheelshade: error: serve needs its extra ({exc.name} is missing); "
              "pip install 'wheelshade[serve]'", file=sys.stderr)
        return EXIT_USAGE
    return serve_main(argv)


class Terminated(BaseException):
    """SIGTERM, turned into an exception so staging folders and partial files are removed."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    commands = {"shade": _shade, "verify": _verify, "inspect": _inspect, "rewrite": _rewrite}
    try:
        return commands[args.command](args)
    except UsageError as exc:
        print(f"wheelshade: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StrictError as exc:
        print(f"wheelshade: error: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except WheelshadeError as exc:
        print(f"wheelshade: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("wheelshade: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Terminated:
        print("wheelshade: terminated; nothing was written", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
