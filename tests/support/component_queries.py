"""Queries over one component's part of an offline plan, shared by the component tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from hpc_platform.app.offline.engine import Plan, PlannedResource


class ComponentQueries(NamedTuple):
    component: Callable[[Plan], PlannedResource]
    """The (single) component of this type in the plan."""
    subtree: Callable[[Plan], list[PlannedResource]]
    """Every resource below it."""
    of_type: Callable[[Plan, str], list[PlannedResource]]
    """Its descendants of one resource type."""
    named: Callable[[Plan, str], PlannedResource]
    """Its child `<component name>-<role>`."""


def component_queries(type_token: str) -> ComponentQueries:
    def component(plan: Plan) -> PlannedResource:
        (found,) = plan.of_type(type_token)
        return found

    def subtree(plan: Plan) -> list[PlannedResource]:
        return plan.descendants_of(component(plan).urn)

    def of_type(plan: Plan, token: str) -> list[PlannedResource]:
        return [r for r in subtree(plan) if r.type == token]

    def named(plan: Plan, role: str) -> PlannedResource:
        return plan.by_name(f"{component(plan).name}-{role}")

    return ComponentQueries(component, subtree, of_type, named)
