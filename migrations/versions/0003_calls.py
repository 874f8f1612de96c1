"""calls: call results, assignment, fallback/fixed-time marks, wrong phone numbers, waiting list

Issue 10 (Anrufliste): phone_calls gets result (erreicht, nicht erreicht, ...), assigned_to
(Meine Anrufe), uses_fallback ("keine Telefonzeiten bekannt") and fixed_time (an agreed
callback, may lie outside the phone hours); therapists get phone_invalid ("falsche Nummer");
inquiry_patients get waitlist_until and the outcome 'waitlisted' (auf Warteliste); inquiries
get the response type 'waitlisted' (no acceptance, at least one waiting-list place).

Revision ID: 0003
Revises: 0010
Create Date: 2026-11-23 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0005"  # after inbox
branch_labels = None
depends_on = None

_OUTCOMES = ["pending", "accepted", "rejected_capacity", "rejected_unsuitable", "rejected_other", "no_response",
             "no_show", "in_sessions"]
_RESULTS = ["reached", "not_reached", "busy", "voicemail", "callback", "wrong_number"]


_RESPONSES = ["all_accepted", "partly_accepted", "all_rejected", "no_response"]


def _enum(name, values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _set_values(table, column, enum_name, old, new, *, nullable):
    """Swap the CHECK of a portable enum column (VARCHAR + CHECK, core.platform.models.enum_type)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite: the CHECK lives in the table definition; batch mode rebuilds the table
        with op.batch_alter_table(table, schema=None, recreate="always") as batch_op:
            batch_op.alter_column(column, existing_type=_enum(enum_name, old), type_=_enum(enum_name, new),
                                  existing_nullable=nullable)
    else:
        name = op.f(f"ck_{table}_{enum_name}")
        op.drop_constraint(name, table, type_="check")
        listed = ", ".join(f"'{v}'" for v in new)
        op.create_check_constraint(name, table, f"{column} IN ({listed})")


def _set_outcomes(old, new):
    _set_values("inquiry_patients", "outcome", "outcome", old, new, nullable=False)


def _set_responses(old, new):
    _set_values("inquiries", "response_type", "response_type", old, new, nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("phone_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.Enum(*_RESULTS, name="call_result", native_enum=False,
                                                        create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column("assigned_to", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("uses_fallback", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("fixed_time", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(batch_op.f("fk_phone_calls_assigned_to_users"), "users", ["assigned_to"], ["id"],
                                    ondelete="RESTRICT")
        batch_op.create_index(batch_op.f("ix_phone_calls_assigned_to"), ["assigned_to"], unique=False)
    with op.batch_alter_table("therapists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_invalid", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("inquiry_patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waitlist_until", sa.Date(), nullable=True))
    _set_outcomes(_OUTCOMES, _OUTCOMES + ["waitlisted"])
    _set_responses(_RESPONSES, _RESPONSES + ["waitlisted"])


def downgrade() -> None:
    op.execute("UPDATE inquiries SET response_type = 'all_rejected' WHERE response_type = 'waitlisted'")
    _set_responses(_RESPONSES + ["waitlisted"], _RESPONSES)
    op.execute("UPDATE inquiry_patients SET outcome = 'rejected_capacity' WHERE outcome = 'waitlisted'")
    _set_outcomes(_OUTCOMES + ["waitlisted"], _OUTCOMES)
    with op.batch_alter_table("inquiry_patients", schema=None) as batch_op:
        batch_op.drop_column("waitlist_until")
    with op.batch_alter_table("therapists", schema=None) as batch_op:
        batch_op.drop_column("phone_invalid")
    with op.batch_alter_table("phone_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_calls_assigned_to"))
        batch_op.drop_constraint(batch_op.f("fk_phone_calls_assigned_to_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("ck_phone_calls_call_result"), type_="check")
        batch_op.drop_column("fixed_time")
        batch_op.drop_column("uses_fallback")
        batch_op.drop_column("assigned_to")
        batch_op.drop_column("result")
