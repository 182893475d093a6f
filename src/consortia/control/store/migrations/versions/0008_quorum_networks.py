"""Quorum networks through the control plane (ADR 0029): a network's EIP-155 chain id
(unique, never reused) and block gas limit; audit records wide enough to name an Ethereum
address (``account.bind``, ``account.unbind``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00

Written by hand after models.py: nullable columns and a unique constraint added in batch
mode, which SQLite needs for ALTER TABLE; ``audit_records.resource_id`` widened from 32 to
64 characters (existing values fit unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("networks") as batch_op:
        batch_op.add_column(sa.Column("evm_chain_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("evm_gas_limit", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_networks_evm_chain_id"),
                                          ["evm_chain_id"])

    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.alter_column("resource_id", existing_type=sa.String(length=32),
                              type_=sa.String(length=64), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("audit_records") as batch_op:
        batch_op.alter_column("resource_id", existing_type=sa.String(length=64),
                              type_=sa.String(length=32), existing_nullable=True)

    with op.batch_alter_table("networks") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_networks_evm_chain_id"), type_="unique")
        batch_op.drop_column("evm_gas_limit")
        batch_op.drop_column("evm_chain_id")
