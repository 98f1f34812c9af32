"""Entry-point groups that move with the code that loads them.

A package that loads its own plugins with ``entry_points(group="<pkg>.ext")`` gets that string
renamed in its shaded code whenever the string pass renames it; its ``[<pkg>.ext]`` section must
then be renamed the same way, or the shaded copy finds none of its plugins and the unshaded
release finds them twice. The decision is read off the rewrite itself (what the string pass did
to each quoted occurrence of the group), so header and code can never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from wheelshade.findings import Code, Finding
from wheelshade.naming import rename_module
from wheelshade.plan import ShadePlan
from wheelshade.wheel.metadata import entry_point_groups
from wheelshade.wheel.summary import WheelSummary


def _quoted(text: str) -> tuple[bytes, bytes]:
    raw = text.encode("utf-8")
    return b'"' + raw + b'"', b"'" + raw + b"'"


def own_groups(plan: ShadePlan) -> frozenset[str]:
    """The entry-point groups shaded deps declare under their own names (``pkg.ext``).

    The string pass takes them as module paths: a group is evidence for itself, so the code
    that loads it is renamed, and its section with it (``GroupTracker``)."""
    return frozenset(
        group
        for job in plan.jobs
        if job.new_name is not None
        for group in job.summary.entry_point_groups
        if rename_module(group, plan.dists[job.summary.name].mapping) is not None
    )


#: Groups installers read (``console_scripts``): never a package's own plugin protocol.
_INSTALLER_GROUPS = frozenset({"console_scripts", "gui_scripts"})


def plugin_groups(plan: ShadePlan) -> dict[str, str]:
    """Groups named like no module (``pkg_instrumentor``) that the shaded code loads by a
    literal and a shaded dep declares: one package's plugin protocol, its loader and its
    plugins shaded together. Kept, the shaded loader would also load the plugins the other
    release's distributions register, which import the unshaded package; so the group takes
    a name of the set (the code's literal and every shaded section move together)."""
    shaded = [job.summary for job in plan.jobs if job.new_name is not None]
    declared = {g for s in shaded for g in s.entry_point_groups}
    loaded = {g for s in shaded for g in s.loaded_groups}
    return {
        group: f"{group}_{plan.digest[:8]}"
        for group in sorted(declared & loaded - _INSTALLER_GROUPS)
        if rename_module(group, plan.mapping) is None
    }


class GroupTracker:
    """Counts, over one shaded wheel's sources, the quoted group names renamed and kept."""

    def __init__(
        self, groups: Sequence[str], mapping: Mapping[str, str],
        plugins: Mapping[str, str] | None = None,
    ) -> None:
        self.targets: dict[str, str] = {}
        #: Plugin groups of the set (``plugin_groups``): their sections always move.
        self.plugins = {g: plugins[g] for g in groups if plugins and g in plugins}
        for group in groups:
            renamed = rename_module(group, mapping)
            if renamed is not None and renamed != group:
                self.targets[group] = renamed
        self.targets.update(self.plugins)
        self.renamed: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()

    def see(self, old: bytes, new: bytes | None) -> None:
        """One source file before and after the rewrite (``new`` None: unchanged)."""
        after = old if new is None else new
        for group, renamed in self.targets.items():
            plain, shaded = _quoted(group), _quoted(renamed)
            if not any(q in old for q in plain):
                continue
            self.kept[group] += sum(after.count(q) for q in plain)
            moved = sum(after.count(q) for q in shaded) - sum(old.count(q) for q in shaded)
            self.renamed[group] += max(moved, 0)

    def renames(self) -> dict[str, str]:
        """Section renames: each group the shaded code now spells under its shaded name."""
        return {g: r for g, r in self.targets.items() if self.renamed[g] or g in self.plugins}

    def findings(self, path: str) -> list[Finding]:
        out = []
        for group, renamed in self.renames().items():
            message = (
                f"entry-point group {group!r} is loaded by the shaded code as {renamed!r}; the "
                "section moved with it, so plugins other distributions register under "
                f"{group!r} are not seen by the shaded copy (shade them in the same set)"
            )
            if self.kept[group]:
                message += f" ({self.kept[group]} other mention(s) of {group!r} kept unchanged)"
            out.append(Finding(path, None, Code.ENTRY_POINT_GROUP, message))
        return out


def tracker(plan: ShadePlan, summary: WheelSummary, text: bytes, where: str) -> GroupTracker:
    """The tracker of a shaded wheel whose ``entry_points.txt`` is ``text``."""
    groups = entry_point_groups(text, where=where)
    return GroupTracker(groups, plan.dists[summary.name].mapping, plugin_groups(plan))
