"""The config rules as a whole: the committed stacks are valid, schema-level problems name their
key, and every registered validator belongs to a domain whose table makes it fail.

The rules of each domain have their own table, as ParallelCluster's validator tests do:
tests/test_validators_{network,storage,cluster,capacity,observability,compliance,performance}.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config.validators import (
    VALIDATORS,
    capacity,
    cluster,
    compliance,
    network,
    observability,
    performance,
    storage,
)
from tests.support.validator_cases import Case, case_ids, check_case, problems, set_value

DOMAINS = (network, storage, cluster, capacity, observability, compliance, performance)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_are_valid_without_findings(
    stack: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    assert problems(stack_config(stack), f"Pulumi.{stack}.yaml") == []


# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value("hpc:environment", "qa"),
        "Pulumi.prod.yaml: hpc:environment: 'qa': Input should be 'dev', 'staging' or 'prod'",
    ),
    (
        "prod",
        set_value("hpc:network.vpc_cdir", "10.0.0.0/16"),
        "Pulumi.prod.yaml: hpc:network.vpc_cdir: unknown key; did you mean 'vpc_cidr'?",
    ),
    (
        "prod",
        set_value("hpc:compliance.data_classification", "secret"),
        "Pulumi.prod.yaml: hpc:compliance.data_classification: 'secret': Input "
        "should be 'public', 'internal', 'confidential', 'cui' or 'restricted'",
    ),
    (
        "prod",
        set_value("aws:region", "Ohio"),
        "Pulumi.prod.yaml: aws:region: 'Ohio': String should match pattern…",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_schema_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_missing_required_section_names_the_key(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    del config["hpc:compliance"]
    assert problems(config) == ["Pulumi.prod.yaml: hpc:compliance: is required"]


def test_every_validator_belongs_to_a_domain_table() -> None:
    """Each domain's test module proves each of its validators fails on some case
    (`test_every_<domain>_validator_fails_on_some_case`); the registry holds those and no others."""
    by_domain = [v for domain in DOMAINS for v in domain.VALIDATORS]
    assert sorted(v.name for v in by_domain) == sorted(v.name for v in VALIDATORS)
    assert len({v.name for v in VALIDATORS}) == len(VALIDATORS), "validator names must be unique"


def test_odd_keys_stay_on_one_line(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    config["hpc:network"]["bad\nkey"] = 1
    assert problems(config) == [
        'Pulumi.prod.yaml: hpc:network["bad\\nkey"]: unknown key; known keys: '
        "availability_zones, enable_s3_gateway_endpoint, flow_logs, interface_endpoints, "
        "nat_gateways, ssh_ingress_cidrs, subnets, vpc_cidr"
    ]
