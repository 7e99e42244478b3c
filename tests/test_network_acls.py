"""Network ACLs: every path the security groups allow in a stack's plan is still allowed by the
subnets' network ACLs, evaluated as AWS evaluates them (rules in number order, first match wins,
no match denies; stateless, so the reply needs its own rules in both ACLs).

Paths come from the plan's real security-group rules and from where the plan puts each group:
the cluster config's head node and queues, the FSx file systems, the EFS mount targets, the VPC
interface endpoints and the accounting database. Traffic within one subnet never crosses an ACL,
so only pairs of different subnets are paths here.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hpc_platform.app.offline.engine import Plan, PlannedResource
from hpc_platform.domain.network import EPHEMERAL_PORTS, INTERNET_EGRESS_PORTS, LUSTRE_PORT_RANGES
from tests.support.stacks import STACKS, planned

SUBNET = "aws:ec2/subnet:Subnet"
ACL = "aws:ec2/networkAcl:NetworkAcl"
ACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}
# Ports tried for an all-traffic rule: SSH, Lustre, NFS, HTTPS, Slurm, MPI/EFA-style high ports.
ALL_TRAFFIC_SAMPLES = (("tcp", 22), ("tcp", 988), ("tcp", 2049), ("tcp", 443), ("tcp", 6817), ("udp", 50000))
CLIENT_PORT = 40000  # a Linux ephemeral source port
LNET_SOURCE_PORT = 1023  # Lustre clients connect from a privileged port
INTERNET_HOST = "203.0.113.10"


# --- ACL semantics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    number: int
    egress: bool
    protocol: int  # -1: all
    network: ipaddress.IPv4Network
    ports: tuple[int, int] | None
    allow: bool


def _protocol(value: Any) -> int:
    text = str(value).lower()
    return PROTOCOL_NUMBERS[text] if text in PROTOCOL_NUMBERS else int(float(text))


def admits(entries: list[Entry], *, egress: bool, protocol: int, peer: str, port: int) -> bool:
    """Whether an ACL lets a packet through (peer: the other end's address; port: destination)."""
    for entry in sorted((e for e in entries if e.egress == egress), key=lambda e: e.number):
        if entry.protocol not in (-1, protocol) or ipaddress.IPv4Address(peer) not in entry.network:
            continue
        if entry.protocol != -1 and entry.ports is not None and not entry.ports[0] <= port <= entry.ports[1]:
            continue
        return entry.allow
    return False  # the ACL's final `*` rule


@dataclass(frozen=True)
class Network:
    cidr_of: dict[str, str]
    """subnet id → CIDR"""
    tier_of: dict[str, str]
    acl_of: dict[str, list[Entry]]
    """subnet id → its ACL's entries"""

    def host(self, subnet: str) -> str:
        return str(ipaddress.IPv4Network(self.cidr_of[subnet])[10])

    def connects(
        self, src: str, dst: str, protocol: int, port: int, *, via_public: str | None = None
    ) -> bool:
        """A connection from a host in `src` to one in `dst` (or, with `via_public`, to the internet
        through the NAT gateway in that public subnet): request and reply, through every ACL."""
        source_port = LNET_SOURCE_PORT if (port, port) in LUSTRE_PORT_RANGES else CLIENT_PORT
        a = self.host(src)
        if via_public is None:
            b, src_acl, dst_acl = self.host(dst), self.acl_of[src], self.acl_of[dst]
            return (
                admits(src_acl, egress=True, protocol=protocol, peer=b, port=port)
                and admits(dst_acl, egress=False, protocol=protocol, peer=a, port=port)
                and admits(dst_acl, egress=True, protocol=protocol, peer=a, port=source_port)
                and admits(src_acl, egress=False, protocol=protocol, peer=b, port=source_port)
            )
        public = self.acl_of[via_public]
        nat_port = EPHEMERAL_PORTS[0] + 7  # the NAT gateway's source port toward the internet
        return (
            admits(self.acl_of[src], egress=True, protocol=protocol, peer=INTERNET_HOST, port=port)
            and admits(public, egress=False, protocol=protocol, peer=a, port=port)
            and admits(public, egress=True, protocol=protocol, peer=INTERNET_HOST, port=port)
            and admits(public, egress=False, protocol=protocol, peer=INTERNET_HOST, port=nat_port)
            and admits(public, egress=True, protocol=protocol, peer=a, port=source_port)
            and admits(
                self.acl_of[src], egress=False, protocol=protocol, peer=INTERNET_HOST, port=source_port
            )
        )


def network_of(plan: Plan) -> Network:
    subnets = {r.id: r for r in plan.of_type(SUBNET)}
    entries: dict[str, list[Entry]] = defaultdict(list)
    for rule in plan.of_type(ACL_RULE):
        i = rule.inputs
        entries[i["networkAclId"]].append(
            Entry(
                number=int(i["ruleNumber"]),
                egress=bool(i["egress"]),
                protocol=_protocol(i["protocol"]),
                network=ipaddress.IPv4Network(i["cidrBlock"]),
                ports=(int(i["fromPort"]), int(i["toPort"])) if "fromPort" in i else None,
                allow=i["ruleAction"] == "allow",
            )
        )
    acl_of: dict[str, list[Entry]] = {}
    for acl in plan.of_type(ACL):
        for subnet in acl.inputs["subnetIds"]:
            assert subnet not in acl_of, f"{subnet} is in two network ACLs"
            acl_of[str(subnet)] = entries[str(acl.id)]
    assert set(acl_of) == set(subnets), "every subnet has a network ACL of this program"
    return Network(
        cidr_of={sid: r.inputs["cidrBlock"] for sid, r in subnets.items() if sid},
        tier_of={sid: r.inputs["tags"]["Tier"] for sid, r in subnets.items() if sid},
        acl_of=acl_of,
    )


# --- where the plan puts each security group ----------------------------------------------------
def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def members(plan: Plan) -> dict[str, set[str]]:
    """security group id → the subnets where something carrying it sits."""
    found: dict[str, set[str]] = defaultdict(set)

    def attach(groups: Any, subnets: Any) -> None:
        for group in _ids(groups):
            found[group].update(_ids(subnets))

    for resource in plan.resources:
        i = resource.inputs
        if resource.type == "aws:fsx/lustreFileSystem:LustreFileSystem":
            attach(i.get("securityGroupIds"), i.get("subnetIds"))
        elif resource.type == "aws:efs/mountTarget:MountTarget":
            attach(i.get("securityGroups"), i.get("subnetId"))
        elif resource.type == "aws:ec2/vpcEndpoint:VpcEndpoint" and i.get("vpcEndpointType") == "Interface":
            attach(i.get("securityGroupIds"), i.get("subnetIds"))
        elif resource.type == "aws:rds/cluster:Cluster":
            (group,) = [g for g in plan.of_type("aws:rds/subnetGroup:SubnetGroup") if g.outputs.get("name")]
            attach(i.get("vpcSecurityGroupIds"), group.inputs["subnetIds"])
        elif _is_cluster(resource):
            config = i["cluster_config"]
            head = config["HeadNode"]["Networking"]
            attach(head.get("SecurityGroups") or head.get("AdditionalSecurityGroups"), head["SubnetId"])
            for queue in config["Scheduling"]["SlurmQueues"]:
                net = queue["Networking"]
                attach(net.get("SecurityGroups") or net.get("AdditionalSecurityGroups"), net["SubnetIds"])
    return found


def _is_cluster(resource: PlannedResource) -> bool:
    return resource.type == "pulumi-python:dynamic:Resource" and "cluster_config" in resource.inputs


@dataclass(frozen=True)
class SgRule:
    group: str
    protocol: int
    ports: tuple[int, int] | None
    peer_group: str | None
    peer_cidr: ipaddress.IPv4Network | None

    def covers(self, group: str | None, address: str | None) -> bool:
        if self.peer_group is not None:
            return self.peer_group == group
        return (
            address is not None
            and self.peer_cidr is not None
            and ipaddress.IPv4Address(address) in self.peer_cidr
        )


def sg_rules(plan: Plan, token: str) -> list[SgRule]:
    rules = []
    for rule in plan.of_type(token):
        i = rule.inputs
        rules.append(
            SgRule(
                group=i["securityGroupId"],
                protocol=_protocol(i["ipProtocol"]),
                ports=(int(i["fromPort"]), int(i["toPort"])) if "fromPort" in i else None,
                peer_group=i.get("referencedSecurityGroupId"),
                peer_cidr=ipaddress.IPv4Network(i["cidrIpv4"]) if i.get("cidrIpv4") else None,
            )
        )
    return rules


def _samples(rule: SgRule) -> Iterator[tuple[int, int]]:
    if rule.protocol == -1:
        yield from ((PROTOCOL_NUMBERS[p], port) for p, port in ALL_TRAFFIC_SAMPLES)
    elif rule.ports is not None:
        yield from {(rule.protocol, rule.ports[0]), (rule.protocol, rule.ports[1])}


def _both(out_rule: SgRule, in_rule: SgRule) -> Iterator[tuple[int, int]]:
    """(protocol, port) samples allowed by an egress rule and an ingress rule together."""
    for protocol, port in [*_samples(out_rule), *_samples(in_rule)]:
        for rule in (out_rule, in_rule):
            if rule.protocol not in (-1, protocol):
                break
            if rule.protocol != -1 and rule.ports is not None and not rule.ports[0] <= port <= rule.ports[1]:
                break
        else:
            yield protocol, port


def sg_paths(plan: Plan, network: Network) -> set[tuple[str, str, int, int]]:
    """(source subnet, destination subnet, protocol, port) of every connection the security groups
    allow between different subnets: the source's egress and the destination's ingress agree."""
    where = members(plan)
    ingress, egress = sg_rules(plan, INGRESS), sg_rules(plan, EGRESS)
    paths = set()
    for out_rule in egress:
        for in_rule in ingress:
            for src in where.get(out_rule.group, ()):
                for dst in where.get(in_rule.group, ()):
                    if src == dst:
                        continue
                    if not out_rule.covers(in_rule.group, network.host(dst)):
                        continue
                    if not in_rule.covers(out_rule.group, network.host(src)):
                        continue
                    for protocol, port in _both(out_rule, in_rule):
                        paths.add((src, dst, protocol, port))
    return paths


# --- the tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_every_path_the_security_groups_allow_passes_the_network_acls(stack: str) -> None:
    plan = planned(stack).plan
    network = network_of(plan)
    paths = sg_paths(plan, network)
    tiers = {(network.tier_of[s], network.tier_of[d]) for s, d, _, _ in paths}
    # The paths the issue names are all among them: EFA/Slurm between head node and compute nodes,
    # Lustre to the storage tier, NFS to EFS and HTTPS to the endpoints in the private tier.
    assert {
        ("private", "compute"),
        ("compute", "private"),
        ("compute", "storage"),
        ("private", "storage"),
    } <= tiers
    ports = {(network.tier_of[d], port) for _, d, _, port in paths}
    assert {
        ("storage", 988),
        ("storage", 1018),
        ("storage", 1023),
        ("private", 2049),
        ("private", 443),
    } <= ports
    blocked = [p for p in paths if not network.connects(p[0], p[1], p[2], p[3])]
    assert blocked == [], [
        (network.tier_of[s], network.cidr_of[s], network.tier_of[d], network.cidr_of[d], proto, port)
        for s, d, proto, port in blocked
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_reach_the_internet_through_nat_on_the_ports_acls_are_meant_for(stack: str) -> None:
    plan = planned(stack).plan
    network = network_of(plan)
    where = members(plan)
    anywhere = ipaddress.IPv4Network("0.0.0.0/0")
    nat_subnets = [r.inputs["subnetId"] for r in plan.of_type("aws:ec2/natGateway:NatGateway")]
    assert nat_subnets
    checked = 0
    for rule in sg_rules(plan, EGRESS):
        if rule.peer_cidr != anywhere:
            continue
        for src in where.get(rule.group, ()):
            for low, _ in INTERNET_EGRESS_PORTS:
                if rule.protocol in (-1, 6) and (rule.ports is None or rule.ports[0] <= low <= rule.ports[1]):
                    for public in nat_subnets:
                        assert network.connects(src, "", 6, low, via_public=public), (src, low)
                        checked += 1
            # What the ACLs are for: the security group allows all egress, the ACL only HTTP(S).
            assert not network.connects(src, "", 6, 25, via_public=nat_subnets[0])
    assert checked


@pytest.mark.parametrize("stack", STACKS)
def test_acls_deny_what_no_security_group_allows(stack: str) -> None:
    network = network_of(planned(stack).plan)
    by_tier: dict[str, list[str]] = defaultdict(list)
    for subnet, tier in network.tier_of.items():
        by_tier[tier].append(subnet)
    public, storage, compute = by_tier["public"][0], by_tier["storage"][0], by_tier["compute"][0]
    # Nothing in the public tier reaches the file servers or the nodes directly.
    assert not network.connects(public, storage, 6, 988)
    assert not network.connects(public, compute, 6, 22)
    # The file servers open nothing but Lustre to the nodes.
    assert not network.connects(compute, storage, 6, 22)
    assert network.connects(compute, storage, 6, 988)


@pytest.mark.parametrize("stack", STACKS)
def test_rule_numbers_are_deterministic_and_unique_per_direction(stack: str) -> None:
    plan = planned(stack).plan
    numbers: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for rule in plan.of_type(ACL_RULE):
        numbers[(rule.inputs["networkAclId"], bool(rule.inputs["egress"]))].append(
            int(rule.inputs["ruleNumber"])
        )
        assert rule.name.endswith(
            f"-{'out' if rule.inputs['egress'] else 'in'}-{int(rule.inputs['ruleNumber'])}"
        )
    for found in numbers.values():
        assert sorted(found) == list(range(100, 100 + 10 * len(found), 10))
