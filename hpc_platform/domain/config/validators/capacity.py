"""Capacity rules: reserved capacity (On-Demand Capacity Reservations, reservation resource
groups, Capacity Blocks) and what happens to jobs when Spot capacity is reclaimed.

The reservation rules are the ones ParallelCluster 3.16 applies in its schema and validators
(`CapacityReservationTargetSchema`, `CapacityTypeValidator`, `ComputeResourceSizeValidator`,
`CapacityReservationValidator`, `CapacityReservationSizeValidator`), checked here offline from
what the stack file declares, so a mistake is caught before ParallelCluster's dry run asks EC2.
"""

from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.placement import queue_placements


class CapacityReservationTargetValidator(Validator):
    """A reservation is named by exactly one of `id` and `resource_group_arn`; a Capacity Block
    only by `id` (ParallelCluster needs the reservation id for CAPACITY_BLOCK)."""

    name = "capacity-reservation-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                loc = ("cluster", "queues", qi, "compute_resources", ri, "capacity_reservation")
                reservation = resource.capacity_reservation
                if reservation is None:
                    if queue.capacity_type == "CAPACITY_BLOCK":
                        yield Finding(
                            loc,
                            "is required in a CAPACITY_BLOCK queue; set capacity_reservation.id to the "
                            "Capacity Block's reservation id (cr-...)",
                        )
                    continue
                if reservation.id is None and reservation.resource_group_arn is None:
                    yield Finding(loc, "names no reservation; set id (cr-...) or resource_group_arn")
                elif reservation.id is not None and reservation.resource_group_arn is not None:
                    yield Finding(
                        (*loc, "resource_group_arn"),
                        "is set together with id; ParallelCluster takes one of them: keep id for one "
                        "reservation or resource_group_arn for a group",
                    )
                elif queue.capacity_type == "CAPACITY_BLOCK" and reservation.id is None:
                    yield Finding(
                        (*loc, "resource_group_arn"),
                        "cannot name a Capacity Block; a CAPACITY_BLOCK queue needs the block's "
                        "reservation id in capacity_reservation.id",
                    )


class CapacityReservationQueueTypeValidator(Validator):
    """Reservations hold On-Demand capacity: a Spot queue cannot use one. A Capacity Block queue
    runs exactly the block's nodes (min_count = max_count > 0) and takes no allocation strategy."""

    name = "capacity-reservation-queue-type"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for qi, queue in enumerate(config.cluster.queues):
            queue_loc = ("cluster", "queues", qi)
            for ri, resource in enumerate(queue.compute_resources):
                loc = (*queue_loc, "compute_resources", ri)
                if queue.capacity_type == "SPOT" and resource.capacity_reservation is not None:
                    yield Finding(
                        (*loc, "capacity_reservation"),
                        "a SPOT queue cannot launch into a capacity reservation (reservations hold "
                        "On-Demand capacity); move the compute resource to an ONDEMAND queue (or a "
                        "CAPACITY_BLOCK queue for a Capacity Block)",
                    )
                if queue.capacity_type != "CAPACITY_BLOCK":
                    continue
                # max_count is at least 1 (schema), so equal counts are never 0.
                if resource.min_count != resource.max_count:
                    yield Finding(
                        (*loc, "min_count"),
                        f"{resource.min_count} differs from max_count ({resource.max_count}); a "
                        "Capacity Block runs a fixed number of nodes, so ParallelCluster requires "
                        "min_count = max_count (the block's instance count)",
                    )
            if queue.capacity_type == "CAPACITY_BLOCK" and queue.allocation_strategy is not None:
                yield Finding(
                    (*queue_loc, "allocation_strategy"),
                    f"{queue.allocation_strategy} cannot be set on a CAPACITY_BLOCK queue "
                    "(ParallelCluster refuses an allocation strategy there); remove it",
                )


class CapacityReservationInstanceTypeValidator(Validator):
    """Capacity Blocks are sold for a few GPU/accelerator types only (the instance catalog's
    `capacity_block_supported`, from EC2's SupportedUsageClasses); a declared reservation type
    must be the compute resource's type."""

    name = "capacity-reservation-instance-type"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        offered = sorted(spec.name for spec in catalog.types.values() if spec.capacity_block_supported)
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                loc = ("cluster", "queues", qi, "compute_resources", ri)
                spec = catalog.get(resource.instance_type)
                if (
                    queue.capacity_type == "CAPACITY_BLOCK"
                    and spec is not None
                    and not spec.capacity_block_supported
                ):
                    yield Finding(
                        (*loc, "instance_type"),
                        f"{spec.name} is not sold in Capacity Blocks; EC2 offers them for "
                        f"{or_join(offered)}; use one of those or an ONDEMAND queue",
                    )
                reservation = resource.capacity_reservation
                if (
                    reservation is not None
                    and reservation.instance_type is not None
                    and reservation.instance_type != resource.instance_type
                ):
                    yield Finding(
                        (*loc, "capacity_reservation", "instance_type"),
                        f"the reservation is for {reservation.instance_type} but the compute resource "
                        f"runs {resource.instance_type}; a reservation only serves its own instance "
                        "type",
                    )


class CapacityReservationZoneValidator(Validator):
    """A reservation serves one AZ: it must be one the queue launches in (ParallelCluster's
    `CapacityReservationValidator` compares it with the queue's subnet)."""

    name = "capacity-reservation-zone"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        placements = queue_placements(config, catalog)
        for qi, queue in enumerate(config.cluster.queues):
            placement = placements.get(queue.name)
            if placement is None or placement.problem is not None:
                continue  # the queue-placement rule reports it
            for ri, resource in enumerate(queue.compute_resources):
                reservation = resource.capacity_reservation
                if reservation is None or reservation.availability_zone is None:
                    continue
                if reservation.availability_zone not in placement.azs:
                    yield Finding(
                        (
                            "cluster",
                            "queues",
                            qi,
                            "compute_resources",
                            ri,
                            "capacity_reservation",
                            "availability_zone",
                        ),
                        f"{reservation.availability_zone} is not an AZ queue {queue.name} launches in "
                        f"({or_join(list(placement.azs))}); pin the queue to "
                        f"{reservation.availability_zone} with availability_zone, or name a "
                        "reservation in one of its AZs",
                    )


class CapacityReservationSizeValidator(Validator):
    """Compute resources targeting one reservation may not scale past what it holds
    (ParallelCluster's `CapacityReservationSizeValidator`, with the count the config declares)."""

    name = "capacity-reservation-size"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        by_id: dict[str, list[tuple[int, int, int, int | None]]] = {}
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                reservation = resource.capacity_reservation
                if reservation is not None and reservation.id is not None:
                    by_id.setdefault(reservation.id, []).append(
                        (qi, ri, resource.max_count, reservation.instance_count)
                    )
        for reservation_id, users in by_id.items():
            declared = [count for *_, count in users if count is not None]
            if not declared:
                continue
            held = max(declared)
            total = sum(max_count for _, _, max_count, _ in users)
            if total > held:
                qi, ri, *_ = users[-1]
                where = "its compute resources" if len(users) > 1 else "the compute resource"
                yield Finding(
                    ("cluster", "queues", qi, "compute_resources", ri, "max_count"),
                    f"{where} using {reservation_id} can scale to {total} nodes, more than the "
                    f"{held} instances it holds (capacity_reservation.instance_count); lower max_count "
                    "so the nodes fit the reservation",
                )


class SpotRequeueValidator(Validator):
    """With requeue off, a job on a reclaimed Spot node fails instead of running again."""

    name = "spot-requeue"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        spot = [queue.name for queue in config.cluster.queues if queue.capacity_type == "SPOT"]
        if spot and not config.cluster.slurm.enable_job_requeue:
            yield Finding(
                ("cluster", "slurm", "enable_job_requeue"),
                f"is off, so jobs on Spot queues ({', '.join(spot)}) fail when their node is "
                "reclaimed unless submitted with --requeue; turn it on (jobs that must not run "
                "twice opt out with --no-requeue)",
                "WARNING",
            )


VALIDATORS: tuple[Validator, ...] = (
    CapacityReservationTargetValidator(),
    CapacityReservationQueueTypeValidator(),
    CapacityReservationInstanceTypeValidator(),
    CapacityReservationZoneValidator(),
    CapacityReservationSizeValidator(),
    SpotRequeueValidator(),
)
