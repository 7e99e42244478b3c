"""Each stack's offline plan, built in moto, through ParallelCluster's own dry run, create and delete.

`tests/support/moto_plan.py` creates every planned resource ParallelCluster reads (network, security
groups and all their rules, placement groups, EFS, both Lustre file systems, IAM, the bucket with
the bootstrap scripts, KMS keys, the accounting secret and database) with the plan's properties,
and rewrites the plan's own rendered cluster config with the ids moto returned. That config then
goes through ParallelCluster's API in the harness: a dry run with every validator (any ERROR-level
message fails the test; all messages are printed), the provider's create (CREATE_COMPLETE), for
dev a fleet-stop update, and the provider's delete (until the API answers 404).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from hpc_platform.pcluster.client import (
    ApiError,
    Backoff,
    DryrunSucceeded,
    ParallelClusterClient,
    format_validation_message,
)
from hpc_platform.pcluster.provider import OUTPUT_KEYS, ParallelClusterProvider, ProviderSettings
from tests.integration.provider_io import RecordingTransport
from tests.support.moto_plan import MotoPlan, build_plan_in_moto
from tests.support.stacks import STACKS, planned

pytestmark = pytest.mark.integration

# The prod create synthesizes a large CDK app inside one API request.
REQUEST_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def timings() -> Iterator[dict[str, float]]:
    spent: dict[str, float] = {}
    yield spent
    print("\nseconds per stack (build in moto + dry run + create + delete):", spent)


@pytest.fixture(scope="module")
def build(pcluster_api: dict[str, Any]) -> Callable[[str], MotoPlan]:
    """Each stack's plan, built once per harness (names in moto are the plan's: no second build)."""
    builds: dict[str, MotoPlan] = {}

    def built(stack: str) -> MotoPlan:
        if stack not in builds:
            plan = planned(stack)
            assert plan.loaded.config.region == pcluster_api["region"], (
                "the harness serves the stacks' region"
            )
            builds[stack] = build_plan_in_moto(plan.plan, pcluster_api["moto"], pcluster_api["region"])
        return builds[stack]

    return built


def provider_for(transport: RecordingTransport | None = None) -> ParallelClusterProvider:
    return ParallelClusterProvider(
        ProviderSettings(
            transport=transport,
            request_backoff=Backoff(base_seconds=0.2, max_seconds=1, max_attempts=3),
            poll_backoff=Backoff(base_seconds=0.25, max_seconds=1),
            fleet_timeout_minutes=1,
            request_timeout_seconds=REQUEST_TIMEOUT_SECONDS,
        )
    )


def props_of(world: dict[str, Any], built: MotoPlan, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cluster resource's planned inputs, with moto's ids, pointed at the harness's API."""
    props = copy.deepcopy(built.cluster_inputs)
    props.update(
        api_url=world["api"],
        # The API's resource policy admits only its user role (the harness's stand-in gateway).
        api_role_arn=world["api_user_role_arn"],
        create_timeout_minutes=10,
        update_timeout_minutes=10,
        delete_timeout_minutes=10,
    )
    if config is not None:
        props["cluster_config"] = config
    for key in OUTPUT_KEYS:
        props.setdefault(key, None)
    return props


def dry_run_messages(world: dict[str, Any], built: MotoPlan) -> list[dict[str, Any]]:
    """Every validation message of a dry-run create: warnings/info of a 412 answer, or the
    configuration validation errors of a 400 answer."""
    client = ParallelClusterClient(
        world["api"],
        world["region"],
        role_arn=world["api_user_role_arn"],
        backoff=Backoff(base_seconds=0.2, max_seconds=1, max_attempts=3),
        request_timeout_seconds=REQUEST_TIMEOUT_SECONDS,
    )
    try:
        client.create_cluster(built.cluster_name, built.cluster_config, dryrun=True)
    except DryrunSucceeded as ok:
        return ok.validation_messages
    except ApiError as err:
        messages = err.validation_errors
        if not messages:
            raise
        return messages
    raise AssertionError("a dry run must answer 412 (would succeed) or 400 (rejected)")


# The WARNINGs ParallelCluster gives the planned clusters on purpose; any other WARNING fails
# the test, as a WARNING usually names a real problem (two mounts on one directory, say).
ACCEPTED_WARNINGS = {
    "KeyPairValidator": "no EC2 key pair unless hpc:cluster.head_node.ssh_key_name is set: nodes are "
    "reached through SSM Session Manager",
    "ComputeResourceTagsValidator": "a queue's research_group overrides the cluster's ResearchGroup tag "
    "on purpose, so that group's budget counts the queue's nodes",
    "DetailedMonitoringValidator": "prod turns on 1-minute EC2 metrics on purpose",
}


def debug_instance(config: dict[str, Any]) -> dict[str, Any]:
    """The debug queue's first instance entry (a multi-subnet queue declares `Instances`)."""
    queue = next(q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] == "debug")
    resource: dict[str, Any] = queue["ComputeResources"][0]
    instances: list[dict[str, Any]] = resource.get("Instances", [resource])
    return instances[0]


@pytest.mark.parametrize("stack", STACKS)
def test_plan_built_in_moto_passes_parallelclusters_create(
    pcluster_api: dict[str, Any], build: Callable[[str], MotoPlan], timings: dict[str, float], stack: str
) -> None:
    world = pcluster_api
    started = time.monotonic()
    built = build(stack)
    print(f"\n{stack}: {len(built.built)} plan resources built in moto, {len(built.ids)} ids mapped")

    messages = dry_run_messages(world, built)
    print(f"{stack}: ParallelCluster dry run, {len(messages)} validation messages:")
    for message in messages:
        print(f"  {format_validation_message(message)}")
    errors = [format_validation_message(m) for m in messages if (m.get("level") or "ERROR") == "ERROR"]
    assert errors == [], f"{stack}: ParallelCluster rejects the planned cluster:\n" + "\n".join(errors)
    unexpected = [
        format_validation_message(m)
        for m in messages
        if m.get("level") == "WARNING" and m.get("type") not in ACCEPTED_WARNINGS
    ]
    assert unexpected == [], f"{stack}: ParallelCluster warns about the planned cluster:\n" + "\n".join(
        unexpected
    )

    transport = RecordingTransport()
    provider = provider_for(transport)
    props = props_of(world, built)
    name = built.cluster_name
    state = provider.create(props).outs or {}
    assert state["cluster_status"] == "CREATE_COMPLETE"
    assert provider.read(name, state).outs["cluster_config"] == built.cluster_config  # type: ignore[index]

    if stack == "dev":
        # The debug queue's instance type: ParallelCluster applies it only with the fleet stopped.
        bigger = copy.deepcopy(built.cluster_config)
        debug_instance(bigger)["InstanceType"] = "c6i.2xlarge"
        new = props_of(world, built, bigger)
        assert provider.diff(name, state, new).replaces == []
        transport.calls.clear()
        state = provider.update(name, state, new).outs or {}
        assert state["cluster_status"] == "UPDATE_COMPLETE"
        fleet = f"/v3/clusters/{name}/computefleet"
        assert transport.writes() == [("PATCH", fleet), ("PUT", f"/v3/clusters/{name}"), ("PATCH", fleet)]
        live = provider.read(name, state).outs or {}
        assert debug_instance(live["cluster_config"])["InstanceType"] == "c6i.2xlarge"

    transport.calls.clear()
    if state.get("retain_on_delete"):
        # prod keeps its cluster when the resource is deleted; then an operator deletes it.
        provider.delete(name, state)
        assert transport.writes() == []
        assert provider.read(name, state).id == name
        state = {**state, "retain_on_delete": False}
    provider.delete(name, state)
    assert transport.writes() == [("DELETE", f"/v3/clusters/{name}")]
    assert provider.read(name, state).id == ""
    timings[stack] = round(time.monotonic() - started, 1)


def test_multi_subnet_queue_needs_instances(
    pcluster_api: dict[str, Any], build: Callable[[str], MotoPlan]
) -> None:
    """ParallelCluster's rule the renderer follows: a queue spread over several subnets declares its
    instance types with `Instances`; the same queue with `InstanceType` is rejected."""
    built = build("dev")
    config = copy.deepcopy(built.cluster_config)
    debug = next(q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] == "debug")
    assert len(debug["Networking"]["SubnetIds"]) == 2
    assert all("Instances" in resource for resource in debug["ComputeResources"])
    for resource in debug["ComputeResources"]:
        resource["InstanceType"] = resource.pop("Instances")[0]["InstanceType"]
    props = props_of(pcluster_api, built, config)
    props["cluster_name"] = "hpc-dev-subnets"
    failures = provider_for().check({}, props).failures
    assert any("SingleInstanceTypeSubnetValidator" in f.reason for f in failures)


def rule_set(permissions: list[dict[str, Any]]) -> set[tuple[str, int | None, int | None, str]]:
    """EC2 permissions as (protocol, from, to, peer) tuples, one per peer."""
    out = set()
    for p in permissions:
        peers = [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]
        peers += [r["CidrIp"] for r in p.get("IpRanges", [])] + [
            r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])
        ]
        peers += [r["PrefixListId"] for r in p.get("PrefixListIds", [])]
        out |= {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), peer) for peer in peers}
    return out


def test_moto_holds_the_planned_properties(
    pcluster_api: dict[str, Any], build: Callable[[str], MotoPlan]
) -> None:
    """What ParallelCluster's validators read is in moto as planned: every group's rules (and only
    those), the mount targets' subnets and groups, Lustre's subnet, groups and type, the profiles'
    roles and paths."""
    world = pcluster_api
    built = build("dev")
    plan = planned("dev").plan
    ids = built.ids

    def session(service: str) -> Any:
        return boto3.client(service, endpoint_url=world["moto"], region_name=world["region"])  # type: ignore[call-overload]

    ec2, efs, fsx, iam = session("ec2"), session("efs"), session("fsx"), session("iam")
    expected: dict[str, dict[str, set[tuple[str, int | None, int | None, str]]]] = {}
    for group in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        expected[ids[str(group.id)]] = {"ingress": set(), "egress": set()}
    for token, direction in (
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "ingress"),
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "egress"),
    ):
        for rule in plan.of_type(token):
            i = rule.inputs
            protocol = str(i["ipProtocol"])
            ports = (None, None) if protocol == "-1" else (int(i["fromPort"]), int(i["toPort"]))
            peer = ids.get(str(i.get("referencedSecurityGroupId")), i.get("cidrIpv4"))
            expected[ids[str(i["securityGroupId"])]][direction].add((protocol, *ports, str(peer)))
    groups = ec2.describe_security_groups(GroupIds=list(expected))["SecurityGroups"]
    assert len(groups) == len(expected)
    for group in groups:
        assert rule_set(group["IpPermissions"]) == expected[group["GroupId"]]["ingress"], group["GroupName"]
        assert rule_set(group["IpPermissionsEgress"]) == expected[group["GroupId"]]["egress"], group[
            "GroupName"
        ]

    # Each subnet sits behind its tier's network ACL, with exactly the planned entries.
    for acl in plan.of_type("aws:ec2/networkAcl:NetworkAcl"):
        (real_acl,) = ec2.describe_network_acls(NetworkAclIds=[ids[str(acl.id)]])["NetworkAcls"]
        assert {a["SubnetId"] for a in real_acl["Associations"]} == {ids[s] for s in acl.inputs["subnetIds"]}
        planned_entries = {
            (int(e["ruleNumber"]), bool(e["egress"]), str(e["protocol"]), e["cidrBlock"])
            for e in (r.inputs for r in plan.of_type("aws:ec2/networkAclRule:NetworkAclRule"))
            if e["networkAclId"] == str(acl.id)
        }
        real_entries = {
            (e["RuleNumber"], e["Egress"], e["Protocol"], e["CidrBlock"])
            for e in real_acl["Entries"]
            if e["RuleNumber"] != 32767  # the ACL's final deny
        }
        assert real_entries == planned_entries, acl.name

    for target in plan.of_type("aws:efs/mountTarget:MountTarget"):
        real = efs.describe_mount_targets(MountTargetId=ids[str(target.id)])["MountTargets"][0]
        assert real["SubnetId"] == ids[target.inputs["subnetId"]]
        groups_of = efs.describe_mount_target_security_groups(MountTargetId=real["MountTargetId"])
        assert groups_of["SecurityGroups"] == [ids[g] for g in target.inputs["securityGroups"]]

    for lustre in plan.of_type("aws:fsx/lustreFileSystem:LustreFileSystem"):
        real = fsx.describe_file_systems(FileSystemIds=[ids[str(lustre.id)]])["FileSystems"][0]
        assert real["SubnetIds"] == [ids[lustre.inputs["subnetIds"]]]
        assert real["StorageCapacity"] == int(lustre.inputs["storageCapacity"])
        assert real["LustreConfiguration"]["DeploymentType"] == lustre.inputs["deploymentType"]
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=real["NetworkInterfaceIds"])
        assert {g["GroupId"] for g in eni["NetworkInterfaces"][0]["Groups"]} == {
            ids[g] for g in lustre.inputs["securityGroupIds"]
        }

    for profile in plan.of_type("aws:iam/instanceProfile:InstanceProfile"):
        real = iam.get_instance_profile(InstanceProfileName=str(profile.id))["InstanceProfile"]
        assert real["Path"] == profile.inputs["path"]
        assert [r["RoleName"] for r in real["Roles"]] == [profile.inputs["role"]]
        assert real["Arn"] == ids[profile.outputs["arn"]]
