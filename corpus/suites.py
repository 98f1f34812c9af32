"""Upstream test suites against shaded wheels (issue 7, item 3).

For each suite in corpus/suites.toml:
  1. fetch the sdist, the wheel of `version` and the wheel of `other` (pip, by name);
  2. baseline: a venv with the unshaded wheel + deps, pytest on a copy of the sdist's tests;
  3. shaded: `wheelshade shade --dep WHEEL`, a second copy of the tests rewritten with
     `wheelshade rewrite --shaded`, a venv with the shaded wheel beside the unshaded `other`
     version + deps, pytest on the rewritten copy;
  4. compare outcomes test by test (junit xml, node ids are the same in both runs).

    .venv/bin/python corpus/suites.py [--only NAME ...] [--pin] [--table]

Work files go to .cache/suites/work/NAME/ (logs, junit xml, rewrite.diff). Results:
.cache/suites/results/NAME.json and a markdown table on stdout (--table: of all stored results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "corpus" / "suites.toml"
CACHE = ROOT / ".cache" / "suites"
SDISTS = CACHE / "sdists"
WHEELS = CACHE / "wheels"
WORK = CACHE / "work"
RESULTS = CACHE / "results"
PY = Path(sys.executable)
WHEELSHADE = ROOT / ".venv" / "bin" / "wheelshade"


def log(msg: str) -> None:
    print(f"[suites] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def check(cmd: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    p = run([str(c) for c in cmd], **kw)
    if p.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        )
    return p


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def find(folder: Path, name: str, version: str, suffixes: tuple[str, ...]) -> Path | None:
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        stem = norm(p.name)
        if stem.startswith(f"{norm(name)}_{norm(version)}") and p.name.endswith(suffixes):
            rest = stem[len(f"{norm(name)}_{norm(version)}") :]
            if rest[:1] in ("_", "") and not rest[1:2].isdigit():
                return p
    return None


def fetch(name: str, version: str, kind: str) -> Path:
    folder = SDISTS if kind == "sdist" else WHEELS
    folder.mkdir(parents=True, exist_ok=True)
    suffixes = (".tar.gz", ".zip") if kind == "sdist" else (".whl",)
    got = find(folder, name, version, suffixes)
    if got:
        return got
    # --no-binary NAME, not :all:, so build dependencies (Cython...) come as wheels
    flag = ["--no-binary", name] if kind == "sdist" else ["--only-binary", ":all:"]
    check(
        [PY, "-m", "pip", "download", "--no-deps", *flag, f"{name}=={version}", "-d", folder],
        f"pip download {kind} {name}=={version}",
    )
    got = find(folder, name, version, suffixes)
    if not got:
        raise RuntimeError(f"pip download {name}=={version} ({kind}): file not found in {folder}")
    return got


def unpack(sdist: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as z:
            z.extractall(dest)
    else:
        with tarfile.open(sdist) as t:
            t.extractall(dest, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top


def copy_tests(src: Path, suite: dict[str, Any], dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for rel in suite["tests"]:
        s = src / rel
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, dest / rel)
        elif s.is_file():
            shutil.copy2(s, dest / rel)
        else:
            raise RuntimeError(f"{rel} not in the sdist")
    for rel in suite.get("config", []):
        if (src / rel).is_file():
            shutil.copy2(src / rel, dest / rel)


def make_venv(path: Path, installs: list[str]) -> Path:
    if path.exists():
        shutil.rmtree(path)
    # no pip inside: this interpreter's pip installs into it (saves the ensurepip step)
    check([PY, "-m", "venv", "--without-pip", path], f"venv {path}")
    vpy = path / "bin" / "python"
    check(
        [PY, "-m", "pip", "--python", vpy, "install", "-q", *installs],
        f"pip install in {path.name}",
    )
    return vpy


def junit(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        # parametrize ids with an object's repr carry its address: not the same in two runs
        key = re.sub(r"\b0x[0-9a-f]+\b", "0x?", key)
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                msg = (child.get("message") or "").splitlines()
                if outcome in ("failed", "error") and msg:
                    outcome += " | " + msg[0][:200]
                break
        # pytest writes a failing teardown as a second entry: keep the worst
        if key in out and out[key].split(" |")[0] != "passed":
            continue
        out[key] = outcome
    return out


def pytest(
    vpy: Path, tests: Path, extra: list[str], xml: Path, logfile: Path, env: dict[str, str]
) -> dict[str, str]:
    # pin the rootdir and the config file to the copy: pytest must not walk up into this repo
    ini = None
    for cand in ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
        f = tests / cand
        if f.is_file() and (
            "[pytest]" in f.read_text()
            or "[tool.pytest" in f.read_text()
            or "[tool:pytest]" in f.read_text()
        ):
            ini = f
            break
    if ini is None:
        ini = tests / "_suites_pytest.ini"
        ini.write_text("[pytest]\n")
    cmd = [
        str(vpy),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-q",
        "-rfEs",
        f"--rootdir={tests}",
        "-c",
        str(ini),
        f"--junitxml={xml}",
        "-o",
        "junit_family=xunit1",
        *extra,
    ]
    t0 = time.monotonic()
    # the suite's environment, "{tests}" standing for the copy of its tests
    environ = {**os.environ, **{k: v.format(tests=tests) for k, v in env.items()}}
    p = run(cmd, cwd=tests, timeout=1800, env=environ)
    logfile.write_text(
        f"$ {' '.join(cmd)}\n(rc {p.returncode}, {time.monotonic() - t0:.1f}s)\n"
        + p.stdout
        + p.stderr
    )
    res = junit(xml)
    if not res:
        raise RuntimeError(
            f"pytest produced no results (rc {p.returncode}), see {logfile}:\n"
            + (p.stdout + p.stderr)[-2000:]
        )
    return res


def shade_map(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/wheelshade.json")]
        return dict(json.loads(z.read(meta))["mapping"])


def unshade(key: str, mapping: dict[str, str]) -> str:
    for original, shaded in mapping.items():
        key = re.sub(rf"\b{re.escape(shaded)}\b", original, key)
    return key


def counts(res: dict[str, str]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for v in res.values():
        c[v.split(" |")[0]] += 1
    return c


def shaded_arg(arg: str, mapping: dict[str, str]) -> str:
    """A module path as a user of the shaded copy types it: its top-level name replaced."""
    head, dot, rest = arg.partition(".")
    return mapping.get(head, head) + dot + rest


def runner_summary(text: str) -> str:
    """The last summary line of a unittest or pytest run, or '' when none is found."""
    found = re.findall(
        r"^(Ran \d+ tests?.*|OK.*|FAILED \(.*\)|=+ .*(?:passed|failed).* =+)$", text, re.M
    )
    return " ".join(found[-2:]) if found else ""


def bundled_runner(
    vpy: Path, cwd: Path, args: list[str], mapping: dict[str, str], work: Path, tag: str
) -> dict[str, Any]:
    """Run the suite's own runner (class 6 of issue 14) and say which copy's tests it loaded."""
    probe, out = ROOT / "corpus" / "runner_probe.py", work / f"runner-{tag}.json"
    out.unlink(missing_ok=True)
    cmd = [str(vpy), str(probe), str(out), *args]
    t0 = time.monotonic()
    try:
        p = run(cmd, cwd=cwd, timeout=900)
        text, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired:
        text, rc = "timeout after 900s", -1
    (work / f"runner-{tag}.log").write_text(
        f"$ {' '.join(cmd)}\n(rc {rc}, {time.monotonic() - t0:.1f}s)\n{text}"
    )
    loaded = json.loads(out.read_text())["modules"] if out.exists() else {}
    names = set(mapping) | set(mapping.values())
    # the package's own modules (either name), and modules of the tests copy it ran in
    ours = sorted(
        m for m, f in loaded.items() if m.split(".")[0] in names or (f or "").startswith(str(cwd))
    )
    # in the shaded run every module under an original name comes from the release beside it
    other = sorted(m for m in ours if m.split(".")[0] in mapping) if tag == "shaded" else []
    tests = [m for m in ours if re.search(r"(^|\.)_?tests?(_|\.|$)", m)]
    return {
        "cmd": args,
        "rc": rc,
        "summary": runner_summary(text),
        "test_modules": len(tests),
        "other_version_modules": other,
    }


def run_suite(suite: dict[str, Any], pin: bool) -> dict[str, Any]:
    name, version, other = suite["name"], suite["version"], suite["other"]
    t0 = time.monotonic()
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    log(f"{name}: fetching {version} sdist+wheel, {other} wheel")
    sdist = fetch(name, version, "sdist")
    wheel = fetch(name, version, "wheel")
    other_wheel = fetch(name, other, "wheel")
    for key, path in (("sdist", sdist), ("wheel", wheel), ("other_wheel", other_wheel)):
        digest = sha256(path)
        if pin:
            suite[key] = path.name
            suite[f"{key}_sha256"] = digest
        elif suite.get(f"{key}_sha256") and suite[f"{key}_sha256"] != digest:
            raise RuntimeError(f"{path.name}: sha256 {digest} != pinned {suite[f'{key}_sha256']}")
    src = unpack(sdist, work / "sdist")

    # baseline
    log(f"{name}: baseline venv + pytest")
    base_tests = work / "tests-base"
    copy_tests(src, suite, base_tests)
    vpy = make_venv(work / "venv-base", [str(wheel), *suite["deps"]])
    extra = list(suite.get("pytest_args", []))
    # tests shipped inside the package (and its wheel) run from the installed copy
    pyargs = ["--pyargs", *suite["pyargs"]] if suite.get("pyargs") else []
    env = dict(suite.get("env", {}))
    base = pytest(vpy, base_tests, extra + pyargs, work / "base.xml", work / "base.log", env)
    runner = {}

    # shaded
    log(f"{name}: shading, rewriting the tests")
    out = work / "shaded-out"
    if out.exists():
        shutil.rmtree(out)
    check(
        [WHEELSHADE, "shade", "--dep", wheel, "-o", out, "-q", *suite.get("shade_args", [])],
        f"wheelshade shade {wheel.name}",
    )
    (shaded_wheel,) = list(out.glob("*.whl"))
    shaded_tests = work / "tests-shaded"
    copy_tests(src, suite, shaded_tests)
    check([WHEELSHADE, "rewrite", shaded_tests, "--shaded", shaded_wheel], "wheelshade rewrite")
    diff = run(["diff", "-ru", str(base_tests), str(shaded_tests)])
    (work / "rewrite.diff").write_text(diff.stdout)
    log(f"{name}: shaded venv (beside {name} {other}) + pytest")
    vpy = make_venv(work / "venv-shaded", [str(shaded_wheel), str(other_wheel), *suite["deps"]])
    installed = check(
        [PY, "-m", "pip", "--python", vpy, "list", "--format=json"], "pip list"
    ).stdout
    beside = {norm(d["name"]): d["version"] for d in json.loads(installed)}
    if beside.get(norm(name)) != other:
        raise RuntimeError(
            f"{name} {other} not installed beside the shaded copy: {beside.get(norm(name))}"
        )
    mapping = shade_map(shaded_wheel)
    spyargs = [a if a.startswith("-") else shaded_arg(a, mapping) for a in pyargs]
    shaded = pytest(
        vpy, shaded_tests, extra + spyargs, work / "shaded.xml", work / "shaded.log", env
    )
    if suite.get("runner"):
        vbase = work / "venv-base" / "bin" / "python"
        same = {k: k for k in mapping}
        runner["base"] = bundled_runner(vbase, base_tests, suite["runner"], same, work, "base")
        args = [shaded_arg(a, mapping) for a in suite["runner"]]
        runner["shaded"] = bundled_runner(vpy, shaded_tests, args, mapping, work, "shaded")
    # node ids may contain the module name (parametrize ids such as "markupsafe._native"):
    # map the shaded import names back so the ids line up
    shaded = {unshade(k, mapping): v for k, v in shaded.items()}

    differ = {}
    for key in sorted(set(base) | set(shaded)):
        b, s = base.get(key, "absent"), shaded.get(key, "absent")
        if b.split(" |")[0] != s.split(" |")[0]:
            differ[key] = {"baseline": b, "shaded": s}
    return {
        "name": name,
        "version": version,
        "other": other,
        "shaded_wheel": shaded_wheel.name,
        "total": len(set(base) | set(shaded)),
        "baseline": counts(base),
        "shaded": counts(shaded),
        "identical": not differ,
        "differ": differ,
        "runner": runner,
        "seconds": round(time.monotonic() - t0, 1),
    }


def toml_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def write_pins(ran: list[dict[str, Any]]) -> None:
    """Re-read suites.toml (other runs may have pinned meanwhile) and update the suites run."""
    text = CONFIG.read_text()
    suites = tomllib.loads(text)["suite"]
    by_name = {s["name"]: s for s in ran}
    header = text.split("[[suite]]")[0]
    blocks = []
    for s in suites:
        s = by_name.get(s["name"], s)
        blocks.append("[[suite]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in s.items()))
    CONFIG.write_text(header + "\n".join(blocks))


def fmt(c: dict[str, int]) -> str:
    s = f"{c['passed']}/{c['failed']}/{c['skipped']}"
    return s + (f" (+{c['error']} err)" if c["error"] else "")


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| project | version | beside | tests | baseline p/f/s | shaded p/f/s "
        "| identical | differing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            head = f"| {r['name']} | {r['version']} | {r['other']} |"
            lines.append(f"{head} - | - | - | not run | {r['error']} |")
            continue
        lines.append(
            f"| {r['name']} | {r['version']} | {r['other']} | {r['total']} "
            f"| {fmt(r['baseline'])} | {fmt(r['shaded'])} "
            f"| {'y' if r['identical'] else 'n'} | {len(r['differ'])} |"
        )
    ran = [r for r in results if "error" not in r]
    same = sum(r["identical"] for r in ran)
    lines.append("")
    lines.append(
        f"{len(ran)} suites run, {same} identical test by test, {len(results) - len(ran)} not run."
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", action="append", default=[], help="run only this suite (repeatable)")
    ap.add_argument(
        "--pin", action="store_true", help="record file names and sha256 in suites.toml"
    )
    ap.add_argument("--pin-only", action="store_true", help="fetch and pin, run nothing")
    ap.add_argument("--table", action="store_true", help="print the table of all stored results")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.table:
        stored = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json")}
        order = [s["name"] for s in tomllib.loads(CONFIG.read_text())["suite"]]
        print(table([stored[n] for n in order if n in stored]))
        return 0
    suites = tomllib.loads(CONFIG.read_text())["suite"]
    if args.pin_only:
        chosen = [s for s in suites if not args.only or s["name"] in args.only]
        pinned = []
        for s in chosen:
            try:
                for key, kind, ver in (
                    ("sdist", "sdist", s["version"]),
                    ("wheel", "wheel", s["version"]),
                    ("other_wheel", "wheel", s["other"]),
                ):
                    path = fetch(s["name"], ver, kind)
                    s[key], s[f"{key}_sha256"] = path.name, sha256(path)
            except RuntimeError as exc:
                log(f"{s['name']}: not pinned: {str(exc).splitlines()[0]}")
                continue
            pinned.append(s)
        write_pins(pinned)
        return 0 if len(pinned) == len(chosen) else 1
    results = []
    for suite in suites:
        if args.only and suite["name"] not in args.only:
            continue
        try:
            results.append(run_suite(suite, args.pin))
        except Exception as exc:
            log(f"{suite['name']}: NOT RUN: {exc}")
            results.append(
                {
                    "name": suite["name"],
                    "version": suite["version"],
                    "other": suite["other"],
                    "error": " ".join(str(exc).split())[:300],
                    "detail": str(exc),
                }
            )
        r = results[-1]
        if "error" not in r:
            log(
                f"{r['name']}: baseline {fmt(r['baseline'])}, shaded {fmt(r['shaded'])}, "
                + ("identical" if r["identical"] else f"{len(r['differ'])} differ")
                + f" ({r['seconds']}s)"
            )
            for k, v in r["differ"].items():
                log(f"    {k}: {v['baseline']} -> {v['shaded']}")
            for tag, rr in r.get("runner", {}).items():
                log(
                    f"    runner {tag}: rc {rr['rc']}, {rr['summary']!r}, "
                    f"{rr['test_modules']} test modules, "
                    f"other version: {rr['other_version_modules'][:5]}"
                )
        (RESULTS / f"{r['name']}.json").write_text(json.dumps(r, indent=2) + "\n")
    if args.pin:
        write_pins([s for s in suites if not args.only or s["name"] in args.only])
    print(table(results))
    return 0 if all(r.get("identical") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
