"""Every config rule: the committed stacks are valid, and each rule's violating case fails with
its message at the exact key path. One table per domain, as ParallelCluster's validator tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config import ConfigError
from hpc_platform.domain.config.loader import model_input, parse_config
from hpc_platform.domain.config.validators import VALIDATORS

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """`_set("hpc:cluster.queues.0.name", "x")`: set a value by dotted path (ints index lists)."""

    def mutate(config: dict[str, Any]) -> None:
        key, *rest = path.split(".")
        target: Any = config
        parts: list[Any] = [key, *[int(p) if p.isdigit() else p for p in rest]]
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value

    return mutate


def _drop_research_group(group: str) -> Mutation:
    """Take `group` off every queue that names it: its budget then owns nothing."""

    def mutate(config: dict[str, Any]) -> None:
        for queue in config["hpc:cluster"]["queues"]:
            if queue.get("research_group") == group:
                del queue["research_group"]

    return mutate


def _problems(config: dict[str, Any], source: str = "Pulumi.prod.yaml") -> list[str]:
    try:
        loaded = parse_config(model_input(config), source)
    except ConfigError as exc:
        return exc.lines
    return loaded.warning_lines()


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_are_valid_without_findings(
    stack: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    assert _problems(stack_config(stack), f"Pulumi.{stack}.yaml") == []


# (stack, mutation, expected line (exact), or substring when it ends with "…")
CASES: list[tuple[str, Mutation, str]] = [
    # network
    (
        "prod",
        _set("hpc:network.subnets.compute.1", "10.31.0.0/19"),
        "Pulumi.prod.yaml: hpc:network.subnets.compute[1]: 10.31.0.0/19 is not inside the VPC CIDR 10.30.0.0/16",
    ),
    (
        "prod",
        _set("hpc:network.subnets.storage.0", "10.30.64.0/24"),
        "Pulumi.prod.yaml: hpc:network.subnets.storage[0]: 10.30.64.0/24 overlaps 10.30.64.0/19 (hpc:network.subnets.compute[0])",
    ),
    (
        "prod",
        _set("hpc:network.subnets.public", ["10.30.0.0/24"]),
        "Pulumi.prod.yaml: hpc:network.subnets.public: has 1 CIDR blocks for 3 availability zones; give one block per AZ, in hpc:network.availability_zones order",
    ),
    (
        "prod",
        _set("hpc:network.availability_zones.2", "us-west-2c"),
        "Pulumi.prod.yaml: hpc:network.availability_zones[2]: us-west-2c is not in the stack's region us-east-2",
    ),
    (
        "dev",
        _set("hpc:network.availability_zones", ["us-east-2b", "us-east-2z"]),
        "Pulumi.prod.yaml: hpc:network.availability_zones[1]: us-east-2z is not an availability zone of us-east-2 (the instance catalog lists us-east-2a, us-east-2b, us-east-2c); use one of those",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.6.availability_zone", "us-east-2d"),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].availability_zone: us-east-2d is not an availability zone of us-east-2 (the instance catalog lists us-east-2a, us-east-2b, us-east-2c); use one of those",
    ),
    (
        "prod",
        _set("hpc:network.subnets.compute.0", "10.30.64.0/24"),
        "Pulumi.prod.yaml: hpc:network.subnets.compute[0]: 10.30.64.0/24 has 251 usable addresses but the queues placed in us-east-2b can need…",
    ),
    (
        "prod",
        _set("hpc:network.vpc_cidr", "10.30.0.1/16"),
        "Pulumi.prod.yaml: hpc:network.vpc_cidr: '10.30.0.1/16' is not an IPv4 CIDR block (10.30.0.1/16 has host bits set)",
    ),
    (
        "prod",
        _set("hpc:network.vpc_cidr", "10.0.0.0/8"),
        "Pulumi.prod.yaml: hpc:network.vpc_cidr: '10.0.0.0/8': a VPC CIDR block must be between /16 and /28, not /8",
    ),
    (
        "prod",
        _set("hpc:network.flow_logs.retention_days", 100),
        "Pulumi.prod.yaml: hpc:network.flow_logs.retention_days: 100 is not a CloudWatch Logs retention period…",
    ),
    (
        "prod",
        _set("hpc:network.ssh_ingress_cidrs", ["192.0.2.0/24", "0.0.0.0/0"]),
        "Pulumi.prod.yaml: hpc:network.ssh_ingress_cidrs[1]: 0.0.0.0/0 opens SSH to the whole internet…",
    ),
    # storage
    (
        "prod",
        _set("hpc:storage.scratch.capacity_gib", 1000),
        "Pulumi.prod.yaml: hpc:storage.scratch.capacity_gib: 1000 is not a valid SCRATCH_2 size; use 1200, 2400 or a multiple of 2400",
    ),
    (
        "prod",
        _set("hpc:storage.persistent.capacity_gib", 3600),
        "Pulumi.prod.yaml: hpc:storage.persistent.capacity_gib: 3600 is not a valid PERSISTENT_2 size; use 1200, 2400 or a multiple of 2400",
    ),
    (
        "prod",
        _set("hpc:storage.persistent.throughput_mbps_per_tib", 200),
        "Pulumi.prod.yaml: hpc:storage.persistent.throughput_mbps_per_tib: 200 MB/s/TiB is not offered for PERSISTENT_2; use 125, 250, 500 or 1000",
    ),
    (
        "prod",
        _set("hpc:storage.scratch.enable_customer_kms_key", True),
        "Pulumi.prod.yaml: hpc:storage.scratch.enable_customer_kms_key: SCRATCH_2 file systems are always encrypted with an AWS-owned key…",
    ),
    (
        "prod",
        _set("hpc:storage.persistent.enable_customer_kms_key", False),
        "Pulumi.prod.yaml: hpc:storage.persistent.enable_customer_kms_key: warning: persistent Lustre without a customer KMS key fails the encryption policy…",
    ),
    (
        "dev",
        _set("hpc:storage.scratch.import_path", None),
        "Pulumi.prod.yaml: hpc:storage.scratch.export_path: an export path needs an import_path on the same bucket; set import_path too",
    ),
    (
        "prod",
        _set("hpc:storage.persistent.data_repository_associations.1.file_system_path", "/projects/ref"),
        "Pulumi.prod.yaml: hpc:storage.persistent.data_repository_associations[1].file_system_path: /projects/ref overlaps data_repository_associations[0] (/projects)…",
    ),
    (
        "prod",
        _set("hpc:storage.data_bucket", {"lifecycle": {"cold_after_days": 60}}),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.cold_after_days: 60 days is outside what S3 Intelligent-Tiering accepts for this tier (90-730)",
    ),
    (
        "prod",
        _set(
            "hpc:storage.data_bucket",
            {
                "lifecycle": {
                    "enable_intelligent_tiering": False,
                    "warm_after_days": 120,
                    "cold_after_days": 90,
                }
            },
        ),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.cold_after_days: 90 days must come after warm_after_days (120 days)…",
    ),
    (
        "prod",
        _set(
            "hpc:storage.data_bucket",
            {"lifecycle": {"enable_intelligent_tiering": False, "warm_after_days": 10}},
        ),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.warm_after_days: 10: Input should be greater than or equal to 30",
    ),
    (
        "prod",
        _set("hpc:storage.persistent.data_repository_associations.0.bucket_prefix", "archive/projects/"),
        "Pulumi.prod.yaml: hpc:storage.persistent.data_repository_associations[0].bucket_prefix: 'archive/projects/' is under the archive prefix 'archive/'…",
    ),
    (
        "dev",
        _set("hpc:storage.data_bucket", {"lifecycle": {"archive_prefix": ""}}),
        "Pulumi.prod.yaml: hpc:storage.scratch.import_path: 'scratch-staging/' is in a bucket archived as a whole…",
    ),
    (
        "prod",
        _set("hpc:storage.target_aggregate_throughput_gbps", 200),
        "Pulumi.prod.yaml: hpc:storage.target_aggregate_throughput_gbps: warning: the Lustre sizes give 137.1 GB/s baseline, below the 200 GB/s target…",
    ),
    (
        "prod",
        _set("hpc:compliance.extra_tags", {"Project": "a", "Grant": "b", "Lab": "c"}),
        "Pulumi.prod.yaml: hpc:compliance.extra_tags: resources would carry 11 tags but S3 objects (the bootstrap scripts) accept at most 10; drop 1 extra tag(s)",
    ),
    # cluster
    (
        "prod",
        _set("hpc:cluster.name", "a-very-long-cluster-name-that-exceeds-forty-chars"),
        "Pulumi.prod.yaml: hpc:cluster.name: 'a-very-long-cluster-name-that-exceeds-forty-chars' has 49 characters; with Slurm accounting ParallelCluster allows at most 40",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.1.name", "Compute"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'Compute' is not a valid ParallelCluster queue/compute-resource name…",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.1.name", "default"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'default' is reserved by ParallelCluster; choose another name",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.1.name", "mpi-hpc6a"),
        "Pulumi.prod.yaml: hpc:cluster.queues[1].name: 'mpi-hpc6a' is already the name of queues[0]; queue names must be unique",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.6.compute_resources.0.min_count", 50),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].min_count: 50 is greater than max_count (40)",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.1.compute_resources.0.max_count", 600),
        "Pulumi.prod.yaml: hpc:cluster.queues: the queues can scale to 1040 nodes, more than max_total_nodes (1000); lower some max_count or raise max_total_nodes",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.3.compute_resources.0.instance_type", "x2iezn.32xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[3].compute_resources[0].instance_type: x2iezn.32xlarge is not an EC2 instance type; did you mean x2iezn.12xlarge or x2iedn.32xlarge?",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.0.capacity_type", "SPOT"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: hpc6a.48xlarge is not sold as Spot (On-Demand only); put it in an ONDEMAND queue or choose a Spot-capable type",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.6.enable_efa", True),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].instance_type: c6i.2xlarge does not support EFA…",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.0.availability_zone", "us-east-2a"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: hpc6a.48xlarge is not offered in the queue's availability zone us-east-2a; it is offered in us-east-2b; pin the queue to one of those AZs or choose another instance type",
    ),
    (
        "prod",
        _set("hpc:network.availability_zones", ["us-east-2a", "us-east-2c"]),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].compute_resources[0].instance_type: hpc6a.48xlarge is not offered in any of the VPC's availability zones (us-east-2a or us-east-2c); it is offered in us-east-2b…",
    ),
    (
        "dev",
        _set("hpc:cluster.queues.0.availability_zone", "us-east-2c"),
        "Pulumi.prod.yaml: hpc:cluster.queues[0].availability_zone: us-east-2c is not one of the VPC's availability zones…",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.6.compute_resources.0.instance_type", "c7g.2xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[6].compute_resources[0].instance_type: c7g.2xlarge is arm64 but the head node (c6i.8xlarge) is x86_64; a cluster runs one architecture",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.5.compute_resources.0.instance_type", "c5n.18xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.queues[5].compute_resources[0].instance_type: c5n.18xlarge has no GPU but the queue's purpose is gpu",
    ),
    (
        "prod",
        _set("hpc:cluster.slurm.accounting", {"enabled": False}),
        "Pulumi.prod.yaml: hpc:cluster.slurm.fair_share.enabled: fair-share needs Slurm accounting…",
    ),
    (
        "prod",
        _set("hpc:cluster.api", {"mode": "existing"}),
        "Pulumi.prod.yaml: hpc:cluster.api.endpoint: is required when mode is 'existing'",
    ),
    (
        "prod",
        _set("hpc:cluster.api", {"role_arn": "arn:aws:iam::123456789012:role/PCAPIUserRole-x"}),
        "Pulumi.prod.yaml: hpc:cluster.api.role_arn: is only for mode 'existing'; in mode 'deploy' the provider assumes the deployed API stack's own ParallelClusterApiUserRole; remove role_arn or set mode 'existing'",
    ),
    (
        "prod",
        _set("hpc:cluster.api", {"mode": "existing", "endpoint": "https://a.example", "role_arn": "PCAPIUserRole-x"}),
        "Pulumi.prod.yaml: hpc:cluster.api.role_arn: 'PCAPIUserRole-x' is not an IAM role ARN; use the API stack's ParallelClusterApiUserRole output (arn:aws:iam::<account>:role/PCAPIUserRole-…)",
    ),
    (
        "prod",
        _set("hpc:cluster.queues.1.capacity_type", "ONDEMAND"),
        "Pulumi.prod.yaml: hpc:cluster.spot.min_share: warning: the queues put 7% of Spot-eligible max vCPUs on Spot, below the target 70%; move capacity to SPOT queues",
    ),
    (
        "prod",
        _set("hpc:observability.budget.alert_thresholds_percent", [50, 2000]),
        "Pulumi.prod.yaml: hpc:observability.budget.alert_thresholds_percent[1]: 2000.0 is not a budget threshold; use a percentage between 0 and 1000",
    ),
    (
        "prod",
        _set("hpc:observability.budget.alert_thresholds_percent", [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
        "Pulumi.prod.yaml: hpc:observability.budget.alert_thresholds_percent: 10 thresholds; AWS Budgets allows 10 notifications per budget and one is the forecast alert, so list at most 9",
    ),
    (
        "prod",
        _set("hpc:observability.notification_emails", []),
        "Pulumi.prod.yaml: hpc:observability.notification_emails: warning: prod has nobody to notify; alarms will only show in the console",
    ),
    (
        "prod",
        _drop_research_group("genomics"),
        "Pulumi.prod.yaml: hpc:observability.budget.per_research_group.genomics: no queue belongs to research group 'genomics'; set research_group: genomics on the queues it pays for, or remove the budget",
    ),
    (
        "staging",
        _set("hpc:observability.budget.per_research_group", {"platform-engineering": 5000, "chemistry": 900}),
        "Pulumi.prod.yaml: hpc:observability.budget.per_research_group.chemistry: no queue belongs to research group 'chemistry'; set research_group: chemistry on the queues it pays for, or remove the budget",
    ),
    (
        "staging",
        _set("hpc:storage.scratch.data_repository_associations", [{"file_system_path": "/in"}]),
        "Pulumi.prod.yaml: hpc:storage.scratch.data_repository_associations: cannot be combined with import_path/export_path (FSx refuses the legacy paths on a file system with associations); link the bucket one way: remove the paths or the associations",
    ),
    # schema
    (
        "prod",
        _set("hpc:environment", "qa"),
        "Pulumi.prod.yaml: hpc:environment: 'qa': Input should be 'dev', 'staging' or 'prod'",
    ),
    (
        "prod",
        _set("hpc:network.vpc_cdir", "10.0.0.0/16"),
        "Pulumi.prod.yaml: hpc:network.vpc_cdir: unknown key; did you mean 'vpc_cidr'?",
    ),
    (
        "prod",
        _set("hpc:compliance.data_classification", "secret"),
        "Pulumi.prod.yaml: hpc:compliance.data_classification: 'secret': Input should be 'public', 'internal', 'confidential', 'cui' or 'restricted'",
    ),
    (
        "prod",
        _set("aws:region", "Ohio"),
        "Pulumi.prod.yaml: aws:region: 'Ohio': String should match pattern…",
    ),
]


@pytest.mark.parametrize(
    ("stack", "mutate", "expected"),
    CASES,
    ids=[c[2].split(": ")[1] + ":" + str(i) for i, c in enumerate(CASES)],
)
def test_fails_rule(
    stack: str, mutate: Mutation, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config(stack)
    mutate(config)
    problems = _problems(config)
    if expected.endswith("…"):
        assert any(p.startswith(expected[:-1]) for p in problems), problems
    else:
        assert expected in problems, problems


def test_missing_required_section_names_the_key(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    del config["hpc:compliance"]
    assert _problems(config) == ["Pulumi.prod.yaml: hpc:compliance: is required"]


def test_every_validator_is_exercised_by_a_failing_case(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    """A validator no case makes fail is untested: run each validator alone on every case."""
    from hpc_platform.domain.catalog import default_catalog
    from hpc_platform.domain.config.models import StackConfig

    exercised: set[str] = set()
    for stack, mutate, expected in CASES:
        config = stack_config(stack)
        mutate(config)
        try:
            parsed = StackConfig.model_validate(model_input(config))
        except Exception:
            continue  # a schema-level case: no validator involved
        for validator in VALIDATORS:
            lines = [f.render("Pulumi.prod.yaml") for f in validator.validate(parsed, default_catalog())]
            prefix = expected[:-1] if expected.endswith("…") else expected
            if any(line.startswith(prefix) for line in lines):
                exercised.add(validator.name)
    assert exercised == {v.name for v in VALIDATORS}


def test_odd_keys_stay_on_one_line(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    config["hpc:network"]["bad\nkey"] = 1
    assert _problems(config) == [
        'Pulumi.prod.yaml: hpc:network["bad\\nkey"]: unknown key; known keys: '
        "availability_zones, enable_s3_gateway_endpoint, flow_logs, interface_endpoints, "
        "nat_gateways, ssh_ingress_cidrs, subnets, vpc_cidr"
    ]
