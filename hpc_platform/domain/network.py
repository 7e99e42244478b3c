"""Network rules on plain values: the config validators and EfaNetwork's guards both call these.

Plain values only (no stack schema), so the component library may import this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SUBNET_TIERS = ("public", "private", "compute", "storage")
"""The subnet tiers of the VPC, each with one subnet per availability zone."""


def subnet_count_problem(cidr_count: int, availability_zones: Sequence[str], zones_key: str) -> str | None:
    """Why a tier with `cidr_count` CIDR blocks does not fit the AZs (`None` when it does).

    `zones_key` names the AZ list where the user set it (a stack-file key or an argument)."""
    if cidr_count == len(availability_zones):
        return None
    return (
        f"has {cidr_count} CIDR blocks for {len(availability_zones)} availability zones; "
        f"give one block per AZ, in {zones_key} order"
    )


def queue_subnet_problems(
    availability_zones: Sequence[str],
    queue_availability_zones: Mapping[str, Sequence[str]],
    placement_group_queues: Sequence[str],
    zones_key: str,
) -> list[tuple[str, str]]:
    """(queue, why) for each queue whose compute subnets cannot be chosen from the VPC's AZs.

    A queue runs in the compute subnets of its AZs, so each must be one of the VPC's; a queue with
    a cluster placement group runs in exactly one AZ (a cluster placement group cannot span AZs,
    and EFA traffic does not cross subnets)."""
    problems: list[tuple[str, str]] = []
    for queue, azs in queue_availability_zones.items():
        if not azs:
            problems.append((queue, "has no availability zone; give the AZ(s) it runs in"))
            continue
        outside = [az for az in azs if az not in availability_zones]
        if outside:
            problems.append(
                (
                    queue,
                    f"placed in {', '.join(outside)}, which the VPC does not span; add it to "
                    f"{zones_key} or place the queue in one of {', '.join(availability_zones)}",
                )
            )
        if queue in placement_group_queues and len(azs) != 1:
            problems.append(
                (
                    queue,
                    f"has a cluster placement group, so it must run in exactly one AZ, not {len(azs)} "
                    f"({', '.join(azs)}); place it in one AZ",
                )
            )
    for queue in placement_group_queues:
        if queue not in queue_availability_zones:
            problems.append((queue, "has a cluster placement group but no availability zone; give its AZ"))
    return problems


# --- ports and network ACLs --------------------------------------------------------------------
# The security groups (EfaNetwork) and the network ACLs both read these.
LUSTRE_PORT_RANGES: tuple[tuple[int, int], ...] = ((988, 988), (1018, 1023))
"""FSx for Lustre (LNet): servers and clients talk on these TCP ports, in both directions."""
NFS_PORT = 2049
HTTP_PORT = 80
HTTPS_PORT = 443
SSH_PORT = 22
EPHEMERAL_PORTS = (1024, 65535)
"""Source ports of client connections (Linux uses 32768-60999, the NAT gateway 1024-65535): the
stateless ACLs let replies through on these."""
INTERNET_EGRESS_PORTS: tuple[tuple[int, int], ...] = ((HTTP_PORT, HTTP_PORT), (HTTPS_PORT, HTTPS_PORT))
"""What nodes reach on the internet through the NAT gateway: package repositories and AWS APIs
without an endpoint. The network ACLs allow only these to leave the VPC."""
ANYWHERE = "0.0.0.0/0"
ALL_PROTOCOLS = "-1"
NACL_FIRST_RULE_NUMBER = 100
NACL_RULE_NUMBER_STEP = 10
NACL_MAX_RULES_PER_DIRECTION = 20
"""AWS's default quota of rules per network ACL and direction (raisable to 40)."""


@dataclass(frozen=True, kw_only=True)
class AclRule:
    """One network ACL entry (always `allow`: whatever no rule allows is denied)."""

    rule_number: int
    egress: bool
    protocol: str
    """`-1` (all) or `6` (TCP): the protocol numbers the EC2 API stores."""
    cidr: str
    from_port: int | None = None
    to_port: int | None = None
    what: str = ""


TCP_PROTOCOL = "6"


def _collapsed(cidrs: Iterable[str]) -> list[str]:
    """The exact union of the blocks, in as few blocks as it takes (adjacent AZ blocks merge)."""
    return [str(n) for n in ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in cidrs)]


def network_acl_rules(
    tier_cidrs: Mapping[str, Sequence[str]],
    *,
    internet: bool,
    ssh_ingress_cidrs: Sequence[str] = (),
) -> dict[str, list[AclRule]]:
    """The network ACL of each subnet tier: only what the tier's security groups let through.

    - private (head node, EFS mount targets, interface endpoints, the accounting database) and
      compute (nodes): all traffic among themselves (the nodes' security group allows all traffic
      within itself: EFA, Slurm, MPI, NFS from the head node, EFS, endpoints on 443), Lustre with
      the storage tier, HTTP/HTTPS out through the NAT gateway and the replies back;
    - storage (FSx for Lustre): Lustre ports from and to the private and compute tiers, HTTPS to S3
      (data repositories) when there is a way out, and the replies;
    - public (NAT gateways): HTTP/HTTPS from the private tiers out to the internet, the replies back.

    Rule numbers count up by `NACL_RULE_NUMBER_STEP` per ACL and direction, in the order below, so
    the same tiers always give the same numbers."""
    nodes = _collapsed([*tier_cidrs["private"], *tier_cidrs["compute"]])
    storage = _collapsed(tier_cidrs["storage"])
    routed = _collapsed([*tier_cidrs["private"], *tier_cidrs["compute"], *tier_cidrs["storage"]])
    ephemeral = EPHEMERAL_PORTS
    rules: dict[str, list[tuple[bool, str, str, tuple[int, int] | None, str]]] = {t: [] for t in SUBNET_TIERS}

    def add(
        tier: str, egress: bool, protocol: str, cidr: str, ports: tuple[int, int] | None, what: str
    ) -> None:
        rules[tier].append((egress, protocol, cidr, ports, what))

    for tier in ("private", "compute"):
        for cidr in nodes:
            add(tier, False, ALL_PROTOCOLS, cidr, None, "all traffic from the nodes' tiers")
            add(tier, True, ALL_PROTOCOLS, cidr, None, "all traffic to the nodes' tiers")
        for cidr in storage:
            for ports in LUSTRE_PORT_RANGES:
                add(tier, False, TCP_PROTOCOL, cidr, ports, "Lustre from the file servers")
                add(tier, True, TCP_PROTOCOL, cidr, ports, "Lustre to the file servers")
            add(tier, True, TCP_PROTOCOL, cidr, ephemeral, "replies to the file servers")
        if internet:
            for ports in INTERNET_EGRESS_PORTS:
                add(tier, True, TCP_PROTOCOL, ANYWHERE, ports, "out through the NAT gateway")
        # Replies from the internet (through NAT) and from the file servers.
        add(tier, False, TCP_PROTOCOL, ANYWHERE, ephemeral, "replies")
    for cidr in ssh_ingress_cidrs:
        add("private", False, TCP_PROTOCOL, cidr, (SSH_PORT, SSH_PORT), "SSH to the head node")
        add("private", True, TCP_PROTOCOL, cidr, ephemeral, "SSH replies")

    for cidr in nodes:
        for ports in LUSTRE_PORT_RANGES:
            add("storage", False, TCP_PROTOCOL, cidr, ports, "Lustre from clients")
            add("storage", True, TCP_PROTOCOL, cidr, ports, "Lustre to clients")
        add("storage", False, TCP_PROTOCOL, cidr, ephemeral, "replies from clients")
        add("storage", True, TCP_PROTOCOL, cidr, ephemeral, "replies to clients")
    if internet:
        add("storage", True, TCP_PROTOCOL, ANYWHERE, (HTTPS_PORT, HTTPS_PORT), "HTTPS to S3")
        add("storage", False, TCP_PROTOCOL, ANYWHERE, ephemeral, "replies from S3")

        for cidr in routed:
            for ports in INTERNET_EGRESS_PORTS:
                add("public", False, TCP_PROTOCOL, cidr, ports, "to the NAT gateway")
            add("public", True, TCP_PROTOCOL, cidr, ephemeral, "NAT replies to the private tiers")
        for ports in INTERNET_EGRESS_PORTS:
            add("public", True, TCP_PROTOCOL, ANYWHERE, ports, "NAT gateway to the internet")
        add("public", False, TCP_PROTOCOL, ANYWHERE, ephemeral, "internet replies to the NAT gateway")

    numbered: dict[str, list[AclRule]] = {}
    for tier, entries in rules.items():
        counters = {False: NACL_FIRST_RULE_NUMBER, True: NACL_FIRST_RULE_NUMBER}
        numbered[tier] = []
        for egress, protocol, cidr, port_range, what in entries:
            numbered[tier].append(
                AclRule(
                    rule_number=counters[egress],
                    egress=egress,
                    protocol=protocol,
                    cidr=cidr,
                    from_port=port_range[0] if port_range else None,
                    to_port=port_range[1] if port_range else None,
                    what=what,
                )
            )
            counters[egress] += NACL_RULE_NUMBER_STEP
    return numbered


def network_acl_problems(rules: Mapping[str, Sequence[AclRule]]) -> list[str]:
    """A tier whose ACL needs more rules in a direction than AWS's default quota allows."""
    problems = []
    for tier, entries in rules.items():
        for egress, direction in ((False, "inbound"), (True, "outbound")):
            count = sum(1 for rule in entries if rule.egress == egress)
            if count > NACL_MAX_RULES_PER_DIRECTION:
                problems.append(
                    f"the {tier} tier's network ACL needs {count} {direction} rules, above the default "
                    f"quota of {NACL_MAX_RULES_PER_DIRECTION}; use fewer ssh_ingress_cidrs or adjacent "
                    "subnet blocks that merge"
                )
    return problems
