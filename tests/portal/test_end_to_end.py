"""End to end, as a user sees it: `hpc-portal serve` starts on a fresh data dir and answers
/healthz; `hpc-portal user add` prints a token; with it a requester takes a dev request through to
applied, and then a destroy through its preview to applied, over HTTP, with the real assessor, the
real worker and runner (the Automation API SDK) and only the `pulumi` binary replaced by the
stand-in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from hpc_platform.app.portal.api import create_app
from hpc_platform.app.portal.assess import Assessor
from hpc_platform.app.portal.db import make_engine
from hpc_platform.app.portal.migrations import upgrade
from hpc_platform.app.portal.settings import PortalSettings
from hpc_platform.app.portal.worker import Worker
from tests.portal.conftest import add_user
from tests.support import pulumi_standin
from tests.support.stacks import REPO_ROOT, stack_file

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _portal_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPC_PORTAL_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "fresh"
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hpc_portal", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=tmp_path,
        env=_portal_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                output = server.stdout.read().decode() if server.stdout else ""
                raise AssertionError(f"hpc-portal serve exited {server.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "hpc-portal serve did not answer /healthz"
            time.sleep(0.5)
        yield base, data_dir
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_starts_on_a_fresh_data_dir_and_a_printed_token_works(served: tuple[str, Path]) -> None:
    base, data_dir = served
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert (data_dir / "portal.db").is_file()
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpc_portal",
            "user",
            "add",
            "rita",
            "--group",
            "genomics",
            "--role",
            "requester",
            "--data-dir",
            str(data_dir),
        ],
        env=_portal_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    token = added.stdout.strip()
    assert token.startswith("hpcp_")
    assert httpx.get(f"{base}/api/environments", headers={"Authorization": f"Bearer {token}"}).json() == []
    assert httpx.get(f"{base}/api/environments").status_code == 401
    assert token not in (data_dir / "portal.db").read_bytes().decode(errors="replace")  # stored hashed


def test_a_dev_request_is_applied_then_destroyed_through_http_with_the_stand_in_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in pulumi_standin.environment().items():
        monkeypatch.setenv(name, value)
    settings = PortalSettings.from_env(tmp_path / "data")
    settings = PortalSettings(
        **{
            **settings.__dict__,
            "database_url": f"sqlite:///{tmp_path / 'portal.db'}",
            "pulumi_root": pulumi_standin.ROOT,
        }
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    worker = Worker(settings, engine)
    worker.register()
    token = add_user(engine, "rita", "genomics", "requester")[1]
    approver = add_user(engine, "alan", "genomics", "approver")[1]
    rita, alan = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {approver}"}
    config = yaml.safe_load(stack_file("dev").read_text())["config"]
    with TestClient(create_app(settings, engine=engine, assessor=Assessor())) as client:
        created = client.post(
            "/api/environments", json={"name": "gen-dev", "group": "genomics", "kind": "dev"}, headers=rita
        )
        assert created.status_code == 201
        submitted = client.post(
            "/api/environments/gen-dev/requests",
            content=yaml.safe_dump(config),
            headers={**rita, "Content-Type": "application/yaml"},
        )
        assert submitted.status_code == 201, submitted.text
        rid = submitted.json()["id"]
        while worker.run_once():
            pass
        previewed = client.get(f"/api/requests/{rid}", headers=rita).json()
        assert previewed["state"] == "awaiting_approval", previewed
        assert previewed["plan_sha256"]
        reviewed = {"config_hash": previewed["config_hash"], "plan_sha256": previewed["plan_sha256"]}
        assert client.post(f"/api/requests/{rid}/approve", json=reviewed, headers=alan).status_code == 200
        while worker.run_once():
            pass
        applied = client.get(f"/api/requests/{rid}", headers=rita).json()
        assert applied["state"] == "applied", applied
        env = client.get("/api/environments/gen-dev", headers=rita).json()
        assert env["status"] == "ready" and env["stack_version"] == 1
        up = applied["runs"][-1]
        assert up["operation"] == "up" and up["state"] == "succeeded"
        events = client.get(f"/api/runs/{up['id']}/events/stream", headers=rita).text
        assert "summaryEvent" in events and '"state": "succeeded"' in events
        deployed = pulumi_standin.stack_state(settings.backend_url, "hpc-platform", "gen-dev")["resources"]
        assert deployed

        # The destroy: previewed against the deployed config, approved against what it deletes.
        destroy = client.post("/api/environments/gen-dev/destroy", headers=rita)
        assert destroy.status_code == 201, destroy.text
        did = destroy.json()["id"]
        while worker.run_once():
            pass
        previewed = client.get(f"/api/requests/{did}", headers=alan).json()
        assert previewed["state"] == "awaiting_approval", previewed
        assert previewed["preview_summary"] == {"delete": len(deployed)}
        reviewed = {k: previewed[k] for k in ("config_hash", "summary_sha256")}
        assert client.post(f"/api/requests/{did}/approve", json=reviewed, headers=alan).status_code == 200
        while worker.run_once():
            pass
        destroyed = client.get(f"/api/requests/{did}", headers=rita).json()
        assert destroyed["state"] == "applied", destroyed
        assert client.get("/api/environments/gen-dev", headers=rita).json()["status"] == "destroyed"
    state = pulumi_standin.stack_state(settings.backend_url, "hpc-platform", "gen-dev")
    assert state["resources"] == {}
    assert not list(REPO_ROOT.glob("Pulumi.gen-dev.yaml"))  # the repository's stack files are untouched
