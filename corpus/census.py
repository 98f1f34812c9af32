"""The platform census (issue 15): the corpus's compiled projects shaded for every platform.

For each compiled project of corpus/projects.toml (its shaded version ships a compiled wheel)
and each platform of PLATFORMS, the shaded version's wheel for that platform is fetched (pip,
pinned by file name and sha256 in corpus/census.toml), shaded with the real CLI
(``wheelshade shade --dep WHEEL``) and recorded as shaded / refused (the one-line reason) /
error (anything else: a bug). Where this machine can run the platform it is run: manylinux
aarch64 cp313 under qemu (tests/aarch64.py's sysroot), the shaded copy unpacked beside the
project's next release (``other``), every module of the shaded copy imported with the
original names blocked, and each import failure rechecked against the unshaded wheel.

    .venv/bin/python corpus/census.py --pin-only            # fetch and pin (once)
    .venv/bin/python corpus/census.py [--only NAME] [--platform P] [--skip-done] [--no-run]
    .venv/bin/python corpus/census.py --table               # docs/platforms.md from census.json

Downloads are cached under .cache/census/ (nothing is committed); results go to
corpus/census.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from census_table import write_table
from run import first_error

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "corpus" / "projects.toml"
PINS = ROOT / "corpus" / "census.toml"
RESULTS = ROOT / "corpus" / "census.json"
CACHE = ROOT / ".cache" / "census"
PROBE = ROOT / "corpus" / "census_probe.py"
WHEELSHADE = str(Path(sys.executable).parent / "wheelshade")
sys.path.insert(0, str(ROOT / "tests"))

#: platform -> the tags given to pip (pip widens macosx_14_0 to every older macOS and
#: universal2, manylinux_2_28 to every older glibc); the order is the table's.
PLATFORMS: dict[str, tuple[str, ...]] = {
    "macos-arm64": ("macosx_14_0_arm64",),
    "macos-x86_64": ("macosx_14_0_x86_64",),
    "windows-amd64": ("win_amd64",),
    "manylinux-aarch64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "musllinux-x86_64": ("musllinux_1_2_x86_64", "musllinux_1_1_x86_64"),
}
#: cp313 first (the aarch64 sysroot's Python), cp311 when the shaded version has none.
PYTHONS = ("3.13", "3.11")
#: The corpus's compiled projects that are not taken: none today; a project is left out only
#: with the reason here.
LEFT_OUT: dict[str, str] = {}
COMPILED = (".so", ".pyd", ".dylib", ".dll")
SHADE_TIMEOUT = 900


def log(msg: str) -> None:
    print(f"[census] {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def projects() -> list[dict[str, Any]]:
    rows = tomllib.loads(PROJECTS.read_text())["project"]
    return [p for p in rows
            if not p["shaded_wheel"].endswith("-none-any.whl") and p["name"] not in LEFT_OUT]


# -- pins ---------------------------------------------------------------------------------


def pip_download(reqs: list[str], platform: str, python: str, dest: Path,
                 deps: bool = False) -> list[Path]:
    """The wheels pip downloads for ``reqs`` on ``platform``/``python`` (new files only)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", *([] if deps else ["--no-deps"]),
               *(a for t in PLATFORMS[platform] for a in ("--platform", t)),
               "--python-version", python, "--implementation", "cp",
               "--abi", f"cp{python.replace('.', '')}", "--abi", "abi3", "--abi", "none",
               "-d", tmp, *reqs]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise LookupError((lines[-1] if lines else f"pip exit {proc.returncode}")[:200])
        got = []
        for path in sorted(Path(tmp).glob("*.whl")):
            shutil.move(str(path), dest / path.name)
            got.append(dest / path.name)
        return got


def pin_one(p: dict[str, Any], platform: str) -> dict[str, Any]:
    folder = CACHE / "wheels" / platform
    for python in PYTHONS:
        try:
            (wheel,) = pip_download([f"{p['name']}=={p['shaded']}"], platform, python, folder)
        except LookupError as exc:
            last = str(exc)
            continue
        pin: dict[str, Any] = {"python": python, "shaded": [wheel.name, sha256(wheel)]}
        if platform == "manylinux-aarch64" and python == "3.13":
            # What a run needs: the next release and both versions' dependencies.
            try:
                other = pip_download([f"{p['name']}=={p['other']}"], platform, python, folder,
                                     deps=True)
                mine = pip_download([f"{p['name']}=={p['shaded']}"], platform, python, folder,
                                    deps=True)
            except LookupError as exc:
                pin["run"] = f"cannot fetch what a run needs: {exc}"
                return pin
            key = re.sub(r"[-_.]+", "_", p["name"]).lower()
            pin["other"] = [[w.name, sha256(w)] for w in other if _project(w) == key]
            pin["deps_other"] = [[w.name, sha256(w)] for w in other if _project(w) != key]
            pin["deps_shaded"] = [[w.name, sha256(w)] for w in mine if _project(w) != key]
        return pin
    return {"none": f"no wheel for {platform} (cp313 or cp311): {last}"}


def _project(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace(".", "_")


def write_pins(pins: dict[str, dict[str, Any]]) -> None:
    out = ["# The platform census's wheels (corpus/census.py --pin-only; do not edit).",
           "# [NAME.PLATFORM]: python = the CPython the wheel is for, shaded = [file, sha256];",
           "# for manylinux-aarch64 cp313 also other (the next release) and the dependencies",
           "# of both versions; none = why there is no wheel.", ""]
    for name in sorted(pins):
        for platform in PLATFORMS:
            pin = pins[name].get(platform)
            if pin is None:
                continue
            out.append(f'[{json.dumps(name)}.{json.dumps(platform)}]')
            out.extend(f"{k} = {json.dumps(v)}" for k, v in pin.items())
            out.append("")
    PINS.write_text("\n".join(out))


def read_pins() -> dict[str, dict[str, Any]]:
    return tomllib.loads(PINS.read_text()) if PINS.exists() else {}


def pinned(entry: list[str], platform: str, python: str) -> Path:
    """The pinned wheel from the cache, downloaded again (and checked) when missing."""
    file, digest = entry
    path = CACHE / "wheels" / platform / file
    if not path.exists():
        name, version = file.split("-")[:2]
        pip_download([f"{name}=={version}"], platform, python, path.parent)
    if not path.exists() or sha256(path) != digest:
        raise LookupError(f"{file}: not the pinned file (sha256 {digest})")
    return path


# -- shade --------------------------------------------------------------------------------


def shade(wheel: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [WHEELSHADE, "shade", "--dep", str(wheel), "-o", str(out),
           "--report", str(out / "report.json"), "-j", "1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SHADE_TIMEOUT,
                              env=env)
    except subprocess.TimeoutExpired:
        return {"outcome": "error", "reason": f"shade timed out after {SHADE_TIMEOUT} s"}
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if proc.returncode == 2 and len(err) == 1 and err[0].startswith("wheelshade: error: "):
        reason = err[0].removeprefix("wheelshade: error: ").removeprefix(f"{wheel.name}: ")
        return {"outcome": "refused", "reason": reason[:1000]}
    outputs = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or len(outputs) != 1:
        return {"outcome": "error",
                "reason": f"exit {proc.returncode}: {first_error(proc.stderr or proc.stdout)}"}
    report = json.loads((out / "report.json").read_text())
    mapping = {k: v for w in report["wheels"] for k, v in w["mapping"].items()}
    res: dict[str, Any] = {"outcome": "shaded", "mapping": mapping, "output": str(outputs[0]),
                           **patched(wheel, outputs[0], mapping)}
    text = proc.stdout + proc.stderr
    res["load_checked"] = "not load-checked" not in text
    res["findings"] = sum(len(w["findings"]) for w in report["wheels"])
    return res


def patched(before: Path, after: Path, mapping: dict[str, str]) -> dict[str, int]:
    """Compiled files whose bytes changed, and the original names gone from them (plain
    occurrences: names inside compressed Cython tables are not counted)."""
    with zipfile.ZipFile(before) as zb, zipfile.ZipFile(after) as za:
        old = {_unshaded(n, mapping): n for n in zb.namelist() if n.endswith(COMPILED)}
        # A top-level module becomes a package's module: fall back to the file name.
        leaves = Counter(n.rsplit("/", 1)[-1] for n in old.values())
        by_leaf = {n.rsplit("/", 1)[-1]: n for n in old.values()}
        names = re.compile(b"|".join(re.escape(k.encode())
                                     for k in sorted(mapping, key=len, reverse=True)))
        binaries = strings = 0
        for member in (n for n in za.namelist() if n.endswith(COMPILED)):
            leaf = member.rsplit("/", 1)[-1]
            source = old.get(_unshaded(member, mapping)) or (
                by_leaf[leaf] if leaves[leaf] == 1 else None)
            data = za.read(member)
            original = zb.read(source) if source else b""
            if data == original:
                continue
            binaries += 1
            strings += max(0, len(names.findall(original)) - len(names.findall(data)))
    return {"binaries": len(old), "binaries_patched": binaries, "strings_patched": strings}


def _unshaded(member: str, mapping: dict[str, str]) -> str:
    first, sep, rest = member.partition("/")
    back = {v: k for k, v in mapping.items()}
    base = first.removesuffix(".libs") if sep else first.split(".")[0]
    return back.get(base, base) + first[len(base):] + sep + rest


# -- run (manylinux aarch64 under qemu) ---------------------------------------------------


def modules(wheel: Path, tops: list[str]) -> list[str]:
    """Every module of ``tops`` in the wheel, but tests, ``__main__`` and unspellable names
    (as `wheelshade verify` skips them)."""
    found = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if parts[0] not in tops:
                continue
            leaf = parts[-1]
            if leaf.endswith(".py"):
                stem = leaf[:-3]
            elif leaf.endswith(".so"):
                stem = leaf.split(".")[0]
            else:
                continue
            mod = [*parts[:-1]] + ([] if stem == "__init__" else [stem])
            if all(m.isidentifier() and m not in ("tests", "test", "testing", "conftest",
                                                   "__main__") and not m.startswith("test_")
                   for m in mod):
                found.add(".".join(mod))
    return sorted(found)


def sysroot() -> tuple[Path, Path]:
    """(qemu-aarch64, sysroot) from tests/aarch64.py, built the first time; RuntimeError
    saying why when it cannot be (it skips a test: here that is the reason)."""
    import pytest

    import aarch64  # type: ignore[import-not-found]

    try:
        qemu, root = aarch64.sysroot()
        return Path(qemu), Path(root)
    except pytest.skip.Exception as exc:
        raise RuntimeError(f"no aarch64 sysroot: {exc}") from None


def probe(site: list[Path], mods: list[str], block: list[str], then: str | None,
          timeout: float) -> dict[str, Any]:
    qemu, root = sysroot()
    job = {"path": [str(p) for p in site], "modules": mods, "block": block, "then": then}
    # On stdin: thousands of module names are past what a command line may hold.
    proc = subprocess.run(
        [str(qemu), "-L", str(root), str(root / "usr" / "bin" / "python3.13"), "-I", str(PROBE)],
        input=json.dumps(job), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"probe exit {proc.returncode}: {first_error(proc.stderr)}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def unpack(target: Path, wheels: list[Path]) -> Path:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
    return target


def run_aarch64(p: dict[str, Any], pin: dict[str, Any], res: dict[str, Any], work: Path,
                timeout: float) -> dict[str, Any]:
    get = [pinned(e, "manylinux-aarch64", "3.13") for e in pin["other"]]
    deps_other = [pinned(e, "manylinux-aarch64", "3.13") for e in pin["deps_other"]]
    deps_shaded = [pinned(e, "manylinux-aarch64", "3.13") for e in pin["deps_shaded"]]
    have = {_project(w) for w in deps_other}
    shaded_out = Path(res["output"])
    mapping: dict[str, str] = res["mapping"]
    site = unpack(work / "site", [*deps_other, *(w for w in deps_shaded
                                                 if _project(w) not in have), *get, shaded_out])
    mods = modules(shaded_out, list(mapping.values()))
    key = re.sub(r"[-_.]+", "_", p["name"]).lower()
    top = key if key in mapping else sorted(mapping)[-1]
    got = probe([site], mods, list(mapping), top, timeout)
    failed: dict[str, str] = got["failed"]
    back = {v: k for k, v in mapping.items()}
    shaded_only = {}
    if failed:  # the same modules of the unshaded wheel, alone with its dependencies
        orig = pinned(pin["shaded"], "manylinux-aarch64", "3.13")
        site2 = unpack(work / "orig", [*deps_shaded, orig])
        names = {m: back[m.split(".")[0]] + m[len(m.split(".")[0]):] for m in failed}
        again = probe([site2], sorted(names.values()), [], None, timeout)
        shaded_only = {m: why for m, why in failed.items() if names[m] not in again["failed"]}
    run = {"modules": len(mods), "imported": got["ok"], "optional": len(got["optional"]),
           "failed_unshaded_too": len(failed) - len(shaded_only), "then": got.get("then"),
           "asked": got["asked"], "leaked": got["leaked"]}
    problems = []
    if got["asked"] or got["leaked"]:
        problems.append(f"original names imported: {(got['leaked'] or got['asked'])[:5]}")
    if shaded_only:
        mod, why = next(iter(sorted(shaded_only.items())))
        problems.append(f"{len(shaded_only)} module(s) fail shaded only: {mod}: {why}")
    if not isinstance(got.get("then"), list):
        problems.append(f"the next release does not import beside it: {got.get('then')}")
    run["outcome"] = "failed" if problems else "passed"
    if problems:
        run["reason"] = "; ".join(problems)[:400]
    return run


# -- the census ---------------------------------------------------------------------------


def census_one(p: dict[str, Any], platform: str, pin: dict[str, Any], run: bool,
               timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    if "none" in pin:
        return {"outcome": "no wheel", "reason": pin["none"]}
    if pin["shaded"][0].endswith("-none-any.whl"):
        return {"outcome": "no wheel", "wheel": pin["shaded"][0],
                "reason": f"no compiled wheel for {platform}: only the pure-Python one"}
    res: dict[str, Any] = {"python": pin["python"], "wheel": pin["shaded"][0]}
    env = dict(os.environ)
    no_qemu = ""
    if platform == "manylinux-aarch64":
        try:  # so that the shade load-checks its patched modules there too
            qemu, root = sysroot()
            env.update(WHEELSHADE_QEMU_AARCH64=str(root), WHEELSHADE_QEMU=str(qemu))
        except RuntimeError as exc:
            no_qemu = str(exc)
    with tempfile.TemporaryDirectory(prefix=f"census-{p['name']}-", dir=CACHE) as tmp:
        work = Path(tmp)
        try:
            wheel = pinned(pin["shaded"], platform, pin["python"])
        except LookupError as exc:
            return {**res, "outcome": "error", "reason": f"fetch failed: {exc}"}
        res.update(shade(wheel, work / "out", env))
        res["run"] = {"outcome": "not run", "reason": runnable(platform, pin, res) or no_qemu}
        if run and res["outcome"] == "shaded" and not res["run"]["reason"]:
            try:
                res["run"] = run_aarch64(p, pin, res, work, timeout)
            except subprocess.TimeoutExpired:
                # Not a verdict on the shading: qemu is slow and the machine shared.
                res["run"] = {"outcome": "timed out", "reason": f"after {timeout:.0f} s"}
            except (RuntimeError, LookupError) as exc:
                res["run"] = {"outcome": "not run", "reason": str(exc)[:300]}
        elif not run and not res["run"]["reason"]:
            res["run"]["reason"] = "--no-run"
    res.pop("output", None)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def runnable(platform: str, pin: dict[str, Any], res: dict[str, Any]) -> str:
    """Why the shaded wheel cannot be run here ('' when it can)."""
    if res["outcome"] != "shaded":
        return "not shaded"
    if platform.startswith("macos"):
        return "nothing runs Mach-O here: structural only"
    if platform.startswith("windows"):
        return ("running under wine is not done by the census yet" if shutil.which("wine")
                else "wine is not installed here")
    if platform.startswith("musllinux"):
        return "no musl-linked CPython here (Debian ships musl, not a CPython built on it)"
    if pin["python"] != "3.13":
        return "no cp313 wheel of this version: the qemu sysroot's Python is 3.13"
    if "run" in pin:
        return str(pin["run"])
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pin-only", action="store_true", help="fetch and pin the wheels, no more")
    ap.add_argument("--only", action="append", default=[], metavar="NAME")
    ap.add_argument("--platform", action="append", default=[], choices=list(PLATFORMS))
    ap.add_argument("--skip-done", action="store_true", help="only cells without a result")
    ap.add_argument("--no-run", action="store_true", help="shade only, run nothing")
    ap.add_argument("--run-timeout", type=float, default=900, metavar="SECONDS")
    ap.add_argument("--table", action="store_true", help="only write docs/platforms.md")
    args = ap.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    cells: dict[str, dict[str, Any]] = results.setdefault("results", {})
    if args.table:
        write_table(results, list(PLATFORMS), projects())
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    chosen = [p for p in projects() if not args.only or p["name"] in args.only]
    platforms = args.platform or list(PLATFORMS)
    pins = read_pins()
    for p in chosen:  # one project at a time: the machine is shared
        for platform in platforms:
            name = p["name"]
            if args.pin_only:
                if platform not in pins.get(name, {}):
                    log(f"pin {name} {platform}")
                    pins.setdefault(name, {})[platform] = pin_one(p, platform)
                    write_pins(pins)
                continue
            if args.skip_done and platform in cells.get(name, {}):
                continue
            pin = pins.get(name, {}).get(platform)
            if pin is None:
                log(f"{name} {platform}: not pinned (run --pin-only first)")
                continue
            log(f"{name} {platform}")
            try:
                cell = census_one(p, platform, pin, not args.no_run, args.run_timeout)
            except Exception as exc:  # the census's own bug: record it, go on with the rest
                cell = {"outcome": "census error", "reason": f"{type(exc).__name__}: {exc}"}
            log(f"  {cell['outcome']} {cell.get('reason', '')[:100]} "
                f"run: {cell.get('run', {}).get('outcome', '-')}")
            cells.setdefault(name, {})[platform] = cell
            results["date"] = datetime.date.today().isoformat()
            tmp = RESULTS.with_suffix(".json.tmp")  # readers never see half a file
            tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, RESULTS)
    if not args.pin_only:
        write_table(results, list(PLATFORMS), projects())
    return 0


if __name__ == "__main__":
    sys.exit(main())
