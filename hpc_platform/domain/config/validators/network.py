"""Network rules: subnet layout, availability zones, SSH ingress, compute-subnet capacity, network
ACL size."""

import ipaddress
from collections import Counter
from collections.abc import Iterator

from hpc_platform.domain.catalog import InstanceCatalog
from hpc_platform.domain.config.errors import Finding
from hpc_platform.domain.config.models import StackConfig
from hpc_platform.domain.config.validators.base import Validator
from hpc_platform.domain.limits import SUBNET_RESERVED_ADDRESSES, VPC_PREFIX_LENGTHS
from hpc_platform.domain.network import (
    SUBNET_TIERS,
    network_acl_problems,
    network_acl_rules,
    subnet_count_problem,
)
from hpc_platform.domain.placement import queue_placements, unknown_az_problem


class SubnetLayoutValidator(Validator):
    name = "subnet-layout"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        network = config.network
        vpc = ipaddress.IPv4Network(network.vpc_cidr)
        seen: list[tuple[ipaddress.IPv4Network, str]] = []
        for tier in SUBNET_TIERS:
            cidrs = network.subnets.tier(tier)
            count_problem = subnet_count_problem(
                len(cidrs), network.availability_zones, "hpc:network.availability_zones"
            )
            if count_problem:
                yield Finding(("network", "subnets", tier), count_problem)
            for index, text in enumerate(cidrs):
                subnet = ipaddress.IPv4Network(text)
                loc = ("network", "subnets", tier, index)
                if not subnet.subnet_of(vpc):
                    yield Finding(loc, f"{text} is not inside the VPC CIDR {vpc}")
                    continue
                low, high = VPC_PREFIX_LENGTHS
                if not low <= subnet.prefixlen <= high:
                    yield Finding(loc, f"{text}: subnets must be between /{low} and /{high}")
                for other, where in seen:
                    if subnet.overlaps(other):
                        yield Finding(loc, f"{text} overlaps {other} ({where})")
                seen.append((subnet, f"hpc:network.subnets.{tier}[{index}]"))
        if len(set(network.availability_zones)) != len(network.availability_zones):
            yield Finding(("network", "availability_zones"), "lists an availability zone twice")
        for index, az in enumerate(network.availability_zones):
            if not az.startswith(config.region):
                yield Finding(
                    ("network", "availability_zones", index),
                    f"{az} is not in the stack's region {config.region}",
                )


class AvailabilityZoneExistsValidator(Validator):
    """Every configured AZ must exist in the region; the instance catalog lists the region's AZs.
    (A queue's `availability_zone` is checked where queues are placed: `queue-placement`.)"""

    name = "availability-zone-exists"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        region_azs = catalog.availability_zones(config.region)
        if region_azs is None:
            return  # a region the snapshot does not cover: the placement rules report it
        for index, az in enumerate(config.network.availability_zones):
            # An AZ of another region is subnet-layout's finding.
            if az.startswith(config.region) and az not in region_azs:
                yield Finding(
                    ("network", "availability_zones", index),
                    unknown_az_problem(az, config.region, region_azs),
                )


class SshIngressValidator(Validator):
    name = "ssh-ingress"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        for index, cidr in enumerate(config.network.ssh_ingress_cidrs):
            if ipaddress.IPv4Network(cidr).prefixlen == 0:
                yield Finding(
                    ("network", "ssh_ingress_cidrs", index),
                    f"{cidr} opens SSH to the whole internet; list your organisation's CIDR blocks, "
                    "or leave the list empty and use SSM Session Manager",
                )


class ComputeSubnetCapacityValidator(Validator):
    """Each node takes one address per EFA interface; a subnet too small fails at scale-up."""

    name = "compute-subnet-capacity"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        network = config.network
        placements = queue_placements(config, catalog)
        needed: Counter[str] = Counter()
        for queue in config.cluster.queues:
            azs = placements[queue.name].azs
            if not azs:
                continue
            for resource in queue.compute_resources:
                spec = catalog.get(resource.instance_type)
                if spec is None:
                    continue
                # A multi-AZ queue may land every node in one AZ: count the worst case.
                for az in azs:
                    needed[az] += resource.max_count * spec.addresses_per_node()
        for index, az in enumerate(network.availability_zones):
            if index >= len(network.subnets.compute) or not needed[az]:
                continue
            cidr = ipaddress.IPv4Network(network.subnets.compute[index])
            usable = cidr.num_addresses - SUBNET_RESERVED_ADDRESSES
            if needed[az] > usable:
                yield Finding(
                    ("network", "subnets", "compute", index),
                    f"{cidr} has {usable} usable addresses but the queues placed in {az} can need "
                    f"{needed[az]} (max nodes × network interfaces); use a larger block",
                )


class NetworkAclQuotaValidator(Validator):
    """Each tier's network ACL (one rule per SSH CIDR and direction, and per merged subnet block)
    fits AWS's default rule quota, or creating it fails halfway through a deploy."""

    name = "network-acl-quota"

    def validate(self, config: StackConfig, catalog: InstanceCatalog) -> Iterator[Finding]:
        network = config.network
        rules = network_acl_rules(
            {tier: network.subnets.tier(tier) for tier in SUBNET_TIERS},
            internet=network.nat_gateways != "none",
            ssh_ingress_cidrs=network.ssh_ingress_cidrs,
        )
        loc = ("network", "ssh_ingress_cidrs") if network.ssh_ingress_cidrs else ("network", "subnets")
        for problem in network_acl_problems(rules):
            yield Finding(loc, problem)


VALIDATORS: tuple[Validator, ...] = (
    SubnetLayoutValidator(),
    AvailabilityZoneExistsValidator(),
    SshIngressValidator(),
    ComputeSubnetCapacityValidator(),
    NetworkAclQuotaValidator(),
)
