"""The migrations build exactly the models' schema, on SQLite and PostgreSQL, and running them
again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from hpc_platform.app.portal.migrations import upgrade
from hpc_platform.app.portal.models import Base


def test_the_migrations_create_the_models_schema(engine: Engine) -> None:
    upgrade(engine)  # a second run is a no-op
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("jobs")}
    assert indexes["one_running_job_per_stack"]["unique"]
