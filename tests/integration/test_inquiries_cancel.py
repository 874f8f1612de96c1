"""Cancelling an inquiry by hand, on both databases. "Sent" means delivered: a delivered
e-mail inquiry can be cancelled (its pending reminder and calls end, the delivered mail stays
delivered); only while the mail is being handed to the SMTP server the answer is "try again"."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.inquiries import lifecycle
from core.inquiries import views as inquiry_views
from core.inquiries.loading import InquiryError
from core.mail import delivery as mail_delivery
from core.mail import outbox
from core.mail import templates as mt
from core.platform.models import AuditEntry, OutboxEmail, PhoneCall
from core.platform.permissions import Actor
from core.platform.vocab import CallPurpose, CallState, EmailState, InquiryStatus, Role
from tests.support.outbox_fixtures import MemorySender, make_inquiry, make_patient, make_therapist, settings_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator, display_name="Karla Koch")
SETTINGS = settings_for(EMAIL_MIN_INTERVAL_DAYS=7, FOLLOW_UP_DAYS=7)


def _delivered_inquiry(session, now):
    inquiry = make_inquiry(session, make_therapist(session, email="abbruch@example.org"), [make_patient(session)])
    outbox.queue_inquiry_email(session, COORD, inquiry.id, now, approve=True, settings=SETTINGS)

    @contextmanager
    def scope():
        yield session
        session.flush()

    sender = MemorySender()
    assert mail_delivery.deliver_due(scope, sender, lambda: now, owner="runner-a", settings=SETTINGS).sent == 1
    session.refresh(inquiry)
    assert inquiry.status == InquiryStatus.sent
    return inquiry


def _mails(session, inquiry_id):
    return {m.template: m.state for m in session.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inquiry_id))}


def test_a_delivered_email_inquiry_can_be_cancelled_with_its_reminder_and_calls(db_session, now):
    inquiry = _delivered_inquiry(db_session, now)
    later = now + timedelta(days=7)
    outbox.queue_reminder_email(db_session, COORD, inquiry.id, later, settings=SETTINGS)
    call = PhoneCall(
        therapist_id=inquiry.therapist_id, inquiry_id=inquiry.id, purpose=CallPurpose.follow_up,
        scheduled_start=later + timedelta(days=1), duration_minutes=5, state=CallState.scheduled, attempt=1,
        created_at=later, updated_at=later,
    )
    db_session.add(call)
    db_session.flush()
    detail = inquiry_views.inquiry_detail(db_session, COORD, inquiry.id, today=later.date(), now=later, settings=SETTINGS)
    assert detail.can_cancel  # the page offers the button …

    lifecycle.cancel_inquiry(db_session, COORD, inquiry.id, now=later)  # … and it works

    db_session.refresh(inquiry)
    db_session.refresh(call)
    assert inquiry.status == InquiryStatus.cancelled and inquiry.cancelled_at == later
    assert inquiry.sent_at == now  # it was delivered; that stays true
    assert _mails(db_session, inquiry.id) == {mt.THERAPIST_INQUIRY: EmailState.sent, mt.THERAPIST_REMINDER: EmailState.cancelled}
    assert call.state == CallState.cancelled
    entry = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "inquiry.cancel", AuditEntry.entity_id == inquiry.id)
    ).one()
    assert entry.changes["mails_cancelled"] == 1 and entry.changes["calls_cancelled"] == 1


def test_cancel_waits_only_while_the_mail_is_being_sent(db_session, now):
    inquiry = make_inquiry(db_session, make_therapist(db_session, email="abbruch@example.org"), [make_patient(db_session)])
    mail = outbox.queue_inquiry_email(db_session, COORD, inquiry.id, now, approve=True, settings=SETTINGS)
    claimed = mail_delivery.claim_due(db_session, owner="runner-a", now=now, limit=10,
                                      lease_until=now + timedelta(minutes=5), settings=SETTINGS)
    assert [c.id for c in claimed] == [mail.id]
    with pytest.raises(InquiryError, match="wird gerade gesendet"):
        lifecycle.cancel_inquiry(db_session, COORD, inquiry.id, now=now)
    db_session.refresh(inquiry)
    assert inquiry.status == InquiryStatus.queued
