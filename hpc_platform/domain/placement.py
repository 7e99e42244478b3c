"""Where each Slurm queue runs, and which nodes use EFA: derived once, read everywhere.

- EFA: a compute resource uses EFA when its own `enable_efa` says so, else when its queue's does
  (`uses_efa`); an EFA queue runs whole-node jobs unless it says otherwise (`exclusive_allocation`).
- AZs: an EFA queue runs in exactly one AZ (one subnet, one cluster placement group): the first
  candidate AZ that offers all its instance types; other queues span every configured AZ that
  offers them. A queue's `availability_zone` pins the candidates to that AZ.
- The head node runs in the first AZ (the first private subnet).

The validators, the performance model, the network component and the ParallelCluster renderer
all read these, so the AZ a queue is validated for is the AZ its subnet is built in. The functions
take plain values; `place_queue`/`queue_placements`/`resource_uses_efa` take anything shaped like
the config (`hpc_platform.domain.shapes`): this module does not import the stack schema.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.shapes import ComputeResourceShape, QueueShape, StackShape


@dataclass(frozen=True)
class QueuePlacement:
    queue: str
    azs: tuple[str, ...]
    """AZs whose compute subnets the queue runs in (exactly one for EFA queues)."""
    problem: str | None = None
    """Why no AZ fits; `azs` is empty then."""
    problem_compute_resource: int | None = None
    """Index of the compute resource the problem is about, when it is about one."""
    efa: bool = False
    """The queue runs EFA: one subnet and its own cluster placement group."""


# ---------------------------------------------------------------------------------------------
# EFA
# ---------------------------------------------------------------------------------------------
def uses_efa(queue_enable_efa: bool, resource_enable_efa: bool | None) -> bool:
    """Whether a compute resource's nodes get EFA: its own setting, else its queue's."""
    return queue_enable_efa if resource_enable_efa is None else resource_enable_efa


def resource_uses_efa(queue: QueueShape, resource: ComputeResourceShape) -> bool:
    return uses_efa(queue.enable_efa, resource.enable_efa)


def needs_placement_group(enable_efa: bool, capacity_type: str) -> bool:
    """Whether a queue gets a cluster placement group of ours: EFA queues do, except Capacity
    Block queues, whose block brings its own placement (ParallelCluster warns when a placement
    group is set on one)."""
    return enable_efa and capacity_type != "CAPACITY_BLOCK"


def exclusive_allocation(queue_enable_efa: bool, job_exclusive_allocation: bool | None) -> bool:
    """Whole nodes per job: the queue's setting, else on for EFA queues (tightly coupled MPI jobs
    do not share nodes)."""
    return queue_enable_efa if job_exclusive_allocation is None else job_exclusive_allocation


# ---------------------------------------------------------------------------------------------
# AZs
# ---------------------------------------------------------------------------------------------
def head_node_az(vpc_azs: Sequence[str]) -> str:
    """The head node runs in the first private subnet, i.e. the first configured AZ."""
    return vpc_azs[0]


def unknown_az_problem(az: str, region: str, region_azs: tuple[str, ...]) -> str:
    """The message for an AZ the region does not have (per the instance catalog)."""
    return (
        f"{az} is not an availability zone of {region} (the instance catalog lists "
        f"{', '.join(region_azs)}); use one of those"
    )


def place(
    queue: str,
    *,
    instance_types: Sequence[str],
    enable_efa: bool,
    availability_zone: str | None,
    vpc_azs: Sequence[str],
    region: str,
    catalog: InstanceCatalog,
) -> QueuePlacement:
    """The AZs a queue of these instance types runs in, among the VPC's AZs `vpc_azs`."""
    configured = list(vpc_azs)
    region_azs = catalog.availability_zones(region)
    if availability_zone is not None:
        if region_azs is not None and availability_zone not in region_azs:
            return QueuePlacement(
                queue, (), unknown_az_problem(availability_zone, region, region_azs), efa=enable_efa
            )
        if availability_zone not in configured:
            return QueuePlacement(
                queue,
                (),
                f"{availability_zone} is not one of the VPC's availability zones "
                f"({or_join(configured)}); add it to hpc:network.availability_zones or pick one of those",
                efa=enable_efa,
            )
        candidates: list[str] = [availability_zone]
    else:
        candidates = configured
    for index, instance_type in enumerate(instance_types):
        spec = catalog.get(instance_type)
        if spec is None:
            continue
        offered = spec.azs(region)
        usable = [az for az in candidates if az in offered]
        if not usable:
            where = (
                f"it is offered in {or_join(list(offered))}"
                if offered
                else f"it is not offered anywhere in {region}"
            )
            scope = (
                f"the queue's availability zone {availability_zone}"
                if availability_zone
                else f"any of the VPC's availability zones ({or_join(configured)})"
            )
            if not offered:
                fix = "; choose another instance type or region"
            elif availability_zone:
                fix = "; pin the queue to one of those AZs or choose another instance type"
            else:
                fix = "; add such an AZ to hpc:network.availability_zones or choose another instance type"
            return QueuePlacement(
                queue, (), f"{instance_type} is not offered in {scope}; {where}{fix}", index, efa=enable_efa
            )
        candidates = usable
    if enable_efa:
        # EFA traffic does not cross subnets: one subnet, one AZ.
        candidates = candidates[:1]
    return QueuePlacement(queue, tuple(candidates), efa=enable_efa)


def place_queue(queue: QueueShape, config: StackShape, catalog: InstanceCatalog) -> QueuePlacement:
    return place(
        queue.name,
        instance_types=[resource.instance_type for resource in queue.compute_resources],
        enable_efa=queue.enable_efa,
        availability_zone=queue.availability_zone,
        vpc_azs=config.network.availability_zones,
        region=config.region,
        catalog=catalog,
    )


def queue_placements(config: StackShape, catalog: InstanceCatalog) -> dict[str, QueuePlacement]:
    return {queue.name: place_queue(queue, config, catalog) for queue in config.cluster.queues}
