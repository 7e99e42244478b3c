"""What a change does to a stack: two offline plans (`hpcctl plan --json`) compared resource by
resource.

Resources are matched by type and name, as `scripts/compare_plans.py` does. They are added,
removed (a renamed resource is one of each: Pulumi replaces it), moved (a new parent, so a new URN:
Pulumi replaces it unless it has an alias) or changed (their inputs differ). For the
ParallelCluster cluster the rendered config is sorted further by ParallelCluster's update policies
(`hpc_platform.pcluster.update_policy`): what needs a compute-fleet stop and what a new cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_platform.app.offline.engine import UNKNOWN_PLACEHOLDER
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from hpc_platform.pcluster.update_policy import NOT_KNOWN_YET, ChangeClass, classify_change

CLUSTER_CONFIG_INPUT = "cluster_config"
CLUSTER_VERSION_INPUT = "parallelcluster_version"


class PlanFileError(Exception):
    """A base plan file that cannot be read or is not a plan."""


@dataclass(frozen=True)
class PlanDiff:
    added: list[str] = field(default_factory=list)
    """URNs of resources only the new plan has."""
    removed: list[str] = field(default_factory=list)
    """URNs of resources only the base plan has (deleted, or replaced under a new name)."""
    changed: list[str] = field(default_factory=list)
    """URNs (in the new plan) of resources in both whose inputs differ."""
    moved: list[str] = field(default_factory=list)
    """URNs (in the new plan) of resources in both under another URN (a new parent)."""
    cluster: dict[str, ChangeClass] = field(default_factory=dict)
    """Per changed ParallelCluster resource (URN): its config change by update policy."""

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved)


def read_plan(path: Path) -> dict[str, Any]:
    """A plan JSON file written by `hpcctl plan --json`."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanFileError(
            f"{path}: not a plan (no resources list); write one with `hpcctl plan --json PATH`"
        )
    return document


def _by_name(plan: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (str(r.get("type")), str(r.get("name"))): r
        for r in plan.get("resources", [])
        if isinstance(r, dict) and "urn" in r
    }


def _with_unknowns(value: Any) -> Any:
    """A plan's unknown placeholder → the marker `classify_change` treats as "may change"."""
    if isinstance(value, dict):
        return {k: _with_unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_unknowns(v) for v in value]
    return NOT_KNOWN_YET if value == UNKNOWN_PLACEHOLDER else value


def _config(inputs: Mapping[str, Any]) -> dict[str, Any]:
    config = inputs.get(CLUSTER_CONFIG_INPUT)
    if isinstance(config, str):  # some providers keep it as the JSON/YAML text
        try:
            config = json.loads(config)
        except ValueError:
            return {}
    return _with_unknowns(config) if isinstance(config, dict) else {}


def compare_plans(base: Mapping[str, Any], new: Mapping[str, Any]) -> PlanDiff:
    """Base plan → new plan, both as `Plan.to_json()` documents."""
    old, current = _by_name(base), _by_name(new)
    added = sorted(current[k]["urn"] for k in set(current) - set(old))
    removed = sorted(old[k]["urn"] for k in set(old) - set(current))
    changed: list[str] = []
    cluster: dict[str, ChangeClass] = {}
    moved = sorted(current[k]["urn"] for k in set(old) & set(current) if old[k]["urn"] != current[k]["urn"])
    for key in sorted(set(old) & set(current)):
        before, after = old[key].get("inputs", {}), current[key].get("inputs", {})
        if before == after:
            continue
        urn = current[key]["urn"]
        changed.append(urn)
        if after.get(KIND_PROPERTY) == KIND_VALUE:
            versions = (before.get(CLUSTER_VERSION_INPUT), after.get(CLUSTER_VERSION_INPUT))
            cluster[urn] = classify_change(
                _config(before),
                _config(after),
                old_version=versions[0] if isinstance(versions[0], str) else None,
                new_version=versions[1] if isinstance(versions[1], str) else None,
            )
    changed.sort()
    return PlanDiff(added=added, removed=removed, changed=changed, moved=moved, cluster=cluster)


__all__ = ["PlanDiff", "PlanFileError", "compare_plans", "read_plan"]
