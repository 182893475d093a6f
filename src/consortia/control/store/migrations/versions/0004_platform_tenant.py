"""The platform operator's tenant (``tenants.is_platform``): its owners and admins create
the other tenants through the API (docs/spec/control-api.md, "Tenants").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:10:00

Written by hand after models.py; the oldest tenant of an existing database (the one
``init_platform`` made) becomes the platform's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("is_platform", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute("UPDATE tenants SET is_platform = TRUE WHERE id = (SELECT id FROM tenants "
               "ORDER BY created_at, id LIMIT 1)")


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("is_platform")
