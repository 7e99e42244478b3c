"""The dev stack's cluster, as the renderer writes it, through the provider and ParallelCluster's API.

The resources the other components would create (security groups, placement groups, instance
profiles, FSx for Lustre, EFS, bootstrap scripts, the accounting DB secret) are made in moto first;
then the rendered config goes through ParallelCluster's validators (dry run), its CDK synth and
(moto's) CloudFormation: create → a fleet-stop update → delete.

As in the dev stack, the EFA queues get one subnet and the debug queue spans two AZs, which the
renderer declares with `Instances` (ParallelCluster 3.16.1's SingleInstanceTypeSubnetValidator
rejects `InstanceType` on a multi-subnet queue; `test_multi_subnet_queue_needs_instances` pins that).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from hpc_platform.config import load_stack_file
from hpc_platform.pcluster.client import Backoff
from hpc_platform.pcluster.provider import ParallelClusterProvider, ProviderSettings
from hpc_platform.pcluster.render import (
    ClusterRefs,
    DatabaseRef,
    ResolvedMount,
    ScriptRef,
    render_cluster_config,
)
from tests.integration.provider_io import RecordingTransport, provider_props

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "hpc-dev-data"


def aws(world: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=world["moto"], region_name=world["region"])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def refs(pcluster_api: dict[str, Any]) -> ClusterRefs:
    """What the network, storage, IAM and accounting components would hand the renderer."""
    world = pcluster_api
    region = world["region"]
    ec2, iam, s3 = aws(world, "ec2"), aws(world, "iam"), aws(world, "s3")
    vpc = world["vpc_id"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.32.0/21", AvailabilityZone=f"{region}b")["Subnet"][
        "SubnetId"
    ]
    head_sg = ec2.create_security_group(GroupName="hpc-dev-head", Description="head node", VpcId=vpc)[
        "GroupId"
    ]
    nodes_sg = ec2.create_security_group(GroupName="hpc-dev-nodes", Description="EFA nodes", VpcId=vpc)[
        "GroupId"
    ]
    self_rule = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": nodes_sg}]}]
    ec2.authorize_security_group_ingress(GroupId=nodes_sg, IpPermissions=self_rule)
    ec2.authorize_security_group_egress(GroupId=nodes_sg, IpPermissions=self_rule)
    for queue in ("compute-spot", "compute-od"):
        ec2.create_placement_group(GroupName=f"hpc-dev-{queue}", Strategy="cluster")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    profiles = {}
    for role in ("head", "compute"):
        iam.create_role(
            RoleName=f"hpc-dev-{role}", AssumeRolePolicyDocument=json.dumps(trust), Path="/parallelcluster/"
        )
        profile = iam.create_instance_profile(InstanceProfileName=f"hpc-dev-{role}", Path="/parallelcluster/")
        iam.add_role_to_instance_profile(InstanceProfileName=f"hpc-dev-{role}", RoleName=f"hpc-dev-{role}")
        profiles[role] = profile["InstanceProfile"]["Arn"]
    lambda_trust = {
        **trust,
        "Statement": [{**trust["Statement"][0], "Principal": {"Service": "lambda.amazonaws.com"}}],
    }
    lambda_role = iam.create_role(
        RoleName="hpc-dev-lambda", AssumeRolePolicyDocument=json.dumps(lambda_trust), Path="/parallelcluster/"
    )["Role"]["Arn"]
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
    scripts = ("slurm-metrics-agent.sh", "efa-check.sh", "node-tuning.sh")
    for script in scripts:
        s3.put_object(Bucket=BUCKET, Key=f"bootstrap/v1/{script}", Body=b"#!/bin/bash\nexit 0\n")
    fsx = aws(world, "fsx")

    def lustre(deployment: str) -> str:
        settings: dict[str, Any] = {"DeploymentType": deployment}
        if deployment == "PERSISTENT_2":
            settings["PerUnitStorageThroughput"] = 125
        created = fsx.create_file_system(
            FileSystemType="LUSTRE",
            StorageCapacity=1200,
            SubnetIds=[subnet],
            SecurityGroupIds=[nodes_sg],
            LustreConfiguration=settings,
        )
        return str(created["FileSystem"]["FileSystemId"])

    efs = aws(world, "efs")
    home = efs.create_file_system(CreationToken="hpc-dev-home", Encrypted=True)["FileSystemId"]
    for mount_subnet in (subnet, world["head_subnet_id"]):
        efs.create_mount_target(FileSystemId=home, SubnetId=mount_subnet, SecurityGroups=[nodes_sg])
    secret = aws(world, "secretsmanager").create_secret(Name="hpc-dev-slurmdb", SecretString="not-used")[
        "ARN"
    ]
    return ClusterRefs(
        head_node_subnet_id=world["head_subnet_id"],
        queue_subnet_ids={
            "compute-spot": [subnet],
            "compute-od": [subnet],
            "debug": [subnet, world["compute_subnet_id"]],
        },
        head_node_security_group_ids=[head_sg, nodes_sg],
        compute_security_group_ids=[nodes_sg],
        placement_group_names={"compute-spot": "hpc-dev-compute-spot", "compute-od": "hpc-dev-compute-od"},
        head_node_instance_profile_arn=profiles["head"],
        compute_instance_profile_arn=profiles["compute"],
        lambda_functions_role_arn=lambda_role,
        shared_storage=[
            ResolvedMount("scratch", "/scratch", "FsxLustre", lustre("SCRATCH_2")),
            ResolvedMount("persistent", "/fsx", "FsxLustre", lustre("PERSISTENT_2")),
            ResolvedMount("home", "/home", "Efs", home),
        ],
        head_node_scripts=[ScriptRef(f"s3://{BUCKET}/bootstrap/v1/slurm-metrics-agent.sh", ("dev", region))],
        efa_compute_scripts=[ScriptRef(f"s3://{BUCKET}/bootstrap/v1/efa-check.sh")],
        compute_scripts=[ScriptRef(f"s3://{BUCKET}/bootstrap/v1/node-tuning.sh")],
        database=DatabaseRef("hpc-dev-slurmdb.cluster-abc.us-east-2.rds.amazonaws.com", "slurmdbd", secret),
        stack_marker="hpc-platform/dev",
    )


def as_pulumi_passes_it(value: Any) -> Any:
    """Numbers cross Pulumi's property protocol as floats: the provider receives `MaxCount: 4.0`."""
    if isinstance(value, dict):
        return {k: as_pulumi_passes_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_pulumi_passes_it(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def dev_config(refs: ClusterRefs) -> dict[str, Any]:
    config = load_stack_file(REPO_ROOT / "Pulumi.dev.yaml").config
    rendered: dict[str, Any] = as_pulumi_passes_it(render_cluster_config(config, refs))
    return rendered


def props(world: dict[str, Any], config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("cluster_name", "hpc-dev")
    overrides.setdefault("allow_fleet_stop", True)
    overrides.setdefault("stack_marker", "hpc-platform/dev")
    return provider_props(world, cluster_config=config, **overrides)


def debug_resource(config: dict[str, Any]) -> dict[str, Any]:
    """The debug queue's instance entry (multi-subnet: the first of `Instances`)."""
    queue = next(q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] == "debug")
    resource: dict[str, Any] = queue["ComputeResources"][0]
    instances: list[dict[str, Any]] = resource.get("Instances", [resource])
    return instances[0]


def test_rendered_dev_cluster_create_update_delete(pcluster_api: dict[str, Any], refs: ClusterRefs) -> None:
    world = pcluster_api
    transport = RecordingTransport()
    provider = ParallelClusterProvider(
        ProviderSettings(
            transport=transport,
            request_backoff=Backoff(base_seconds=0.2, max_seconds=1, max_attempts=3),
            poll_backoff=Backoff(base_seconds=0.25, max_seconds=1),
            fleet_timeout_minutes=1,
            request_timeout_seconds=120,
        )
    )
    config = dev_config(refs)

    checked = provider.check({}, props(world, config))
    assert checked.failures == []

    state = provider.create(props(world, config)).outs or {}
    assert state["cluster_status"] == "CREATE_COMPLETE"
    assert provider.read("hpc-dev", state).outs["cluster_config"] == config  # type: ignore[index]

    # The debug queue's instance type: ParallelCluster applies it only with the fleet stopped.
    bigger = copy.deepcopy(config)
    debug_resource(bigger)["InstanceType"] = "c6i.2xlarge"
    new = props(world, bigger)
    assert provider.diff("hpc-dev", state, new).replaces == []
    transport.calls.clear()
    state = provider.update("hpc-dev", state, new).outs or {}
    assert state["cluster_status"] == "UPDATE_COMPLETE"
    fleet = "/v3/clusters/hpc-dev/computefleet"
    assert transport.writes() == [("PATCH", fleet), ("PUT", "/v3/clusters/hpc-dev"), ("PATCH", fleet)]
    live = provider.read("hpc-dev", state).outs or {}
    assert debug_resource(live["cluster_config"])["InstanceType"] == "c6i.2xlarge"

    transport.calls.clear()
    provider.delete("hpc-dev", state)
    assert transport.writes() == [("DELETE", "/v3/clusters/hpc-dev")]
    assert provider.read("hpc-dev", state).id == ""


def test_multi_subnet_queue_needs_instances(pcluster_api: dict[str, Any], refs: ClusterRefs) -> None:
    """ParallelCluster's rule the renderer follows: a queue spread over several subnets declares its
    instance types with `Instances`; the same queue with `InstanceType` is rejected."""
    world = pcluster_api
    config = dev_config(refs)
    debug = next(q for q in config["Scheduling"]["SlurmQueues"] if q["Name"] == "debug")
    assert len(debug["Networking"]["SubnetIds"]) == 2
    assert all("Instances" in resource for resource in debug["ComputeResources"])
    provider = ParallelClusterProvider(ProviderSettings(request_backoff=Backoff(0.2, 1, 3)))
    assert provider.check({}, props(world, config, cluster_name="hpc-dev-subnets")).failures == []
    single_type = copy.deepcopy(config)
    debug = next(q for q in single_type["Scheduling"]["SlurmQueues"] if q["Name"] == "debug")
    for resource in debug["ComputeResources"]:
        resource["InstanceType"] = resource.pop("Instances")[0]["InstanceType"]
    failures = provider.check({}, props(world, single_type, cluster_name="hpc-dev-subnets")).failures
    assert any("SingleInstanceTypeSubnetValidator" in f.reason for f in failures)
