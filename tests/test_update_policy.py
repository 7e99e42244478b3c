"""classify_change: what a config change takes (in place, rolling, fleet stop, new cluster)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from test_pcluster_render import full_config, stack_config

from hpc_platform.pcluster.update_policy import (
    KEYED_LISTS,
    UPDATE_POLICY_TABLE,
    VERSION_PATH,
    Policy,
    classify_change,
    generic_path,
    policy_for,
)

Config = dict[str, Any]
Mutation = Callable[[Config], None]


def base(strategy: str = "DRAIN") -> Config:
    config = stack_config("dev")
    rendered = full_config(config)
    rendered["Scheduling"]["SlurmSettings"]["QueueUpdateStrategy"] = strategy
    return rendered


def queue(config: Config, name: str) -> Config:
    found: Config = next(q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] == name)
    return found


def resource(config: Config, queue_name: str, index: int = 0) -> Config:
    found: Config = queue(config, queue_name)["ComputeResources"][index]
    return found


def settings(config: Config) -> Config:
    found: Config = config["Scheduling"]["SlurmSettings"]
    return found


def outcome_of(mutate: Mutation, strategy: str = "DRAIN") -> tuple[str, list[str]]:
    old = base(strategy)
    new = copy.deepcopy(old)
    mutate(new)
    result = classify_change(old, new)
    outcomes = {change.outcome for change in result.changes}
    assert len(outcomes) == 1, f"expected one outcome, got {result.changes}"
    return outcomes.pop(), [change.path for change in result.changes]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(config: Config) -> None:
        target: Any = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _add_queue(config: Config) -> None:
    new_queue = copy.deepcopy(queue(config, "debug"))
    new_queue["Name"] = "debug-2"
    config["Scheduling"]["SlurmQueues"].append(new_queue)


def _remove_queue(config: Config) -> None:
    config["Scheduling"]["SlurmQueues"] = [
        q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] != "debug"
    ]


def _add_storage(config: Config) -> None:
    config["SharedStorage"].append(
        {
            "Name": "extra",
            "MountDir": "/extra",
            "StorageType": "FsxLustre",
            "FsxLustreSettings": {"FileSystemId": "fs-0123456789abcdef9"},
        }
    )


def _remove_home(config: Config) -> None:
    config["SharedStorage"] = [s for s in config["SharedStorage"] if s["MountDir"] != "/home"]


def _raise_min_and_max(config: Config) -> None:
    cr = resource(config, "debug")
    cr["MinCount"] += 1
    cr["MaxCount"] += 2


# fmt: off
CASES: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation, QueueUpdateStrategy of the new config, expected outcome)
    ("head-node-instance-type", lambda c: c["HeadNode"].update(InstanceType="c6i.4xlarge"),
     "DRAIN", "replace"),
    ("head-node-subnet", lambda c: c["HeadNode"]["Networking"].update(SubnetId="subnet-other"),
     "DRAIN", "replace"),
    ("head-node-root-volume", lambda c: c["HeadNode"]["LocalStorage"]["RootVolume"].update(Size=500),
     "DRAIN", "replace"),
    ("image-os", lambda c: c["Image"].update(Os="rocky9"), "DRAIN", "replace"),
    ("head-on-node-configured",
     lambda c: c["HeadNode"]["CustomActions"].update(OnNodeConfigured={"Sequence": [{"Script": "s3://b/k"}]}),
     "DRAIN", "replace"),
    ("head-on-node-updated",
     lambda c: c["HeadNode"]["CustomActions"].update(OnNodeUpdated={"Sequence": [{"Script": "s3://b/k"}]}),
     "DRAIN", "live"),
    ("remove-home", _remove_home, "DRAIN", "replace"),
    ("lustre-file-system-id",
     lambda c: c["SharedStorage"][0]["FsxLustreSettings"].update(FileSystemId="fs-0123456789abcdef9"),
     "DRAIN", "replace"),
    ("cr-instance-type", lambda c: resource(c, "debug").update(InstanceType="c6i.2xlarge"),
     "DRAIN", "needs_fleet_stop"),
    ("cr-smt", lambda c: resource(c, "debug").update(DisableSimultaneousMultithreading=True),
     "TERMINATE", "needs_fleet_stop"),
    ("scaledown-idletime", lambda c: settings(c).update(ScaledownIdletime=30), "DRAIN", "needs_fleet_stop"),
    ("memory-scheduling", lambda c: settings(c).update(EnableMemoryBasedScheduling=False),
     "DRAIN", "needs_fleet_stop"),
    ("database-uri", lambda c: settings(c)["Database"].update(Uri="other:3306"), "DRAIN", "needs_fleet_stop"),
    ("database-removed", lambda c: settings(c).pop("Database"), "DRAIN", "needs_fleet_stop"),
    ("queue-instance-profile",
     lambda c: queue(c, "debug")["Iam"].update(InstanceProfile="arn:aws:iam::1:instance-profile/x"),
     "DRAIN", "needs_fleet_stop"),
    ("detailed-monitoring", lambda c: c["Monitoring"].update(DetailedMonitoring=True),
     "DRAIN", "needs_fleet_stop"),
    ("raise-max-count", lambda c: resource(c, "debug").update(MaxCount=50), "COMPUTE_FLEET_STOP", "live"),
    ("lower-max-count-drain", lambda c: resource(c, "compute-spot").update(MaxCount=1),
     "DRAIN", "needs_fleet_stop"),
    ("lower-max-count-terminate", lambda c: resource(c, "compute-spot").update(MaxCount=1),
     "TERMINATE", "rolling"),
    ("raise-min-and-max", _raise_min_and_max, "COMPUTE_FLEET_STOP", "live"),
    ("raise-min-only", lambda c: resource(c, "debug").update(MinCount=1), "DRAIN", "needs_fleet_stop"),
    ("add-queue", _add_queue, "COMPUTE_FLEET_STOP", "live"),
    ("remove-queue-drain", _remove_queue, "DRAIN", "needs_fleet_stop"),
    ("remove-queue-terminate", _remove_queue, "TERMINATE", "rolling"),
    ("capacity-type-stop", lambda c: queue(c, "compute-spot").update(CapacityType="ONDEMAND"),
     "COMPUTE_FLEET_STOP", "needs_fleet_stop"),
    ("capacity-type-drain", lambda c: queue(c, "compute-spot").update(CapacityType="ONDEMAND"),
     "DRAIN", "rolling"),
    ("capacity-type-terminate", lambda c: queue(c, "compute-spot").update(CapacityType="ONDEMAND"),
     "TERMINATE", "rolling"),
    ("allocation-strategy",
     lambda c: queue(c, "compute-spot").update(AllocationStrategy="capacity-optimized"),
     "DRAIN", "rolling"),
    ("efa-off", lambda c: resource(c, "compute-od").update(Efa={"Enabled": False}),
     "COMPUTE_FLEET_STOP", "needs_fleet_stop"),
    ("queue-scripts", lambda c: queue(c, "debug")["CustomActions"].update(OnNodeConfigured={"Sequence": []}),
     "DRAIN", "rolling"),
    ("add-subnet", lambda c: queue(c, "debug")["Networking"]["SubnetIds"].append("subnet-new"),
     "COMPUTE_FLEET_STOP", "live"),
    ("swap-subnet", lambda c: queue(c, "debug")["Networking"].update(SubnetIds=["subnet-new"]),
     "DRAIN", "rolling"),
    ("placement-group", lambda c: queue(c, "compute-od")["Networking"]["PlacementGroup"].update(Name="other"),
     "DRAIN", "rolling"),
    ("queue-security-groups",
     lambda c: queue(c, "debug")["Networking"].update(AdditionalSecurityGroups=["sg-x"]),
     "COMPUTE_FLEET_STOP", "live"),
    ("custom-slurm-settings", lambda c: settings(c)["CustomSlurmSettings"].append({"PriorityWeightQOS": 5}),
     "COMPUTE_FLEET_STOP", "live"),
    ("job-exclusive", lambda c: queue(c, "debug").update(JobExclusiveAllocation=True),
     "COMPUTE_FLEET_STOP", "live"),
    ("add-external-fsx", _add_storage, "COMPUTE_FLEET_STOP", "live"),
    ("log-retention", lambda c: c["Monitoring"]["Logs"]["CloudWatch"].update(RetentionInDays=365),
     "COMPUTE_FLEET_STOP", "live"),
    ("logs-off", lambda c: c["Monitoring"]["Logs"]["CloudWatch"].update(Enabled=False), "DRAIN", "replace"),
    ("tag-value", lambda c: c["Tags"][0].update(Value="changed"), "COMPUTE_FLEET_STOP", "live"),
    ("unknown-field", lambda c: c.update(SomethingNew={"A": 1}), "DRAIN", "replace"),
]
# fmt: on


@pytest.mark.parametrize(
    ("mutate", "strategy", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_classify_change(mutate: Mutation, strategy: str, expected: str) -> None:
    outcome, paths = outcome_of(mutate, strategy)
    assert outcome == expected, paths


def test_version_change_replaces_the_cluster() -> None:
    config = base()
    result = classify_change(config, copy.deepcopy(config), old_version="3.16.1", new_version="3.17.0")
    assert result.replace == [VERSION_PATH]
    assert result.requires_replacement
    same = classify_change(config, copy.deepcopy(config), old_version="3.16.1", new_version="3.16.1")
    assert same.unchanged


def test_identical_configs_are_unchanged() -> None:
    result = classify_change(base(), base())
    assert result.unchanged
    assert (result.replace, result.needs_fleet_stop, result.rolling, result.live) == ([], [], [], [])


def test_changes_are_reported_by_concrete_path_with_reasons() -> None:
    old = base()
    new = copy.deepcopy(old)
    new["HeadNode"]["InstanceType"] = "c6i.4xlarge"
    resource(new, "debug")["MaxCount"] = 9
    settings(new)["ScaledownIdletime"] = 1
    result = classify_change(old, new)
    assert result.replace == ["HeadNode.InstanceType"]
    assert result.needs_fleet_stop == ["Scheduling.SlurmSettings.ScaledownIdletime"]
    assert result.live == ["Scheduling.SlurmQueues[debug].ComputeResources[c6i-xl].MaxCount"]
    assert result.requires_fleet_stop
    assert all(": " in line for line in result.reasons("replace"))


def test_strategy_of_the_new_config_decides() -> None:
    old = base("COMPUTE_FLEET_STOP")
    new = copy.deepcopy(old)
    settings(new)["QueueUpdateStrategy"] = "DRAIN"
    queue(new, "compute-spot")["CapacityType"] = "ONDEMAND"
    result = classify_change(old, new)
    assert result.rolling == ["Scheduling.SlurmQueues[compute-spot].CapacityType"]
    assert result.live == ["Scheduling.SlurmSettings.QueueUpdateStrategy"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Scheduling.SlurmQueues[gpu].ComputeResources[p4d].MaxCount", Policy.RESIZE_ON_REMOVE),
        ("Scheduling.SlurmQueues[gpu]", Policy.RESIZE_ON_REMOVE),
        ("Scheduling.SlurmQueues[gpu].Networking.PlacementGroup.Name", Policy.QUEUE_UPDATE_STRATEGY),
        ("HeadNode.LocalStorage.RootVolume.Encrypted", Policy.REPLACE),
        ("Monitoring.Unknown", Policy.REPLACE),
        ("Tags[Owner]", Policy.LIVE),
    ],
)
def test_policy_lookup_falls_back_to_the_closest_listed_ancestor(path: str, expected: Policy) -> None:
    assert policy_for(path)[0] is expected


def test_table_keys_are_generic_paths() -> None:
    for path in [*UPDATE_POLICY_TABLE, *KEYED_LISTS]:
        assert generic_path(path) == path
