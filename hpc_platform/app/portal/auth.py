"""Users, API tokens and roles per research group.

A token is shown once (`hpc-portal user add` prints it) and stored as its SHA-256 only: a token is
random (256 bits), so a fast hash is enough and lets the lookup be one indexed query. Roles rank
requester < approver < admin; holding one grants the ones below it in that group.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpc_platform.app.portal import audit
from hpc_platform.app.portal.models import GROUP_NAME, ROLES, USER_NAME, Membership, Token, User, utcnow

TOKEN_PREFIX = "hpcp_"
RANK = {role: rank for rank, role in enumerate(ROLES)}


class AuthError(Exception):
    """Bad input to a user/membership command (name, group or role)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The caller: who, and their role per group (the highest one held)."""

    user_id: int
    name: str
    roles: dict[str, str]

    def role_in(self, group: str) -> str | None:
        return self.roles.get(group)

    def has(self, role: str, group: str) -> bool:
        held = self.roles.get(group)
        return held is not None and RANK[held] >= RANK[role]

    @property
    def groups(self) -> list[str]:
        return sorted(self.roles)


def principal_of(session: Session, user: User) -> Principal:
    roles: dict[str, str] = {}
    for membership in session.scalars(select(Membership).where(Membership.user_id == user.id)):
        held = roles.get(membership.group_name)
        if held is None or RANK[membership.role] > RANK[held]:
            roles[membership.group_name] = membership.role
    return Principal(user.id, user.name, roles)


def add_user(
    session: Session, name: str, group: str, role: str, actor: str = "system:cli"
) -> tuple[User, str]:
    """Create the user if new, grant `role` in `group`, and issue a new token (returned in clear,
    once). Raises `AuthError` for a bad name, group or role."""
    if not USER_NAME.fullmatch(name):
        raise AuthError(f"user name {name!r}: use letters, digits and . _ @ - (at most 128)")
    if not GROUP_NAME.fullmatch(group):
        raise AuthError(f"group {group!r}: use lowercase letters, digits and '-', starting with a letter")
    if role not in ROLES:
        raise AuthError(f"role {role!r}: use one of {', '.join(ROLES)}")
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
        audit.record(session, actor, "user.created", user)
    exists = session.get(Membership, (user.id, group, role))
    if exists is None:
        session.add(Membership(user_id=user.id, group_name=group, role=role))
        audit.record(session, actor, "membership.granted", user, {"group": group, "role": role})
    return user, issue_token(session, user, actor)


def issue_token(session: Session, user: User, actor: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, token_sha256=hash_token(token)))
    audit.record(session, actor, "token.issued", user)
    return token


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal for a bearer token, or None (unknown or revoked)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = session.scalars(
        select(Token).where(Token.token_sha256 == hash_token(token), Token.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    row.last_used_at = utcnow()
    user = session.get(User, row.user_id)
    assert user is not None  # a foreign key
    return principal_of(session, user)
