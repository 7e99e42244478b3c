"""The portal's immediate feedback: the committed stack files, and mutated copies, through the real
validators, the real program under the offline engine and the real policy pack.

The expected answers come from the CLI's own code on the same input (`hpcctl validate`'s lines, the
offline plan, `check_run`, `estimate_monthly_cost`): the portal must say what the CLI says.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.concurrency import run_in_threadpool

from hpc_platform.app.diagram import build_diagram, render_dot, render_mermaid
from hpc_platform.app.policy_check import check_run, counts_line, default_policy_config
from hpc_platform.app.portal import assess
from hpc_platform.app.portal.assess import (
    Assessment,
    Assessor,
    InvalidConfig,
    Problem,
    UnsupportedContentType,
    config_diff,
    parse_body,
    validate,
)
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.domain.environments import profile
from hpc_platform.domain.pricing import estimate_monthly_cost, render_cost
from hpcctl.cli import EXIT_INVALID, main
from tests.support.stacks import STACKS, planned, stack_file

Config = dict[str, Any]
PLAN_DEADLINE_S = 600
"""Far above a plan's time on a loaded machine (seconds); only a deadlock reaches it."""


def committed(stack: str) -> Config:
    return copy.deepcopy(read_stack_file(stack_file(stack)))


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor()


@pytest.fixture(scope="module")
def assessed(assessor: Assessor) -> dict[str, Assessment]:
    """Each committed stack, assessed once, one after the other."""
    return {stack: assessor.assess(stack, committed(stack), kind=stack) for stack in STACKS}


def cli_lines(config: Config, tmp_path: Path) -> list[str]:
    """What `hpcctl validate` prints for this config (its stderr lines)."""
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    err = io.StringIO()
    assert main(["validate", "--stack-file", str(path)], io.StringIO(), err) == EXIT_INVALID
    return err.getvalue().splitlines()


def problems_of(config: Any, stack: str = "prod", kind: str | None = None) -> list[Problem]:
    with pytest.raises(InvalidConfig) as raised:
        validate(stack, config, kind)
    return raised.value.problems


# --- the committed stacks ----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_plan_as_hpcctl_plans_them(stack: str, assessed: dict[str, Assessment]) -> None:
    assessment, plan = assessed[stack], planned(stack).plan
    summary = assessment.plan_summary
    assert assessment.resource_count == summary["resource_count"] == plan.resource_count
    assert assessment.environment_kind == stack and summary["stack"] == stack

    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node["components"] for n in walk(child))]

    components = [n for top in summary["components"] for n in walk(top)]
    assert {(n["type"], n["name"]) for n in components} == {
        (r.type, r.name) for r in plan.resources if not r.custom
    }
    by_type: Counter[str] = Counter(summary["by_type"])
    for node in components:
        by_type.update(node["by_type"])
        # a component's count is itself, its own resources and its components' counts
        assert node["resources"] == 1 + sum(node["by_type"].values()) + sum(
            c["resources"] for c in node["components"]
        )
    assert by_type == Counter(r.type for r in plan.resources if r.custom)
    top = sum(summary["by_type"].values()) + sum(c["resources"] for c in summary["components"])
    assert 1 + top == plan.resource_count  # the stack itself, then everything under it


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_pass_at_their_environments_enforcement(
    stack: str, assessed: dict[str, Assessment]
) -> None:
    verdict = assessed[stack].verdict
    assert verdict["enforcement"] == profile(stack).policy_enforcement
    assert json.loads(default_policy_config(stack).read_text())["all"] == verdict["enforcement"]
    assert verdict["passes"] and verdict["mandatory"] == []
    run = check_run(planned(stack))
    assert verdict["summary"] == counts_line(run)  # what `hpcctl check` ends with
    assert verdict["resources"] == planned(stack).plan.resource_count


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_cost_what_hpcctl_plan_estimates(
    stack: str, assessed: dict[str, Assessment]
) -> None:
    config = planned(stack).loaded.config
    estimate = estimate_monthly_cost(config)
    budget = config.observability.budget
    cost = assessed[stack].cost
    assert cost["monthly_usd"] == pytest.approx(estimate.monthly_usd, abs=0.01)
    assert cost["ceiling_usd"] == pytest.approx(estimate.ceiling_usd, abs=0.01)
    assert [line["item"] for line in cost["lines"]] == [line.item for line in estimate.lines]
    assert sum(line["monthly_usd"] for line in cost["lines"]) == pytest.approx(cost["monthly_usd"], abs=0.1)
    assert cost["report"] == render_cost(estimate, budget.monthly_limit_usd if budget else None)


@pytest.mark.parametrize("stack", STACKS)
def test_assessment_keeps_the_architecture_diagram_hpcctl_draws(
    stack: str, assessed: dict[str, Assessment]
) -> None:
    drawn = build_diagram(planned(stack).plan)
    assert assessed[stack].diagram == {"dot": render_dot(drawn), "mermaid": render_mermaid(drawn)}
    assert assessed[stack].to_json()["diagram"] == assessed[stack].diagram


def test_assessment_is_json(assessed: dict[str, Assessment]) -> None:
    document = assessed["prod"].to_json()
    assert json.loads(json.dumps(document)) == document
    assert set(document) >= {"environment_kind", "resource_count", "plan_summary", "verdict", "cost"}


# --- policy findings at the environment's level --------------------------------------------------------
def test_fails_prod_labelled_below_cui_with_mandatory_findings(assessor: Assessor) -> None:
    config = committed("prod")
    config["hpc:compliance"]["data_classification"] = "confidential"
    verdict = assessor.assess("prod", config).verdict
    assert not verdict["passes"] and verdict["enforcement"] == "mandatory"
    assert {g["policy"] for g in verdict["mandatory"]} == {"nist-800-171-tagging"}
    assert verdict["advisory"] == []


def test_dev_findings_are_advisory_and_pass(assessor: Assessor) -> None:
    config = committed("dev")
    config["hpc:compliance"]["data_classification"] = "cui"
    verdict = assessor.assess("dev", config).verdict
    assert verdict["passes"] and verdict["enforcement"] == "advisory"
    assert verdict["mandatory"] == []
    assert [g["policy"] for g in verdict["advisory"]] == ["nist-800-171-tagging"]
    assert verdict["advisory"][0]["resources"]  # the resources it was found on, by name


# --- bad configs: one problem each, worded as the CLI words it ------------------------------------------
def _rename_queue(config: Config) -> None:
    config["hpc:cluster"]["queues"][1]["name"] = "Compute-Spot"


def _scratch_size(config: Config) -> None:
    config["hpc:storage"]["scratch"]["capacity_gib"] = 1000


def _unknown_nested_key(config: Config) -> None:
    config["hpc:cluster"]["queues"][2]["compute_resources"][0]["max_nodes"] = 4


def _unknown_top_level_key(config: Config) -> None:
    config["hpc:netwrok"] = {}


@pytest.mark.parametrize(
    ("mutate", "keys"),
    [
        (_rename_queue, ["hpc:cluster.queues[1].name"]),
        (_scratch_size, ["hpc:storage.scratch.capacity_gib"]),
        (_unknown_nested_key, ["hpc:cluster.queues[2].compute_resources[0].max_nodes"]),
        (_unknown_top_level_key, ["hpc:netwrok"]),
    ],
)
def test_fails_mutated_prod_with_the_clis_problems(
    mutate: Callable[[Config], None], keys: list[str], tmp_path: Path
) -> None:
    config = committed("prod")
    mutate(config)
    problems = problems_of(config)
    assert [p.key for p in problems] == keys
    assert [f"Pulumi.prod.yaml: {p.key}: {p.message}" for p in problems] == cli_lines(config, tmp_path)


def test_fails_uppercase_queue_name_saying_what_is_allowed() -> None:
    config = committed("prod")
    _rename_queue(config)
    [problem] = problems_of(config)
    assert "'Compute-Spot' is not a valid ParallelCluster queue" in problem.message


def test_fails_every_problem_at_once(tmp_path: Path) -> None:
    config = committed("prod")
    _rename_queue(config)
    _unknown_nested_key(config)
    problems = problems_of(config)
    assert {p.key for p in problems} == {
        "hpc:cluster.queues[1].name",
        "hpc:cluster.queues[2].compute_resources[0].max_nodes",
    }
    assert sorted(f"Pulumi.prod.yaml: {p.key}: {p.message}" for p in problems) == sorted(
        cli_lines(config, tmp_path)
    )


def test_fails_keys_the_cli_would_ignore() -> None:
    """A stack file may hold other packages' keys; a request sets only the platform's."""
    config = committed("dev")
    config["aws:profile"] = "admin"
    config["aws:regoin"] = "us-east-1"
    problems = problems_of(config, "dev")
    assert [p.key for p in problems] == ["aws:profile", "aws:regoin"]
    assert problems[1].message == "unknown key; did you mean 'aws:region'?"
    assert "hpc:cluster" in problems[0].message  # lists what a request may set


def test_fails_a_config_for_another_kind_of_environment() -> None:
    [problem] = problems_of(committed("dev"), "team-a", kind="prod")
    assert problem.key == "hpc:environment"
    assert "'dev'" in problem.message and "prod" in problem.message


@pytest.mark.parametrize(
    ("value", "fragment"), [(float("inf"), "inf is not a number"), (b"\x00", "bytes is not a config value")]
)
def test_fails_values_a_stack_file_cannot_hold(value: Any, fragment: str) -> None:
    config = committed("dev")
    config["hpc:network"]["availability_zones"][1] = value
    [problem] = problems_of(config, "dev")
    assert problem.key == "hpc:network.availability_zones[1]"
    assert fragment in problem.message


def test_fails_a_config_that_is_not_a_mapping() -> None:
    [problem] = problems_of(["hpc:environment"])
    assert problem.key == "" and "mapping" in problem.message


# --- the request body ------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_body_is_the_config(content_type: str) -> None:
    config = committed("prod")
    assert parse_body(json.dumps(config).encode(), content_type) == config


@pytest.mark.parametrize("content_type", ["application/yaml", "application/x-yaml", "text/yaml"])
def test_yaml_stack_file_body_is_its_config(content_type: str) -> None:
    assert parse_body(stack_file("prod").read_text(), content_type) == committed("prod")


def test_yaml_dates_stay_text() -> None:
    """As Pulumi reads a stack file: config values are text unless they are objects."""
    assert parse_body("hpc:compliance:\n  owner: 2024-01-01\n", "application/yaml") == {
        "hpc:compliance": {"owner": "2024-01-01"}
    }


@pytest.mark.parametrize(
    ("body", "content_type", "key", "fragment"),
    [
        ("hpc:network: {vpc_cidr: [\n", "application/yaml", "", "not valid YAML at line 2"),
        ('{"hpc:network": ', "application/json", "", "not valid JSON at line 1"),
        ('{"aws:region": "a", "aws:region": "b"}', "application/json", "", "duplicate key 'aws:region'"),
        ('{"hpc:cluster": {"x": NaN}}', "application/json", "", "NaN is not a JSON number"),
        ("aws:region: a\naws:region: b\n", "application/yaml", "", "duplicate key 'aws:region'"),
        ("a: &x [1]\nb: *x\n", "application/yaml", "", "aliases (*name) are not accepted"),
        ("", "application/yaml", "", "the body is empty"),
        ("- hpc:network\n", "application/yaml", "", "the body is a list"),
        ('"text"', "application/json", "", "the body is a string"),
        ("config: [1]\n", "application/yaml", "config", "`config:` is a list"),
        ("config: {}\nencryptionsalt: x\n", "application/yaml", "encryptionsalt", "holds only `config:`"),
        ("[" * 100_000, "application/json", "", "nested too deeply"),
    ],
)
def test_fails_malformed_bodies(body: str, content_type: str, key: str, fragment: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        parse_body(body, content_type)
    [problem] = raised.value.problems
    assert problem.key == key
    assert fragment in problem.message


def test_fails_a_body_that_is_not_utf8() -> None:
    with pytest.raises(InvalidConfig, match="not UTF-8"):
        parse_body(b"\xff\xfe", "application/json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_fails_other_content_types(content_type: str) -> None:
    with pytest.raises(UnsupportedContentType, match="application/json or application/yaml"):
        parse_body("{}", content_type)


# --- the diff ----------------------------------------------------------------------------------------------
def test_diff_of_a_config_with_itself_is_empty() -> None:
    assert config_diff(committed("prod"), committed("prod")) == []


def test_diff_names_changed_leaves_by_the_key_paths_problems_use() -> None:
    old, new = committed("prod"), committed("prod")
    _rename_queue(new)
    new["aws:region"] = "us-west-2"
    [problem] = problems_of(new)
    assert config_diff(old, new) == [
        {"key": "aws:region", "old": "us-east-2", "new": "us-west-2", "change": "changed"},
        {"key": problem.key, "old": "compute-spot", "new": "Compute-Spot", "change": "changed"},
    ]


def test_diff_shows_an_added_or_removed_item_whole() -> None:
    old, new = committed("dev"), committed("dev")
    queue = copy.deepcopy(new["hpc:cluster"]["queues"][2]) | {"name": "debug-2"}
    new["hpc:cluster"]["queues"].append(queue)
    del new["hpc:observability"]["budget"]
    assert config_diff(old, new) == [
        {"key": "hpc:cluster.queues[3]", "old": None, "new": queue, "change": "added"},
        {
            "key": "hpc:observability.budget",
            "old": old["hpc:observability"]["budget"],
            "new": None,
            "change": "removed",
        },
    ]


def test_diff_of_a_new_environment_lists_every_key() -> None:
    new = committed("dev")
    diff = config_diff(None, new)
    assert [d["key"] for d in diff] == list(new)
    assert all(d["change"] == "added" and d["old"] is None for d in diff)


def test_diff_tells_numbers_from_booleans() -> None:
    assert config_diff({"hpc:x": {"a": 1}}, {"hpc:x": {"a": True}}) == [
        {"key": "hpc:x.a", "old": 1, "new": True, "change": "changed"}
    ]


# --- a warm service: worker threads ------------------------------------------------------------------------
def test_concurrent_assessments_from_worker_threads_are_each_their_own(
    assessor: Assessor, assessed: dict[str, Assessment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests at once, as a service's thread pool runs them: each gets its own stack's result,
    identical to the one assessed alone, and the plans take turns (Pulumi's runtime state is
    process-global: without the lock, two plans at once hang). The real planner runs; the wrapper
    only counts how many run at once."""
    running, most = 0, 0
    counting = threading.Lock()

    def counted_plan(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with counting:
            running += 1
            most = max(most, running)
        try:
            return real_plan(*args, **kwargs)
        finally:
            with counting:
                running -= 1

    real_plan = assess.plan_config
    monkeypatch.setattr(assess, "plan_config", counted_plan)
    stacks = ["prod", "dev"]
    start = threading.Barrier(len(stacks))

    def request(stack: str) -> Assessment:
        start.wait()
        return assessor.assess(stack, committed(stack), kind=stack)

    results: dict[int, Assessment] = {}
    # Daemon threads, joined with a deadline: without the lock two plans at once deadlock, and the
    # test should fail, not hang.
    threads = [
        threading.Thread(target=lambda i=i, s=s: results.__setitem__(i, request(s)), daemon=True)
        for i, s in enumerate(stacks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PLAN_DEADLINE_S)
    assert not any(t.is_alive() for t in threads), "concurrent plans did not finish"
    for index, stack in enumerate(stacks):
        assert results[index].to_json() == assessed[stack].to_json()
    assert most == 1


def test_warm_up_runs_in_fastapis_threadpool(assessed: dict[str, Assessment]) -> None:
    """What FastAPI does with a sync endpoint (and a service may do with its warm-up): the event
    loop's thread hands the call to a worker thread, which has no event loop of its own."""
    fresh = Assessor(project_dir=stack_file("dev").parent)

    async def start_up() -> Assessment | None:
        return await run_in_threadpool(fresh.warm_up)

    warmed = asyncio.run(start_up())
    assert warmed is not None and warmed.to_json() == assessed["dev"].to_json()
    assert fresh.plans == 1


def test_fails_on_an_event_loops_own_thread(assessor: Assessor) -> None:
    async def endpoint() -> None:
        assessor.assess("dev", committed("dev"))

    with pytest.raises(RuntimeError, match="worker thread"):
        asyncio.run(endpoint())


def test_warm_up_without_a_dev_stack_file_only_imports(tmp_path: Path) -> None:
    fresh = Assessor(project_dir=tmp_path)
    assert fresh.warm_up() is None and fresh.plans == 0


def test_warm_up_all_plans_each_stack_kind_the_project_has(tmp_path: Path) -> None:
    """`hpc-portal serve` warms the planner with every checked-in stack kind (each loads provider
    modules the others may not); kinds without a stack file are skipped."""
    for kind in ("dev", "staging"):
        shutil.copy(stack_file(kind), tmp_path / f"Pulumi.{kind}.yaml")
    fresh = Assessor(project_dir=tmp_path)
    assert fresh.warm_up_all() == 2 and fresh.plans == 2
