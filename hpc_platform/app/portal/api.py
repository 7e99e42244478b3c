"""The portal's JSON API (FastAPI; its OpenAPI document at /openapi.json).

Each route opens one transaction, authenticates the caller and calls a `flow` function: the same
functions the pages call, so both get the same checks. Errors keep one shape:
`{"detail": "...", "problems": [{"key": "hpc:cluster.queues[1].name", "message": "..."}]}`.

Authentication: `Authorization: Bearer <token>` (tokens from `hpc-portal user add`). Other ways
of signing in (the pages' session cookie) plug in by appending to `app.state.authenticators`: each
is `(request, session) -> Principal | None`, tried in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi import Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpc_platform.app.portal import auth, flow, queue, web
from hpc_platform.app.portal.assess import Assessor, InvalidConfig, config_diff, parse_body
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.db import make_engine, session_scope
from hpc_platform.app.portal.models import (
    Approval,
    AuditEntry,
    Environment,
    Event,
    Job,
    Request,
    User,
)
from hpc_platform.app.portal.settings import PortalSettings

Authenticator = Callable[[HttpRequest, Session], Principal | None]
bearer = HTTPBearer(auto_error=False, description="A token printed by `hpc-portal user add`")
SSE_POLL_SECONDS = 0.5
# Declares the bearer scheme in the OpenAPI document; the authenticators do the checking.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class Unauthenticated(Exception):
    pass


# --- bodies -------------------------------------------------------------------------------------
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvironmentIn(Strict):
    name: str = Field(max_length=200, description="Pulumi stack name: lowercase letters, digits, '-'")
    group: str = Field(max_length=200, description="The research group that owns it")
    kind: str = Field(description="dev, staging or prod")
    ttl_hours: int | None = Field(None, description="dev only: destroy this many hours after the first apply")


class DecisionIn(Strict):
    comment: str | None = Field(None, max_length=4000)
    config_hash: str | None = Field(None, max_length=64, description="The config hash you reviewed")
    plan_sha256: str | None = Field(None, max_length=64, description="The plan SHA-256 you reviewed")
    stack_version: int | None = Field(None, description="The stack version you reviewed")
    summary_sha256: str | None = Field(
        None, max_length=64, description="The `summary_sha256` of the preview summary you reviewed"
    )


class ResolveIn(Strict):
    note: str | None = Field(None, max_length=4000)


# --- views (the pages may use them too) ---------------------------------------------------------
def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def environment_json(env: Environment, owner: str | None = None) -> dict[str, Any]:
    return {
        "name": env.name,
        "group": env.group_name,
        "kind": env.kind,
        "owner": owner,
        "status": env.status,
        "config_hash": env.current_config_hash,
        "stack_version": env.stack_version,
        "ttl_hours": env.ttl_hours,
        "ttl_expires_at": _when(env.ttl_expires_at),
        "drift_checked_at": _when(env.drift_checked_at),
        "drift": env.drift,
        "created_at": _when(env.created_at),
        "updated_at": _when(env.updated_at),
    }


def request_json(session: Session, req: Request) -> dict[str, Any]:
    """A request as lists show it; `request_detail_json` adds its config, approvals and runs, and
    whether the caller may decide it."""
    env = session.get(Environment, req.environment_id)
    requester = session.get(User, req.requested_by)
    body: dict[str, Any] = {
        "id": req.id,
        "environment": env.name if env else None,
        "action": req.action,
        "state": req.state,
        "requested_by": requester.name if requester else None,
        "config_hash": req.config_hash,
        "plan_sha256": req.plan_sha256,
        "plan_stack_version": req.plan_stack_version,
        "preview_summary": req.preview_summary,
        "summary_sha256": flow.summary_sha256(req.preview_summary),
        "superseded_by": req.superseded_by_id,
        "error": req.error,
        "created_at": _when(req.created_at),
        "updated_at": _when(req.updated_at),
    }
    return body


def request_detail_json(session: Session, detail: flow.RequestDetail) -> dict[str, Any]:
    req = detail.request
    return request_json(session, req) | {
        "config": req.config,
        "diff": (req.diff or {}).get("changes", []),
        "assessment": req.assessment,
        "approvals": [approval_json(session, a) for a in detail.approvals],
        "runs": [job_json(j) for j in detail.runs],
        # The caller's own rights, by the rule approving enforces (as the request page shows them).
        "may_decide": detail.rights.may_decide,
        "why_not": detail.rights.why_not,
    }


def _request_detail_json(session: Session, principal: Principal, req: Request) -> dict[str, Any]:
    """What an action on a request answers: the request as `GET /api/requests/{id}` shows it."""
    return request_detail_json(session, flow.request_detail(session, principal, req.id))


def approval_json(session: Session, approval: Approval) -> dict[str, Any]:
    approver = session.get(User, approval.approver_id) if approval.approver_id else None
    return {
        "id": approval.id,
        "decision": approval.decision,
        "approver": approver.name if approver else flow.SYSTEM_AUTO_APPROVE,
        "comment": approval.comment,
        "config_hash": approval.config_hash,
        "plan_sha256": approval.plan_sha256,
        "stack_version": approval.stack_version,
        "preview_summary": approval.preview_summary,
        "created_at": _when(approval.created_at),
    }


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "environment": job.stack,
        "request": job.request_id,
        "operation": job.operation,
        "preview_only": job.preview_only,
        "state": job.state,
        "attempts": job.attempts,
        "not_before": _when(job.not_before),
        "worker": job.worker_id,
        "heartbeat_at": _when(job.heartbeat_at),
        "cancel_requested_at": _when(job.cancel_requested_at),
        "created_by": job.created_by,
        "created_at": _when(job.created_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
        "result": job.result,
        "error": job.error,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": _when(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": f"{entry.target_type}:{entry.target_id}",
        "detail": entry.detail,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "at": _when(event.at), "event": event.body}


# --- the body size limit ------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for a body over `limit` bytes: by Content-Length up front, or while it streams in."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the request body is over the limit of {self.limit} bytes", "problems": []}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --- the app ------------------------------------------------------------------------------------
def _problems_of(exc: RequestValidationError) -> list[dict[str, str]]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        key = ".".join(loc) or "body"
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown key"
        problems.append({"key": key, "message": message})
    return problems


def bearer_authenticator(request: HttpRequest, session: Session) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return auth.authenticate(session, token.strip())


def create_app(
    settings: PortalSettings,
    *,
    engine: Engine | None = None,
    assessor: flow.Assessing | None = None,
    diff: flow.ConfigDiff = config_diff,
    pages: web.WebSettings | None = None,
) -> FastAPI:
    """The API over `settings`' database (created if `engine` is not given; the caller migrates),
    with the pages (`web.install`; `pages` defaults to `WebSettings.from_env(settings)`)."""
    db = engine or make_engine(settings.database_url)
    planner: flow.Assessing = assessor if assessor is not None else Assessor()
    policy = flow.Policy(auto_approve_dev=settings.auto_approve_dev)
    app = FastAPI(
        title="hpc-platform portal",
        version="1",
        description="Environments, requests with an offline plan, verdict and cost, approvals, runs.",
    )
    app.state.settings = settings
    app.state.engine = db
    app.state.assessor = planner
    app.state.authenticators = [bearer_authenticator]
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(flow.FlowError)
    async def flow_error(_: HttpRequest, exc: flow.FlowError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "problems": exc.problems}, status_code=exc.http_status)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_: HttpRequest, __: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            {"detail": "authentication required: send Authorization: Bearer <token>", "problems": []},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: HttpRequest, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid request", "problems": _problems_of(exc)}, status_code=422)

    def call(request: HttpRequest, work: Callable[[Session, Principal], Any], *, write: bool = True) -> Any:
        with session_scope(db, write=write) as session:
            principal = None
            for authenticate in request.app.state.authenticators:
                principal = authenticate(request, session)
                if principal is not None:
                    break
            if principal is None:
                raise Unauthenticated
            if not write:
                # Authenticating may record the token's use; end that write here, so a read scope
                # holds no write lock while it works (an assessment plans for seconds).
                session.commit()
            return work(session, principal)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        with session_scope(db, write=False) as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/api/me", tags=["access"])
    def me(request: HttpRequest, _: Credentials) -> dict[str, Any]:
        return call(request, lambda s, p: {"name": p.name, "roles": p.roles})  # type: ignore[no-any-return]

    # environments
    @app.get("/api/environments", tags=["environments"])
    def list_environments(request: HttpRequest, _: Credentials) -> list[dict[str, Any]]:
        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            envs = flow.visible_environments(session, principal)
            owners = flow.user_names(session, (e.owner_id for e in envs))
            return [environment_json(e, owners.get(e.owner_id)) for e in envs]

        return call(request, work)  # type: ignore[no-any-return]

    @app.post("/api/environments", status_code=201, tags=["environments"])
    def create_environment(request: HttpRequest, body: EnvironmentIn, _: Credentials) -> dict[str, Any]:
        def work(session: Session, principal: Principal) -> dict[str, Any]:
            env = flow.create_environment(
                session, principal, body.name, body.group, body.kind, body.ttl_hours
            )
            return environment_json(env, principal.name)

        return call(request, work)  # type: ignore[no-any-return]

    @app.get("/api/environments/{name}", tags=["environments"])
    def get_environment(request: HttpRequest, name: str, _: Credentials) -> dict[str, Any]:
        def work(session: Session, principal: Principal) -> dict[str, Any]:
            env = flow.environment_for(session, principal, name)
            owner = session.get(User, env.owner_id)
            return environment_json(env, owner.name if owner else None) | {"config": env.current_config}

        return call(request, work)  # type: ignore[no-any-return]

    @app.post(
        "/api/environments/{name}/requests",
        status_code=201,
        tags=["requests"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The stack config: a stack file (`config:` map) as YAML or JSON",
                "content": {"application/yaml": {"schema": {"type": "object"}}, "application/json": {}},
            }
        },
    )
    async def submit(request: HttpRequest, name: str, _: Credentials) -> JSONResponse:
        raw = await request.body()
        content_type = request.headers.get("content-type", "application/json")

        def assessed(session: Session, principal: Principal) -> tuple[dict[str, Any], flow.AssessmentLike]:
            flow.environment_for(session, principal, name)  # 401/404/403 before looking at the body
            try:
                config = parse_body(raw, content_type)
                return config, flow.assess_submission(session, principal, name, config, planner)
            except InvalidConfig as exc:
                raise flow.Invalid(
                    f"Pulumi.{name}.yaml: the config has {len(exc.problems)} problem(s)",
                    [flow.problem(p.key, p.message) for p in exc.problems],
                ) from None

        # The plan runs in a read transaction; only storing the request takes the write lock.
        config, assessment = await run_in_threadpool(call, request, assessed, write=False)

        def store(session: Session, principal: Principal) -> dict[str, Any]:
            req = flow.submit_request(session, principal, name, config, planner, diff, assessment=assessment)
            return _request_detail_json(session, principal, req)

        return JSONResponse(await run_in_threadpool(call, request, store), status_code=201)

    @app.post("/api/environments/{name}/destroy", status_code=201, tags=["requests"])
    def destroy(request: HttpRequest, name: str, _: Credentials) -> dict[str, Any]:
        return call(  # type: ignore[no-any-return]
            request, lambda s, p: _request_detail_json(s, p, flow.submit_destroy(s, p, name, policy))
        )

    @app.get("/api/environments/{name}/requests", tags=["requests"])
    def environment_requests(request: HttpRequest, name: str, _: Credentials) -> list[dict[str, Any]]:
        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            return [request_json(session, r) for r in flow.environment_requests(session, principal, name)]

        return call(request, work, write=False)  # type: ignore[no-any-return]

    @app.get("/api/environments/{name}/runs", tags=["runs"])
    def environment_runs(request: HttpRequest, name: str, _: Credentials) -> list[dict[str, Any]]:
        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            return [job_json(j) for j in flow.environment_runs(session, principal, name)]

        return call(request, work, write=False)  # type: ignore[no-any-return]

    @app.get("/api/environments/{name}/audit", tags=["audit"])
    def environment_audit(request: HttpRequest, name: str, _: Credentials) -> list[dict[str, Any]]:
        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            return [audit_json(e) for e in flow.environment_audit(session, principal, name)]

        return call(request, work, write=False)  # type: ignore[no-any-return]

    # requests and approvals
    @app.get("/api/requests/{request_id}", tags=["requests"])
    def get_request(request: HttpRequest, request_id: int, _: Credentials) -> dict[str, Any]:
        return call(  # type: ignore[no-any-return]
            request, lambda s, p: request_detail_json(s, flow.request_detail(s, p, request_id)), write=False
        )

    @app.get("/api/approvals", tags=["approvals"])
    def approval_inbox(request: HttpRequest, _: Credentials) -> list[dict[str, Any]]:
        """Requests awaiting approval that the caller may approve (not their own staging/prod ones)."""

        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            return [request_json(session, req) for req, _env in flow.approval_inbox(session, principal)]

        return call(request, work, write=False)  # type: ignore[no-any-return]

    def _decide(request: HttpRequest, request_id: int, decision: str, body: DecisionIn) -> JSONResponse:
        reviewed = flow.Reviewed(body.config_hash, body.plan_sha256, body.stack_version, body.summary_sha256)

        def work(session: Session, principal: Principal) -> tuple[int, dict[str, Any]]:
            outcome = flow.decide(session, principal, request_id, decision, body.comment, reviewed)
            status = 409 if outcome.outcome == "back_to_preview" else 200
            return status, {
                "detail": outcome.message,
                "request": _request_detail_json(session, principal, outcome.request),
            }

        status, payload = call(request, work)
        if status != 200:
            payload["problems"] = []
        return JSONResponse(payload, status_code=status)

    @app.post("/api/requests/{request_id}/approve", tags=["approvals"])
    def approve(request: HttpRequest, request_id: int, body: DecisionIn, _: Credentials) -> JSONResponse:
        return _decide(request, request_id, "approve", body)

    @app.post("/api/requests/{request_id}/reject", tags=["approvals"])
    def reject(request: HttpRequest, request_id: int, body: DecisionIn, _: Credentials) -> JSONResponse:
        return _decide(request, request_id, "reject", body)

    @app.post("/api/requests/{request_id}/cancel", tags=["requests"])
    def cancel_request(request: HttpRequest, request_id: int, _: Credentials) -> dict[str, Any]:
        return call(  # type: ignore[no-any-return]
            request, lambda s, p: _request_detail_json(s, p, flow.cancel_request(s, p, request_id))
        )

    # runs and their events
    @app.get("/api/runs/{job_id}", tags=["runs"])
    def get_run(request: HttpRequest, job_id: int, _: Credentials) -> dict[str, Any]:
        return call(request, lambda s, p: job_json(flow.job_for(s, p, job_id)), write=False)  # type: ignore[no-any-return]

    @app.post("/api/runs/{job_id}/cancel", tags=["runs"])
    def cancel_run(request: HttpRequest, job_id: int, _: Credentials) -> dict[str, Any]:
        return call(request, lambda s, p: job_json(flow.cancel_job(s, p, job_id)))  # type: ignore[no-any-return]

    @app.post("/api/runs/{job_id}/resolve", tags=["runs"])
    def resolve_run(request: HttpRequest, job_id: int, body: ResolveIn, _: Credentials) -> dict[str, Any]:
        """An admin marks an orphaned run resolved (failed) after checking the stack."""
        return call(  # type: ignore[no-any-return]
            request, lambda s, p: job_json(flow.resolve_orphan(s, p, job_id, body.note))
        )

    @app.get("/api/runs/{job_id}/events", tags=["runs"])
    def run_events(
        request: HttpRequest, job_id: int, _: Credentials, after: Annotated[int, Query(ge=0)] = 0
    ) -> list[dict[str, Any]]:
        def work(session: Session, principal: Principal) -> list[dict[str, Any]]:
            flow.job_for(session, principal, job_id)
            return [event_json(e) for e in queue.events_after(session, job_id, after)]

        return call(request, work, write=False)  # type: ignore[no-any-return]

    @app.get(
        "/api/runs/{job_id}/events/stream",
        tags=["runs"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream_events(request: HttpRequest, job_id: int, _: Credentials) -> StreamingResponse:
        """Server-sent events: one `engine` event per stored engine event (id = its seq), then
        `end` when the run has finished. Reconnect with `Last-Event-ID` to resume after it."""
        resume = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        after = int(resume) if resume.isdigit() else 0
        await run_in_threadpool(call, request, lambda s, p: flow.job_for(s, p, job_id), write=False)
        return StreamingResponse(
            _sse(db, job_id, after, request.is_disconnected),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    web.install(app, pages)
    return app


async def _sse(
    engine: Engine, job_id: int, after: int, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    def fetch(since: int) -> tuple[list[tuple[int, dict[str, Any]]], str]:
        with session_scope(engine, write=False) as session:
            events = [(e.seq, e.body) for e in queue.events_after(session, job_id, since)]
            state = session.scalar(select(Job.state).where(Job.id == job_id)) or "unknown"
            return events, state

    last = after
    while True:
        events, state = await run_in_threadpool(fetch, last)
        for seq, body in events:
            last = seq
            yield f"id: {seq}\nevent: engine\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"
        if not events and state not in ("queued", "running"):
            yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"
            return
        if not events:
            if await disconnected():
                return
            await asyncio.sleep(SSE_POLL_SECONDS)
