"""calendar versions: one row per GPU model, bumped by every transaction that takes capacity or changes nodes;
a lease's calendar_seq, bumped by every transaction that changes its allocations

Revision ID: 0010
Revises: 0014
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_versions",
        sa.Column("gpu_model", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gpu_model"),
    )
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("calendar_seq", sa.BigInteger(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("calendar_seq")
    op.drop_table("calendar_versions")
