"""The portal's pages: server-rendered Jinja2 templates with htmx (vendored), SSE for live logs.

Every change made through a page calls the same `flow` function the JSON API calls, inside one
transaction, so the pages get the same authorization, validation and audit. What a page shows of
environments, requests, runs and audit entries comes from the `flow` reads the API uses too, which
authorize the caller the same way; a page only turns the outcome into HTML. `install(app)` adds
the pages to the API's app (`api.create_app`), reading its `state.settings`, `state.engine` and
`state.assessor`.

Security:
- Sessions live in a signed cookie (itsdangerous; HttpOnly, SameSite=Lax, Secure). The Secure flag
  is left off only for a plain-http request to a loopback host (`hpc-portal serve` on 127.0.0.1
  for local use); `HPC_PORTAL_COOKIE_SECURE=true` forces it on always.
- Every form post carries a CSRF token bound to the session (a hidden field, or the
  `X-CSRF-Token` header htmx sends); a post without it, or with another one, gets 403 and changes
  nothing.
- A Content-Security-Policy allows scripts and styles only from the portal itself: no inline
  script or style, and htmx is configured (a meta tag) to need neither and never to eval.
- Sign-in: OIDC (authlib) when an issuer is configured; otherwise a local sign-in with a token
  from `hpc-portal user add`, clearly marked, and switched off as soon as OIDC is configured.
  An OIDC user is the portal user whose name is the configured claim (`preferred_username` by
  default); their groups and roles are the portal's memberships.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, FastAPI
from fastapi import Request as HttpRequest
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpc_platform.app.diagram import GraphvizMissing, graphviz_available, render_svg
from hpc_platform.app.portal import assess, auth, flow, forms, queue
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import (
    KINDS,
    Environment,
    Job,
    Request,
    Token,
    User,
)
from hpc_platform.app.portal.settings import PortalSettings
from hpc_platform.domain.catalog import default_catalog
from hpc_platform.domain.config.loader import read_stack_file
from hpc_platform.domain.performance import performance_model, render_performance

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
SESSION_COOKIE = "hpc_portal_session"
SESSION_MAX_AGE_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SSE_POLL_SECONDS = 0.5
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
LOOPBACK_NAMES = {"localhost"}


# --- settings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OidcSettings:
    """An OpenID Connect provider: `HPC_PORTAL_OIDC_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`."""

    issuer: str
    client_id: str
    client_secret: str
    username_claim: str = "preferred_username"
    scope: str = "openid email profile"
    redirect_url: str | None = None
    """The callback URL registered at the provider; default: this service's own callback route."""

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class WebSettings:
    session_secret: str
    oidc: OidcSettings | None = None
    cookie_secure: bool | None = None
    """None: Secure except on plain http to a loopback host; True: always."""
    session_max_age_seconds: int = SESSION_MAX_AGE_SECONDS

    @property
    def local_sign_in(self) -> bool:
        return self.oidc is None

    @classmethod
    def from_env(cls, settings: PortalSettings) -> WebSettings:
        issuer = os.environ.get("HPC_PORTAL_OIDC_ISSUER", "").strip()
        oidc = None
        if issuer:
            client_id = os.environ.get("HPC_PORTAL_OIDC_CLIENT_ID", "").strip()
            client_secret = os.environ.get("HPC_PORTAL_OIDC_CLIENT_SECRET", "")
            if not client_id or not client_secret:
                raise ValueError(
                    "HPC_PORTAL_OIDC_ISSUER is set: set HPC_PORTAL_OIDC_CLIENT_ID and "
                    "HPC_PORTAL_OIDC_CLIENT_SECRET too"
                )
            oidc = OidcSettings(
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                username_claim=os.environ.get("HPC_PORTAL_OIDC_USERNAME_CLAIM") or "preferred_username",
                redirect_url=os.environ.get("HPC_PORTAL_OIDC_REDIRECT_URL") or None,
            )
        secure = os.environ.get("HPC_PORTAL_COOKIE_SECURE", "").strip().lower()
        return cls(
            session_secret=session_secret(settings),
            oidc=oidc,
            cookie_secure=True if secure in {"1", "true", "yes", "on"} else None,
        )


def session_secret(settings: PortalSettings) -> str:
    """`HPC_PORTAL_SESSION_SECRET`, else a generated file (0600) in the data dir, so sessions
    survive a restart. Several replicas behind a load balancer must share the variable."""
    given = os.environ.get("HPC_PORTAL_SESSION_SECRET")
    if given:
        return given
    path = settings.data_dir / "session-secret"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


# --- middleware ---------------------------------------------------------------------------------
def _plain_loopback(scope: Scope) -> bool:
    if scope.get("scheme") != "http":
        return False
    host = HTTPConnection(scope).url.hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SignedSession:
    """The session as a signed (not encrypted) cookie: it holds ids and the CSRF token, never a
    secret the user may not see. Written back only when it changed; emptied means deleted."""

    def __init__(self, app: ASGIApp, secret: str, max_age: int, secure: bool | None):
        self.app = app
        self.serializer = URLSafeTimedSerializer(secret, salt="hpc-portal-session")
        self.max_age = max_age
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        data: dict[str, Any] = {}
        if raw:
            try:
                loaded = self.serializer.loads(raw, max_age=self.max_age)
                data = loaded if isinstance(loaded, dict) else {}
            except BadSignature:
                data = {}
        scope["session"] = data
        before = json.dumps(data, sort_keys=True, default=str)
        secure = self.secure or (self.secure is None and not _plain_loopback(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope["session"]
                if json.dumps(session, sort_keys=True, default=str) != before:
                    flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
                    if session:
                        value = self.serializer.dumps(session)
                        cookie = f"{SESSION_COOKIE}={value}; Max-Age={self.max_age}{flags}"
                    else:
                        cookie = f"{SESSION_COOKIE}=; Max-Age=0{flags}"
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class SecurityHeaders:
    """CSP and friends on every response (the API's JSON too: harmless there)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- CSRF ---------------------------------------------------------------------------------------
class CsrfFailed(Exception):
    pass


def csrf_token(request: HttpRequest) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: HttpRequest, form: FormData) -> None:
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not hmac.compare_digest(expected, given)
    ):
        raise CsrfFailed


async def checked_form(request: HttpRequest) -> FormData:
    """The posted form, after its CSRF token was checked (raises `CsrfFailed`: 403)."""
    form = await request.form()
    check_csrf(request, form)
    return form


# --- who is signed in ---------------------------------------------------------------------------
def session_principal(request: HttpRequest, session: Session) -> Principal | None:
    """The signed-in user, re-read on every request: a removed membership or a revoked token
    takes effect at once."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None:
        return None
    tid = request.session.get("tid")
    if tid is not None:
        token = session.get(Token, tid) if isinstance(tid, int) else None
        if token is None or token.user_id != uid or token.revoked_at is not None:
            return None
    return auth.principal_of(session, user)


def _sign_in(request: HttpRequest, user_id: int, via: str, token_id: int | None = None) -> None:
    # A new session (and CSRF token) at sign-in: nothing chosen before it carries over.
    request.session.clear()
    request.session.update({"uid": user_id, "via": via, "tid": token_id, "csrf": secrets.token_urlsafe(32)})


def user_for_claims(session: Session, claims: Mapping[str, Any], oidc: OidcSettings) -> User | None:
    """The portal user an OIDC sign-in maps to: the one named by the configured claim. Groups and
    roles come from the portal's memberships, never from the provider's claims."""
    name = claims.get(oidc.username_claim)
    if not isinstance(name, str) or not name:
        return None
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def _token_row(session: Session, token: str) -> Token | None:
    return session.scalars(select(Token).where(Token.token_sha256 == auth.hash_token(token))).one_or_none()


# --- what the pages show ------------------------------------------------------------------------
EVENT_KINDS = (
    "preludeEvent",
    "resourcePreEvent",
    "resOutputsEvent",
    "resOpFailedEvent",
    "diagnosticEvent",
    "policyEvent",
    "stdoutEvent",
    "summaryEvent",
    "cancelEvent",
)


def describe_event(body: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, one line) for an engine event."""
    for kind in EVENT_KINDS:
        payload = body.get(kind)
        if not isinstance(payload, Mapping):
            continue
        if kind in ("resourcePreEvent", "resOutputsEvent"):
            meta = payload.get("metadata") or {}
            done = "done" if kind == "resOutputsEvent" else "starting"
            return kind, f"{meta.get('op', '?')} {meta.get('type', '')} {_urn_name(meta.get('urn'))} ({done})"
        if kind == "resOpFailedEvent":
            meta = payload.get("metadata") or {}
            return kind, f"failed: {meta.get('op', '?')} {meta.get('type', '')} {_urn_name(meta.get('urn'))}"
        if kind in ("diagnosticEvent", "stdoutEvent"):
            severity = payload.get("severity") or "info"
            return kind, f"{severity}: {str(payload.get('message', '')).strip()}"
        if kind == "policyEvent":
            return kind, (
                f"policy {payload.get('policyName', '?')} ({payload.get('enforcementLevel', '')}): "
                f"{str(payload.get('message', '')).strip()}"
            )
        if kind == "summaryEvent":
            changes = payload.get("resourceChanges") or {}
            counts = ", ".join(f"{op} {n}" for op, n in sorted(changes.items())) or "no changes"
            return kind, f"summary: {counts} in {payload.get('durationSeconds', '?')}s"
        if kind == "preludeEvent":
            return kind, "started"
        # The engine closes every event stream with a cancelEvent; it does not mean a cancel.
        return kind, "end of the engine's events"
    return "event", ", ".join(sorted(k for k in body if k not in ("sequence", "timestamp"))) or "event"


def _urn_name(urn: Any) -> str:
    return str(urn).rsplit("::", 1)[-1] if urn else ""


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def performance_lines(stack: str, config: Mapping[str, Any] | None) -> list[str]:
    if not config:
        return []
    try:
        loaded = assess.validate(stack, config)
    except assess.InvalidConfig:
        return []
    return render_performance(performance_model(loaded.config, default_catalog()))


def config_yaml(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump({"config": dict(config)}, sort_keys=False, default_flow_style=False, width=100)


def template_config(settings: PortalSettings, start: str) -> dict[str, Any] | None:
    """A repository stack file (`Pulumi.<start>.yaml`) as a starting point."""
    if start not in KINDS:
        return None
    path = settings.project_dir / f"Pulumi.{start}.yaml"
    return read_stack_file(path) if path.is_file() else None


def key_path(key: Any) -> Markup:
    """A key path (`hpc:cluster.queues[0].name`) in a `<code class="key">` that a narrow column
    wraps only after a dot, never inside a name."""
    parts = [escape(part) for part in str(key).split(".")]
    return Markup('<code class="key">{}</code>').format(Markup(".<wbr>").join(parts))


def _cost(assessment: Mapping[str, Any] | None) -> float | None:
    cost = (assessment or {}).get("cost") or {}
    value = cost.get("monthly_usd")
    return float(value) if isinstance(value, int | float) else None


# --- the pages ----------------------------------------------------------------------------------
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["when"] = _when
templates.env.filters["usd"] = lambda v: "" if v is None else f"${v:,.2f}"
templates.env.globals["describe_event"] = describe_event
templates.env.globals["dom_id"] = forms.dom_id
templates.env.filters["key_path"] = key_path


@dataclass
class Page:
    """What a page handler needs: the HTTP request, the transaction and the caller."""

    http: HttpRequest
    session: Session
    principal: Principal

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.http, name, status, principal=self.principal, **context)


def render(
    request: HttpRequest, name: str, status: int = 200, principal: Principal | None = None, **context: Any
) -> HTMLResponse:
    web: WebSettings = request.app.state.web
    flash = request.session.pop("flash", None)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "principal": principal,
            "csrf": csrf_token(request),
            "csrf_field": CSRF_FIELD,
            "local_sign_in": web.local_sign_in,
            "oidc": web.oidc is not None,
            "flash": flash,
            **context,
        },
        status_code=status,
    )
    response.headers["cache-control"] = "no-store"
    return response


def _flash(request: HttpRequest, message: str) -> None:
    request.session["flash"] = message


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _engine(request: HttpRequest) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _settings(request: HttpRequest) -> PortalSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _policy(request: HttpRequest) -> flow.Policy:
    return flow.Policy(auto_approve_dev=_settings(request).auto_approve_dev)


def page(request: HttpRequest, work: Callable[[Page], Response], *, write: bool = False) -> Response:
    """Run `work` in one transaction for the signed-in caller; a `FlowError` rolls it back and
    becomes an error page with the flow's status (404 for another group's things)."""
    principal: Principal | None = None
    try:
        with session_scope(_engine(request), write=write) as session:
            principal = session_principal(request, session)
            if principal is None:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": "/signin"})
                return _redirect("/signin")
            return work(Page(request, session, principal))
    except flow.FlowError as exc:
        return render(
            request,
            "error.html",
            exc.http_status,
            principal=principal,
            message=exc.message,
            problems=exc.problems,
        )


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: HttpRequest) -> Response:
    with session_scope(_engine(request), write=False) as session:
        if session_principal(request, session) is not None:
            return _redirect("/environments")
    return render(request, "signin.html")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: HttpRequest) -> Response:
    return render(request, "signin.html")


@router.post("/signin")
async def signin_local(request: HttpRequest) -> Response:
    web: WebSettings = request.app.state.web
    form = await checked_form(request)
    if not web.local_sign_in:
        return render(request, "signin.html", 404, error="local sign-in is off: this portal uses OIDC")
    token = str(form.get("token") or "").strip()

    def work() -> int | tuple[int, int] | None:
        with session_scope(_engine(request)) as session:
            principal = auth.authenticate(session, token)
            row = _token_row(session, token) if principal is not None else None
            return (principal.user_id, row.id) if principal is not None and row is not None else None

    found = await run_in_threadpool(work)
    if not isinstance(found, tuple):
        return render(request, "signin.html", 401, error="that token is not valid (unknown or revoked)")
    _sign_in(request, found[0], "local", found[1])
    return _redirect("/environments")


@router.get("/signin/oidc")
async def signin_oidc(request: HttpRequest) -> Response:
    client = request.app.state.oidc_client
    if client is None:
        return render(request, "signin.html", 404, error="OIDC sign-in is not configured")
    web: WebSettings = request.app.state.web
    assert web.oidc is not None
    redirect = web.oidc.redirect_url or str(request.url_for("oidc_callback"))
    return await client.authorize_redirect(request, redirect)  # type: ignore[no-any-return]


@router.get("/signin/oidc/callback", name="oidc_callback")
async def oidc_callback(request: HttpRequest) -> Response:
    client = request.app.state.oidc_client
    web: WebSettings = request.app.state.web
    if client is None or web.oidc is None:
        return render(request, "signin.html", 404, error="OIDC sign-in is not configured")
    try:
        token = await client.authorize_access_token(request)
    except Exception as exc:  # authlib raises its own errors for a bad state, code or ID token
        return render(request, "signin.html", 401, error=f"sign-in failed: {exc}")
    # authlib checks the ID token's signature, issuer, audience, expiry and nonce, but only when
    # the provider sent one: without it there is no verified identity to sign in.
    claims = token.get("userinfo")
    if not claims:
        return render(request, "signin.html", 401, error="sign-in failed: the provider returned no ID token")
    oidc = web.oidc

    def work() -> int | None:
        with session_scope(_engine(request), write=False) as session:
            user = user_for_claims(session, claims, oidc)
            return user.id if user is not None else None

    user_id = await run_in_threadpool(work)
    if user_id is None:
        name = claims.get(oidc.username_claim)
        return render(
            request,
            "signin.html",
            403,
            error=f"{name!r} has no portal account; ask an admin to run `hpc-portal user add`",
        )
    _sign_in(request, user_id, "oidc")
    return _redirect("/environments")


@router.post("/signout")
async def signout(request: HttpRequest) -> Response:
    await checked_form(request)
    request.session.clear()
    return _redirect("/")


# environments
@router.get("/environments", response_class=HTMLResponse)
def environments(request: HttpRequest) -> Response:
    def work(p: Page) -> Response:
        overviews = flow.environment_overviews(p.session, p.principal)
        owners = flow.user_names(p.session, (o.environment.owner_id for o in overviews))
        rows = []
        for o in overviews:
            shown = o.deployed or o.latest
            rows.append(
                {
                    "env": o.environment,
                    "owner": owners.get(o.environment.owner_id, ""),
                    "last": o.last_run,
                    "cost": _cost(shown.assessment if shown else None),
                    "cost_of": "deployed" if o.deployed else ("requested" if o.latest else ""),
                }
            )
        groups = [g for g in p.principal.groups if p.principal.has("requester", g)]
        return p.render("environments.html", rows=rows, groups=groups, kinds=KINDS)

    return page(request, work)


@router.post("/environments")
async def create_environment(request: HttpRequest) -> Response:
    form = await checked_form(request)
    ttl_raw = str(form.get("ttl_hours") or "").strip()

    def work(p: Page) -> Response:
        ttl: int | None = None
        if ttl_raw:
            if not ttl_raw.isdigit():
                raise flow.Invalid(
                    "invalid environment", [flow.problem("ttl_hours", "use a whole number of hours")]
                )
            ttl = int(ttl_raw)
        env = flow.create_environment(
            p.session,
            p.principal,
            str(form.get("name") or ""),
            str(form.get("group") or ""),
            str(form.get("kind") or ""),
            ttl,
        )
        return _redirect(f"/environments/{env.name}/request")

    return await run_in_threadpool(page, request, work, write=True)


@router.get("/environments/{name}", response_class=HTMLResponse)
def environment(request: HttpRequest, name: str) -> Response:
    def work(p: Page) -> Response:
        detail = flow.environment_detail(p.session, p.principal, name)
        env, reqs, jobs = detail.environment, detail.requests[::-1], detail.runs[::-1]  # newest first
        users = flow.user_names(p.session, [env.owner_id, *(r.requested_by for r in reqs)])
        return p.render("environment.html", env=env, users=users, requests=reqs, jobs=jobs)

    return page(request, work)


@router.get("/environments/{name}/audit", response_class=HTMLResponse)
def environment_audit(request: HttpRequest, name: str) -> Response:
    def work(p: Page) -> Response:
        entries = flow.environment_audit(p.session, p.principal, name)[::-1]  # newest first
        return p.render("audit.html", env_name=name, entries=entries)

    return page(request, work)


@router.post("/environments/{name}/destroy")
async def request_destroy(request: HttpRequest, name: str) -> Response:
    await checked_form(request)
    policy = _policy(request)

    def work(p: Page) -> Response:
        req = flow.submit_destroy(p.session, p.principal, name, policy)
        return _redirect(f"/requests/{req.id}")

    return await run_in_threadpool(page, request, work, write=True)


# the request form
@dataclass
class Draft:
    """The form's state: the config being edited, how, and what is wrong with it."""

    mode: str  # fields | yaml
    config: dict[str, Any] | None
    yaml_text: str
    problems: list[dict[str, str]]
    note: str = ""


def draft_from_form(form: FormData) -> Draft:
    """The config a posted form describes. Fields mode: the base config (a hidden field) with the
    field values set at their key paths; YAML mode: the text as a stack file."""
    mode = "yaml" if form.get("mode") == "yaml" else "fields"
    source = str(form.get("yaml") if mode == "yaml" else form.get("base") or "")
    try:
        base = assess.parse_body(source, "application/yaml")
    except assess.InvalidConfig as exc:
        return Draft(mode, None, source, [p.to_json() for p in exc.problems])
    if mode == "yaml":
        return Draft(mode, base, source, [])
    submitted = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    config = forms.apply_fields(base, submitted)
    return Draft(mode, config, config_yaml(config), [])


def validate_draft(draft: Draft, env: Environment) -> Draft:
    """The CLI's validation (the assessor's `validate`, without planning): one problem per key."""
    if draft.config is None:
        return draft
    try:
        assess.validate(env.name, draft.config, env.kind)
    except assess.InvalidConfig as exc:
        draft.problems = [p.to_json() for p in exc.problems]
    return draft


def form_context(env: Environment, draft: Draft, **extra: Any) -> dict[str, Any]:
    config = draft.config or {}
    sections = forms.sections(config) if draft.mode == "fields" else []
    fields = [f for s in sections for f in s.fields]
    by_field, other = forms.match_problems(draft.problems, fields)
    return {
        "env": env,
        "draft": draft,
        "sections": sections,
        "fields": fields,
        "by_field": by_field,
        "unmatched": other,
        "base_yaml": config_yaml(config) if draft.config is not None else draft.yaml_text,
        "kinds": KINDS,
        **extra,
    }


@router.get("/environments/{name}/request", response_class=HTMLResponse)
def request_form(request: HttpRequest, name: str, start: str = "", mode: str = "fields") -> Response:
    settings = _settings(request)

    def work(p: Page) -> Response:
        env = flow.environment_for(p.session, p.principal, name)
        chosen = start or ("current" if env.current_config else env.kind)
        note = ""
        if chosen == "current" and env.current_config:
            config = dict(env.current_config)
        else:
            chosen = chosen if chosen in KINDS else env.kind
            config = template_config(settings, chosen) or {}
            if config.get("hpc:environment") != env.kind:
                config["hpc:environment"] = env.kind
                note = (
                    f"Started from the {chosen} template; hpc:environment set to {env.kind}, "
                    "this environment's kind."
                )
        draft = Draft("yaml" if mode == "yaml" else "fields", config, config_yaml(config), [], note)
        return p.render("request_form.html", **form_context(env, draft, start=chosen))

    return page(request, work)


@router.post("/environments/{name}/request/form", response_class=HTMLResponse)
async def request_form_switch(request: HttpRequest, name: str) -> Response:
    """Switch between fields and YAML, or add or remove a queue in fields mode, keeping what was
    typed; the result is validated as any edit is."""
    form = await checked_form(request)
    target = "yaml" if form.get("switch") == "yaml" else "fields"
    queue_op = str(form.get("queue") or "")

    def work(p: Page) -> Response:
        env = flow.environment_for(p.session, p.principal, name)
        draft = draft_from_form(form)
        if draft.config is not None:
            config = draft.config
            if queue_op == "add":
                config = forms.add_queue(config)
            elif queue_op.startswith("remove-") and queue_op.removeprefix("remove-").isdigit():
                config = forms.remove_queue(config, int(queue_op.removeprefix("remove-")))
            draft = Draft(target, config, config_yaml(config), [])
            validate_draft(draft, env)
        return p.render("request_form.html", **form_context(env, draft, start=""))

    return await run_in_threadpool(page, request, work)


@router.post("/environments/{name}/request/validate", response_class=HTMLResponse)
async def request_validate(request: HttpRequest, name: str) -> Response:
    """As-you-type validation (htmx): every field's problem slot, swapped out of band."""
    form = await checked_form(request)

    def work(p: Page) -> Response:
        env = flow.environment_for(p.session, p.principal, name)
        draft = validate_draft(draft_from_form(form), env)
        return p.render("fragments/problems.html", **form_context(env, draft))

    return await run_in_threadpool(page, request, work)


@router.post("/environments/{name}/request/assess", response_class=HTMLResponse)
async def request_assess(request: HttpRequest, name: str) -> Response:
    """The plan, verdict and cost of the config as it stands (htmx), or its problems."""
    form = await checked_form(request)
    assessor: flow.Assessing = request.app.state.assessor

    def work(p: Page) -> Response:
        env = flow.environment_for(p.session, p.principal, name)
        draft = validate_draft(draft_from_form(form), env)
        assessment: dict[str, Any] | None = None
        if draft.config is not None and not draft.problems:
            try:
                assessment = assessor.assess(env.name, draft.config).to_json()
            except assess.InvalidConfig as exc:
                draft.problems = [p.to_json() for p in exc.problems]
        changes = (
            assess.config_diff(env.current_config, draft.config)
            if draft.config is not None and assessment
            else []
        )
        return p.render(
            "fragments/assessment.html",
            **form_context(env, draft),
            assessment=assessment,
            changes=changes,
            performance=performance_lines(env.name, draft.config) if assessment else [],
        )

    return await run_in_threadpool(page, request, work)


@router.post("/environments/{name}/requests", response_class=HTMLResponse)
async def submit_request(request: HttpRequest, name: str) -> Response:
    """Submit: `flow.submit_request`, as the API does; problems re-render the form (422)."""
    form = await checked_form(request)
    assessor: flow.Assessing = request.app.state.assessor

    draft = draft_from_form(form)
    assessed: list[flow.AssessmentLike] = []

    def problems_page(p: Page) -> Response:
        env = flow.environment_for(p.session, p.principal, name)
        return p.render("request_form.html", 422, **form_context(env, draft, start=""))

    def assess_draft(p: Page) -> Response:
        # The plan runs in a read transaction; only storing the request takes the write lock.
        if draft.config is not None:
            try:
                assessed.append(flow.assess_submission(p.session, p.principal, name, draft.config, assessor))
                return Response(status_code=204)
            except assess.InvalidConfig as exc:
                draft.problems = [p.to_json() for p in exc.problems]
            except flow.Invalid as exc:
                draft.problems = exc.problems
        return problems_page(p)

    response = await run_in_threadpool(page, request, assess_draft)
    if not assessed:
        return response  # the problems page, sign-in redirect or error page
    assert draft.config is not None

    def store(p: Page) -> Response:
        req = flow.submit_request(
            p.session,
            p.principal,
            name,
            draft.config or {},
            assessor,
            assess.config_diff,
            assessment=assessed[0],
        )
        return _redirect(f"/requests/{req.id}")

    return await run_in_threadpool(page, request, store, write=True)


# requests and approvals
@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: HttpRequest, request_id: int) -> Response:
    def work(p: Page) -> Response:
        detail = flow.request_detail(p.session, p.principal, request_id)
        req, env, approvals, jobs = detail.request, detail.environment, detail.approvals, detail.runs
        users = flow.user_names(p.session, [req.requested_by, *(a.approver_id for a in approvals)])
        return p.render(
            "request.html",
            req=req,
            env=env,
            users=users,
            approvals=approvals,
            jobs=jobs,
            assessment=req.assessment,
            changes=(req.diff or {}).get("changes", []),
            performance=performance_lines(env.name, req.config),
            diagram=diagram_view(req),
            summary_sha256=flow.summary_sha256(req.preview_summary),
            may_decide=detail.rights.may_decide,
            why_not=detail.rights.why_not,
            may_cancel=req.state in ("validated", "previewing", "awaiting_approval", "approved", "applying"),
        )

    return page(request, work)


@router.get("/requests/{request_id}/diagram.svg")
def request_diagram(request: HttpRequest, request_id: int) -> Response:
    """The request's architecture diagram, drawn by Graphviz from the DOT its assessment kept."""

    def work(p: Page) -> Response:
        req = flow.request_for(p.session, p.principal, request_id)
        dot = _diagram_of(req.assessment).get("dot")
        if not dot:
            raise flow.NotFound(f"request {request_id} has no architecture diagram")
        try:
            svg = _svg(dot)
        except GraphvizMissing as exc:
            raise flow.NotFound(f"request {request_id}: {exc}") from None
        return Response(svg, media_type="image/svg+xml", headers={"cache-control": "private, max-age=3600"})

    return page(request, work)


@lru_cache(maxsize=16)
def _svg(dot: str) -> bytes:
    # A request's assessment never changes, so neither does its drawing: render it once.
    return render_svg(dot)


def _diagram_of(assessment: Mapping[str, Any] | None) -> dict[str, str]:
    found = (assessment or {}).get("diagram")
    return found if isinstance(found, dict) else {}


def diagram_view(req: Request) -> dict[str, str] | None:
    """What the plan view shows of the diagram: the image's URL when Graphviz can draw it here,
    else the Mermaid text; None for an assessment without one."""
    sources = _diagram_of(req.assessment)
    if graphviz_available() and sources.get("dot"):
        return {"url": f"/requests/{req.id}/diagram.svg"}
    if sources.get("mermaid"):
        return {"mermaid": sources["mermaid"]}
    return None


@router.post("/requests/{request_id}/decide")
async def decide(request: HttpRequest, request_id: int) -> Response:
    form = await checked_form(request)

    def number(key: str) -> int | None:
        raw = str(form.get(key) or "")
        return int(raw) if raw.lstrip("-").isdigit() else None

    reviewed = flow.Reviewed(
        config_hash=str(form.get("config_hash") or "") or None,
        plan_sha256=str(form.get("plan_sha256") or "") or None,
        stack_version=number("stack_version"),
        summary_sha256=str(form.get("summary_sha256") or "") or None,
    )
    comment = str(form.get("comment") or "").strip() or None

    def work(p: Page) -> Response:
        outcome = flow.decide(
            p.session, p.principal, request_id, str(form.get("decision") or ""), comment, reviewed
        )
        _flash(request, outcome.message)
        return _redirect(f"/requests/{request_id}")

    return await run_in_threadpool(page, request, work, write=True)


@router.post("/requests/{request_id}/cancel")
async def cancel_request(request: HttpRequest, request_id: int) -> Response:
    await checked_form(request)

    def work(p: Page) -> Response:
        req = flow.cancel_request(p.session, p.principal, request_id)
        _flash(
            request,
            f"request {req.id}: cancel requested"
            if req.state == "applying"
            else f"request {req.id} cancelled",
        )
        return _redirect(f"/requests/{request_id}")

    return await run_in_threadpool(page, request, work, write=True)


@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: HttpRequest) -> Response:
    def work(p: Page) -> Response:
        rows = flow.approval_inbox(p.session, p.principal)
        users = flow.user_names(p.session, (req.requested_by for req, _env in rows))
        return p.render("approvals.html", rows=rows, users=users)

    return page(request, work)


# runs
@router.get("/runs/{job_id}", response_class=HTMLResponse)
def run_page(request: HttpRequest, job_id: int) -> Response:
    def work(p: Page) -> Response:
        job = flow.job_for(p.session, p.principal, job_id)
        live = job.state in ("queued", "running")
        events = (
            [] if live else [(e.seq, e.body) for e in queue.events_after(p.session, job.id, 0, limit=5000)]
        )
        return p.render("run.html", job=job, live=live, events=events)

    return page(request, work)


@router.post("/runs/{job_id}/cancel")
async def cancel_run(request: HttpRequest, job_id: int) -> Response:
    await checked_form(request)

    def work(p: Page) -> Response:
        job = flow.cancel_job(p.session, p.principal, job_id)
        _flash(request, f"run {job.id}: " + ("cancelled" if job.state == "cancelled" else "cancel requested"))
        return _redirect(f"/runs/{job_id}")

    return await run_in_threadpool(page, request, work, write=True)


@router.get("/runs/{job_id}/events")
async def run_events(request: HttpRequest, job_id: int) -> Response:
    """SSE for the run page: each engine event as an HTML list item (`engine`, id = its seq),
    then `end` with the outputs. A reconnect sends `Last-Event-ID` and resumes after it."""
    resume = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    after = int(resume) if resume.isdigit() else 0

    def allowed(p: Page) -> Response:
        flow.job_for(p.session, p.principal, job_id)
        return Response(status_code=204)

    checked = await run_in_threadpool(page, request, allowed)
    if checked.status_code != 204:
        return checked
    return StreamingResponse(
        _event_stream(request, job_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, html: str, event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in html.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


async def _event_stream(request: HttpRequest, job_id: int, after: int) -> AsyncIterator[str]:
    engine = _engine(request)
    item = templates.env.get_template("fragments/event.html")
    outputs = templates.env.get_template("fragments/outputs.html")

    def fetch(since: int) -> tuple[list[tuple[int, dict[str, Any]]], Job | None]:
        with session_scope(engine, write=False) as session:
            events = [(e.seq, e.body) for e in queue.events_after(session, job_id, since)]
            return events, session.get(Job, job_id)

    last = after
    while True:
        events, job = await run_in_threadpool(fetch, last)
        for seq, body in events:
            last = seq
            yield _sse("engine", item.render(seq=seq, body=body, describe_event=describe_event), seq)
        if not events and (job is None or job.state not in ("queued", "running")):
            yield _sse("end", outputs.render(job=job))
            return
        if not events:
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_SECONDS)


# --- wiring -------------------------------------------------------------------------------------
class _CsrfHandler:
    async def __call__(self, request: HttpRequest, exc: Exception) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Forbidden</title><p>The form's security token is missing or stale. "
            "Reload the page and try again.</p>",
            status_code=403,
        )


def install(app: FastAPI, web: WebSettings | None = None) -> None:
    """Add the pages to the portal's app (`api.create_app` calls this)."""
    settings: PortalSettings = app.state.settings
    web = web or WebSettings.from_env(settings)
    app.state.web = web
    app.state.oidc_client = _oidc_client(web.oidc) if web.oidc is not None else None
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_exception_handler(CsrfFailed, _CsrfHandler())
    app.add_middleware(
        SignedSession,
        secret=web.session_secret,
        max_age=web.session_max_age_seconds,
        secure=web.cookie_secure,
    )
    app.add_middleware(SecurityHeaders)


def _oidc_client(oidc: OidcSettings) -> Any:
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    return oauth.register(
        name="portal",
        server_metadata_url=oidc.metadata_url,
        client_id=oidc.client_id,
        client_secret=oidc.client_secret,
        client_kwargs={"scope": oidc.scope},
    )
