"""imports: review columns of import changes, skipped count and details of import runs

The review queue lists and filters changes (new / changed / delisted / conflicts) without
joining therapists, and keeps the full incoming record of a new therapist until it is
accepted. An index on the external id finds a pending proposal of an earlier run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"  # chained after main's latest (0003 calls) on merge; the lead re-chains
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("therapists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_entry_hash", sa.String(length=32), nullable=True))
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("details", JSON, nullable=True))
    with op.batch_alter_table("import_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("plz", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("has_conflicts", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("candidates", JSON, nullable=True))
        batch_op.add_column(sa.Column("record", JSON, nullable=True))
        batch_op.add_column(sa.Column("values_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_import_changes_state_kind", ["review_state", "kind"], unique=False)
        batch_op.create_index("ix_import_changes_external_id", ["external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("import_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_import_changes_external_id")
        batch_op.drop_index("ix_import_changes_state_kind")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("values_hash")
        batch_op.drop_column("record")
        batch_op.drop_column("candidates")
        batch_op.drop_column("note")
        batch_op.drop_column("has_conflicts")
        batch_op.drop_column("plz")
        batch_op.drop_column("display_name")
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.drop_column("details")
        batch_op.drop_column("skipped_count")
    with op.batch_alter_table("therapists", schema=None) as batch_op:
        batch_op.drop_column("source_entry_hash")
