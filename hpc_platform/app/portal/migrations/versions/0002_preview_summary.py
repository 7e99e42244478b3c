"""The preview's change summary on requests and approvals: a destroy has no saved plan, so its
approval is bound to what its preview said it would delete.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("preview_summary", sa.JSON(), nullable=True))
    op.add_column("approvals", sa.Column("preview_summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite rebuilds the table where it cannot drop a column in place
    for table in ("approvals", "requests"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("preview_summary")
