"""Capacity rules (`hpc_platform.domain.config.validators.capacity` and the reservation models):
each violating case fails with its message at the exact key path, and a valid reservation of each
kind passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.validators import capacity
from tests.support.validator_cases import Case, Mutation, case_ids, check_case, exercised, problems, set_value

# prod's queue 5 is `gpu` (p4d.24xlarge, ONDEMAND, EFA, us-east-2b, max 16); queue 1 is
# `compute-spot` (SPOT); queue 6 is `debug` (c6i.2xlarge).
GPU = "hpc:cluster.queues.5"
ODCR = "cr-0123456789abcdef0"
GROUP_ARN = "arn:aws:resource-groups:us-east-2:123456789012:group/hpc-gpu-reservations"


def both(*mutations: Mutation) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(config)

    return mutate


def capacity_block(queue: str = GPU, count: int = 16, **reservation: Any) -> Mutation:
    """Turn a queue into a CAPACITY_BLOCK queue of `count` nodes in reservation ODCR."""
    return both(
        set_value(f"{queue}.capacity_type", "CAPACITY_BLOCK"),
        set_value(f"{queue}.compute_resources.0.min_count", count),
        set_value(f"{queue}.compute_resources.0.max_count", count),
        set_value(f"{queue}.compute_resources.0.capacity_reservation", {"id": ODCR, **reservation}),
    )


# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"id": "cr-12345"}),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation.id: "
        "'cr-12345': String should match pattern…",
    ),
    (
        "prod",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"resource_group_arn": "hpc-gpu"}),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "resource_group_arn: 'hpc-gpu': String should match pattern…",
    ),
    (
        "prod",
        set_value(f"{GPU}.capacity_type", "RESERVED"),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].capacity_type: 'RESERVED': Input should be "
        "'ONDEMAND', 'SPOT' or 'CAPACITY_BLOCK'",
    ),
    (
        "prod",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "instance_count": 0}),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "instance_count: 0: Input should be greater than or equal to 1",
    ),
    (
        "prod",
        set_value("hpc:cluster.slurm.enable_job_requeue", "sometimes"),
        "Pulumi.prod.yaml: hpc:cluster.slurm.enable_job_requeue: 'sometimes': Input should be a valid "
        "boolean…",
    ),
    (
        "prod",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"instance_count": 4}),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation: names no "
        "reservation; set id (cr-...) or resource_group_arn",
    ),
    (
        "prod",
        set_value(
            f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "resource_group_arn": GROUP_ARN}
        ),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "resource_group_arn: is set together with id; ParallelCluster takes one of them: keep id for "
        "one reservation or resource_group_arn for a group",
    ),
    (
        "prod",
        both(
            set_value(f"{GPU}.capacity_type", "CAPACITY_BLOCK"),
            set_value(f"{GPU}.compute_resources.0.min_count", 16),
        ),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation: is required "
        "in a CAPACITY_BLOCK queue; set capacity_reservation.id to the Capacity Block's reservation id "
        "(cr-...)",
    ),
    (
        "prod",
        both(
            capacity_block(),
            set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"resource_group_arn": GROUP_ARN}),
        ),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "resource_group_arn: cannot name a Capacity Block; a CAPACITY_BLOCK queue needs the block's "
        "reservation id in capacity_reservation.id",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.compute_resources.0.capacity_reservation", {"id": ODCR}),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].compute_resources[0].capacity_reservation: a SPOT queue "
        "cannot launch into a capacity reservation (reservations hold On-Demand capacity); move the "
        "compute resource to an ONDEMAND queue (or a CAPACITY_BLOCK queue for a Capacity Block)",
    ),
    (
        "prod",
        both(capacity_block(), set_value(f"{GPU}.compute_resources.0.min_count", 8)),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].min_count: 8 differs from "
        "max_count (16); a Capacity Block runs a fixed number of nodes, so ParallelCluster requires "
        "min_count = max_count (the block's instance count)",
    ),
    (
        "prod",
        both(capacity_block(), set_value(f"{GPU}.allocation_strategy", "lowest-price")),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].allocation_strategy: lowest-price cannot be set on a "
        "CAPACITY_BLOCK queue (ParallelCluster refuses an allocation strategy there); remove it",
    ),
    (
        "prod",
        capacity_block("hpc:cluster.queues.6", count=4),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].instance_type: c6i.2xlarge is not "
        "sold in Capacity Blocks; EC2 offers them for p4d.24xlarge, p4de.24xlarge, p5.48xlarge, "
        "p5.4xlarge, p5e.48xlarge or trn1.32xlarge; use one of those or an ONDEMAND queue",
    ),
    (
        "prod",
        set_value(
            f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "instance_type": "p5.48xlarge"}
        ),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "instance_type: the reservation is for p5.48xlarge but the compute resource runs p4d.24xlarge; "
        "a reservation only serves its own instance type",
    ),
    (
        "prod",
        set_value(
            f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "availability_zone": "us-east-2a"}
        ),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].capacity_reservation."
        "availability_zone: us-east-2a is not an AZ queue gpu launches in (us-east-2b); pin the queue "
        "to us-east-2a with availability_zone, or name a reservation in one of its AZs",
    ),
    (
        "prod",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"id": ODCR, "instance_count": 8}),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].max_count: the compute resource "
        f"using {ODCR} can scale to 16 nodes, more than the 8 instances it holds "
        "(capacity_reservation.instance_count); lower max_count so the nodes fit the reservation",
    ),
    (
        "prod",
        set_value("hpc:cluster.slurm.enable_job_requeue", False),
        "Pulumi.prod.yaml: hpc:cluster.slurm.enable_job_requeue: warning: is off, so jobs on Spot queues "
        "(compute-spot, memory-spot) fail when their node is reclaimed unless submitted with --requeue; "
        "turn it on (jobs that must not run twice opt out with --no-requeue)",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_capacity_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, capacity.VALIDATORS, stack_config) == {v.name for v in capacity.VALIDATORS}


VALID: list[tuple[str, Mutation]] = [
    (
        "odcr",
        set_value(
            f"{GPU}.compute_resources.0.capacity_reservation",
            {
                "id": ODCR,
                "instance_count": 16,
                "availability_zone": "us-east-2b",
                "instance_type": "p4d.24xlarge",
            },
        ),
    ),
    (
        "resource-group",
        set_value(f"{GPU}.compute_resources.0.capacity_reservation", {"resource_group_arn": GROUP_ARN}),
    ),
    ("capacity-block", capacity_block(availability_zone="us-east-2b", hourly_usd_per_instance=31.464)),
]


@pytest.mark.parametrize("mutate", [m for _, m in VALID], ids=[n for n, _ in VALID])
def test_valid_reservations_pass(mutate: Mutation, stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    mutate(config)
    assert problems(config) == []


def test_capacity_block_types_come_from_ec2s_usage_classes(catalog: InstanceCatalog) -> None:
    """The catalog marks exactly the types whose SupportedUsageClasses include capacity-block; of
    the types the stacks use, only the GPU type is sold that way."""
    assert catalog.types["p4d.24xlarge"].capacity_block_supported
    for name in ("c5n.18xlarge", "hpc6a.48xlarge", "x2iedn.32xlarge", "c6i.2xlarge", "g6e.48xlarge"):
        assert not catalog.types[name].capacity_block_supported, name
