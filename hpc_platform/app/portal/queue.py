"""The deployment queue, in the database: enqueue, claim, heartbeat, finish, requeue with backoff,
and the orphan sweep.

At most one job runs per stack. Two mechanisms, so neither alone has to be perfect:
- the claim query picks the oldest queued job of a stack only when no job of that stack is running
  or orphaned (FIFO per stack), locking the row with `FOR UPDATE SKIP LOCKED` on PostgreSQL so
  workers never wait on each other, inside `BEGIN IMMEDIATE` on SQLite (one writer at a time);
- the partial unique index `one_running_job_per_stack` rejects a second running row outright, so
  two claims racing under READ COMMITTED cannot both win: the loser rolls back and tries again.

An orphaned job (its worker stopped sending heartbeats) blocks its stack until an operator
resolves it: the apply may have half-happened and the backend may still hold its lock, so nothing
is retried automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from hpc_platform.app.portal.db import is_sqlite, session_scope
from hpc_platform.app.portal.models import Environment, Event, Job, Worker, utcnow

BLOCKING_STATES = ("running", "orphaned")
FINAL_STATES = ("succeeded", "failed", "cancelled", "orphaned")


def enqueue(
    session: Session,
    environment: Environment,
    operation: str,
    *,
    created_by: str,
    request_id: int | None = None,
    preview_only: bool = False,
) -> Job:
    job = Job(
        environment_id=environment.id,
        stack=environment.name,
        request_id=request_id,
        operation=operation,
        preview_only=preview_only,
        created_by=created_by,
        not_before=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def _claimable(now: datetime) -> Any:
    blocking = aliased(Job)
    earlier = aliased(Job)
    return (
        select(Job.id)
        .where(
            Job.state == "queued",
            Job.not_before <= now,
            ~exists().where(and_(blocking.stack == Job.stack, blocking.state.in_(BLOCKING_STATES))),
            ~exists().where(and_(earlier.stack == Job.stack, earlier.state == "queued", earlier.id < Job.id)),
        )
        .order_by(Job.id)
        .limit(1)
    )


def claim(engine: Engine, worker_id: str, now: datetime | None = None, tries: int = 3) -> Job | None:
    """Take the next runnable job (state -> running, owned by `worker_id`), or None."""
    for _ in range(tries):
        moment = now or utcnow()
        query = _claimable(moment)
        if not is_sqlite(engine):
            query = query.with_for_update(skip_locked=True)
        try:
            with session_scope(engine) as session:
                job_id = session.scalar(query)
                if job_id is None:
                    return None
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == "queued")
                    .values(state="running", worker_id=worker_id, started_at=moment, heartbeat_at=moment)
                )
                job = session.get(Job, job_id)
                assert job is not None
                return job
        except IntegrityError:
            # Another worker started a job of the same stack between our read and our write.
            continue
    return None


def heartbeat(engine: Engine, worker_id: str, job_id: int | None) -> bool:
    """Record that the worker (and its job) is alive; True when a cancel of the job was asked."""
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))
        if job_id is None:
            return False
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.state == "running")
            .values(heartbeat_at=now)
        )
        return session.scalar(select(Job.cancel_requested_at).where(Job.id == job_id)) is not None


def set_runner_pid(engine: Engine, job_id: int, pid: int) -> None:
    with session_scope(engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(runner_pid=pid))


def finish(
    session: Session,
    job: Job,
    worker_id: str,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """End a running job owned by `worker_id`. False (and no state change) when it is no longer
    ours: the sweep marked it orphaned while we were stalled; the operator decides then."""
    session.refresh(job)
    if job.state != "running" or job.worker_id != worker_id:
        job.result = {**(job.result or {}), "late_result": result, "late_error": error}
        return False
    job.state = state
    job.result = result
    job.error = error
    job.finished_at = utcnow()
    return True


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    max_seconds: float
    max_attempts: int

    def delay(self, attempts: int) -> float:
        return float(min(self.base_seconds * (2 ** max(attempts - 1, 0)), self.max_seconds))


def requeue(session: Session, job: Job, worker_id: str, backoff: Backoff, reason: str) -> bool:
    """Put a job that did not start (backend lock held) back in the queue after a growing delay.
    False when it has used up its attempts (the caller fails it)."""
    session.refresh(job)
    if job.state != "running" or job.worker_id != worker_id:
        return True  # no longer ours; nothing to do
    if job.attempts + 1 >= backoff.max_attempts:
        return False
    job.attempts += 1
    job.state = "queued"
    job.worker_id = None
    job.runner_pid = None
    job.heartbeat_at = None
    job.started_at = None
    job.error = reason
    job.not_before = utcnow() + timedelta(seconds=backoff.delay(job.attempts))
    return True


def stale_jobs(session: Session, orphan_after_seconds: float, now: datetime | None = None) -> list[Job]:
    """Running jobs whose worker has not sent a heartbeat for `orphan_after_seconds`, locked."""
    cutoff = (now or utcnow()) - timedelta(seconds=orphan_after_seconds)
    query = select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff).order_by(Job.id)
    if not is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def append_event(engine: Engine, job_id: int, seq: int, body: dict[str, Any]) -> None:
    """Store one engine event by its sequence number (a repeated seq is ignored, so a relay that
    resends after a reconnect cannot duplicate it)."""
    try:
        with session_scope(engine) as session:
            session.add(Event(job_id=job_id, seq=seq, body=body))
    except IntegrityError:
        pass


def events_after(session: Session, job_id: int, after: int, limit: int = 500) -> list[Event]:
    return list(
        session.scalars(
            select(Event).where(Event.job_id == job_id, Event.seq > after).order_by(Event.seq).limit(limit)
        )
    )
