"""Compliance rules (`hpc_platform.domain.config.validators.compliance`): each violating case
fails with its message at the exact key path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hpc_platform.domain.config.validators import compliance
from tests.support.validator_cases import Case, case_ids, check_case, exercised, set_value

# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value("hpc:compliance.extra_tags", {"parallelcluster:owner": "hpc"}),
        'Pulumi.prod.yaml: hpc:compliance.extra_tags["parallelcluster:owner"]: the prefix '
        "'parallelcluster:' is reserved by ParallelCluster for its own tags; rename the tag",
    ),
    (
        "prod",
        set_value("hpc:compliance.extra_tags", {"Project": "a", "Grant": "b", "Lab": "c"}),
        "Pulumi.prod.yaml: hpc:compliance.extra_tags: resources would carry 11 tags "
        "but S3 objects (the bootstrap scripts) accept at most 10; drop 1 extra tag(s)",
    ),
    # audit
    (
        "prod",
        set_value("hpc:audit", {"mode": "existing", "existing_config_recorder_name": "default"}),
        "Pulumi.prod.yaml: hpc:audit.existing_trail_arn: is required when hpc:audit.mode is existing; "
        "give the organization trail's ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>), "
        "or set mode: create",
    ),
    (
        "dev",
        set_value("hpc:audit.existing_config_recorder_name", None),
        "Pulumi.prod.yaml: hpc:audit.existing_config_recorder_name: is required when hpc:audit.mode is "
        "existing; give the name of the AWS Config recorder the organization runs in this account and "
        "region, or set mode: create",
    ),
    (
        "dev",
        set_value("hpc:audit.mode", "create"),
        "Pulumi.prod.yaml: hpc:audit.existing_trail_arn: is only used when hpc:audit.mode is existing "
        "(mode create makes the stack's own trail and recorder); remove it, or set mode: existing",
    ),
    (
        "dev",
        set_value("hpc:audit.existing_trail_arn", "org-trail"),
        "Pulumi.prod.yaml: hpc:audit.existing_trail_arn: 'org-trail' is not a CloudTrail trail ARN; use "
        "arn:aws:cloudtrail:<region>:<account>:trail/<name> (the trail's ARN, not its name)",
    ),
    (
        "dev",
        set_value("hpc:audit.existing_config_recorder_name", "my recorder"),
        "Pulumi.prod.yaml: hpc:audit.existing_config_recorder_name: 'my recorder' is not an AWS Config "
        "recorder name: 1 to 256 letters, digits, '.', '_' or '-'",
    ),
    (
        "prod",
        set_value("hpc:audit.mode", "organization"),
        "Pulumi.prod.yaml: hpc:audit.mode: 'organization': Input should be 'create' or 'existing'",
    ),
    (
        "prod",
        set_value("hpc:audit.log_retention_days", 100),
        "Pulumi.prod.yaml: hpc:audit.log_retention_days: 100 is not a CloudWatch Logs retention period; "
        "use one of 1, 3, 5, …",
    ),
    (
        "prod",
        set_value("hpc:audit.enable_managed_rules", "sometimes"),
        "Pulumi.prod.yaml: hpc:audit.enable_managed_rules: 'sometimes': Input should be a valid boolean…",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_compliance_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, compliance.VALIDATORS, stack_config) == {v.name for v in compliance.VALIDATORS}
