"""Cluster rules: names, queue limits, instance types (existence, EFA, Spot, AZ, architecture,
GPU), Slurm accounting, the ParallelCluster API and the Spot share."""

from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.config.errors import Finding, Loc
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.limits import (
    PCLUSTER_MAX_COMPUTE_RESOURCES,
    PCLUSTER_MAX_QUEUES,
    cluster_name_problem,
)
from hpc_platform.domain.placement import head_node_az, queue_placements, resource_uses_efa
from hpc_platform.domain.spot import spot_share


class ClusterNameValidator(Validator):
    name = "cluster-name"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        cluster = config.cluster
        problem = cluster_name_problem(cluster.name, accounting=cluster.slurm.accounting.enabled)
        if problem is not None:
            yield Finding(("cluster", "name"), problem)


class QueueLimitsValidator(Validator):
    name = "queue-limits"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        cluster = config.cluster
        if len(cluster.queues) > PCLUSTER_MAX_QUEUES:
            yield Finding(
                ("cluster", "queues"),
                f"has {len(cluster.queues)} queues; ParallelCluster allows at most {PCLUSTER_MAX_QUEUES}",
            )
        total_resources = sum(len(q.compute_resources) for q in cluster.queues)
        if total_resources > PCLUSTER_MAX_COMPUTE_RESOURCES:
            yield Finding(
                ("cluster", "queues"),
                f"has {total_resources} compute resources in all; ParallelCluster allows at most "
                f"{PCLUSTER_MAX_COMPUTE_RESOURCES} per cluster",
            )
        seen_queues: dict[str, int] = {}
        for qi, queue in enumerate(cluster.queues):
            if queue.name in seen_queues:
                yield Finding(
                    ("cluster", "queues", qi, "name"),
                    f"{queue.name!r} is already the name of "
                    f"queues[{seen_queues[queue.name]}]; queue names must be unique",
                )
            seen_queues.setdefault(queue.name, qi)
            seen_resources: dict[str, int] = {}
            for ri, resource in enumerate(queue.compute_resources):
                loc = ("cluster", "queues", qi, "compute_resources", ri)
                if resource.name in seen_resources:
                    yield Finding(
                        (*loc, "name"),
                        f"{resource.name!r} is already used by "
                        f"compute_resources[{seen_resources[resource.name]}] "
                        "of this queue; names must be unique within a queue",
                    )
                seen_resources.setdefault(resource.name, ri)
                if resource.min_count > resource.max_count:
                    yield Finding(
                        (*loc, "min_count"),
                        f"{resource.min_count} is greater than max_count ({resource.max_count})",
                    )
        total_nodes = sum(r.max_count for q in cluster.queues for r in q.compute_resources)
        if total_nodes > cluster.max_total_nodes:
            yield Finding(
                ("cluster", "queues"),
                f"the queues can scale to {total_nodes} nodes, more than max_total_nodes "
                f"({cluster.max_total_nodes}); lower some max_count or raise max_total_nodes",
            )


class InstanceTypeExistsValidator(Validator):
    name = "instance-type-exists"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        wanted: list[tuple[Loc, str]] = [
            (("cluster", "head_node", "instance_type"), config.cluster.head_node.instance_type)
        ]
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                wanted.append(
                    (
                        ("cluster", "queues", qi, "compute_resources", ri, "instance_type"),
                        resource.instance_type,
                    )
                )
        for loc, name in wanted:
            if name in catalog:
                continue
            close = catalog.suggestions(name)
            hint = f"; did you mean {or_join(close)}?" if close else ""
            yield Finding(loc, f"{name} is not an EC2 instance type{hint}")


class EfaInstanceTypeValidator(Validator):
    name = "efa-instance-type"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                spec = catalog.get(resource.instance_type)
                if resource_uses_efa(queue, resource) and spec is not None and not spec.efa_supported:
                    yield Finding(
                        ("cluster", "queues", qi, "compute_resources", ri, "instance_type"),
                        f"{resource.instance_type} does not support EFA; pick an EFA type "
                        "(e.g. c5n.18xlarge, hpc6a.48xlarge) or turn EFA off for this queue",
                    )
                if resource.enable_efa and not queue.enable_efa:
                    yield Finding(
                        ("cluster", "queues", qi, "compute_resources", ri, "enable_efa"),
                        "EFA on a compute resource needs enable_efa on its queue (one subnet and a "
                        "placement group); set it on the queue",
                    )


class SpotEligibilityValidator(Validator):
    name = "spot-eligibility"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for qi, queue in enumerate(config.cluster.queues):
            if queue.capacity_type != "SPOT":
                continue
            for ri, resource in enumerate(queue.compute_resources):
                spec = catalog.get(resource.instance_type)
                if spec is not None and not spec.spot_supported:
                    yield Finding(
                        ("cluster", "queues", qi, "compute_resources", ri, "instance_type"),
                        f"{resource.instance_type} is not sold as Spot (On-Demand only); put it in an "
                        "ONDEMAND queue or choose a Spot-capable type",
                    )


class QueuePlacementValidator(Validator):
    name = "queue-placement"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        placements = queue_placements(config, catalog)
        for qi, queue in enumerate(config.cluster.queues):
            placement = placements[queue.name]
            if placement.problem is None:
                continue
            loc: tuple[str | int, ...] = ("cluster", "queues", qi)
            if placement.problem_compute_resource is not None:
                loc = (*loc, "compute_resources", placement.problem_compute_resource, "instance_type")
            else:
                loc = (*loc, "availability_zone")
            yield Finding(loc, placement.problem)
        head = catalog.get(config.cluster.head_node.instance_type)
        head_az = head_node_az(config.network.availability_zones)
        if head is not None and head_az not in head.azs(config.region):
            yield Finding(
                ("cluster", "head_node", "instance_type"),
                f"{head.name} is not offered in {head_az}, where the head node runs (first private "
                "subnet); it is offered in "
                f"{or_join(list(head.azs(config.region))) or 'no AZ of the region'}",
            )


class ArchitectureValidator(Validator):
    """ParallelCluster uses one AMI for head and compute nodes: one architecture."""

    name = "architecture"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        head = catalog.get(config.cluster.head_node.instance_type)
        if head is None:
            return
        for qi, queue in enumerate(config.cluster.queues):
            for ri, resource in enumerate(queue.compute_resources):
                spec = catalog.get(resource.instance_type)
                if spec is not None and spec.architecture != head.architecture:
                    yield Finding(
                        ("cluster", "queues", qi, "compute_resources", ri, "instance_type"),
                        f"{spec.name} is {spec.architecture} but the head node ({head.name}) is "
                        f"{head.architecture}; a cluster runs one architecture",
                    )


class QueuePurposeValidator(Validator):
    name = "queue-purpose"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for qi, queue in enumerate(config.cluster.queues):
            if queue.purpose != "gpu":
                continue
            for ri, resource in enumerate(queue.compute_resources):
                spec = catalog.get(resource.instance_type)
                if spec is not None and spec.gpus == 0:
                    yield Finding(
                        ("cluster", "queues", qi, "compute_resources", ri, "instance_type"),
                        f"{spec.name} has no GPU but the queue's purpose is gpu",
                    )


class SlurmAccountingValidator(Validator):
    name = "slurm-accounting"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        slurm = config.cluster.slurm
        if slurm.fair_share.enabled and not slurm.accounting.enabled:
            yield Finding(
                ("cluster", "slurm", "fair_share", "enabled"),
                "fair-share needs Slurm accounting (usage is read from slurmdbd); enable "
                "hpc:cluster.slurm.accounting or turn fair-share off",
            )
        accounting = slurm.accounting
        if accounting.min_capacity_acu > accounting.max_capacity_acu:
            yield Finding(
                ("cluster", "slurm", "accounting", "min_capacity_acu"),
                f"{accounting.min_capacity_acu} is greater than "
                f"max_capacity_acu ({accounting.max_capacity_acu})",
            )


class ParallelClusterApiValidator(Validator):
    name = "parallelcluster-api"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        api = config.cluster.api
        if api.mode == "existing" and api.endpoint is None:
            yield Finding(("cluster", "api", "endpoint"), "is required when mode is 'existing'")
        if api.mode == "deploy" and api.role_arn is not None:
            yield Finding(
                ("cluster", "api", "role_arn"),
                "is only for mode 'existing'; in mode 'deploy' the provider assumes the deployed API "
                "stack's own ParallelClusterApiUserRole; remove role_arn or set mode 'existing'",
            )


class SpotTargetValidator(Validator):
    """The layout should reach the stated Spot share; the policy pack enforces its own minimum."""

    name = "spot-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        share = spot_share(config, catalog)
        target = config.cluster.spot.min_share
        if share.below(target):
            yield Finding(
                ("cluster", "spot", "min_share"),
                f"the queues put {share.share:.0%} of Spot-eligible max vCPUs on Spot, below the "
                f"target {target:.0%}; move capacity to SPOT queues",
                "WARNING",
            )


VALIDATORS: tuple[Validator, ...] = (
    ClusterNameValidator(),
    QueueLimitsValidator(),
    InstanceTypeExistsValidator(),
    EfaInstanceTypeValidator(),
    SpotEligibilityValidator(),
    QueuePlacementValidator(),
    ArchitectureValidator(),
    QueuePurposeValidator(),
    SlurmAccountingValidator(),
    ParallelClusterApiValidator(),
    SpotTargetValidator(),
)
