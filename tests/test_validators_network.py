"""Network rules (`hpc_platform.domain.config.validators.network` and the network models): each
violating case fails with its message at the exact key path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config.validators import network
from tests.support.validator_cases import Case, case_ids, check_case, exercised, set_value

# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value("hpc:network.ssh_ingress_cidrs", [f"192.168.{i}.0/24" for i in range(0, 18, 2)]),
        "Pulumi.prod.yaml: hpc:network.ssh_ingress_cidrs: the private tier's network ACL needs 21 outbound "
        "rules, above the default quota of 20; use fewer ssh_ingress_cidrs or adjacent subnet blocks "
        "that merge",
    ),
    (
        "prod",
        set_value("hpc:network.subnets.compute.1", "10.31.0.0/19"),
        "Pulumi.prod.yaml: hpc:network.subnets.compute[1]: "
        "10.31.0.0/19 is not inside the VPC CIDR 10.30.0.0/16",
    ),
    (
        "prod",
        set_value("hpc:network.subnets.storage.0", "10.30.64.0/24"),
        "Pulumi.prod.yaml: hpc:network.subnets.storage[0]: 10.30.64.0/24 "
        "overlaps 10.30.64.0/19 (hpc:network.subnets.compute[0])",
    ),
    (
        "prod",
        set_value("hpc:network.subnets.public", ["10.30.0.0/24"]),
        "Pulumi.prod.yaml: hpc:network.subnets.public: has 1 CIDR blocks for 3 "
        "availability zones; give one block per AZ, in hpc:network.availability_zones order",
    ),
    (
        "prod",
        set_value("hpc:network.availability_zones.2", "us-west-2c"),
        "Pulumi.prod.yaml: hpc:network.availability_zones[2]: "
        "us-west-2c is not in the stack's region us-east-2",
    ),
    (
        "dev",
        set_value("hpc:network.availability_zones", ["us-east-2b", "us-east-2z"]),
        "Pulumi.prod.yaml: hpc:network.availability_zones[1]: us-east-2z is not an availability zone "
        "of us-east-2 (the instance catalog lists us-east-2a, us-east-2b, us-east-2c); use one of those",
    ),
    (
        "prod",
        set_value("hpc:network.subnets.compute.0", "10.30.64.0/24"),
        "Pulumi.prod.yaml: hpc:network.subnets.compute[0]: 10.30.64.0/24 has "
        "251 usable addresses but the queues placed in us-east-2b can need…",
    ),
    (
        "prod",
        set_value("hpc:network.vpc_cidr", "10.30.0.1/16"),
        "Pulumi.prod.yaml: hpc:network.vpc_cidr: '10.30.0.1/16' is "
        "not an IPv4 CIDR block (10.30.0.1/16 has host bits set)",
    ),
    (
        "prod",
        set_value("hpc:network.vpc_cidr", "10.0.0.0/8"),
        "Pulumi.prod.yaml: hpc:network.vpc_cidr: '10.0.0.0/8': "
        "a VPC CIDR block must be between /16 and /28, not /8",
    ),
    (
        "prod",
        set_value("hpc:network.flow_logs.retention_days", 100),
        "Pulumi.prod.yaml: hpc:network.flow_logs.retention_days: "
        "100 is not a CloudWatch Logs retention period…",
    ),
    (
        "prod",
        set_value("hpc:network.ssh_ingress_cidrs", ["192.0.2.0/24", "0.0.0.0/0"]),
        "Pulumi.prod.yaml: hpc:network.ssh_ingress_cidrs[1]: 0.0.0.0/0 opens SSH to the whole internet…",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_network_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, network.VALIDATORS, stack_config) == {v.name for v in network.VALIDATORS}
