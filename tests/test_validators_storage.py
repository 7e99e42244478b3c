"""Storage rules (`hpc_platform.domain.config.validators.storage` and the storage models): each
violating case fails with its message at the exact key path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from hpc_platform.domain.config.validators import storage
from hpc_platform.domain.environments import PROFILES
from tests.support.validator_cases import Case, case_ids, check_case, exercised, problems, set_value

# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "staging",
        set_value("hpc:storage.persistent.enable_customer_kms_key", False),
        "Pulumi.prod.yaml: hpc:storage.persistent.enable_customer_kms_key: warning: "
        "persistent Lustre without a customer KMS key fails the encryption policy "
        "(fsx-lustre-customer-kms-key, mandatory in staging); turn it back on",
    ),
    (
        "prod",
        set_value("hpc:storage.scratch.capacity_gib", 1000),
        "Pulumi.prod.yaml: hpc:storage.scratch.capacity_gib: 1000 is not "
        "a valid SCRATCH_2 size; use 1200, 2400 or a multiple of 2400",
    ),
    (
        "prod",
        set_value("hpc:storage.persistent.capacity_gib", 3600),
        "Pulumi.prod.yaml: hpc:storage.persistent.capacity_gib: 3600 is not "
        "a valid PERSISTENT_2 size; use 1200, 2400 or a multiple of 2400",
    ),
    (
        "prod",
        set_value("hpc:storage.persistent.throughput_mbps_per_tib", 200),
        "Pulumi.prod.yaml: hpc:storage.persistent.throughput_mbps_per_tib: 200 "
        "MB/s/TiB is not offered for PERSISTENT_2; use 125, 250, 500 or 1000",
    ),
    (
        "prod",
        set_value("hpc:storage.scratch.enable_customer_kms_key", True),
        "Pulumi.prod.yaml: hpc:storage.scratch.enable_customer_kms_key: "
        "SCRATCH_2 file systems are always encrypted with an AWS-owned key…",
    ),
    (
        "prod",
        set_value("hpc:storage.persistent.enable_customer_kms_key", False),
        "Pulumi.prod.yaml: hpc:storage.persistent.enable_customer_kms_key: warning: "
        "persistent Lustre without a customer KMS key fails the encryption policy…",
    ),
    (
        "dev",
        set_value("hpc:storage.scratch.import_path", None),
        "Pulumi.prod.yaml: hpc:storage.scratch.export_path: an export "
        "path needs an import_path on the same bucket; set import_path too",
    ),
    (
        "prod",
        set_value("hpc:storage.persistent.data_repository_associations.1.file_system_path", "/projects/ref"),
        "Pulumi.prod.yaml: hpc:storage.persistent.data_repository_associations[1].file_system_path: "
        "/projects/ref overlaps data_repository_associations[0] (/projects)…",
    ),
    (
        "prod",
        set_value("hpc:storage.data_bucket", {"lifecycle": {"cold_after_days": 60}}),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.cold_after_days: 60 "
        "days is outside what S3 Intelligent-Tiering accepts for this tier (90-730)",
    ),
    (
        "prod",
        set_value(
            "hpc:storage.data_bucket",
            {
                "lifecycle": {
                    "enable_intelligent_tiering": False,
                    "warm_after_days": 120,
                    "cold_after_days": 90,
                }
            },
        ),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.cold_after_days: "
        "90 days must come after warm_after_days (120 days)…",
    ),
    (
        "prod",
        set_value(
            "hpc:storage.data_bucket",
            {"lifecycle": {"enable_intelligent_tiering": False, "warm_after_days": 10}},
        ),
        "Pulumi.prod.yaml: hpc:storage.data_bucket.lifecycle.warm_after_days: "
        "10: Input should be greater than or equal to 30",
    ),
    (
        "prod",
        set_value("hpc:storage.persistent.data_repository_associations.0.bucket_prefix", "archive/projects/"),
        "Pulumi.prod.yaml: hpc:storage.persistent.data_repository_associations[0].bucket_prefix: "
        "'archive/projects/' is under the archive prefix 'archive/'…",
    ),
    (
        "dev",
        set_value("hpc:storage.data_bucket", {"lifecycle": {"archive_prefix": ""}}),
        "Pulumi.prod.yaml: hpc:storage.scratch.import_path: "
        "'scratch-staging/' is in a bucket archived as a whole…",
    ),
    (
        "prod",
        set_value("hpc:storage.target_aggregate_throughput_gbps", 200),
        "Pulumi.prod.yaml: hpc:storage.target_aggregate_throughput_gbps: warning: "
        "the Lustre sizes give 137.1 GB/s baseline, below the 200 GB/s target…",
    ),
    (
        "staging",
        set_value("hpc:storage.scratch.data_repository_associations", [{"file_system_path": "/in"}]),
        "Pulumi.prod.yaml: hpc:storage.scratch.data_repository_associations: cannot be "
        "combined with import_path/export_path (FSx refuses the legacy paths on a file system "
        "with associations); link the bucket one way: remove the paths or the associations",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_storage_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, storage.VALIDATORS, stack_config) == {v.name for v in storage.VALIDATORS}


def test_customer_key_rule_follows_the_environment_profile(
    stack_config: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule reads the environment's profile, not its name."""
    config = stack_config("dev")
    config["hpc:storage"]["persistent"]["enable_customer_kms_key"] = False
    assert problems(config) == []
    monkeypatch.setitem(PROFILES, "dev", replace(PROFILES["dev"], requires_persistent_customer_key=True))
    assert [line.split(": warning: ")[0] for line in problems(config)] == [
        "Pulumi.prod.yaml: hpc:storage.persistent.enable_customer_kms_key"
    ]
