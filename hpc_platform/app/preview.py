"""The plan as `pulumi preview` shows it: a resource tree with `+`, the outputs, `N to create`;
one resource's inputs in full (`--show`); and what changed against an earlier plan (`--against`).

What the offline engine cannot know it shows as "(known after deploy)", never as the mocks'
made-up ids: any string that is, or contains, a value the mocks generated (`Plan.generated`) or an
engine unknown. Plain config values stay shown. Secrets are masked as in the plan JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from hpc_platform.app.offline.engine import STACK_TYPE, UNKNOWN_PLACEHOLDER, Plan, PlannedResource, plain
from hpc_platform.app.plan_diff import compare_plans
from hpc_platform.pcluster.update_policy import NOT_KNOWN_YET, ChangeClass

KNOWN_AFTER_DEPLOY = "(known after deploy)"

# Components in the order the program builds them (`hpc:<area>:<Name>`), so the tree reads
# top-down and is the same on every run (the engine registers resources concurrently).
AREA_ORDER = ("network", "storage", "cluster", "observability")


# --- values known only after deploy -------------------------------------------------------------
def masker(plan: Plan) -> Callable[[Any], Any]:
    """A function that turns a value into its JSON-safe form with made-up values masked."""
    generated = sorted(plan.generated, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(text) for text in generated)) if generated else None

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, str) and (
            value == UNKNOWN_PLACEHOLDER or (pattern is not None and pattern.search(value))
        ):
            return KNOWN_AFTER_DEPLOY
        return value

    return lambda value: mask(plain(value))


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --- the tree -----------------------------------------------------------------------------------
def reading_order(resource: PlannedResource) -> tuple[int, int, str, str]:
    """Resources before components; components by area, then by type and name."""
    parts = resource.type.split(":")
    area = parts[1] if len(parts) == 3 and parts[0] == "hpc" else ""
    rank = AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)
    return (0 if resource.custom else 1), rank, resource.type, resource.name


def _tree_rows(plan: Plan) -> list[tuple[str, str, str]]:
    """(tree prefix, type, name) for the stack and every resource under it, depth first."""
    children: dict[str, list[PlannedResource]] = {}
    for resource in plan.resources:
        children.setdefault(resource.parent or plan.stack_urn, []).append(resource)
    rows = [("", STACK_TYPE, f"{plan.project}-{plan.stack}")]

    def walk(urn: str, indent: str) -> None:
        kids = sorted(children.get(urn, []), key=reading_order)
        for index, child in enumerate(kids):
            last = index == len(kids) - 1
            rows.append((indent + ("└─ " if last else "├─ "), child.type, child.name))
            walk(child.urn, indent + ("   " if last else "│  "))

    walk(plan.stack_urn, "")
    return rows


# The Type column is as wide as its longest cell up to this; longer cells (a few S3 settings types)
# push their name to the right instead of widening every line.
_TYPE_COLUMN_MAX = 72


def render_tree(plan: Plan) -> list[str]:
    rows = _tree_rows(plan)
    width = min(max(len(prefix) + len(token) for prefix, token, _ in rows), _TYPE_COLUMN_MAX) + 2
    lines = [f"     {'Type':<{width}}Name"]
    for prefix, token, name in rows:
        cell = prefix + token
        lines.append(f" +   {cell.ljust(width) if len(cell) < width else cell + '  '}{name}")
    return lines


def render_outputs(plan: Plan) -> list[str]:
    if not plan.outputs:
        return []
    mask = masker(plan)
    width = max(len(key) for key in plan.outputs)
    lines = ["Outputs:"]
    for key in sorted(plan.outputs):
        lines.append(f"    {key:<{width}}: {_inline(mask(plan.outputs[key]))}")
    return lines


def render_summary(plan: Plan) -> list[str]:
    """Counted as `pulumi preview` counts: every resource, components and the stack included."""
    return ["Resources:", f"    + {plan.resource_count} to create"]


def render_preview(plan: Plan) -> list[str]:
    lines = [
        f"Previewing stack {plan.stack} (project {plan.project}) offline: "
        "no AWS calls; ids and other values AWS assigns are known after deploy",
        "",
    ]
    lines.extend(render_tree(plan))
    lines.append("")
    outputs = render_outputs(plan)
    if outputs:
        lines.extend([*outputs, ""])
    lines.extend(render_summary(plan))
    return lines


# --- one resource -------------------------------------------------------------------------------
class ResourceNotFound(LookupError):
    """No resource, or more than one, matches what `--show` was given."""


def find_resource(plan: Plan, urn_or_name: str) -> PlannedResource:
    """The resource with this URN, or the one resource with this name."""
    for resource in plan.resources:
        if resource.urn == urn_or_name:
            return resource
    matches = [r for r in plan.resources if r.name == urn_or_name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        urns = "; ".join(sorted(r.urn for r in matches))
        raise ResourceNotFound(f"{len(matches)} resources are named {urn_or_name!r}; give the URN: {urns}")
    near = sorted(r.name for r in plan.resources if urn_or_name in r.name)[:10]
    hint = f"; names that contain it: {', '.join(near)}" if near else ""
    raise ResourceNotFound(f"no resource has the URN or name {urn_or_name!r}{hint}")


def render_resource(plan: Plan, resource: PlannedResource) -> str:
    """Every input of one resource, in full, as YAML (secrets masked, made-up values unknown)."""
    document: dict[str, Any] = {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent or plan.stack_urn,
    }
    if resource.custom:
        document["id"] = KNOWN_AFTER_DEPLOY
    document["inputs"] = masker(plan)(resource.inputs)
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1_000_000))


# --- against an earlier plan --------------------------------------------------------------------
_OUTCOMES = (
    ("replace", "replace (ParallelCluster refuses the update; a new cluster is created)"),
    ("needs_fleet_stop", "needs a compute-fleet stop"),
    ("rolling", "rolling (QueueUpdateStrategy replaces the affected nodes while the fleet runs)"),
    ("live", "updated live, in place"),
)


def _verdict(change: ChangeClass) -> str:
    if change.unchanged:
        return "unchanged"
    if change.requires_replacement:
        return "the cluster would be replaced"
    if change.requires_fleet_stop:
        return "the update needs a compute-fleet stop"
    if change.rolling:
        return "a rolling update (no fleet stop)"
    return "updated live, in place"


def _short(value: Any, mask: Callable[[Any], Any]) -> str:
    if value is None:
        return "(absent)"
    if value is NOT_KNOWN_YET:
        return KNOWN_AFTER_DEPLOY
    return _inline(mask(value))


def render_against(plan: Plan, previous: Mapping[str, Any], source: str) -> list[str]:
    """The change against an earlier plan, as `hpc_platform.app.plan_diff` finds it.

    The mocks derive ids from URNs, so the same resource has the same made-up ids in both plans
    and a changed id means the input now points at another resource.
    """
    diff = compare_plans(previous, plan.to_json(), base_source=source)
    mask = masker(plan)
    lines = [f"Changes against {source}:"]
    for symbol, label, items in (
        ("+", "to create", diff.added_resources),
        ("-", "to delete", diff.removed_resources),
    ):
        lines.append(f"    {symbol} {len(items)} {label}")
        lines.extend(f"        {r['type']}  {r['name']}" for r in items)
    changed = [m for m in diff.matched if m.changed]
    lines.append(f"    ~ {len(changed)} to update")
    for m in changed:
        lines.append(f"        {m.after['type']}  {m.after['name']}  [{', '.join(m.changed_inputs)}]")
    moved = [m for m in diff.matched if m.moved]
    if moved:
        lines.append(f"    > {len(moved)} to move to a new parent (replaced unless it has an alias)")
        lines.extend(f"        {m.before['urn']} → {m.urn}" for m in moved)
    unchanged = sum(not (m.changed or m.moved) for m in diff.matched)
    lines.append(f"      {unchanged} unchanged")
    for cluster in diff.clusters:
        if cluster.change is None:
            verb = "created (a new cluster)" if cluster.outcome == "create" else "deleted"
            lines.append(f"ParallelCluster {cluster.name}: {verb}")
            continue
        moved_note = (
            "; it moved to a new parent: a new cluster unless it has an alias" if cluster.moved else ""
        )
        lines.append(f"ParallelCluster {cluster.name}: {_verdict(cluster.change)}{moved_note}")
        for outcome, label in _OUTCOMES:
            field_changes = [c for c in cluster.change.changes if c.outcome == outcome]
            if not field_changes:
                continue
            lines.append(f"    {label}:")
            for item in field_changes:
                values = f"{_short(item.old, mask)} → {_short(item.new, mask)}"
                lines.append(f"        {item.path}: {values}; {item.reason}")
    return lines
