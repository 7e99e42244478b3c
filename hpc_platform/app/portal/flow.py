"""The request state machine: what a caller may do to environments, requests and jobs, and what a
finished job does to its request. The JSON API and the pages both call these functions, each inside
one transaction (`db.session_scope`), so both get the same authorization, validation and audit.

    validated -> previewing -> awaiting_approval -> approved -> applying -> applied
                 (any open state) -> superseded | cancelled;  previewing/applying -> failed;
                 awaiting_approval -> rejected

An approval is bound to what was reviewed: the config hash, the saved plan's SHA-256, the
preview's change summary and the stack's last update version at preview time. `up` applies that
saved plan; if the stack moved on since the preview (another update, or someone outside the
portal), the request goes back to preview instead of applying. A destroy goes the same way: its
preview job runs `destroy --preview-only` against the deployed config, and since the SDK cannot
save a plan for a destroy, its approval is bound to the config hash, the stack version and what
the preview said it would delete (`preview_summary`).

Errors are `FlowError`s carrying an HTTP-style status, so every caller maps them the same way:
`NotFound` (404: also for another group's environment, whose existence is not revealed),
`Forbidden` (403: a member without the role, or approving one's own staging/prod request),
`Conflict` (409: wrong state, superseded, stale plan) and `Invalid` (422: one problem per key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpc_platform.app.portal import audit, queue
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.models import (
    ENVIRONMENT_NAME,
    ENVIRONMENT_NAME_RULE,
    GROUP_NAME,
    KINDS,
    OPEN_REQUEST_STATES,
    Approval,
    AuditEntry,
    Environment,
    Job,
    Request,
    User,
    utcnow,
)
from hpc_platform.domain.config.keys import stack_key

MAX_TTL_HOURS = 24 * 30
SYSTEM_AUTO_APPROVE = "system:auto-approve-dev"
SYSTEM_TTL = "system:ttl"
SYSTEM_DRIFT = "system:drift"
SYSTEM_WORKER = "system:worker"
# Environments whose approvals need a second person: anything but dev.
SELF_APPROVAL_ALLOWED = ("dev",)


# --- errors -------------------------------------------------------------------------------------
class FlowError(Exception):
    http_status = 400

    def __init__(self, message: str, problems: Sequence[Mapping[str, str]] = ()):
        super().__init__(message)
        self.message = message
        self.problems = [dict(p) for p in problems]


class NotFound(FlowError):
    http_status = 404


class Forbidden(FlowError):
    http_status = 403


class Conflict(FlowError):
    http_status = 409


class Invalid(FlowError):
    http_status = 422


def problem(key: str, message: str) -> dict[str, str]:
    return {"key": key, "message": message}


# --- what the flow needs from the assessor and the runner (structural: assess.py, runner.py) ----
class AssessmentLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class Assessing(Protocol):
    def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> AssessmentLike: ...


class Outcome(Protocol):
    """A finished operation (runner.OperationResult)."""

    @property
    def ok(self) -> bool: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    @property
    def outputs(self) -> dict[str, Any]: ...
    @property
    def stack_version(self) -> int | None: ...
    @property
    def plan_sha256(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


ConfigDiff = Callable[[Mapping[str, Any] | None, Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Policy:
    """The settings the flow reads (a subset of PortalSettings, so tests can pass their own)."""

    auto_approve_dev: bool = False


# --- helpers ------------------------------------------------------------------------------------
def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a `config:` map (key order and spacing do not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def summary_sha256(summary: Mapping[str, Any] | None) -> str | None:
    """What an approver sends back to say which preview summary they reviewed (None: no preview
    has finished yet)."""
    return None if summary is None else config_hash(summary)


def check_environment_name(name: str, key: str = "name") -> None:
    if not isinstance(name, str) or not ENVIRONMENT_NAME.fullmatch(name):
        raise Invalid(
            "invalid environment name",
            [
                problem(
                    key, f"{str(name)[:60]!r} is not a valid environment name; use {ENVIRONMENT_NAME_RULE}"
                )
            ],
        )


def _actor(principal: Principal) -> str:
    return principal.name


def _environment(session: Session, name: str, *, lock: bool = False) -> Environment | None:
    query = select(Environment).where(Environment.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _authorized(
    principal: Principal, env: Environment | None, role: str, missing: str, forbidden_suffix: str = ""
) -> Environment:
    """The one authorization rule for an environment and everything in it (its requests, runs,
    audit): `env` if the caller has `role` in its group. An object of a group the caller is not in
    is `NotFound` with `missing` (its existence is not revealed); a member without the role gets
    `Forbidden`."""
    if env is None or principal.role_in(env.group_name) is None:
        raise NotFound(missing)
    if not principal.has(role, env.group_name):
        raise Forbidden(f"{role} role in group {env.group_name!r} needed{forbidden_suffix}")
    return env


def environment_for(
    session: Session, principal: Principal, name: str, role: str = "requester"
) -> Environment:
    """The environment if the caller may act on it with `role` (`_authorized`)."""
    check_environment_name(name)
    return _authorized(
        principal,
        _environment(session, name),
        role,
        f"no environment named {name!r}",
        f" for environment {name!r}",
    )


def request_for(session: Session, principal: Principal, request_id: int, role: str = "requester") -> Request:
    """The request if the caller may act on its environment with `role` (`_authorized`)."""
    req = session.get(Request, request_id)
    env = session.get(Environment, req.environment_id) if req is not None else None
    _authorized(principal, env, role, f"no request {request_id}")
    assert req is not None  # no request, no environment: `_authorized` raised
    return req


def job_for(session: Session, principal: Principal, job_id: int, role: str = "requester") -> Job:
    """The run if the caller may act on its environment with `role` (`_authorized`)."""
    job = session.get(Job, job_id)
    env = session.get(Environment, job.environment_id) if job is not None else None
    _authorized(principal, env, role, f"no run {job_id}")
    assert job is not None  # no run, no environment: `_authorized` raised
    return job


def visible_environments(session: Session, principal: Principal) -> list[Environment]:
    if not principal.groups:
        return []
    query = select(Environment).where(Environment.group_name.in_(principal.groups)).order_by(Environment.name)
    return list(session.scalars(query))


def approval_inbox(session: Session, principal: Principal) -> list[tuple[Request, Environment]]:
    """Requests awaiting approval that the caller may decide (`decision_rights`): in groups where
    they are an approver, and not their own staging or prod ones."""
    groups = [g for g in principal.groups if principal.has("approver", g)]
    if not groups:
        return []
    rows = session.execute(
        select(Request, Environment)
        .join(Environment, Environment.id == Request.environment_id)
        .where(Request.state == "awaiting_approval", Environment.group_name.in_(groups))
        .order_by(Request.id)
    )
    return [(req, env) for req, env in rows if decision_rights(principal, req, env).may_decide]


# --- what the API and the pages show (each read authorizes the caller as the actions do) --------
def _requests_of(session: Session, env: Environment) -> list[Request]:
    return list(session.scalars(select(Request).where(Request.environment_id == env.id).order_by(Request.id)))


def _runs_of(session: Session, env: Environment) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.environment_id == env.id).order_by(Job.id)))


def environment_requests(session: Session, principal: Principal, name: str) -> list[Request]:
    """The environment's requests, oldest first."""
    return _requests_of(session, environment_for(session, principal, name))


def environment_runs(session: Session, principal: Principal, name: str) -> list[Job]:
    """The environment's runs (jobs), oldest first."""
    return _runs_of(session, environment_for(session, principal, name))


@dataclass(frozen=True)
class EnvironmentDetail:
    """An environment with what its page shows with it, the caller authorized once."""

    environment: Environment
    requests: list[Request]
    """Oldest first."""
    runs: list[Job]
    """Oldest first."""


def environment_detail(session: Session, principal: Principal, name: str) -> EnvironmentDetail:
    env = environment_for(session, principal, name)
    return EnvironmentDetail(env, _requests_of(session, env), _runs_of(session, env))


def environment_audit(session: Session, principal: Principal, name: str) -> list[AuditEntry]:
    """The environment's audit log, oldest first."""
    env = environment_for(session, principal, name)
    query = select(AuditEntry).where(AuditEntry.environment_id == env.id).order_by(AuditEntry.id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class RequestDetail:
    """A request with what its page and the API show with it."""

    request: Request
    environment: Environment
    approvals: list[Approval]
    """Oldest first."""
    runs: list[Job]
    """Oldest first."""
    rights: DecisionRights
    """Whether the caller may approve or reject it now."""


def request_detail(session: Session, principal: Principal, request_id: int) -> RequestDetail:
    req = request_for(session, principal, request_id)
    env = session.get(Environment, req.environment_id)
    assert env is not None  # request_for found it
    approvals = session.scalars(select(Approval).where(Approval.request_id == req.id).order_by(Approval.id))
    runs = session.scalars(select(Job).where(Job.request_id == req.id).order_by(Job.id))
    return RequestDetail(req, env, list(approvals), list(runs), decision_rights(principal, req, env))


@dataclass(frozen=True)
class EnvironmentOverview:
    """One row of the environment list."""

    environment: Environment
    last_run: Job | None
    deployed: Request | None
    """The newest applied request that has an assessment."""
    latest: Request | None
    """The newest request that has an assessment."""


def environment_overviews(session: Session, principal: Principal) -> list[EnvironmentOverview]:
    """The caller's environments (`visible_environments`) with their last run and assessed requests."""
    rows = []
    for env in visible_environments(session, principal):
        last = session.scalars(
            select(Job).where(Job.environment_id == env.id).order_by(Job.id.desc()).limit(1)
        ).first()
        assessed = list(
            session.scalars(
                select(Request)
                .where(Request.environment_id == env.id, Request.assessment.is_not(None))
                .order_by(Request.id.desc())
            )
        )
        deployed = next((r for r in assessed if r.state == "applied"), None)
        rows.append(EnvironmentOverview(env, last, deployed, assessed[0] if assessed else None))
    return rows


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the given users (requesters, approvers, owners of what the caller may see);
    nobody else's."""
    wanted = {uid for uid in user_ids if uid is not None}
    if not wanted:
        return {}
    return {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _set_state(session: Session, req: Request, state: str, actor: str, **detail: Any) -> None:
    before = req.state
    req.state = state
    req.updated_at = utcnow()
    audit.record(session, actor, f"request.{state}", req, {"from": before, **detail})


def _cancel_jobs_of(session: Session, req: Request, actor: str) -> None:
    """Queued jobs of the request are cancelled; a running one is asked to stop (its worker
    interrupts the runner)."""
    for job in session.scalars(
        select(Job).where(Job.request_id == req.id, Job.state.in_(("queued", "running")))
    ):
        if job.state == "queued":
            job.state = "cancelled"
            job.finished_at = utcnow()
            audit.record(session, actor, "job.cancelled", job)
        elif job.cancel_requested_at is None:
            job.cancel_requested_at = utcnow()
            audit.record(session, actor, "job.cancel_requested", job)


def _supersede_open(session: Session, env: Environment, newer: Request, actor: str) -> None:
    query = select(Request).where(
        Request.environment_id == env.id, Request.id != newer.id, Request.state.in_(OPEN_REQUEST_STATES)
    )
    for old in session.scalars(query):
        old.superseded_by_id = newer.id
        _set_state(session, old, "superseded", actor, by=newer.id)
        _cancel_jobs_of(session, old, actor)


def _enqueue(
    session: Session, env: Environment, operation: str, actor: str, req: Request | None = None
) -> Job:
    job = queue.enqueue(session, env, operation, created_by=actor, request_id=req.id if req else None)
    audit.record(session, actor, "job.queued", job, {"operation": operation, "request": job.request_id})
    return job


# --- environments -------------------------------------------------------------------------------
def create_environment(
    session: Session, principal: Principal, name: str, group: str, kind: str, ttl_hours: int | None = None
) -> Environment:
    problems = []
    if not isinstance(name, str) or not ENVIRONMENT_NAME.fullmatch(name):
        problems.append(
            problem(
                "name", f"{str(name)[:60]!r} is not a valid environment name; use {ENVIRONMENT_NAME_RULE}"
            )
        )
    if not isinstance(group, str) or not GROUP_NAME.fullmatch(group):
        problems.append(problem("group", f"{str(group)[:60]!r} is not a valid group name"))
    if kind not in KINDS:
        problems.append(problem("kind", f"{str(kind)[:20]!r} is not a kind; use one of {', '.join(KINDS)}"))
    if ttl_hours is not None:
        if kind != "dev":
            problems.append(problem("ttl_hours", "only dev environments have a time-to-live; leave it out"))
        elif not 1 <= ttl_hours <= MAX_TTL_HOURS:
            problems.append(
                problem("ttl_hours", f"{ttl_hours} is out of range; use 1 to {MAX_TTL_HOURS} hours")
            )
    if problems:
        raise Invalid("invalid environment", problems)
    if not principal.has("requester", group):
        raise Forbidden(f"requester role in group {group!r} needed to create an environment there")
    if _environment(session, name) is not None:
        raise Conflict(f"an environment named {name!r} exists already")
    env = Environment(name=name, group_name=group, kind=kind, owner_id=principal.user_id, ttl_hours=ttl_hours)
    session.add(env)
    session.flush()
    audit.record(
        session, _actor(principal), "environment.created", env, {"kind": kind, "ttl_hours": ttl_hours}
    )
    return env


# --- requests -----------------------------------------------------------------------------------
def assess_submission(
    session: Session, principal: Principal, env_name: str, config: Mapping[str, Any], assessor: Assessing
) -> AssessmentLike:
    """The read-only half of a submission: may the caller submit here, does the config name the
    environment's kind, and the assessment (a bad config raises `Invalid` or the assessor's
    `InvalidConfig`, one problem per key). An offline plan takes seconds, so callers run this in a
    read transaction and pass its result to `submit_request`: on SQLite a write transaction holds
    the database's only write lock, which workers need for claims and heartbeats."""
    env = environment_for(session, principal, env_name)
    declared = config.get(stack_key("environment"))
    if declared != env.kind:
        raise Invalid(
            "config does not match the environment",
            [
                problem(
                    stack_key("environment"),
                    f"{declared!r} does not match environment {env.name!r}, which is {env.kind}; "
                    f"set {stack_key('environment')}: {env.kind}",
                )
            ],
        )
    return assessor.assess(env.name, config, env.kind)


def submit_request(
    session: Session,
    principal: Principal,
    env_name: str,
    config: Mapping[str, Any],
    assessor: Assessing,
    diff: ConfigDiff,
    *,
    assessment: AssessmentLike | None = None,
) -> Request:
    """A create or update request: the config is assessed first (`assess_submission`, or its
    result for this same config given as `assessment`; a bad config stores nothing), then stored
    with its diff, older open requests are superseded and the preview is queued."""
    if assessment is None:
        assessment = assess_submission(session, principal, env_name, config, assessor)
    env = environment_for(session, principal, env_name)
    env = _environment(session, env_name, lock=True) or env
    action = "create" if env.current_config is None else "update"
    changes = diff(env.current_config, config)
    req = Request(
        environment_id=env.id,
        action=action,
        state="validated",
        config=dict(config),
        config_hash=config_hash(config),
        diff={"changes": changes},
        assessment=assessment.to_json(),
        requested_by=principal.user_id,
    )
    session.add(req)
    session.flush()
    actor = _actor(principal)
    audit.record(session, actor, "request.validated", req, {"action": action, "config_hash": req.config_hash})
    _supersede_open(session, env, req, actor)
    _set_state(session, req, "previewing", actor)
    _enqueue(session, env, "preview", actor, req)
    return req


def submit_destroy(session: Session, principal: Principal, env_name: str, policy: Policy) -> Request:
    """A destroy request: previewed (`destroy --preview-only`), then approved like any other."""
    env = environment_for(session, principal, env_name)
    env = _environment(session, env_name, lock=True) or env
    if env.status != "ready":
        raise Conflict(f"environment {env.name!r} has nothing deployed to destroy (status {env.status})")
    return _destroy_request(session, env, principal.user_id, _actor(principal), policy, auto=False)


def _destroy_request(
    session: Session,
    env: Environment,
    user_id: int,
    actor: str,
    policy: Policy,
    *,
    auto: bool,
    reason: str = "",
) -> Request:
    req = Request(
        environment_id=env.id, action="destroy", state="validated", config=None, requested_by=user_id
    )
    _bind_destroy(req, env)
    session.add(req)
    session.flush()
    audit.record(session, actor, "request.validated", req, {"action": "destroy", "reason": reason or None})
    _supersede_open(session, env, req, actor)
    if auto:
        # The time-to-live's destroy: nobody reviews it, so it is approved at once, bound to the
        # stack version (the worker checks it again right before the destroy).
        req.plan_stack_version = env.stack_version
        _set_state(session, req, "awaiting_approval", actor)
        _approve(session, req, env, None, actor, reason)
        return req
    # The approver sees what would be deleted: the destroy preview's summary. The dev auto-approval
    # (policy) applies once that preview has finished, as for any other request.
    _set_state(session, req, "previewing", actor)
    _enqueue(session, env, "preview", actor, req)
    return req


def _bind_destroy(req: Request, env: Environment) -> None:
    """A destroy removes what is deployed: bind it to the environment's current config."""
    req.config_hash = env.current_config_hash
    req.diff = {
        "changes": [
            {"key": key, "old": value, "new": None} for key, value in (env.current_config or {}).items()
        ]
    }


def _maybe_auto_approve(session: Session, req: Request, env: Environment, policy: Policy) -> None:
    if policy.auto_approve_dev and env.kind == "dev":
        _approve(session, req, env, None, SYSTEM_AUTO_APPROVE, "dev environments are approved automatically")


def _approve(
    session: Session, req: Request, env: Environment, approver_id: int | None, actor: str, comment: str | None
) -> None:
    session.add(
        Approval(
            request_id=req.id,
            approver_id=approver_id,
            decision="approve",
            comment=comment,
            config_hash=req.config_hash,
            plan_sha256=req.plan_sha256,
            stack_version=req.plan_stack_version,
            preview_summary=req.preview_summary,
        )
    )
    _set_state(
        session,
        req,
        "approved",
        actor,
        config_hash=req.config_hash,
        plan_sha256=req.plan_sha256,
        stack_version=req.plan_stack_version,
        preview_summary=req.preview_summary,
    )
    _enqueue(session, env, _operation_of(req), actor, req)


@dataclass(frozen=True)
class DecisionRights:
    """Whether the caller may approve or reject a request now, and if not, why: what `decide`
    enforces is what the request page and the API offer and the approval inbox lists."""

    refusal: FlowError | None
    """What `decide` raises for this caller and request; None: they may decide."""
    why_not: str = ""
    """What the request page shows in place of the decision: empty when the caller may decide, or
    when the request is not awaiting approval (its state says why)."""

    @property
    def may_decide(self) -> bool:
        return self.refusal is None


def decision_rights(principal: Principal, req: Request, env: Environment) -> DecisionRights:
    """The one rule for deciding a request: an approver of its environment's group, while it awaits
    approval, and not the requester unless the environment's kind allows self-approval."""
    awaiting = req.state == "awaiting_approval"
    try:
        _authorized(principal, env, "approver", f"no request {req.id}")
    except NotFound as hidden:
        return DecisionRights(hidden)  # another group's request: nothing about it is shown
    except Forbidden as refused:
        waiting = f"waiting for an approver of group {env.group_name}"
        return DecisionRights(refused, waiting if awaiting else "")
    if req.state == "superseded":
        return DecisionRights(
            Conflict(f"request {req.id} was superseded by request {req.superseded_by_id}; review that one")
        )
    if not awaiting:
        return DecisionRights(Conflict(f"request {req.id} is {req.state}, not awaiting approval"))
    if env.kind not in SELF_APPROVAL_ALLOWED and req.requested_by == principal.user_id:
        own = Forbidden(f"{env.kind} requests need an approver other than the requester")
        return DecisionRights(own, own.message)
    return DecisionRights(None)


@dataclass(frozen=True)
class Reviewed:
    """What the approver looked at; when given, it must still be what the request holds."""

    config_hash: str | None = None
    plan_sha256: str | None = None
    stack_version: int | None = None
    summary_sha256: str | None = None
    """`summary_sha256(preview_summary)` of the preview reviewed (a destroy has no plan to name)."""


@dataclass(frozen=True)
class Decision:
    request: Request
    outcome: str
    """approved | rejected | back_to_preview (the stack changed since the preview: nothing was
    approved, the request is being previewed again; callers answer 409 with `message`)."""
    message: str


def decide(
    session: Session,
    principal: Principal,
    request_id: int,
    decision: str,
    comment: str | None = None,
    reviewed: Reviewed | None = None,
) -> Decision:
    """Approve or reject a request awaiting approval."""
    if decision not in ("approve", "reject"):
        raise Invalid("invalid decision", [problem("decision", f"{decision!r}: use approve or reject")])
    req = request_for(session, principal, request_id)
    env = session.get(Environment, req.environment_id)
    assert env is not None
    refusal = decision_rights(principal, req, env).refusal
    if refusal is not None:
        raise refusal
    actor = _actor(principal)
    if reviewed is not None:
        stale = [
            name
            for name, given, held in (
                ("config_hash", reviewed.config_hash, req.config_hash),
                ("plan_sha256", reviewed.plan_sha256, req.plan_sha256),
                ("stack_version", reviewed.stack_version, req.plan_stack_version),
                ("summary_sha256", reviewed.summary_sha256, summary_sha256(req.preview_summary)),
            )
            if given is not None and given != held
        ]
        if stale:
            raise Conflict(
                f"request {req.id}: the reviewed {', '.join(stale)} is not the request's current one; "
                "reload the request and review its plan again"
            )
    if env.stack_version != req.plan_stack_version:
        # The stack moved on since the preview: that plan no longer describes the change.
        message = (
            f"request {req.id}: the stack changed since the preview (version {req.plan_stack_version}, "
            f"now {env.stack_version}); it went back to preview, review the new plan"
        )
        _back_to_preview(session, req, env, actor, message)
        return Decision(req, "back_to_preview", message)
    if decision == "reject":
        session.add(
            Approval(
                request_id=req.id,
                approver_id=principal.user_id,
                decision="reject",
                comment=comment,
                config_hash=req.config_hash,
                plan_sha256=req.plan_sha256,
                stack_version=req.plan_stack_version,
                preview_summary=req.preview_summary,
            )
        )
        _set_state(session, req, "rejected", actor, comment=comment)
        return Decision(req, "rejected", f"request {req.id} rejected")
    _approve(session, req, env, principal.user_id, actor, comment)
    return Decision(req, "approved", f"request {req.id} approved; its {_operation_of(req)} is queued")


def _operation_of(req: Request) -> str:
    return "destroy" if req.action == "destroy" else "up"


def _back_to_preview(session: Session, req: Request, env: Environment, actor: str, why: str) -> None:
    req.plan_sha256 = None
    req.plan_path = None
    req.plan = None
    req.preview_summary = None
    req.plan_stack_version = None
    if req.action == "destroy":
        _bind_destroy(req, env)
    _set_state(session, req, "previewing", actor, reason=why)
    _enqueue(session, env, "preview", actor, req)


def cancel_request(session: Session, principal: Principal, request_id: int) -> Request:
    req = request_for(session, principal, request_id)
    if req.state not in (*OPEN_REQUEST_STATES, "applying"):
        raise Conflict(f"request {req.id} is {req.state}; only an open request can be cancelled")
    actor = _actor(principal)
    if req.state == "applying":
        # The apply is running: ask its worker to interrupt it; the request ends when the job does.
        _cancel_jobs_of(session, req, actor)
        return req
    _cancel_jobs_of(session, req, actor)
    _set_state(session, req, "cancelled", actor)
    return req


# --- jobs ---------------------------------------------------------------------------------------
def cancel_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = job_for(session, principal, job_id)
    actor = _actor(principal)
    if job.state == "queued":
        job.state = "cancelled"
        job.finished_at = utcnow()
        audit.record(session, actor, "job.cancelled", job)
        req = session.get(Request, job.request_id) if job.request_id else None
        if req is not None and req.state in (*OPEN_REQUEST_STATES, "applying"):
            _set_state(session, req, "cancelled", actor, job=job.id)
    elif job.state == "running":
        if job.cancel_requested_at is None:
            job.cancel_requested_at = utcnow()
            audit.record(session, actor, "job.cancel_requested", job)
    else:
        raise Conflict(f"run {job.id} is {job.state}; only a queued or running run can be cancelled")
    return job


def resolve_orphan(session: Session, principal: Principal, job_id: int, note: str | None = None) -> Job:
    """An admin, having checked the stack, marks an orphaned job failed; its stack runs again."""
    job = job_for(session, principal, job_id, role="admin")
    if job.state != "orphaned":
        raise Conflict(f"run {job.id} is {job.state}, not orphaned")
    job.state = "failed"
    job.error = (job.error or "orphaned") + f"; resolved by {principal.name}" + (f": {note}" if note else "")
    job.finished_at = job.finished_at or utcnow()
    audit.record(session, _actor(principal), "job.resolved", job, {"note": note})
    return job


@dataclass(frozen=True)
class Work:
    """What a worker needs to run a claimed job."""

    job: Job
    environment: Environment
    config: dict[str, Any] | None
    plan: bytes | None
    expected_stack_version: int | None
    run: bool
    """False when the job must not run (its request moved on, or the stack changed since the
    preview); the flow has already recorded why."""
    destroy_preview: bool = False
    """A preview job of a destroy request: `destroy --preview-only`, no plan to save."""


def prepare(session: Session, job_id: int) -> Work:
    """Called by the worker after claiming `job_id`: the job's inputs, or `run=False`."""
    job = session.get(Job, job_id)
    assert job is not None
    env = session.get(Environment, job.environment_id)
    assert env is not None
    req = session.get(Request, job.request_id) if job.request_id else None
    if req is None:  # refresh (drift check)
        return Work(job, env, env.current_config, None, env.stack_version, run=env.current_config is not None)
    expected_state = "previewing" if job.operation == "preview" else "approved"
    if req.state != expected_state:
        _end_job(session, job, "cancelled", f"request {req.id} is {req.state}")
        return Work(job, env, req.config, None, None, run=False)
    destroy = req.action == "destroy"
    # A destroy runs against what is deployed (the runner validates that config again); a config
    # that changed since the request was bound is a stale request.
    config = env.current_config if destroy else req.config
    if destroy and req.config_hash != env.current_config_hash:
        why = "the deployed config changed since this destroy was requested"
        _end_job(session, job, "cancelled", why)
        _set_state(session, req, "failed", SYSTEM_WORKER, error=why)
        req.error = f"{why}; request the destroy again"
        return Work(job, env, config, None, None, run=False)
    if job.operation == "preview":
        return Work(job, env, config, None, env.stack_version, run=True, destroy_preview=destroy)
    approval = session.scalars(
        select(Approval)
        .where(Approval.request_id == req.id, Approval.decision == "approve")
        .order_by(Approval.id.desc())
    ).first()
    plan = req.plan
    bound = approval is not None and (
        approval.config_hash == req.config_hash
        and approval.plan_sha256 == req.plan_sha256
        and approval.preview_summary == req.preview_summary
        and (plan is None) == (req.plan_sha256 is None)
        and (plan is None or hashlib.sha256(plan).hexdigest() == req.plan_sha256)
    )
    if not bound:
        _end_job(session, job, "cancelled", "the approved plan is not the one stored")
        _set_state(session, req, "failed", SYSTEM_WORKER, error="approval does not match the stored plan")
        req.error = "the approval does not match the stored plan; submit the request again"
        return Work(job, env, config, None, None, run=False)
    _set_state(session, req, "applying", SYSTEM_WORKER, job=job.id)
    return Work(job, env, config, plan, approval.stack_version if approval else None, run=True)


def stack_changed(session: Session, job_id: int, expected: int | None, actual: int | None) -> None:
    """The backend's stack version is not the approved one: end the job, back to preview."""
    job = session.get(Job, job_id)
    assert job is not None
    env = session.get(Environment, job.environment_id)
    req = session.get(Request, job.request_id) if job.request_id else None
    assert env is not None and req is not None
    why = f"the stack changed since the preview (version {expected}, now {actual})"
    _end_job(session, job, "cancelled", why)
    env.stack_version = actual
    _back_to_preview(session, req, env, SYSTEM_WORKER, why)


def _end_job(session: Session, job: Job, state: str, error: str | None) -> None:
    job.state = state
    job.error = error
    job.finished_at = utcnow()
    audit.record(session, SYSTEM_WORKER, f"job.{state}", job, {"error": error} if error else None)


def job_finished(
    session: Session,
    job_id: int,
    outcome: Outcome,
    policy: Policy,
    *,
    cancelled: bool = False,
    plan: bytes | None = None,
    plan_path: str | None = None,
) -> None:
    """Record a finished job on its request and environment (the worker has set the job's state)."""
    job = session.get(Job, job_id)
    assert job is not None
    env = session.get(Environment, job.environment_id)
    assert env is not None
    audit.record(
        session, SYSTEM_WORKER, f"job.{job.state}", job, {"error": outcome.error} if outcome.error else None
    )
    if outcome.ok or outcome.stack_version is not None:
        # The backend's word on the stack's last update version (a preview reads it; an up,
        # destroy or refresh may have moved it, even when it failed part way).
        env.stack_version = outcome.stack_version
    if job.operation == "refresh":
        env.drift_checked_at = utcnow()
        changes = {op: n for op, n in outcome.summary.items() if op != "same" and n}
        env.drift = {
            "job": job.id,
            "ok": outcome.ok,
            "drifted": bool(changes),
            "changes": changes,
            "error": outcome.error,
        }
        audit.record(session, SYSTEM_DRIFT, "environment.drift_checked", env, env.drift)
        return
    req = session.get(Request, job.request_id) if job.request_id else None
    if req is None:
        return
    if cancelled:
        if req.state in (*OPEN_REQUEST_STATES, "applying"):
            req.error = outcome.error
            _set_state(session, req, "cancelled", SYSTEM_WORKER, job=job.id)
        return
    if not outcome.ok:
        if req.state in ("previewing", "applying"):
            req.error = outcome.error
            _set_state(session, req, "failed", SYSTEM_WORKER, job=job.id, error=outcome.error)
        return
    if job.operation == "preview":
        if req.state != "previewing":
            return  # superseded or cancelled meanwhile: the plan is of no use
        req.plan = plan
        req.plan_path = plan_path
        req.plan_sha256 = hashlib.sha256(plan).hexdigest() if plan is not None else outcome.plan_sha256
        req.plan_stack_version = outcome.stack_version
        req.preview_summary = dict(outcome.summary)
        _set_state(
            session,
            req,
            "awaiting_approval",
            SYSTEM_WORKER,
            plan_sha256=req.plan_sha256,
            stack_version=req.plan_stack_version,
            summary=req.preview_summary,
        )
        _maybe_auto_approve(session, req, env, policy)
        return
    if req.state != "applying":
        return
    if job.operation == "destroy":
        env.status = "destroyed"
        env.current_config = None
        env.current_config_hash = None
        env.ttl_expires_at = None
    else:
        first = env.status != "ready"
        env.status = "ready"
        env.current_config = req.config
        env.current_config_hash = req.config_hash
        if first and env.ttl_hours:
            env.ttl_expires_at = utcnow() + timedelta(hours=env.ttl_hours)
    env.updated_at = utcnow()
    _set_state(session, req, "applied", SYSTEM_WORKER, job=job.id, stack_version=outcome.stack_version)
    audit.record(session, SYSTEM_WORKER, f"environment.{env.status}", env, {"request": req.id})


def job_orphaned(session: Session, job: Job) -> None:
    """The sweep found `job` without a live worker: orphaned, for an operator to resolve."""
    job.state = "orphaned"
    job.error = (
        f"worker {job.worker_id} stopped sending heartbeats while running {job.operation}; "
        "check the stack (pulumi stack history / cancel), then resolve this run"
    )
    job.finished_at = utcnow()
    audit.record(session, SYSTEM_WORKER, "job.orphaned", job, {"worker": job.worker_id})
    req = session.get(Request, job.request_id) if job.request_id else None
    if req is not None and req.state in (*OPEN_REQUEST_STATES, "applying"):
        req.error = job.error
        _set_state(session, req, "failed", SYSTEM_WORKER, job=job.id, error="orphaned")


# --- schedules ----------------------------------------------------------------------------------
def expire_ttls(session: Session, policy: Policy, now: datetime | None = None) -> list[Request]:
    """Dev environments past their time-to-live get an (approved) destroy request."""
    moment = now or utcnow()
    query = select(Environment).where(
        Environment.status == "ready",
        Environment.ttl_expires_at.is_not(None),
        Environment.ttl_expires_at <= moment,
    )
    created = []
    for env in session.scalars(query.with_for_update(skip_locked=True)):
        pending = session.scalars(
            select(Request.id).where(
                Request.environment_id == env.id,
                Request.action == "destroy",
                Request.state.in_((*OPEN_REQUEST_STATES, "applying")),
            )
        ).first()
        if pending is None:
            created.append(
                _destroy_request(
                    session, env, env.owner_id, SYSTEM_TTL, policy, auto=True, reason="time-to-live expired"
                )
            )
    return created


def schedule_drift_checks(
    session: Session, interval_seconds: float, now: datetime | None = None
) -> list[Job]:
    """A `refresh --preview-only` for each deployed environment not checked for `interval_seconds`
    and with nothing queued or running."""
    moment = now or utcnow()
    cutoff = moment - timedelta(seconds=interval_seconds)
    envs = session.scalars(
        select(Environment).where(
            Environment.status == "ready",
            (Environment.drift_checked_at.is_(None)) | (Environment.drift_checked_at <= cutoff),
        )
    )
    jobs = []
    for env in envs:
        busy = session.scalars(
            select(Job.id).where(
                Job.environment_id == env.id, Job.state.in_(("queued", "running", "orphaned"))
            )
        ).first()
        if busy is None:
            job = queue.enqueue(session, env, "refresh", created_by=SYSTEM_DRIFT, preview_only=True)
            audit.record(
                session, SYSTEM_DRIFT, "job.queued", job, {"operation": "refresh", "preview_only": True}
            )
            jobs.append(job)
    return jobs


def sweep_orphans(session: Session, orphan_after_seconds: float, now: datetime | None = None) -> list[Job]:
    stale = queue.stale_jobs(session, orphan_after_seconds, now)
    for job in stale:
        job_orphaned(session, job)
    return stale
