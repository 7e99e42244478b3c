"""Portal fixtures: a migrated database on SQLite and (marked `integration`) on a throwaway
PostgreSQL server, users with roles, a stand-in assessor for flow tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hpc_platform.app.portal import auth
from hpc_platform.app.portal.auth import Principal
from hpc_platform.app.portal.db import make_engine, session_scope
from hpc_platform.app.portal.migrations import upgrade
from tests.support.postgres import fresh_database, postgres_server

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def database_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.db'}"
    return fresh_database(request.getfixturevalue("pg_server"))


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request.param, tmp_path, request)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add_user(engine: Engine, name: str, group: str, role: str) -> tuple[Principal, str]:
    with session_scope(engine) as session:
        user, token = auth.add_user(session, name, group, role)
        principal = auth.principal_of(session, user)
    return principal, token
