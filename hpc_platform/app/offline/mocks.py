"""What AWS would answer, closely enough for a plan: realistic ids, ARNs and computed outputs.

Ids are derived from the resource's URN, so a plan of the same program is the same every time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime import rpc

from hpc_platform.pcluster.api_access import (
    API_INVOKE_URL_OUTPUT,
    API_USER_ROLE_OUTPUT,
    api_user_role_arn,
    stack_id_suffix,
)

MOCK_ACCOUNT_ID = "123456789012"

Outputs = dict[str, Any]


def digest(seed: str, length: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def uuid_like(seed: str) -> str:
    """A stable UUID-shaped string (KMS key ids, CloudFormation stack id suffixes)."""
    value = digest(seed, 32)
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:32]}"


# type token → (id prefix or None to use the name, ARN service, ARN resource template)
_ID_AND_ARN: dict[str, tuple[str | None, str, str]] = {
    "aws:ec2/vpc:Vpc": ("vpc-", "ec2", "vpc/{id}"),
    "aws:ec2/subnet:Subnet": ("subnet-", "ec2", "subnet/{id}"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg-", "ec2", "security-group/{id}"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr-", "ec2", "security-group-rule/{id}"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("sgr-", "ec2", "security-group-rule/{id}"),
    "aws:ec2/internetGateway:InternetGateway": ("igw-", "ec2", "internet-gateway/{id}"),
    "aws:ec2/natGateway:NatGateway": ("nat-", "ec2", "natgateway/{id}"),
    "aws:ec2/eip:Eip": ("eipalloc-", "ec2", "elastic-ip/{id}"),
    "aws:ec2/routeTable:RouteTable": ("rtb-", "ec2", "route-table/{id}"),
    "aws:ec2/placementGroup:PlacementGroup": (None, "ec2", "placement-group/{id}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce-", "ec2", "vpc-endpoint/{id}"),
    "aws:ec2/flowLog:FlowLog": ("fl-", "ec2", "vpc-flow-log/{id}"),
    "aws:ec2/networkAcl:NetworkAcl": ("acl-", "ec2", "network-acl/{id}"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt-", "ec2", "launch-template/{id}"),
    "aws:fsx/lustreFileSystem:LustreFileSystem": ("fs-", "fsx", "file-system/{id}"),
    "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation": ("dra-", "fsx", "association/{id}"),
    "aws:efs/fileSystem:FileSystem": ("fs-", "elasticfilesystem", "file-system/{id}"),
    "aws:efs/accessPoint:AccessPoint": ("fsap-", "elasticfilesystem", "access-point/{id}"),
    "aws:efs/mountTarget:MountTarget": ("fsmt-", "elasticfilesystem", "mount-target/{id}"),
    "aws:kms/key:Key": ("", "kms", "key/{id}"),
    "aws:kms/alias:Alias": (None, "kms", "{id}"),
    "aws:cloudwatch/logGroup:LogGroup": (None, "logs", "log-group:{id}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (None, "cloudwatch", "alarm:{id}"),
    "aws:cloudwatch/dashboard:Dashboard": (None, "cloudwatch", "dashboard/{id}"),
    "aws:sns/topic:Topic": (None, "sns", "{id}"),
    "aws:iam/role:Role": (None, "iam", "role/{id}"),
    "aws:iam/policy:Policy": (None, "iam", "policy/{id}"),
    "aws:iam/instanceProfile:InstanceProfile": (None, "iam", "instance-profile/{id}"),
    "aws:secretsmanager/secret:Secret": (None, "secretsmanager", "secret:{id}-AbCdEf"),
    "aws:rds/cluster:Cluster": (None, "rds", "cluster:{id}"),
    "aws:rds/clusterInstance:ClusterInstance": (None, "rds", "db:{id}"),
    "aws:rds/instance:Instance": (None, "rds", "db:{id}"),
    "aws:ecs/cluster:Cluster": (None, "ecs", "cluster/{id}"),
    "aws:rds/subnetGroup:SubnetGroup": (None, "rds", "subgrp:{id}"),
    "aws:s3/bucket:Bucket": (None, "s3", "{id}"),
    "aws:s3/bucketV2:BucketV2": (None, "s3", "{id}"),
    "aws:budgets/budget:Budget": (None, "budgets", "budget/{id}"),
    "aws:amp/workspace:Workspace": ("ws-", "aps", "workspace/{id}"),
    "aws:grafana/workspace:Workspace": ("g-", "grafana", "/workspaces/{id}"),
    "aws:cloudwatch/eventRule:EventRule": (None, "events", "rule/{id}"),
    "aws:cloudformation/stack:Stack": (None, "cloudformation", "stack/{id}/{uuid}"),
    "aws:cloudtrail/trail:Trail": (None, "cloudtrail", "trail/{id}"),
    "aws:cfg/rule:Rule": (None, "config", "config-rule/{id}"),
}

# Services whose ARNs carry no region (global services).
_GLOBAL_SERVICES = {"iam", "s3", "budgets"}


def _physical_name(args: pulumi.runtime.MockResourceArgs) -> str:
    for key in ("name", "bucket", "clusterIdentifier", "identifier", "stackName"):
        value = args.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return f"{args.name}-{digest(args.name, 7)}"


def _arn(service: str, region: str, resource: str) -> str:
    if service == "s3":
        return f"arn:aws:s3:::{resource}"
    where = "" if service in _GLOBAL_SERVICES else region
    account = "" if service == "s3" else MOCK_ACCOUNT_ID
    return f"arn:aws:{service}:{where}:{account}:{resource}"


def _fsx_outputs(resource_id: str, inputs: dict[str, Any], region: str) -> Outputs:
    return {
        "dnsName": f"{resource_id}.fsx.{region}.amazonaws.com",
        "mountName": digest(resource_id, 8),
        "networkInterfaceIds": [f"eni-{digest(resource_id + str(i))}" for i in range(2)],
        "vpcId": f"vpc-{digest('vpc')}",
        "ownerId": MOCK_ACCOUNT_ID,
    }


# Engine → its default port (what RDS answers when the program sets none).
_RDS_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mariadb": 3306}


def _rds_instance_outputs(resource_id: str, inputs: dict[str, Any], region: str) -> Outputs:
    port = inputs.get("port") or _RDS_DEFAULT_PORTS.get(str(inputs.get("engine")), 5432)
    address = f"{resource_id}.{digest(resource_id, 12)}.{region}.rds.amazonaws.com"
    outputs: Outputs = {"address": address}
    if not rpc.contains_unknowns(port):
        # A port the program leaves unknown in a preview leaves the endpoint unknown, as with RDS.
        outputs.update(port=port, endpoint=f"{address}:{port}")
    if inputs.get("manageMasterUserPassword"):
        # RDS creates and owns this secret (`rds!db-<uuid>`); its value never passes the program.
        secret = f"rds!db-{uuid_like(resource_id)}"
        outputs["masterUserSecrets"] = [
            {
                "secretArn": _arn("secretsmanager", region, f"secret:{secret}-AbCdEf"),
                "kmsKeyId": inputs.get("masterUserSecretKmsKeyId") or "alias/aws/secretsmanager",
                "secretStatus": "active",
            }
        ]
    return outputs


def _type_outputs(token: str, resource_id: str, inputs: dict[str, Any], region: str) -> Outputs:
    """Computed outputs the real provider returns and this program reads."""
    if token == "aws:ec2/vpc:Vpc":
        return {
            "defaultSecurityGroupId": f"sg-{digest(resource_id + 'default')}",
            "mainRouteTableId": f"rtb-{digest(resource_id + 'main')}",
        }
    if token == "aws:fsx/lustreFileSystem:LustreFileSystem":
        return _fsx_outputs(resource_id, inputs, region)
    if token == "aws:efs/fileSystem:FileSystem":
        return {"dnsName": f"{resource_id}.efs.{region}.amazonaws.com"}
    if token == "aws:kms/key:Key":
        return {"keyId": resource_id}
    if token == "aws:ec2/placementGroup:PlacementGroup":
        return {"name": resource_id, "placementGroupId": f"pg-{digest(resource_id)}"}
    if token in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        return {
            "bucket": resource_id,
            "bucketDomainName": f"{resource_id}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{resource_id}.s3.{region}.amazonaws.com",
        }
    if token == "aws:rds/cluster:Cluster":
        return {
            "endpoint": f"{resource_id}.cluster-{digest(resource_id, 12)}.{region}.rds.amazonaws.com",
            "port": 3306,
        }
    if token == "aws:rds/instance:Instance":
        return _rds_instance_outputs(resource_id, inputs, region)
    if token == "aws:sns/topic:Topic":
        return {"name": resource_id}
    if token == "aws:amp/workspace:Workspace":
        return {
            "prometheusEndpoint": f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{resource_id}/"
        }
    if token == "aws:grafana/workspace:Workspace":
        return {"endpoint": f"{resource_id}.grafana-workspace.{region}.amazonaws.com"}
    # pulumi-aws autonames IAM roles, profiles and policies in Check: a real preview knows the name.
    if token == "aws:iam/role:Role":
        return {"name": resource_id, "uniqueId": "AROA" + digest(resource_id, 17).upper()}
    if token in ("aws:iam/instanceProfile:InstanceProfile", "aws:iam/policy:Policy"):
        return {"name": resource_id}
    if token == "aws:cloudformation/stack:Stack":
        # The ParallelCluster API template's outputs (CreateApiUserRole=true, its default).
        stack_id = _arn("cloudformation", region, f"stack/{resource_id}/{uuid_like(resource_id)}")
        invoke_url = f"https://{digest(resource_id, 10)}.execute-api.{region}.amazonaws.com/prod"
        return {
            "outputs": {
                API_INVOKE_URL_OUTPUT: invoke_url,
                API_USER_ROLE_OUTPUT: api_user_role_arn("aws", MOCK_ACCOUNT_ID, stack_id_suffix(stack_id)),
            }
        }
    return {}


def _awsx_vpc_outputs(args: pulumi.runtime.MockResourceArgs, region: str) -> Outputs:
    """The shape of awsx.ec2.Vpc's outputs, for programs that use it as a remote component."""
    azs = args.inputs.get("availabilityZoneNames") or [f"{region}a", f"{region}b"]
    specs = args.inputs.get("subnetSpecs") or [{"type": "Public"}, {"type": "Private"}]
    if rpc.contains_unknowns(azs) or rpc.contains_unknowns(specs):
        # Zones or tiers known only after deploy: so are the subnets (ids derived from them would
        # carry the unknown value's text).
        return {"vpcId": f"vpc-{digest(args.name)}"}
    ids: dict[str, list[str]] = {"Public": [], "Private": [], "Isolated": []}
    for spec in specs:
        for az in azs:
            ids.setdefault(spec["type"], []).append(f"subnet-{digest(f'{args.name}{spec}{az}')}")
    return {
        "vpcId": f"vpc-{digest(args.name)}",
        "publicSubnetIds": ids["Public"],
        "privateSubnetIds": ids["Private"],
        "isolatedSubnetIds": ids["Isolated"],
        "natGateways": [],
        "routeTables": [],
        "subnetLayout": [dict(spec) for spec in specs],
    }


# remote component type → builder of the outputs its provider would return
REMOTE_COMPONENT_OUTPUTS: dict[str, Callable[[pulumi.runtime.MockResourceArgs, str], Outputs]] = {
    "awsx:ec2:Vpc": _awsx_vpc_outputs,
}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


# Shorter made-up values are not recorded: a report looks for them inside other strings, and a
# short one could match by accident.
_MIN_GENERATED_LENGTH = 6


class PlanMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str):
        self.region = region
        self.generated: set[str] = {MOCK_ACCOUNT_ID}
        """Every string these mocks made up (ids, ARNs, computed outputs, the account): values a
        deploy replaces with real ones. Values copied from a resource's inputs are not in it."""

    def _record(
        self, args: pulumi.runtime.MockResourceArgs, resource_id: str | None, outputs: Outputs
    ) -> None:
        known = set(_strings(args.inputs))
        for text in _strings([resource_id, outputs]):
            if text not in known and len(text) >= _MIN_GENERATED_LENGTH:
                self.generated.add(text)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, Outputs]:
        resource_id, outputs = self._new_resource(args)
        self._record(args, resource_id, outputs)
        return resource_id, outputs

    def _new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, Outputs]:
        if not args.custom:
            builder = REMOTE_COMPONENT_OUTPUTS.get(args.typ)
            return (None, builder(args, self.region) if builder else {})
        prefix, service, arn_template = _ID_AND_ARN.get(args.typ, ("", "", ""))
        if prefix is None:
            resource_id = _physical_name(args)
        elif args.typ == "aws:kms/key:Key":
            resource_id = uuid_like(args.name)
        else:
            resource_id = f"{prefix or args.typ.rsplit(':', 1)[-1].lower() + '-'}{digest(args.name)}"
        outputs: Outputs = dict(args.inputs)
        if arn_template:
            resource = arn_template.format(id=resource_id, uuid=uuid_like(resource_id))
            outputs["arn"] = _arn(service, self.region, resource)
        outputs.update(_type_outputs(args.typ, resource_id, args.inputs, self.region))
        if isinstance(args.inputs.get("tags"), dict):
            outputs["tagsAll"] = dict(args.inputs["tags"])
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[Outputs, list[tuple[str, str]] | None]:
        # Failures must be a list: pulumi's mock monitor iterates over them (None breaks every invoke).
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/plan",
                "userId": "AIDAPLAN",
                "id": MOCK_ACCOUNT_ID,
            }, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {
                "json": json.dumps({"Version": "2012-10-17", "Statement": args.args.get("statements", [])})
            }, []
        return {}, []
