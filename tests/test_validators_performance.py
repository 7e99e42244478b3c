"""Performance targets (`hpc:performance`, `hpc_platform.domain.config.validators.performance`):
each violating case fails with its message at the exact key path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config.validators import performance
from hpc_platform.domain.config.validators.performance import network_gbps
from tests.support.validator_cases import Case, case_ids, check_case, exercised, problems, set_value

# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value("hpc:performance", {"max_mpi_latency_us": 0}),
        "Pulumi.prod.yaml: hpc:performance.max_mpi_latency_us: 0: Input should be greater than 0",
    ),
    (
        "prod",
        set_value("hpc:performance", {"min_node_bandwidth_gbps": -100}),
        "Pulumi.prod.yaml: hpc:performance.min_node_bandwidth_gbps: -100: Input should be greater than 0",
    ),
    (
        "prod",
        set_value("hpc:performance", {"max_scale_up_seconds": "5 min"}),
        "Pulumi.prod.yaml: hpc:performance.max_scale_up_seconds: '5 min': Input should be a valid number…",
    ),
    (
        "prod",
        set_value("hpc:performance", {"storage_test_nodes": 0}),
        "Pulumi.prod.yaml: hpc:performance.storage_test_nodes: 0: Input should be greater than or equal to 1",
    ),
    (
        "prod",
        set_value("hpc:performance", {"max_job_start_secs": 30}),
        "Pulumi.prod.yaml: hpc:performance.max_job_start_secs: unknown key; did you mean "
        "'max_job_start_seconds'?",
    ),
    (
        "prod",
        set_value("hpc:performance", {"max_job_start_seconds": 600}),
        "Pulumi.prod.yaml: hpc:performance.max_job_start_seconds: 600 s is more than max_scale_up_seconds "
        "(300 s), but a job on a node that is up starts before one that waits for a node to boot; lower "
        "it or raise max_scale_up_seconds",
    ),
    (
        "prod",
        set_value("hpc:performance", {"min_node_bandwidth_gbps": 200}),
        "Pulumi.prod.yaml: hpc:performance.min_node_bandwidth_gbps: warning: queue mpi-hpc6a runs "
        "hpc6a.48xlarge, which has 100 Gbps of network bandwidth, below the 200 Gbps target, so "
        "`hpcctl verify` will report it missed; lower the target or use an instance type with more "
        "bandwidth",
    ),
    (
        "dev",
        set_value("hpc:performance", {"storage_test_nodes": 8}),
        "Pulumi.prod.yaml: hpc:performance.storage_test_nodes: 8 nodes, but IOR runs on queue "
        "compute-spot, which has at most 4; lower it to 4 or raise that queue's max_count",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_the_default_storage_test_node_count_fits_a_small_queue(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    """Dev's queue for IOR is cut to one node: the default (2) yields to it; written down, it fails."""
    config = stack_config("dev")
    for queue in config["hpc:cluster"]["queues"]:
        for resource in queue["compute_resources"]:
            resource["max_count"] = 1
    assert not [line for line in problems(config) if "storage_test_nodes" in line]
    config["hpc:performance"] = {"storage_test_nodes": 2}
    assert [line for line in problems(config) if "storage_test_nodes" in line] == [
        "Pulumi.prod.yaml: hpc:performance.storage_test_nodes: 2 nodes, but IOR runs on queue compute-spot, "
        "which has at most 1; lower it to 1 or raise that queue's max_count"
    ]


def test_every_performance_validator_fails_on_some_case(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    assert exercised(CASES, performance.VALIDATORS, stack_config) == {v.name for v in performance.VALIDATORS}


def test_the_design_targets_hold_on_the_committed_stacks(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    """Every EFA type of prod offers the design's 100 Gbps and IOR's default node count fits."""
    config = stack_config("prod")
    config.pop("hpc:performance", None)
    assert problems(config) == []


@pytest.mark.parametrize(
    ("text", "gbps"),
    [
        ("100 Gigabit", 100.0),
        ("4x 100 Gigabit", 400.0),
        ("Up to 25 Gigabit", 25.0),
        ("12.5 Gigabit", 12.5),
        ("High", None),
    ],
)
def test_network_performance_reads_ec2s_wording(text: str, gbps: float | None) -> None:
    assert network_gbps(text) == gbps
