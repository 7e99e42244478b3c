"""The audit log: every state change, with who made it and when. Written in the same transaction
as the change, so the log never claims something that was rolled back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hpc_platform.app.portal.models import AuditEntry, Environment, Job, Request, User

Target = Environment | Request | Job | User


def _target(target: Target) -> tuple[str, str, int | None]:
    if isinstance(target, Environment):
        return "environment", target.name, target.id
    if isinstance(target, Request):
        return "request", str(target.id), target.environment_id
    if isinstance(target, Job):
        return "job", str(target.id), target.environment_id
    return "user", target.name, None


def record(
    session: Session, actor: str, action: str, target: Target, detail: dict[str, Any] | None = None
) -> AuditEntry:
    """Add an audit entry (`actor` is a user name or `system:<what>`); flushed with the change."""
    if target.id is None:
        session.flush()  # the target's id is part of the entry
    target_type, target_id, environment_id = _target(target)
    entry = AuditEntry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        environment_id=environment_id,
        detail=detail,
    )
    session.add(entry)
    return entry
