"""alias approvals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:27:18.705550
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_policies",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("require_approval", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "alias"),
    )
    op.create_table(
        "alias_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=250), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=250), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("decision_time", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alias_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alias_requests_model_status", ["model_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alias_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_alias_requests_model_status")

    op.drop_table("alias_requests")
    op.drop_table("alias_policies")
