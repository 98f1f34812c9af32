"""Closure resolution: which versions a pinned dep pulls in, and which of them to shade."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelshade.errors import FetchError, UsageError
from wheelshade.resolve.fetch import IndexOptions, Target, pip_error
from wheelshade.resolve.pipcheck import CUTOFF, REPORT, failure_hint, require_pip


@dataclass(frozen=True)
class Member:
    """One distribution of a resolved closure."""

    name: NormalizedName
    version: Version
    requires: tuple[Requirement, ...]
    requested: bool  # named on the command line (a --dep), not pulled in
    #: Where pip takes the file from (its report's ``download_info.url``).
    url: str = ""
    #: A direct URL requirement (``name @ url``, a path): no index chose it.
    direct: bool = False


@dataclass(frozen=True)
class Decision:
    name: NormalizedName
    version: Version
    shade: bool
    reason: str


def _pip_report(
    requirements: Sequence[str],
    *,
    index: IndexOptions,
    uploaded_prior_to: str | None,
    python: str,
    timeout: float,
    target: Target | None = None,
) -> list[Member]:
    """Run pip's resolver without installing anything and read its installation report."""
    if uploaded_prior_to:
        require_pip(python, CUTOFF, "--uploaded-prior-to")
    else:
        require_pip(python, REPORT, "resolving a closure (pip install --dry-run --report)")
    with tempfile.TemporaryDirectory(prefix="wheelshade-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--disable-pip-version-check",
            "--report",
            str(report),
            *index.pip_args(),
            *(target or Target()).pip_args(),
        ]
        if uploaded_prior_to:
            cmd += ["--uploaded-prior-to", uploaded_prior_to]
        cmd += requirements
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FetchError(
                f"pip's resolver did not finish within {timeout:.0f} s",
                path=" ".join(requirements),
            ) from None
        if proc.returncode != 0:
            raise FetchError(
                f"pip could not resolve the closure: {pip_error(proc.stderr)}",
                path=" ".join(requirements),
                hint=failure_hint(
                    proc.stderr,
                    cmd,
                    python,
                    "pin the conflicting member with an extra --dep",
                    "pass --uploaded-prior-to",
                    *(["check the index serves upload times (PEP 700), which a date cut-off "
                       "needs"] if uploaded_prior_to else []),
                ),
            )
        doc = json.loads(report.read_text(encoding="utf-8"))
    members = []
    for item in doc.get("install", []):
        meta = item["metadata"]
        requires = []
        for text in meta.get("requires_dist") or []:
            try:
                requires.append(Requirement(text))
            except InvalidRequirement:
                continue  # pip accepted the distribution; a bad extra marker is not ours
        members.append(
            Member(
                canonicalize_name(meta["name"]),
                Version(meta["version"]),
                tuple(requires),
                bool(item.get("requested")),
                str((item.get("download_info") or {}).get("url", "")),
                bool(item.get("is_direct")),
            )
        )
    return members


def resolve_closure(
    requirements: Sequence[str],
    *,
    index: IndexOptions,
    uploaded_prior_to: str | None = None,
    python: str = sys.executable,
    timeout: float = 900.0,
    target: Target | None = None,
) -> list[Member]:
    """The pinned deps and everything they need, as pip's resolver would install them
    (for ``target``'s interpreter and platform: markers are evaluated for it)."""
    return _pip_report(
        requirements,
        index=index,
        uploaded_prior_to=uploaded_prior_to,
        python=python,
        timeout=timeout,
        target=target,
    )


def target_from_requirements(
    requirements: Sequence[str],
    *,
    index: IndexOptions,
    python: str = sys.executable,
    target: Target | None = None,
) -> dict[NormalizedName, Version]:
    """The versions an environment built from ``requirements`` would hold."""
    if not requirements:
        return {}
    members = _pip_report(
        requirements,
        index=index,
        uploaded_prior_to=None,
        python=python,
        timeout=900.0,
        target=target,
    )
    return {m.name: m.version for m in members}


def read_requirements_file(path: Path) -> list[str]:
    """Plain requirement lines (comments, blank lines and pip options are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the target requirements ({exc.strerror})") from None
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


_LIST_DISTS = (
    "import json, importlib.metadata as m\n"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()"
    " if d.metadata['Name']}))"
)


def target_from_environment(python: str) -> dict[NormalizedName, Version]:
    """The distributions installed in the environment of interpreter ``python``."""
    try:
        proc = subprocess.run(
            [python, "-c", _LIST_DISTS], capture_output=True, text=True, timeout=120
        )
    except OSError as exc:
        raise UsageError(f"--target-env {python}: cannot run it ({exc.strerror})") from None
    if proc.returncode != 0:
        raise UsageError(f"--target-env {python}: could not list its distributions")
    out: dict[NormalizedName, Version] = {}
    for name, version in json.loads(proc.stdout).items():
        try:
            out[canonicalize_name(name)] = Version(version)
        except InvalidVersion:
            continue
    return out


def decide(
    closure: Sequence[Member],
    target: Mapping[NormalizedName, Version],
    *,
    constraints: Sequence[Requirement] = (),
    cutoff: bool = False,
    target_known: bool = True,
) -> list[Decision]:
    """Shade each member the target environment would hold in an incompatible version.

    A member named on the command line is always shaded. Otherwise it is left unshaded
    when the target holds no copy of it (nothing to clash with) or a version that meets
    every requirement the closure and the explicit ``constraints`` place on it. With a
    date cutoff the resolved version is the newest known-good one, so a newer target
    version counts as unproven and the member is shaded. When the target is only
    inferred (``target_known`` False), a member it lacks may still arrive with another
    version later, so it is shaded too.
    """
    wanted: dict[NormalizedName, list[Requirement]] = {}
    for member in closure:
        for req in member.requires:
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                wanted.setdefault(canonicalize_name(req.name), []).append(req)
    for req in constraints:
        wanted.setdefault(canonicalize_name(req.name), []).append(req)
    decisions = []
    for member in sorted(closure, key=lambda m: m.name):
        have = target.get(member.name)
        reqs = wanted.get(member.name, [])
        specs = ", ".join(str(r.specifier) or "any" for r in reqs) or "no requirement"
        if member.requested:
            shade, reason = True, "pinned with --dep"
        elif have is None and target_known:
            shade, reason = False, "not in the target environment: nothing to clash with"
        elif have is None:
            shade, reason = True, "no target environment given: shaded to be safe"
        elif have == member.version:
            shade, reason = False, f"the target holds the same version {have}"
        elif not all(r.specifier.contains(have, prereleases=True) for r in reqs):
            shade, reason = True, f"the target's {have} does not meet {specs}"
        elif cutoff and have > member.version:
            shade, reason = True, f"the target's {have} is newer than the date cutoff allows"
        else:
            shade, reason = False, f"the target's {have} meets {specs}"
        decisions.append(Decision(member.name, member.version, shade, reason))
    return _propagate(closure, decisions)


def _propagate(closure: Sequence[Member], decisions: list[Decision]) -> list[Decision]:
    """Shade every kept member that needs a shaded one.

    A kept member is the target's copy, and its imports reach the target's (other)
    versions: s3transfer kept beside a shaded botocore would import the unshaded botocore
    while the shaded boto3 hands it clients of the shaded one. So the need spreads up
    the closure until nothing kept depends on anything shaded.
    """
    needs = {
        m.name: {
            canonicalize_name(r.name)
            for r in m.requires
            if r.marker is None or r.marker.evaluate({"extra": ""})
        }
        for m in closure
    }
    by_name = {d.name: d for d in decisions}
    changed = True
    while changed:
        changed = False
        for name, decision in by_name.items():
            if decision.shade:
                continue
            shaded = sorted(n for n in needs.get(name, ()) if n in by_name and by_name[n].shade)
            if shaded:
                by_name[name] = Decision(
                    name,
                    decision.version,
                    True,
                    f"requires {', '.join(shaded)}, which is shaded (kept, it would import "
                    "the target's copy)",
                )
                changed = True
    return [by_name[d.name] for d in decisions]
