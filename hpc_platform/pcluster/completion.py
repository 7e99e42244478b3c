"""The keys of a ParallelCluster cluster config that the `ParallelCluster` component owns.

A pure function: no Pulumi, no AWS. Whoever renders the cluster config (the application's
renderer, or a library user) leaves out what only the component knows, because it creates it:

- the instance profiles of the head node and of every queue (`HeadNode.Iam.InstanceProfile`,
  `SlurmQueues[].Iam.InstanceProfile`) and the cluster stack's Lambda role
  (`Iam.Roles.LambdaFunctionsRole`);
- the bootstrap scripts (`HeadNode.CustomActions` and `SlurmQueues[].CustomActions`): the Slurm
  metrics agent on the head node (run again after every update), the EFA check on nodes of EFA
  queues, node tuning on every compute node;
- the accounting database (`Scheduling.SlurmSettings.Database`), referenced by secret ARN only;
- the stack marker tag (`Tags`), which the dynamic provider matches to adopt a cluster.

`complete_cluster_config` adds them, keeping the order of keys the renderer would have given
them, and refuses a config that already sets one of them.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpc_platform.domain.rules import reserved_tag_keys, reserved_tag_problem
from hpc_platform.pcluster import STACK_MARKER_TAG

SLURMDBD_PORT = 3306
# The prefix ParallelCluster reserves for its own tags.
PCLUSTER_RESERVED_TAG_PREFIX = "parallelcluster:"


@dataclass(frozen=True)
class ScriptRef:
    """A bootstrap script in S3 and the arguments it is run with."""

    url: str
    """`s3://bucket/key`."""
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseRef:
    """Where slurmdbd stores accounting data. The password is only ever a secret ARN."""

    host: str
    user_name: str
    password_secret_arn: str
    port: int = SLURMDBD_PORT

    @property
    def uri(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class OwnedRefs:
    """What the component created, as resolved plain values."""

    head_node_instance_profile_arn: str
    compute_instance_profile_arn: str
    lambda_functions_role_arn: str
    head_node_scripts: Sequence[ScriptRef] = ()
    """Run on the head node once configured (and again after each cluster update)."""
    compute_scripts: Sequence[ScriptRef] = ()
    """Run on every compute node once configured."""
    efa_compute_scripts: Sequence[ScriptRef] = ()
    """Run, before `compute_scripts`, on nodes of the queues in `efa_queues`."""
    efa_queues: Collection[str] = ()
    """Names of the queues whose nodes run `efa_compute_scripts`."""
    database: DatabaseRef | None = None
    """Slurm accounting database; None: accounting off."""
    stack_marker: str = ""
    """`<project>/<stack>`: the STACK_MARKER_TAG value."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Cluster tags under the config's own `Tags` (a config tag of the same key wins)."""


def complete_cluster_config(config: Mapping[str, Any], refs: OwnedRefs) -> dict[str, Any]:
    """`config` with the component-owned keys added (a new mapping; `config` is not changed)."""
    completed = dict(config)
    _refuse_owned(config)

    head = dict(completed.get("HeadNode") or {})
    head = _put(
        head,
        "Iam",
        {**(head.get("Iam") or {}), "InstanceProfile": refs.head_node_instance_profile_arn},
        before=("Imds", "CustomActions"),
    )
    if refs.head_node_scripts:
        sequence = _sequence(refs.head_node_scripts)
        # OnNodeConfigured cannot change after creation; OnNodeUpdated can, and re-runs the
        # scripts after every update, so a changed agent reaches the head node without a new cluster.
        head["CustomActions"] = {"OnNodeConfigured": sequence, "OnNodeUpdated": sequence}
    completed["HeadNode"] = head

    scheduling = dict(completed.get("Scheduling") or {})
    settings = dict(scheduling.get("SlurmSettings") or {})
    if refs.database is not None:
        database = {
            "Uri": refs.database.uri,
            "UserName": refs.database.user_name,
            "PasswordSecretArn": refs.database.password_secret_arn,
        }
        settings = _put(settings, "Database", database, before=("CustomSlurmSettings",))
    scheduling["SlurmSettings"] = settings
    scheduling["SlurmQueues"] = [_queue(queue, refs) for queue in scheduling.get("SlurmQueues") or []]
    completed["Scheduling"] = scheduling

    iam = dict(completed.get("Iam") or {})
    iam["Roles"] = {**(iam.get("Roles") or {}), "LambdaFunctionsRole": refs.lambda_functions_role_arn}
    completed = _put(completed, "Iam", iam, before=("SharedStorage", "Monitoring", "Tags"))

    tags = {**refs.tags, **{tag["Key"]: tag["Value"] for tag in completed.get("Tags") or []}}
    if refs.stack_marker:
        tags[STACK_MARKER_TAG] = refs.stack_marker
    check_tag_keys(tags)
    if tags:
        completed["Tags"] = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
    return completed


def spot_queue_names(config: Mapping[str, Any]) -> list[str]:
    """Names of the config's Spot queues, in config order."""
    return [
        str(queue["Name"])
        for queue in (config.get("Scheduling") or {}).get("SlurmQueues") or []
        if queue.get("CapacityType") == "SPOT"
    ]


def compute_subnet_ids(config: Mapping[str, Any]) -> list[str]:
    """Every subnet a queue of the config launches nodes in, sorted, each once."""
    return sorted(
        {
            str(subnet)
            for queue in (config.get("Scheduling") or {}).get("SlurmQueues") or []
            for subnet in (queue.get("Networking") or {}).get("SubnetIds") or []
        }
    )


def ssh_key_name(config: Mapping[str, Any]) -> str | None:
    """The head node's EC2 key pair (`HeadNode.Ssh.KeyName`), if any."""
    key = ((config.get("HeadNode") or {}).get("Ssh") or {}).get("KeyName")
    return str(key) if key else None


def check_tag_keys(tags: Collection[str]) -> None:
    """Guard for direct library use; the stack's `reserved-tag-key` validator applies the same rule."""
    reserved = reserved_tag_keys(tags)
    if reserved:
        raise ValueError(f"tag keys {', '.join(reserved)}: {reserved_tag_problem(reserved[0])}")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _queue(queue: Mapping[str, Any], refs: OwnedRefs) -> dict[str, Any]:
    completed = _put(
        dict(queue),
        "Iam",
        {**(queue.get("Iam") or {}), "InstanceProfile": refs.compute_instance_profile_arn},
        before=("JobExclusiveAllocation", "CustomActions", "Tags"),
    )
    scripts = [
        *(refs.efa_compute_scripts if queue.get("Name") in refs.efa_queues else ()),
        *refs.compute_scripts,
    ]
    if scripts:
        completed = _put(
            completed, "CustomActions", {"OnNodeConfigured": _sequence(scripts)}, before=("Tags",)
        )
    return completed


def _refuse_owned(config: Mapping[str, Any]) -> None:
    head = config.get("HeadNode") or {}
    scheduling = config.get("Scheduling") or {}
    owned = {
        "HeadNode.Iam.InstanceProfile": "InstanceProfile" in (head.get("Iam") or {}),
        "HeadNode.CustomActions": "CustomActions" in head,
        "Scheduling.SlurmSettings.Database": "Database" in (scheduling.get("SlurmSettings") or {}),
        "Iam.Roles.LambdaFunctionsRole": "LambdaFunctionsRole"
        in ((config.get("Iam") or {}).get("Roles") or {}),
    }
    for index, queue in enumerate(scheduling.get("SlurmQueues") or []):
        owned[f"Scheduling.SlurmQueues[{index}].Iam.InstanceProfile"] = "InstanceProfile" in (
            queue.get("Iam") or {}
        )
        owned[f"Scheduling.SlurmQueues[{index}].CustomActions"] = "CustomActions" in queue
    taken = [path for path, present in owned.items() if present]
    if taken:
        raise ValueError(
            f"cluster_config sets {', '.join(taken)}, which the ParallelCluster component sets itself "
            "(it creates the roles, scripts and accounting database they name); leave them out"
        )


def _put(mapping: Mapping[str, Any], key: str, value: Any, *, before: Sequence[str]) -> dict[str, Any]:
    """`mapping` with `key` set to `value`, placed before the first of `before` it holds (else last),
    so the config reads in the order ParallelCluster's documentation gives its keys."""
    rest = {k: v for k, v in mapping.items() if k != key}
    anchor = next((k for k in rest if k in before), None)
    out: dict[str, Any] = {}
    for k, v in rest.items():
        if k == anchor:
            out[key] = value
        out[k] = v
    if anchor is None:
        out[key] = value
    return out


def _sequence(scripts: Sequence[ScriptRef]) -> dict[str, Any]:
    return {
        "Sequence": [
            {"Script": script.url, "Args": list(script.args)} if script.args else {"Script": script.url}
            for script in scripts
        ]
    }
