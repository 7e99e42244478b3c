"""The ParallelCluster renderer and the component's completion of its config, unit tier: every
stack's config rendered (and completed) with literal ids."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app.cluster_config import (
    PCLUSTER_LOG_RETENTION_DAYS,
    ClusterRefs,
    ResolvedMount,
    closed_ssh_cidr,
    log_retention_days,
    render_cluster_config,
)
from hpc_platform.domain import metrics
from hpc_platform.domain.catalog import InstanceCatalog, default_catalog
from hpc_platform.domain.config.loader import load_stack_file
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.environments import PROFILES, profile
from hpc_platform.domain.limits import REQUIRED_TAG_KEYS
from hpc_platform.domain.placement import queue_placements
from hpc_platform.pcluster import STACK_MARKER_TAG, bootstrap
from hpc_platform.pcluster.completion import (
    DatabaseRef,
    OwnedRefs,
    ScriptRef,
    complete_cluster_config,
    compute_subnet_ids,
    spot_queue_names,
    ssh_key_name,
)
from tests.support.stacks import STACKS, stack_file

SECRET_ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:hpc-slurmdb-password-AbCdEf"
DB_HOST = "hpc-slurmdb.cluster-abcdef123456.us-east-2.rds.amazonaws.com"
SCRATCH_ID = "fs-0123456789abcdef0"
PERSISTENT_ID = "fs-0fedcba9876543210"
EFS_ID = "fs-0aaaabbbbccccdddd"
EFS_ACCESS_POINT_ID = "fsap-0aaaabbbbccccdddd"


def stack_config(stack: str) -> StackConfig:
    return load_stack_file(stack_file(stack)).config


def fake_id(prefix: str, seed: str) -> str:
    """An AWS-shaped id (`subnet-` + 17 hex digits), as ParallelCluster's patterns require."""
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"


LAMBDA_ROLE_ARN = "arn:aws:iam::123456789012:role/parallelcluster/lambda"
HEAD_SUBNET = fake_id("subnet", "head")
HEAD_SG = fake_id("sg", "head")
NODES_SG = fake_id("sg", "nodes")


def fake_refs(config: StackConfig, catalog: InstanceCatalog | None = None) -> ClusterRefs:
    """Literal ids shaped like the ones the components resolve: one subnet per queue AZ."""
    placements = queue_placements(config, catalog or default_catalog())
    return ClusterRefs(
        head_node_subnet_id=HEAD_SUBNET,
        queue_subnet_ids={name: [fake_id("subnet", az) for az in p.azs] for name, p in placements.items()},
        head_node_security_group_ids=[HEAD_SG, NODES_SG],
        compute_security_group_ids=[NODES_SG],
        placement_group_names={q.name: f"hpc-pg-{q.name}" for q in config.cluster.queues if q.enable_efa},
        shared_storage=[
            ResolvedMount("scratch", "/scratch", "FsxLustre", SCRATCH_ID),
            ResolvedMount("persistent", "/fsx", "FsxLustre", PERSISTENT_ID),
            ResolvedMount("home", "/home", "Efs", EFS_ID, EFS_ACCESS_POINT_ID),
        ],
    )


def fake_owned(config: StackConfig, **changes: Any) -> OwnedRefs:
    """Literal ARNs and script URLs shaped like the ones the component resolves."""
    owned = OwnedRefs(
        head_node_instance_profile_arn="arn:aws:iam::123456789012:instance-profile/parallelcluster/head",
        compute_instance_profile_arn="arn:aws:iam::123456789012:instance-profile/parallelcluster/compute",
        lambda_functions_role_arn=LAMBDA_ROLE_ARN,
        head_node_scripts=[ScriptRef("s3://data/bootstrap/x/slurm-metrics-agent.sh", ("x", config.region))],
        efa_compute_scripts=[ScriptRef("s3://data/bootstrap/x/efa-check.sh")],
        compute_scripts=[ScriptRef("s3://data/bootstrap/x/node-tuning.sh")],
        efa_queues=[q.name for q in config.cluster.queues if q.enable_efa],
        database=(
            DatabaseRef(DB_HOST, "slurmdbd", SECRET_ARN) if config.cluster.slurm.accounting.enabled else None
        ),
        stack_marker=f"hpc-platform/{config.environment}",
    )
    return _replace(owned, **changes)


def full_config(
    config: StackConfig, refs: ClusterRefs | None = None, owned: OwnedRefs | None = None
) -> dict[str, Any]:
    """What the cluster gets: the wiring's rendering, completed by the component."""
    return complete_cluster_config(
        render_cluster_config(config, refs or fake_refs(config)), owned or fake_owned(config)
    )


def rendered(stack: str) -> tuple[StackConfig, dict[str, Any]]:
    config = stack_config(stack)
    return config, full_config(config)


def without_accounting(config: StackConfig) -> StackConfig:
    slurm = config.cluster.slurm
    accounting = slurm.accounting.model_copy(update={"enabled": False})
    return config.model_copy(
        update={
            "cluster": config.cluster.model_copy(
                update={"slurm": slurm.model_copy(update={"accounting": accounting})}
            )
        }
    )


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def queues_by_name(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["Name"]: q for q in config["Scheduling"]["SlurmQueues"]}


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_configured_queue_is_rendered_with_its_capacity_type(stack: str) -> None:
    config, out = rendered(stack)
    queues = queues_by_name(out)
    assert list(queues) == [q.name for q in config.cluster.queues]
    for queue in config.cluster.queues:
        assert queues[queue.name]["CapacityType"] == queue.capacity_type
        resources = queues[queue.name]["ComputeResources"]
        assert [r["Name"] for r in resources] == [r.name for r in queue.compute_resources]
        multi_subnet = len(queues[queue.name]["Networking"]["SubnetIds"]) > 1
        for got, want in zip(resources, queue.compute_resources, strict=True):
            if multi_subnet:
                # ParallelCluster accepts several subnets only with `Instances`.
                assert "InstanceType" not in got
                assert got["Instances"] == [{"InstanceType": want.instance_type}]
            else:
                assert got["InstanceType"] == want.instance_type
            assert (got["MinCount"], got["MaxCount"]) == (want.min_count, want.max_count)
            assert got["DisableSimultaneousMultithreading"] is want.disable_hyperthreading


def test_multi_az_queues_exist_in_every_stack() -> None:
    """The Instances form above is exercised: every stack has a queue spanning several AZs."""
    for stack in STACKS:
        _, out = rendered(stack)
        assert any(len(q["Networking"]["SubnetIds"]) > 1 for q in out["Scheduling"]["SlurmQueues"]), stack


@pytest.mark.parametrize("stack", STACKS)
def test_efa_queues_have_one_subnet_and_our_placement_group(stack: str) -> None:
    config, out = rendered(stack)
    queues = queues_by_name(out)
    efa = [q for q in config.cluster.queues if q.enable_efa]
    assert efa, f"{stack} has no EFA queue to check"
    for queue in efa:
        rendered_queue = queues[queue.name]
        networking = rendered_queue["Networking"]
        assert len(networking["SubnetIds"]) == 1
        assert networking["PlacementGroup"] == {"Enabled": True, "Name": f"hpc-pg-{queue.name}"}
        assert all(r["Efa"] == {"Enabled": True} for r in rendered_queue["ComputeResources"])
        assert rendered_queue["JobExclusiveAllocation"] is True
        scripts = [s["Script"] for s in rendered_queue["CustomActions"]["OnNodeConfigured"]["Sequence"]]
        assert scripts[0].endswith("efa-check.sh")
    for queue in config.cluster.queues:
        if not queue.enable_efa:
            rendered_queue = queues[queue.name]
            assert "PlacementGroup" not in rendered_queue["Networking"]
            assert all(r["Efa"] == {"Enabled": False} for r in rendered_queue["ComputeResources"])
            scripts = [s["Script"] for s in rendered_queue["CustomActions"]["OnNodeConfigured"]["Sequence"]]
            assert not any(s.endswith("efa-check.sh") for s in scripts)


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_join_our_security_groups_and_instance_profiles(stack: str) -> None:
    _, out = rendered(stack)
    head = out["HeadNode"]
    assert head["Networking"]["AdditionalSecurityGroups"] == [HEAD_SG, NODES_SG]
    assert "SecurityGroups" not in head["Networking"]
    assert head["Iam"] == {
        "InstanceProfile": "arn:aws:iam::123456789012:instance-profile/parallelcluster/head"
    }
    for queue in out["Scheduling"]["SlurmQueues"]:
        assert queue["Networking"]["AdditionalSecurityGroups"] == [NODES_SG]
        assert queue["Iam"]["InstanceProfile"].endswith("/parallelcluster/compute")


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_stack_functions_run_with_our_role(stack: str) -> None:
    """Restricted IAM mode (the API's default) lets ParallelCluster create no role: without
    `Iam.Roles.LambdaFunctionsRole` its cluster stack would hold `AWS::IAM::Role` resources."""
    _, out = rendered(stack)
    assert out["Iam"] == {"Roles": {"LambdaFunctionsRole": LAMBDA_ROLE_ARN}}


@pytest.mark.parametrize("stack", STACKS)
def test_shared_storage_is_mounted_by_id_never_created(stack: str) -> None:
    _, out = rendered(stack)
    assert out["SharedStorage"] == [
        {
            "Name": "scratch",
            "MountDir": "/scratch",
            "StorageType": "FsxLustre",
            "FsxLustreSettings": {"FileSystemId": SCRATCH_ID},
        },
        {
            "Name": "persistent",
            "MountDir": "/fsx",
            "StorageType": "FsxLustre",
            "FsxLustreSettings": {"FileSystemId": PERSISTENT_ID},
        },
        {
            "Name": "home",
            "MountDir": "/home",
            "StorageType": "Efs",
            "EfsSettings": {
                "FileSystemId": EFS_ID,
                "EncryptionInTransit": True,
                "AccessPointId": EFS_ACCESS_POINT_ID,
            },
        },
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_accounting_database_is_referenced_by_secret_arn_only(stack: str) -> None:
    _, out = rendered(stack)
    settings = out["Scheduling"]["SlurmSettings"]
    assert settings["Database"] == {
        "Uri": f"{DB_HOST}:3306",
        "UserName": "slurmdbd",
        "PasswordSecretArn": SECRET_ARN,
    }
    password_keys = [path for path, _ in walk(out) if re.search(r"password(?!secretarn)", path.lower())]
    assert password_keys == []


def test_no_database_and_no_fair_share_enforcement_without_accounting() -> None:
    config = without_accounting(stack_config("dev"))
    out = full_config(config)
    settings = out["Scheduling"]["SlurmSettings"]
    assert "Database" not in settings
    assert settings["CustomSlurmSettings"] == [{"JobRequeue": "1"}]


@pytest.mark.parametrize("stack", STACKS)
def test_fair_share_through_custom_slurm_settings(stack: str) -> None:
    config, out = rendered(stack)
    fair = config.cluster.slurm.fair_share
    custom = out["Scheduling"]["SlurmSettings"]["CustomSlurmSettings"]
    assert all(len(entry) == 1 for entry in custom), "ParallelCluster wants one setting per entry"
    merged = {k: v for entry in custom for k, v in entry.items()}
    assert merged == {
        "JobRequeue": "1",
        "PriorityType": "priority/multifactor",
        "PriorityWeightFairshare": str(fair.priority_weight_fairshare),
        "PriorityWeightAge": str(fair.priority_weight_age),
        "PriorityWeightJobSize": str(fair.priority_weight_job_size),
        "PriorityDecayHalfLife": f"{fair.priority_decay_half_life_days}-0",
        "AccountingStorageEnforce": "associations,limits,qos",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_slurm_settings_follow_config(stack: str) -> None:
    config, out = rendered(stack)
    slurm = config.cluster.slurm
    settings = out["Scheduling"]["SlurmSettings"]
    assert out["Scheduling"]["Scheduler"] == "slurm"
    assert settings["ScaledownIdletime"] == slurm.scaledown_idletime_minutes
    assert settings["QueueUpdateStrategy"] == slurm.queue_update_strategy
    assert settings["EnableMemoryBasedScheduling"] is slurm.enable_memory_based_scheduling


@pytest.mark.parametrize("stack", STACKS)
def test_imdsv2_only_and_encrypted_root_volumes(stack: str) -> None:
    config, out = rendered(stack)
    assert out["Imds"] == {"ImdsSupport": "v2.0"}
    assert out["HeadNode"]["Imds"] == {"Secured": True}
    assert out["HeadNode"]["LocalStorage"]["RootVolume"] == {
        "Size": config.cluster.head_node.root_volume_gib,
        "Encrypted": True,
    }
    for queue in out["Scheduling"]["SlurmQueues"]:
        assert queue["ComputeSettings"]["LocalStorage"]["RootVolume"]["Encrypted"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_tags_carry_compliance_labels_and_stack_marker(stack: str) -> None:
    config, out = rendered(stack)
    tags = {t["Key"]: t["Value"] for t in out["Tags"]}
    assert len(tags) == len(out["Tags"]), "duplicate tag keys"
    for key in REQUIRED_TAG_KEYS:
        assert tags[key] == config.tags[key]
    assert tags[STACK_MARKER_TAG] == f"hpc-platform/{stack}"


@pytest.mark.parametrize("stack", STACKS)
def test_region_os_monitoring(stack: str) -> None:
    config, out = rendered(stack)
    assert out["Region"] == config.region
    assert out["Image"] == {"Os": config.cluster.os}
    logs = out["Monitoring"]["Logs"]["CloudWatch"]
    assert logs["Enabled"] is True
    assert logs["RetentionInDays"] in PCLUSTER_LOG_RETENTION_DAYS
    assert logs["RetentionInDays"] >= config.observability.log_retention_days
    assert out["Monitoring"]["Dashboards"] == {"CloudWatch": {"Enabled": True}}
    environment = profile(config.environment)
    assert out["Monitoring"]["DetailedMonitoring"] is environment.detailed_monitoring
    assert logs["DeletionPolicy"] == ("Retain" if environment.retain_cluster_logs else "Delete")


@pytest.mark.parametrize("environment", list(PROFILES.values()), ids=list(PROFILES))
def test_monitoring_follows_the_profile_it_is_given_not_the_environment_name(environment: Any) -> None:
    config = stack_config("dev")
    monitoring = render_cluster_config(config, fake_refs(config), environment)["Monitoring"]
    assert monitoring["DetailedMonitoring"] is environment.detailed_monitoring
    expected = "Retain" if environment.retain_cluster_logs else "Delete"
    assert monitoring["Logs"]["CloudWatch"]["DeletionPolicy"] == expected


def test_ssh_key_name_only_when_configured_and_parallelclusters_ssh_rule_always_closed() -> None:
    config = stack_config("dev")
    closed = {"AllowedIps": closed_ssh_cidr(config.network)}
    assert full_config(config)["HeadNode"]["Ssh"] == closed
    with_key = config.model_copy(
        update={
            "cluster": config.cluster.model_copy(
                update={"head_node": config.cluster.head_node.model_copy(update={"ssh_key_name": "ops"})}
            )
        }
    )
    assert full_config(with_key)["HeadNode"]["Ssh"] == {
        "KeyName": "ops",
        **closed,
    }


def test_head_node_scripts_run_on_configure_and_update() -> None:
    config = stack_config("prod")
    actions = full_config(config)["HeadNode"]["CustomActions"]
    assert actions["OnNodeConfigured"] == actions["OnNodeUpdated"]
    assert actions["OnNodeConfigured"]["Sequence"][0]["Args"] == ["x", config.region]


def test_allocation_strategy_defaults_per_capacity_type() -> None:
    _, out = rendered("prod")
    for queue in out["Scheduling"]["SlurmQueues"]:
        expected = "price-capacity-optimized" if queue["CapacityType"] == "SPOT" else "lowest-price"
        assert queue["AllocationStrategy"] == expected


def test_rendered_config_is_plain_json() -> None:
    _, out = rendered("prod")
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(1, 1), (30, 30), (90, 90), (365, 365), (1096, 1827), (2192, 3653), (3653, 3653)],
)
def test_log_retention_is_raised_to_a_value_parallelcluster_accepts(configured: int, expected: int) -> None:
    assert log_retention_days(configured) == expected


# --- failure cases --------------------------------------------------------------------------------
def test_fails_efa_queue_spanning_two_subnets() -> None:
    config = stack_config("dev")
    refs = fake_refs(config)
    subnets = {**refs.queue_subnet_ids, "compute-spot": ["subnet-a", "subnet-b"]}
    with pytest.raises(ValueError, match=r"compute-spot: an EFA queue must run in exactly one subnet"):
        render_cluster_config(config, _replace(refs, queue_subnet_ids=subnets))


def test_fails_efa_queue_without_placement_group() -> None:
    config = stack_config("dev")
    refs = fake_refs(config)
    groups = {k: v for k, v in refs.placement_group_names.items() if k != "compute-od"}
    with pytest.raises(ValueError, match=r"compute-od: EFA is on but no placement group"):
        render_cluster_config(config, _replace(refs, placement_group_names=groups))


def test_fails_queue_without_subnet() -> None:
    config = stack_config("dev")
    refs = fake_refs(config)
    subnets = {k: v for k, v in refs.queue_subnet_ids.items() if k != "debug"}
    with pytest.raises(ValueError, match=r"queue debug: no compute subnet"):
        render_cluster_config(config, _replace(refs, queue_subnet_ids=subnets))


RESERVED_PREFIX_MESSAGE = (
    r"parallelcluster:owner: the prefix .parallelcluster:. is reserved by ParallelCluster"
)


def test_fails_reserved_tag_prefix() -> None:
    config = stack_config("dev")
    compliance = config.compliance.model_copy(update={"extra_tags": {"parallelcluster:owner": "me"}})
    with pytest.raises(ValueError, match=RESERVED_PREFIX_MESSAGE):
        render_cluster_config(config.model_copy(update={"compliance": compliance}), fake_refs(config))
    with pytest.raises(ValueError, match=RESERVED_PREFIX_MESSAGE):
        full_config(config, owned=fake_owned(config, tags={"parallelcluster:owner": "me"}))


# --- what the component completes -----------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_renderer_leaves_out_what_the_component_owns(stack: str) -> None:
    config = stack_config(stack)
    out = render_cluster_config(config, fake_refs(config))
    assert "Iam" not in out and "Iam" not in out["HeadNode"] and "CustomActions" not in out["HeadNode"]
    assert "Database" not in out["Scheduling"]["SlurmSettings"]
    assert all("Iam" not in q and "CustomActions" not in q for q in out["Scheduling"]["SlurmQueues"])
    assert STACK_MARKER_TAG not in {t["Key"] for t in out["Tags"]}


@pytest.mark.parametrize("stack", STACKS)
def test_completion_keeps_the_renderers_key_order_and_leaves_its_input_alone(stack: str) -> None:
    config = stack_config(stack)
    partial = render_cluster_config(config, fake_refs(config))
    before = json.dumps(partial)
    out = complete_cluster_config(partial, fake_owned(config))
    assert json.dumps(partial) == before
    assert list(out) == [
        "Region",
        "Image",
        "Imds",
        "HeadNode",
        "Scheduling",
        "Iam",
        "SharedStorage",
        "Monitoring",
        "Tags",
    ]
    assert list(out["HeadNode"])[-3:] == ["Iam", "Imds", "CustomActions"]
    assert list(out["Scheduling"]["SlurmSettings"])[-2:] == ["Database", "CustomSlurmSettings"]
    for queue in out["Scheduling"]["SlurmQueues"]:
        keys = list(queue)
        assert keys[keys.index("ComputeSettings") + 1 : keys.index("ComputeSettings") + 4] == [
            "Iam",
            "JobExclusiveAllocation",
            "CustomActions",
        ]


def test_completion_refuses_a_config_that_sets_an_owned_key() -> None:
    config = stack_config("dev")
    partial = render_cluster_config(config, fake_refs(config))
    partial["HeadNode"]["Iam"] = {"InstanceProfile": "arn:aws:iam::123456789012:instance-profile/mine"}
    partial["Scheduling"]["SlurmQueues"][1]["CustomActions"] = {}
    with pytest.raises(
        ValueError, match=r"HeadNode\.Iam\.InstanceProfile, Scheduling\.SlurmQueues\[1\]\.CustomActions"
    ):
        complete_cluster_config(partial, fake_owned(config))


def test_completion_keeps_other_iam_settings_and_puts_config_tags_over_component_tags() -> None:
    config = stack_config("dev")
    partial = render_cluster_config(config, fake_refs(config))
    partial["Iam"] = {"PermissionsBoundary": "arn:aws:iam::123456789012:policy/boundary"}
    owned = fake_owned(config, tags={"Owner": "library-default", "Lab": "x"})
    out = complete_cluster_config(partial, owned)
    assert out["Iam"] == {
        "PermissionsBoundary": "arn:aws:iam::123456789012:policy/boundary",
        "Roles": {"LambdaFunctionsRole": LAMBDA_ROLE_ARN},
    }
    tags = {t["Key"]: t["Value"] for t in out["Tags"]}
    assert tags["Owner"] == config.tags["Owner"] and tags["Lab"] == "x"
    assert [t["Key"] for t in out["Tags"]] == sorted(tags)


def test_efa_check_runs_only_on_the_queues_named_for_it() -> None:
    config = stack_config("dev")
    out = full_config(config, owned=fake_owned(config, efa_queues=["debug"]))
    for queue in out["Scheduling"]["SlurmQueues"]:
        scripts = [s["Script"] for s in queue["CustomActions"]["OnNodeConfigured"]["Sequence"]]
        assert scripts[0].endswith("efa-check.sh") is (queue["Name"] == "debug")


@pytest.mark.parametrize("stack", STACKS)
def test_values_the_component_reads_from_the_rendered_config(stack: str) -> None:
    config = stack_config(stack)
    refs = fake_refs(config)
    out = render_cluster_config(config, refs)
    assert spot_queue_names(out) == [q.name for q in config.cluster.queues if q.capacity_type == "SPOT"]
    assert compute_subnet_ids(out) == sorted({s for ids in refs.queue_subnet_ids.values() for s in ids})
    assert ssh_key_name(out) == config.cluster.head_node.ssh_key_name


# --- bootstrap scripts ------------------------------------------------------------------------------
def test_monitoring_agent_publishes_every_slurm_metric() -> None:
    agent = bootstrap.script(bootstrap.SLURM_METRICS_AGENT)
    names = [value for key, value in vars(metrics).items() if key.isupper() and key != "SLURM_NAMESPACE"]
    names = [n for n in names if isinstance(n, str)]
    assert names
    for name in names:
        assert re.search(rf"\badd {name}\b", agent), f"the agent never publishes {name}"
    assert "put-metric-data" in agent


def test_efa_check_uses_fi_info() -> None:
    script = bootstrap.script(bootstrap.EFA_CHECK)
    assert "fi_info" in script and "-p efa" in script
    assert script.startswith("#!/bin/bash") and "set -euo pipefail" in script


def _replace(refs: Any, **changes: Any) -> Any:
    return replace(refs, **changes)


SINFO_STUB = r"""#!/bin/bash
# Two partitions; node states as `sinfo --Node --format='%N %t'` prints them.
args="$*"
nodes() {
  case "$1" in
    compute-spot)
      printf '%s\n' "spot-dy-1 idle" "spot-dy-2 alloc" "spot-dy-3 mix" "spot-dy-4 idle~" "spot-dy-5 down" ;;
    debug) printf '%s\n' "debug-dy-1 idle" "debug-dy-2 drain" ;;
  esac
}
if [[ "$args" == *"--list-reasons"* ]]; then
  [[ "$args" == *"--partition=compute-spot"* ]] &&
    echo "(Code:InsufficientInstanceCapacity)Failure when resuming nodes|spot-dy-5"
  exit 0
fi
if [[ "$args" == *"--format=%R"* ]]; then printf '%s\n' compute-spot debug compute-spot; exit 0; fi
if [[ "$args" == *"--partition=compute-spot"* ]]; then nodes compute-spot; exit 0; fi
if [[ "$args" == *"--partition=debug"* ]]; then nodes debug; exit 0; fi
nodes compute-spot; nodes debug
"""

SQUEUE_STUB = r"""#!/bin/bash
args="$*"
case "$args" in
  *compute-spot*PENDING*) printf '%s\n' 1 2 3 ;;
  *compute-spot*RUNNING*) printf '%s\n' 4 5 ;;
  *debug*PENDING*) : ;;
  *debug*RUNNING*) echo 6 ;;
esac
"""

AWS_STUB = r"""#!/bin/bash
printf '%s\n' "$@" > "$AWS_ARGS_FILE"
"""


def run_slurm_metrics_collector(tmp_path: Path, extra_env: str = "") -> subprocess.CompletedProcess[str]:
    """Run the collector the Slurm metrics agent installs, against stub Slurm and AWS CLIs (the
    AWS stub writes its arguments to `tmp_path/aws-args`); `extra_env` goes into its env file."""
    agent = bootstrap.script(bootstrap.SLURM_METRICS_AGENT)
    collector = agent.split("<<'COLLECT'\n", 1)[1].split("\nCOLLECT\n", 1)[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sinfo", SINFO_STUB), ("squeue", SQUEUE_STUB), ("aws", AWS_STUB)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    env_file = tmp_path / "metrics.env"
    env_file.write_text(
        "CLUSTER_NAME=hpc-test\nAWS_REGION=us-east-2\nMETRIC_NAMESPACE=HPC/Slurm\nSPOT_QUEUES=compute-spot\n"
        + extra_env
    )
    script = tmp_path / "collect.sh"
    script.write_text(collector)
    return subprocess.run(
        ["bash", str(script)],
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HPC_SLURM_METRICS_ENV": str(env_file),
            "AWS_ARGS_FILE": str(tmp_path / "aws-args"),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_metrics_collector_publishes_slurm_state(tmp_path: Path) -> None:
    """Run the collector the agent installs against stub Slurm and AWS CLIs."""
    result = run_slurm_metrics_collector(tmp_path)
    args_file = tmp_path / "aws-args"
    assert result.returncode == 0, result.stderr
    argv = args_file.read_text().splitlines()
    assert argv[:6] == ["cloudwatch", "put-metric-data", "--region", "us-east-2", "--namespace", "HPC/Slurm"]
    data = json.loads(argv[argv.index("--metric-data") + 1])
    values = {
        (d["MetricName"], next((x["Value"] for x in d["Dimensions"] if x["Name"] == "Queue"), None)): d[
            "Value"
        ]
        for d in data
    }
    assert all(d["Dimensions"][0] == {"Name": "ClusterName", "Value": "hpc-test"} for d in data)
    assert values == {
        (metrics.SLURM_PENDING_JOBS, "compute-spot"): 3,
        (metrics.SLURM_RUNNING_JOBS, "compute-spot"): 2,
        (metrics.SLURM_IDLE_NODES, "compute-spot"): 1,  # idle~ is powered down, not idle
        (metrics.SLURM_ALLOCATED_NODES, "compute-spot"): 2,
        (metrics.SLURM_PENDING_JOBS, "debug"): 0,
        (metrics.SLURM_RUNNING_JOBS, "debug"): 1,
        (metrics.SLURM_IDLE_NODES, "debug"): 1,
        (metrics.SLURM_ALLOCATED_NODES, "debug"): 0,
        (metrics.SLURM_DOWN_NODES, None): 2,
        (metrics.SPOT_INTERRUPTIONS, None): 1,
    }


FI_INFO_OK = r"""#!/bin/bash
cat <<'OUT'
provider: efa
    fabric: efa
    domain: rdmap0s6-rdm
    version: 122.0
    type: FI_EP_RDM
    protocol: FI_PROTO_EFA
OUT
"""
FI_INFO_NO_EFA = r"""#!/bin/bash
echo "fi_getinfo: -61 (No data available)" >&2
exit 1
"""


@pytest.mark.parametrize(
    ("fi_info", "args", "returncode", "message"),
    [
        (FI_INFO_OK, [], 0, "EFA provider ok (1 endpoint(s), 1 device(s))"),
        (FI_INFO_OK, ["4"], 1, "1 EFA device(s) visible, expected at least 4"),
        (FI_INFO_NO_EFA, [], 1, "'fi_info -p efa' found no EFA provider"),
        (None, [], 1, "fi_info not found"),
    ],
)
def test_efa_check(
    tmp_path: Path, fi_info: str | None, args: list[str], returncode: int, message: str
) -> None:
    script = tmp_path / "efa-check.sh"
    script.write_text(bootstrap.script(bootstrap.EFA_CHECK))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if fi_info is not None:
        (bin_dir / "fi_info").write_text(fi_info)
        (bin_dir / "fi_info").chmod(0o755)
    result = subprocess.run(
        ["bash", str(script), *args],
        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == returncode
    assert message in result.stdout + result.stderr


def test_queue_research_group_becomes_the_queues_tag_only_when_set() -> None:
    config = stack_config("prod")
    queues = {q["Name"]: q for q in full_config(config)["Scheduling"]["SlurmQueues"]}
    for queue in config.cluster.queues:
        if queue.research_group is None:
            assert "Tags" not in queues[queue.name]
        else:
            assert queues[queue.name]["Tags"] == [{"Key": "ResearchGroup", "Value": queue.research_group}]
    assert any(q.research_group for q in config.cluster.queues)
