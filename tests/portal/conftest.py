"""Portal fixtures: a migrated database on SQLite and (marked `integration`) on a throwaway
PostgreSQL server, users with roles, a stand-in assessor for flow tests."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database the migrations brought to head from empty, once per test process. Tests
    start from a copy of it: migrating took about 50 ms a test, a copy takes about 1 ms, and
    `upgrade` on the copy (every portal start runs it) is then the no-op it must be."""
    path = tmp_path_factory.mktemp("migrated") / "portal.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture
def sqlite_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    """A test's own migrated SQLite database, `portal.db` in its temporary directory."""
    target = tmp_path / "portal.db"
    shutil.copyfile(migrated_sqlite, target)
    return f"sqlite:///{target}"


def database_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
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
