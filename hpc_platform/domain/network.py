"""Network rules on plain values: the config validators and EfaNetwork's guards both call these.

Plain values only (no stack schema), so the component library may import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SUBNET_TIERS = ("public", "private", "compute", "storage")
"""The subnet tiers of the VPC, each with one subnet per availability zone."""


def subnet_count_problem(cidr_count: int, availability_zones: Sequence[str], zones_key: str) -> str | None:
    """Why a tier with `cidr_count` CIDR blocks does not fit the AZs (`None` when it does).

    `zones_key` names the AZ list where the user set it (a stack-file key or an argument)."""
    if cidr_count == len(availability_zones):
        return None
    return (
        f"has {cidr_count} CIDR blocks for {len(availability_zones)} availability zones; "
        f"give one block per AZ, in {zones_key} order"
    )


def queue_subnet_problems(
    availability_zones: Sequence[str],
    queue_availability_zones: Mapping[str, Sequence[str]],
    placement_group_queues: Sequence[str],
    zones_key: str,
) -> list[tuple[str, str]]:
    """(queue, why) for each queue whose compute subnets cannot be chosen from the VPC's AZs.

    A queue runs in the compute subnets of its AZs, so each must be one of the VPC's; a queue with
    a cluster placement group runs in exactly one AZ (a cluster placement group cannot span AZs,
    and EFA traffic does not cross subnets)."""
    problems: list[tuple[str, str]] = []
    for queue, azs in queue_availability_zones.items():
        if not azs:
            problems.append((queue, "has no availability zone; give the AZ(s) it runs in"))
            continue
        outside = [az for az in azs if az not in availability_zones]
        if outside:
            problems.append(
                (
                    queue,
                    f"placed in {', '.join(outside)}, which the VPC does not span; add it to "
                    f"{zones_key} or place the queue in one of {', '.join(availability_zones)}",
                )
            )
        if queue in placement_group_queues and len(azs) != 1:
            problems.append(
                (
                    queue,
                    f"has a cluster placement group, so it must run in exactly one AZ, not {len(azs)} "
                    f"({', '.join(azs)}); place it in one AZ",
                )
            )
    for queue in placement_group_queues:
        if queue not in queue_availability_zones:
            problems.append((queue, "has a cluster placement group but no availability zone; give its AZ"))
    return problems
