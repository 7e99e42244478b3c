"""The queue on SQLite and PostgreSQL: one running job per stack (index and claim), FIFO per
stack, backoff, orphan detection, concurrent claims."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from hpc_platform.app.portal import flow, queue
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Environment, Job, User, utcnow


def environments(engine: Engine, *names: str) -> dict[str, int]:
    with session_scope(engine) as session:
        owner = User(name="owner")
        session.add(owner)
        session.flush()
        envs = [Environment(name=n, group_name="g", kind="dev", owner_id=owner.id) for n in names]
        session.add_all(envs)
        session.flush()
        return {env.name: env.id for env in envs}


def enqueue(engine: Engine, name: str, operation: str = "preview") -> int:
    with session_scope(engine) as session:
        env = session.scalars(select(Environment).where(Environment.name == name)).one()
        return queue.enqueue(session, env, operation, created_by="test").id


def test_the_partial_unique_index_refuses_a_second_running_job_of_a_stack(engine: Engine) -> None:
    environments(engine, "alpha")
    first, second = enqueue(engine, "alpha"), enqueue(engine, "alpha")
    with session_scope(engine) as session:
        session.get_one(Job, first).state = "running"
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.get_one(Job, second).state = "running"
    with session_scope(engine) as session:  # other states are not limited
        session.get_one(Job, second).state = "succeeded"


def test_claim_is_fifo_per_stack_and_never_starts_a_second_job_of_a_running_stack(engine: Engine) -> None:
    environments(engine, "alpha", "beta")
    a1, a2, b1 = enqueue(engine, "alpha"), enqueue(engine, "alpha"), enqueue(engine, "beta")
    first = queue.claim(engine, "w1")
    second = queue.claim(engine, "w2")
    assert first is not None and second is not None
    assert (first.id, second.id) == (a1, b1)
    assert queue.claim(engine, "w3") is None  # a2 waits for a1
    with session_scope(engine) as session:
        queue.finish(session, session.get_one(Job, a1), "w1", "succeeded")
    third = queue.claim(engine, "w3")
    assert third is not None and third.id == a2 and third.worker_id == "w3"


def test_a_requeued_job_waits_for_its_backoff_and_keeps_its_place(engine: Engine) -> None:
    environments(engine, "alpha")
    a1, a2 = enqueue(engine, "alpha"), enqueue(engine, "alpha")
    backoff = queue.Backoff(base_seconds=60, max_seconds=600, max_attempts=3)
    claimed = queue.claim(engine, "w1")
    assert claimed is not None and claimed.id == a1
    with session_scope(engine) as session:
        assert queue.requeue(session, session.get_one(Job, a1), "w1", backoff, "locked")
    assert queue.claim(engine, "w1") is None  # a1 is backing off; a2 does not jump ahead
    later = queue.claim(engine, "w1", now=utcnow() + timedelta(seconds=61))
    assert later is not None and later.id == a1 and later.attempts == 1
    with session_scope(engine) as session:
        job = session.get_one(Job, a1)
        assert queue.requeue(session, job, "w1", backoff, "locked")
        assert job.not_before - utcnow() > timedelta(seconds=100)  # doubled
    assert a2 > a1
    claimed_again = queue.claim(engine, "w1", now=utcnow() + timedelta(seconds=200))
    assert claimed_again is not None and claimed_again.id == a1
    with session_scope(engine) as session:
        assert not queue.requeue(session, session.get_one(Job, a1), "w1", backoff, "locked")


def test_a_job_without_heartbeats_is_orphaned_and_blocks_its_stack_until_resolved(engine: Engine) -> None:
    environments(engine, "alpha")
    a1, a2 = enqueue(engine, "alpha", "up"), enqueue(engine, "alpha")
    assert queue.claim(engine, "dead-worker") is not None
    with session_scope(engine) as session:
        assert flow.sweep_orphans(session, orphan_after_seconds=30) == []  # still fresh
    with session_scope(engine) as session:
        orphaned = flow.sweep_orphans(session, orphan_after_seconds=30, now=utcnow() + timedelta(seconds=31))
        assert [job.id for job in orphaned] == [a1]
    with session_scope(engine) as session:
        assert session.get_one(Job, a1).state == "orphaned"
    assert queue.claim(engine, "w2") is None  # not re-run, and the stack waits for an operator
    with session_scope(engine) as session:
        session.get_one(Job, a1).state = "failed"  # what resolve_orphan does (tested in test_flow)
    claimed = queue.claim(engine, "w2")
    assert claimed is not None and claimed.id == a2


def test_late_results_of_an_orphaned_job_do_not_revive_it(engine: Engine) -> None:
    environments(engine, "alpha")
    a1 = enqueue(engine, "alpha", "up")
    assert queue.claim(engine, "slow") is not None
    with session_scope(engine) as session:
        flow.sweep_orphans(session, orphan_after_seconds=30, now=utcnow() + timedelta(seconds=31))
    with session_scope(engine) as session:
        job = session.get_one(Job, a1)
        assert not queue.finish(session, job, "slow", "succeeded", result={"x": 1})
        assert job.state == "orphaned"
        assert job.result == {"late_result": {"x": 1}, "late_error": None}


def test_concurrent_claims_never_run_two_jobs_of_one_stack(engine: Engine) -> None:
    stacks = ["s0", "s1", "s2"]
    environments(engine, *stacks)
    for i in range(24):
        enqueue(engine, stacks[i % 3])
    running: dict[str, int] = {}
    seen: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        idle = 0
        while idle < 20:
            job = queue.claim(engine, worker)
            if job is None:
                idle += 1
                threading.Event().wait(0.01)
                continue
            idle = 0
            with lock:
                if job.stack in running:
                    errors.append(f"{job.stack}: {running[job.stack]} and {job.id} at once")
                running[job.stack] = job.id
                seen.append(job.id)
            threading.Event().wait(0.005)
            with lock:
                del running[job.stack]
            with session_scope(engine) as session:
                queue.finish(session, session.get_one(Job, job.id), worker, "succeeded")

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 24
