"""Several worker processes on one database (SQLite and PostgreSQL): many jobs over a few stacks
are each run exactly once and never two at a time on a stack; a worker killed mid-apply leaves its
job orphaned, never re-applied; restarted workers drain the rest of the queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hpc_platform.app.portal import queue
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Environment, Job, User
from tests.support.stacks import REPO_ROOT

pytestmark = pytest.mark.integration


class Workers:
    def __init__(self, db_url: str, tmp_path: Path):
        self.db_url, self.tmp_path, self.log = db_url, tmp_path, tmp_path / "runs.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int, seconds: float) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        started = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.portal.worker_process",
                    self.db_url,
                    str(self.tmp_path / "data"),
                    str(self.log),
                    str(seconds),
                ],
                env=env,
                cwd=self.tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(n)
        ]
        self.procs += started
        return started

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def lines(self) -> list[tuple[str, str, str, float]]:
        if not self.log.exists():
            return []
        return [
            (a, j, s, float(t)) for a, j, s, t in (line.split() for line in self.log.read_text().splitlines())
        ]


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(db_url, tmp_path)
    yield group
    group.stop()


def seed(engine: Engine, stacks: list[str], jobs: int, operation: str = "refresh") -> list[int]:
    with session_scope(engine) as session:
        owner = User(name="owner")
        session.add(owner)
        session.flush()
        envs = [
            Environment(name=s, group_name="g", kind="dev", owner_id=owner.id, current_config={})
            for s in stacks
        ]
        session.add_all(envs)
        session.flush()
        return [
            queue.enqueue(session, envs[i % len(envs)], operation, created_by="test").id for i in range(jobs)
        ]


def wait_for(condition: object, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def states(engine: Engine) -> dict[int, str]:
    with session_scope(engine, write=False) as session:
        return {job_id: state for job_id, state in session.execute(select(Job.id, Job.state))}


def test_many_jobs_over_few_stacks_run_once_each_and_one_at_a_time_per_stack(
    engine: Engine, workers: Workers
) -> None:
    ids = seed(engine, ["s0", "s1", "s2"], 24)
    workers.start(4, seconds=0.2)
    wait_for(lambda: all(s == "succeeded" for s in states(engine).values()))
    lines = workers.lines()
    starts = [job for action, job, _, _ in lines if action == "start"]
    assert sorted(starts) == sorted(f"job-{i}" for i in ids)  # none lost, none run twice
    for stack in ("s0", "s1", "s2"):
        spans = sorted((t, action) for action, _, s, t in lines if s == stack)
        depth = 0
        for _, action in spans:
            depth += 1 if action == "start" else -1
            assert depth <= 1, f"two jobs ran at once on {stack}"


def test_a_worker_killed_mid_apply_leaves_its_job_orphaned_and_restarted_workers_resume(
    engine: Engine, workers: Workers
) -> None:
    ids = seed(engine, ["s0", "s1"], 6, operation="up")
    first = workers.start(1, seconds=30)[0]
    wait_for(lambda: any(a == "start" for a, *_ in workers.lines()))
    victim = next(job for a, job, _, _ in workers.lines() if a == "start")
    first.kill()  # SIGKILL mid-apply: no heartbeat, no cleanup
    first.wait()
    workers.start(2, seconds=0.2)
    victim_id = int(victim.removeprefix("job-"))
    wait_for(lambda: states(engine)[victim_id] == "orphaned")
    others = [i for i in ids if i != victim_id]
    with session_scope(engine, write=False) as session:
        victim_stack = session.get_one(Job, victim_id).stack
    other_stack = [i for i in others if _stack(engine, i) != victim_stack]
    wait_for(lambda: all(states(engine)[i] == "succeeded" for i in other_stack))
    blocked = [i for i in others if i not in other_stack]
    assert all(states(engine)[i] == "queued" for i in blocked)  # the orphan's stack waits for an operator
    starts = [job for a, job, _, _ in workers.lines() if a == "start"]
    assert starts.count(victim) == 1  # never re-applied


def _stack(engine: Engine, job_id: int) -> str:
    with session_scope(engine, write=False) as session:
        return session.get_one(Job, job_id).stack
