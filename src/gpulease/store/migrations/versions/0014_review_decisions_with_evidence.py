"""review decisions with their evidence fingerprint and licence; longer review statuses; customers' officers

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gpulease.store.types

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_DT = gpulease.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("officers", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    with op.batch_alter_table("review_items") as batch:
        batch.alter_column("status", existing_type=sa.String(length=20), type_=sa.String(length=40))
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_DT, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("licence", sa.JSON(), nullable=True),
        sa.Column("licence_expires_on", sa.Date(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("cleared_entries", sa.JSON(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["review_items.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_decisions_review_id", "review_decisions", ["review_id"])
    op.create_index("ix_review_decisions_customer_id", "review_decisions", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_review_decisions_customer_id", table_name="review_decisions")
    op.drop_index("ix_review_decisions_review_id", table_name="review_decisions")
    op.drop_table("review_decisions")
    with op.batch_alter_table("review_items") as batch:
        batch.alter_column("status", existing_type=sa.String(length=40), type_=sa.String(length=20))
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("officers")
