"""What a change to a ParallelCluster config takes: in place, a compute-fleet stop, or a new cluster.

The table below restates, per config path, the update policy ParallelCluster 3.16.1 attaches to
that field in its own schema (`pcluster/schemas/cluster_schema.py`, `update_policy` metadata) and
the conditions its checkers apply (`pcluster/config/update_policy.py`). The schema test tier checks
the table against ParallelCluster's schema, so a drift shows up as a failing test, not a failed
update.

`classify_change(old, new)` sorts every changed path of two rendered configs into:

- `replace`: ParallelCluster refuses the update (UNSUPPORTED fields, a version change): the cluster
  has to be created anew;
- `needs_fleet_stop`: the update is accepted only with the compute fleet stopped;
- `rolling`: accepted while the fleet runs because `QueueUpdateStrategy` (DRAIN or TERMINATE)
  replaces the affected nodes;
- `live`: applied in place without touching running nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Policy(StrEnum):
    """ParallelCluster's update policies, folded into what they mean for a running cluster."""

    LIVE = "live"
    """SUPPORTED / IGNORED: applied in place."""
    TRAVERSE = "traverse"
    """An IGNORED section: added or removed as a whole, its fields are judged one by one."""
    QUEUE_UPDATE_STRATEGY = "queue_update_strategy"
    """Fleet stop, or DRAIN/TERMINATE replacing the queue's nodes."""
    RESIZE_ON_REMOVE = "resize_on_remove"
    """Adding queues/compute resources and raising MaxCount are live; removing or lowering needs
    a fleet stop or QueueUpdateStrategy TERMINATE."""
    FLEET_STOP_ON_REMOVE = "fleet_stop_on_remove"
    """Adding is live; removing needs a fleet stop."""
    SUBNETS = "subnets"
    """Queue subnets (MANAGED_FSX without a managed FSx): adding subnets is live, anything else
    follows QueueUpdateStrategy."""
    SHARED_STORAGE = "shared_storage"
    """Mounting/unmounting an existing EFS/FSx is live; /home can never change; anything else
    follows QueueUpdateStrategy."""
    FLEET_STOP = "fleet_stop"
    """COMPUTE_FLEET_STOP (and COMPUTE_AND_LOGIN_NODES_STOP): the fleet must be stopped."""
    REPLACE = "replace"
    """UNSUPPORTED: ParallelCluster refuses the update; a new cluster is needed."""


# ParallelCluster's policy name for each table policy, for the drift check against its schema.
PCLUSTER_POLICY_NAMES: dict[Policy, frozenset[str]] = {
    Policy.LIVE: frozenset({"SUPPORTED", "IGNORED", "SUPPORTED_UNLESS_ADC"}),
    Policy.TRAVERSE: frozenset({"IGNORED"}),
    Policy.QUEUE_UPDATE_STRATEGY: frozenset({"QUEUE_UPDATE_STRATEGY", "MANAGED_PLACEMENT_GROUP"}),
    Policy.RESIZE_ON_REMOVE: frozenset({"RESIZE_UPDATE_STRATEGY_ON_REMOVE"}),
    Policy.FLEET_STOP_ON_REMOVE: frozenset({"COMPUTE_FLEET_STOP_ON_REMOVE"}),
    Policy.SUBNETS: frozenset({"MANAGED_FSX"}),
    Policy.SHARED_STORAGE: frozenset({"SHARED_STORAGE_UPDATE_POLICY"}),
    Policy.FLEET_STOP: frozenset({"COMPUTE_FLEET_STOP", "COMPUTE_AND_LOGIN_NODES_STOP"}),
    Policy.REPLACE: frozenset({"UNSUPPORTED", "READ_ONLY_RESOURCE_BUCKET"}),
}

_Q = "Scheduling.SlurmQueues[]"
_CR = f"{_Q}.ComputeResources[]"

# Generic config path (list items as `[]`) → policy. A path not listed takes its closest listed
# ancestor's policy; a path with no listed ancestor is treated as REPLACE (ParallelCluster's
# default for a field without a policy is UNSUPPORTED).
UPDATE_POLICY_TABLE: dict[str, Policy] = {
    "Region": Policy.REPLACE,
    "Image": Policy.REPLACE,
    "Image.Os": Policy.REPLACE,
    "Image.CustomAmi": Policy.REPLACE,
    "Imds": Policy.REPLACE,
    "Imds.ImdsSupport": Policy.REPLACE,
    "CustomS3Bucket": Policy.REPLACE,
    "AdditionalPackages": Policy.REPLACE,
    "DeploymentSettings": Policy.REPLACE,
    "AdditionalResources": Policy.LIVE,
    "DevSettings": Policy.LIVE,
    "DirectoryService": Policy.FLEET_STOP,
    "Iam": Policy.TRAVERSE,
    "Iam.Roles": Policy.LIVE,
    "Iam.PermissionsBoundary": Policy.LIVE,
    "Iam.ResourcePrefix": Policy.REPLACE,
    "Tags": Policy.LIVE,
    "Tags[]": Policy.LIVE,
    "Tags[].Key": Policy.REPLACE,
    "Tags[].Value": Policy.LIVE,
    # HeadNode
    "HeadNode": Policy.LIVE,
    "HeadNode.InstanceType": Policy.REPLACE,
    "HeadNode.DisableSimultaneousMultithreading": Policy.REPLACE,
    "HeadNode.Networking": Policy.REPLACE,
    "HeadNode.Networking.SubnetId": Policy.REPLACE,
    "HeadNode.Networking.ElasticIp": Policy.REPLACE,
    "HeadNode.Networking.Proxy": Policy.REPLACE,
    "HeadNode.Networking.SecurityGroups": Policy.LIVE,
    "HeadNode.Networking.AdditionalSecurityGroups": Policy.LIVE,
    "HeadNode.Ssh": Policy.LIVE,
    "HeadNode.Ssh.KeyName": Policy.REPLACE,
    "HeadNode.Ssh.AllowedIps": Policy.LIVE,
    "HeadNode.LocalStorage": Policy.REPLACE,
    "HeadNode.SharedStorageType": Policy.REPLACE,
    "HeadNode.SharedStorageEfsSettings": Policy.REPLACE,
    "HeadNode.Dcv": Policy.REPLACE,
    "HeadNode.Dcv.AllowedIps": Policy.LIVE,
    "HeadNode.CustomActions": Policy.TRAVERSE,
    "HeadNode.CustomActions.OnNodeStart": Policy.REPLACE,
    "HeadNode.CustomActions.OnNodeConfigured": Policy.REPLACE,
    "HeadNode.CustomActions.OnNodeUpdated": Policy.LIVE,
    "HeadNode.Iam": Policy.LIVE,
    "HeadNode.Iam.InstanceProfile": Policy.REPLACE,
    "HeadNode.Iam.InstanceRole": Policy.LIVE,
    "HeadNode.Iam.AdditionalIamPolicies": Policy.LIVE,
    "HeadNode.Iam.S3Access": Policy.LIVE,
    "HeadNode.Imds": Policy.REPLACE,
    "HeadNode.Image": Policy.REPLACE,
    # Scheduling
    "Scheduling": Policy.REPLACE,
    "Scheduling.Scheduler": Policy.REPLACE,
    "Scheduling.ScalingStrategy": Policy.LIVE,
    "Scheduling.SlurmSettings": Policy.TRAVERSE,
    "Scheduling.SlurmSettings.ScaledownIdletime": Policy.FLEET_STOP,
    "Scheduling.SlurmSettings.Dns": Policy.REPLACE,
    "Scheduling.SlurmSettings.QueueUpdateStrategy": Policy.LIVE,
    "Scheduling.SlurmSettings.EnableMemoryBasedScheduling": Policy.FLEET_STOP,
    "Scheduling.SlurmSettings.Database": Policy.FLEET_STOP,
    "Scheduling.SlurmSettings.Database.DatabaseName": Policy.LIVE,
    "Scheduling.SlurmSettings.CustomSlurmSettings": Policy.LIVE,
    "Scheduling.SlurmSettings.CustomSlurmSettingsIncludeFile": Policy.LIVE,
    "Scheduling.SlurmSettings.MungeKeySecretArn": Policy.FLEET_STOP,
    "Scheduling.SlurmSettings.ExternalSlurmdbd": Policy.LIVE,
    "Scheduling.SlurmQueues": Policy.RESIZE_ON_REMOVE,
    f"{_Q}.CapacityType": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.AllocationStrategy": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.ComputeSettings": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.CustomActions": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.Image": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.CapacityReservationTarget": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.Networking": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.Networking.SubnetIds": Policy.SUBNETS,
    f"{_Q}.Networking.AssignPublicIp": Policy.REPLACE,
    f"{_Q}.Networking.SecurityGroups": Policy.LIVE,
    f"{_Q}.Networking.AdditionalSecurityGroups": Policy.LIVE,
    f"{_Q}.Networking.PlacementGroup": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.Networking.Proxy": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.Iam": Policy.LIVE,
    f"{_Q}.Iam.InstanceProfile": Policy.FLEET_STOP,
    f"{_Q}.Iam.InstanceRole": Policy.LIVE,
    f"{_Q}.Iam.AdditionalIamPolicies": Policy.LIVE,
    f"{_Q}.Iam.S3Access": Policy.LIVE,
    f"{_Q}.HealthChecks": Policy.LIVE,
    f"{_Q}.CustomSlurmSettings": Policy.LIVE,
    f"{_Q}.Tags": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_Q}.JobExclusiveAllocation": Policy.LIVE,
    f"{_Q}.ComputeResources": Policy.RESIZE_ON_REMOVE,
    f"{_CR}.InstanceType": Policy.FLEET_STOP,
    f"{_CR}.Instances": Policy.FLEET_STOP_ON_REMOVE,
    f"{_CR}.MaxCount": Policy.RESIZE_ON_REMOVE,
    f"{_CR}.MinCount": Policy.RESIZE_ON_REMOVE,
    f"{_CR}.SpotPrice": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.Efa": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.DisableSimultaneousMultithreading": Policy.FLEET_STOP,
    f"{_CR}.SchedulableMemory": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.CapacityReservationTarget": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.Networking": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.HealthChecks": Policy.LIVE,
    f"{_CR}.CustomSlurmSettings": Policy.LIVE,
    f"{_CR}.Tags": Policy.QUEUE_UPDATE_STRATEGY,
    f"{_CR}.StaticNodePriority": Policy.LIVE,
    f"{_CR}.DynamicNodePriority": Policy.LIVE,
    f"{_CR}.LaunchTemplateOverrides": Policy.QUEUE_UPDATE_STRATEGY,
    # SharedStorage
    "SharedStorage": Policy.SHARED_STORAGE,
    "SharedStorage[].MountDir": Policy.SHARED_STORAGE,
    "SharedStorage[].Name": Policy.REPLACE,
    "SharedStorage[].StorageType": Policy.REPLACE,
    "SharedStorage[].FsxLustreSettings": Policy.TRAVERSE,
    "SharedStorage[].FsxLustreSettings.FileSystemId": Policy.REPLACE,
    "SharedStorage[].EfsSettings": Policy.TRAVERSE,
    "SharedStorage[].EfsSettings.FileSystemId": Policy.REPLACE,
    "SharedStorage[].EfsSettings.EncryptionInTransit": Policy.REPLACE,
    "SharedStorage[].EfsSettings.IamAuthorization": Policy.REPLACE,
    # Monitoring
    "Monitoring": Policy.TRAVERSE,
    "Monitoring.DetailedMonitoring": Policy.FLEET_STOP,
    "Monitoring.Logs": Policy.REPLACE,
    "Monitoring.Logs.CloudWatch": Policy.REPLACE,
    "Monitoring.Logs.CloudWatch.Enabled": Policy.REPLACE,
    "Monitoring.Logs.CloudWatch.RetentionInDays": Policy.LIVE,
    "Monitoring.Logs.CloudWatch.DeletionPolicy": Policy.LIVE,
    "Monitoring.Logs.Rotation": Policy.REPLACE,
    "Monitoring.Dashboards": Policy.LIVE,
    "Monitoring.Alarms": Policy.LIVE,
}

# Lists whose items are matched by a key (ParallelCluster's `update_key`), not compared whole.
KEYED_LISTS: dict[str, str] = {
    "Tags": "Key",
    "Scheduling.SlurmQueues": "Name",
    f"{_Q}.ComputeResources": "Name",
    f"{_Q}.Tags": "Key",
    f"{_CR}.Tags": "Key",
    f"{_CR}.Instances": "InstanceType",
    "SharedStorage": "Name",
    "HeadNode.Iam.AdditionalIamPolicies": "Policy",
    "HeadNode.Iam.S3Access": "BucketName",
    f"{_Q}.Iam.AdditionalIamPolicies": "Policy",
    f"{_Q}.Iam.S3Access": "BucketName",
}

# Mappings compared as one value (script sequences, free-form Slurm settings).
WHOLE_VALUES = frozenset(
    {
        "HeadNode.CustomActions.OnNodeStart",
        "HeadNode.CustomActions.OnNodeConfigured",
        "HeadNode.CustomActions.OnNodeUpdated",
        f"{_Q}.CustomActions.OnNodeStart",
        f"{_Q}.CustomActions.OnNodeConfigured",
        f"{_Q}.CustomSlurmSettings",
        f"{_CR}.CustomSlurmSettings",
    }
)


class NotKnownYet:
    """A config value Pulumi only knows once the resources it comes from exist (an unknown during
    preview). It equals nothing, so every path that holds one counts as changed, and the outcome
    is what that path's change would take: the plan says "may be replaced" rather than guess
    "update" and then replace during `pulumi up`."""

    _instance: NotKnownYet | None = None

    def __new__(cls) -> NotKnownYet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return "(known after apply)"


NOT_KNOWN_YET = NotKnownYet()
"""The one placeholder for a preview unknown inside a config passed to `classify_change`."""


def _is_unknown(value: Any) -> bool:
    return value is NOT_KNOWN_YET


VERSION_PATH = "ParallelClusterVersion"
"""Pseudo path reported when the ParallelCluster version differs (it is not part of the config)."""

_QUEUE_UPDATE_STRATEGIES_THAT_REPLACE_NODES = ("DRAIN", "TERMINATE")


@dataclass(frozen=True)
class FieldChange:
    path: str
    """Concrete path, list items by key: `Scheduling.SlurmQueues[gpu].ComputeResources[p4d].MaxCount`."""
    policy: Policy
    outcome: str
    """`replace`, `needs_fleet_stop`, `rolling` or `live`."""
    old: Any
    new: Any
    reason: str


@dataclass(frozen=True)
class ChangeClass:
    replace: list[str] = field(default_factory=list)
    """Paths ParallelCluster will not update in place: a new cluster is needed."""
    needs_fleet_stop: list[str] = field(default_factory=list)
    """Paths that need the compute fleet stopped for the update."""
    rolling: list[str] = field(default_factory=list)
    """Paths applied while the fleet runs, by QueueUpdateStrategy DRAIN/TERMINATE replacing nodes."""
    live: list[str] = field(default_factory=list)
    """Paths applied in place."""
    changes: list[FieldChange] = field(default_factory=list)
    """Every change with its policy and the reason for its outcome."""

    @property
    def requires_replacement(self) -> bool:
        return bool(self.replace)

    @property
    def requires_fleet_stop(self) -> bool:
        return bool(self.needs_fleet_stop)

    @property
    def unchanged(self) -> bool:
        return not self.changes

    def reasons(self, outcome: str) -> list[str]:
        return [f"{c.path}: {c.reason}" for c in self.changes if c.outcome == outcome]


def generic_path(path: str) -> str:
    """`SlurmQueues[gpu].ComputeResources[p4d].MaxCount` → `SlurmQueues[].ComputeResources[].MaxCount`."""
    return re.sub(r"\[[^\]]*\]", "[]", path)


def policy_for(path: str) -> tuple[Policy, bool]:
    """The policy of a concrete or generic path and whether the table lists that exact path."""
    generic = generic_path(path)
    if generic in UPDATE_POLICY_TABLE:
        return UPDATE_POLICY_TABLE[generic], True
    candidate = generic
    while candidate:
        # A list item takes its list's policy; a field its section's.
        candidate = candidate[:-2] if candidate.endswith("[]") else candidate.rpartition(".")[0]
        policy = UPDATE_POLICY_TABLE.get(candidate)
        if policy is not None and policy is not Policy.TRAVERSE:
            return policy, False
    return Policy.REPLACE, False


@dataclass
class _RawChange:
    path: str
    old: Any
    new: Any
    is_list_item: bool = False


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _diff(old: Any, new: Any, path: str, out: list[_RawChange]) -> None:
    generic = generic_path(path)
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and generic not in WHOLE_VALUES:
        for key in list(old) + [k for k in new if k not in old]:
            _diff_member(old.get(key), new.get(key), _join(path, key), out)
        return
    if generic in KEYED_LISTS and isinstance(old, list | None) and isinstance(new, list | None):
        key = KEYED_LISTS[generic]
        old_items = {item.get(key): item for item in old or [] if isinstance(item, dict)}
        new_items = {item.get(key): item for item in new or [] if isinstance(item, dict)}
        for name in list(old_items) + [n for n in new_items if n not in old_items]:
            before, after = old_items.get(name), new_items.get(name)
            if before is not None and after is not None:
                _diff(before, after, f"{path}[{name}]", out)
            elif before != after:
                out.append(_RawChange(f"{path}[{name}]", before, after, is_list_item=True))
        return
    out.append(_RawChange(path, old, new))


def _diff_member(old: Any, new: Any, path: str, out: list[_RawChange]) -> None:
    if old == new:
        return
    generic = generic_path(path)
    one_sided_section = (old is None and isinstance(new, dict)) or (new is None and isinstance(old, dict))
    if one_sided_section and UPDATE_POLICY_TABLE.get(generic) is Policy.TRAVERSE:
        # ParallelCluster walks into an IGNORED section that was added or removed.
        _diff(old or {}, new or {}, path, out)
        return
    if generic in KEYED_LISTS:
        _diff(old, new, path, out)
        return
    if one_sided_section or not (isinstance(old, dict) and isinstance(new, dict)):
        out.append(_RawChange(path, old, new))
        return
    _diff(old, new, path, out)


def _queue_update_strategy(config: dict[str, Any]) -> str:
    settings = (config.get("Scheduling") or {}).get("SlurmSettings") or {}
    return str(settings.get("QueueUpdateStrategy", "COMPUTE_FLEET_STOP"))


def _int(value: Any, default: int) -> int:
    return int(value) if value is not None else default


def _may_be(outcome: tuple[str, str], change: _RawChange) -> tuple[str, str]:
    """The outcome of a change whose new value is not known yet, worded as a possibility."""
    if not _contains_unknown(change.new):
        return outcome
    return outcome[0], f"value known only after apply; if it changes: {outcome[1]}"


def _contains_unknown(value: Any) -> bool:
    if _is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_unknown(v) for v in value)
    return False


def _cr_counts_delta(changes: list[_RawChange], cr_path: str, key: str) -> int | None:
    for change in changes:
        if change.path == f"{cr_path}.{key}":
            if _contains_unknown(change.new):
                return None
            default = 10 if key == "MaxCount" else 0
            return _int(change.new, default) - _int(change.old, default)
    return None


def _is_home(change: _RawChange) -> bool:
    return any(
        isinstance(v, dict) and v.get("MountDir") in ("home", "/home") for v in (change.old, change.new)
    )


def _is_external_storage(change: _RawChange) -> bool:
    item = change.new if isinstance(change.new, dict) else change.old
    if not isinstance(item, dict):
        return False
    settings = item.get("FsxLustreSettings") or item.get("EfsSettings") or {}
    return item.get("StorageType") in ("Efs", "FsxLustre") and "FileSystemId" in settings


def _outcome(
    change: _RawChange, policy: Policy, strategy: str, all_changes: list[_RawChange]
) -> tuple[str, str]:
    in_queue = generic_path(change.path).startswith("Scheduling.SlurmQueues")
    strategy_replaces_nodes = strategy in _QUEUE_UPDATE_STRATEGIES_THAT_REPLACE_NODES
    stop_or_strategy = (
        ("rolling", f"QueueUpdateStrategy {strategy} replaces the affected nodes")
        if strategy_replaces_nodes and in_queue
        else (
            "needs_fleet_stop",
            "needs the compute fleet stopped (QueueUpdateStrategy is COMPUTE_FLEET_STOP)",
        )
    )
    if policy in (Policy.LIVE, Policy.TRAVERSE):
        return "live", "updated in place"
    if policy is Policy.REPLACE:
        return "replace", "ParallelCluster cannot update this in place; a new cluster is needed"
    if policy is Policy.FLEET_STOP:
        return "needs_fleet_stop", "ParallelCluster applies this only with the compute fleet stopped"
    if policy is Policy.QUEUE_UPDATE_STRATEGY:
        return stop_or_strategy
    if policy is Policy.FLEET_STOP_ON_REMOVE:
        if change.is_list_item and change.old is None:
            return "live", "added in place"
        return "needs_fleet_stop", "removing it needs the compute fleet stopped"
    if policy is Policy.SUBNETS:
        if (
            isinstance(change.old, list)
            and isinstance(change.new, list)
            and set(change.old) <= set(change.new)
        ):
            return "live", "subnets added in place"
        return stop_or_strategy
    if policy is Policy.SHARED_STORAGE:
        if change.is_list_item and _is_home(change):
            return "replace", "the /home directory cannot change during an update"
        if change.is_list_item and _is_external_storage(change):
            return "live", "an existing file system is mounted/unmounted in place"
        if strategy_replaces_nodes:
            return "rolling", f"QueueUpdateStrategy {strategy} replaces the compute nodes"
        return (
            "needs_fleet_stop",
            "needs the compute fleet stopped (QueueUpdateStrategy is COMPUTE_FLEET_STOP)",
        )
    # RESIZE_ON_REMOVE
    if change.is_list_item and change.old is None:
        return "live", "added in place"
    key = change.path.rsplit(".", 1)[-1]
    if _contains_unknown(change.new):
        pass  # it may shrink: judged as a shrink below
    elif key == "MaxCount" and _int(change.new, 10) >= _int(change.old, 10):
        return "live", "MaxCount raised in place"
    elif key == "MinCount":
        cr_path = change.path.rsplit(".", 1)[0]
        max_delta = _cr_counts_delta(all_changes, cr_path, "MaxCount")
        if max_delta is not None and max_delta >= _int(change.new, 0) - _int(change.old, 0):
            return "live", "MinCount raised with MaxCount raised at least as much"
    if strategy == "TERMINATE":
        return "rolling", "QueueUpdateStrategy TERMINATE removes the nodes (and their running jobs)"
    return (
        "needs_fleet_stop",
        "removing or shrinking capacity needs the compute fleet stopped or QueueUpdateStrategy TERMINATE",
    )


def classify_change(
    old_config: dict[str, Any],
    new_config: dict[str, Any],
    *,
    old_version: str | None = None,
    new_version: str | None = None,
) -> ChangeClass:
    """Sort the differences between two rendered cluster configs by what applying them takes.

    `old_version`/`new_version` are the ParallelCluster versions the configs are deployed with;
    when both are given and differ, the change is a replacement (ParallelCluster refuses updates
    across versions).
    """
    raw: list[_RawChange] = []
    _diff(old_config, new_config, "", raw)
    strategy = _queue_update_strategy(new_config)
    changes: list[FieldChange] = []
    if old_version is not None and new_version is not None and old_version != new_version:
        changes.append(
            FieldChange(
                VERSION_PATH,
                Policy.REPLACE,
                "replace",
                old_version,
                new_version,
                "ParallelCluster refuses updates across versions; a new cluster is needed",
            )
        )
    for change in raw:
        policy, _ = policy_for(change.path)
        outcome, reason = _may_be(_outcome(change, policy, strategy, raw), change)
        changes.append(FieldChange(change.path, policy, outcome, change.old, change.new, reason))
    buckets: dict[str, list[str]] = {"replace": [], "needs_fleet_stop": [], "rolling": [], "live": []}
    for item in changes:
        buckets[item.outcome].append(item.path)
    return ChangeClass(
        replace=buckets["replace"],
        needs_fleet_stop=buckets["needs_fleet_stop"],
        rolling=buckets["rolling"],
        live=buckets["live"],
        changes=changes,
    )


__all__ = [
    "KEYED_LISTS",
    "NOT_KNOWN_YET",
    "UPDATE_POLICY_TABLE",
    "VERSION_PATH",
    "ChangeClass",
    "FieldChange",
    "Policy",
    "classify_change",
    "generic_path",
    "policy_for",
]
