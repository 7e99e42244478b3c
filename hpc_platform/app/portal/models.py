"""The portal's tables (SQLAlchemy 2, typed). The migrations in `migrations/versions/` create the
same schema; `tests/portal/test_db.py` compares the two on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

from hpc_platform.domain.environments import ENVIRONMENTS

ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
ENVIRONMENT_NAME_RULE = "1-40 characters: lowercase letters, digits and '-', starting with a letter"
GROUP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")

# An environment's kind is one of the domain's environments (its profile, its policy enforcement).
KINDS: Final = ENVIRONMENTS
Role = Literal["requester", "approver", "admin"]
ROLES: Final = ("requester", "approver", "admin")
Operation = Literal["preview", "up", "destroy", "refresh"]
OPERATIONS: Final = ("preview", "up", "destroy", "refresh")
JOB_STATES: Final = ("queued", "running", "succeeded", "failed", "cancelled", "orphaned")
REQUEST_STATES: Final = (
    "validated",
    "previewing",
    "awaiting_approval",
    "approved",
    "applying",
    "applied",
    "failed",
    "cancelled",
    "superseded",
    "rejected",
)
# A request in one of these may still change the environment; a newer one supersedes it.
OPEN_REQUEST_STATES: Final = ("validated", "previewing", "awaiting_approval", "approved")
FINAL_REQUEST_STATES: Final = ("applied", "failed", "cancelled", "superseded", "rejected")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Membership(Base):
    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class Environment(Base):
    __tablename__ = "environments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    group_name: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # new (never applied) | ready | destroyed
    status: Mapped[str] = mapped_column(String(16), default="new")
    current_config: Mapped[dict[str, Any] | None]
    current_config_hash: Mapped[str | None] = mapped_column(String(64))
    stack_version: Mapped[int | None]
    ttl_hours: Mapped[int | None]
    ttl_expires_at: Mapped[datetime | None]
    drift_checked_at: Mapped[datetime | None]
    drift: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Request(Base):
    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24))
    config: Mapped[dict[str, Any] | None]
    config_hash: Mapped[str | None] = mapped_column(String(64))
    diff: Mapped[dict[str, Any] | None]
    assessment: Mapped[dict[str, Any] | None]
    plan_path: Mapped[str | None] = mapped_column(Text)
    plan_sha256: Mapped[str | None] = mapped_column(String(64))
    # The saved update plan itself, so a worker on another machine can apply it.
    plan: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    plan_stack_version: Mapped[int | None]
    # The preview's change counts ({"delete": 12} for a destroy): what the approver reviews when
    # there is no saved plan (the SDK cannot save one for a destroy).
    preview_summary: Mapped[dict[str, Any] | None]
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    # None for the automatic approval of a dev request (the setting, not a person, approved it).
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    config_hash: Mapped[str | None] = mapped_column(String(64))
    plan_sha256: Mapped[str | None] = mapped_column(String(64))
    stack_version: Mapped[int | None]
    preview_summary: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # The lock per stack: at most one running job, whatever the claim query does.
        Index(
            "one_running_job_per_stack",
            "stack",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index("ix_jobs_state_stack", "state", "stack"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), index=True)
    stack: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    # refresh: a drift check (refresh --preview-only), recorded on the environment
    preview_only: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None]
    runner_pid: Mapped[int | None]
    cancel_requested_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    __tablename__ = "events"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[dict[str, Any]]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    # The environment the change concerns, so its history is one indexed query.
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id"), index=True)
    detail: Mapped[dict[str, Any] | None]


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]


__all__ = [
    "ENVIRONMENT_NAME",
    "Approval",
    "AuditEntry",
    "Base",
    "Environment",
    "Event",
    "Job",
    "Membership",
    "Request",
    "Token",
    "User",
    "Worker",
    "utcnow",
]
