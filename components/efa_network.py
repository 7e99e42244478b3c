"""EfaNetwork: the VPC an HPC cluster runs in, built for EFA.

Four subnet tiers per availability zone (public, private, compute, storage) with the CIDRs given,
each tier behind its own network ACL that lets through only what the tier's security groups allow
(`hpc_platform.domain.network.network_acl_rules`);
NAT per `nat_gateways`; security groups whose rules are separate resources; one cluster placement
group per queue that asks for one; VPC endpoints; encrypted VPC flow logs.

Built from plain pulumi-aws resources rather than awsx's remote `ec2.Vpc`: every subnet, route
table and NAT gateway is then a resource of this program, visible to the offline plan and to the
policy pack (tags, routes), and each queue's subnet is chosen by AZ when the program runs.

A library component: its args are plain values and Pulumi inputs, not the stack schema (the
application's wiring maps a stack file to them). No `from __future__ import annotations` here:
Pulumi's component analyzer reads these annotations as types, not strings.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pulumi

from components.kms import account_root_statement, cloudwatch_logs_statement, log_group_arn
from hpc_platform.domain.limits import (
    DEFAULT_ENABLE_FLOW_LOGS,
    DEFAULT_ENABLE_S3_GATEWAY_ENDPOINT,
    DEFAULT_FLOW_LOG_RETENTION_DAYS,
    DEFAULT_FLOW_LOG_TRAFFIC_TYPE,
    DEFAULT_INTERFACE_ENDPOINTS,
    DEFAULT_NAT_GATEWAYS,
    DEFAULT_VPC_CIDR,
    KMS_DEFAULT_DELETION_WINDOW_DAYS,
)
from hpc_platform.domain.network import (
    ALL_PROTOCOLS,
    ANYWHERE,
    HTTPS_PORT,
    LUSTRE_PORT_RANGES,
    NFS_PORT,
    SSH_PORT,
    SUBNET_TIERS,
    AclRule,
    network_acl_problems,
    network_acl_rules,
    queue_subnet_problems,
    subnet_count_problem,
)

if TYPE_CHECKING:
    import pulumi_aws as aws
else:
    # Only the pulumi-aws modules the component uses (see components/_aws.py).
    from components._aws import aws

TYPE_TOKEN = "hpc:network:EfaNetwork"
# Tiers routed through NAT (and the S3 gateway endpoint); `public` routes to the internet gateway.
PRIVATE_TIERS = ("private", "compute", "storage")


# ---------------------------------------------------------------------------------------------
# Args
# ---------------------------------------------------------------------------------------------
class NatGateways(StrEnum):
    """How the private, compute and storage subnets reach the internet."""

    NONE = "none"
    """No NAT gateway and no internet gateway: nodes reach AWS only through VPC endpoints."""
    SINGLE = "single"
    """One NAT gateway, in the first AZ: cheap; the other AZs lose the internet if that AZ fails."""
    ONE_PER_AZ = "one_per_az"
    """One NAT gateway per AZ: survives an AZ outage."""


DEFAULT_NAT = NatGateways(DEFAULT_NAT_GATEWAYS)


@dataclass(frozen=True, kw_only=True)
class EfaNetworkArgs:
    """The VPC EfaNetwork builds. Per-tier CIDR lists give one block per AZ, in
    `availability_zones` order."""

    region: str
    """AWS region of the VPC; VPC endpoint service names and the flow-log key policy name it."""
    availability_zones: Sequence[str]
    """AZs the VPC spans, in order; the head node and storage use the first AZ's subnets."""
    public_subnet_cidrs: Sequence[str]
    """Public subnets, one per AZ: NAT gateways and nothing else."""
    private_subnet_cidrs: Sequence[str]
    """Private subnets, one per AZ: head node, EFS mount targets, VPC interface endpoints."""
    compute_subnet_cidrs: Sequence[str]
    """Compute subnets, one per AZ: compute nodes (one address per node and network interface)."""
    storage_subnet_cidrs: Sequence[str]
    """Storage subnets, one per AZ: FSx for Lustre uses the first."""
    vpc_cidr: pulumi.Input[str] = DEFAULT_VPC_CIDR
    """The VPC's primary IPv4 block; every subnet CIDR must sit inside it. Omitted: 10.0.0.0/16."""
    nat_gateways: NatGateways = DEFAULT_NAT
    """NAT strategy (see `NatGateways`). Omitted: one NAT gateway."""
    interface_endpoints: Sequence[str] = DEFAULT_INTERFACE_ENDPOINTS
    """AWS services (`ssm`, `ecr.api`, …) to reach through interface endpoints (private DNS on) in
    the private subnets. Omitted: what a ParallelCluster node needs without the NAT."""
    enable_s3_gateway_endpoint: bool = DEFAULT_ENABLE_S3_GATEWAY_ENDPOINT
    """The free S3 gateway endpoint on the private route tables. Omitted: on."""
    enable_flow_logs: bool = DEFAULT_ENABLE_FLOW_LOGS
    """VPC flow logs to a CloudWatch log group encrypted with its own KMS key. Omitted: on."""
    flow_log_traffic_type: pulumi.Input[str] = DEFAULT_FLOW_LOG_TRAFFIC_TYPE
    """`ALL`, `ACCEPT` or `REJECT`: which packets the flow log records. Omitted: `ALL`."""
    flow_log_retention_days: pulumi.Input[int] = DEFAULT_FLOW_LOG_RETENTION_DAYS
    """Retention of the flow-log group (a value CloudWatch Logs accepts). Omitted: 365 days."""
    flow_log_key_deletion_window_days: pulumi.Input[int] = KMS_DEFAULT_DELETION_WINDOW_DAYS
    """Days before the deleted flow-log KMS key is gone (7-30). Omitted: 30."""
    ssh_ingress_cidrs: Sequence[str] = ()
    """CIDRs allowed to SSH to the head-node security group, one rule each. Omitted: none (use
    SSM Session Manager)."""
    queue_availability_zones: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Queue name → the AZs whose compute subnets it runs in (`queue_subnet_ids`). Omitted: none."""
    placement_group_queues: Sequence[str] = ()
    """Queues that get a cluster placement group (EFA queues); each runs in exactly one AZ.
    Omitted: no placement groups."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Tags for every taggable child, under the `Name` (and `Tier`, `Queue`, …) the component sets."""

    def __post_init__(self) -> None:
        # Guards for direct library use; a stack file is checked by the config validators first,
        # with the same rules (`hpc_platform.domain.network`).
        for tier in SUBNET_TIERS:
            problem = subnet_count_problem(
                len(self.subnet_cidrs(tier)), self.availability_zones, "availability_zones"
            )
            if problem:
                raise ValueError(f"EfaNetworkArgs.{tier}_subnet_cidrs: {problem}")
        problems = queue_subnet_problems(
            self.availability_zones,
            self.queue_availability_zones,
            self.placement_group_queues,
            "availability_zones",
        )
        if problems:
            raise ValueError(
                "; ".join(f"EfaNetworkArgs.queue_availability_zones[{q}]: {why}" for q, why in problems)
            )
        too_many = network_acl_problems(self.network_acl_rules())
        if too_many:
            raise ValueError(f"EfaNetworkArgs: {'; '.join(too_many)}")

    def network_acl_rules(self) -> dict[str, list[AclRule]]:
        """Each tier's network ACL entries (`hpc_platform.domain.network.network_acl_rules`)."""
        return network_acl_rules(
            {tier: self.subnet_cidrs(tier) for tier in SUBNET_TIERS},
            internet=self.nat_gateways != NatGateways.NONE,
            ssh_ingress_cidrs=self.ssh_ingress_cidrs,
        )

    def subnet_cidrs(self, tier: str) -> Sequence[str]:
        """The CIDR blocks of one tier (`public`, `private`, `compute` or `storage`), in AZ order."""
        cidrs: Sequence[str] = getattr(self, f"{tier}_subnet_cidrs")
        return cidrs


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------
def flow_logs_trust_policy(account_id: str, partition: str, region: str) -> dict[str, Any]:
    """The role VPC flow logs assume: only for flow logs of this account and region (the confused
    deputy conditions AWS recommends)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
                },
            }
        ],
    }


def flow_logs_delivery_policy(log_group_arn: str) -> dict[str, Any]:
    """What that role may do: deliver to its own log group only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeliverToThisLogGroupOnly",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            }
        ],
    }


class EfaNetwork(pulumi.ComponentResource):
    """VPC, subnets, NAT, security groups, placement groups, endpoints and flow logs for one cluster.

    Attach `efa_security_group_id` to head and compute nodes; `allow_lustre_from` and
    `allow_efs_from` open the file systems to another security group.
    """

    vpc_id: pulumi.Output[str]
    """The VPC."""
    public_subnet_ids: list[pulumi.Output[str]]
    """Public subnets, in AZ order."""
    private_subnet_ids: list[pulumi.Output[str]]
    """Private subnets, in AZ order."""
    compute_subnet_ids: list[pulumi.Output[str]]
    """Compute subnets, in AZ order."""
    storage_subnet_ids: list[pulumi.Output[str]]
    """Storage subnets, in AZ order."""
    queue_subnet_ids: dict[str, list[pulumi.Output[str]]]
    """Queue name → the compute subnets of its AZs."""
    head_node_subnet_id: pulumi.Output[str]
    """The first private subnet: where the head node runs."""
    storage_subnet_id: pulumi.Output[str]
    """The first storage subnet: where FSx for Lustre runs."""
    efa_security_group_id: pulumi.Output[str]
    """Head and compute nodes: all traffic within the group (EFA), Lustre and EFS clients."""
    head_node_security_group_id: pulumi.Output[str]
    """Head node: SSH from `ssh_ingress_cidrs`."""
    lustre_security_group_id: pulumi.Output[str]
    """FSx for Lustre file systems."""
    efs_security_group_id: pulumi.Output[str]
    """EFS mount targets."""
    endpoint_security_group_id: pulumi.Output[str]
    """VPC interface endpoints: HTTPS from the VPC."""
    placement_group_names: dict[str, pulumi.Output[str]]
    """Queue name → its cluster placement group."""

    def __init__(self, name: str, args: EfaNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self.args = args
        azs = list(args.availability_zones)
        child = pulumi.ResourceOptions(parent=self)

        # --- VPC and subnets -------------------------------------------------------------------
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=self._tags(name),
            opts=child,
        )
        # Adopt the VPC's default security group and strip its rules: nothing should use it.
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=self._tags(f"{name}-default-unused"),
            opts=child,
        )
        self.subnets: dict[str, list[aws.ec2.Subnet]] = {
            tier: [
                aws.ec2.Subnet(
                    f"{name}-{tier}-{az}",
                    vpc_id=self.vpc.id,
                    availability_zone=az,
                    cidr_block=cidr,
                    map_public_ip_on_launch=False,
                    tags=self._tags(f"{name}-{tier}-{az}", Tier=tier),
                    opts=child,
                )
                for az, cidr in zip(azs, args.subnet_cidrs(tier), strict=True)
            ]
            for tier in SUBNET_TIERS
        }

        # --- internet gateway, NAT and routes --------------------------------------------------
        # `none`: no NAT and no internet gateway; nodes reach AWS only through VPC endpoints.
        self.internet_gateway: aws.ec2.InternetGateway | None = None
        self.nat_gateways: dict[str, aws.ec2.NatGateway] = {}
        self.public_route_table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id, tags=self._tags(f"{name}-public"), opts=child
        )
        if args.nat_gateways != NatGateways.NONE:
            self.internet_gateway = aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=self.vpc.id, tags=self._tags(name), opts=child
            )
            aws.ec2.Route(
                f"{name}-public-default",
                route_table_id=self.public_route_table.id,
                destination_cidr_block=ANYWHERE,
                gateway_id=self.internet_gateway.id,
                opts=child,
            )
            nat_azs = azs if args.nat_gateways == NatGateways.ONE_PER_AZ else azs[:1]
            after_igw = pulumi.ResourceOptions(parent=self, depends_on=[self.internet_gateway])
            for az in nat_azs:
                eip = aws.ec2.Eip(
                    f"{name}-nat-eip-{az}", domain="vpc", tags=self._tags(f"{name}-nat-{az}"), opts=after_igw
                )
                self.nat_gateways[az] = aws.ec2.NatGateway(
                    f"{name}-nat-{az}",
                    allocation_id=eip.id,
                    subnet_id=self.subnets["public"][azs.index(az)].id,
                    tags=self._tags(f"{name}-nat-{az}"),
                    opts=after_igw,
                )
        for az, subnet in zip(azs, self.subnets["public"], strict=True):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}-rta",
                subnet_id=subnet.id,
                route_table_id=self.public_route_table.id,
                opts=child,
            )

        # One route table per AZ for the private, compute and storage tiers: switching from a
        # single NAT to one per AZ then only changes routes, never associations.
        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for index, az in enumerate(azs):
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{az}",
                vpc_id=self.vpc.id,
                tags=self._tags(f"{name}-private-{az}"),
                opts=child,
            )
            self.private_route_tables.append(table)
            nat = self.nat_gateways.get(az) or next(iter(self.nat_gateways.values()), None)
            if nat is not None:
                aws.ec2.Route(
                    f"{name}-private-default-{az}",
                    route_table_id=table.id,
                    destination_cidr_block=ANYWHERE,
                    nat_gateway_id=nat.id,
                    opts=child,
                )
            for tier in PRIVATE_TIERS:
                aws.ec2.RouteTableAssociation(
                    f"{name}-{tier}-{az}-rta",
                    subnet_id=self.subnets[tier][index].id,
                    route_table_id=table.id,
                    opts=child,
                )

        # --- network ACLs: one per tier, only what the tier's security groups let through ------
        self.network_acls: dict[str, aws.ec2.NetworkAcl] = {}
        for tier, rules in args.network_acl_rules().items():
            acl = aws.ec2.NetworkAcl(
                f"{name}-{tier}-nacl",
                vpc_id=self.vpc.id,
                subnet_ids=[subnet.id for subnet in self.subnets[tier]],
                tags=self._tags(f"{name}-{tier}", Tier=tier),
                opts=child,
            )
            self.network_acls[tier] = acl
            for rule in rules:
                direction = "out" if rule.egress else "in"
                aws.ec2.NetworkAclRule(
                    f"{name}-{tier}-nacl-{direction}-{rule.rule_number}",
                    network_acl_id=acl.id,
                    rule_number=rule.rule_number,
                    egress=rule.egress,
                    protocol=rule.protocol,
                    rule_action="allow",
                    cidr_block=rule.cidr,
                    from_port=rule.from_port,
                    to_port=rule.to_port,
                    opts=child,
                )

        # --- security groups -------------------------------------------------------------------
        self.efa_security_group = self._security_group(
            "efa", "HPC cluster nodes: EFA and all node-to-node traffic within this group"
        )
        self.head_node_security_group = self._security_group("head-node", "HPC head node: SSH access")
        self.lustre_security_group = self._security_group("lustre", "FSx for Lustre file systems")
        self.efs_security_group = self._security_group("efs", "EFS mount targets")
        self.endpoint_security_group = self._security_group("vpce", "VPC interface endpoints")

        efa_id = self.efa_security_group.id
        # ParallelCluster's EFA check counts only rules that name the group itself, all protocols.
        self._ingress(
            "efa-in-self", efa_id, ALL_PROTOCOLS, source_group=efa_id, what="all traffic from nodes"
        )
        self._egress("efa-out-self", efa_id, ALL_PROTOCOLS, target_group=efa_id, what="all traffic to nodes")
        self._egress(
            "efa-out-all", efa_id, ALL_PROTOCOLS, cidr=ANYWHERE, what="outbound via NAT and endpoints"
        )

        for cidr in args.ssh_ingress_cidrs:
            self._ingress(
                f"head-node-ssh-{cidr.replace('/', '-')}",
                self.head_node_security_group.id,
                "tcp",
                ports=(SSH_PORT, SSH_PORT),
                cidr=cidr,
                what="SSH",
            )

        lustre_id = self.lustre_security_group.id
        for low, high in LUSTRE_PORT_RANGES:
            ports = _port_label(low, high)
            self._ingress(
                f"lustre-{ports}-in-self",
                lustre_id,
                "tcp",
                (low, high),
                source_group=lustre_id,
                what="Lustre servers",
            )
            self._egress(
                f"lustre-{ports}-out-self",
                lustre_id,
                "tcp",
                (low, high),
                target_group=lustre_id,
                what="Lustre servers",
            )
        self.allow_lustre_from("nodes", self.efa_security_group)
        self.allow_efs_from("nodes", self.efa_security_group)

        self._ingress(
            "vpce-https-from-vpc",
            self.endpoint_security_group.id,
            "tcp",
            (HTTPS_PORT, HTTPS_PORT),
            cidr=args.vpc_cidr,
            what="HTTPS from the VPC",
        )

        # --- placement groups and queue subnets ------------------------------------------------
        compute_ids = {az: subnet.id for az, subnet in zip(azs, self.subnets["compute"], strict=True)}
        self.placement_groups: dict[str, aws.ec2.PlacementGroup] = {}
        self.queue_subnet_ids = {}
        for queue, queue_azs in args.queue_availability_zones.items():
            self.queue_subnet_ids[queue] = [compute_ids[az] for az in queue_azs]
            if queue in args.placement_group_queues:
                # A cluster placement group lives in one AZ (the guard in the args checks that).
                self.placement_groups[queue] = aws.ec2.PlacementGroup(
                    f"{name}-pg-{queue}",
                    strategy="cluster",
                    tags=self._tags(f"{name}-{queue}", Queue=queue, AvailabilityZone=queue_azs[0]),
                    opts=child,
                )
        self.placement_group_names = {queue: pg.name for queue, pg in self.placement_groups.items()}

        # --- VPC endpoints ---------------------------------------------------------------------
        self.vpc_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        if args.enable_s3_gateway_endpoint:
            self.vpc_endpoints["s3"] = aws.ec2.VpcEndpoint(
                f"{name}-vpce-s3",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[table.id for table in self.private_route_tables],
                tags=self._tags(f"{name}-s3"),
                opts=child,
            )
        for service in args.interface_endpoints:
            self.vpc_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-vpce-{service}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in self.subnets["private"]],
                security_group_ids=[self.endpoint_security_group.id],
                tags=self._tags(f"{name}-{service}"),
                opts=child,
            )

        # --- flow logs -------------------------------------------------------------------------
        self.flow_log: aws.ec2.FlowLog | None = None
        self.flow_log_group: aws.cloudwatch.LogGroup | None = None
        self.flow_log_key: aws.kms.Key | None = None
        if args.enable_flow_logs:
            self._flow_logs()

        # --- outputs ---------------------------------------------------------------------------
        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.subnets["public"]]
        self.private_subnet_ids = [s.id for s in self.subnets["private"]]
        self.compute_subnet_ids = [s.id for s in self.subnets["compute"]]
        self.storage_subnet_ids = [s.id for s in self.subnets["storage"]]
        self.head_node_subnet_id = self.private_subnet_ids[0]
        self.storage_subnet_id = self.storage_subnet_ids[0]
        self.efa_security_group_id = self.efa_security_group.id
        self.head_node_security_group_id = self.head_node_security_group.id
        self.lustre_security_group_id = self.lustre_security_group.id
        self.efs_security_group_id = self.efs_security_group.id
        self.endpoint_security_group_id = self.endpoint_security_group.id
        self.register_outputs(self.outputs())

    # --- intent helpers ------------------------------------------------------------------------
    def allow_lustre_from(self, role: str, security_group: aws.ec2.SecurityGroup) -> None:
        """Let members of `security_group` mount Lustre: TCP 988 and 1018-1023, both ways, on both
        groups (LNet servers also open connections to clients)."""
        lustre_id = self.lustre_security_group.id
        client_id = security_group.id
        for low, high in LUSTRE_PORT_RANGES:
            ports = _port_label(low, high)
            self._ingress(
                f"lustre-{ports}-in-{role}",
                lustre_id,
                "tcp",
                (low, high),
                source_group=client_id,
                what=f"Lustre from {role}",
            )
            self._egress(
                f"lustre-{ports}-out-{role}",
                lustre_id,
                "tcp",
                (low, high),
                target_group=client_id,
                what=f"Lustre to {role}",
            )
            self._ingress(
                f"{role}-{ports}-in-lustre",
                client_id,
                "tcp",
                (low, high),
                source_group=lustre_id,
                what="Lustre servers",
            )
            self._egress(
                f"{role}-{ports}-out-lustre",
                client_id,
                "tcp",
                (low, high),
                target_group=lustre_id,
                what="Lustre servers",
            )

    def allow_efs_from(self, role: str, security_group: aws.ec2.SecurityGroup) -> None:
        """Let members of `security_group` mount EFS (NFS, TCP 2049).

        The mount targets' group allows 2049 out as well as in: ParallelCluster's `EfsIdValidator`
        rejects a mount target whose groups do not allow the port in both directions."""
        nfs = (NFS_PORT, NFS_PORT)
        self._ingress(
            f"efs-nfs-in-{role}",
            self.efs_security_group.id,
            "tcp",
            nfs,
            source_group=security_group.id,
            what=f"NFS from {role}",
        )
        self._egress(
            f"efs-nfs-out-{role}",
            self.efs_security_group.id,
            "tcp",
            nfs,
            target_group=security_group.id,
            what=f"NFS to {role}",
        )
        self._egress(
            f"{role}-nfs-out-efs",
            security_group.id,
            "tcp",
            nfs,
            target_group=self.efs_security_group.id,
            what="NFS to EFS",
        )

    def outputs(self) -> dict[str, Any]:
        """What the component registers; program.py exports the same values."""
        return {
            "vpc_id": self.vpc_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "compute_subnet_ids": self.compute_subnet_ids,
            "storage_subnet_ids": self.storage_subnet_ids,
            "queue_subnet_ids": self.queue_subnet_ids,
            "head_node_subnet_id": self.head_node_subnet_id,
            "storage_subnet_id": self.storage_subnet_id,
            "efa_security_group_id": self.efa_security_group_id,
            "head_node_security_group_id": self.head_node_security_group_id,
            "lustre_security_group_id": self.lustre_security_group_id,
            "efs_security_group_id": self.efs_security_group_id,
            "vpc_endpoint_security_group_id": self.endpoint_security_group_id,
            "placement_group_names": self.placement_group_names,
        }

    # --- building blocks -----------------------------------------------------------------------
    def _tags(self, name: str, **labels: str) -> dict[str, pulumi.Input[str]]:
        """The caller's tags, then the child's `Name` and labels (those win: names are a contract)."""
        return {**self.args.tags, "Name": name, **labels}

    def _security_group(self, role: str, description: str) -> aws.ec2.SecurityGroup:
        # No inline rules: each rule below is its own resource (and the provider removes AWS's
        # default allow-all egress rule).
        return aws.ec2.SecurityGroup(
            f"{self._name}-{role}-sg",
            vpc_id=self.vpc.id,
            description=description,
            tags=self._tags(f"{self._name}-{role}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _ingress(
        self,
        role: str,
        group_id: pulumi.Input[str],
        protocol: str,
        ports: tuple[int, int] | None = None,
        *,
        cidr: pulumi.Input[str] | None = None,
        source_group: pulumi.Input[str] | None = None,
        what: str,
    ) -> aws.vpc.SecurityGroupIngressRule:
        return aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-{role}",
            security_group_id=group_id,
            ip_protocol=protocol,
            from_port=ports[0] if ports else None,
            to_port=ports[1] if ports else None,
            cidr_ipv4=cidr,
            referenced_security_group_id=source_group,
            description=what,
            tags=self._tags(f"{self._name}-{role}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _egress(
        self,
        role: str,
        group_id: pulumi.Input[str],
        protocol: str,
        ports: tuple[int, int] | None = None,
        *,
        cidr: pulumi.Input[str] | None = None,
        target_group: pulumi.Input[str] | None = None,
        what: str,
    ) -> aws.vpc.SecurityGroupEgressRule:
        return aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{role}",
            security_group_id=group_id,
            ip_protocol=protocol,
            from_port=ports[0] if ports else None,
            to_port=ports[1] if ports else None,
            cidr_ipv4=cidr,
            referenced_security_group_id=target_group,
            description=what,
            tags=self._tags(f"{self._name}-{role}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _flow_logs(self) -> None:
        name = self._name
        region = self.args.region
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke)
        # The key policy names the log group's ARN, and the log group needs the key: fix the name.
        log_group_name = f"/aws/vpc-flow-logs/{name}"

        key_policy = pulumi.Output.all(account, partition.partition, partition.dns_suffix).apply(
            lambda v: _flow_log_key_policy(
                account=v[0], partition=v[1], dns_suffix=v[2], region=region, log_group_name=log_group_name
            )
        )
        self.flow_log_key = aws.kms.Key(
            f"{name}-flow-logs-key",
            description=f"{name}: VPC flow logs ({log_group_name})",
            enable_key_rotation=True,
            deletion_window_in_days=self.args.flow_log_key_deletion_window_days,
            policy=key_policy,
            tags=self._tags(f"{name}-flow-logs"),
            opts=child,
        )
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=log_group_name,
            retention_in_days=self.args.flow_log_retention_days,
            kms_key_id=self.flow_log_key.arn,
            tags=self._tags(f"{name}-flow-logs"),
            opts=child,
        )
        assume_role = pulumi.Output.all(account, partition.partition).apply(
            lambda v: json.dumps(flow_logs_trust_policy(v[0], v[1], region))
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=assume_role,
            description=f"{name}: VPC flow logs delivery to {log_group_name}",
            tags=self._tags(f"{name}-flow-logs"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=self.flow_log_group.arn.apply(lambda arn: json.dumps(flow_logs_delivery_policy(arn))),
            opts=child,
        )
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=self.args.flow_log_traffic_type,
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            tags=self._tags(name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )


def _port_label(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def _flow_log_key_policy(
    *, account: str, partition: str, dns_suffix: str, region: str, log_group_name: str
) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_root_statement(partition, account, sid="AccountAdministers"),
                cloudwatch_logs_statement(
                    region=region,
                    dns_suffix=dns_suffix,
                    log_group_arns=log_group_arn(partition, region, account, log_group_name),
                    sid="CloudWatchLogsEncryptsThisLogGroup",
                ),
            ],
        }
    )


__all__ = ["TYPE_TOKEN", "EfaNetwork", "EfaNetworkArgs", "NatGateways"]
