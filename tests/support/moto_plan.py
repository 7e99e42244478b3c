"""Build a stack's offline plan in moto, resource by resource, with the plan's own properties.

`build_plan_in_moto(plan, endpoint_url, region)` walks the plan that `hpcctl plan` builds
(`hpc_platform.app.offline`) and creates, over HTTP with boto3 against a moto server, every planned
resource of the types ParallelCluster reads when it validates and creates a cluster — network,
security groups and every rule, placement groups, EFS with mount targets and access point, FSx for
Lustre, IAM roles/policies/instance profiles, buckets with their bootstrap objects, KMS keys, the
Slurm accounting secret (and its database, whose endpoint the cluster config names) — calling the
APIs the way pulumi-aws would, with the planned values.

Planned ids, ARNs and computed outputs are the offline engine's mock values. Each one is mapped to
what moto returned (`MotoPlan.ids`); references between resources (a subnet's VPC, a rule's groups,
an ARN inside a policy document) are resolved through that map before each call. Names chosen by
the program or by Pulumi's autonaming (roles, buckets, placement groups) stay as planned.

Finally the plan's own rendered cluster config (the `cluster_config` input of the cluster's dynamic
resource, as the engine hands it to the provider) is rewritten with moto's ids, and
`MotoPlan.cluster_config` refuses to return a config in which any planned id remains.

A plan resource of a type this module neither builds nor lists in `NOT_BUILT` (with the reason)
is an error, so a new resource type in the program is noticed here.
"""

from __future__ import annotations

import copy
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from hpc_platform.app.offline import Plan, PlannedResource
from hpc_platform.app.offline.engine import SECRET_PLACEHOLDER, UNKNOWN_PLACEHOLDER, plain
from hpc_platform.app.offline.mocks import digest

CLUSTER_RESOURCE_TYPE = "pulumi-python:dynamic:Resource"

# Plan types that are not built, and why: ParallelCluster reads none of them.
NOT_BUILT: dict[str, str] = {
    CLUSTER_RESOURCE_TYPE: "the cluster itself: created through ParallelCluster's API by the test",
    "aws:cloudformation/stack:Stack": "the ParallelCluster API stack: the harness serves the API",
    "random:index/randomPassword:RandomPassword": "unknown in a preview; the secret gets a fresh value",
    "aws:budgets/budget:Budget": "not read by ParallelCluster",
    "aws:cloudwatch/dashboard:Dashboard": "not read by ParallelCluster",
    "aws:cloudwatch/eventRule:EventRule": "not read by ParallelCluster",
    "aws:cloudwatch/eventTarget:EventTarget": "not read by ParallelCluster",
    "aws:cloudwatch/logGroup:LogGroup": "not read by ParallelCluster (it creates its own log group)",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "not read by ParallelCluster",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "not read by ParallelCluster",
    "aws:sns/topic:Topic": "not read by ParallelCluster",
    "aws:sns/topicPolicy:TopicPolicy": "not read by ParallelCluster",
    "aws:sns/topicSubscription:TopicSubscription": "not read by ParallelCluster",
    "aws:ec2/flowLog:FlowLog": "not read by ParallelCluster (its log group is not built either)",
    "aws:efs/backupPolicy:BackupPolicy": "not read by ParallelCluster; moto has no PutBackupPolicy",
    "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation": "not read by ParallelCluster",
    "aws:s3/bucketIntelligentTieringConfiguration:BucketIntelligentTieringConfiguration": (
        "not read by ParallelCluster"
    ),
    "aws:s3/bucketLogging:BucketLogging": "not read by ParallelCluster",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "not read by ParallelCluster",
    "aws:amp/workspace:Workspace": "not read by ParallelCluster",
    "aws:grafana/workspace:Workspace": "not read by ParallelCluster",
    "aws:cloudtrail/trail:Trail": "not read by ParallelCluster",
    "aws:cfg/recorder:Recorder": "not read by ParallelCluster",
    "aws:cfg/deliveryChannel:DeliveryChannel": "not read by ParallelCluster",
    "aws:cfg/recorderStatus:RecorderStatus": "not read by ParallelCluster",
    "aws:cfg/rule:Rule": "not read by ParallelCluster",
}

EFS_LIFECYCLE = {
    "transitionToIa": "TransitionToIA",
    "transitionToArchive": "TransitionToArchive",
    "transitionToPrimaryStorageClass": "TransitionToPrimaryStorageClass",
}

# Shapes of AWS ids that a cluster config can carry; every one left must be moto's.
AWS_ID = re.compile(r"\b(?:vpc|subnet|sg|fs|fsap|pg|igw|nat|rtb|eni|vpce|eipalloc)-[0-9a-f]{8,17}\b")


class MotoPlanError(AssertionError):
    """The plan cannot be built faithfully (an unknown value, an unhandled type, a mock id left)."""


@dataclass
class MotoPlan:
    """What `build_plan_in_moto` made: the id map and the plan's config with moto's ids."""

    stack: str
    ids: dict[str, str]
    """Planned id / ARN / computed value → moto's (only entries that differ)."""
    built: list[tuple[str, str]] = field(default_factory=list)
    """(type, logical name) of every plan resource created in moto, in creation order."""
    cluster_inputs: dict[str, Any] = field(default_factory=dict)
    """The cluster dynamic resource's inputs, moto ids in (config included)."""

    @property
    def cluster_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.cluster_inputs["cluster_config"]
        return config

    @property
    def cluster_name(self) -> str:
        return str(self.cluster_inputs["cluster_name"])


def build_plan_in_moto(plan: Plan, endpoint_url: str, region: str) -> MotoPlan:
    """Create the plan's resources in the moto server at `endpoint_url`; see the module docstring."""
    return _Builder(plan, endpoint_url, region).build()


def autoname(resource: PlannedResource) -> str:
    """The physical name Pulumi's autonaming gives a resource without a `name` input (the logical
    name plus a suffix); the offline engine's mocks use the same shape for the ids of named types."""
    return f"{resource.name}-{digest(resource.name, 7)}"


def _tags(inputs: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (inputs.get("tags") or {}).items()}


def _tag_list(inputs: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in _tags(inputs).items()]


def _tag_spec(resource_type: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    tags = _tag_list(inputs)
    return [{"ResourceType": resource_type, "Tags": tags}] if tags else []


def _int(value: Any) -> int:
    """Numbers cross Pulumi's property protocol as floats."""
    return int(float(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


class _Builder:
    # Creation order (what a type references is built before it) and the method building it.
    HANDLERS: tuple[tuple[str, str], ...] = (
        ("aws:kms/key:Key", "_key"),
        ("aws:kms/alias:Alias", "_alias"),
        ("aws:ec2/vpc:Vpc", "_vpc"),
        ("aws:ec2/subnet:Subnet", "_subnet"),
        ("aws:ec2/internetGateway:InternetGateway", "_internet_gateway"),
        ("aws:ec2/eip:Eip", "_eip"),
        ("aws:ec2/natGateway:NatGateway", "_nat_gateway"),
        ("aws:ec2/routeTable:RouteTable", "_route_table"),
        ("aws:ec2/route:Route", "_route"),
        ("aws:ec2/routeTableAssociation:RouteTableAssociation", "_route_table_association"),
        ("aws:ec2/networkAcl:NetworkAcl", "_network_acl"),
        ("aws:ec2/networkAclRule:NetworkAclRule", "_network_acl_rule"),
        ("aws:ec2/securityGroup:SecurityGroup", "_security_group"),
        ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "_default_security_group"),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "_ingress_rule"),
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "_egress_rule"),
        ("aws:ec2/securityGroupRule:SecurityGroupRule", "_security_group_rule"),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", "_vpc_endpoint"),
        ("aws:ec2/placementGroup:PlacementGroup", "_placement_group"),
        ("aws:s3/bucket:Bucket", "_bucket"),
        ("aws:s3/bucketV2:BucketV2", "_bucket"),
        ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "_bucket_ownership_controls"),
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "_bucket_public_access_block"),
        ("aws:s3/bucketVersioning:BucketVersioning", "_bucket_versioning"),
        ("aws:s3/bucketVersioningV2:BucketVersioningV2", "_bucket_versioning"),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "_bucket_encryption",
        ),
        ("aws:s3/bucketPolicy:BucketPolicy", "_bucket_policy"),
        ("aws:s3/bucketObjectv2:BucketObjectv2", "_bucket_object"),
        ("aws:efs/fileSystem:FileSystem", "_efs"),
        ("aws:efs/fileSystemPolicy:FileSystemPolicy", "_efs_policy"),
        ("aws:efs/mountTarget:MountTarget", "_mount_target"),
        ("aws:efs/accessPoint:AccessPoint", "_access_point"),
        ("aws:fsx/lustreFileSystem:LustreFileSystem", "_lustre"),
        ("aws:secretsmanager/secret:Secret", "_secret"),
        ("aws:secretsmanager/secretVersion:SecretVersion", "_secret_version"),
        ("aws:rds/subnetGroup:SubnetGroup", "_db_subnet_group"),
        ("aws:rds/cluster:Cluster", "_db_cluster"),
        ("aws:rds/clusterInstance:ClusterInstance", "_db_instance"),
        ("aws:iam/role:Role", "_role"),
        ("aws:iam/policy:Policy", "_policy"),
        ("aws:iam/rolePolicy:RolePolicy", "_role_policy"),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "_role_policy_attachment"),
        ("aws:iam/instanceProfile:InstanceProfile", "_instance_profile"),
    )

    def __init__(self, plan: Plan, endpoint_url: str, region: str) -> None:
        self.plan = plan
        self.region = region
        self.ids: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._clients: dict[str, Any] = {}
        self._endpoint_url = endpoint_url
        self.built: list[tuple[str, str]] = []
        self._inline: list[tuple[str, dict[str, Any]]] = []

    # -- plumbing -------------------------------------------------------------------------------
    def aws(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(  # type: ignore[call-overload]
                service, endpoint_url=self._endpoint_url, region_name=self.region
            )
        return self._clients[service]

    def map(self, planned: Any, real: Any) -> None:
        """Record that the plan's `planned` value is moto's `real` value."""
        if isinstance(planned, str) and isinstance(real, str) and planned and planned != real:
            self.ids[planned] = real
            self._pattern = None

    def resolve(self, value: Any) -> Any:
        """`value` with every planned id/ARN (whole strings and inside strings) replaced by moto's."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, str) or not self.ids:
            return value
        if self._pattern is None:
            keys = sorted(self.ids, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(k) for k in keys))
        return self._pattern.sub(lambda m: self.ids[m.group(0)], value)

    def inputs(self, resource: PlannedResource) -> dict[str, Any]:
        """The planned inputs, JSON-plain, references resolved to moto's ids."""
        resolved: dict[str, Any] = self.resolve(plain(resource.inputs))
        # Secrets ([secret]) only reach handlers that do not send them (a fresh value goes instead).
        if UNKNOWN_PLACEHOLDER in _strings(resolved):
            raise MotoPlanError(f"{resource.name}: the plan has an unknown input; it cannot be built")
        return resolved

    # -- the walk -------------------------------------------------------------------------------
    def build(self) -> MotoPlan:
        custom = [r for r in self.plan.resources if r.custom]
        handled = {token for token, _ in self.HANDLERS}
        unhandled = sorted({r.type for r in custom} - handled - set(NOT_BUILT))
        if unhandled:
            raise MotoPlanError(
                f"plan {self.plan.stack} has resource types this module neither builds nor lists in "
                f"NOT_BUILT: {unhandled}"
            )
        for token, method in self.HANDLERS:
            for resource in sorted((r for r in custom if r.type == token), key=lambda r: r.urn):
                getattr(self, method)(resource, self.inputs(resource))
                self.built.append((resource.type, resource.name))
            if token == "aws:ec2/securityGroup:SecurityGroup":
                # Inline rules may name any group: they go in once every group exists.
                for group_id, inputs in self._inline:
                    self._inline_rules(group_id, self.resolve(inputs))
        clusters = [r for r in custom if r.type == CLUSTER_RESOURCE_TYPE]
        if len(clusters) != 1:
            raise MotoPlanError(f"plan {self.plan.stack} has {len(clusters)} cluster resources, not 1")
        inputs = self.inputs_without_provider(clusters[0])
        self.assert_only_moto_ids(inputs["cluster_config"])
        return MotoPlan(self.plan.stack, dict(self.ids), list(self.built), inputs)

    def inputs_without_provider(self, cluster: PlannedResource) -> dict[str, Any]:
        # `__provider` is the pickled dynamic provider, not an input of the cluster.
        raw = {k: v for k, v in cluster.inputs.items() if k != "__provider"}
        resolved: dict[str, Any] = self.resolve(copy.deepcopy(plain(raw)))
        return resolved

    def assert_only_moto_ids(self, config: dict[str, Any]) -> None:
        moto_ids = set(self.ids.values())
        left = []
        for text in _strings(config):
            if text in (SECRET_PLACEHOLDER, UNKNOWN_PLACEHOLDER):
                left.append(text)
            left += [planned for planned in self.ids if planned in text]
            left += [m for m in AWS_ID.findall(text) if m not in moto_ids]
        if left:
            raise MotoPlanError(
                f"planned ids left in the cluster config of {self.plan.stack}: {sorted(set(left))}"
            )

    # -- KMS --------------------------------------------------------------------------------------
    def _key(self, r: PlannedResource, i: dict[str, Any]) -> None:
        kms = self.aws("kms")
        args: dict[str, Any] = {
            "Description": i.get("description", ""),
            "Tags": _tag_list(i, "TagKey", "TagValue"),
        }
        if i.get("policy"):
            args["Policy"] = i["policy"]
        if i.get("keyUsage"):
            args["KeyUsage"] = i["keyUsage"]
        if i.get("customerMasterKeySpec") or i.get("keySpec"):
            args["KeySpec"] = i.get("keySpec") or i["customerMasterKeySpec"]
        meta = kms.create_key(**args)["KeyMetadata"]
        if i.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        self.map(r.id, meta["KeyId"])
        self.map(r.outputs.get("keyId"), meta["KeyId"])
        self.map(r.outputs.get("arn"), meta["Arn"])

    def _alias(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("kms").create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])

    # -- network ----------------------------------------------------------------------------------
    def _vpc(self, r: PlannedResource, i: dict[str, Any]) -> None:
        ec2 = self.aws("ec2")
        vpc = ec2.create_vpc(CidrBlock=i["cidrBlock"], TagSpecifications=_tag_spec("vpc", i))["Vpc"]
        vpc_id = vpc["VpcId"]
        for key, attribute in (
            ("enableDnsSupport", "EnableDnsSupport"),
            ("enableDnsHostnames", "EnableDnsHostnames"),
        ):
            if key in i:
                ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(i[key])}})
        self.map(r.id, vpc_id)
        self.map(r.outputs.get("arn"), f"arn:aws:ec2:{self.region}:{vpc['OwnerId']}:vpc/{vpc_id}")
        default_sg = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]
        main_rt = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        self.map(r.outputs.get("defaultSecurityGroupId"), default_sg)
        self.map(r.outputs.get("mainRouteTableId"), main_rt)

    def _default_security_group(self, r: PlannedResource, i: dict[str, Any]) -> None:
        """pulumi-aws adopts the VPC's default group and makes its rules exactly the planned ones."""
        ec2 = self.aws("ec2")
        group = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [i["vpcId"]]},
                {"Name": "group-name", "Values": ["default"]},
            ]
        )["SecurityGroups"][0]
        self._revoke_all(group)
        self._inline_rules(group["GroupId"], i)
        self.map(r.id, group["GroupId"])

    def _subnet(self, r: PlannedResource, i: dict[str, Any]) -> None:
        ec2 = self.aws("ec2")
        subnet = ec2.create_subnet(
            VpcId=i["vpcId"],
            CidrBlock=i["cidrBlock"],
            AvailabilityZone=i["availabilityZone"],
            TagSpecifications=_tag_spec("subnet", i),
        )["Subnet"]
        if i.get("mapPublicIpOnLaunch"):
            ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
        self.map(r.id, subnet["SubnetId"])
        self.map(r.outputs.get("arn"), subnet["SubnetArn"])

    def _internet_gateway(self, r: PlannedResource, i: dict[str, Any]) -> None:
        ec2 = self.aws("ec2")
        igw = ec2.create_internet_gateway(TagSpecifications=_tag_spec("internet-gateway", i))[
            "InternetGateway"
        ]
        if i.get("vpcId"):
            ec2.attach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=i["vpcId"])
        self.map(r.id, igw["InternetGatewayId"])

    def _eip(self, r: PlannedResource, i: dict[str, Any]) -> None:
        address = self.aws("ec2").allocate_address(
            Domain=i.get("domain", "vpc"), TagSpecifications=_tag_spec("elastic-ip", i)
        )
        self.map(r.id, address["AllocationId"])

    def _nat_gateway(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {"SubnetId": i["subnetId"], "TagSpecifications": _tag_spec("natgateway", i)}
        if i.get("allocationId"):
            args["AllocationId"] = i["allocationId"]
        if i.get("connectivityType"):
            args["ConnectivityType"] = i["connectivityType"]
        nat = self.aws("ec2").create_nat_gateway(**args)["NatGateway"]
        self.map(r.id, nat["NatGatewayId"])

    def _route_table(self, r: PlannedResource, i: dict[str, Any]) -> None:
        ec2 = self.aws("ec2")
        table = ec2.create_route_table(VpcId=i["vpcId"], TagSpecifications=_tag_spec("route-table", i))[
            "RouteTable"
        ]
        for route in i.get("routes") or []:
            self._create_route(table["RouteTableId"], route)
        self.map(r.id, table["RouteTableId"])

    ROUTE_TARGETS = {
        "gatewayId": "GatewayId",
        "natGatewayId": "NatGatewayId",
        "vpcEndpointId": "VpcEndpointId",
        "transitGatewayId": "TransitGatewayId",
        "networkInterfaceId": "NetworkInterfaceId",
        "vpcPeeringConnectionId": "VpcPeeringConnectionId",
        "egressOnlyGatewayId": "EgressOnlyInternetGatewayId",
        "destinationCidrBlock": "DestinationCidrBlock",
        "destinationIpv6CidrBlock": "DestinationIpv6CidrBlock",
        "destinationPrefixListId": "DestinationPrefixListId",
        "cidrBlock": "DestinationCidrBlock",
    }

    def _create_route(self, table_id: str, route: dict[str, Any]) -> None:
        args = {self.ROUTE_TARGETS[k]: v for k, v in route.items() if k in self.ROUTE_TARGETS and v}
        unknown = set(route) - set(self.ROUTE_TARGETS) - {"routeTableId"}
        if unknown:
            raise MotoPlanError(f"route properties not translated: {sorted(unknown)}")
        self.aws("ec2").create_route(RouteTableId=table_id, **args)

    def _route(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self._create_route(i["routeTableId"], i)

    def _route_table_association(self, r: PlannedResource, i: dict[str, Any]) -> None:
        target = {"SubnetId": i["subnetId"]} if i.get("subnetId") else {"GatewayId": i["gatewayId"]}
        association = self.aws("ec2").associate_route_table(RouteTableId=i["routeTableId"], **target)
        self.map(r.id, association["AssociationId"])

    def _network_acl(self, r: PlannedResource, i: dict[str, Any]) -> None:
        """A new ACL, then each planned subnet moved to it from the VPC's default ACL (what
        pulumi-aws does with `subnet_ids`)."""
        ec2 = self.aws("ec2")
        acl_id = ec2.create_network_acl(VpcId=i["vpcId"], TagSpecifications=_tag_spec("network-acl", i))[
            "NetworkAcl"
        ]["NetworkAclId"]
        self.map(r.id, acl_id)
        for subnet in i.get("subnetIds") or []:
            (current,) = ec2.describe_network_acls(
                Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
            )["NetworkAcls"]
            (association,) = [a for a in current["Associations"] if a["SubnetId"] == subnet]
            ec2.replace_network_acl_association(
                AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl_id
            )

    def _network_acl_rule(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "NetworkAclId": i["networkAclId"],
            "RuleNumber": _int(i["ruleNumber"]),
            "Protocol": str(i["protocol"]),
            "RuleAction": i["ruleAction"],
            "Egress": bool(i.get("egress", False)),
            "CidrBlock": i["cidrBlock"],
        }
        if "fromPort" in i:
            args["PortRange"] = {"From": _int(i["fromPort"]), "To": _int(i["toPort"])}
        self.aws("ec2").create_network_acl_entry(**args)

    def _security_group(self, r: PlannedResource, i: dict[str, Any]) -> None:
        """The group, then its planned rules only: pulumi-aws (Terraform's provider) revokes the
        allow-all egress rule EC2 adds to every new group, and re-creates it only when planned."""
        ec2 = self.aws("ec2")
        name = i.get("name") or (
            f"{i['namePrefix']}{digest(r.name, 7)}" if i.get("namePrefix") else autoname(r)
        )
        created = ec2.create_security_group(
            GroupName=name,
            Description=i.get("description", "Managed by Pulumi"),
            VpcId=i["vpcId"],
            TagSpecifications=_tag_spec("security-group", i),
        )
        group_id = created["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        self._revoke_all(group, ingress=False)
        self.map(r.id, group_id)
        self.map(r.outputs.get("arn"), created.get("SecurityGroupArn"))
        self._inline.append((group_id, plain(r.inputs)))

    def _revoke_all(self, group: dict[str, Any], ingress: bool = True) -> None:
        ec2 = self.aws("ec2")
        if ingress and group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        if group.get("IpPermissionsEgress"):
            ec2.revoke_security_group_egress(
                GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
            )

    def _inline_rules(self, group_id: str, i: dict[str, Any]) -> None:
        """`ingress`/`egress` blocks of aws.ec2.SecurityGroup / DefaultSecurityGroup."""
        ec2 = self.aws("ec2")
        for key, call in (
            ("ingress", ec2.authorize_security_group_ingress),
            ("egress", ec2.authorize_security_group_egress),
        ):
            for rule in i.get(key) or []:
                permission = _permission(
                    rule.get("protocol"),
                    rule.get("fromPort"),
                    rule.get("toPort"),
                    description=rule.get("description"),
                    cidrs=rule.get("cidrBlocks"),
                    ipv6_cidrs=rule.get("ipv6CidrBlocks"),
                    prefix_lists=rule.get("prefixListIds"),
                    groups=[*(rule.get("securityGroups") or []), *([group_id] if rule.get("self") else [])],
                )
                call(GroupId=group_id, IpPermissions=[permission])

    def _ingress_rule(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self._vpc_rule(r, i, self.aws("ec2").authorize_security_group_ingress)

    def _egress_rule(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self._vpc_rule(r, i, self.aws("ec2").authorize_security_group_egress)

    VPC_RULE_KEYS = frozenset(
        {
            "securityGroupId",
            "ipProtocol",
            "fromPort",
            "toPort",
            "cidrIpv4",
            "cidrIpv6",
            "prefixListId",
            "referencedSecurityGroupId",
            "description",
            "tags",
        }
    )

    def _vpc_rule(self, r: PlannedResource, i: dict[str, Any], call: Callable[..., Any]) -> None:
        """aws.vpc.SecurityGroup{Ingress,Egress}Rule: one source/destination per rule."""
        unknown = set(i) - self.VPC_RULE_KEYS
        if unknown:
            raise MotoPlanError(f"{r.name}: rule properties not translated: {sorted(unknown)}")
        permission = _permission(
            i["ipProtocol"],
            i.get("fromPort"),
            i.get("toPort"),
            description=i.get("description"),
            cidrs=[i["cidrIpv4"]] if i.get("cidrIpv4") else None,
            ipv6_cidrs=[i["cidrIpv6"]] if i.get("cidrIpv6") else None,
            prefix_lists=[i["prefixListId"]] if i.get("prefixListId") else None,
            groups=[i["referencedSecurityGroupId"]] if i.get("referencedSecurityGroupId") else None,
        )
        answer = call(GroupId=i["securityGroupId"], IpPermissions=[permission])
        rules = answer.get("SecurityGroupRules") or []
        if rules:
            self.map(r.id, rules[0]["SecurityGroupRuleId"])

    def _security_group_rule(self, r: PlannedResource, i: dict[str, Any]) -> None:
        """aws.ec2.SecurityGroupRule (`type` ingress/egress; `self`, `sourceSecurityGroupId`)."""
        ec2 = self.aws("ec2")
        group_id = i["securityGroupId"]
        source = i.get("sourceSecurityGroupId")
        permission = _permission(
            i["protocol"],
            i.get("fromPort"),
            i.get("toPort"),
            description=i.get("description"),
            cidrs=i.get("cidrBlocks"),
            ipv6_cidrs=i.get("ipv6CidrBlocks"),
            prefix_lists=i.get("prefixListIds"),
            groups=[*([source] if source else []), *([group_id] if i.get("self") else [])],
        )
        call = (
            ec2.authorize_security_group_ingress
            if i["type"] == "ingress"
            else ec2.authorize_security_group_egress
        )
        call(GroupId=group_id, IpPermissions=[permission])

    def _vpc_endpoint(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "VpcId": i["vpcId"],
            "ServiceName": i["serviceName"],
            "VpcEndpointType": i.get("vpcEndpointType", "Gateway"),
            "TagSpecifications": _tag_spec("vpc-endpoint", i),
        }
        for key, arg in (
            ("subnetIds", "SubnetIds"),
            ("securityGroupIds", "SecurityGroupIds"),
            ("routeTableIds", "RouteTableIds"),
        ):
            if i.get(key):
                args[arg] = i[key]
        if "privateDnsEnabled" in i:
            args["PrivateDnsEnabled"] = bool(i["privateDnsEnabled"])
        if i.get("policy"):
            args["PolicyDocument"] = i["policy"]
        endpoint = self.aws("ec2").create_vpc_endpoint(**args)["VpcEndpoint"]
        self.map(r.id, endpoint["VpcEndpointId"])

    def _placement_group(self, r: PlannedResource, i: dict[str, Any]) -> None:
        name = i.get("name") or str(r.id)
        group = self.aws("ec2").create_placement_group(
            GroupName=name,
            Strategy=i.get("strategy", "cluster"),
            TagSpecifications=_tag_spec("placement-group", i),
        )["PlacementGroup"]
        self.map(r.outputs.get("placementGroupId"), group["GroupId"])

    # -- S3 ---------------------------------------------------------------------------------------
    def _bucket(self, r: PlannedResource, i: dict[str, Any]) -> None:
        s3 = self.aws("s3")
        name = i.get("bucket") or str(r.id)
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        if _tags(i):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(i)})

    def _bucket_ownership_controls(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("s3").put_bucket_ownership_controls(
            Bucket=i["bucket"],
            OwnershipControls={"Rules": [{"ObjectOwnership": i["rule"]["objectOwnership"]}]},
        )

    def _bucket_public_access_block(self, r: PlannedResource, i: dict[str, Any]) -> None:
        keys = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
        self.aws("s3").put_public_access_block(
            Bucket=i["bucket"],
            PublicAccessBlockConfiguration={k[0].upper() + k[1:]: bool(i.get(k)) for k in keys},
        )

    def _bucket_versioning(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("s3").put_bucket_versioning(
            Bucket=i["bucket"], VersioningConfiguration={"Status": i["versioningConfiguration"]["status"]}
        )

    def _bucket_encryption(self, r: PlannedResource, i: dict[str, Any]) -> None:
        rules = []
        for rule in i["rules"]:
            default = rule["applyServerSideEncryptionByDefault"]
            by_default = {"SSEAlgorithm": default["sseAlgorithm"]}
            if default.get("kmsMasterKeyId"):
                by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
            rules.append(
                {
                    "ApplyServerSideEncryptionByDefault": by_default,
                    "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled")),
                }
            )
        self.aws("s3").put_bucket_encryption(
            Bucket=i["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
        )

    def _bucket_policy(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("s3").put_bucket_policy(Bucket=i["bucket"], Policy=i["policy"])

    def _bucket_object(self, r: PlannedResource, i: dict[str, Any]) -> None:
        if "content" not in i:
            raise MotoPlanError(f"{r.name}: only objects with inline `content` are translated")
        args: dict[str, Any] = {"Bucket": i["bucket"], "Key": i["key"], "Body": i["content"].encode()}
        for key, arg in (
            ("contentType", "ContentType"),
            ("serverSideEncryption", "ServerSideEncryption"),
            ("kmsKeyId", "SSEKMSKeyId"),
        ):
            if i.get(key):
                args[arg] = i[key]
        if _tags(i):
            args["Tagging"] = urllib.parse.urlencode(_tags(i))
        self.aws("s3").put_object(**args)

    # -- EFS --------------------------------------------------------------------------------------
    def _efs(self, r: PlannedResource, i: dict[str, Any]) -> None:
        efs = self.aws("efs")
        args: dict[str, Any] = {"CreationToken": i.get("creationToken") or autoname(r), "Tags": _tag_list(i)}
        for key, arg in (
            ("performanceMode", "PerformanceMode"),
            ("throughputMode", "ThroughputMode"),
            ("kmsKeyId", "KmsKeyId"),
            ("availabilityZoneName", "AvailabilityZoneName"),
        ):
            if i.get(key):
                args[arg] = i[key]
        if "encrypted" in i:
            args["Encrypted"] = bool(i["encrypted"])
        if i.get("provisionedThroughputInMibps"):
            args["ProvisionedThroughputInMibps"] = float(i["provisionedThroughputInMibps"])
        created = efs.create_file_system(**args)
        fs_id = created["FileSystemId"]
        policies = [
            {EFS_LIFECYCLE[k]: v for k, v in policy.items()} for policy in i.get("lifecyclePolicies") or []
        ]
        if policies:
            efs.put_lifecycle_configuration(FileSystemId=fs_id, LifecyclePolicies=policies)
        self.map(r.id, fs_id)
        self.map(r.outputs.get("arn"), created["FileSystemArn"])
        self.map(r.outputs.get("dnsName"), f"{fs_id}.efs.{self.region}.amazonaws.com")

    def _efs_policy(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("efs").put_file_system_policy(FileSystemId=i["fileSystemId"], Policy=i["policy"])

    def _mount_target(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {"FileSystemId": i["fileSystemId"], "SubnetId": i["subnetId"]}
        if i.get("securityGroups"):
            args["SecurityGroups"] = i["securityGroups"]
        if i.get("ipAddress"):
            args["IpAddress"] = i["ipAddress"]
        target = self.aws("efs").create_mount_target(**args)
        self.map(r.id, target["MountTargetId"])

    def _access_point(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {"FileSystemId": i["fileSystemId"], "Tags": _tag_list(i)}
        root = i.get("rootDirectory")
        if root:
            directory: dict[str, Any] = {"Path": root["path"]}
            info = root.get("creationInfo")
            if info:
                directory["CreationInfo"] = {
                    "OwnerUid": _int(info["ownerUid"]),
                    "OwnerGid": _int(info["ownerGid"]),
                    "Permissions": info["permissions"],
                }
            args["RootDirectory"] = directory
        user = i.get("posixUser")
        if user:
            args["PosixUser"] = {
                "Uid": _int(user["uid"]),
                "Gid": _int(user["gid"]),
                **(
                    {"SecondaryGids": [_int(g) for g in user["secondaryGids"]]}
                    if user.get("secondaryGids")
                    else {}
                ),
            }
        point = self.aws("efs").create_access_point(**args)
        self.map(r.id, point["AccessPointId"])
        self.map(r.outputs.get("arn"), point["AccessPointArn"])

    # -- FSx for Lustre -----------------------------------------------------------------------------
    LUSTRE_SETTINGS = {
        "deploymentType": "DeploymentType",
        "perUnitStorageThroughput": "PerUnitStorageThroughput",
        "importPath": "ImportPath",
        "exportPath": "ExportPath",
        "importedFileChunkSize": "ImportedFileChunkSize",
        "autoImportPolicy": "AutoImportPolicy",
        "dataCompressionType": "DataCompressionType",
        "dailyAutomaticBackupStartTime": "DailyAutomaticBackupStartTime",
        "automaticBackupRetentionDays": "AutomaticBackupRetentionDays",
        "copyTagsToBackups": "CopyTagsToBackups",
        "weeklyMaintenanceStartTime": "WeeklyMaintenanceStartTime",
        "driveCacheType": "DriveCacheType",
        "efaEnabled": "EfaEnabled",
    }
    LUSTRE_TOP = {
        "storageCapacity",
        "subnetIds",
        "securityGroupIds",
        "tags",
        "kmsKeyId",
        "fileSystemTypeVersion",
        "storageType",
        "logConfiguration",
        "rootSquashConfiguration",
        "metadataConfiguration",
        "skipFinalBackup",  # a delete-time setting
    }

    def _lustre(self, r: PlannedResource, i: dict[str, Any]) -> None:
        unknown = set(i) - set(self.LUSTRE_SETTINGS) - self.LUSTRE_TOP
        if unknown:
            raise MotoPlanError(f"{r.name}: Lustre properties not translated: {sorted(unknown)}")
        settings: dict[str, Any] = {}
        for key, arg in self.LUSTRE_SETTINGS.items():
            if key in i and i[key] is not None:
                value = i[key]
                numeric = key in (
                    "perUnitStorageThroughput",
                    "importedFileChunkSize",
                    "automaticBackupRetentionDays",
                )
                settings[arg] = _int(value) if numeric else value
        log = i.get("logConfiguration")
        if log:
            settings["LogConfiguration"] = {"Level": log["level"], "Destination": log["destination"]}
        squash = i.get("rootSquashConfiguration")
        if squash:
            settings["RootSquashConfiguration"] = {
                "RootSquash": squash["rootSquash"],
                **({"NoSquashNids": squash["noSquashNids"]} if squash.get("noSquashNids") else {}),
            }
        metadata = i.get("metadataConfiguration")
        if metadata:
            settings["MetadataConfiguration"] = {
                "Mode": metadata["mode"],
                **({"Iops": _int(metadata["iops"])} if metadata.get("iops") else {}),
            }
        subnets = i["subnetIds"] if isinstance(i["subnetIds"], list) else [i["subnetIds"]]
        args: dict[str, Any] = {
            "FileSystemType": "LUSTRE",
            "StorageCapacity": _int(i["storageCapacity"]),
            "SubnetIds": subnets,
            "SecurityGroupIds": i.get("securityGroupIds") or [],
            "Tags": _tag_list(i),
            "LustreConfiguration": settings,
        }
        for key, arg in (
            ("kmsKeyId", "KmsKeyId"),
            ("fileSystemTypeVersion", "FileSystemTypeVersion"),
            ("storageType", "StorageType"),
        ):
            if i.get(key):
                args[arg] = i[key]
        created = self.aws("fsx").create_file_system(**args)["FileSystem"]
        fs_id = created["FileSystemId"]
        self.map(r.id, fs_id)
        self.map(r.outputs.get("arn"), created["ResourceARN"])
        self.map(r.outputs.get("dnsName"), created.get("DNSName"))
        self.map(r.outputs.get("vpcId"), created.get("VpcId"))
        for planned, real in zip(
            r.outputs.get("networkInterfaceIds") or [], created.get("NetworkInterfaceIds") or [], strict=False
        ):
            self.map(planned, real)

    # -- Secrets Manager and the accounting database ------------------------------------------------
    def _secret(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {"Name": i.get("name") or autoname(r), "Tags": _tag_list(i)}
        for key, arg in (("description", "Description"), ("kmsKeyId", "KmsKeyId")):
            if i.get(key):
                args[arg] = i[key]
        created = self.aws("secretsmanager").create_secret(**args)
        self.map(r.outputs.get("arn"), created["ARN"])

    def _secret_version(self, r: PlannedResource, i: dict[str, Any]) -> None:
        # The planned value is a secret the preview does not know (RandomPassword): a fresh one.
        self.aws("secretsmanager").put_secret_value(
            SecretId=i["secretId"], SecretString=secrets.token_urlsafe(24)
        )

    def _db_subnet_group(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("rds").create_db_subnet_group(
            DBSubnetGroupName=i.get("name") or str(r.id),
            DBSubnetGroupDescription=i.get("description", "Managed by Pulumi"),
            SubnetIds=i["subnetIds"],
            Tags=_tag_list(i),
        )

    def _db_cluster(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "DBClusterIdentifier": i.get("clusterIdentifier") or str(r.id),
            "Engine": i["engine"],
            "MasterUsername": i["masterUsername"],
            # The planned password is a secret the preview does not know.
            "MasterUserPassword": secrets.token_urlsafe(24),
            "Tags": _tag_list(i),
        }
        for key, arg in (
            ("engineMode", "EngineMode"),
            ("engineVersion", "EngineVersion"),
            ("dbSubnetGroupName", "DBSubnetGroupName"),
            ("vpcSecurityGroupIds", "VpcSecurityGroupIds"),
            ("kmsKeyId", "KmsKeyId"),
            ("preferredBackupWindow", "PreferredBackupWindow"),
        ):
            if i.get(key):
                args[arg] = i[key]
        for key, arg in (
            ("storageEncrypted", "StorageEncrypted"),
            ("deletionProtection", "DeletionProtection"),
            ("copyTagsToSnapshot", "CopyTagsToSnapshot"),
        ):
            if key in i:
                args[arg] = bool(i[key])
        if i.get("backupRetentionPeriod"):
            args["BackupRetentionPeriod"] = _int(i["backupRetentionPeriod"])
        scaling = i.get("serverlessv2ScalingConfiguration")
        if scaling:
            args["ServerlessV2ScalingConfiguration"] = {
                "MinCapacity": float(scaling["minCapacity"]),
                "MaxCapacity": float(scaling["maxCapacity"]),
            }
        created = self.aws("rds").create_db_cluster(**args)["DBCluster"]
        self.map(r.outputs.get("endpoint"), created["Endpoint"])
        self.map(r.outputs.get("arn"), created["DBClusterArn"])

    def _db_instance(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "DBInstanceIdentifier": i.get("identifier") or autoname(r),
            "DBClusterIdentifier": i["clusterIdentifier"],
            "DBInstanceClass": i["instanceClass"],
            "Engine": i["engine"],
            "Tags": _tag_list(i),
        }
        if i.get("dbSubnetGroupName"):
            args["DBSubnetGroupName"] = i["dbSubnetGroupName"]
        if "publiclyAccessible" in i:
            args["PubliclyAccessible"] = bool(i["publiclyAccessible"])
        self.aws("rds").create_db_instance(**args)

    # -- IAM --------------------------------------------------------------------------------------
    def _role(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "RoleName": i.get("name") or str(r.id),
            "AssumeRolePolicyDocument": i["assumeRolePolicy"],
            "Tags": _tag_list(i),
        }
        for key, arg in (
            ("path", "Path"),
            ("description", "Description"),
            ("permissionsBoundary", "PermissionsBoundary"),
        ):
            if i.get(key):
                args[arg] = i[key]
        if i.get("maxSessionDuration"):
            args["MaxSessionDuration"] = _int(i["maxSessionDuration"])
        role = self.aws("iam").create_role(**args)["Role"]
        self.map(r.outputs.get("arn"), role["Arn"])
        self.map(r.outputs.get("uniqueId"), role["RoleId"])
        for inline in i.get("inlinePolicies") or []:
            self.aws("iam").put_role_policy(
                RoleName=role["RoleName"], PolicyName=inline["name"], PolicyDocument=inline["policy"]
            )
        for arn in i.get("managedPolicyArns") or []:
            self.aws("iam").attach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)

    def _policy(self, r: PlannedResource, i: dict[str, Any]) -> None:
        args: dict[str, Any] = {
            "PolicyName": i.get("name") or str(r.id),
            "PolicyDocument": i["policy"],
            "Tags": _tag_list(i),
        }
        for key, arg in (("path", "Path"), ("description", "Description")):
            if i.get(key):
                args[arg] = i[key]
        policy = self.aws("iam").create_policy(**args)["Policy"]
        self.map(r.outputs.get("arn"), policy["Arn"])

    def _role_policy(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("iam").put_role_policy(
            RoleName=i["role"], PolicyName=i.get("name") or autoname(r), PolicyDocument=i["policy"]
        )

    def _role_policy_attachment(self, r: PlannedResource, i: dict[str, Any]) -> None:
        self.aws("iam").attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])

    def _instance_profile(self, r: PlannedResource, i: dict[str, Any]) -> None:
        iam = self.aws("iam")
        name = i.get("name") or str(r.id)
        args: dict[str, Any] = {"InstanceProfileName": name, "Tags": _tag_list(i)}
        if i.get("path"):
            args["Path"] = i["path"]
        profile = iam.create_instance_profile(**args)["InstanceProfile"]
        if i.get("role"):
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=i["role"])
        self.map(r.outputs.get("arn"), profile["Arn"])


def _permission(
    protocol: Any,
    from_port: Any,
    to_port: Any,
    *,
    description: str | None = None,
    cidrs: list[str] | None = None,
    ipv6_cidrs: list[str] | None = None,
    prefix_lists: list[str] | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    """One EC2 `IpPermission`. Protocol `-1`/`all` carries no ports, as EC2 stores it."""
    proto = str(protocol).lower()
    proto = "-1" if proto in ("-1", "all") else proto
    permission: dict[str, Any] = {"IpProtocol": proto}
    if proto != "-1" and from_port is not None:
        permission["FromPort"] = _int(from_port)
        permission["ToPort"] = _int(to_port if to_port is not None else from_port)
    described = {"Description": description} if description else {}
    if cidrs:
        permission["IpRanges"] = [{"CidrIp": c, **described} for c in cidrs]
    if ipv6_cidrs:
        permission["Ipv6Ranges"] = [{"CidrIpv6": c, **described} for c in ipv6_cidrs]
    if prefix_lists:
        permission["PrefixListIds"] = [{"PrefixListId": p, **described} for p in prefix_lists]
    if groups:
        permission["UserIdGroupPairs"] = [{"GroupId": g, **described} for g in groups]
    if not any(k in permission for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs")):
        raise MotoPlanError(f"a security-group rule without source/destination: {permission}")
    return permission


__all__ = ["NOT_BUILT", "MotoPlan", "MotoPlanError", "autoname", "build_plan_in_moto"]
