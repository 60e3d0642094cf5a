"""CPU leases (issue 13): CPU nodes and the CPUs of GPU nodes, CPU leases, their cores and memory, CPU prices,
CPU usage

Revision ID: 0015
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gpulease.store.types import UTCDateTime

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None

# PostgreSQL: the database's own word on what the CPU calendar checks first. A core kept for a GPU of its node
# is never booked (the formula of CpuNodeView.gpu_cores, with the share the service wrote on the node), and the
# memory held on a node never exceeds what it leases at any instant of the new row's window. Deferred to the
# commit, after the node row is locked: two transactions booking memory on one node check one after the other.
GUARD = """
CREATE OR REPLACE FUNCTION gpulease_cpu_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n nodes%ROWTYPE;
    cps int;
    per_socket int;
    share int;
    held bigint;
BEGIN
    IF NEW.released THEN
        RETURN NULL;
    END IF;
    SELECT * INTO n FROM nodes WHERE id = NEW.node_id FOR UPDATE;
    IF TG_TABLE_NAME = 'cpu_allocations' THEN
        IF n.cpu_cores <= 0 OR NEW.core_index < 0 OR NEW.core_index >= n.cpu_cores THEN
            RAISE EXCEPTION 'core % is not a core of node %', NEW.core_index, n.name USING ERRCODE = '23P01';
        END IF;
        share := coalesce(n.reserve_cores_per_gpu, 0);
        IF n.gpu_count > 0 AND share > 0 THEN
            cps := n.cpu_cores / n.sockets;
            per_socket := (n.gpu_count + n.sockets - 1) / n.sockets;
            IF (NEW.core_index % cps) / share < per_socket
               AND (NEW.core_index / cps) * per_socket + (NEW.core_index % cps) / share < n.gpu_count THEN
                RAISE EXCEPTION 'core % of node % is kept for its GPUs', NEW.core_index, n.name
                    USING ERRCODE = '23P01';
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    SELECT max(x.held) INTO held FROM (
        SELECT t.s, sum(m.gib) AS held
        FROM (SELECT DISTINCT greatest(a.starts_at, NEW.starts_at) AS s FROM memory_allocations a
              WHERE a.node_id = NEW.node_id AND NOT a.released
                AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(NEW.starts_at, NEW.ends_at, '[)')) t
        JOIN memory_allocations m ON m.node_id = NEW.node_id AND NOT m.released
            AND m.starts_at <= t.s AND (m.ends_at IS NULL OR t.s < m.ends_at)
        GROUP BY t.s) x;
    IF held > n.memory_gib - n.gpu_count * coalesce(n.reserve_memory_gib_per_gpu, 0) THEN
        RAISE EXCEPTION 'node % would hold % GiB of memory, more than it leases', n.name, held
            USING ERRCODE = '23P01';
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.alter_column("gpu_model", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("cpu_model", sa.String(40), nullable=True))
        batch.add_column(sa.Column("sockets", sa.Integer(), nullable=False, server_default=sa.text("1")))
        batch.add_column(sa.Column("cpu_cores", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("memory_gib", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("reserve_cores_per_gpu", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reserve_memory_gib_per_gpu", sa.Integer(), nullable=True))
    with op.batch_alter_table("leases") as batch:
        batch.alter_column("gpu_model", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("resource", sa.String(8), nullable=False, server_default=sa.text("'gpu'")))
        batch.add_column(sa.Column("cpu_model", sa.String(40), nullable=True))
        batch.add_column(sa.Column("cpu_cores", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("memory_gib", sa.Integer(), nullable=True))
    with op.batch_alter_table("prices") as batch:
        batch.alter_column("gpu_model", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("cpu_model", sa.String(40), nullable=True))
        batch.add_column(sa.Column("gib_rate", sa.Numeric(18, 6), nullable=False, server_default=sa.text("0")))
        batch.create_check_constraint("ck_prices_one_model", "(gpu_model IS NULL) <> (cpu_model IS NULL)")
    with op.batch_alter_table("usage_records") as batch:
        batch.alter_column("gpu_model", existing_type=sa.String(40), nullable=True)
        batch.add_column(sa.Column("resource", sa.String(8), nullable=False, server_default=sa.text("'gpu'")))
        batch.add_column(sa.Column("cpu_model", sa.String(40), nullable=True))
        batch.add_column(sa.Column("cpu_cores", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("memory_gib", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("gib_rate", sa.Numeric(18, 6), nullable=True))
    for table, unit_col in (("cpu_allocations", "core_index"), ("memory_allocations", "gib")):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("lease_id", sa.Integer(), nullable=False),
            sa.Column("node_id", sa.Integer(), nullable=False),
            sa.Column(unit_col, sa.Integer(), nullable=False),
            sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
            sa.Column("ends_at", UTCDateTime(timezone=True), nullable=True),
            sa.Column("released", sa.Boolean(), nullable=False),
            sa.ForeignKeyConstraint(["lease_id"], ["leases.id"]),
            sa.ForeignKeyConstraint(["node_id"], ["nodes.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(f"ix_{table}_lease_id", table, ["lease_id"])
    op.create_index("ix_cpu_alloc_core", "cpu_allocations", ["node_id", "core_index"])
    op.create_index("ix_memory_alloc_node", "memory_allocations", ["node_id"])
    if op.get_bind().dialect.name == "postgresql":
        # The database itself refuses two live holds of one core over overlapping time.
        op.execute(
            "ALTER TABLE cpu_allocations ADD CONSTRAINT no_double_booked_core EXCLUDE USING gist "
            "(node_id WITH =, core_index WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
            "WHERE (NOT released)"
        )
        op.execute(GUARD)
        for table in ("cpu_allocations", "memory_allocations"):
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_guard AFTER INSERT OR UPDATE ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gpulease_cpu_guard()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("cpu_allocations", "memory_allocations"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
        op.execute("DROP FUNCTION IF EXISTS gpulease_cpu_guard()")
    op.drop_table("memory_allocations")
    op.drop_table("cpu_allocations")
    with op.batch_alter_table("usage_records") as batch:
        for col in ("gib_rate", "memory_gib", "cpu_cores", "cpu_model", "resource"):
            batch.drop_column(col)
    with op.batch_alter_table("prices") as batch:
        batch.drop_constraint("ck_prices_one_model", type_="check")
        batch.drop_column("gib_rate")
        batch.drop_column("cpu_model")
    with op.batch_alter_table("leases") as batch:
        for col in ("memory_gib", "cpu_cores", "cpu_model", "resource"):
            batch.drop_column(col)
    with op.batch_alter_table("nodes") as batch:
        for col in ("reserve_memory_gib_per_gpu", "reserve_cores_per_gpu", "memory_gib", "cpu_cores", "sockets"):
            batch.drop_column(col)
        batch.drop_column("cpu_model")
