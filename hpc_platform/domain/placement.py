"""Where each Slurm queue runs: one AZ for EFA queues, every offering AZ for the others.

Validators, the network component and the ParallelCluster renderer all read this, so the AZ a
queue is validated for is the AZ its subnet is built in.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.config.models import QueueConfig, StackConfig


@dataclass(frozen=True)
class QueuePlacement:
    queue: str
    azs: tuple[str, ...]
    """AZs whose compute subnets the queue runs in (exactly one for EFA queues)."""
    problem: str | None = None
    """Why no AZ fits; `azs` is empty then."""
    problem_compute_resource: int | None = None
    """Index of the compute resource the problem is about, when it is about one."""


def unknown_az_problem(az: str, region: str, region_azs: tuple[str, ...]) -> str:
    """The message for an AZ the region does not have (per the instance catalog)."""
    return (
        f"{az} is not an availability zone of {region} (the instance catalog lists "
        f"{', '.join(region_azs)}); use one of those"
    )


def place_queue(queue: QueueConfig, config: StackConfig, catalog: InstanceCatalog) -> QueuePlacement:
    configured = config.network.availability_zones
    region_azs = catalog.availability_zones(config.region)
    if queue.availability_zone is not None:
        if region_azs is not None and queue.availability_zone not in region_azs:
            return QueuePlacement(
                queue.name, (), unknown_az_problem(queue.availability_zone, config.region, region_azs)
            )
        if queue.availability_zone not in configured:
            return QueuePlacement(
                queue.name,
                (),
                f"{queue.availability_zone} is not one of the VPC's availability zones "
                f"({or_join(list(configured))}); add it to hpc:network.availability_zones or pick one of those",
            )
        candidates: list[str] = [queue.availability_zone]
    else:
        candidates = list(configured)
    for index, resource in enumerate(queue.compute_resources):
        spec = catalog.get(resource.instance_type)
        if spec is None:
            continue
        offered = spec.azs(config.region)
        usable = [az for az in candidates if az in offered]
        if not usable:
            where = (
                f"it is offered in {or_join(list(offered))}"
                if offered
                else f"it is not offered anywhere in {config.region}"
            )
            scope = (
                f"the queue's availability zone {queue.availability_zone}"
                if queue.availability_zone
                else f"any of the VPC's availability zones ({or_join(list(configured))})"
            )
            if not offered:
                fix = "; choose another instance type or region"
            elif queue.availability_zone:
                fix = "; pin the queue to one of those AZs or choose another instance type"
            else:
                fix = "; add such an AZ to hpc:network.availability_zones or choose another instance type"
            return QueuePlacement(
                queue.name, (), f"{resource.instance_type} is not offered in {scope}; {where}{fix}", index
            )
        candidates = usable
    if queue.enable_efa:
        # EFA traffic does not cross subnets: one subnet, one AZ.
        candidates = candidates[:1]
    return QueuePlacement(queue.name, tuple(candidates))


def queue_placements(config: StackConfig, catalog: InstanceCatalog) -> dict[str, QueuePlacement]:
    return {queue.name: place_queue(queue, config, catalog) for queue in config.cluster.queues}
