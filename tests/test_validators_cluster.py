"""Cluster rules (`hpc_platform.domain.config.validators.cluster` and the cluster models): each
violating case fails with its message at the exact key path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config.validators import cluster
from hpc_platform.domain.limits import cluster_name_problem
from hpc_platform.pcluster.provider import validate_inputs
from tests.support.pcluster_venv import run_pcluster_python
from tests.support.validator_cases import Case, case_ids, check_case, exercised, problems, set_value

# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value("hpc:cluster.queues.6.availability_zone", "us-east-2d"),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].availability_zone: us-east-2d is not an availability zone "
        "of us-east-2 (the instance catalog lists us-east-2a, us-east-2b, us-east-2c); use one of those",
    ),
    (
        "prod",
        set_value("hpc:cluster.name", "a-very-long-cluster-name-that-exceeds-forty-chars"),
        "Pulumi.prod.yaml: hpc:cluster.name: 'a-very-long-cluster-name-that-exceeds-forty-chars' has "
        "49 characters; ParallelCluster allows at most 40 with Slurm accounting; choose a shorter name",
    ),
    (
        "prod",
        set_value("hpc:cluster.name", "1st-cluster"),
        "Pulumi.prod.yaml: hpc:cluster.name: '1st-cluster' is not a valid cluster "
        "name; start with a letter and use only letters, digits and hyphens",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.name", "Compute"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'Compute' is "
        "not a valid ParallelCluster queue/compute-resource name…",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.name", "default"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'default' "
        "is reserved by ParallelCluster; choose another name",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.name", "mpi-hpc6a"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'mpi-hpc6a' "
        "is already the name of queues[0]; queue names must be unique",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.6.compute_resources.0.min_count", 50),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].min_count: "
        "50 is greater than max_count (40)",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.compute_resources.0.max_count", 600),
        "Pulumi.prod.yaml: hpc:cluster.queues: the queues can scale to 1040 nodes, more "
        "than max_total_nodes (1000); lower some max_count or raise max_total_nodes",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.3.compute_resources.0.instance_type", "x2iezn.32xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[3].compute_resources[0].instance_type: x2iezn.32xlarge "
        "is not an EC2 instance type; did you mean x2iezn.12xlarge or x2iedn.32xlarge?",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.0.capacity_type", "SPOT"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: hpc6a.48xlarge is "
        "not sold as Spot (On-Demand only); put it in an ONDEMAND queue or choose a Spot-capable type",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.6.enable_efa", True),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].instance_type: "
        "c6i.2xlarge does not support EFA…",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.0.availability_zone", "us-east-2a"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: "
        "hpc6a.48xlarge is not offered in the queue's availability zone us-east-2a; it is "
        "offered in us-east-2b; pin the queue to one of those AZs or choose another instance type",
    ),
    (
        "prod",
        set_value("hpc:network.availability_zones", ["us-east-2a", "us-east-2c"]),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: "
        "hpc6a.48xlarge is not offered in any of the VPC's availability zones "
        "(us-east-2a or us-east-2c); it is offered in us-east-2b…",
    ),
    (
        "dev",
        set_value("hpc:cluster.queues.0.availability_zone", "us-east-2c"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].availability_zone: "
        "us-east-2c is not one of the VPC's availability zones…",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.6.compute_resources.0.instance_type", "c7g.2xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].instance_type: c7g.2xlarge "
        "is arm64 but the head node (c6i.8xlarge) is x86_64; a cluster runs one architecture",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.5.compute_resources.0.instance_type", "c5n.18xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].instance_type: "
        "c5n.18xlarge has no GPU but the queue's purpose is gpu",
    ),
    (
        "prod",
        set_value("hpc:cluster.slurm.accounting", {"enabled": False}),
        "Pulumi.prod.yaml: hpc:cluster.slurm.fair_share.enabled: fair-share needs Slurm accounting…",
    ),
    (
        "prod",
        set_value("hpc:cluster.api", {"mode": "existing"}),
        "Pulumi.prod.yaml: hpc:cluster.api.endpoint: is required when mode is 'existing'",
    ),
    (
        "prod",
        set_value("hpc:cluster.api", {"role_arn": "arn:aws:iam::123456789012:role/PCAPIUserRole-x"}),
        "Pulumi.prod.yaml: hpc:cluster.api.role_arn: is only for mode 'existing'; "
        "in mode 'deploy' the provider assumes the deployed API stack's own "
        "ParallelClusterApiUserRole; remove role_arn or set mode 'existing'",
    ),
    (
        "prod",
        set_value(
            "hpc:cluster.api",
            {"mode": "existing", "endpoint": "https://a.example", "role_arn": "PCAPIUserRole-x"},
        ),
        "Pulumi.prod.yaml: hpc:cluster.api.role_arn: 'PCAPIUserRole-x' is not an IAM role ARN; use the "
        "API stack's ParallelClusterApiUserRole output (arn:aws:iam::<account>:role/PCAPIUserRole-…)",
    ),
    (
        "prod",
        set_value("hpc:cluster.queues.1.capacity_type", "ONDEMAND"),
        "Pulumi.prod.yaml: hpc:cluster.spot.min_share: warning: the queues put 7% of "
        "Spot-eligible max vCPUs on Spot, below the target 70%; move capacity to SPOT queues",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_cluster_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, cluster.VALIDATORS, stack_config) == {v.name for v in cluster.VALIDATORS}


# Names on both sides of every edge of ParallelCluster's rule.
CLUSTER_NAMES = ["a", "ab", "A9-z", "a" * 40, "a" * 41, "a" * 60, "a" * 61, "1a", "-a", "a_b", "a.b", ""]

PCLUSTER_CLUSTER_NAME_CHECK = r"""
import json, sys
from types import SimpleNamespace
from pcluster.validators.cluster_validators import ClusterNameValidator

results = {}
for name in json.loads(sys.argv[1]):
    for accounting in (False, True):
        settings = SimpleNamespace(database=object() if accounting else None, external_slurmdbd=None)
        failures = ClusterNameValidator().execute(name=name, scheduling=SimpleNamespace(settings=settings))
        results[f"{name}|{accounting}"] = not failures
print(json.dumps(results))
"""


def test_cluster_name_rule_is_parallelclusters() -> None:
    """The one rule (`limits.cluster_name_problem`: the schema, the validator and the provider use
    it) accepts exactly the names ParallelCluster's own ClusterNameValidator accepts, one
    character included."""
    result = run_pcluster_python(PCLUSTER_CLUSTER_NAME_CHECK, json.dumps(CLUSTER_NAMES))
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout)
    ours = {
        f"{name}|{accounting}": cluster_name_problem(name, accounting=accounting) is None
        for name in CLUSTER_NAMES
        for accounting in (False, True)
    }
    assert ours == theirs


def test_one_character_cluster_name_is_valid(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("prod")
    config["hpc:cluster"]["name"] = "h"
    assert problems(config) == []


def test_provider_words_the_cluster_name_rule_as_the_config_does() -> None:
    """One message: the provider's input check says what the stack's validator says."""
    for name, accounting in (("bad_name", False), ("a" * 41, True)):
        config = {"Scheduling": {"SlurmSettings": {"Database": {"Uri": "db:3306"}}}} if accounting else {}
        found = validate_inputs({"cluster_name": name, "cluster_config": config, "region": "us-east-2"})
        assert ("cluster_name", cluster_name_problem(name, accounting=accounting)) in found
