"""Observability rules (`hpc_platform.domain.config.validators.observability`): each violating
case fails with its message at the exact key path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from hpc_platform.domain.config.validators import observability
from hpc_platform.domain.environments import PROFILES
from tests.support.validator_cases import Case, Mutation, case_ids, check_case, exercised, problems, set_value


def _drop_research_group(group: str) -> Mutation:
    """Take `group` off every queue that names it: its budget then owns nothing."""

    def mutate(config: dict[str, Any]) -> None:
        for queue in config["hpc:cluster"]["queues"]:
            if queue.get("research_group") == group:
                del queue["research_group"]

    return mutate


# (stack, mutation, expected line (exact), or its start when it ends with "…")
CASES: list[Case] = [
    (
        "prod",
        set_value(
            "hpc:observability.budget.alert_thresholds_percent", [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
        ),
        "Pulumi.prod.yaml: hpc:observability.budget.alert_thresholds_percent: 10 thresholds; AWS "
        "Budgets allows 10 notifications per budget and 1 is the forecast alert, so list at most 9",
    ),
    (
        "prod",
        set_value("hpc:observability.budget.alert_thresholds_percent", [50, 2000]),
        "Pulumi.prod.yaml: hpc:observability.budget.alert_thresholds_percent[1]: "
        "2000.0 is not a budget threshold; use a percentage between 0 and 1000",
    ),
    (
        "prod",
        set_value("hpc:observability.notification_emails", []),
        "Pulumi.prod.yaml: hpc:observability.notification_emails: warning: "
        "prod has nobody to notify; alarms will only show in the console",
    ),
    (
        "prod",
        _drop_research_group("genomics"),
        "Pulumi.prod.yaml: hpc:observability.budget.per_research_group.genomics: "
        "no queue belongs to research group 'genomics'; set research_group: "
        "genomics on the queues it pays for, or remove the budget",
    ),
    (
        "staging",
        set_value(
            "hpc:observability.budget.per_research_group", {"platform-engineering": 5000, "chemistry": 900}
        ),
        "Pulumi.prod.yaml: hpc:observability.budget.per_research_group.chemistry: "
        "no queue belongs to research group 'chemistry'; set research_group: "
        "chemistry on the queues it pays for, or remove the budget",
    ),
    (
        "prod",
        set_value("hpc:cluster.head_node.instance_type", "c7g.2xlarge"),
        "Pulumi.prod.yaml: hpc:cluster.head_node.instance_type: c7g.2xlarge is arm64, but the metrics "
        "collector and node_exporter installed with enable_managed_prometheus are x86_64 builds; use an "
        "x86_64 cluster or turn Prometheus off",
    ),
    (
        "prod",
        set_value("hpc:cluster.os", "rocky8"),
        "Pulumi.prod.yaml: hpc:cluster.os: rocky8 has glibc 2.28, but the metrics collector installed "
        "with enable_managed_prometheus needs glibc ≥ 2.34; use alinux2023, ubuntu2204, ubuntu2404, "
        "rhel9 or rocky9, or turn Prometheus off",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=case_ids(CASES))
def test_fails_rule(
    stack: str, mutate: Any, expected: str, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    check_case(stack, mutate, expected, stack_config)


def test_every_observability_validator_fails_on_some_case(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    assert exercised(CASES, observability.VALIDATORS, stack_config) == {
        v.name for v in observability.VALIDATORS
    }


def test_notification_rule_follows_the_environment_profile(
    stack_config: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule reads the environment's profile, not its name: a dev profile that requires
    notification e-mails gets the warning too."""
    config = stack_config("dev")
    config["hpc:observability"]["notification_emails"] = []
    assert problems(config) == []
    monkeypatch.setitem(PROFILES, "dev", replace(PROFILES["dev"], requires_notification_emails=True))
    assert problems(config) == [
        "Pulumi.prod.yaml: hpc:observability.notification_emails: warning: dev has nobody to notify; "
        "alarms will only show in the console"
    ]
