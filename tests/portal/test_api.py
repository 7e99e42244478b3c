"""The HTTP API: health and OpenAPI, authentication and group isolation, hostile input (each a
clear 4xx with nothing stored), approvals through HTTP, engine events over SSE with resume, and
the audit log. The config assessment is the real warm assessor where the message matters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.assess import Assessor, config_diff
from hpc_platform.app.portal.db import make_engine, session_scope
from hpc_platform.app.portal.migrations import upgrade
from hpc_platform.app.portal.models import Approval, Environment, Request
from hpc_platform.app.portal.worker import Worker
from tests.portal.conftest import add_user
from tests.portal.fakes import FakeAssessor, FakeOperations, WriteLockProbe, data_dir_settings, dev_config
from tests.support.stacks import stack_file


class Portal:
    def __init__(self, client: TestClient, engine: Engine, worker: Worker, ops: FakeOperations):
        self.client, self.engine, self.worker, self.ops = client, engine, worker, ops
        self.tokens: dict[str, str] = {}

    def user(self, name: str, group: str, role: str) -> str:
        self.tokens[name] = add_user(self.engine, name, group, role)[1]
        return self.tokens[name]

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def drain(self) -> None:
        while self.worker.run_once():
            pass

    def count(self, model: Any) -> int:
        with session_scope(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def real_assessor() -> Assessor:
    return Assessor()


def make_portal(tmp_path: Path, url: str, assessor: Any) -> Iterator[Portal]:
    """A portal on the SQLite database at `url` (a `sqlite_url`: `portal.db` in `tmp_path`)."""
    engine = make_engine(url)
    upgrade(engine)
    settings = data_dir_settings(tmp_path / "data", database_url=url, max_body_bytes=64 * 1024)
    ops = FakeOperations()
    worker = Worker(settings, engine, run_operation=ops, current_version=ops.current_version)
    worker.register()
    app = create_app(settings, engine=engine, assessor=assessor, diff=config_diff)
    with TestClient(app) as client:
        portal = Portal(client, engine, worker, ops)
        portal.user("rita", "genomics", "requester")
        portal.user("alan", "genomics", "approver")
        portal.user("olga", "physics", "admin")
        yield portal
    engine.dispose()


@pytest.fixture
def portal(tmp_path: Path, sqlite_url: str) -> Iterator[Portal]:
    yield from make_portal(tmp_path, sqlite_url, FakeAssessor())


@pytest.fixture
def assessed_portal(tmp_path: Path, sqlite_url: str, real_assessor: Assessor) -> Iterator[Portal]:
    yield from make_portal(tmp_path, sqlite_url, real_assessor)


def create_env(portal: Portal, name: str = "gen-dev", kind: str = "dev", who: str = "rita") -> None:
    response = portal.client.post(
        "/api/environments", json={"name": name, "group": "genomics", "kind": kind}, headers=portal.as_(who)
    )
    assert response.status_code == 201, response.text


def submit(portal: Portal, config: dict[str, Any], name: str = "gen-dev", who: str = "rita") -> Any:
    return portal.client.post(
        f"/api/environments/{name}/requests",
        content=json.dumps(config),
        headers={**portal.as_(who), "Content-Type": "application/json"},
    )


def test_health_and_the_openapi_document(portal: Portal) -> None:
    assert portal.client.get("/healthz").json() == {"status": "ok"}
    paths = portal.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/environments",
        "/api/environments/{name}/requests",
        "/api/requests/{request_id}/approve",
        "/api/approvals",
        "/api/runs/{job_id}/events/stream",
        "/api/environments/{name}/audit",
    ):
        assert path in paths


def test_fails_unauthenticated_calls_with_401(portal: Portal) -> None:
    for headers in ({}, {"Authorization": "Bearer hpcp_not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = portal.client.get("/api/environments", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_another_groups_environment_is_not_found_and_a_missing_role_is_forbidden(portal: Portal) -> None:
    create_env(portal)
    assert portal.client.get("/api/environments", headers=portal.as_("olga")).json() == []
    for method, path in (
        ("get", "/api/environments/gen-dev"),
        ("get", "/api/environments/gen-dev/audit"),
        ("post", "/api/environments/gen-dev/destroy"),
    ):
        assert getattr(portal.client, method)(path, headers=portal.as_("olga")).status_code == 404
    assert submit(portal, dev_config("dev"), who="olga").status_code == 404
    response = portal.client.post(
        "/api/environments",
        json={"name": "x", "group": "genomics", "kind": "dev"},
        headers=portal.as_("olga"),
    )
    assert response.status_code == 403
    rid = submit(portal, dev_config("dev")).json()["id"]
    portal.drain()
    assert (
        portal.client.post(f"/api/requests/{rid}/approve", json={}, headers=portal.as_("rita")).status_code
        == 403
    )
    assert portal.client.get(f"/api/requests/{rid}", headers=portal.as_("olga")).status_code == 404


@pytest.mark.parametrize(
    "name", ["../etc", "..", "a..b/..", "x;rm -rf", "x'--", "a%2Fb", "$(id)", "UPPER", "a" * 41, "ab`id`"]
)
def test_fails_environment_names_with_separators_dots_or_metacharacters(portal: Portal, name: str) -> None:
    response = portal.client.post(
        "/api/environments",
        json={"name": name, "group": "genomics", "kind": "dev"},
        headers=portal.as_("rita"),
    )
    assert response.status_code == 422
    assert [p["key"] for p in response.json()["problems"]] == ["name"]
    assert portal.count(Environment) == 0


@pytest.mark.parametrize("path_name", ["..%2F..%2Fetc", "a%00b", "x%3Brm", "%2E%2E"])
def test_fails_hostile_names_in_paths(portal: Portal, path_name: str) -> None:
    response = portal.client.get(f"/api/environments/{path_name}", headers=portal.as_("rita"))
    assert 400 <= response.status_code < 500
    response = portal.client.post(
        f"/api/environments/{path_name}/requests", content=b"{}", headers=portal.as_("rita")
    )
    assert 400 <= response.status_code < 500
    assert portal.count(Request) == 0


def test_fails_unknown_keys_and_malformed_json_in_api_bodies(portal: Portal) -> None:
    response = portal.client.post(
        "/api/environments",
        json={"name": "gen-dev", "group": "genomics", "kind": "dev", "owner": "me"},
        headers=portal.as_("rita"),
    )
    assert response.status_code == 422
    assert response.json()["problems"] == [{"key": "owner", "message": "unknown key"}]
    response = portal.client.post(
        "/api/environments",
        content=b'{"name": "gen-dev",',
        headers={**portal.as_("rita"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert portal.count(Environment) == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"config: [unclosed", "application/yaml"),
        (b'{"aws:region": ', "application/json"),
        (b"- a list\n- not a mapping\n", "application/yaml"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_fails_malformed_config_bodies_with_422_and_stores_nothing(
    portal: Portal, body: bytes, content_type: str
) -> None:
    create_env(portal)
    response = portal.client.post(
        "/api/environments/gen-dev/requests",
        content=body,
        headers={**portal.as_("rita"), "Content-Type": content_type},
    )
    assert response.status_code == 422, response.text
    assert response.json()["problems"] and all("message" in p for p in response.json()["problems"])
    assert portal.count(Request) == 0


def test_fails_a_body_over_the_size_limit_with_413_and_stores_nothing(portal: Portal) -> None:
    create_env(portal)
    big = dev_config("dev", **{"hpc:padding": "x" * (70 * 1024)})
    assert submit(portal, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"aws:region": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = portal.client.post(
        "/api/environments/gen-dev/requests",
        content=chunks(),
        headers={**portal.as_("rita"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert portal.count(Request) == 0


def test_fails_a_bad_config_with_one_problem_per_key_and_stores_nothing(assessed_portal: Portal) -> None:
    portal = assessed_portal
    create_env(portal)
    config = yaml.safe_load(stack_file("dev").read_text())["config"]
    config["hpc:cluster"]["queues"][1]["name"] = "Compute_OD"
    config["hpc:clusterr"] = {}
    response = submit(portal, config)
    assert response.status_code == 422, response.text
    keys = {p["key"]: p["message"] for p in response.json()["problems"]}
    assert "hpc:cluster.queues[1].name" in keys and "hpc:clusterr" in keys
    assert portal.count(Request) == 0


def test_a_valid_config_gets_plan_verdict_and_cost_at_once(assessed_portal: Portal) -> None:
    portal = assessed_portal
    create_env(portal)
    config = yaml.safe_load(stack_file("dev").read_text())["config"]
    response = submit(portal, config)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "previewing" and body["action"] == "create"
    assert {"plan_summary", "verdict", "cost"} <= set(body["assessment"])
    assert body["diff"] and portal.ops.calls == []  # nothing ran yet: the worker previews


def test_self_approval_of_staging_superseded_and_stale_plans_are_refused(portal: Portal) -> None:
    portal.user("rita", "genomics", "approver")
    create_env(portal, "gen-stg", "staging")
    first = submit(portal, dev_config("staging", n=1), "gen-stg").json()
    portal.drain()
    response = portal.client.post(f"/api/requests/{first['id']}/approve", json={}, headers=portal.as_("rita"))
    assert response.status_code == 403 and "other than the requester" in response.json()["detail"]
    second = submit(portal, dev_config("staging", n=2), "gen-stg").json()
    portal.drain()
    response = portal.client.post(f"/api/requests/{first['id']}/approve", json={}, headers=portal.as_("alan"))
    assert response.status_code == 409 and "superseded" in response.json()["detail"]
    stale = {"plan_sha256": "0" * 64}
    response = portal.client.post(
        f"/api/requests/{second['id']}/approve", json=stale, headers=portal.as_("alan")
    )
    assert response.status_code == 409 and "plan_sha256" in response.json()["detail"]
    assert portal.count(Approval) == 0
    current = portal.client.get(f"/api/requests/{second['id']}", headers=portal.as_("alan")).json()
    inbox = portal.client.get("/api/approvals", headers=portal.as_("alan")).json()
    assert [r["id"] for r in inbox] == [second["id"]]
    assert portal.client.get("/api/approvals", headers=portal.as_("rita")).json() == []  # her own
    reviewed = {k: current[k] for k in ("config_hash", "plan_sha256")} | {"comment": "ok"}
    response = portal.client.post(
        f"/api/requests/{second['id']}/approve", json=reviewed, headers=portal.as_("alan")
    )
    assert response.status_code == 200, response.text
    portal.drain()
    final = portal.client.get(f"/api/requests/{second['id']}", headers=portal.as_("rita")).json()
    assert final["state"] == "applied"
    assert final["approvals"][0]["approver"] == "alan"
    assert final["approvals"][0]["plan_sha256"] == current["plan_sha256"]


def test_engine_events_stream_over_sse_and_resume_from_last_event_id(portal: Portal) -> None:
    create_env(portal)
    rid = submit(portal, dev_config("dev")).json()["id"]
    portal.drain()
    run = portal.client.get(f"/api/requests/{rid}", headers=portal.as_("rita")).json()["runs"][0]
    path = f"/api/runs/{run['id']}/events/stream"
    text = portal.client.get(path, headers=portal.as_("rita")).text
    assert [line for line in text.splitlines() if line.startswith("id:")] == ["id: 1", "id: 2"]
    assert text.rstrip().endswith('data: {"state": "succeeded"}')
    resumed = portal.client.get(path, headers={**portal.as_("rita"), "Last-Event-ID": "1"}).text
    assert [line for line in resumed.splitlines() if line.startswith("id:")] == ["id: 2"]
    assert portal.client.get(path, headers=portal.as_("olga")).status_code == 404
    assert portal.client.get(path).status_code == 401
    listed = portal.client.get(f"/api/runs/{run['id']}/events?after=1", headers=portal.as_("rita")).json()
    assert [e["seq"] for e in listed] == [2]


def test_every_state_change_is_in_the_audit_log_with_who_and_when(portal: Portal) -> None:
    create_env(portal)
    rid = submit(portal, dev_config("dev")).json()["id"]
    portal.drain()
    portal.client.post(f"/api/requests/{rid}/approve", json={}, headers=portal.as_("alan"))
    portal.drain()
    log = portal.client.get("/api/environments/gen-dev/audit", headers=portal.as_("rita")).json()
    seen = [(e["actor"], e["action"]) for e in log]
    for entry in (
        ("rita", "environment.created"),
        ("rita", "request.validated"),
        ("system:worker", "request.awaiting_approval"),
        ("alan", "request.approved"),
        ("system:worker", "request.applied"),
    ):
        assert entry in seen
    assert all(e["at"] for e in log)


def test_the_plan_runs_without_holding_the_database_write_lock(tmp_path: Path, sqlite_url: str) -> None:
    """An offline plan takes seconds; the workers' claims and heartbeats must not wait for it."""
    probe = WriteLockProbe(tmp_path / "portal.db")
    for portal in make_portal(tmp_path, sqlite_url, probe):
        create_env(portal)
        assert submit(portal, dev_config("dev")).status_code == 201
    assert probe.writable == [True]


def test_a_destroy_shows_its_preview_summary_and_its_approval_is_bound_to_it(portal: Portal) -> None:
    create_env(portal, "gen-stg", "staging")
    rid = submit(portal, dev_config("staging"), "gen-stg").json()["id"]
    portal.drain()
    assert (
        portal.client.post(f"/api/requests/{rid}/approve", json={}, headers=portal.as_("alan")).status_code
        == 200
    )
    portal.drain()
    created = portal.client.post("/api/environments/gen-stg/destroy", headers=portal.as_("rita"))
    assert created.status_code == 201 and created.json()["state"] == "previewing"
    assert created.json()["preview_summary"] is None
    portal.drain()
    destroy = portal.client.get(f"/api/requests/{created.json()['id']}", headers=portal.as_("alan")).json()
    assert destroy["state"] == "awaiting_approval" and destroy["preview_summary"] == {"delete": 3}
    assert [(r["operation"], r["state"]) for r in destroy["runs"]] == [("preview", "succeeded")]
    approve = f"/api/requests/{destroy['id']}/approve"
    stale = {"summary_sha256": "0" * 64}
    response = portal.client.post(approve, json=stale, headers=portal.as_("alan"))
    assert response.status_code == 409 and "summary_sha256" in response.json()["detail"]
    reviewed = {k: destroy[k] for k in ("config_hash", "summary_sha256")} | {
        "stack_version": destroy["plan_stack_version"]
    }
    assert portal.client.post(approve, json=reviewed, headers=portal.as_("alan")).status_code == 200
    portal.drain()
    final = portal.client.get(f"/api/requests/{destroy['id']}", headers=portal.as_("rita")).json()
    assert final["state"] == "applied" and final["approvals"][0]["preview_summary"] == {"delete": 3}
    assert portal.ops.calls[-2:] == [("gen-stg", "destroy --preview-only"), ("gen-stg", "destroy")]
