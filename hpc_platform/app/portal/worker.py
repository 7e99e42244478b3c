"""The worker loop: sweep orphans, schedule TTL destroys and drift checks, claim a job, run it
through the runner in its own process group, store its events, record the outcome.

Any number of workers (threads of `hpc-portal serve`, `hpc-portal worker` processes, on any number
of machines sharing one PostgreSQL database) run this loop; the queue's claim keeps one job per
stack. While a job runs, a heartbeat thread refreshes the job's and the worker's heartbeat and
looks for a cancel request, which it turns into SIGINT to the runner's process group (the Python
SDK cannot cancel a running operation; the CLI stops cleanly on SIGINT).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update

from hpc_platform.app.portal import flow, queue
from hpc_platform.app.portal.db import session_scope
from hpc_platform.app.portal.models import Job, utcnow
from hpc_platform.app.portal.models import Worker as WorkerRow
from hpc_platform.app.portal.runner import (
    ConcurrentUpdate,
    OperationResult,
    OperationSpec,
    run_in_subprocess,
    stack_version,
)
from hpc_platform.app.portal.settings import PortalSettings

log = logging.getLogger(__name__)

OnEvent = Callable[[int, dict[str, Any]], None]
OnStarted = Callable[[int], None]
RunOperation = Callable[[OperationSpec, OnEvent, OnStarted], OperationResult]
CurrentVersion = Callable[[OperationSpec], int | None]


def backend_stack_version(spec: OperationSpec) -> int | None:
    """The stack's last update version as the backend has it now."""
    return stack_version(spec)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Worker:
    settings: PortalSettings
    engine: Engine
    run_operation: RunOperation = run_in_subprocess
    current_version: CurrentVersion = backend_stack_version
    worker_id: str = ""

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or new_worker_id()
        self.policy = flow.Policy(auto_approve_dev=self.settings.auto_approve_dev)
        self.backoff = queue.Backoff(
            self.settings.backoff_base_seconds, self.settings.backoff_max_seconds, self.settings.max_attempts
        )
        self._last_schedule = 0.0

    # --- lifecycle ------------------------------------------------------------------------------
    def register(self) -> None:
        self.settings.prepare()
        self.settings.export_passphrase()
        with session_scope(self.engine) as session:
            session.merge(WorkerRow(id=self.worker_id, host=socket.gethostname(), pid=os.getpid()))

    def unregister(self) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(WorkerRow).where(WorkerRow.id == self.worker_id).values(stopped_at=utcnow())
            )

    def run_forever(self, stop: threading.Event) -> None:
        self.register()
        try:
            while not stop.is_set():
                try:
                    ran = self.run_once()
                except Exception:  # a database hiccup must not end the worker
                    log.exception("worker %s: loop iteration failed", self.worker_id)
                    ran = False
                if not ran:
                    stop.wait(self.settings.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                self.unregister()

    def run_once(self) -> bool:
        """One pass: housekeeping, then at most one job. True when a job was claimed."""
        self.housekeeping()
        job = queue.claim(self.engine, self.worker_id)
        if job is None:
            queue.heartbeat(self.engine, self.worker_id, None)
            return False
        self.run_job(job)
        return True

    def housekeeping(self) -> None:
        with session_scope(self.engine) as session:
            for job in flow.sweep_orphans(session, self.settings.orphan_after_seconds):
                log.warning("job %s orphaned (worker %s)", job.id, job.worker_id)
        if time.monotonic() - self._last_schedule < self.settings.ttl_sweep_seconds:
            return
        self._last_schedule = time.monotonic()
        with session_scope(self.engine) as session:
            flow.expire_ttls(session, self.policy)
        if self.settings.drift_interval_seconds is not None:
            with session_scope(self.engine) as session:
                flow.schedule_drift_checks(session, self.settings.drift_interval_seconds)

    # --- one job --------------------------------------------------------------------------------
    def _spec(self, work: flow.Work) -> OperationSpec:
        job = work.job
        plan_path: Path | None = None
        operation = job.operation
        if work.destroy_preview:
            # What the approver of a destroy reviews; the SDK saves no plan for a destroy.
            operation = "destroy"
        elif job.operation == "preview":
            plan_path = self.settings.plans_dir / f"request-{job.request_id}-job-{job.id}.json"
        elif job.operation == "up" and work.plan is not None:
            plan_path = self.settings.plans_dir / f"apply-request-{job.request_id}-job-{job.id}.json"
            plan_path.write_bytes(work.plan)
        return OperationSpec(
            stack=job.stack,
            operation=operation,  # type: ignore[arg-type]
            config=work.config or {},
            work_dir=self.settings.work_root / f"job-{job.id}",
            project_dir=self.settings.project_dir,
            backend_url=self.settings.backend_url,
            pulumi_root=self.settings.pulumi_root,
            plan_path=plan_path,
            preview_only_refresh=job.preview_only,
            preview_only_destroy=work.destroy_preview,
        )

    def run_job(self, job: Job) -> None:
        with session_scope(self.engine) as session:
            work = flow.prepare(session, job.id)
        if not work.run:
            return
        try:
            spec = self._spec(work)
            if job.operation in ("up", "destroy"):
                actual = self.current_version(spec)
                if actual != work.expected_stack_version:
                    with session_scope(self.engine) as session:
                        flow.stack_changed(session, job.id, work.expected_stack_version, actual)
                    return
        except Exception as exc:
            self._fail(job, f"could not prepare the run: {exc}")
            return
        beat = _Heartbeat(self.engine, self.worker_id, job.id, self.settings.heartbeat_seconds)
        beat.start()
        try:
            result = self.run_operation(spec, self._on_event(job.id), beat.started)
        except ConcurrentUpdate as exc:
            beat.stop()
            self._requeue(job, str(exc) or "the stack is locked by another update")
            return
        except Exception as exc:
            beat.stop()
            self._fail(job, f"{type(exc).__name__}: {exc}")
            return
        beat.stop()
        self._record(job, spec, result, cancelled=beat.cancel_sent and not result.ok)

    def _on_event(self, job_id: int) -> OnEvent:
        def on_event(seq: int, body: dict[str, Any]) -> None:
            queue.append_event(self.engine, job_id, seq, body)

        return on_event

    def _record(self, job: Job, spec: OperationSpec, result: OperationResult, *, cancelled: bool) -> None:
        plan: bytes | None = None
        if (
            job.operation == "preview"
            and result.ok
            and spec.plan_path is not None
            and spec.plan_path.is_file()
        ):
            plan = spec.plan_path.read_bytes()
        state = "succeeded" if result.ok else ("cancelled" if cancelled else "failed")
        payload = {
            "summary": result.summary,
            "outputs": result.outputs,
            "stack_version": result.stack_version,
            "plan_sha256": result.plan_sha256,
        }
        with session_scope(self.engine) as session:
            live = session.get(Job, job.id)
            assert live is not None
            if queue.finish(session, live, self.worker_id, state, result=payload, error=result.error):
                flow.job_finished(
                    session,
                    job.id,
                    result,
                    self.policy,
                    cancelled=cancelled,
                    plan=plan,
                    plan_path=str(spec.plan_path) if plan is not None else None,
                )

    def _fail(self, job: Job, error: str) -> None:
        result = OperationResult(
            ok=False, summary={}, outputs={}, stack_version=None, plan_sha256=None, error=error
        )
        with session_scope(self.engine) as session:
            live = session.get(Job, job.id)
            assert live is not None
            if queue.finish(session, live, self.worker_id, "failed", error=error):
                flow.job_finished(session, job.id, result, self.policy)

    def _requeue(self, job: Job, reason: str) -> None:
        with session_scope(self.engine) as session:
            live = session.get(Job, job.id)
            assert live is not None
            if queue.requeue(session, live, self.worker_id, self.backoff, reason):
                return
        self._fail(job, f"gave up after {self.settings.max_attempts} attempts: {reason}")


class _Heartbeat:
    """Heartbeats while a job runs; turns a cancel request into SIGINT to the runner's group."""

    def __init__(self, engine: Engine, worker_id: str, job_id: int, every: float):
        self.engine, self.worker_id, self.job_id, self.every = engine, worker_id, job_id, every
        self.pid: int | None = None
        self.cancel_sent = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-job-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def started(self, pid: int) -> None:
        self.pid = pid
        queue.set_runner_pid(self.engine, self.job_id, pid)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                cancel = queue.heartbeat(self.engine, self.worker_id, self.job_id)
            except Exception:
                log.exception("heartbeat of job %s failed", self.job_id)
                continue
            if cancel and not self.cancel_sent and self.pid is not None:
                self.cancel_sent = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGINT)
