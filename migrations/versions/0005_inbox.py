"""inbox: received mail (Posteingang) and addresses that bounced

inbox_messages holds each received mail once (sha256 of the raw bytes is unique);
invalid_email_addresses stops the outbox from writing to an address that bounced;
outbox_emails.message_id gets an index because replies are threaded by it.

Revision ID: 0005
Revises: 0010
Create Date: 2026-12-01 20:32:43
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0010'  # main's latest; the lead re-chains on merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('from_address', sa.String(length=255), nullable=False),
    sa.Column('from_name', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('kind', sa.Enum('reply', 'bounce', 'auto_reply', 'other', name='inbox_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('state', sa.Enum('new', 'assigned', 'dismissed', 'recorded', name='inbox_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('match', sa.Enum('header', 'subject', 'sender', 'patient', 'manual', 'none', name='inbox_match', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('quoted_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('warnings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('thread_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('inquiry_id', sa.Integer(), nullable=True),
    sa.Column('therapist_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('outbox_email_id', sa.Integer(), nullable=True),
    sa.Column('bounce_recipient', sa.String(length=255), nullable=True),
    sa.Column('bounce_status', sa.String(length=32), nullable=True),
    sa.Column('bounce_diagnostic', sa.Text(), nullable=True),
    sa.Column('return_date', sa.Date(), nullable=True),
    sa.Column('handled_by', sa.Integer(), nullable=True),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handled_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handled_by'], ['users.id'], name=op.f('fk_inbox_messages_handled_by_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['inquiry_id'], ['inquiries.id'], name=op.f('fk_inbox_messages_inquiry_id_inquiries'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['outbox_email_id'], ['outbox_emails.id'], name=op.f('fk_inbox_messages_outbox_email_id_outbox_emails'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_inbox_messages_patient_id_patients'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], name=op.f('fk_inbox_messages_therapist_id_therapists'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages')),
    sa.UniqueConstraint('sha256', name=op.f('uq_inbox_messages_sha256'))
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_messages_from_address'), ['from_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_inquiry_id'), ['inquiry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_outbox_email_id'), ['outbox_email_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_inbox_messages_state_kind', ['state', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('invalid_email_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('inbox_message_id', sa.Integer(), nullable=True),
    sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cleared_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cleared_by'], ['users.id'], name=op.f('fk_invalid_email_addresses_cleared_by_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['inbox_message_id'], ['inbox_messages.id'], name=op.f('fk_invalid_email_addresses_inbox_message_id_inbox_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invalid_email_addresses')),
    sa.UniqueConstraint('address', name=op.f('uq_invalid_email_addresses_address'))
    )
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_emails_message_id', ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_emails_message_id')
    op.drop_table('invalid_email_addresses')
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_messages_therapist_id'))
        batch_op.drop_index('ix_inbox_messages_state_kind')
        batch_op.drop_index(batch_op.f('ix_inbox_messages_patient_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_outbox_email_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_inquiry_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_from_address'))

    op.drop_table('inbox_messages')
