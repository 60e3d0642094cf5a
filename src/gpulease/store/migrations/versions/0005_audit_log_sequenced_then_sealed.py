"""audit log: sequenced on insert, sealed (chained) after; signed checkpoints

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Records get their number (`id`) from the database when they are inserted and their place in the hash chain
(`seq`, `prev_hash`, `hash`) later, from the sealer. Existing records were chained on insert: each keeps its
`seq` and hashes (the hash formula is unchanged) and gets `id = seq`, so the chain verifies as before.
A log that is still empty gets its first record, so that an emptied table can never pass as a new one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import gpulease.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "at, actor, action, subject, data, prev_hash, hash"


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("at", gpulease.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log ADD COLUMN id BIGINT")
        op.execute("UPDATE audit_log SET id = seq")
        op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey")
        op.execute("ALTER TABLE audit_log ALTER COLUMN id SET NOT NULL")
        op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id)")
        # What BIGSERIAL would have made; continues after the migrated records.
        op.execute("CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id")
        op.execute("ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT nextval('audit_log_id_seq')")
        op.execute("SELECT setval('audit_log_id_seq', COALESCE(max(id), 0) + 1, false) FROM audit_log")
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN seq TYPE BIGINT, ALTER COLUMN seq DROP NOT NULL,"
            " ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL"
        )
        op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_seq_key UNIQUE (seq)")
    else:  # SQLite cannot change a primary key in place: copy into the new shape
        op.create_table(
            "audit_log_new",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=True),
            *_record_columns(),
            sa.Column("prev_hash", sa.String(length=64), nullable=True),
            sa.Column("hash", sa.String(length=64), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("seq"),
            sa.UniqueConstraint("hash"),
        )
        op.execute(f"INSERT INTO audit_log_new (id, seq, {_COLUMNS}) SELECT seq, seq, {_COLUMNS} FROM audit_log")
        op.drop_table("audit_log")
        op.rename_table("audit_log_new", "audit_log")
    op.create_index(
        "ix_audit_log_unsealed",
        "audit_log",
        ["id"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("at", gpulease.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if not op.get_bind().execute(sa.text("SELECT count(*) FROM audit_log")).scalar():
        log = sa.table("audit_log", *_record_columns())
        now = datetime.now(UTC).replace(microsecond=0)
        op.bulk_insert(
            log, [{"at": now, "actor": "system", "action": "audit.started", "subject": "audit_log", "data": {}}]
        )


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM audit_log WHERE seq IS NULL AND action = 'audit.started'"))
    if bind.execute(sa.text("SELECT count(*) FROM audit_log WHERE seq IS NULL")).scalar():
        raise RuntimeError("unsealed audit records would be lost: seal them first (gpulease audit checkpoint)")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_log_unsealed", table_name="audit_log")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_seq_key")
        op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey")
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN seq TYPE INTEGER, ALTER COLUMN seq SET NOT NULL,"
            " ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL"
        )
        op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq)")
        op.execute("ALTER TABLE audit_log DROP COLUMN id")
    else:
        op.create_table(
            "audit_log_old",
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            *_record_columns(),
            sa.Column("prev_hash", sa.String(length=64), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
            sa.UniqueConstraint("hash"),
        )
        op.execute(f"INSERT INTO audit_log_old (seq, {_COLUMNS}) SELECT seq, {_COLUMNS} FROM audit_log")
        op.drop_table("audit_log")
        op.rename_table("audit_log_old", "audit_log")
