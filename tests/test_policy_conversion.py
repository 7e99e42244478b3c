"""`hpcctl check` converts each analyzer request's properties once (hpc_platform/app/policy_check.py,
`_converting_once`), where pulumi-policy's servicer converts them once per policy. The verdict must
be the one of the unchanged servicer; nothing here is timed (benchmarks/ measure the time)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]

from hpc_platform.app import policy_check
from hpc_platform.app.offline import Plan
from hpc_platform.app.policy_check import read_policy_config, run_pack
from tests.support.stacks import planned
from tests.test_policies import CASES, plan_of


def _both_ways(plan: Plan, given: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    once = run_pack(plan, given)
    with monkeypatch.context() as patch:
        patch.setattr(policy_check, "_converting_once", nullcontext)
        every_time = run_pack(plan, given)
    return once, every_time


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_gets_the_same_verdict_as_from_the_unchanged_servicer(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_plan = planned(stack)
    given = read_policy_config(policy_check.default_policy_config(stack_plan.loaded.config.environment))
    once, every_time = _both_ways(stack_plan.plan, given, monkeypatch)
    assert once == every_time


def test_every_violating_fixture_gets_the_same_violations_as_from_the_unchanged_servicer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = 0
    for _policy, _what, bad, _good in CASES:
        plan = plan_of(*bad())
        once, every_time = _both_ways(plan, {}, monkeypatch)
        assert once == every_time
        found += len(once.violations)
    assert found >= len(CASES)  # each fixture violates its policy, resource and stack policies alike


def test_each_message_is_converted_once_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails when pulumi-policy stops converting through its module's `json_format` (the pin moved):
    then every policy converts every resource again."""
    calls = 0
    original = json_format.MessageToDict

    def counting(message: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(message, *args, **kwargs)

    stack_plan = planned("prod")
    given = read_policy_config(policy_check.default_policy_config(stack_plan.loaded.config.environment))
    monkeypatch.setattr(json_format, "MessageToDict", counting)
    run = run_pack(stack_plan.plan, given)
    # One `Analyze` and one `AnalyzeStack` entry per resource, plus providers' properties.
    assert run.resources == len(stack_plan.plan.resources) + 1
    assert calls <= 3 * run.resources, f"{calls} conversions for {run.resources} resources"
