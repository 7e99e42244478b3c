"""What a change does to a stack: two offline plans (`hpcctl plan --json`) compared resource by
resource. The one comparison behind `hpcctl plan --against`, the base-plan section of
`hpcctl check --format github` and `scripts/compare_plans.py`; each renders this result.

Resources are matched as Pulumi identifies them: by URN, then those left over by type and name (a
URN also holds the parents' types, so a resource under a new parent gets a new URN and keeps its
match). They are added, removed (a renamed resource is one of each: Pulumi replaces it), moved (a
new URN: Pulumi replaces it unless it has an alias) or changed (their inputs differ). The stack
itself is no resource a change adds or removes and is left out. For the ParallelCluster cluster the
rendered config is sorted further by ParallelCluster's update policies
(`hpc_platform.pcluster.update_policy`): what needs a compute-fleet stop and what a new cluster.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_platform.app.offline.engine import STACK_TYPE, UNKNOWN_PLACEHOLDER, plain
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpc_platform.pcluster.update_policy import NOT_KNOWN_YET, ChangeClass, classify_change

CLUSTER_CONFIG_INPUT = "cluster_config"
CLUSTER_VERSION_INPUT = "parallelcluster_version"
TAG_INPUTS = ("tags", "tagsAll")
"""Inputs that hold a resource's tags: a tag-only change is told apart from the rest."""


class PlanFileError(ValueError):
    """A plan file or document that cannot be read or is not a plan."""


def _not_a_plan(source: str) -> PlanFileError:
    return PlanFileError(
        f"{source}: not a plan (no resources list); write one with `hpcctl plan --json PATH`"
    )


def read_plan(path: Path) -> dict[str, Any]:
    """A plan JSON file written by `hpcctl plan --json`, its shape checked as `compare_plans`
    needs it (so a command can refuse a bad one before it plans)."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _not_a_plan(str(path))
    _plan_resources(document, str(path))
    return document


def _plan_resources(document: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """The document's resources list; `PlanFileError` unless every resource has its URN."""
    resources = document.get("resources")
    if not isinstance(resources, list) or not all(
        isinstance(r, dict) and isinstance(r.get("urn"), str) for r in resources
    ):
        raise _not_a_plan(source)
    return resources


# --- the result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    path: tuple[str, ...]
    """Input keys down to the value that differs (lists are compared whole)."""
    old: Any
    """None when the base plan does not have it."""
    new: Any
    """None when the new plan does not have it."""

    @property
    def is_tags(self) -> bool:
        return self.path[0] in TAG_INPUTS


@dataclass(frozen=True)
class MatchedResource:
    """A resource both plans have: the base plan's and the new plan's (inputs made plain)."""

    before: dict[str, Any]
    after: dict[str, Any]
    differences: tuple[Difference, ...]

    @property
    def urn(self) -> str:
        """Its URN in the new plan."""
        return str(self.after["urn"])

    @property
    def moved(self) -> bool:
        """Under another URN (a new parent): Pulumi replaces it unless it has an alias."""
        return bool(self.before["urn"] != self.after["urn"])

    @property
    def changed(self) -> bool:
        return bool(self.differences)

    @property
    def changed_inputs(self) -> list[str]:
        """The top-level inputs that differ, sorted."""
        return sorted({d.path[0] for d in self.differences})


@dataclass(frozen=True)
class ClusterChange:
    """A ParallelCluster cluster in either plan and what its change takes."""

    urn: str
    """In the new plan (the base plan's when it is deleted)."""
    name: str
    outcome: str
    """`create`, `delete` or `update` (then `change` says what the update takes)."""
    change: ChangeClass | None = None
    moved: bool = False
    """Under a new URN: Pulumi replaces it (a new cluster) unless it has an alias."""


@dataclass(frozen=True)
class PlanDiff:
    added_resources: tuple[dict[str, Any], ...] = ()
    """Resources only the new plan has, by URN."""
    removed_resources: tuple[dict[str, Any], ...] = ()
    """Resources only the base plan has (deleted, or replaced under a new name), by URN."""
    matched: tuple[MatchedResource, ...] = ()
    """Resources both plans have, by URN in the new plan."""
    clusters: tuple[ClusterChange, ...] = ()
    """Every ParallelCluster cluster either plan has, by URN."""

    @property
    def added(self) -> list[str]:
        """URNs of resources only the new plan has."""
        return [str(r["urn"]) for r in self.added_resources]

    @property
    def removed(self) -> list[str]:
        """URNs of resources only the base plan has."""
        return [str(r["urn"]) for r in self.removed_resources]

    @property
    def changed(self) -> list[str]:
        """URNs (in the new plan) of resources in both whose inputs differ."""
        return [m.urn for m in self.matched if m.changed]

    @property
    def moved(self) -> list[str]:
        """URNs (in the new plan) of resources in both under another URN (a new parent)."""
        return [m.urn for m in self.matched if m.moved]

    @property
    def cluster(self) -> dict[str, ChangeClass]:
        """Per updated ParallelCluster resource (URN): its config change by update policy."""
        return {c.urn: c.change for c in self.clusters if c.change is not None}

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved)


# --- the comparison -----------------------------------------------------------------------------
def _resources(document: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """The plan's resources, the stack left out, inputs as `plain` gives them (an earlier hpcctl
    wrote every number as a float)."""
    resources = _plan_resources(document, source)
    return [
        {**r, "inputs": plain(r.get("inputs") or {})}
        for r in sorted(resources, key=lambda r: str(r["urn"]))
        if r.get("type") != STACK_TYPE
    ]


def _match(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(pairs, added, removed): the same URN first; of the rest, the same type and name when that
    names one resource on each side (two resources may share both under parents of other types)."""
    new_by_urn = {r["urn"]: r for r in after}
    pairs = [(r, new_by_urn[r["urn"]]) for r in before if r["urn"] in new_by_urn]
    matched_urns = {r["urn"] for r, _ in pairs}
    old_rest = [r for r in before if r["urn"] not in matched_urns]
    new_rest = [r for r in after if r["urn"] not in matched_urns]

    def key(r: Mapping[str, Any]) -> tuple[str, str]:
        return str(r.get("type")), str(r.get("name"))

    old_count, new_count = Counter(map(key, old_rest)), Counter(map(key, new_rest))
    new_by_key = {key(r): r for r in new_rest if new_count[key(r)] == 1}
    moved = [(r, new_by_key[key(r)]) for r in old_rest if old_count[key(r)] == 1 and key(r) in new_by_key]
    moved_old, moved_new = {r["urn"] for r, _ in moved}, {r["urn"] for _, r in moved}
    return (
        sorted(pairs + moved, key=lambda pair: str(pair[1]["urn"])),
        [r for r in new_rest if r["urn"] not in moved_new],
        [r for r in old_rest if r["urn"] not in moved_old],
    )


def differences(before: Any, after: Any, path: tuple[str, ...] = ()) -> list[Difference]:
    """Every value that differs, mappings followed key by key (sorted), anything else compared whole."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[Difference] = []
        for key in sorted(set(before) | set(after), key=str):
            found += differences(before.get(key), after.get(key), (*path, str(key)))
        return found
    return [Difference(path, before, after)] if before != after else []


def _is_cluster(resource: Mapping[str, Any]) -> bool:
    return bool(resource["inputs"].get(KIND_PROPERTY) == KIND_VALUE)


def _not_known_yet(value: Any) -> Any:
    """The plan's unknown placeholder as `classify_change`'s: it may change, so it counts."""
    if isinstance(value, dict):
        return {k: _not_known_yet(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_not_known_yet(v) for v in value]
    return NOT_KNOWN_YET if value == UNKNOWN_PLACEHOLDER else value


def _config(inputs: Mapping[str, Any]) -> dict[str, Any]:
    config = inputs.get(CLUSTER_CONFIG_INPUT)
    if isinstance(config, str):  # some providers keep it as the JSON text
        try:
            config = json.loads(config)
        except ValueError:
            return {}
    return config if isinstance(config, dict) else {}


def _version(inputs: Mapping[str, Any]) -> str | None:
    version = inputs.get(CLUSTER_VERSION_INPUT)
    return version if isinstance(version, str) else None


def _cluster_change(pair: MatchedResource) -> ChangeClass:
    old, new = pair.before["inputs"], pair.after["inputs"]
    # Only the new side's unknowns may change, as in a deploy's preview (the old side is what is
    # deployed); identical inputs are the same unknowns of the same program, so nothing changes.
    new_config = _config(new) if old == new else _not_known_yet(_config(new))
    return classify_change(_config(old), new_config, old_version=_version(old), new_version=_version(new))


def compare_plans(
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    base_source: str = "the base plan",
    new_source: str = "this plan",
) -> PlanDiff:
    """Base plan → new plan, both as `Plan.to_json()` documents; `PlanFileError` (naming the
    source) when one is not a plan."""
    pairs, added, removed = _match(_resources(base, base_source), _resources(new, new_source))
    matched = tuple(
        MatchedResource(old, current, tuple(differences(old["inputs"], current["inputs"])))
        for old, current in pairs
    )
    clusters = [
        *(ClusterChange(str(r["urn"]), str(r.get("name")), "create") for r in added if _is_cluster(r)),
        *(ClusterChange(str(r["urn"]), str(r.get("name")), "delete") for r in removed if _is_cluster(r)),
        *(
            ClusterChange(m.urn, str(m.after.get("name")), "update", _cluster_change(m), m.moved)
            for m in matched
            if _is_cluster(m.after)
        ),
    ]
    return PlanDiff(
        added_resources=tuple(added),
        removed_resources=tuple(removed),
        matched=matched,
        clusters=tuple(sorted(clusters, key=lambda c: c.urn)),
    )


__all__ = [
    "ClusterChange",
    "Difference",
    "MatchedResource",
    "PlanDiff",
    "PlanFileError",
    "compare_plans",
    "differences",
    "read_plan",
]
