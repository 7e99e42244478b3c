"""Human-readable plan: the component tree with resource counts by type, then the outputs."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from hpc_platform.app.offline.engine import Plan, PlannedResource, plain
from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.performance import performance_model, render_performance
from hpc_platform.domain.pricing import estimate_monthly_cost, render_cost

if TYPE_CHECKING:
    from hpc_platform.app.offline import StackPlan
    from hpc_platform.domain.config.models import StackConfig


# Components in the order the program builds them (`hpc:<area>:<Name>`), so the report reads
# top-down and is the same on every run (the engine registers resources concurrently).
AREA_ORDER = ("network", "storage", "cluster", "observability")


def _reading_order(resource: PlannedResource) -> tuple[int, str, str]:
    parts = resource.type.split(":")
    area = parts[1] if len(parts) == 3 and parts[0] == "hpc" else ""
    rank = AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)
    return rank, resource.type, resource.name


def _subtree_counts(plan: Plan, urn: str) -> Counter[str]:
    return Counter(r.type for r in plan.descendants_of(urn) if r.custom)


def _render_component(plan: Plan, resource: PlannedResource, depth: int, lines: list[str]) -> None:
    counts = _subtree_counts(plan, resource.urn)
    indent = "  " * depth
    lines.append(f"{indent}{resource.type}  {resource.name}  ({sum(counts.values())} resources)")
    direct: Counter[str] = Counter(c.type for c in plan.children_of(resource.urn) if c.custom)
    for token, count in sorted(direct.items()):
        lines.append(f"{indent}    {count:>4} × {token}")
    for child in sorted(plan.children_of(resource.urn), key=_reading_order):
        if not child.custom:
            _render_component(plan, child, depth + 1, lines)


def _format_value(value: Any) -> str:
    value = plain(value)
    if isinstance(value, dict | list):
        import json

        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 100 else text[:97] + "..."
    return str(value)


def render_plan(stack_plan: StackPlan) -> str:
    plan = stack_plan.plan
    custom = [r for r in plan.resources if r.custom]
    lines = [f"Plan for stack {plan.stack} (project {plan.project}): {len(custom)} resources"]
    top_level = sorted(
        (
            r
            for r in plan.resources
            if r.parent is None or r.parent.endswith(f"::{plan.project}-{plan.stack}")
        ),
        key=_reading_order,
    )
    for resource in top_level:
        if resource.custom:
            lines.append(f"{resource.type}  {resource.name}")
        else:
            _render_component(plan, resource, 0, lines)
    if plan.outputs:
        lines.append("Outputs:")
        for key in sorted(plan.outputs):
            lines.append(f"  {key}: {_format_value(plan.outputs[key])}")
    lines.extend(_performance_lines(stack_plan))
    return "\n".join(lines) + "\n"


def _performance_lines(stack_plan: StackPlan) -> list[str]:
    """The performance model of the stack's config (see `hpc_platform.domain.performance`)."""
    config = stack_plan.loaded.config
    lines = render_performance(performance_model(config, default_catalog()))
    lines.extend(_cost_lines(config))
    return lines


def _cost_lines(config: StackConfig) -> list[str]:
    """A rough monthly cost from the bundled price snapshot (see `hpc_platform.domain.pricing`)."""
    budget = config.observability.budget
    return render_cost(estimate_monthly_cost(config), budget.monthly_limit_usd if budget else None)
