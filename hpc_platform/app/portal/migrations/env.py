"""Alembic's environment: the engine comes from `upgrade(engine)`, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from hpc_platform.app.portal.models import Base

engine: Engine = context.config.attributes["engine"]
# One migration transaction; on SQLite a plain (deferred) BEGIN is enough, DDL takes the lock.
with engine.execution_options(sqlite_begin="IMMEDIATE").connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
