"""indexes for matching: the normalised e-mail (practice key), a therapist's open inquiry

Practices are therapists sharing lower(trim(email)) (core/platform/addresses.py). Every
proposal, re-check and the contactable list look practices up by that key; with an index on
the expression those lookups are index probes instead of scans (issue 15.7). The contactable list asks
every therapist of a region for its open inquiry: a partial index on the open ones answers
that without visiting closed inquiries.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


OPEN = "status IN ('draft', 'queued', 'sent') AND NOT (status = 'draft' AND origin = 'nightly')"


def upgrade() -> None:
    op.create_index("ix_therapists_email_key", "therapists", [sa.text("lower(trim(email))")], unique=False)
    op.create_index(
        "ix_inquiries_open_by_therapist", "inquiries", ["therapist_id", "id"], unique=False,
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_inquiries_open_by_therapist", table_name="inquiries")
    op.drop_index("ix_therapists_email_key", table_name="therapists")
