"""Who may approve or reject a request: `flow.decision_rights` is the one rule. For each case the
request page offers the decision form (or says why not), the API reports the same, the approval
inbox lists the request exactly when it may be decided, and `flow.decide` accepts or refuses it
accordingly: the page never offers what approving refuses, nor hides what it allows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from hpc_platform.app.portal import auth, flow, web
from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Environment, Request, User
from hpc_platform.app.portal.worker import Worker
from tests.portal.conftest import add_user
from tests.portal.fakes import FakeAssessor, FakeOperations, data_dir_settings, dev_config, simple_diff

PAGES = web.WebSettings(session_secret="s" * 40)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    """Group genomics: rita requests and also approves, alan approves, nora only requests."""

    engine: Engine
    client: TestClient
    worker: Worker
    people: dict[str, Principal]
    tokens: dict[str, str]

    def drain(self) -> None:
        while self.worker.run_once():
            pass

    def submit(self, who: str, env: str, kind: str) -> int:
        with session_scope(self.engine) as session:
            config = dev_config(kind)
            return flow.submit_request(session, self.people[who], env, config, FakeAssessor(), simple_diff).id


@pytest.fixture
def world(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[World]:
    settings = data_dir_settings(tmp_path / "data", database_url=db_url, backoff_base_seconds=0)
    ops = FakeOperations()
    worker = Worker(settings, engine, run_operation=ops, current_version=ops.current_version)
    worker.register()
    people: dict[str, Principal] = {}
    tokens: dict[str, str] = {}
    for name, role in (("rita", "requester"), ("alan", "approver"), ("nora", "requester")):
        people[name], tokens[name] = add_user(engine, name, "genomics", role)
    with session_scope(engine) as session:
        user = session.get_one(User, people["rita"].user_id)
        auth.add_user(session, user.name, "genomics", "approver")
        people["rita"] = auth.principal_of(session, user)
        for env, kind in (("gen-dev", "dev"), ("gen-stg", "staging")):
            flow.create_environment(session, people["rita"], env, "genomics", kind)
    app = create_app(settings, engine=engine, assessor=FakeAssessor(), pages=PAGES)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield World(engine, client, worker, people, tokens)


def agree(
    world: World,
    who: str,
    rid: int,
    *,
    offered: bool,
    why_not: str = "",
    refused: type[flow.FlowError] | None,
) -> None:
    """What the rule says, what the page, the API and the inbox show, and what `decide` does all
    agree: the decision is offered exactly when `decide` accepts it."""
    principal = world.people[who]
    with session_scope(world.engine, write=False) as session:
        req = session.get_one(Request, rid)
        rights = flow.decision_rights(principal, req, session.get_one(Environment, req.environment_id))
        inbox = [r.id for r, _env in flow.approval_inbox(session, principal)]
    assert (rights.may_decide, rights.why_not) == (offered, why_not)
    assert (rid in inbox) == offered

    c = world.client
    c.cookies.clear()
    signin = c.get("/signin").text
    match = CSRF.search(signin)
    assert match
    c.post("/signin", data={"token": world.tokens[who], "csrf_token": match.group(1)})
    page = c.get(f"/requests/{rid}")
    assert page.status_code == 200, page.text[:300]
    assert (f'action="/requests/{rid}/decide"' in page.text) == offered
    shown = re.search(r'<p class="note" id="why-not">(.*?)\.</p>', page.text)
    assert (shown.group(1) if shown else "") == why_not

    api = c.get(f"/api/requests/{rid}", headers={"Authorization": f"Bearer {world.tokens[who]}"}).json()
    assert (api["may_decide"], api["why_not"]) == (offered, why_not)

    with session_scope(world.engine) as session:
        if refused is None:
            assert flow.decide(session, principal, rid, "approve").outcome == "approved"
        else:
            assert rights.refusal is not None
            with pytest.raises(refused, match=re.escape(rights.refusal.message)):
                flow.decide(session, principal, rid, "approve")
    with session_scope(world.engine, write=False) as session:
        after = session.get_one(Request, rid).state
    assert (after == "approved") == (refused is None)


@pytest.mark.parametrize(
    ("who", "offered", "why_not", "refused"),
    [
        pytest.param("alan", True, "", None, id="an-approver-of-the-group-on-someone-elses"),
        pytest.param(
            "rita",
            False,
            "staging requests need an approver other than the requester",
            flow.Forbidden,
            id="a-requester-who-approves-on-their-own",
        ),
        pytest.param(
            "nora",
            False,
            "waiting for an approver of group genomics",
            flow.Forbidden,
            id="a-member-without-the-approver-role-is-told-who-decides",
        ),
    ],
)
def test_who_may_decide_a_staging_request_awaiting_approval(
    world: World, who: str, offered: bool, why_not: str, refused: type[flow.FlowError] | None
) -> None:
    rid = world.submit("rita", "gen-stg", "staging")
    world.drain()
    agree(world, who, rid, offered=offered, why_not=why_not, refused=refused)


def test_a_requester_who_approves_may_decide_their_own_dev_request(world: World) -> None:
    assert "dev" in flow.SELF_APPROVAL_ALLOWED
    rid = world.submit("rita", "gen-dev", "dev")
    world.drain()
    agree(world, "rita", rid, offered=True, refused=None)


def test_a_request_not_awaiting_approval_is_not_offered_even_to_an_approver(world: World) -> None:
    rid = world.submit("rita", "gen-stg", "staging")  # not drained: its preview has not run
    with session_scope(world.engine, write=False) as session:
        assert session.get_one(Request, rid).state == "previewing"
    agree(world, "alan", rid, offered=False, refused=flow.Conflict)


def test_a_superseded_request_is_not_offered_and_decide_names_the_newer_one(world: World) -> None:
    older = world.submit("rita", "gen-stg", "staging")
    world.drain()
    newer = world.submit("rita", "gen-stg", "staging")
    with session_scope(world.engine, write=False) as session:
        assert session.get_one(Request, older).superseded_by_id == newer
    agree(world, "alan", older, offered=False, refused=flow.Conflict)
