"""The import sweep (issue 7, item 2): shade each corpus project and prove nothing leaks.

For every project in corpus/projects.toml, in rank order:

1. ``wheelshade shade --dep <shaded wheel>`` (the CLI, in a subprocess with a timeout);
   exit 2 with a one-line error is *refused*, a traceback or a timeout is *broken*;
2. ``wheelshade verify <shaded copy> --with NAME==<other> --original <wheel>``: a throwaway
   venv holding the shaded copy beside the latest unshaded release (plus both their
   dependencies from the index), every module of the shaded copy imported with a
   leak-blocking hook, and every module that fails imported again from the original wheel.
   The outcome is verify's own verdict: exit 0 *shaded and clean*, exit 4 (BROKEN: imports
   unshaded but not shaded) or 3 with a leak *broken*, 3 without one *unchecked*. When pip
   cannot install the two together, the run checks why (see ``explain_install_failure``).

Results are merged into corpus/results.json (per project, so ``--only`` updates one entry)
and docs/corpus.md is regenerated from it.

Usage: .venv/bin/python corpus/run.py [--only NAME ...] [--limit N] [--jobs 2] [--skip-done]
       .venv/bin/python corpus/run.py --table     (only regenerate docs/corpus.md)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import fcntl
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "corpus"
WHEELS = CACHE / "wheels"
LOGS = CACHE / "logs"
PROJECTS = ROOT / "corpus" / "projects.toml"
RESULTS = ROOT / "corpus" / "results.json"
WHEELSHADE = [str(Path(sys.executable).parent / "wheelshade")]
PY = sys.executable
SHADE_TIMEOUT = 900
VERIFY_TIMEOUT = 1800

CLEAN, REFUSED, BROKEN = "shaded and clean", "refused", "broken"
#: verify could not compare a failed module with the original (its UNCHECKED verdict).
UNCHECKED = "unchecked"
#: ``wheelshade verify`` exit statuses (docs/cli.md).
EXIT_OK, EXIT_FINDINGS, EXIT_BROKEN = 0, 3, 4
VERDICTS = (EXIT_OK, EXIT_FINDINGS, EXIT_BROKEN)
#: The finding code for a string shaped like a module path with no evidence that it is one:
#: a rename the evidence rule declined (src/wheelshade/findings.py).
DECLINED = "unproven-module-path"
_lock = threading.Lock()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_list import pip_download, sha256  # noqa: E402
from table import write_table  # noqa: E402


def load_projects() -> list[dict[str, Any]]:
    with PROJECTS.open("rb") as f:
        projects = tomllib.load(f)["project"]
    return sorted(projects, key=lambda p: p["rank"])


def fetch(name: str, version: str, wheel: str, digest: str) -> Path:
    """The pinned wheel in the cache, downloaded with pip when missing; sha256 checked."""
    path = WHEELS / wheel
    if not path.exists():
        WHEELS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            pip_download(name, version, tmp)
            got = Path(tmp) / wheel
            if not got.exists():
                raise RuntimeError(f"pip download {name}=={version} did not give {wheel}")
            got.replace(path)
    if sha256(path) != digest:
        raise RuntimeError(f"{wheel}: sha256 mismatch with corpus/projects.toml")
    return path


def first_error(text: str) -> str:
    """The line that says what went wrong: a traceback's last line, else the first error."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if "Traceback (most recent call last)" in text:
        for ln in reversed(lines):
            if not ln.startswith(("File ", "^", "~")) and ":" in ln:
                return ln[:300]
    for ln in lines:
        if ln.startswith("wheelshade: error:"):
            return ln[:300]
    return (lines[-1] if lines else "(no output)")[:300]


def by_rule(reason: str) -> bool:
    """Skipped by verify without trying: test modules, __main__, names no import statement
    can spell (rich's ``unicode10-0-0`` data modules)."""
    return reason in ("test module", "not an importable module name") or reason.startswith(
        "__main__"
    )


def import_errors(out: str) -> list[tuple[str, str]]:
    """Modules verify tried to import and that failed, not for an absent optional dependency."""
    return [
        (m, r)
        for m, r in re.findall(r"^  skipped (\S+): (.*)$", out, re.M)
        if not (by_rule(r) or r.startswith("needs optional dependency "))
    ]


def parse_verify(out: str) -> dict[str, Any]:
    m = re.search(r": imported (\d+), skipped (\d+), leaks (\d+)", out)
    skipped = re.findall(r"^  skipped (\S+): (.*)$", out, re.M)
    tests = sum(1 for _, r in skipped if by_rule(r))
    optional = [
        r.removeprefix("needs optional dependency ")
        for _, r in skipped
        if r.startswith("needs optional dependency ")
    ]
    errors = import_errors(out)
    leaks = re.findall(r"^  leak .*$", out, re.M)
    broken = re.findall(r"^  broken (.*) \(imports from the original wheel\)$", out, re.M)
    not_compared = re.findall(
        r"^  import failures not compared with the original: (.*)$", out, re.M
    )
    return {
        "broken": len(broken),
        "first_broken": broken[0][:300] if broken else "",
        "not_compared": "; ".join(not_compared)[:300],
        "imported": int(m.group(1)) if m else None,
        "skipped": int(m.group(2)) if m else None,
        "skipped_tests": tests,
        "skipped_optional": len(optional),
        "optional_deps": sorted(set(optional)),
        "import_errors": len(errors),
        "first_import_error": f"{errors[0][0]}: {errors[0][1]}"[:300] if errors else "",
        "leaks": len(leaks),
        "first_leak": leaks[0].strip()[:300] if leaks else "",
    }


def pip_dry_run(reqs: list[str], *, quiet: bool) -> subprocess.CompletedProcess[str]:
    """``pip install --dry-run`` of ``reqs`` as if nothing were installed."""
    return subprocess.run(
        [PY, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         *(["-q"] if quiet else []), "--disable-pip-version-check", *reqs],
        capture_output=True,
        text=True,
        timeout=600,
    )


def dry_run(reqs: list[str]) -> tuple[bool, str]:
    proc = pip_dry_run(reqs, quiet=True)
    err = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip().startswith("ERROR")]
    return proc.returncode == 0, (err[0] if err else first_error(proc.stderr))[:200]


def explain_install_failure(
    p: dict[str, Any], orig: Path, shaded: Path, pip_err: str
) -> tuple[str, str]:
    """verify's pip install failed: refused when the conflict lies in the projects' own
    requirements (the two versions cannot share their unshaded dependencies, or a version
    does not install here even unshaded), broken when shading made it fail."""
    other = f"{p['name']}=={p['other']}"
    ok_shaded, err_shaded = dry_run([str(shaded)])
    if not ok_shaded:
        ok_orig, err_orig = dry_run([str(orig)])
        if ok_orig:
            return BROKEN, f"the shaded wheel does not install, the original does: {err_shaded}"
        return (
            REFUSED,
            f"dependencies do not install: {p['name']} {p['shaded']} itself does not ({err_orig})",
        )
    ok_other, err_other = dry_run([other])
    if not ok_other:
        return REFUSED, f"dependencies do not install: {other} itself does not ({err_other})"
    ok_orig, _ = dry_run([str(orig)])
    if not ok_orig:
        return BROKEN, f"shaded wheel installs but the original does not: {pip_err}"
    # Not quiet: pip's "X depends on Y" lines say which requirements conflict.
    proc = pip_dry_run([str(shaded), other], quiet=False)
    causes = re.findall(r"^\s+(\S+) (\S+) depends on (.+)$", proc.stdout + proc.stderr, re.M)
    detail = (
        "; ".join(f"{v} needs {dep.strip()}" for _, v, dep in causes)
        or pip_err.split("pip install failed: ")[-1]
    )
    return REFUSED, f"dependencies do not install together ({detail})"


#: A declined-rename finding that counts several strings: the rest of a file's, or the
#: strings of a compiled file (group 2).
_COUNTED = re.compile(r"(\d+) (?:more strings|string\(s\) (in compiled code))")


def read_report(path: Path, res: dict[str, Any]) -> None:
    """Findings, declined renames and the mapping from ``shade --report``'s JSON."""
    try:
        report = json.loads(path.read_text())
        findings = [f for w in report.get("wheels", []) for f in w.get("findings", [])]
        res["findings"] = len(findings)
        declined = [f.get("message", "") for f in findings if f.get("code") == DECLINED]
        # One finding may stand for many strings (the rest of a file, a compiled file's).
        counted = [_COUNTED.match(m) for m in declined]
        res["declined"] = sum(int(c.group(1)) if c else 1 for c in counted)
        res["declined_compiled"] = sum(int(c.group(1)) for c in counted if c and c.group(2))
        res["mapping"] = {
            k: v for w in report.get("wheels", []) for k, v in w.get("mapping", {}).items()
        }
    except (OSError, ValueError, AttributeError, TypeError):
        pass


def run_one(p: dict[str, Any]) -> dict[str, Any]:
    name = p["name"]
    res: dict[str, Any] = {
        "name": name,
        "rank": p["rank"],
        "shaded": p["shaded"],
        "other": p["other"],
        "outcome": "",
        "reason": "",
    }
    t0 = time.monotonic()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with tempfile.TemporaryDirectory(prefix=f"corpus-{name}-") as tmp:
        work = Path(tmp)
        try:
            orig = fetch(name, p["shaded"], p["shaded_wheel"], p["shaded_sha256"])
            fetch(name, p["other"], p["other_wheel"], p["other_sha256"])
        except Exception as exc:
            res.update(outcome="not run", reason=f"fetch failed: {exc}"[:200])
            res["seconds"] = round(time.monotonic() - t0, 1)
            return res
        out = work / "out"
        cmd = [
            *WHEELSHADE,
            "shade",
            "--dep",
            str(orig),
            "-o",
            str(out),
            "--report",
            str(work / "r.json"),
            "-j",
            "1",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SHADE_TIMEOUT)
            shade_text = proc.stdout + proc.stderr
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            shade_text, rc = f"timed out after {SHADE_TIMEOUT} s", None
        res["shade_seconds"] = round(time.monotonic() - t0, 1)
        with log.open("w", encoding="utf-8") as f:
            f.write(f"$ {' '.join(cmd)}\nexit {rc}\n{shade_text}\n")
        read_report(work / "r.json", res)
        if rc is None:
            res.update(outcome=BROKEN, reason=f"shade timed out after {SHADE_TIMEOUT} s")
        elif rc != 0:
            err = proc.stderr.strip().splitlines()
            one_line = rc == 2 and len(err) == 1 and err[0].startswith("wheelshade: error:")
            if one_line:
                error = err[0].removeprefix("wheelshade: error: ")
                # The wheel is known: its file name would use up the 200 characters.
                short = error.removeprefix(f"{orig.name}: ")
                res.update(outcome=REFUSED, reason=short[:200], error=error)
                retry_asked(p, orig, work, res, log)
            else:
                res.update(
                    outcome=BROKEN,
                    reason=f"shade exit {rc}: {first_error(proc.stderr or proc.stdout)}",
                )
        else:
            shaded = sorted(out.glob("*.whl"))
            if len(shaded) != 1:
                res.update(outcome=BROKEN, reason=f"shade wrote {len(shaded)} wheels, expected 1")
            else:
                verify(p, orig, shaded[0], res, log)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def run_logged(
    cmd: list[str], log: Path, timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """Run ``cmd`` and append it, its exit status and output to ``log``; None on a timeout."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    return proc


def verify(p: dict[str, Any], orig: Path, shaded: Path, res: dict[str, Any], log: Path) -> None:
    cmd = [*WHEELSHADE, "verify", str(shaded), "--with", f"{p['name']}=={p['other']}",
           "--original", str(orig)]
    t = time.monotonic()
    proc = run_logged(cmd, log, VERIFY_TIMEOUT)
    res["verify_seconds"] = round(time.monotonic() - t, 1)
    if proc is None:
        res.update(outcome=BROKEN, reason=f"verify timed out after {VERIFY_TIMEOUT} s")
        return
    if proc.returncode not in VERDICTS and "pip install failed" in proc.stderr:
        if retry_with_deps(p, orig, shaded.parent.parent, res, log):
            return
        outcome, reason = explain_install_failure(p, orig, shaded, first_error(proc.stderr))
        if res.get("with_deps_refused"):
            reason = f"{reason}; --with-deps refused: {res['with_deps_refused']}"
        res.update(outcome=outcome, reason=reason[:400])
        return
    classify(proc, res)
    if res["outcome"] == BROKEN and res["leaks"]:
        retry_back_imports(p, orig, proc.stdout, shaded.parent.parent, res, log)


#: verify's line for a dependency that imports the shaded package back (verify/leaks.py).
_BACK = re.compile(r"shade the distribution that installs '[\w.]+' \(([\w.-]+)\) in the same set")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def retry_back_imports(
    p: dict[str, Any], orig: Path, verify_out: str, work: Path, res: dict[str, Any], log: Path
) -> None:
    """verify named distributions installed beside the shaded copy that import it back by
    its original name (a dependency that does not require it): shade them in the same set,
    at the version pip installs with the original, as a user following the hint would."""
    dists = sorted(set(_BACK.findall(verify_out)))
    if dists:
        retry_with_more(p, orig, dists, work, res, log, "imports it back, as verify says")


#: shade's refusal for a required distribution installing inside the package (nesting.py).
_ASKED = re.compile(r"shade it in the same set: --dep ([\w.-]+)(?: \(|$)")


def retry_asked(
    p: dict[str, Any], orig: Path, work: Path, res: dict[str, Any], log: Path
) -> None:
    """shade refused, naming the one distribution to add to the set: add it, as a user
    following the message would."""
    asked = _ASKED.search(res.get("error", ""))
    if asked is None or retry_with_more(p, orig, [asked.group(1)], work, res, log,
                                        "as shade asks"):
        return
    # The two do not install beside the other release: the whole closure then.
    if not retry_with_deps(p, orig, work, res, log) and res.get("with_deps_refused"):
        res["reason"] = (f"{res['reason']}; with --dep {asked.group(1)} it does not "
                         f"install, --with-deps refused: {res['with_deps_refused']}")[:400]


def _pins(orig: Path, dists: list[str]) -> list[str] | None:
    """``dist==version`` for each of ``dists`` at the version pip installs with ``orig``;
    None when one of them is not in that closure."""
    proc = subprocess.run(
        [PY, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", "-",
         "--disable-pip-version-check", str(orig)],
        capture_output=True, text=True, timeout=600,
    )
    try:
        installs = json.loads(proc.stdout)["install"]
        versions = {_canonical(i["metadata"]["name"]): i["metadata"]["version"]
                    for i in installs}
    except (ValueError, KeyError, TypeError):
        return None
    pins = [f"{t}=={versions[_canonical(t)]}" for t in dists if _canonical(t) in versions]
    return pins if len(pins) == len(dists) else None


def retry_with_more(
    p: dict[str, Any], orig: Path, dists: list[str], work: Path, res: dict[str, Any],
    log: Path, why: str,
) -> bool:
    """Shade ``orig`` with ``dists`` (at the versions pip installs with it) in one set and
    verify every wheel written; the outcome replaces ``res``'s when both steps ran."""
    pins = _pins(orig, dists)
    if pins is None:
        return False
    out = work / "out-more"
    deps = [a for pin in pins for a in ("--dep", pin)]
    shade_cmd = [*WHEELSHADE, "shade", "--dep", str(orig), *deps, "-o", str(out), "-j", "1",
                 "--report", str(work / "r-more.json")]
    done = run_logged(shade_cmd, log, SHADE_TIMEOUT)
    wheels = sorted(out.glob("*.whl"))
    if done is None or done.returncode != 0 or not wheels:
        return False
    cmd = [*WHEELSHADE, "verify", *map(str, wheels), "--with", f"{p['name']}=={p['other']}",
           "--original", str(orig)]
    check = run_logged(cmd, log, VERIFY_TIMEOUT)
    if check is None or check.returncode not in VERDICTS:
        return False
    read_report(work / "r-more.json", res)
    classify(check, res)
    note = f"with --dep {', --dep '.join(pins)} ({why})"
    res["reason"] = (note + (f"; {res['reason']}" if res.get("reason") else ""))[:300]
    return True


def classify(proc: subprocess.CompletedProcess[str], res: dict[str, Any]) -> None:
    """The outcome from verify's own verdict: exit 0 clean, 4 broken (a module imports from
    the original wheel but not shaded), 3 a leak (broken) or UNCHECKED (a failure no original
    could clear), anything else a verify failure (broken). verify already imported every
    failed module from the original wheel: the failures it lists as skipped fail there too."""
    res.update(parse_verify(proc.stdout), reason="")
    rc = proc.returncode
    if rc == EXIT_OK:
        res["outcome"] = CLEAN
        if res["import_errors"]:
            res["reason"] = (
                f"{res['import_errors']} module(s) fail to import, unshaded too: "
                f"{res['first_import_error']}"
            )[:300]
    elif rc == EXIT_BROKEN:
        res.update(
            outcome=BROKEN,
            reason=f"{res['broken']} module(s) import unshaded but fail shaded: "
            f"{res['first_broken']}"[:300],
        )
    elif rc == EXIT_FINDINGS and res["leaks"]:
        res.update(outcome=BROKEN, reason=f"leak: {res['first_leak']}"[:300])
    elif rc == EXIT_FINDINGS:
        res.update(outcome=UNCHECKED, reason=f"verify UNCHECKED: {res['not_compared']}"[:300])
    elif "did not finish within" in proc.stderr:
        # The machine, not the shading: a step (pip install of a large closure) timed out.
        res.update(outcome=UNCHECKED, reason=f"verify: {first_error(proc.stderr)}"[:300])
    else:
        res.update(
            outcome=BROKEN,
            reason=f"verify exit {rc}: {first_error(proc.stderr or proc.stdout)}",
        )


#: How many distributions verify's hints may add to a ``--with-deps`` set, one round each.
_MORE_ROUNDS = 3


def retry_with_deps(
    p: dict[str, Any], orig: Path, work: Path, res: dict[str, Any], log: Path,
    more: list[str] | None = None,
) -> bool:
    """The two versions need different versions of a shared dependency (boto3 and
    botocore): shade the old release's closure against the new one with ``--with-deps``,
    as a user would, and verify every shaded wheel. True when that gives a verdict (clean,
    broken, unchecked); False when it is refused or does not install either. When verify
    then names closure members that import the package back, they are added to the set
    (``more``, pinned), a few rounds, as a user following the hints would."""
    target = work / "target.txt"
    target.write_text(f"{p['name']}=={p['other']}\n")
    tag = f"with-deps-more{len(more)}" if more else "with-deps"
    out, report = work / f"out-{tag}", work / f"r-{tag}.json"
    extra = [a for pin in more or () for a in ("--dep", pin)]
    shade_cmd = [
        *WHEELSHADE, "shade", "--dep", str(orig), *extra, "--with-deps",
        "--target-requirements", str(target), "-o", str(out), "-j", "1",
        "--report", str(report),
    ]
    proc = run_logged(shade_cmd, log, SHADE_TIMEOUT)
    wheels = sorted(out.glob("*.whl"))
    if proc is not None and proc.returncode == 2:
        error = first_error(proc.stderr).removeprefix("wheelshade: error: ")
        res["with_deps_refused"] = error.removeprefix(f"{orig.name} and ")[:200]
    if proc is None or proc.returncode != 0 or not wheels:
        return False
    cmd = [*WHEELSHADE, "verify", *map(str, wheels), "--with", f"{p['name']}=={p['other']}",
           "--original", str(orig)]
    check = run_logged(cmd, log, VERIFY_TIMEOUT)
    if check is None or check.returncode not in VERDICTS:
        return False
    have = {_canonical(m.partition("==")[0]) for m in more or ()}
    back = sorted({d for d in _BACK.findall(check.stdout) if _canonical(d) not in have})
    if len(more or ()) < _MORE_ROUNDS and check.returncode != EXIT_OK and back:
        pins = _pins(orig, back)
        if pins and retry_with_deps(p, orig, work, res, log, [*(more or ()), *pins]):
            return True
    read_report(report, res)
    classify(check, res)
    members = [w.name.split("-", 1)[0] for w in wheels]
    asked = f" and --dep {', --dep '.join(more)} (imports it back, as verify says)" if more else ""
    note = f"with --with-deps{asked}: {len(wheels)} shaded wheels ({', '.join(members)})"
    res["reason"] = (note + (f"; {res['reason']}" if res.get("reason") else ""))[:300]
    return True


def load_results() -> dict[str, Any]:
    if RESULTS.exists():
        return {r["name"]: r for r in json.loads(RESULTS.read_text())["results"]}
    return {}


def record(result: dict[str, Any], projects: list[dict[str, Any]]) -> None:
    """Merge one project's result into results.json as it is on disk now, under a file
    lock: several runners (``--offset``, another session) can share the file."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "results.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results()
        results[result["name"]] = result
        save_results(results, projects)


def save_results(results: dict[str, Any], projects: list[dict[str, Any]]) -> None:
    order = {p["name"]: p["rank"] for p in projects}
    # Results of projects no longer in the list (a regenerated corpus) are dropped.
    rows = sorted(
        (r for r in results.values() if r["name"] in order), key=lambda r: order[r["name"]]
    )
    doc = {"python": "3.11", "platform": "manylinux x86_64", "results": rows}
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(RESULTS)
    write_table(projects, results)


def main() -> int:
    ap = argparse.ArgumentParser(description="The import sweep over corpus/projects.toml.")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this project (repeatable)",
    )
    ap.add_argument("--limit", type=int, help="run only the first N projects (rank order)")
    ap.add_argument(
        "--offset", type=int, default=0, help="skip the first N projects (rank order)"
    )
    ap.add_argument("--jobs", type=int, default=2, help="projects run in parallel (default 2)")
    ap.add_argument(
        "--skip-done",
        action="store_true",
        help="skip projects that already have a result in corpus/results.json",
    )
    ap.add_argument("--table", action="store_true", help="only regenerate docs/corpus.md")
    args = ap.parse_args()
    if shutil.which(WHEELSHADE[0]) is None:
        print(
            f"run.py: {WHEELSHADE[0]} not found; run `make venv` (or pip install -e .)",
            file=sys.stderr,
        )
        return 1
    projects = load_projects()
    results = load_results()
    if args.table:
        write_table(projects, results)
        return 0
    todo = projects
    if args.only:
        wanted = {n.lower() for n in args.only}
        todo = [p for p in projects if p["name"].lower() in wanted]
        if len(todo) != len(wanted):
            print(
                f"run.py: not in the corpus: {wanted - {p['name'].lower() for p in todo}}",
                file=sys.stderr,
            )
            return 1
    todo = todo[args.offset :]
    if args.limit is not None:
        todo = todo[: args.limit]
    if args.skip_done:
        todo = [
            p
            for p in todo
            if p["name"] not in results or results[p["name"]]["outcome"] == "not run"
        ]
    total = len(todo)
    done = 0
    with cf.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futs = {pool.submit(run_one, p): p for p in todo}
        for fut in cf.as_completed(futs):
            p = futs[fut]
            try:
                r = fut.result()
            except Exception as exc:
                r = {
                    "name": p["name"],
                    "rank": p["rank"],
                    "shaded": p["shaded"],
                    "other": p["other"],
                    "outcome": BROKEN,
                    "reason": f"harness error: {exc!r}"[:200],
                    "seconds": None,
                }
            done += 1
            with _lock:
                record(r, projects)
            extra = f" ({r['reason']})" if r.get("reason") else ""
            print(
                f"[{done}/{total}] #{p['rank']} {p['name']} {p['shaded']}: {r['outcome']}{extra}"
                f" {r.get('seconds')} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
