"""The ParallelCluster 3 cluster configuration, rendered from the stack config.

A pure function: no Pulumi, no AWS. It takes the validated config models, the ids the other
components resolved (`ClusterRefs`) and the stack's environment profile, and returns the mapping
ParallelCluster loads as its YAML cluster config (key names as in ParallelCluster 3.16.1's
`cluster_schema.py`). The wiring calls it inside `Output.all(...).apply(...)` and hands the result
to the `ParallelCluster` component, which adds the keys it owns because it creates what they name
(instance profiles, the Lambda role, bootstrap scripts, the accounting database, the stack marker
tag: `hpc_platform.pcluster.completion`); the tests call both with literal ids.

What it decides, so the decisions live in one place:
- nodes join our security groups through `AdditionalSecurityGroups`: ParallelCluster still
  creates and manages its own head/compute groups (Slurm traffic between them), ours add EFA
  (all traffic within the group), Lustre, EFS and the accounting database;
- EFA queues run in exactly one subnet with our named cluster placement group;
- storage is never owned by the cluster: FSx and EFS are mounted by file system id;
- the accounting database is referenced by secret ARN, never by password;
- SSH: ParallelCluster's own head-node group opens port 22 to `HeadNode.Ssh.AllowedIps` (one
  CIDR, 0.0.0.0/0 when omitted), so it is always set, to the VPC's base address as a /32 (see
  `closed_ssh_cidr`); SSH from `network.ssh_ingress_cidrs` comes in through our head-node group,
  one rule per CIDR, which the policy pack can see;
- IMDSv2 only, encrypted root volumes, instance profiles we create (least privilege, added by
  the component);
- instance-store (NVMe) volumes mount at `NODE_LOCAL_SCRATCH_DIR`, never at ParallelCluster's
  default `/scratch`, which is where the shared Lustre scratch file system is mounted;
- ParallelCluster creates no IAM roles: the API's default policies allow it none (restricted IAM
  mode), so the cluster stack's Lambda functions run with a role we create as well (the component
  adds it);
- environment choices (per-minute metrics, keeping logs after deletion) come from the stack's
  `EnvironmentProfile`, never from its name;
- `JobRequeue=1` (unless `slurm.enable_job_requeue` is off): a job on a reclaimed Spot node goes
  back to the queue; Slurm has no per-partition requeue option, so this cluster-wide default is
  what Spot partitions get;
- reserved capacity is a compute resource's `CapacityReservationTarget` (a reservation id or a
  resource group ARN); a CAPACITY_BLOCK queue gets no allocation strategy and no placement group
  (the block brings its own placement; ParallelCluster warns when one is set);
- a queue with its own `research_group` carries it as a queue-level `ResearchGroup` tag:
  ParallelCluster tags a queue's instances and volumes with cluster `Tags`, then queue `Tags`
  over them, so the group's value is the one that lands and its budget counts those nodes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hpc_platform.domain.config.models import (
    ClusterConfig,
    ComputeResourceConfig,
    NetworkConfig,
    QueueConfig,
    StackConfig,
)
from hpc_platform.domain.environments import EnvironmentProfile, profile
from hpc_platform.domain.limits import RESEARCH_GROUP_TAG
from hpc_platform.domain.placement import exclusive_allocation, needs_placement_group, uses_efa
from hpc_platform.pcluster.completion import check_tag_keys

# CloudWatch Logs retention values ParallelCluster's schema accepts (a subset of CloudWatch's).
PCLUSTER_LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
NODE_LOCAL_SCRATCH_DIR = "/local_scratch"
"""Where each node's instance-store volumes are mounted. ParallelCluster's default is `/scratch`,
the shared Lustre scratch mount: the two would clash on every type with instance store."""
DEFAULT_ALLOCATION_STRATEGY = {"ONDEMAND": "lowest-price", "SPOT": "price-capacity-optimized"}


@dataclass(frozen=True)
class ResolvedMount:
    """A `SharedStorageMount` whose file system id is known."""

    name: str
    mount_dir: str
    storage_type: Literal["FsxLustre", "Efs"]
    file_system_id: str
    access_point_id: str | None = None


@dataclass(frozen=True)
class ClusterRefs:
    """Everything the renderer needs that other components create, as resolved plain values (the
    ParallelCluster component's own resources are added by it, not here)."""

    head_node_subnet_id: str
    queue_subnet_ids: Mapping[str, Sequence[str]]
    """Queue name → compute subnets (exactly one for EFA queues)."""
    head_node_security_group_ids: Sequence[str]
    """Extra security groups for the head node (its own group and the cluster-nodes group)."""
    compute_security_group_ids: Sequence[str]
    """Extra security groups for compute nodes (the cluster-nodes/EFA group)."""
    placement_group_names: Mapping[str, str]
    """EFA queue → name of its cluster placement group."""
    shared_storage: Sequence[ResolvedMount] = ()


def render_cluster_config(
    config: StackConfig, refs: ClusterRefs, environment: EnvironmentProfile | None = None
) -> dict[str, Any]:
    """The ParallelCluster cluster config for `config.cluster`, wired to `refs`, without the keys
    the component owns. `environment`: the stack's profile (default: its environment's row)."""
    cluster = config.cluster
    environment = environment or profile(config.environment)
    rendered: dict[str, Any] = {
        "Region": config.region,
        "Image": {"Os": cluster.os},
        "Imds": {"ImdsSupport": "v2.0"},
        "HeadNode": _head_node(cluster, config.network, refs),
        "Scheduling": {
            "Scheduler": "slurm",
            "SlurmSettings": _slurm_settings(cluster),
            "SlurmQueues": [_queue(queue, refs) for queue in cluster.queues],
        },
    }
    if refs.shared_storage:
        rendered["SharedStorage"] = [_shared_storage(mount) for mount in refs.shared_storage]
    rendered["Monitoring"] = _monitoring(config, environment)
    rendered["Tags"] = _tags(config)
    return rendered


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
def _head_node(cluster: ClusterConfig, network: NetworkConfig, refs: ClusterRefs) -> dict[str, Any]:
    head = cluster.head_node
    node: dict[str, Any] = {
        "InstanceType": head.instance_type,
        "Networking": {
            "SubnetId": refs.head_node_subnet_id,
            **_security_groups(refs.head_node_security_group_ids),
        },
    }
    ssh: dict[str, Any] = {"KeyName": head.ssh_key_name} if head.ssh_key_name else {}
    ssh["AllowedIps"] = closed_ssh_cidr(network)
    node["Ssh"] = ssh
    node["LocalStorage"] = {
        "RootVolume": {"Size": head.root_volume_gib, "Encrypted": True},
        "EphemeralVolume": {"MountDir": NODE_LOCAL_SCRATCH_DIR},
    }
    node["Imds"] = {"Secured": True}
    return node


def _slurm_settings(cluster: ClusterConfig) -> dict[str, Any]:
    slurm = cluster.slurm
    settings: dict[str, Any] = {
        "ScaledownIdletime": slurm.scaledown_idletime_minutes,
        "QueueUpdateStrategy": slurm.queue_update_strategy,
        "EnableMemoryBasedScheduling": slurm.enable_memory_based_scheduling,
    }
    settings["CustomSlurmSettings"] = custom_slurm_settings(cluster, accounting=slurm.accounting.enabled)
    return settings


def custom_slurm_settings(cluster: ClusterConfig, accounting: bool) -> list[dict[str, Any]]:
    """slurm.conf lines ParallelCluster has no first-class setting for: job requeue and multifactor
    fair share.

    `JobRequeue` is stated explicitly (it is Slurm's default, but ParallelCluster's slurm.conf
    leaves it implicit): a job on a reclaimed Spot node is requeued, not failed. Slurm has no
    partition option for requeue, so the cluster-wide default is what Spot partitions get. Fair
    share needs accounting (slurmdbd keeps the usage it decays); without it only the priority
    weights that do not depend on usage would apply, so none are rendered.
    """
    slurm = cluster.slurm
    # Values as strings: they become slurm.conf text, and numbers passed through Pulumi's
    # property protocol come back as floats ("10000.0" is not a Slurm weight).
    settings: list[dict[str, Any]] = [{"JobRequeue": "1" if slurm.enable_job_requeue else "0"}]
    fair_share = slurm.fair_share
    if not (fair_share.enabled and accounting):
        return settings
    return [
        *settings,
        {"PriorityType": "priority/multifactor"},
        {"PriorityWeightFairshare": str(fair_share.priority_weight_fairshare)},
        {"PriorityWeightAge": str(fair_share.priority_weight_age)},
        {"PriorityWeightJobSize": str(fair_share.priority_weight_job_size)},
        # Slurm time format days-hours.
        {"PriorityDecayHalfLife": f"{fair_share.priority_decay_half_life_days}-0"},
        # Jobs need a valid association (account/user), and its limits are enforced.
        {"AccountingStorageEnforce": "associations,limits,qos"},
    ]


def _queue(queue: QueueConfig, refs: ClusterRefs) -> dict[str, Any]:
    subnets = list(refs.queue_subnet_ids.get(queue.name, ()))
    if not subnets:
        raise ValueError(f"queue {queue.name}: no compute subnet was resolved for it")
    if queue.enable_efa and len(subnets) != 1:
        raise ValueError(
            f"queue {queue.name}: an EFA queue must run in exactly one subnet, got {len(subnets)}"
        )
    networking: dict[str, Any] = {
        "SubnetIds": subnets,
        **_security_groups(refs.compute_security_group_ids),
    }
    capacity_block = queue.capacity_type == "CAPACITY_BLOCK"
    if needs_placement_group(queue.enable_efa, queue.capacity_type):
        group = refs.placement_group_names.get(queue.name)
        if not group:
            raise ValueError(f"queue {queue.name}: EFA is on but no placement group was resolved for it")
        networking["PlacementGroup"] = {"Enabled": True, "Name": group}
    # ParallelCluster (SingleInstanceTypeSubnetValidator) accepts several subnets only for compute
    # resources that list their types under `Instances`; one subnet keeps the plain `InstanceType`.
    multi_subnet = len(subnets) > 1
    rendered: dict[str, Any] = {"Name": queue.name, "CapacityType": queue.capacity_type}
    # ParallelCluster refuses an allocation strategy on a CAPACITY_BLOCK queue.
    if not capacity_block:
        rendered["AllocationStrategy"] = (
            queue.allocation_strategy or DEFAULT_ALLOCATION_STRATEGY[queue.capacity_type]
        )
    rendered |= {
        "ComputeResources": [
            {
                "Name": resource.name,
                **(
                    {"Instances": [{"InstanceType": resource.instance_type}]}
                    if multi_subnet
                    else {"InstanceType": resource.instance_type}
                ),
                "MinCount": resource.min_count,
                "MaxCount": resource.max_count,
                "DisableSimultaneousMultithreading": resource.disable_hyperthreading,
                "Efa": {"Enabled": uses_efa(queue.enable_efa, resource.enable_efa)},
                **_capacity_reservation_target(resource),
            }
            for resource in queue.compute_resources
        ],
        "Networking": networking,
        "ComputeSettings": {
            "LocalStorage": {
                "RootVolume": {"Encrypted": True},
                "EphemeralVolume": {"MountDir": NODE_LOCAL_SCRATCH_DIR},
            }
        },
        "JobExclusiveAllocation": exclusive_allocation(queue.enable_efa, queue.job_exclusive_allocation),
    }
    if queue.research_group is not None:
        rendered["Tags"] = [{"Key": RESEARCH_GROUP_TAG, "Value": queue.research_group}]
    return rendered


def _capacity_reservation_target(resource: ComputeResourceConfig) -> dict[str, Any]:
    """`CapacityReservationTarget` of a compute resource that names reserved capacity."""
    reservation = resource.capacity_reservation
    if reservation is None:
        return {}
    if reservation.id is not None:
        return {"CapacityReservationTarget": {"CapacityReservationId": reservation.id}}
    return {
        "CapacityReservationTarget": {"CapacityReservationResourceGroupArn": reservation.resource_group_arn}
    }


def _shared_storage(mount: ResolvedMount) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Name": mount.name,
        "MountDir": mount.mount_dir,
        "StorageType": mount.storage_type,
    }
    if mount.storage_type == "FsxLustre":
        entry["FsxLustreSettings"] = {"FileSystemId": mount.file_system_id}
    else:
        # The file-system policy denies clients without TLS, so transit encryption must stay on.
        entry["EfsSettings"] = {"FileSystemId": mount.file_system_id, "EncryptionInTransit": True}
        if mount.access_point_id:
            entry["EfsSettings"]["AccessPointId"] = mount.access_point_id
    return entry


def _monitoring(config: StackConfig, environment: EnvironmentProfile) -> dict[str, Any]:
    return {
        "DetailedMonitoring": environment.detailed_monitoring,
        "Logs": {
            "CloudWatch": {
                "Enabled": True,
                "RetentionInDays": log_retention_days(config.observability.log_retention_days),
                "DeletionPolicy": "Retain" if environment.retain_cluster_logs else "Delete",
            }
        },
        "Dashboards": {"CloudWatch": {"Enabled": True}},
        "Alarms": {"Enabled": True},
    }


def _tags(config: StackConfig) -> list[dict[str, str]]:
    """The compliance tags: ParallelCluster's own resources are outside the stack transform, so
    they get them through the config (the component adds the stack marker)."""
    tags = dict(config.tags)
    check_tag_keys(tags)
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def log_retention_days(days: int) -> int:
    """The configured retention, raised to the next value ParallelCluster accepts (never lowered:
    logs are kept at least as long as asked)."""
    for allowed in PCLUSTER_LOG_RETENTION_DAYS:
        if allowed >= days:
            return allowed
    return PCLUSTER_LOG_RETENTION_DAYS[-1]


def closed_ssh_cidr(network: NetworkConfig) -> str:
    """`HeadNode.Ssh.AllowedIps` for ParallelCluster's own head-node group: the VPC's base address
    as a /32. That address is the network address of the VPC's first block, which AWS reserves in
    any subnet that starts there and never assigns, so the rule lets no one in, and ParallelCluster's
    schema takes it (a CIDR or a prefix list; an empty value is not accepted, and omitting the key
    means 0.0.0.0/0). Allowed SSH sources are rules on our head-node group instead, which hold any
    number of CIDRs where ParallelCluster's setting holds one."""
    return f"{ipaddress.IPv4Network(network.vpc_cidr).network_address}/32"


def _security_groups(ids: Sequence[str]) -> dict[str, Any]:
    return {"AdditionalSecurityGroups": list(ids)} if ids else {}


__all__ = [
    "DEFAULT_ALLOCATION_STRATEGY",
    "PCLUSTER_LOG_RETENTION_DAYS",
    "ClusterRefs",
    "ResolvedMount",
    "closed_ssh_cidr",
    "custom_slurm_settings",
    "log_retention_days",
    "render_cluster_config",
]
