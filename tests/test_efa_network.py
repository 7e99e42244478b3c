"""EfaNetwork: properties of the offline plan of every stack, and of mutated stack files."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer

from components.efa_network import LUSTRE_PORT_RANGES, TYPE_TOKEN, EfaNetwork, EfaNetworkArgs, NatGateways
from hpc_platform.app.offline import StackPlan, plan_stack_file, run_offline
from hpc_platform.app.offline.engine import Plan
from hpc_platform.app.tagging import is_taggable
from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.limits import REQUIRED_TAG_KEYS
from hpc_platform.domain.network import subnet_count_problem
from hpc_platform.domain.placement import queue_placements
from tests.support.component_queries import component_queries
from tests.support.stacks import STACKS, planned

SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"

WriteStack = Callable[[dict[str, Any], str], Path]
LoadStack = Callable[[str], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------------
component, subtree, of_type, named = component_queries(TYPE_TOKEN)


def group_id(plan: Plan, role: str) -> str:
    sg = named(plan, f"{role}-sg")
    assert sg.type == SECURITY_GROUP and sg.id
    return sg.id


def rules_of(plan: Plan, token: str, group: str) -> list[dict[str, Any]]:
    return [r.inputs for r in of_type(plan, token) if r.inputs["securityGroupId"] == group]


def ports(rule: dict[str, Any]) -> tuple[int, int] | None:
    if "fromPort" not in rule:
        return None
    return int(rule["fromPort"]), int(rule["toPort"])


def config_of(stack_plan: StackPlan) -> StackConfig:
    return stack_plan.loaded.config


# --- counts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_follow_the_stack_config(stack: str) -> None:
    stack_plan = planned(stack)
    network = config_of(stack_plan).network
    azs = len(network.availability_zones)
    nats = {"none": 0, "single": 1, "one_per_az": azs}[network.nat_gateways]
    efa_queues = [q for q in config_of(stack_plan).cluster.queues if q.enable_efa]
    lustre_rules_per_direction = 2 * len(LUSTRE_PORT_RANGES)  # self and nodes, each port range

    counts = Counter(r.type for r in subtree(stack_plan.plan) if r.custom)

    expected = {
        "aws:ec2/vpc:Vpc": 1,
        SUBNET: 4 * azs,
        "aws:ec2/natGateway:NatGateway": nats,
        "aws:ec2/eip:Eip": nats,
        "aws:ec2/internetGateway:InternetGateway": 1 if nats else 0,
        "aws:ec2/routeTable:RouteTable": 1 + azs,
        "aws:ec2/route:Route": (1 + azs) if nats else 0,
        "aws:ec2/routeTableAssociation:RouteTableAssociation": 4 * azs,
        SECURITY_GROUP: 5,
        # EFA self + Lustre (self, from nodes, nodes from Lustre) + EFS + endpoints + SSH.
        INGRESS: 1
        + lustre_rules_per_direction
        + len(LUSTRE_PORT_RANGES)
        + 1
        + 1
        + len(network.ssh_ingress_cidrs),
        # EFA self + anywhere + Lustre (self, to nodes, nodes to Lustre) + EFS both ways.
        EGRESS: 2 + lustre_rules_per_direction + len(LUSTRE_PORT_RANGES) + 2,
        PLACEMENT_GROUP: len(efa_queues),
        ENDPOINT: len(network.interface_endpoints) + int(network.enable_s3_gateway_endpoint),
        "aws:ec2/flowLog:FlowLog": int(network.flow_logs.enabled),
        "aws:cloudwatch/logGroup:LogGroup": int(network.flow_logs.enabled),
        "aws:kms/key:Key": int(network.flow_logs.enabled),
    }
    assert {token: counts[token] for token in expected} == expected
    if stack == "dev":
        assert counts["aws:ec2/natGateway:NatGateway"] == 1
    else:
        assert counts["aws:ec2/natGateway:NatGateway"] == azs == 3


@pytest.mark.parametrize("stack", STACKS)
def test_every_network_resource_is_a_child_of_the_component(stack: str) -> None:
    plan = planned(stack).plan
    network = component(plan)
    ours = [r for r in plan.resources if r.name.startswith(f"{network.name}-")]
    assert len(ours) > 50
    assert [r.name for r in ours if r.parent != network.urn] == []
    assert {r.urn for r in ours} <= {r.urn for r in subtree(plan)}


@pytest.mark.parametrize("stack", STACKS)
def test_subnet_cidrs_and_azs_come_from_config(stack: str) -> None:
    stack_plan = planned(stack)
    network = config_of(stack_plan).network
    name = component(stack_plan.plan).name
    for tier in ("public", "private", "compute", "storage"):
        for az, cidr in zip(network.availability_zones, network.subnets.tier(tier), strict=True):
            subnet = stack_plan.plan.by_name(f"{name}-{tier}-{az}")
            assert subnet.type == SUBNET
            assert (subnet.inputs["cidrBlock"], subnet.inputs["availabilityZone"]) == (cidr, az)
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
    vpc = named(stack_plan.plan, "vpc").inputs
    assert vpc["cidrBlock"] == network.vpc_cidr
    assert vpc["enableDnsHostnames"] is True and vpc["enableDnsSupport"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_private_tiers_route_through_the_nat_of_their_az(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    network = config_of(stack_plan).network
    nat_ids = {r.inputs["subnetId"]: r.id for r in of_type(plan, "aws:ec2/natGateway:NatGateway")}
    public_ids = [named(plan, f"public-{az}").id for az in network.availability_zones]
    for index, az in enumerate(network.availability_zones):
        route = named(plan, f"private-default-{az}").inputs
        expected_subnet = public_ids[index] if network.nat_gateways == "one_per_az" else public_ids[0]
        assert route["natGatewayId"] == nat_ids[expected_subnet]
        assert route["destinationCidrBlock"] == "0.0.0.0/0"
    assert named(plan, "public-default").inputs["gatewayId"] == named(plan, "igw").id


# --- security groups ---------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_efa_group_allows_all_traffic_to_and_from_itself(stack: str) -> None:
    plan = planned(stack).plan
    efa = group_id(plan, "efa")
    for token in (INGRESS, EGRESS):
        self_rules = [r for r in rules_of(plan, token, efa) if r.get("referencedSecurityGroupId") == efa]
        assert [r["ipProtocol"] for r in self_rules] == ["-1"], token
        assert ports(self_rules[0]) is None


@pytest.mark.parametrize("stack", STACKS)
def test_no_ingress_from_anywhere(stack: str) -> None:
    plan = planned(stack).plan
    rules = [r.inputs for r in of_type(plan, INGRESS)]
    assert rules
    assert [r for r in rules if r.get("cidrIpv4") == "0.0.0.0/0" or r.get("cidrIpv6") == "::/0"] == []


@pytest.mark.parametrize("stack", STACKS)
def test_head_node_has_no_ssh_when_no_cidrs_are_configured(stack: str) -> None:
    stack_plan = planned(stack)
    assert config_of(stack_plan).network.ssh_ingress_cidrs == []
    assert rules_of(stack_plan.plan, INGRESS, group_id(stack_plan.plan, "head-node")) == []


def test_head_node_ssh_only_from_configured_cidrs(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("dev")
    config["hpc:network"]["ssh_ingress_cidrs"] = ["203.0.113.0/24", "198.51.100.7/32"]
    plan = plan_stack_file(write_stack(config, "Pulumi.ssh.yaml")).plan
    rules = rules_of(plan, INGRESS, group_id(plan, "head-node"))
    assert sorted((r["cidrIpv4"], r["ipProtocol"], ports(r)) for r in rules) == [
        ("198.51.100.7/32", "tcp", (22, 22)),
        ("203.0.113.0/24", "tcp", (22, 22)),
    ]


def test_fails_on_ssh_from_anywhere(stack_config: LoadStack, write_stack: WriteStack) -> None:
    """Caught by the config validators before any network resource is declared."""
    config = stack_config("dev")
    config["hpc:network"]["ssh_ingress_cidrs"] = ["0.0.0.0/0"]
    with pytest.raises(ConfigError, match=r"ssh_ingress_cidrs\[0\]: 0\.0\.0\.0/0 opens SSH .* use SSM"):
        plan_stack_file(write_stack(config, "Pulumi.open.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_lustre_ports_open_from_nodes_and_from_itself(stack: str) -> None:
    plan = planned(stack).plan
    lustre, efa = group_id(plan, "lustre"), group_id(plan, "efa")
    wanted = {(source, "tcp", rng) for source in (lustre, efa) for rng in ((988, 988), (1018, 1023))}
    ingress = {
        (r.get("referencedSecurityGroupId"), r["ipProtocol"], ports(r))
        for r in rules_of(plan, INGRESS, lustre)
    }
    egress = {
        (r.get("referencedSecurityGroupId"), r["ipProtocol"], ports(r))
        for r in rules_of(plan, EGRESS, lustre)
    }
    assert ingress == wanted
    assert egress == wanted
    # Nodes accept LNet connections from the file servers too.
    from_lustre = {
        ports(r) for r in rules_of(plan, INGRESS, efa) if r.get("referencedSecurityGroupId") == lustre
    }
    assert from_lustre == {(988, 988), (1018, 1023)}


@pytest.mark.parametrize("stack", STACKS)
def test_efs_and_endpoint_groups(stack: str) -> None:
    stack_plan = planned(stack)
    plan = stack_plan.plan
    (efs,) = rules_of(plan, INGRESS, group_id(plan, "efs"))
    assert (efs["referencedSecurityGroupId"], ports(efs)) == (group_id(plan, "efa"), (2049, 2049))
    # ParallelCluster's EfsIdValidator wants 2049 out of the mount targets' group too.
    (efs_out,) = rules_of(plan, EGRESS, group_id(plan, "efs"))
    assert (efs_out["referencedSecurityGroupId"], ports(efs_out)) == (group_id(plan, "efa"), (2049, 2049))
    (https,) = rules_of(plan, INGRESS, group_id(plan, "vpce"))
    assert (https["cidrIpv4"], ports(https)) == (config_of(stack_plan).network.vpc_cidr, (443, 443))


@pytest.mark.parametrize("stack", STACKS)
def test_default_security_group_allows_nothing(stack: str) -> None:
    default = named(planned(stack).plan, "default-sg").inputs
    assert default.get("ingress", []) == [] and default.get("egress", []) == []


# --- placement ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_each_efa_queue_has_a_cluster_placement_group_and_one_subnet_in_its_az(
    stack: str, catalog: InstanceCatalog
) -> None:
    stack_plan = planned(stack)
    plan, config = stack_plan.plan, config_of(stack_plan)
    placements = queue_placements(config, catalog)
    compute_by_az = {
        r.inputs["availabilityZone"]: r.id
        for r in of_type(plan, SUBNET)
        if r.inputs["tags"]["Tier"] == "compute"
    }
    efa_queues = [q.name for q in config.cluster.queues if q.enable_efa]
    assert efa_queues

    groups = {r.inputs["tags"]["Queue"]: r for r in of_type(plan, PLACEMENT_GROUP)}
    assert sorted(groups) == sorted(efa_queues)
    assert {g.inputs["strategy"] for g in groups.values()} == {"cluster"}
    assert plan.outputs["placement_group_names"] == {q: groups[q].id for q in efa_queues}

    queue_subnets = plan.outputs["queue_subnet_ids"]
    for queue in config.cluster.queues:
        expected = [compute_by_az[az] for az in placements[queue.name].azs]
        assert queue_subnets[queue.name] == expected, queue.name
        if queue.enable_efa:
            assert len(queue_subnets[queue.name]) == 1


def test_efa_queue_follows_a_pinned_az(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("dev")
    config["hpc:cluster"]["queues"][1]["availability_zone"] = "us-east-2a"
    stack_plan = plan_stack_file(write_stack(config, "Pulumi.pinned.yaml"))
    plan = stack_plan.plan
    queue = config["hpc:cluster"]["queues"][1]["name"]
    assert plan.outputs["queue_subnet_ids"][queue] == [named(plan, "compute-us-east-2a").id]
    group = named(plan, f"pg-{queue}")
    assert group.inputs["tags"]["AvailabilityZone"] == "us-east-2a"


@pytest.mark.parametrize("stack", STACKS)
def test_head_node_and_storage_use_the_first_subnet_of_their_tier(stack: str) -> None:
    stack_plan = planned(stack)
    plan, first_az = stack_plan.plan, config_of(stack_plan).network.availability_zones[0]
    assert plan.outputs["head_node_subnet_id"] == named(plan, f"private-{first_az}").id
    assert plan.outputs["storage_subnet_id"] == named(plan, f"storage-{first_az}").id


def _direct_args(**overrides: Any) -> EfaNetworkArgs:
    """Args a library user writes: two AZs, no stack file."""
    args: dict[str, Any] = {
        "region": "us-east-2",
        "availability_zones": ["us-east-2a", "us-east-2b"],
        "vpc_cidr": "10.8.0.0/16",
        "public_subnet_cidrs": ["10.8.0.0/24", "10.8.1.0/24"],
        "private_subnet_cidrs": ["10.8.16.0/20", "10.8.32.0/20"],
        "compute_subnet_cidrs": ["10.8.64.0/18", "10.8.128.0/18"],
        "storage_subnet_cidrs": ["10.8.2.0/24", "10.8.3.0/24"],
        "queue_availability_zones": {"mpi": ["us-east-2b"], "serial": ["us-east-2a", "us-east-2b"]},
        "placement_group_queues": ["mpi"],
    }
    return EfaNetworkArgs(**{**args, **overrides})


def test_fails_when_a_placement_group_queue_spans_several_azs() -> None:
    with pytest.raises(
        ValueError, match=r"queue_availability_zones\[serial\]: has a cluster placement group"
    ):
        _direct_args(placement_group_queues=["mpi", "serial"])


def test_fails_when_a_queue_is_placed_outside_the_vpc() -> None:
    with pytest.raises(
        ValueError,
        match=r"queue_availability_zones\[mpi\]: placed in us-east-2c, which the VPC does not span",
    ):
        _direct_args(queue_availability_zones={"mpi": ["us-east-2c"]})


def test_fails_when_a_placement_group_queue_has_no_azs() -> None:
    with pytest.raises(
        ValueError, match=r"queue_availability_zones\[mpi\]: has a cluster placement group but no"
    ):
        _direct_args(queue_availability_zones={})


def test_fails_when_a_tier_lacks_a_cidr_for_an_az() -> None:
    """The guard says what the config validator says: both call `subnet_count_problem`."""
    azs = ["us-east-2a", "us-east-2b"]
    with pytest.raises(ValueError) as raised:
        _direct_args(storage_subnet_cidrs=["10.8.2.0/24"])
    assert str(raised.value) == (
        "EfaNetworkArgs.storage_subnet_cidrs: has 1 CIDR blocks for 2 availability zones; "
        "give one block per AZ, in availability_zones order"
    )
    assert str(raised.value).endswith(str(subnet_count_problem(1, azs, "availability_zones")))


def test_fails_in_the_stack_file_when_a_tier_lacks_a_cidr_for_an_az(
    stack_config: LoadStack, write_stack: WriteStack
) -> None:
    config = stack_config("staging")
    config["hpc:network"]["subnets"]["storage"] = config["hpc:network"]["subnets"]["storage"][:2]
    with pytest.raises(
        ConfigError,
        match=r"hpc:network\.subnets\.storage: has 2 CIDR blocks for 3 availability zones; give one "
        r"block per AZ, in hpc:network\.availability_zones order",
    ):
        plan_stack_file(write_stack(config, "Pulumi.short.yaml"))


# --- the component as a library ------------------------------------------------------------------
def test_the_component_analyzer_reads_efa_network() -> None:
    """Pulumi's component provider host can describe EfaNetwork to other languages."""
    result = Analyzer("hpc").analyze([EfaNetwork])
    definition = result["component_definitions"]["EfaNetwork"]
    assert {"availabilityZones", "publicSubnetCidrs", "natGateways", "placementGroupQueues", "tags"} <= set(
        definition.inputs
    )
    assert {"vpcId", "queueSubnetIds", "placementGroupNames", "efaSecurityGroupId"} <= set(definition.outputs)
    nat = result["type_definitions"]["NatGateways"]
    assert [member.value for member in nat.enum or []] == [mode.value for mode in NatGateways]


def _plan_direct(args: EfaNetworkArgs) -> Plan:
    def program() -> None:
        network = EfaNetwork("lib", args)
        for key, value in network.outputs().items():
            pulumi.export(key, value)

    return run_offline(program, stack="unit", config={}, region=args.region)


def test_builds_from_its_args_alone() -> None:
    args = _direct_args(
        nat_gateways=NatGateways.NONE,
        interface_endpoints=["ssm"],
        flow_log_retention_days=30,
        flow_log_key_deletion_window_days=7,
        tags={"Team": "hpc"},
    )
    plan = _plan_direct(args)
    (network,) = plan.of_type(TYPE_TOKEN)
    subtree = plan.descendants_of(network.urn)

    taggable = [r for r in subtree if r.custom and is_taggable(r.type)]
    assert len(taggable) > 40
    team = {r.name: (r.inputs.get("tags") or {}).get("Team") for r in taggable}
    assert team == {r.name: "hpc" for r in taggable}
    assert all((r.inputs.get("tags") or {}).get("Name") for r in taggable)

    kinds = Counter(r.type for r in subtree)
    assert kinds["aws:ec2/natGateway:NatGateway"] == kinds["aws:ec2/internetGateway:InternetGateway"] == 0
    assert kinds[SUBNET] == 8
    assert kinds[ENDPOINT] == 2  # ssm + the S3 gateway

    (group,) = [r for r in subtree if r.type == PLACEMENT_GROUP]
    assert (group.name, group.inputs["tags"]["AvailabilityZone"]) == ("lib-pg-mpi", "us-east-2b")
    (key,) = [r for r in subtree if r.type == "aws:kms/key:Key"]
    assert key.inputs["deletionWindowInDays"] == 7
    (log_group,) = [r for r in subtree if r.type == "aws:cloudwatch/logGroup:LogGroup"]
    assert log_group.inputs["retentionInDays"] == 30

    outputs = plan.outputs
    compute = {az: plan.by_name(f"lib-compute-{az}").id for az in args.availability_zones}
    assert outputs["queue_subnet_ids"] == {
        "mpi": [compute["us-east-2b"]],
        "serial": [compute["us-east-2a"], compute["us-east-2b"]],
    }
    assert outputs["placement_group_names"] == {"mpi": group.id}


# --- endpoints and flow logs -------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_vpc_endpoints(stack: str) -> None:
    stack_plan = planned(stack)
    plan, config = stack_plan.plan, config_of(stack_plan)
    endpoints = {r.inputs["serviceName"]: r.inputs for r in of_type(plan, ENDPOINT)}
    assert len(endpoints) >= 6
    s3 = endpoints.pop(f"com.amazonaws.{config.region}.s3")
    assert s3["vpcEndpointType"] == "Gateway"
    private_tables = {named(plan, f"private-rt-{az}").id for az in config.network.availability_zones}
    assert set(s3["routeTableIds"]) == private_tables
    private_subnets = [named(plan, f"private-{az}").id for az in config.network.availability_zones]
    assert sorted(endpoints) == sorted(
        f"com.amazonaws.{config.region}.{s}" for s in config.network.interface_endpoints
    )
    for endpoint in endpoints.values():
        assert endpoint["vpcEndpointType"] == "Interface"
        assert endpoint["privateDnsEnabled"] is True
        assert endpoint["subnetIds"] == private_subnets
        assert endpoint["securityGroupIds"] == [group_id(plan, "vpce")]


@pytest.mark.parametrize("stack", STACKS)
def test_flow_log_goes_to_a_kms_encrypted_log_group_with_the_configured_retention(stack: str) -> None:
    stack_plan = planned(stack)
    plan, config = stack_plan.plan, config_of(stack_plan)
    (flow_log,) = of_type(plan, "aws:ec2/flowLog:FlowLog")
    (group,) = of_type(plan, "aws:cloudwatch/logGroup:LogGroup")
    (key,) = of_type(plan, "aws:kms/key:Key")
    assert flow_log.inputs["vpcId"] == named(plan, "vpc").id
    assert flow_log.inputs["trafficType"] == config.network.flow_logs.traffic_type
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == config.network.flow_logs.retention_days
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True

    statements = json.loads(key.inputs["policy"])["Statement"]
    (logs,) = [
        s for s in statements if s["Principal"].get("Service") == f"logs.{config.region}.amazonaws.com"
    ]
    assert logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == group.outputs["arn"]
    assert any(s["Principal"].get("AWS", "").endswith(":root") for s in statements)


@pytest.mark.parametrize("stack", STACKS)
def test_flow_log_role_is_scoped_to_its_log_group(stack: str) -> None:
    plan = planned(stack).plan
    (role,) = of_type(plan, "aws:iam/role:Role")
    (policy,) = of_type(plan, "aws:iam/rolePolicy:RolePolicy")
    (group,) = of_type(plan, "aws:cloudwatch/logGroup:LogGroup")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "vpc-flow-logs.amazonaws.com"}]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert set(statement["Action"]) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
    }
    arn = group.outputs["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"]
    assert "*" not in statement["Resource"]


def test_no_flow_log_when_disabled(stack_config: LoadStack, write_stack: WriteStack) -> None:
    config = stack_config("dev")
    config["hpc:network"]["flow_logs"] = {"enabled": False}
    plan = plan_stack_file(write_stack(config, "Pulumi.noflow.yaml")).plan
    assert of_type(plan, "aws:ec2/flowLog:FlowLog") == []
    assert of_type(plan, "aws:kms/key:Key") == []


# --- tags --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_network_resource_carries_compliance_tags_and_a_name(stack: str) -> None:
    plan = planned(stack).plan
    taggable = [r for r in subtree(plan) if r.custom and is_taggable(r.type)]
    assert len(taggable) > 50
    missing = {
        r.name: sorted(set(REQUIRED_TAG_KEYS) - set(r.inputs.get("tags") or {}))
        for r in taggable
        if not set(REQUIRED_TAG_KEYS) | {"Name"} <= set(r.inputs.get("tags") or {})
    }
    assert missing == {}
