"""Cross-field and catalog rules, one named validator per rule, grouped by domain.

Each validator yields `Finding`s with the exact key path it is about. Field-level rules stay on
the models; these run only when the schema has parsed.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

from hpc_platform.domain.budgets import alert_thresholds_problem
from hpc_platform.domain.catalog import InstanceCatalog, or_join
from hpc_platform.domain.config.errors import Finding, Loc
from hpc_platform.domain.config.models import SUBNET_TIERS, StackConfig
from hpc_platform.domain.limits import (
    LUSTRE_CAPACITY_FIRST_STEPS_GIB,
    LUSTRE_CAPACITY_INCREMENT_GIB,
    LUSTRE_PERSISTENT_2,
    LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB,
    LUSTRE_SCRATCH_2,
    PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING,
    PCLUSTER_MAX_COMPUTE_RESOURCES,
    PCLUSTER_MAX_QUEUES,
    S3_OBJECT_MAX_TAGS,
)
from hpc_platform.domain.performance import throughput_model
from hpc_platform.domain.placement import queue_placements, unknown_az_problem
from hpc_platform.domain.spot import spot_share

# S3 Intelligent-Tiering archive tiers accept these day ranges (PutBucketIntelligentTieringConfiguration).
IT_ARCHIVE_ACCESS_DAYS = (90, 730)
IT_DEEP_ARCHIVE_ACCESS_DAYS = (180, 730)
# AWS reserves the first four and the last address of every subnet.
SUBNET_RESERVED_ADDRESSES = 5


class Validator:
    """A named rule. Subclasses set `name` and implement `validate`."""

    name: ClassVar[str]

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        raise NotImplementedError


# --- network ----------------------------------------------------------------------------------
class SubnetLayoutValidator(Validator):
    name = "subnet-layout"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        network = config.network
        vpc = ipaddress.IPv4Network(network.vpc_cidr)
        seen: list[tuple[ipaddress.IPv4Network, str]] = []
        for tier in SUBNET_TIERS:
            cidrs = network.subnets.tier(tier)
            if len(cidrs) != len(network.availability_zones):
                yield Finding(
                    ("network", "subnets", tier),
                    f"has {len(cidrs)} CIDR blocks for {len(network.availability_zones)} availability "
                    "zones; give one block per AZ, in hpc:network.availability_zones order",
                )
            for index, text in enumerate(cidrs):
                subnet = ipaddress.IPv4Network(text)
                loc = ("network", "subnets", tier, index)
                if not subnet.subnet_of(vpc):
                    yield Finding(loc, f"{text} is not inside the VPC CIDR {vpc}")
                    continue
                if not 16 <= subnet.prefixlen <= 28:
                    yield Finding(loc, f"{text}: subnets must be between /16 and /28")
                for other, where in seen:
                    if subnet.overlaps(other):
                        yield Finding(loc, f"{text} overlaps {other} ({where})")
                seen.append((subnet, f"hpc:network.subnets.{tier}[{index}]"))
        if len(set(network.availability_zones)) != len(network.availability_zones):
            yield Finding(("network", "availability_zones"), "lists an availability zone twice")
        for index, az in enumerate(network.availability_zones):
            if not az.startswith(config.region):
                yield Finding(
                    ("network", "availability_zones", index),
                    f"{az} is not in the stack's region {config.region}",
                )


class AvailabilityZoneExistsValidator(Validator):
    """Every configured AZ must exist in the region; the instance catalog lists the region's AZs.
    (A queue's `availability_zone` is checked where queues are placed: `queue-placement`.)"""

    name = "availability-zone-exists"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        region_azs = catalog.availability_zones(config.region)
        if region_azs is None:
            return  # a region the snapshot does not cover: the placement rules report it
        for index, az in enumerate(config.network.availability_zones):
            # An AZ of another region is subnet-layout's finding.
            if az.startswith(config.region) and az not in region_azs:
                yield Finding(
                    ("network", "availability_zones", index),
                    unknown_az_problem(az, config.region, region_azs),
                )


class SshIngressValidator(Validator):
    name = "ssh-ingress"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for index, cidr in enumerate(config.network.ssh_ingress_cidrs):
            if ipaddress.IPv4Network(cidr).prefixlen == 0:
                yield Finding(
                    ("network", "ssh_ingress_cidrs", index),
                    f"{cidr} opens SSH to the whole internet; list your organisation's CIDR blocks, "
                    "or leave the list empty and use SSM Session Manager",
                )


class ComputeSubnetCapacityValidator(Validator):
    """Each node takes one address per EFA interface; a subnet too small fails at scale-up."""

    name = "compute-subnet-capacity"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        network = config.network
        placements = queue_placements(config, catalog)
        needed: Counter[str] = Counter()
        for queue in config.cluster.queues:
            azs = placements[queue.name].azs
            if not azs:
                continue
            for resource in queue.compute_resources:
                spec = catalog.get(resource.instance_type)
                if spec is None:
                    continue
                # A multi-AZ queue may land every node in one AZ: count the worst case.
                for az in azs:
                    needed[az] += resource.max_count * spec.addresses_per_node()
        for index, az in enumerate(network.availability_zones):
            if index >= len(network.subnets.compute) or not needed[az]:
                continue
            cidr = ipaddress.IPv4Network(network.subnets.compute[index])
            usable = cidr.num_addresses - SUBNET_RESERVED_ADDRESSES
            if needed[az] > usable:
                yield Finding(
                    ("network", "subnets", "compute", index),
                    f"{cidr} has {usable} usable addresses but the queues placed in {az} can need "
                    f"{needed[az]} (max nodes × network interfaces); use a larger block",
                )


# --- storage ----------------------------------------------------------------------------------
def lustre_capacity_ok(capacity_gib: int) -> bool:
    return capacity_gib in LUSTRE_CAPACITY_FIRST_STEPS_GIB or (
        capacity_gib > 0 and capacity_gib % LUSTRE_CAPACITY_INCREMENT_GIB == 0
    )


def _steps_text() -> str:
    first, second = LUSTRE_CAPACITY_FIRST_STEPS_GIB
    return f"use {first}, {second} or a multiple of {LUSTRE_CAPACITY_INCREMENT_GIB}"


class LustreCapacityValidator(Validator):
    name = "lustre-capacity"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        for key, fs, kind in (
            ("scratch", storage.scratch, LUSTRE_SCRATCH_2),
            ("persistent", storage.persistent, LUSTRE_PERSISTENT_2),
        ):
            if fs.enabled and not lustre_capacity_ok(fs.capacity_gib):
                yield Finding(
                    ("storage", key, "capacity_gib"),
                    f"{fs.capacity_gib} is not a valid {kind} size; {_steps_text()}",
                )


class LustreThroughputValidator(Validator):
    name = "lustre-throughput"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        persistent = config.storage.persistent
        allowed = LUSTRE_PERSISTENT_2_THROUGHPUT_MBPS_PER_TIB
        if persistent.throughput_mbps_per_tib not in allowed:
            yield Finding(
                ("storage", "persistent", "throughput_mbps_per_tib"),
                f"{persistent.throughput_mbps_per_tib} MB/s/TiB is not offered for {LUSTRE_PERSISTENT_2}; "
                f"use {or_join([str(v) for v in allowed])}",
            )


class LustreEncryptionValidator(Validator):
    name = "lustre-encryption"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        persistent = config.storage.persistent
        if persistent.enabled and not persistent.enable_customer_kms_key and config.environment != "dev":
            yield Finding(
                ("storage", "persistent", "enable_customer_kms_key"),
                "persistent Lustre without a customer KMS key fails the encryption policy "
                "(fsx-lustre-customer-kms-key, mandatory outside dev); turn it back on",
                "WARNING",
            )
        if config.storage.scratch.enable_customer_kms_key:
            yield Finding(
                ("storage", "scratch", "enable_customer_kms_key"),
                f"{LUSTRE_SCRATCH_2} file systems are always encrypted with an AWS-owned key and take "
                "no customer KMS key; remove the key or keep the data on the persistent file system",
            )


class LustreDataRepositoryValidator(Validator):
    name = "lustre-data-repository"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        scratch = config.storage.scratch
        if scratch.export_path is not None and scratch.import_path is None:
            yield Finding(
                ("storage", "scratch", "export_path"),
                "an export path needs an import_path on the same bucket; set import_path too",
            )
        if scratch.data_repository_associations and (
            scratch.import_path is not None or scratch.export_path is not None
        ):
            yield Finding(
                ("storage", "scratch", "data_repository_associations"),
                "cannot be combined with import_path/export_path (FSx refuses the legacy paths on a "
                "file system with associations); link the bucket one way: remove the paths or the "
                "associations",
            )
        for key, fs in (("scratch", scratch), ("persistent", config.storage.persistent)):
            paths = [a.file_system_path.rstrip("/") or "/" for a in fs.data_repository_associations]
            for index, path in enumerate(paths):
                for other_index, other in enumerate(paths[:index]):
                    nested = (
                        path == other
                        or path.startswith(other.rstrip("/") + "/")
                        or other.startswith(path.rstrip("/") + "/")
                    )
                    if nested:
                        yield Finding(
                            ("storage", key, "data_repository_associations", index, "file_system_path"),
                            f"{path} overlaps data_repository_associations[{other_index}] ({other}); "
                            "associations need disjoint, non-nested paths",
                        )


class S3LifecycleValidator(Validator):
    name = "s3-lifecycle"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        lifecycle = config.storage.data_bucket.lifecycle
        loc = ("storage", "data_bucket", "lifecycle")
        if lifecycle.enable_intelligent_tiering:
            if lifecycle.warm_after_days is not None:
                yield Finding(
                    (*loc, "warm_after_days"),
                    "is ignored with intelligent tiering (it moves objects to its infrequent tier "
                    "after 30 days by itself); remove it",
                    "WARNING",
                )
            for key, days, (low, high) in (
                ("cold_after_days", lifecycle.cold_after_days, IT_ARCHIVE_ACCESS_DAYS),
                ("archive_after_days", lifecycle.archive_after_days, IT_DEEP_ARCHIVE_ACCESS_DAYS),
            ):
                if days is not None and not low <= days <= high:
                    yield Finding(
                        (*loc, key),
                        f"{days} days is outside what S3 Intelligent-Tiering accepts for this tier "
                        f"({low}-{high})",
                    )
        tiers = [
            ("warm_after_days", lifecycle.warm_after_days),
            ("cold_after_days", lifecycle.cold_after_days),
            ("archive_after_days", lifecycle.archive_after_days),
        ]
        if lifecycle.enable_intelligent_tiering:
            tiers = tiers[1:]
        previous: tuple[str, int] | None = None
        for key, days in tiers:
            if days is None:
                continue
            if previous is not None and days <= previous[1]:
                yield Finding(
                    (*loc, key),
                    f"{days} days must come after {previous[0]} ({previous[1]} days): tiers go hot → warm → cold → archive",
                )
            previous = (key, days)


class ArchiveTierReadabilityValidator(Validator):
    """FSx for Lustre cannot read objects in the archive tiers without a restore: the prefixes it
    imports from must stay outside `archive_prefix`."""

    name = "archive-tier-readability"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        lifecycle = storage.data_bucket.lifecycle
        archives = (
            lifecycle.cold_after_days is not None or lifecycle.archive_after_days is not None
            if lifecycle.enable_intelligent_tiering
            else lifecycle.archive_after_days is not None
        )
        if not archives:
            return
        linked: list[tuple[Loc, str]] = []
        if storage.scratch.enabled and storage.scratch.import_path is not None:
            linked.append((("storage", "scratch", "import_path"), storage.scratch.import_path))
        for key, fs in (("scratch", storage.scratch), ("persistent", storage.persistent)):
            if not fs.enabled:
                continue
            for index, association in enumerate(fs.data_repository_associations):
                linked.append(
                    (
                        ("storage", key, "data_repository_associations", index, "bucket_prefix"),
                        association.bucket_prefix,
                    )
                )
        archive = lifecycle.archive_prefix.lstrip("/")
        for loc, prefix in linked:
            if prefix.lstrip("/").startswith(archive):
                where = (
                    f"under the archive prefix {archive!r}" if archive else "in a bucket archived as a whole"
                )
                yield Finding(
                    loc,
                    f"{prefix!r} is {where}: Lustre cannot read archived objects until they are "
                    "restored; link another prefix or set storage.data_bucket.lifecycle.archive_prefix",
                )


class LustreThroughputTargetValidator(Validator):
    """The design promises an aggregate throughput; say so when the sizes do not deliver it."""

    name = "lustre-throughput-target"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        storage = config.storage
        target = storage.target_aggregate_throughput_gbps
        if target is None:
            return
        baseline = throughput_model(config).aggregate_gbps
        if baseline < target:
            yield Finding(
                ("storage", "target_aggregate_throughput_gbps"),
                f"the Lustre sizes give {baseline:.1f} GB/s baseline, below the {target:g} GB/s target; "
                "add capacity or raise persistent.throughput_mbps_per_tib",
                "WARNING",
            )


# --- compliance -------------------------------------------------------------------------------
class TagCountValidator(Validator):
    """Every taggable resource gets the compliance tags; S3 objects accept only 10 tags."""

    name = "tag-count"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        # The compliance tags, plus the Name tag components set on their resources.
        count = len(config.tags) + ("Name" not in config.tags)
        if count > S3_OBJECT_MAX_TAGS:
            yield Finding(
                ("compliance", "extra_tags"),
                f"resources would carry {count} tags but S3 objects (the bootstrap scripts) accept at "
                f"most {S3_OBJECT_MAX_TAGS}; drop {count - S3_OBJECT_MAX_TAGS} extra tag(s)",
            )


# --- cluster ----------------------------------------------------------------------------------
class ClusterNameValidator(Validator):
    name = "cluster-name"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        cluster = config.cluster
        limit = PCLUSTER_CLUSTER_NAME_MAX_WITH_ACCOUNTING
        if cluster.slurm.accounting.enabled and len(cluster.name) > limit:
            yield Finding(
                ("cluster", "name"),
                f"{cluster.name!r} has {len(cluster.name)} characters; with Slurm accounting "
                f"ParallelCluster allows at most {limit}",
            )


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
                    f"{queue.name!r} is already the name of queues[{seen_queues[queue.name]}]; queue names must be unique",
                )
            seen_queues.setdefault(queue.name, qi)
            seen_resources: dict[str, int] = {}
            for ri, resource in enumerate(queue.compute_resources):
                loc = ("cluster", "queues", qi, "compute_resources", ri)
                if resource.name in seen_resources:
                    yield Finding(
                        (*loc, "name"),
                        f"{resource.name!r} is already used by compute_resources[{seen_resources[resource.name]}] "
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
                efa = queue.enable_efa if resource.enable_efa is None else resource.enable_efa
                spec = catalog.get(resource.instance_type)
                if efa and spec is not None and not spec.efa_supported:
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
        head_az = config.network.availability_zones[0]
        if head is not None and head_az not in head.azs(config.region):
            yield Finding(
                ("cluster", "head_node", "instance_type"),
                f"{head.name} is not offered in {head_az}, where the head node runs (first private "
                f"subnet); it is offered in {or_join(list(head.azs(config.region))) or 'no AZ of the region'}",
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
                f"{accounting.min_capacity_acu} is greater than max_capacity_acu ({accounting.max_capacity_acu})",
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
        if share.eligible_vcpus and share.share + 1e-9 < target:
            yield Finding(
                ("cluster", "spot", "min_share"),
                f"the queues put {share.share:.0%} of Spot-eligible max vCPUs on Spot, below the "
                f"target {target:.0%}; move capacity to SPOT queues",
                "WARNING",
            )


class ObservabilityValidator(Validator):
    name = "observability"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        budget = config.observability.budget
        if budget is not None:
            problem = alert_thresholds_problem(len(budget.alert_thresholds_percent))
            if problem is not None:
                yield Finding(("observability", "budget", "alert_thresholds_percent"), problem)
            for index, threshold in enumerate(budget.alert_thresholds_percent):
                if not 0 < threshold <= 1000:
                    yield Finding(
                        ("observability", "budget", "alert_thresholds_percent", index),
                        f"{threshold} is not a budget threshold; use a percentage between 0 and 1000",
                    )
        if config.environment == "prod" and not config.observability.notification_emails:
            yield Finding(
                ("observability", "notification_emails"),
                "prod has nobody to notify; alarms will only show in the console",
                "WARNING",
            )


class BudgetResearchGroupValidator(Validator):
    """A group budget filters on the ResearchGroup tag: the group must own something tagged with
    it (queues with that `research_group`, or the whole stack), or the budget stays at $0."""

    name = "budget-research-group"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        budget = config.observability.budget
        if budget is None:
            return
        owners = {q.research_group for q in config.cluster.queues if q.research_group is not None}
        owners.add(config.compliance.research_group)
        for group in budget.per_research_group:
            if group not in owners:
                yield Finding(
                    ("observability", "budget", "per_research_group", group),
                    f"no queue belongs to research group '{group}'; set research_group: {group} on "
                    "the queues it pays for, or remove the budget",
                )


VALIDATORS: tuple[Validator, ...] = (
    SubnetLayoutValidator(),
    AvailabilityZoneExistsValidator(),
    SshIngressValidator(),
    ComputeSubnetCapacityValidator(),
    LustreCapacityValidator(),
    LustreThroughputValidator(),
    LustreEncryptionValidator(),
    LustreDataRepositoryValidator(),
    S3LifecycleValidator(),
    ArchiveTierReadabilityValidator(),
    TagCountValidator(),
    LustreThroughputTargetValidator(),
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
    ObservabilityValidator(),
    BudgetResearchGroupValidator(),
)


def run_validators(config: StackConfig, catalog: InstanceCatalog) -> list[Finding]:
    findings: list[Finding] = []
    for validator in VALIDATORS:
        findings.extend(validator.validate(config, catalog))
    return findings
