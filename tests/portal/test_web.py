"""The pages without a browser: CSRF, the CSP and cookie flags, local sign-in and OIDC settings,
authorization on every page route, validation on submit, the SSE resume. The browser tests
(tests/portal/browser/) drive the same pages in Chromium."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from hpc_platform.app.portal import assess, auth, forms, queue, web
from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Environment, Job, Request, Token, User
from hpc_platform.app.portal.settings import PortalSettings
from tests.portal.conftest import add_user
from tests.portal.fakes import FakeAssessment, WriteLockProbe


class ValidatingAssessor:
    """The real validation (the CLI's models and validators) and a stand-in for the offline plan,
    which has its own tests and takes seconds; the browser tests use the real one."""

    def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> FakeAssessment:
        assess.validate(stack, config, kind)
        return FakeAssessment(stack)


LOCAL = web.WebSettings(session_secret="s" * 40)
OIDC = web.WebSettings(
    session_secret="s" * 40,
    oidc=web.OidcSettings(issuer="https://idp.example.org", client_id="portal", client_secret="secret"),
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> PortalSettings:
    base = PortalSettings.from_env(tmp_path / "data")
    return PortalSettings(**{**base.__dict__, "database_url": sqlite_url})


@pytest.fixture
def db(settings: PortalSettings, tmp_path: Path) -> Iterator[Engine]:
    from hpc_platform.app.portal.db import make_engine
    from hpc_platform.app.portal.migrations import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def client(
    settings: PortalSettings, db: Engine, pages: web.WebSettings = LOCAL, base: str = "http://127.0.0.1"
) -> TestClient:
    return TestClient(
        create_app(settings, engine=db, assessor=ValidatingAssessor(), pages=pages), base_url=base
    )


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def sign_in(c: TestClient, token: str) -> str:
    """Local sign-in; returns the session's CSRF token."""
    signed = c.post("/signin", data={"token": token, "csrf_token": csrf_of(c.get("/signin").text)})
    assert signed.status_code == 200 and "Environments" in signed.text, signed.text[:500]
    return csrf_of(signed.text)


def count(db: Engine, model: type) -> int:
    with session_scope(db, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_pages_send_a_content_security_policy_without_inline_allowances(
    settings: PortalSettings, db: Engine
) -> None:
    with client(settings, db) as c:
        page = c.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    # No inline script or style in the markup, so the policy holds without exceptions.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "<style" not in page.text and " style=" not in page.text
    assert '"allowEval":false' in page.text and '"includeIndicatorStyles":false' in page.text


@pytest.mark.parametrize(
    ("base", "secure"),
    [("http://127.0.0.1", False), ("http://localhost", False), ("https://portal.example.org", True),
     ("http://portal.example.org", True)],
)  # fmt: skip
def test_the_session_cookie_is_http_only_same_site_and_secure_except_plain_loopback(
    settings: PortalSettings, db: Engine, base: str, secure: bool
) -> None:
    with client(settings, db, base=base) as c:
        cookie = c.get("/signin").headers["set-cookie"]
    assert cookie.startswith(f"{web.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_cookie_secure_can_be_forced_on_for_loopback(settings: PortalSettings, db: Engine) -> None:
    forced = web.WebSettings(session_secret="s" * 40, cookie_secure=True)
    with client(settings, db, forced) as c:
        assert "Secure" in c.get("/signin").headers["set-cookie"]


def test_a_form_post_without_or_with_a_wrong_csrf_token_is_refused_and_stores_nothing(
    settings: PortalSettings, db: Engine
) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        good = sign_in(c, token)
        body = {"name": "gen-dev", "group": "genomics", "kind": "dev"}
        assert c.post("/environments", data=body).status_code == 403
        assert c.post("/environments", data={**body, "csrf_token": "forged"}).status_code == 403
        assert (
            c.post("/environments", data=body, headers={"X-CSRF-Token": good[:-2] + "xx"}).status_code == 403
        )
        assert count(db, Environment) == 0
        # The same post with the session's token goes through (so the 403s were the token's doing).
        assert (
            c.post("/environments", data={**body, "csrf_token": good}, follow_redirects=False).status_code
            == 303
        )
        assert count(db, Environment) == 1


def test_a_csrf_token_of_another_session_is_refused(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as mallory:
        foreign = csrf_of(mallory.get("/signin").text)
    with client(settings, db) as c:
        sign_in(c, token)
        body = {"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": foreign}
        assert c.post("/environments", data=body).status_code == 403
    assert count(db, Environment) == 0


def test_sign_in_itself_needs_the_csrf_token(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        assert c.post("/signin", data={"token": token}).status_code == 403
        assert c.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_the_app_as_served_shows_the_sign_in_page_then_the_environments(
    settings: PortalSettings, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hpc-portal serve` builds the app with `create_app(settings, engine=...)`: the pages come
    with it, configured from the environment (no OIDC: local sign-in)."""
    for name in ("HPC_PORTAL_OIDC_ISSUER", "HPC_PORTAL_SESSION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    _, token = add_user(db, "rita", "genomics", "requester")
    app = create_app(settings, engine=db, assessor=ValidatingAssessor())
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert "Local sign-in" in c.get("/").text
        sign_in(c, token)
        assert c.get("/", follow_redirects=False).headers["location"] == "/environments"


def test_signed_out_pages_redirect_to_sign_in_and_slash_shows_it(
    settings: PortalSettings, db: Engine
) -> None:
    with client(settings, db) as c:
        home = c.get("/")
        assert home.status_code == 200 and "Local sign-in" in home.text
        for path in ("/environments", "/approvals", "/requests/1", "/runs/1", "/environments/x/request"):
            assert c.get(path, follow_redirects=False).headers["location"] == "/signin", path


def test_a_bad_or_revoked_token_does_not_sign_in(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        bad = c.post("/signin", data={"token": "hpcp_nope", "csrf_token": csrf_of(c.get("/signin").text)})
        assert bad.status_code == 401
        sign_in(c, token)
        assert c.get("/environments").status_code == 200
        with session_scope(db) as session:
            row = session.scalars(select(Token)).one()
            row.revoked_at = row.created_at
        # The session was bound to that token: revoking it signs the browser out.
        assert c.get("/environments", follow_redirects=False).status_code == 303


def test_local_sign_in_is_off_when_oidc_is_configured(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db, OIDC) as c:
        page = c.get("/signin")
        assert "Local sign-in" not in page.text and 'name="token"' not in page.text
        assert 'href="/signin/oidc"' in page.text
        refused = c.post("/signin", data={"token": token, "csrf_token": csrf_of(page.text)})
        assert refused.status_code == 404
        assert c.get("/environments", follow_redirects=False).headers["location"] == "/signin"


def test_oidc_settings_come_from_the_environment(
    settings: PortalSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPC_PORTAL_SESSION_SECRET", "k" * 40)
    assert web.WebSettings.from_env(settings).local_sign_in
    monkeypatch.setenv("HPC_PORTAL_OIDC_ISSUER", "https://idp.example.org/realms/hpc")
    with pytest.raises(ValueError, match="HPC_PORTAL_OIDC_CLIENT_ID"):
        web.WebSettings.from_env(settings)
    monkeypatch.setenv("HPC_PORTAL_OIDC_CLIENT_ID", "portal")
    monkeypatch.setenv("HPC_PORTAL_OIDC_CLIENT_SECRET", "shh")
    monkeypatch.setenv("HPC_PORTAL_OIDC_USERNAME_CLAIM", "email")
    configured = web.WebSettings.from_env(settings)
    assert not configured.local_sign_in and configured.oidc is not None
    assert (
        configured.oidc.metadata_url == "https://idp.example.org/realms/hpc/.well-known/openid-configuration"
    )
    assert configured.oidc.username_claim == "email"
    assert configured.session_secret == "k" * 40


def test_the_session_secret_is_generated_once_and_kept_private(
    settings: PortalSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPC_PORTAL_SESSION_SECRET", raising=False)
    first = web.session_secret(settings)
    assert web.session_secret(settings) == first and len(first) >= 40
    assert (settings.data_dir / "session-secret").stat().st_mode & 0o077 == 0


def test_oidc_claims_map_to_an_existing_portal_user_only(db: Engine) -> None:
    add_user(db, "rita@example.org", "genomics", "requester")
    oidc = web.OidcSettings("https://idp", "c", "s", username_claim="email")
    with session_scope(db, write=False) as session:
        user = web.user_for_claims(session, {"email": "rita@example.org", "groups": ["admins"]}, oidc)
        assert user is not None and user.name == "rita@example.org"
        # Roles come from the portal's memberships, not from the provider's group claim.
        assert auth.principal_of(session, user).roles == {"genomics": "requester"}
        assert web.user_for_claims(session, {"email": "eve@example.org"}, oidc) is None
        assert web.user_for_claims(session, {"sub": "123"}, oidc) is None


def _environment_with_a_run(db: Engine, name: str, group: str) -> int:
    owner, _ = add_user(db, f"{group}-owner", group, "admin")
    with session_scope(db) as session:
        env = Environment(name=name, group_name=group, kind="dev", owner_id=owner.user_id)
        session.add(env)
        session.flush()
        job = queue.enqueue(session, env, "preview", created_by="test")
        job.state = "succeeded"
        req = Request(
            environment_id=env.id, action="create", state="awaiting_approval", requested_by=owner.user_id
        )
        session.add(req)
        session.flush()
        return job.id


def _assessment(stack: str, diagram: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A stored assessment with everything the plan view and the approval inbox show."""
    return {
        "stack": stack,
        "environment_kind": "dev",
        "resource_count": 1,
        "plan_summary": {"project": "hpc-platform", "stack": stack, "components": [], "by_type": {}},
        "verdict": {"passes": True, "enforcement": "advisory", "summary": "", "mandatory": [],
                    "advisory": []},
        "cost": {"monthly_usd": 1.0, "budget_usd": None, "prices": {"region": "us-east-2", "as_of": "now"},
                 "lines": []},
        "warnings": [],
        "diagram": dict(diagram or {}),
    }  # fmt: skip


def _assessed_request(db: Engine, group: str, diagram: dict[str, str]) -> int:
    """A request in `group` whose stored assessment has everything the plan view shows."""
    owner, _ = add_user(db, f"{group}-owner", group, "admin")
    assessment = _assessment(f"{group}-dev", diagram)
    with session_scope(db) as session:
        env = Environment(name=f"{group}-dev", group_name=group, kind="dev", owner_id=owner.user_id)
        session.add(env)
        session.flush()
        req = Request(
            environment_id=env.id,
            action="create",
            state="awaiting_approval",
            requested_by=owner.user_id,
            assessment=assessment,
        )
        session.add(req)
        session.flush()
        return req.id


def _owner_token(db: Engine, group: str) -> str:
    with session_scope(db) as session:
        owner = session.scalars(select(User).where(User.name == f"{group}-owner")).one()
        return auth.issue_token(session, owner, "test")


TINY_DIAGRAM = {
    "dot": 'digraph a { queue_a [label="queue compute"]; lustre [label="scratch"]; queue_a -> lustre }',
    "mermaid": 'flowchart TB\n  queue_a["queue compute"] --> lustre["scratch"]\n',
}


def test_the_plan_view_shows_the_architecture_diagram_as_an_image(
    settings: PortalSettings, db: Engine
) -> None:
    rid = _assessed_request(db, "genomics", TINY_DIAGRAM)
    other = _assessed_request(db, "chemistry", TINY_DIAGRAM)
    with client(settings, db) as c:
        sign_in(c, _owner_token(db, "genomics"))
        page = c.get(f"/requests/{rid}").text
        assert f'<img src="/requests/{rid}/diagram.svg" alt="Architecture diagram' in page
        image = c.get(f"/requests/{rid}/diagram.svg")
        assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
        assert b"<svg" in image.content and b">queue compute</text>" in image.content
        # Served from the portal itself, so the page's CSP (img-src 'self') lets it load.
        assert "img-src 'self'" in c.get(f"/requests/{rid}").headers["content-security-policy"]
        assert c.get(f"/requests/{other}/diagram.svg").status_code == 404  # another group's


def test_the_plan_view_shows_mermaid_text_without_graphviz(
    settings: PortalSettings, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = _assessed_request(db, "genomics", TINY_DIAGRAM)
    monkeypatch.setenv("PATH", "/nonexistent")  # no `dot`
    with client(settings, db) as c:
        sign_in(c, _owner_token(db, "genomics"))
        page = html.unescape(c.get(f"/requests/{rid}").text)
        assert "<img" not in page and "Graphviz is not installed" in page
        assert 'queue_a["queue compute"] --> lustre["scratch"]' in page
        web._svg.cache_clear()
        assert c.get(f"/requests/{rid}/diagram.svg").status_code == 404


def test_another_groups_pages_are_not_found(settings: PortalSettings, db: Engine) -> None:
    job_id = _environment_with_a_run(db, "chem-dev", "chemistry")
    _, token = add_user(db, "rita", "genomics", "approver")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        assert "chem-dev" not in c.get("/environments").text
        assert "chem-dev" not in c.get("/approvals").text
        env_pages = (
            "/environments/chem-dev",
            "/environments/chem-dev/audit",
            "/environments/chem-dev/request",
        )
        for path in (*env_pages, "/requests/1", f"/runs/{job_id}", f"/runs/{job_id}/events"):
            assert c.get(path).status_code == 404, path
        for path in ("/requests/1/decide", "/requests/1/cancel", f"/runs/{job_id}/cancel",
                     "/environments/chem-dev/destroy", "/environments/chem-dev/requests"):  # fmt: skip
            assert c.post(path, data={"csrf_token": csrf, "decision": "approve"}).status_code == 404, path
    with session_scope(db, write=False) as session:
        assert session.scalars(select(Request.state)).one() == "awaiting_approval"


def test_a_requester_cannot_create_an_environment_in_another_group(
    settings: PortalSettings, db: Engine
) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        body = {"name": "chem-dev", "group": "chemistry", "kind": "dev", "csrf_token": csrf}
        assert c.post("/environments", data=body).status_code == 403
    assert count(db, Environment) == 0


def _request_form(c: TestClient, name: str) -> tuple[str, str]:
    page = c.get(f"/environments/{name}/request")
    assert page.status_code == 200
    base = re.search(r'name="base" value="([^"]*)"', page.text)
    assert base
    return csrf_of(page.text), html.unescape(base.group(1))


def test_a_bad_field_is_named_next_to_it_on_submit_and_nothing_is_stored(
    settings: PortalSettings, db: Engine
) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        c.post(
            "/environments", data={"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": csrf}
        )
        csrf, base = _request_form(c, "gen-dev")
        form = {
            "csrf_token": csrf,
            "mode": "fields",
            "base": base,
            "hpc:cluster.queues[0].name": "Compute-Spot",
        }
        live = c.post("/environments/gen-dev/request/validate", data=form)
        submitted = c.post("/environments/gen-dev/requests", data=form)
    slot = forms.dom_id("hpc:cluster.queues[0].name") + "-err"
    for page in (live.text, submitted.text):
        message = re.search(rf'<p id="{slot}"[^>]*>(.*?)</p>', page, re.S)
        assert message and "not a valid ParallelCluster queue" in html.unescape(message.group(1)), page[:2000]
    assert submitted.status_code == 422
    assert 'aria-invalid="true"' in submitted.text
    assert count(db, Request) == 0 and count(db, Job) == 0


def test_a_valid_request_goes_through_the_flow_as_the_api_does(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        c.post(
            "/environments", data={"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": csrf}
        )
        csrf, base = _request_form(c, "gen-dev")
        form = {"csrf_token": csrf, "mode": "fields", "base": base, "hpc:cluster.queues[0].name": "compute-a"}
        done = c.post("/environments/gen-dev/requests", data=form, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/requests/1"
        page = c.get("/requests/1").text
    assert "previewing" in page
    with session_scope(db, write=False) as session:
        req = session.scalars(select(Request)).one()
        assert req.config is not None and req.config["hpc:cluster"]["queues"][0]["name"] == "compute-a"
        assert session.scalars(select(Job.operation)).all() == ["preview"]


def test_yaml_mode_reports_problems_by_key(settings: PortalSettings, db: Engine) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        c.post(
            "/environments", data={"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": csrf}
        )
        csrf, base = _request_form(c, "gen-dev")
        text = base.replace("max_total_nodes: 16", "max_total_nodes: 0")
        answer = c.post(
            "/environments/gen-dev/request/validate", data={"csrf_token": csrf, "mode": "yaml", "yaml": text}
        )
    assert "hpc:cluster.max_total_nodes" in answer.text


def test_the_run_stream_resumes_after_last_event_id(settings: PortalSettings, db: Engine) -> None:
    job_id = _environment_with_a_run(db, "gen-dev", "genomics")
    for seq in (1, 2, 3):
        queue.append_event(
            db, job_id, seq, {"diagnosticEvent": {"message": f"line {seq}", "severity": "info"}}
        )
    with session_scope(db, write=False) as session:
        owner = session.scalars(select(User).where(User.name == "genomics-owner")).one()
        with session_scope(db) as writer:
            token = auth.issue_token(writer, writer.get(User, owner.id), "test")  # type: ignore[arg-type]
    with client(settings, db) as c:
        sign_in(c, token)
        full = c.get(f"/runs/{job_id}/events").text
        resumed = c.get(f"/runs/{job_id}/events", headers={"Last-Event-ID": "2"}).text
        # A new EventSource (htmx reopening a closed stream) asks with the URL the page keeps.
        reopened = c.get(f"/runs/{job_id}/events?after=2").text
        with session_scope(db) as session:
            session.get_one(Job, job_id).state = "running"
        live = c.get(f"/runs/{job_id}").text
    assert [int(i) for i in re.findall(r"^id: (\d+)$", full, re.M)] == [1, 2, 3]
    assert [int(i) for i in re.findall(r"^id: (\d+)$", resumed, re.M)] == [3]
    assert "line 3" in resumed and "line 1" not in resumed
    assert "event: end" in resumed and 'id="outputs"' in resumed
    assert reopened == resumed
    assert f'sse-connect="/runs/{job_id}/events"' in live and "data-sse-resume" in live
    assert '<script src="/static/sse-resume.js" defer></script>' in live


def test_key_paths_wrap_only_after_dots() -> None:
    assert str(web.key_path("hpc:cluster.queues[0].name")) == (
        '<code class="key">hpc:cluster.<wbr>queues[0].<wbr>name</code>'
    )
    assert "<b>" not in str(web.key_path("hpc:<b>.x"))  # escaped
    css = (web.STATIC_DIR / "portal.css").read_text()
    assert "break-all" not in css  # which split names anywhere, mid-word


def test_form_paths_set_and_read_leaves() -> None:
    config = {"hpc:cluster": {"queues": [{"name": "a", "compute_resources": [{"max_count": 1}]}]}}
    assert forms.get_path(config, "hpc:cluster.queues[0].compute_resources[0].max_count") == 1
    changed = forms.apply_fields(config, {"hpc:cluster.queues[0].compute_resources[0].max_count": "4",
                                          "hpc:cluster.queues[0].name": "b", "hpc:evil": "x"})  # fmt: skip
    assert changed["hpc:cluster"]["queues"][0] == {"name": "b", "compute_resources": [{"max_count": 4}]}
    assert "hpc:evil" not in changed and config["hpc:cluster"]["queues"][0]["name"] == "a"
    # Not a number: kept as typed, so the validators name it with their own message.
    assert (
        forms.apply_fields(config, {"hpc:cluster.queues[0].compute_resources[0].max_count": "four"})[
            "hpc:cluster"
        ]["queues"][0]["compute_resources"][0]["max_count"]
        == "four"
    )
    with pytest.raises(forms.PathError):
        forms.parse_path("hpc:cluster..queues")


BASE = re.compile(r'name="base" value="([^"]*)"')


def _queue_names(page: str) -> list[str]:
    return re.findall(r'name="hpc:cluster\.queues\[\d+\]\.name" type="text" value="([^"]*)"', page)


def _base(page: str) -> str:
    match = BASE.search(page)
    assert match, "no base config in the form"
    return html.unescape(match.group(1))


def test_fields_mode_adds_and_removes_queues_keeping_edits_and_validating(
    settings: PortalSettings, db: Engine
) -> None:
    _, token = add_user(db, "rita", "genomics", "requester")
    with client(settings, db) as c:
        csrf = sign_in(c, token)
        c.post(
            "/environments", data={"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": csrf}
        )
        page = c.get("/environments/gen-dev/request").text
        assert _queue_names(page) == ["compute-spot", "compute-od", "debug"]
        assert 'name="queue" value="add"' in page and 'value="remove-2"' in page
        form = {"csrf_token": csrf, "mode": "fields", "base": _base(page)}

        def post(**fields: str) -> str:
            answer = c.post("/environments/gen-dev/request/form", data={**form, **fields})
            assert answer.status_code == 200
            return answer.text

        added = post(**{"hpc:cluster.queues[0].name": "spot", "queue": "add"})
        # A copy of the last queue under a free name; what was typed before is kept.
        assert _queue_names(added) == ["spot", "compute-od", "debug", "queue-4"]
        assert 'hx-post="/environments/gen-dev/request/form"' in added
        queues = assess.parse_body(_base(added), "application/yaml")["hpc:cluster"]["queues"]
        assert queues[3]["compute_resources"] == queues[2]["compute_resources"]
        # Validated as any edit: a bad name typed before adding is named next to its field.
        bad = post(**{"hpc:cluster.queues[0].name": "Spot", "queue": "add"})
        problem = re.search(rf'id="{forms.dom_id("hpc:cluster.queues[0].name")}-err"[^>]*>(.*?)</', bad, re.S)
        assert problem and "lowercase" in problem.group(1), bad
        form["base"] = _base(added)
        removed = post(queue="remove-0")
        assert _queue_names(removed) == ["compute-od", "debug", "queue-4"]
        for _ in range(2):
            form["base"] = _base(removed)
            removed = post(queue="remove-0")
        # One queue left: the form offers no remove (a cluster needs a queue).
        assert _queue_names(removed) == ["queue-4"] and 'name="queue" value="remove-' not in removed
        # Without the CSRF token nothing happens.
        refused = c.post("/environments/gen-dev/request/form", data={"base": form["base"], "queue": "add"})
        assert refused.status_code == 403


def test_adding_a_queue_copies_the_last_under_a_free_name() -> None:
    config = {"hpc:cluster": {"queues": [{"name": "queue-2", "compute_resources": [{"max_count": 2}]}]}}
    grown = forms.add_queue(config)
    assert [q["name"] for q in grown["hpc:cluster"]["queues"]] == ["queue-2", "queue-3"]
    assert [q["name"] for q in config["hpc:cluster"]["queues"]] == ["queue-2"]  # a copy was changed
    assert forms.remove_queue(grown, 5) == grown
    assert [q["name"] for q in forms.remove_queue(grown, 0)["hpc:cluster"]["queues"]] == ["queue-3"]


def test_fields_carry_the_models_bounds_and_help() -> None:
    from hpc_platform.domain.config.loader import read_stack_file
    from tests.support.stacks import stack_file

    fields = {f.key: f for f in forms.all_fields(read_stack_file(stack_file("dev")))}
    max_count = fields["hpc:cluster.queues[0].compute_resources[0].max_count"]
    assert max_count.kind == "int" and max_count.minimum == 1
    assert fields["hpc:cluster.queues[0].capacity_type"].options == ("ONDEMAND", "SPOT", "CAPACITY_BLOCK")
    assert fields["hpc:observability.budget.monthly_limit_usd"].kind == "float"
    assert fields["hpc:cluster.queues[0].name"].help


def test_the_page_submit_plans_without_holding_the_database_write_lock(
    settings: PortalSettings, db: Engine, tmp_path: Path
) -> None:
    probe = WriteLockProbe(tmp_path / "portal.db")
    _, token = add_user(db, "rita", "genomics", "requester")
    app = create_app(settings, engine=db, assessor=probe, pages=LOCAL)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        csrf = sign_in(c, token)
        c.post(
            "/environments", data={"name": "gen-dev", "group": "genomics", "kind": "dev", "csrf_token": csrf}
        )
        csrf, base = _request_form(c, "gen-dev")
        form = {"csrf_token": csrf, "mode": "fields", "base": base}
        done = c.post("/environments/gen-dev/requests", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert probe.writable == [True]
    assert count(db, Request) == 1


def _worker_draining(settings: PortalSettings, db: Engine) -> Callable[[], None]:
    """A registered worker with the fake operations; calling the result runs every queued job."""
    from hpc_platform.app.portal.worker import Worker
    from tests.portal.fakes import FakeOperations

    ops = FakeOperations()
    worker = Worker(settings, db, run_operation=ops, current_version=ops.current_version)
    worker.register()

    def drain() -> None:
        while worker.run_once():
            pass

    return drain


def test_the_request_page_shows_a_destroys_preview_and_its_form_binds_it(
    settings: PortalSettings, db: Engine
) -> None:
    from hpc_platform.app.portal import flow
    from tests.portal.fakes import FakeAssessor, dev_config, simple_diff

    drain = _worker_draining(settings, db)

    rita, rita_token = add_user(db, "rita", "genomics", "requester")
    alan, alan_token = add_user(db, "alan", "genomics", "approver")
    with session_scope(db) as session:
        flow.create_environment(session, rita, "gen-stg", "genomics", "staging")
        rid = flow.submit_request(
            session, rita, "gen-stg", dev_config("staging"), FakeAssessor(), simple_diff
        ).id
    drain()
    with session_scope(db) as session:
        flow.decide(session, alan, rid, "approve")
    drain()
    with client(settings, db) as c:
        csrf = sign_in(c, rita_token)
        done = c.post("/environments/gen-stg/destroy", data={"csrf_token": csrf}, follow_redirects=False)
        assert done.status_code == 303
        destroy_page = done.headers["location"]
        assert "the destroy preview is running" in c.get(destroy_page).text
    drain()
    with client(settings, db) as c:
        sign_in(c, alan_token)
        page = c.get(destroy_page).text
        assert "What the destroy would delete" in page
        assert re.search(r"<dt>delete</dt><dd>3 resources</dd>", page)
        hidden = dict(re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', page))
        with session_scope(db, write=False) as session:
            req = session.scalars(select(Request).where(Request.action == "destroy")).one()
            assert hidden["summary_sha256"] == flow.summary_sha256(req.preview_summary) is not None
        form = {**hidden, "decision": "approve"}
        stale = c.post(f"{destroy_page}/decide", data={**form, "summary_sha256": "0" * 64})
        assert stale.status_code == 409 and "summary_sha256" in html.unescape(stale.text)
        approved = c.post(f"{destroy_page}/decide", data=form, follow_redirects=False)
        assert approved.status_code == 303
    drain()
    with session_scope(db, write=False) as session:
        assert session.scalars(select(Request.state).where(Request.action == "destroy")).one() == "applied"
        assert session.scalars(select(Environment.status)).one() == "destroyed"


def _two_groups_with_history(settings: PortalSettings, db: Engine) -> dict[str, Any]:
    """Two groups' environments, each with requests, runs, an approval and audit entries made by
    the flow and the worker, so every page of one group has the other's rows next to its own."""
    from hpc_platform.app.portal import flow
    from tests.portal.fakes import FakeAssessment, dev_config, simple_diff

    class Assessed(FakeAssessment):
        def to_json(self) -> dict[str, Any]:
            return _assessment(self.stack)

    class Assessor:
        def assess(self, stack: str, config: Mapping[str, Any], kind: str | None = None) -> Assessed:
            return Assessed(stack)

    drain = _worker_draining(settings, db)

    def submit(who: Any, env: str) -> int:
        with session_scope(db) as session:
            return flow.submit_request(session, who, env, dev_config("dev"), Assessor(), simple_diff).id

    def decide(who: Any, rid: int, decision: str, comment: str) -> None:
        with session_scope(db) as session:
            flow.decide(session, who, rid, decision, comment)

    tokens = {}
    people = {}
    for name, group, role in (
        ("rita", "genomics", "requester"),
        ("alan", "genomics", "approver"),
        ("carl", "chemistry", "requester"),
        ("cleo", "chemistry", "approver"),
    ):
        people[name], tokens[name] = add_user(db, name, group, role)
    with session_scope(db) as session:
        flow.create_environment(session, people["rita"], "gen-dev", "genomics", "dev")
        flow.create_environment(session, people["carl"], "chem-dev", "chemistry", "dev")
    gen_applied = submit(people["rita"], "gen-dev")
    chem_rejected = submit(people["carl"], "chem-dev")
    drain()
    decide(people["alan"], gen_applied, "approve", "genomics-approval-note")
    decide(people["cleo"], chem_rejected, "reject", "chemistry-rejection-note")
    drain()
    gen_waiting = submit(people["rita"], "gen-dev")
    chem_waiting = submit(people["carl"], "chem-dev")
    drain()
    with session_scope(db, write=False) as session:
        runs: dict[int, list[int]] = {}
        for job in session.scalars(select(Job).order_by(Job.id)):
            assert job.request_id is not None and job.state == "succeeded"
            runs.setdefault(job.request_id, []).append(job.id)
        states = {r.id: r.state for r in session.scalars(select(Request))}
    assert states == {
        gen_applied: "applied",
        chem_rejected: "rejected",
        gen_waiting: "awaiting_approval",
        chem_waiting: "awaiting_approval",
    }
    return {
        "tokens": tokens,
        "gen": {"applied": gen_applied, "waiting": gen_waiting},
        "chem": {"rejected": chem_rejected, "waiting": chem_waiting},
        "runs": runs,
    }


def _links(page: str, kind: str, ids: list[int]) -> set[int]:
    return {i for i in ids if f'href="/{kind}/{i}"' in page}


def test_a_groups_pages_show_none_of_another_groups_requests_runs_or_audit(
    settings: PortalSettings, db: Engine
) -> None:
    """The environment list, an environment, its audit log, a request and the approval inbox show
    the caller's group's rows only, though the other group's sit in the same tables."""
    world = _two_groups_with_history(settings, db)
    gen, chem, runs = world["gen"], world["chem"], world["runs"]
    gen_requests, chem_requests = sorted(gen.values()), sorted(chem.values())
    gen_runs = sorted(j for r in gen_requests for j in runs[r])
    chem_runs = sorted(j for r in chem_requests for j in runs[r])
    every_request, every_run = gen_requests + chem_requests, gen_runs + chem_runs
    with client(settings, db) as c:
        sign_in(c, world["tokens"]["alan"])
        listing = c.get("/environments").text
        assert "gen-dev" in listing and "chem-dev" not in listing
        assert _links(listing, "runs", every_run) == {max(gen_runs)}  # the last run of gen-dev

        env_page = c.get("/environments/gen-dev").text
        assert _links(env_page, "requests", every_request) == set(gen_requests)
        assert _links(env_page, "runs", every_run) == set(gen_runs)
        assert "carl" not in env_page and "cleo" not in env_page

        audit_page = c.get("/environments/gen-dev/audit").text
        assert "rita" in audit_page and "alan" in audit_page
        assert "carl" not in audit_page and "cleo" not in audit_page

        request_page = c.get(f"/requests/{gen['applied']}").text
        # Its own runs only: neither the same environment's other request's nor the other group's.
        assert _links(request_page, "runs", every_run) == set(runs[gen["applied"]])
        assert "genomics-approval-note" in request_page and "by alan" in request_page
        assert "chemistry-rejection-note" not in request_page and "cleo" not in request_page

        inbox = c.get("/approvals").text
        assert _links(inbox, "requests", every_request) == {gen["waiting"]}

        for path in (*(f"/requests/{r}" for r in chem_requests), *(f"/runs/{j}" for j in chem_runs)):
            assert c.get(path).status_code == 404, path


def test_a_member_without_the_role_gets_403_from_the_decide_form_and_nothing_changes(
    settings: PortalSettings, db: Engine
) -> None:
    world = _two_groups_with_history(settings, db)
    waiting = world["gen"]["waiting"]
    with client(settings, db) as c:
        csrf = sign_in(c, world["tokens"]["rita"])  # a requester of the request's own group
        page = c.get(f"/requests/{waiting}")
        assert page.status_code == 200 and "waiting for an approver of group genomics" in page.text
        refused = c.post(f"/requests/{waiting}/decide", data={"csrf_token": csrf, "decision": "approve"})
        assert refused.status_code == 403 and "approver role in group" in html.unescape(refused.text)
    with session_scope(db, write=False) as session:
        assert session.get_one(Request, waiting).state == "awaiting_approval"
