"""Customers keep the GPUs they declared they expect to use: the new-company red flag reads it at every
screening (a list load, a profile change), not only at onboarding

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("requested_gpus", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("requested_gpus")
