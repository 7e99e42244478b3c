"""The request flow on SQLite and PostgreSQL, driven by the real worker loop with a stand-in
operation: preview -> approval bound to (config hash, plan, stack version) -> up of the saved plan;
supersede, self-approval, stale plans, back to preview, destroy, TTL, drift, orphans, cancel,
lock conflicts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hpc_platform.app.portal import flow
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Approval, AuditEntry, Environment, Event, Job, Request, utcnow
from hpc_platform.app.portal.worker import Worker
from tests.portal.conftest import add_user
from tests.portal.fakes import FakeAssessor, FakeOperations, data_dir_settings, dev_config, simple_diff


@pytest.fixture
def ops() -> FakeOperations:
    return FakeOperations()


def make_worker(
    engine: Engine, db_url: str, tmp_path: Path, ops: FakeOperations, **settings: object
) -> Worker:
    config = data_dir_settings(tmp_path / "data", database_url=db_url, backoff_base_seconds=0, **settings)
    return Worker(config, engine, run_operation=ops, current_version=ops.current_version, worker_id="w-test")


@pytest.fixture
def worker(engine: Engine, db_url: str, tmp_path: Path, ops: FakeOperations) -> Worker:
    w = make_worker(engine, db_url, tmp_path, ops)
    w.register()
    return w


def drain(worker: Worker) -> None:
    for _ in range(50):
        if not worker.run_once():
            return
    raise AssertionError("the queue did not drain")


def setup_env(engine: Engine, kind: str = "dev", ttl_hours: int | None = None) -> tuple[Principal, Principal]:
    requester, _ = add_user(engine, "rita", "genomics", "requester")
    approver, _ = add_user(engine, "alan", "genomics", "approver")
    with session_scope(engine) as session:
        flow.create_environment(session, requester, "env-a", "genomics", kind, ttl_hours)
    return requester, approver


def submit(engine: Engine, who: Principal, kind: str = "dev", **extra: object) -> int:
    with session_scope(engine) as session:
        return flow.submit_request(
            session, who, "env-a", dev_config(kind, **extra), FakeAssessor(), simple_diff
        ).id


def state(engine: Engine, request_id: int) -> str:
    with session_scope(engine) as session:
        return session.get_one(Request, request_id).state


def decide(engine: Engine, who: Principal, request_id: int, **kw: object) -> flow.Decision:
    with session_scope(engine) as session:
        return flow.decide(session, who, request_id, "approve", **kw)  # type: ignore[arg-type]


def test_a_dev_request_goes_through_preview_approval_and_up_of_the_saved_plan(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, _ = setup_env(engine)
    rid = submit(engine, requester, qos="a")
    assert state(engine, rid) == "previewing"
    drain(worker)
    assert state(engine, rid) == "awaiting_approval"
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        plan_sha, config_hash = req.plan_sha256, req.config_hash
        assert plan_sha and req.plan is not None
    requester, _ = add_user(engine, "rita", "genomics", "approver")
    assert decide(engine, requester, rid).outcome == "approved"  # dev: the requester may approve
    drain(worker)
    assert ops.calls == [("env-a", "preview"), ("env-a", "up")]
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        env = session.get_one(Environment, req.environment_id)
        approval = session.scalars(select(Approval).where(Approval.request_id == rid)).one()
        assert req.state == "applied"
        assert (approval.config_hash, approval.plan_sha256, approval.stack_version) == (
            config_hash,
            plan_sha,
            None,
        )
        assert (env.status, env.stack_version, env.current_config_hash) == ("ready", 1, config_hash)
        actions = [a.action for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        events = session.scalars(select(Event).order_by(Event.job_id, Event.seq)).all()
    for step in ("request.validated", "request.previewing", "request.awaiting_approval", "request.approved"):
        assert step in actions
    assert actions.index("request.applying") < actions.index("request.applied")
    assert [e.seq for e in events] == [1, 2, 1, 2]


def test_fails_a_staging_approval_by_the_requester_and_takes_another_approvers(
    engine: Engine, worker: Worker
) -> None:
    requester, approver = setup_env(engine, kind="staging")
    with session_scope(engine) as session:  # the requester holds the approver role too
        from hpc_platform.app.portal import auth

        user = session.get_one(auth.User, requester.user_id)
        auth.add_user(session, user.name, "genomics", "approver")
        requester = auth.principal_of(session, user)
    rid = submit(engine, requester, kind="staging")
    drain(worker)
    with pytest.raises(flow.Forbidden, match="other than the requester"):
        decide(engine, requester, rid)
    assert state(engine, rid) == "awaiting_approval"
    assert decide(engine, approver, rid).outcome == "approved"


def test_the_approval_inbox_lists_what_the_caller_may_decide(engine: Engine, worker: Worker) -> None:
    requester, approver = setup_env(engine, kind="staging")
    with session_scope(engine) as session:  # the requester holds the approver role too
        from hpc_platform.app.portal import auth

        user = session.get_one(auth.User, requester.user_id)
        auth.add_user(session, user.name, "genomics", "approver")
        requester = auth.principal_of(session, user)
    outsider, _ = add_user(engine, "olga", "physics", "approver")
    rid = submit(engine, requester, kind="staging")
    drain(worker)
    with session_scope(engine, write=False) as session:
        assert [req.id for req, _ in flow.approval_inbox(session, approver)] == [rid]
        assert flow.approval_inbox(session, requester) == []  # not their own staging request
        assert flow.approval_inbox(session, outsider) == []  # another group's


def test_fails_approval_by_a_requester_without_the_approver_role(engine: Engine, worker: Worker) -> None:
    requester, _ = setup_env(engine, kind="staging")
    rid = submit(engine, requester, kind="staging")
    drain(worker)
    with pytest.raises(flow.Forbidden, match="approver role"):
        decide(engine, requester, rid)


def test_a_newer_request_supersedes_and_the_old_one_cannot_be_approved(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine)
    first = submit(engine, requester, qos="a")
    drain(worker)
    second = submit(engine, requester, qos="b")
    with session_scope(engine) as session:
        old = session.get_one(Request, first)
        assert (old.state, old.superseded_by_id) == ("superseded", second)
    with pytest.raises(flow.Conflict, match=f"superseded by request {second}"):
        decide(engine, approver, first)
    # a queued preview of a superseded request is cancelled, never run
    third = submit(engine, requester, qos="c")
    drain(worker)
    assert state(engine, second) == "superseded" and state(engine, third) == "awaiting_approval"
    with session_scope(engine) as session:
        second_jobs = session.scalars(select(Job.state).where(Job.request_id == second)).all()
    assert second_jobs == ["cancelled"]
    assert ops.calls.count(("env-a", "preview")) == 2


def test_fails_an_approval_of_a_stale_plan_and_changes_nothing(engine: Engine, worker: Worker) -> None:
    requester, approver = setup_env(engine)
    rid = submit(engine, requester)
    drain(worker)
    with pytest.raises(flow.Conflict, match="reviewed plan_sha256"):
        decide(engine, approver, rid, reviewed=flow.Reviewed(plan_sha256="0" * 64))
    with session_scope(engine) as session:
        assert session.get_one(Request, rid).state == "awaiting_approval"
        assert session.scalars(select(Approval)).all() == []


def test_a_request_whose_stack_changed_since_the_preview_goes_back_to_preview(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine)
    first = submit(engine, requester, qos="a")
    drain(worker)
    with session_scope(engine) as session:  # another update moved the stack on
        session.scalars(select(Environment)).one().stack_version = 7
    decision = decide(engine, approver, first)
    assert decision.outcome == "back_to_preview" and "stack changed" in decision.message
    assert state(engine, first) == "previewing"
    ops.versions["env-a"] = 7
    drain(worker)
    with session_scope(engine) as session:
        assert session.get_one(Request, first).plan_stack_version == 7


def test_up_goes_back_to_preview_when_the_backend_stack_moved_after_approval(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine)
    rid = submit(engine, requester)
    drain(worker)
    assert decide(engine, approver, rid).outcome == "approved"
    ops.versions["env-a"] = 3  # someone ran `pulumi up` outside the portal
    drain(worker)
    assert ("env-a", "up") not in ops.calls
    assert state(engine, rid) == "awaiting_approval"  # previewed again, waiting for a new approval
    with session_scope(engine) as session:
        assert session.get_one(Request, rid).plan_stack_version == 3


def test_dev_requests_are_approved_automatically_when_the_setting_says_so(
    engine: Engine, db_url: str, tmp_path: Path, ops: FakeOperations
) -> None:
    requester, _ = setup_env(engine)
    worker = make_worker(engine, db_url, tmp_path, ops, auto_approve_dev=True)
    worker.register()
    rid = submit(engine, requester)
    drain(worker)
    assert state(engine, rid) == "applied"
    with session_scope(engine) as session:
        approval = session.scalars(select(Approval)).one()
        assert approval.approver_id is None and approval.decision == "approve"


def test_destroy_needs_approval_and_clears_the_environment(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine, kind="staging")
    rid = submit(engine, requester, kind="staging")
    drain(worker)
    decide(engine, approver, rid)
    drain(worker)
    with session_scope(engine) as session:
        destroy = flow.submit_destroy(session, requester, "env-a", flow.Policy()).id
    drain(worker)
    assert state(engine, destroy) == "awaiting_approval"
    assert ("env-a", "destroy") not in ops.calls
    with pytest.raises(flow.Forbidden):
        decide(engine, requester, destroy)
    decide(engine, approver, destroy)
    drain(worker)
    with session_scope(engine) as session:
        env = session.scalars(select(Environment)).one()
        assert (env.status, env.current_config) == ("destroyed", None)
    assert state(engine, destroy) == "applied"


def applied(engine: Engine, worker: Worker, requester: Principal, approver: Principal, kind: str) -> None:
    rid = submit(engine, requester, kind=kind)
    drain(worker)
    decide(engine, approver, rid)
    drain(worker)
    assert state(engine, rid) == "applied"


def destroy(engine: Engine, who: Principal, policy: flow.Policy | None = None) -> int:
    with session_scope(engine) as session:
        return flow.submit_destroy(session, who, "env-a", policy or flow.Policy()).id


def test_a_destroy_is_previewed_and_approved_against_what_it_deletes(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine, kind="staging")
    applied(engine, worker, requester, approver, "staging")
    requester, _ = add_user(engine, "rita", "genomics", "approver")  # she approves too, not her own
    rid = destroy(engine, requester)
    assert state(engine, rid) == "previewing"
    drain(worker)
    assert ops.calls[-1] == ("env-a", "destroy --preview-only")
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        env = session.get_one(Environment, req.environment_id)
        assert req.state == "awaiting_approval"
        # What the approver sees: the destroy preview's change counts, bound with the stack version.
        assert req.preview_summary == {"delete": 3}
        assert (req.plan_sha256, req.plan_stack_version) == (None, 1)
        assert req.config_hash == env.current_config_hash
        preview_job = session.scalars(select(Job).where(Job.request_id == rid)).one()
        assert (preview_job.operation, preview_job.state) == ("preview", "succeeded")
        current = env.current_config
    # The destroy preview runs against the deployed config (the runner validates it again).
    assert ops.specs[-1].config == current and ops.specs[-1].preview_only_destroy
    with pytest.raises(flow.Forbidden, match="other than the requester"):
        decide(engine, requester, rid)
    stale = flow.Reviewed(summary_sha256=flow.summary_sha256({"delete": 1}))
    with pytest.raises(flow.Conflict, match="reviewed summary_sha256"):
        decide(engine, approver, rid, reviewed=stale)
    reviewed = flow.Reviewed(summary_sha256=flow.summary_sha256({"delete": 3}), stack_version=1)
    assert decide(engine, approver, rid, reviewed=reviewed).outcome == "approved"
    drain(worker)
    assert ops.calls[-1] == ("env-a", "destroy")
    assert ops.specs[-1].config == current and not ops.specs[-1].preview_only_destroy
    with session_scope(engine) as session:
        approval = session.scalars(select(Approval).where(Approval.request_id == rid)).one()
        assert (approval.preview_summary, approval.stack_version) == ({"delete": 3}, 1)
        assert session.scalars(select(Environment.status)).one() == "destroyed"
    assert state(engine, rid) == "applied"


def test_a_destroy_whose_stack_changed_since_its_preview_goes_back_to_preview(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine, kind="staging")
    applied(engine, worker, requester, approver, "staging")
    rid = destroy(engine, requester)
    drain(worker)
    with session_scope(engine) as session:  # another update moved the stack on
        session.scalars(select(Environment)).one().stack_version = 7
    decision = decide(engine, approver, rid)
    assert decision.outcome == "back_to_preview" and "stack changed" in decision.message
    assert state(engine, rid) == "previewing"
    ops.versions["env-a"] = 7
    drain(worker)
    assert ops.calls.count(("env-a", "destroy --preview-only")) == 2
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        assert (req.state, req.plan_stack_version, req.preview_summary) == (
            "awaiting_approval",
            7,
            {"delete": 3},
        )
    # Approved, then the backend's stack moves before the destroy runs: previewed again, not run.
    assert decide(engine, approver, rid).outcome == "approved"
    ops.versions["env-a"] = 8
    drain(worker)
    assert ("env-a", "destroy") not in ops.calls
    assert ops.calls.count(("env-a", "destroy --preview-only")) == 3
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        assert (req.state, req.plan_stack_version) == ("awaiting_approval", 8)
        assert session.scalars(select(Environment.status)).one() == "ready"


def test_a_destroy_fails_instead_of_running_when_the_deployed_config_changed_meanwhile(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine, kind="staging")
    applied(engine, worker, requester, approver, "staging")
    rid = destroy(engine, requester)
    with session_scope(engine) as session:  # deployed by some other path while the preview waited
        session.scalars(select(Environment)).one().current_config_hash = "f" * 64
    calls = len(ops.calls)
    drain(worker)
    assert len(ops.calls) == calls
    with session_scope(engine) as session:
        req = session.get_one(Request, rid)
        assert req.state == "failed" and req.error and "deployed config changed" in req.error


def test_a_dev_destroy_is_approved_automatically_after_its_preview(
    engine: Engine, db_url: str, tmp_path: Path, ops: FakeOperations
) -> None:
    requester, _ = setup_env(engine)
    worker = make_worker(engine, db_url, tmp_path, ops, auto_approve_dev=True)
    worker.register()
    submit(engine, requester)
    drain(worker)
    rid = destroy(engine, requester, flow.Policy(auto_approve_dev=True))
    assert state(engine, rid) == "previewing"  # not approved before anyone knows what it deletes
    drain(worker)
    assert ops.calls[-2:] == [("env-a", "destroy --preview-only"), ("env-a", "destroy")]
    assert state(engine, rid) == "applied"
    with session_scope(engine) as session:
        approval = session.scalars(select(Approval).where(Approval.request_id == rid)).one()
        assert approval.approver_id is None and approval.preview_summary == {"delete": 3}


def test_a_dev_environment_past_its_ttl_is_destroyed_on_schedule(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine, ttl_hours=2)
    rid = submit(engine, requester)
    drain(worker)
    decide(engine, approver, rid)
    drain(worker)
    with session_scope(engine) as session:
        env = session.scalars(select(Environment)).one()
        assert env.ttl_expires_at is not None and env.ttl_expires_at > utcnow() + timedelta(hours=1)
        assert flow.expire_ttls(session, flow.Policy(), now=utcnow() + timedelta(hours=1)) == []
        created = flow.expire_ttls(session, flow.Policy(), now=utcnow() + timedelta(hours=3))
        assert [r.action for r in created] == ["destroy"]
    drain(worker)
    assert ops.calls[-1] == ("env-a", "destroy")
    with session_scope(engine) as session:
        assert session.scalars(select(Environment.status)).one() == "destroyed"
        assert session.scalars(select(AuditEntry).where(AuditEntry.actor == flow.SYSTEM_TTL)).first()


def test_drift_checks_run_on_schedule_preview_only_and_are_recorded(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine)
    rid = submit(engine, requester)
    drain(worker)
    decide(engine, approver, rid)
    drain(worker)
    with session_scope(engine) as session:
        jobs = flow.schedule_drift_checks(session, interval_seconds=3600)
        assert [(j.operation, j.preview_only) for j in jobs] == [("refresh", True)]
        assert flow.schedule_drift_checks(session, interval_seconds=3600) == []  # one pending is enough
    drain(worker)
    with session_scope(engine) as session:
        env = session.scalars(select(Environment)).one()
        assert env.drift is not None and env.drift["drifted"] and env.drift["changes"] == {"update": 1}
        assert flow.schedule_drift_checks(session, interval_seconds=3600) == []  # checked just now


def test_an_orphaned_apply_is_not_retried_and_an_admin_resolves_it(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, approver = setup_env(engine)
    admin, _ = add_user(engine, "ada", "genomics", "admin")
    rid = submit(engine, requester)
    drain(worker)
    decide(engine, approver, rid)
    with session_scope(engine) as session:  # a worker that claimed the up, then died
        job = session.scalars(select(Job).where(Job.operation == "up")).one()
        job.state, job.worker_id, job.heartbeat_at = "running", "dead", utcnow() - timedelta(minutes=5)
        up_id = job.id
    drain(worker)
    assert ("env-a", "up") not in ops.calls
    with session_scope(engine) as session:
        assert session.get_one(Job, up_id).state == "orphaned"
        assert session.get_one(Request, rid).state == "failed"
    with pytest.raises(flow.Forbidden), session_scope(engine) as session:
        flow.resolve_orphan(session, approver, up_id)
    with session_scope(engine) as session:
        assert flow.resolve_orphan(session, admin, up_id, "stack checked").state == "failed"


def test_a_lock_conflict_requeues_with_backoff_then_runs(
    engine: Engine, worker: Worker, ops: FakeOperations
) -> None:
    requester, _ = setup_env(engine)
    ops.locked = 2
    rid = submit(engine, requester)
    drain(worker)
    assert state(engine, rid) == "awaiting_approval"
    with session_scope(engine) as session:
        job = session.scalars(select(Job)).one()
        assert (job.state, job.attempts) == ("succeeded", 2)


def test_cancel_of_a_queued_run_and_of_an_open_request(engine: Engine, worker: Worker) -> None:
    requester, _ = setup_env(engine)
    other, _ = add_user(engine, "olga", "physics", "admin")
    rid = submit(engine, requester)
    with session_scope(engine) as session:
        job_id = session.scalars(select(Job.id)).one()
    with pytest.raises(flow.NotFound), session_scope(engine) as session:
        flow.cancel_job(session, other, job_id)  # another group's run does not exist for them
    with session_scope(engine) as session:
        assert flow.cancel_job(session, requester, job_id).state == "cancelled"
    assert state(engine, rid) == "cancelled"
    rid2 = submit(engine, requester)
    drain(worker)
    with session_scope(engine) as session:
        assert flow.cancel_request(session, requester, rid2).state == "cancelled"
    with pytest.raises(flow.Conflict), session_scope(engine) as session:
        flow.cancel_request(session, requester, rid2)


def test_fails_names_with_path_separators_dots_or_metacharacters(engine: Engine) -> None:
    requester, _ = add_user(engine, "rita", "genomics", "requester")
    for name in ("../etc", "a/b", "a\\b", "..", "x'; DROP TABLE jobs;--", "$(rm -rf ~)", "Upper", "a b", ""):
        with pytest.raises(flow.Invalid) as info, session_scope(engine) as session:
            flow.create_environment(session, requester, name, "genomics", "dev")
        assert info.value.problems[0]["key"] == "name"
    with session_scope(engine) as session:
        assert session.scalars(select(Environment)).all() == []


def test_environments_requests_and_runs_share_one_authorization_rule(engine: Engine) -> None:
    """Another group's object is NotFound (as a missing one is), a member without the role gets
    Forbidden, for an environment and for the requests and runs in it alike."""
    requester, _ = setup_env(engine)
    outsider, _ = add_user(engine, "olga", "physics", "admin")
    rid = submit(engine, requester)
    with session_scope(engine) as session:
        job_id = session.scalars(select(Job.id)).one()
    lookups = (
        (flow.environment_for, "env-a", "missing-env", "no environment named"),
        (flow.request_for, rid, rid + 100, "no request"),
        (flow.job_for, job_id, job_id + 100, "no run"),
    )
    for lookup, key, missing, not_found in lookups:
        with session_scope(engine, write=False) as session:
            assert lookup(session, requester, key) is not None  # type: ignore[operator]
            for who, wanted in ((outsider, key), (requester, missing)):
                with pytest.raises(flow.NotFound) as info:
                    lookup(session, who, wanted)  # type: ignore[operator]
                assert info.value.http_status == 404 and info.value.message.startswith(not_found)
            with pytest.raises(flow.Forbidden) as refused:
                lookup(session, requester, key, role="approver")  # type: ignore[operator]
            assert refused.value.http_status == 403
            assert refused.value.message.startswith("approver role in group 'genomics' needed")


def test_the_reads_show_only_the_callers_environment_and_refuse_another_groups(
    engine: Engine, worker: Worker
) -> None:
    requester, _ = setup_env(engine)
    outsider, _ = add_user(engine, "olga", "physics", "admin")
    with session_scope(engine) as session:
        flow.create_environment(session, outsider, "env-b", "physics", "dev")
        theirs = flow.submit_request(session, outsider, "env-b", dev_config(), FakeAssessor(), simple_diff).id
    first, second = submit(engine, requester), submit(engine, requester)
    drain(worker)
    with session_scope(engine, write=False) as session:
        requests = flow.environment_requests(session, requester, "env-a")
        assert [r.id for r in requests] == [first, second]
        runs = flow.environment_runs(session, requester, "env-a")
        assert runs and {j.request_id for j in runs} == {first, second}
        audit = flow.environment_audit(session, requester, "env-a")
        assert audit and {e.actor for e in audit} <= {"rita", flow.SYSTEM_WORKER}
        env_detail = flow.environment_detail(session, requester, "env-a")
        assert env_detail.environment.name == "env-a"
        assert (env_detail.requests, env_detail.runs) == (requests, runs)
        detail = flow.request_detail(session, requester, second)
        assert detail.environment.name == "env-a" and detail.runs
        assert {j.request_id for j in detail.runs} == {second}
        [overview] = flow.environment_overviews(session, requester)
        assert overview.environment.name == "env-a" and overview.last_run == runs[-1]
        assert overview.latest is not None and overview.latest.id == second
        assert flow.user_names(session, [requester.user_id, None]) == {requester.user_id: "rita"}
        for read, key in (
            (flow.environment_requests, "env-b"),
            (flow.environment_runs, "env-b"),
            (flow.environment_audit, "env-b"),
            (flow.environment_detail, "env-b"),
            (flow.request_detail, theirs),
        ):
            with pytest.raises(flow.NotFound):
                read(session, requester, key)  # type: ignore[operator]
