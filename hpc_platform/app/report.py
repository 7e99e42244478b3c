"""Human-readable plan: the preview (resource tree, outputs, `N to create`), then the performance
model and the cost estimate of the stack's config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpc_platform.app.preview import render_preview
from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.performance import performance_model, render_performance
from hpc_platform.domain.pricing import estimate_monthly_cost, render_cost

if TYPE_CHECKING:
    from hpc_platform.app.offline import StackPlan
    from hpc_platform.domain.config.models import StackConfig


def render_plan(stack_plan: StackPlan) -> str:
    lines = render_preview(stack_plan.plan)
    lines.append("")
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
