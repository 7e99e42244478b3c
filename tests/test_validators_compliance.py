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
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_compliance_validator_fails_on_some_case(stack_config: Callable[[str], dict[str, Any]]) -> None:
    assert exercised(CASES, compliance.VALIDATORS, stack_config) == {v.name for v in compliance.VALIDATORS}
