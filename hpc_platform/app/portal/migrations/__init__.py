"""Alembic migrations of the portal's schema, run from code (`upgrade(engine)`): `hpc-portal serve`
and `hpc-portal worker` upgrade on start, `hpc-portal migrate` does only that."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (idempotent: an up-to-date database is left alone)."""
    command.upgrade(alembic_config(engine), revision)
