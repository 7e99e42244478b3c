"""Spot share: enough of the cluster's Spot-eligible capacity runs on Spot.

The share is `hpc_platform.domain.spot.spot_share_of` over the rendered ParallelCluster config (max vCPUs
of SPOT queues over the max vCPUs of Spot-eligible instance types; On-Demand-only types such as
hpc6a are left out) — the same definition the config validator and the plan report use.

The stack's own target (`hpc:cluster.spot.min_share`) is checked too when the stack makes it
visible: as the `spot_min_share` property of the cluster resource or the `spot_min_share` stack
output. A stack with no cluster has nothing to check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from hpc_platform.domain.config.models import SpotConfig
from hpc_platform.domain.spot import spot_share_of

from ._common import DEFAULT_ENFORCEMENT, STACK_TYPE, catalog, clusters, get, items, known, short

DEFAULT_MIN_SHARE: float = SpotConfig.model_fields["min_share"].default
DECLARED_TARGET_KEY = "spot_min_share"
# ParallelCluster defaults when a queue or compute resource leaves these out.
PCLUSTER_DEFAULT_CAPACITY_TYPE = "ONDEMAND"
PCLUSTER_DEFAULT_MAX_COUNT = 10


def compute_resources(cluster_config: Any) -> Iterator[tuple[str, str, int]]:
    """(capacity_type, instance_type, max_count) per compute resource of a ParallelCluster config."""
    for queue in items(get(cluster_config, "Scheduling", "SlurmQueues")):
        capacity_type = get(queue, "CapacityType") or PCLUSTER_DEFAULT_CAPACITY_TYPE
        for resource in items(get(queue, "ComputeResources")):
            instance_type = get(resource, "InstanceType") or get(resource, "Instances", 0, "InstanceType")
            max_count = get(resource, "MaxCount")
            if not isinstance(instance_type, str):
                continue
            count = int(max_count) if isinstance(max_count, int | float) else PCLUSTER_DEFAULT_MAX_COUNT
            yield str(capacity_type), instance_type, count


def _declared_target(cluster: PolicyResource, stack: PolicyResource | None) -> float | None:
    for props in (cluster.props, stack.props if stack is not None else {}):
        value = known(props, DECLARED_TARGET_KEY)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config: Mapping[str, Any] = args.get_config()
    minimum = float(config.get("minShare", DEFAULT_MIN_SHARE))
    stack = next((r for r in args.resources if r.resource_type == STACK_TYPE), None)
    for cluster in clusters(args.resources):
        share = spot_share_of(compute_resources(cluster.props.get("cluster_config")), catalog())
        if share.below(minimum):
            report_violation(
                f"cluster {short(cluster.urn)} puts {share.share:.0%} of its Spot-eligible max vCPUs on "
                f"Spot ({share.spot_vcpus} of {share.eligible_vcpus}); the minimum is {minimum:.0%}. "
                "Move max_count from ONDEMAND queues to SPOT queues of the same instance type in "
                "hpc:cluster.queues (On-Demand-only types such as hpc6a do not count).",
                cluster.urn,
            )
        target = _declared_target(cluster, stack)
        if target is not None and target + 1e-9 < minimum:
            report_violation(
                f"the stack's Spot target hpc:cluster.spot.min_share is {target:.2f}, below the policy "
                f"minimum {minimum:.2f}; raise it to at least {minimum:.2f}.",
                cluster.urn,
            )


spot_ratio = StackValidationPolicy(
    name="spot-ratio",
    description="The cluster runs at least the minimum share of its Spot-eligible max vCPUs on Spot.",
    validate=_validate,
    enforcement_level=DEFAULT_ENFORCEMENT,
    config_schema=PolicyConfigSchema(
        properties={
            "minShare": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": DEFAULT_MIN_SHARE,
                "description": "Minimum Spot share of Spot-eligible max vCPUs (0-1).",
            }
        }
    ),
)

POLICIES = [spot_ratio]
