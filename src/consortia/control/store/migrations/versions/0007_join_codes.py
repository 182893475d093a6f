"""Join codes and applications, validators added by proposal (ADR 0018): the ``join_codes``
table; a join application's code and invitation; a proposal's ADD_VALIDATOR action with
its node name, resource class and the node its approval made.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 10:00:00

Written by hand after models.py. The CHECK constraints of ``proposals.action`` and
``proposals.target`` are dropped and made again with the new action (batch mode, which
SQLite needs to change a table's constraints).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TARGET_OLD = ("(action = 'INVITE_TENANT' AND target_tenant_id IS NOT NULL"
               " AND target_member_id IS NULL) OR "
               "(action = 'REMOVE_MEMBER' AND target_member_id IS NOT NULL"
               " AND target_tenant_id IS NULL)")
_TARGET_NEW = (_TARGET_OLD + " OR "
               "(action = 'ADD_VALIDATOR' AND target_member_id IS NOT NULL"
               " AND target_tenant_id IS NULL AND node_name IS NOT NULL)")
_ACTIONS_OLD = ("INVITE_TENANT", "REMOVE_MEMBER")
_ACTIONS_NEW = (*_ACTIONS_OLD, "ADD_VALIDATOR")


def _in(values: Sequence[str]) -> str:
    return "action IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "join_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("network_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("secret_hmac", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Enum("ACTIVE", "REVOKED", name=op.f("ck_join_codes_status"),
                                    native_enum=False, create_constraint=True, length=32),
                  nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.Column("request_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("max_uses IS NULL OR max_uses > 0",
                           name=op.f("ck_join_codes_max_uses")),
        sa.ForeignKeyConstraint(["member_id", "network_id", "tenant_id"],
                                ["members.id", "members.network_id", "members.tenant_id"],
                                name=op.f("fk_join_codes_member_id_members")),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"],
                                name=op.f("fk_join_codes_network_id_networks")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_join_codes_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_codes")),
        sa.UniqueConstraint("tenant_id", "client_token",
                            name=op.f("uq_join_codes_tenant_id_client_token")),
    )
    op.create_index(op.f("ix_join_codes_network_id"), "join_codes", ["network_id"])
    op.create_index(op.f("ix_join_codes_tenant_id_created_at"), "join_codes",
                    ["tenant_id", "created_at"])

    with op.batch_alter_table("join_applications") as batch_op:
        batch_op.add_column(sa.Column("join_code_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("invitation_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_join_applications_join_code_id_join_codes"),
                                    "join_codes", ["join_code_id"], ["id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_join_applications_invitation_id_invitations"), "invitations",
            ["invitation_id"], ["id"])

    with op.batch_alter_table("proposals") as batch_op:
        batch_op.add_column(sa.Column("node_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column(
            "node_resource_class",
            sa.Enum("small", "medium", "large", name=op.f("ck_proposals_node_resource_class"),
                    native_enum=False, create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column("node_id", sa.String(length=32), nullable=True))
        batch_op.drop_constraint(op.f("ck_proposals_target"), type_="check")
        batch_op.drop_constraint(op.f("ck_proposals_action"), type_="check")
        batch_op.create_check_constraint(op.f("ck_proposals_target"), _TARGET_NEW)
        batch_op.create_check_constraint(op.f("ck_proposals_action"), _in(_ACTIONS_NEW))


def downgrade() -> None:
    with op.batch_alter_table("proposals") as batch_op:
        batch_op.drop_constraint(op.f("ck_proposals_action"), type_="check")
        batch_op.drop_constraint(op.f("ck_proposals_target"), type_="check")
        batch_op.create_check_constraint(op.f("ck_proposals_action"), _in(_ACTIONS_OLD))
        batch_op.create_check_constraint(op.f("ck_proposals_target"), _TARGET_OLD)
        batch_op.drop_constraint(op.f("ck_proposals_node_resource_class"), type_="check")
        batch_op.drop_column("node_id")
        batch_op.drop_column("node_resource_class")
        batch_op.drop_column("node_name")

    with op.batch_alter_table("join_applications") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_join_applications_invitation_id_invitations"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_join_applications_join_code_id_join_codes"),
                                 type_="foreignkey")
        batch_op.drop_column("invitation_id")
        batch_op.drop_column("join_code_id")

    op.drop_index(op.f("ix_join_codes_tenant_id_created_at"), table_name="join_codes")
    op.drop_index(op.f("ix_join_codes_network_id"), table_name="join_codes")
    op.drop_table("join_codes")
