"""The runner drives the real `pulumi.automation` SDK against the stand-in `pulumi` executable
(tests/support/pulumi_standin): only the binary is replaced. Tests that start the runner's own
child process, or several operations in a row, are marked `integration`."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from hpc_platform.app.automation import PROJECT_DIR
from hpc_platform.app.portal import runner
from hpc_platform.app.portal.runner import ConcurrentUpdate, OperationResult, OperationSpec
from hpc_platform.domain.config.loader import read_stack_file
from tests.support import pulumi_standin
from tests.support.stacks import stack_file

PROJECT = "hpc-platform"
STACK = "team-a-dev"


class Job:
    """Specs for one stack on one file backend, each run in a fresh work dir as the worker does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend_url = f"file://{root / 'state'}"
        self.config = copy.deepcopy(read_stack_file(stack_file("dev")))
        self.runs = 0

    def spec(self, operation: runner.Operation, stack: str = STACK, **options: Any) -> OperationSpec:
        self.runs += 1
        return OperationSpec(
            stack=stack,
            operation=operation,
            config=options.pop("config", self.config),
            work_dir=self.root / "work" / f"job-{self.runs}",
            project_dir=PROJECT_DIR,
            backend_url=self.backend_url,
            pulumi_root=pulumi_standin.ROOT,
            **options,
        )

    def run(
        self, operation: runner.Operation, **options: Any
    ) -> tuple[OperationResult, list[dict[str, Any]]]:
        events: list[dict[str, Any]] = []

        def on_event(seq: int, body: dict[str, Any]) -> None:
            assert body["sequence"] == seq
            events.append(body)

        return runner.run_operation(self.spec(operation, **options), on_event), events

    def state(self, stack: str = STACK) -> dict[str, Any]:
        return pulumi_standin.stack_state(self.backend_url, PROJECT, stack)


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    for name, value in pulumi_standin.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    return Job(tmp_path)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [next(k for k in e if k not in ("sequence", "timestamp")) for e in events]


def resources_in(config: dict[str, Any]) -> int:
    """What the stand-in declares for a config: the stack, the AWS provider, five components and a
    resource per queue."""
    return 2 + 5 + len(config["hpc:cluster"]["queues"])


# --- fast: one operation, or no process at all ---------------------------------------------
def test_preview_saves_a_plan_and_relays_engine_events_in_order(job: Job) -> None:
    plan = job.root / "plans" / "1.json"
    result, events = job.run("preview", plan_path=plan)
    assert result.ok, result.error
    planned = resources_in(job.config)
    assert result.summary == {"create": planned}
    assert result.plan_sha256 == hashlib.sha256(plan.read_bytes()).hexdigest()
    assert result.stack_version is None  # created, never updated
    assert [e["sequence"] for e in events] == list(range(len(events)))
    assert kinds(events)[0] == "preludeEvent" and kinds(events)[-1] == "cancelEvent"
    assert kinds(events).count("resourcePreEvent") == planned
    summary = next(e["summaryEvent"] for e in events if "summaryEvent" in e)
    assert summary["resourceChanges"] == {"create": planned}
    # The policy pack rode along.
    assert summary["PolicyPacks"] == {"policy": "v0.1.0"}


@pytest.mark.integration
def test_the_work_dir_holds_the_stack_file_and_the_repository_stack_files_are_untouched(job: Job) -> None:
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in PROJECT_DIR.glob("Pulumi*.yaml")}
    spec = job.spec("preview", stack="dev")  # the same name as a checked-in stack file
    result = runner.run_operation(spec, lambda seq, body: None)
    assert result.ok, result.error
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in PROJECT_DIR.glob("Pulumi*.yaml")}
    assert after == before
    import yaml

    project = yaml.safe_load((spec.work_dir / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT and project["main"] == str(PROJECT_DIR)
    stack_file_in_job = yaml.safe_load((spec.work_dir / "Pulumi.dev.yaml").read_text())
    assert json.loads(stack_file_in_job["config"]["hpc:cluster"])["name"] == "hpc-dev"


def test_fails_a_bad_config_before_pulumi_is_touched(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi.automation as auto

    def must_not_run(*_: Any, **__: Any) -> None:
        raise AssertionError("the workspace was touched before validation")

    monkeypatch.setattr(auto.Stack, "create_or_select", must_not_run)
    job.config["hpc:storage"]["scratch"]["capacity_gib"] = 1000
    result, events = job.run("preview")
    assert not result.ok and not events
    assert result.error == (
        f"Pulumi.{STACK}.yaml: hpc:storage.scratch.capacity_gib: 1000 is not a valid SCRATCH_2 size; "
        "use 1200, 2400 or a multiple of 2400"
    )


@pytest.mark.parametrize("name", ["../dev", "a/b", "x;rm -rf", ""])
def test_fails_unsafe_stack_names(job: Job, name: str) -> None:
    result, _ = job.run("preview", stack=name)
    assert not result.ok and result.error is not None and "not a valid stack name" in result.error


@pytest.mark.integration
def test_fails_a_lock_held_by_another_update_as_concurrent_update(job: Job) -> None:
    job.run("preview")  # creates the stack
    pulumi_standin.hold_lock(job.backend_url, PROJECT, STACK)
    with pytest.raises(ConcurrentUpdate, match=r"currently locked by 1 lock\(s\)"):
        job.run("up")


@pytest.mark.integration
def test_fails_a_non_zero_exit_with_one_clear_line(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "preview", "fail": "exit"})
    result, _ = job.run("preview")
    assert not result.ok
    assert result.error == (
        "pulumi preview failed (exit 255): error: preview failed: the stand-in was told to fail this preview"
    )


@pytest.mark.integration
def test_fails_a_preview_without_a_summary_event(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "preview", "fail": "no-summary"})
    result, events = job.run("preview")
    assert not result.ok and result.error is not None and "without a summary event" in result.error
    assert "summaryEvent" not in kinds(events)


def test_engine_events_keep_the_cli_json_shape() -> None:
    from pulumi.automation.events import EngineEvent

    raw: list[dict[str, Any]] = [
        {
            "sequence": 7,
            "timestamp": 1,
            "summaryEvent": {
                "maybeCorrupt": False,
                "durationSeconds": 3,
                "resourceChanges": {"create": 2, "same": 1},
                "PolicyPacks": {"hpc": "v0.1.0"},
            },
        },
        {
            "sequence": 8,
            "timestamp": 1,
            "diagnosticEvent": {"message": "m", "color": "never", "severity": "warning", "streamId": 2},
        },
    ]
    for body in raw:
        converted = runner.event_body(EngineEvent.from_json(body))
        for key, value in body.items():
            if isinstance(value, dict):
                assert {k: converted[key][k] for k in value} == value
            else:
                assert converted[key] == value


# --- integration: several operations, or the runner's child process -----------------------------
@pytest.mark.integration
def test_up_applies_the_saved_plan_and_the_stack_version_counts_updates(job: Job) -> None:
    plan = job.root / "plans" / "1.json"
    assert job.run("preview", plan_path=plan)[0].ok
    result, events = job.run("up", plan_path=plan)
    assert result.ok, result.error
    assert result.summary == {"create": resources_in(job.config)}
    assert result.stack_version == 1
    assert result.outputs == {"environment": "dev", "region": "us-east-2", "cluster_name": "hpc-dev"}
    assert "resOutputsEvent" in kinds(events)
    again, _ = job.run("preview")
    assert again.summary == {"same": resources_in(job.config)} and again.stack_version == 1
    assert job.run("up")[0].stack_version == 2
    assert runner.stack_version(job.spec("preview")) == 2


@pytest.mark.integration
def test_fails_up_when_the_config_changed_since_the_saved_plan(job: Job) -> None:
    plan = job.root / "plans" / "1.json"
    assert job.run("preview", plan_path=plan)[0].ok
    changed = copy.deepcopy(job.config)
    changed["hpc:cluster"]["queues"][0]["compute_resources"][0]["max_count"] += 1
    result, _ = job.run("up", plan_path=plan, config=changed)
    assert not result.ok and result.error is not None and "plan" in result.error
    assert job.state()["resources"] == {} and job.state()["history"] == []


@pytest.mark.integration
def test_destroy_previews_then_removes_everything(job: Job) -> None:
    assert job.run("up")[0].ok
    planned = resources_in(job.config)
    preview, _ = job.run("destroy", preview_only_destroy=True)
    assert preview.ok and preview.summary == {"delete": planned} and preview.stack_version == 1
    assert len(job.state()["resources"]) == planned
    result, _ = job.run("destroy")
    assert result.ok and result.summary == {"delete": planned}
    assert result.outputs == {} and result.stack_version == 2 and job.state()["resources"] == {}


@pytest.mark.integration
def test_refresh_preview_only_records_nothing(job: Job) -> None:
    assert job.run("up")[0].ok
    drift, _ = job.run("refresh", preview_only_refresh=True)
    assert drift.ok and drift.summary == {"same": resources_in(job.config)} and drift.stack_version == 1
    assert len(job.state()["history"]) == 1
    refreshed, _ = job.run("refresh")
    assert refreshed.ok and refreshed.stack_version == 2
    assert refreshed.outputs["cluster_name"] == "hpc-dev"


@pytest.mark.integration
def test_secret_outputs_are_masked_everywhere_the_runner_writes(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "up", "secret_outputs": {"db_password": "hunter2"}})
    spec = job.spec("up")
    events: list[dict[str, Any]] = []
    result = runner.run_operation(spec, lambda seq, body: events.append(body))
    assert result.ok and result.outputs["db_password"] == "[secret]"
    assert "hunter2" not in json.dumps([result.to_json(), events])
    assert not [p for p in spec.work_dir.rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()]


@pytest.mark.integration
def test_fails_an_up_that_exits_non_zero_and_records_the_failed_update(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "up", "fail": "exit"})
    result, _ = job.run("up")
    assert not result.ok and result.error is not None
    assert result.error.startswith("pulumi up failed (exit 255): error: up failed")
    assert [h["result"] for h in job.state()["history"]] == ["failed"]


@pytest.mark.integration
def test_fails_an_up_without_a_summary_event(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "up", "fail": "no-summary"})
    result, _ = job.run("up")
    assert not result.ok and result.error is not None and "without a summary event" in result.error


def _in_subprocess(spec: OperationSpec) -> tuple[OperationResult, list[int], list[int]]:
    seqs: list[int] = []
    pids: list[int] = []
    result = runner.run_in_subprocess(spec, lambda seq, body: seqs.append(seq), pids.append)
    return result, seqs, pids


@pytest.mark.integration
def test_run_in_subprocess_relays_events_and_returns_the_result(job: Job) -> None:
    result, seqs, pids = _in_subprocess(job.spec("preview", plan_path=job.root / "plan.json"))
    assert result.ok and result.plan_sha256 is not None, result.error
    assert seqs == list(range(len(seqs))) and len(seqs) > resources_in(job.config)
    assert len(pids) == 1 and pids[0] != os.getpid()


@pytest.mark.integration
def test_run_in_subprocess_raises_concurrent_update(job: Job) -> None:
    assert job.run("preview")[0].ok
    pulumi_standin.hold_lock(job.backend_url, PROJECT, STACK)
    with pytest.raises(ConcurrentUpdate):
        _in_subprocess(job.spec("up"))


@pytest.mark.integration
def test_sigint_to_the_process_group_cancels_cleanly(job: Job) -> None:
    pulumi_standin.control(job.backend_url, {"operation": "up", "delay_seconds": 1.0})
    started = threading.Event()
    first_step = threading.Event()
    pids: list[int] = []
    outcome: list[OperationResult] = []

    def on_event(seq: int, body: dict[str, Any]) -> None:
        if "resourcePreEvent" in body:
            first_step.set()

    def on_started(pid: int) -> None:
        pids.append(pid)
        started.set()

    spec = job.spec("up")
    thread = threading.Thread(
        target=lambda: outcome.append(runner.run_in_subprocess(spec, on_event, on_started))
    )
    thread.start()
    assert started.wait(60) and first_step.wait(120)
    os.killpg(pids[0], signal.SIGINT)
    thread.join(120)
    assert outcome, "the runner did not return after SIGINT"
    result = outcome[0]
    assert result.cancelled and not result.ok
    assert result.error is not None and result.error.startswith("cancelled:")
    # The CLI stopped between steps, recorded a failed update and released its lock.
    state = job.state()
    assert [h["result"] for h in state["history"]] == ["failed"]
    assert 0 < len(state["resources"]) < resources_in(job.config)
    assert pulumi_standin.running_locks(job.backend_url, PROJECT, STACK) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pids[0], 0)
