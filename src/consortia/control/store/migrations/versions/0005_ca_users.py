"""CA users: the attributes of a registered identity, and the number of the newest CRL a
member published on its chain (docs/spec/control-api.md, "Member CAs"; ADR 0013).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:00:00.000000

Written by hand after models.py; columns added in batch mode, which SQLite needs for ALTER
TABLE, with server defaults for the rows that exist. (Revises 0003 on its branch; merged
after 0004, it revises 0004.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ca_identities") as batch_op:
        batch_op.add_column(sa.Column("attributes", sa.Text(), server_default="{}",
                                      nullable=False))

    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("crl_published_number", sa.Integer(),
                                      server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("crl_published_number")

    with op.batch_alter_table("ca_identities") as batch_op:
        batch_op.drop_column("attributes")
