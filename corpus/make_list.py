"""Generate corpus/projects.toml: the import-sweep corpus (issue 7, item 2).

Takes the most-downloaded PyPI projects in rank order from the package list
(/work/.library/env/packages/pypi.tsv, or --ranking FILE), and for each picks

* ``other``: the latest release that has a wheel for CPython 3.11 manylinux x86_64
  (or a pure ``py3-none-any`` wheel): installed unshaded beside the shaded copy;
* ``shaded``: the newest release of the previous minor series (previous major
  when the latest is ``X.0``), falling back to older releases when that one has no
  wheel for the platform: the version that is shaded.

Both are pinned with the sha256 of the exact wheel file, downloaded with pip
(pip's configuration decides the index) into .cache/corpus/wheels/. Projects with
no wheel for the platform, or a wheel over 60 MB, are skipped (listed as comments)
and the next ones are taken until --count projects are in the list.

With ``--extend`` the entries already in corpus/projects.toml are kept unchanged (same
projects, same pins: the first 100 stay the quick subset, ``run.py --limit 100``) and the
list is filled up to --count with the next projects by rank.

Usage: .venv/bin/python corpus/make_list.py [--count 100] [--jobs 6] [--extend]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".cache" / "corpus" / "wheels"
OUT = ROOT / "corpus" / "projects.toml"
DEFAULT_RANKING = Path("/work/.library/env/packages/pypi.tsv")
MAX_BYTES = 60 * 1024 * 1024
PY = sys.executable
# The platform the corpus targets; manylinux_2_28 also admits manylinux2014 and older.
PLATFORM_ARGS = [
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--abi",
    "abi3",
    "--abi",
    "none",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux2014_x86_64",
]


@dataclass
class Pin:
    version: str
    wheel: str
    sha256: str
    size: int


@dataclass
class Entry:
    name: str
    rank: int
    shaded: Pin | None = None
    other: Pin | None = None
    skip: str = ""


def pip_download(name: str, version: str, dest: str) -> subprocess.CompletedProcess[str]:
    """``pip download`` of one pinned wheel for the corpus platform into ``dest``."""
    return subprocess.run(
        [
            PY,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *PLATFORM_ARGS,
            f"{name}=={version}",
            "-d",
            dest,
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def versions(name: str) -> list[Version]:
    """Released versions (newest first) that pip sees with a wheel for the platform."""
    proc = subprocess.run(
        [PY, "-m", "pip", "index", "versions", "--pre", name, *PLATFORM_ARGS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"Available versions: (.*)", proc.stdout)
    if not m:
        return []
    out = []
    for v in m.group(1).split(","):
        try:
            ver = Version(v.strip())
        except InvalidVersion:
            continue
        out.append(ver)
    final = [v for v in out if not v.is_prerelease and not v.is_devrelease]
    # Pre-releases only when a project publishes nothing else
    # (opentelemetry-semantic-conventions).
    return sorted(set(final or out), reverse=True)


def download(name: str, version: str) -> Pin | str | None:
    """Download one pinned wheel; a Pin, None (no wheel) or 'huge: ...'."""
    with tempfile.TemporaryDirectory(dir=WHEELS.parent) as tmp:
        proc = pip_download(name, version, tmp)
        files = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(files) != 1:
            return None
        f = files[0]
        size = f.stat().st_size
        if size > MAX_BYTES:
            return f"huge: {f.name} is {size / 1e6:.0f} MB"
        target = WHEELS / f.name
        f.replace(target)
    return Pin(version, target.name, sha256(target), size)


def previous_series(latest: Version, all_versions: list[Version]) -> list[Version]:
    """Candidates for the shaded version, best first: newest of the previous minor series
    (or the previous major when there is no previous minor), then older releases."""
    older = [v for v in all_versions if v < latest]
    same_series = (latest.major, latest.minor)
    prev = [v for v in older if (v.major, v.minor) != same_series]
    rest = [v for v in older if (v.major, v.minor) == same_series]
    return prev + rest  # prefer another series; same-series older patch only as a last resort


def first_wheel(name: str, candidates: list[Version]) -> Pin | str | None:
    """The first of ``candidates`` with a wheel for the platform, a reason to skip the
    project (str), or None when none has one."""
    for version in candidates:
        got = download(name, str(version))
        if got is not None:
            return got
    return None


def pick(name: str, rank: int) -> Entry:
    e = Entry(name, rank)
    try:
        vs = versions(name)
        if not vs:
            e.skip = "no wheel for cp311 manylinux x86_64 (sdist only or none)"
            return e
        other = first_wheel(name, vs[:3])
        if isinstance(other, str):
            e.skip = other
            return e
        if other is None:
            e.skip = "no wheel for cp311 manylinux x86_64 in the latest releases"
            return e
        e.other = other
        shaded = first_wheel(name, previous_series(Version(other.version), vs)[:4])
        if isinstance(shaded, str):
            e.skip = shaded
            return e
        e.shaded = shaded
        if e.shaded is None:
            e.skip = "no older release with a wheel for cp311 manylinux x86_64"
    except subprocess.TimeoutExpired as exc:
        e.skip = f"pip timed out: {exc.cmd[3:5]}"
    return e


def ranking(path: Path) -> list[tuple[int, str]]:
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 4 and row[3].isdigit():
                rows.append((int(row[3]), row[0]))
    rows.sort()
    return rows


def existing() -> tuple[list[Entry], list[Entry]]:
    """The entries of the current projects.toml, unchanged, and its skipped comments."""
    with OUT.open("rb") as f:
        rows = tomllib.load(f).get("project", [])
    kept = [
        Entry(
            r["name"],
            r["rank"],
            Pin(r["shaded"], r["shaded_wheel"], r["shaded_sha256"], 0),
            Pin(r["other"], r["other_wheel"], r["other_sha256"], 0),
        )
        for r in rows
    ]
    skipped = [
        Entry(m.group(2), int(m.group(1)), skip=m.group(3))
        for m in re.finditer(r"^#   rank (\d+) (\S+): (.*)$", OUT.read_text(), re.M)
    ]
    return kept, skipped


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write(entries: list[Entry], skipped: list[Entry], count: int) -> None:
    lines = [
        "# The import-sweep corpus (issue 7, item 2).",
        "# Generated by corpus/make_list.py; do not edit.",
        f"# The {count} most-downloaded PyPI projects (rank among the 15000 most",
        "# downloaded) with a wheel for CPython 3.11 manylinux x86_64 (or py3-none-any).",
        "# `shaded` is the version that is shaded (previous minor/major series; an older",
        "# patch of the latest series when no earlier series has a wheel for cp311),",
        "# `other` the latest, installed unshaded beside it.",
        "# Both wheels pinned by file name and sha256.",
        "#",
        "# Skipped (taken the next ones instead):",
    ]
    for s in skipped:
        lines.append(f"#   rank {s.rank} {s.name}: {s.skip}")
    if not skipped:
        lines.append("#   (none)")
    lines.append("")
    for e in entries:
        assert e.shaded and e.other
        lines += [
            "[[project]]",
            f"name = {toml_str(e.name)}",
            f"rank = {e.rank}",
            f"shaded = {toml_str(e.shaded.version)}",
            f"shaded_wheel = {toml_str(e.shaded.wheel)}",
            f"shaded_sha256 = {toml_str(e.shaded.sha256)}",
            f"other = {toml_str(e.other.version)}",
            f"other_wheel = {toml_str(e.other.wheel)}",
            f"other_sha256 = {toml_str(e.other.sha256)}",
            "",
        ]
    OUT.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--ranking", type=Path, default=DEFAULT_RANKING)
    ap.add_argument(
        "--extend",
        action="store_true",
        help="keep the entries of the current list unchanged and append the next projects",
    )
    args = ap.parse_args()
    WHEELS.mkdir(parents=True, exist_ok=True)
    ranked = ranking(args.ranking)
    seen: set[str] = set()
    ordered = []
    for rank, name in ranked:
        cn = canonicalize_name(name)
        if cn not in seen:
            seen.add(cn)
            ordered.append((rank, name))
    results: dict[int, Entry] = {}
    pos = 0
    if args.extend and OUT.exists():
        kept, was_skipped = existing()
        done = {canonicalize_name(e.name) for e in kept + was_skipped}
        last = max(e.rank for e in kept + was_skipped)
        for i, e in enumerate(sorted(kept + was_skipped, key=lambda e: e.rank)):
            results[i] = e
        # Continue after the last project the current list looked at.
        ordered = [(r, n) for r, n in ordered if r > last and canonicalize_name(n) not in done]
        offset = len(results)
    else:
        offset = 0
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        while True:
            good = [results[i] for i in sorted(results) if not results[i].skip]
            if len(good) >= args.count or pos >= len(ordered):
                break
            need = args.count - len(good)
            batch = ordered[pos : pos + need]
            futs = {
                pool.submit(pick, name, rank): offset + pos + i
                for i, (rank, name) in enumerate(batch)
            }
            pos += len(batch)
            for fut in cf.as_completed(futs):
                e = fut.result()
                results[futs[fut]] = e
                what = e.skip or f"shaded {e.shaded.version} other {e.other.version}"  # type: ignore[union-attr]
                print(f"[{len(results)}] rank {e.rank} {e.name}: {what}", flush=True)
    chosen: list[Entry] = []
    skipped: list[Entry] = []
    for i in sorted(results):
        e = results[i]
        if len(chosen) >= args.count:
            break
        (skipped if e.skip else chosen).append(e)
    write(chosen, skipped, args.count)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(chosen)} projects, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
