"""ParallelCluster's own storage-networking validators, run on the plan's real security groups.

Before it creates a cluster, ParallelCluster 3.16.1 checks that every existing file system it
mounts is reachable from every node (`pcluster.validators.cluster_validators`):
- `EfsIdValidator`: each AZ with cluster subnets has a mount target, and the mount target's
  security groups allow TCP 2049 in *and* out (`_is_access_allowed(..., check_outbound=True)`);
- `ExistingFsxNetworkingValidator`: the Lustre file system's network interfaces carry security
  groups that allow TCP 988 (`FSX_PORTS["LUSTRE"]`) in and out.

A rule counts when it names a security group that every node (head node and each queue) carries,
or when its CIDRs cover every cluster subnet. This test loads each stack's rendered cluster config
with ParallelCluster's schema, then runs those two validators in ParallelCluster's venv with its
AWS layer answered from the offline plan: the security groups and their rules, the subnets, the
EFS mount targets and the Lustre file systems exactly as planned. Any finding fails the test.
A moto build of the whole plan proves the same end to end; this is the fast plan-level guard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app.offline.engine import Plan
from hpc_platform.pcluster import KIND_PROPERTY, KIND_VALUE
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.stacks import STACKS, planned

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
LUSTRE = "aws:fsx/lustreFileSystem:LustreFileSystem"

RUN_VALIDATORS = r"""
import json, sys
from types import SimpleNamespace
import pcluster.aws.aws_api as aws_api
from pcluster.schemas.cluster_schema import ClusterSchema
from pcluster.validators.cluster_validators import EfsIdValidator, ExistingFsxNetworkingValidator

world = json.load(open(sys.argv[1]))
subnets = world["subnets"]

class Ec2:
    def describe_security_groups(self, ids):
        return [world["security_groups"][i] for i in ids]
    def get_subnet_avail_zone(self, subnet_id):
        return subnets[subnet_id]["az"]
    def get_subnet_cidr(self, subnet_id):
        return subnets[subnet_id]["cidr"]
    def get_subnet_vpc(self, subnet_id):
        return world["vpc_id"]
    def describe_network_interfaces(self, ids):
        return [world["network_interfaces"][i] for i in ids]

class Efs:
    def get_efs_mount_target_id(self, efs_id, az):
        for target in world["mount_targets"].get(efs_id, []):
            if subnets[target["subnet_id"]]["az"] == az:
                return target["id"]
        return None
    def get_efs_mount_target_security_groups(self, target_id):
        return next(
            t["security_groups"] for ts in world["mount_targets"].values() for t in ts if t["id"] == target_id
        )
    def is_efs_standard(self, efs_id):
        return True

class Fsx:
    def get_file_systems_info(self, ids):
        return [SimpleNamespace(file_cache_id=None, **world["file_systems"][i]) for i in ids]
    def describe_file_caches(self, ids):
        return []

# Loading needs no AWS answers for these configs; the validators' calls are answered from the plan.
cluster = ClusterSchema(cluster_name=world["cluster_name"]).load(world["config"])
fake = SimpleNamespace(ec2=Ec2(), efs=Efs(), fsx=Fsx())
aws_api.AWSApi.instance = staticmethod(lambda: fake)
by_nodes = cluster.security_groups_by_nodes
failures = []
efs_ids = [s.file_system_id for s in cluster.shared_storage or [] if type(s).__name__ == "SharedEfs"]
fsx_ids = [
    s.file_system_id
    for s in cluster.shared_storage or []
    if type(s).__name__ == "SharedFsxLustre" and s.file_system_id
]
for efs_id in efs_ids:
    for result in EfsIdValidator().execute(
        efs_id=efs_id,
        avail_zones_mapping=cluster.availability_zones_subnets_mapping,
        security_groups_by_nodes=by_nodes,
    ):
        failures.append(
            {"validator": "EfsIdValidator", "level": result.level.name, "message": result.message}
        )
for result in ExistingFsxNetworkingValidator().execute(
    file_storage_ids=fsx_ids,
    subnet_ids=[cluster.head_node.networking.subnet_id] + cluster.compute_subnet_ids,
    security_groups_by_nodes=by_nodes,
):
    failures.append(
        {"validator": "ExistingFsxNetworkingValidator", "level": result.level.name, "message": result.message}
    )
print(json.dumps({"efs": efs_ids, "fsx": fsx_ids, "failures": failures}))
"""


def _permission(rule: dict[str, Any]) -> dict[str, Any]:
    """One planned rule resource as DescribeSecurityGroups reports it."""
    permission: dict[str, Any] = {
        "IpProtocol": rule["ipProtocol"],
        "IpRanges": [{"CidrIp": rule["cidrIpv4"]}] if rule.get("cidrIpv4") else [],
        "UserIdGroupPairs": (
            [{"GroupId": rule["referencedSecurityGroupId"]}] if rule.get("referencedSecurityGroupId") else []
        ),
        "PrefixListIds": [{"PrefixListId": rule["prefixListId"]}] if rule.get("prefixListId") else [],
    }
    if "fromPort" in rule:
        permission["FromPort"] = int(rule["fromPort"])
        permission["ToPort"] = int(rule["toPort"])
    return permission


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def plan_world(plan: Plan) -> dict[str, Any]:
    """The AWS state ParallelCluster's validators read, as the plan would create it."""
    (vpc,) = plan.of_type(VPC)
    groups: dict[str, dict[str, Any]] = {
        sg.id: {"GroupId": sg.id, "IpPermissions": [], "IpPermissionsEgress": []}
        for sg in plan.of_type(SECURITY_GROUP)
        if sg.id
    }
    for token, key in ((INGRESS, "IpPermissions"), (EGRESS, "IpPermissionsEgress")):
        for rule in plan.of_type(token):
            groups[rule.inputs["securityGroupId"]][key].append(_permission(rule.inputs))
    subnets = {
        s.id: {"az": s.inputs["availabilityZone"], "cidr": s.inputs["cidrBlock"]}
        for s in plan.of_type(SUBNET)
        if s.id
    }
    mount_targets: dict[str, list[dict[str, Any]]] = {}
    for target in plan.of_type(MOUNT_TARGET):
        mount_targets.setdefault(target.inputs["fileSystemId"], []).append(
            {
                "id": target.id,
                "subnet_id": target.inputs["subnetId"],
                "security_groups": target.inputs["securityGroups"],
            }
        )
    file_systems: dict[str, dict[str, Any]] = {}
    interfaces: dict[str, dict[str, Any]] = {}
    for fs in plan.of_type(LUSTRE):
        # FSx puts its network interfaces in the file system's subnet with its security groups.
        eni = f"eni-{fs.id}"
        interfaces[eni] = {
            "NetworkInterfaceId": eni,
            "VpcId": vpc.id,
            "Groups": [{"GroupId": g} for g in fs.inputs["securityGroupIds"]],
        }
        file_systems[str(fs.id)] = {
            "file_system_id": fs.id,
            "vpc_id": vpc.id,
            "network_interface_ids": [eni],
            "file_storage_type": "LUSTRE",
        }
    (cluster,) = [r for r in plan.resources if r.inputs.get(KIND_PROPERTY) == KIND_VALUE]
    return {
        "vpc_id": vpc.id,
        "security_groups": groups,
        "subnets": subnets,
        "mount_targets": mount_targets,
        "file_systems": file_systems,
        "network_interfaces": interfaces,
        "cluster_name": cluster.inputs["cluster_name"],
        "config": cluster.inputs["cluster_config"],
    }


@pytest.mark.parametrize("stack", STACKS)
def test_parallelcluster_storage_validators_accept_the_planned_security_groups(
    stack: str, tmp_path: Path
) -> None:
    world = plan_world(planned(stack).plan)
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    result = run_pcluster_python(RUN_VALIDATORS, str(path))
    assert result.returncode == 0, result.stderr[-4000:]
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    # The validators really ran on our storage: home on EFS, scratch and persistent on Lustre.
    assert verdict["efs"] and len(verdict["fsx"]) == len(world["file_systems"]) >= 1
    assert verdict["failures"] == []
