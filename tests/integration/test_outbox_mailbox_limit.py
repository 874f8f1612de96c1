"""The weekly limit is per mailbox (issue: a practice whose members share one address got
three inquiries within ten days, to alternating members, after one inquiry had been
cancelled automatically because all its patients were placed elsewhere). Mails to the same
normalised recipient address count together, whichever therapist record they are for; at
queueing time and again at send time. On both databases."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core.inquiries import answers
from core.mail import delivery as mail_delivery
from core.mail import outbox
from core.platform.models import Inquiry, OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, InquiryStatus, Role
from tests.support.outbox_fixtures import MemorySender, make_inquiry, make_patient, make_therapist, settings_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator, display_name="Karla Koch")
SETTINGS = settings_for(EMAIL_MIN_INTERVAL_DAYS=7, EMAIL_MAX_ATTEMPTS=5, FOLLOW_UP_DAYS=7)


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock(now):
    return Clock(now)


def deliver(session, sender, clock):
    @contextmanager
    def scope():
        yield session
        session.flush()

    return mail_delivery.deliver_due(scope, sender, clock, owner="runner-a", settings=SETTINGS)


def _practice(session):
    """Two members of one practice: the same address, written differently."""
    return (
        make_therapist(session, email="Praxis.Gemeinsam@example.org", last_name="Erste"),
        make_therapist(session, email="praxis.gemeinsam@example.org", last_name="Zweite"),
    )


def _queue(session, therapist, now):
    inquiry = make_inquiry(session, therapist, [make_patient(session, first_name=f"Für{therapist.last_name}")])
    return inquiry, outbox.queue_inquiry_email(session, COORD, inquiry.id, now, approve=True, settings=SETTINGS)


def test_members_sharing_an_address_get_one_mail_a_week_between_them(db_session, clock):
    first, second = _practice(db_session)
    sender = MemorySender()
    inquiry, _ = _queue(db_session, first, clock.now)
    assert deliver(db_session, sender, clock).sent == 1
    delivered_at = clock.now
    # all its patients are placed elsewhere: the delivered inquiry is cancelled automatically
    for member in list(inquiry.patients):
        answers.withdraw_search(db_session, COORD, member.search_id, now=clock.now, reason="Platz gefunden")
    db_session.refresh(inquiry)
    assert inquiry.status == InquiryStatus.cancelled
    # three days later the practice's other member is asked: the mail waits for the week
    clock.advance(days=3)
    _, mail = _queue(db_session, second, clock.now)
    assert mail.next_attempt_at == delivered_at + timedelta(days=7)
    assert deliver(db_session, sender, clock).sent == 0
    clock.now = delivered_at + timedelta(days=7)
    assert deliver(db_session, sender, clock).sent == 1
    # and the first member again, a day later: one more week after the second mail
    clock.advance(days=1)
    _, third = _queue(db_session, first, clock.now)
    assert third.next_attempt_at == delivered_at + timedelta(days=14)
    moments = sorted(m["Date"].datetime for m in sender.sent)
    assert len(moments) == 2 and moments[1] - moments[0] >= timedelta(days=7)


def test_the_runner_checks_the_mailbox_again_at_send_time(db_session, clock):
    first, second = _practice(db_session)
    _, a = _queue(db_session, first, clock.now)
    _, b = _queue(db_session, second, clock.now)
    assert b.next_attempt_at == clock.now + timedelta(days=7)
    b.next_attempt_at = clock.now  # forced due (e.g. a changed setting): still only one goes
    db_session.flush()
    sender = MemorySender()
    report = deliver(db_session, sender, clock)
    assert report.sent == 1 and report.deferred == 1
    db_session.refresh(a)
    db_session.refresh(b)
    assert a.state == EmailState.sent and b.state == EmailState.queued
    assert b.next_attempt_at == a.sent_at + timedelta(days=7)


def test_other_mailboxes_are_not_held_back(db_session, clock):
    first, _ = _practice(db_session)
    other = make_therapist(db_session, email="einzel.praxis@example.org", last_name="Andere")
    _queue(db_session, first, clock.now)
    _, mail = _queue(db_session, other, clock.now)
    assert mail.next_attempt_at == clock.now
    assert deliver(db_session, MemorySender(), clock).sent == 2
    states = db_session.scalars(select(OutboxEmail.state).join(Inquiry, Inquiry.id == OutboxEmail.inquiry_id)
                                .where(Inquiry.therapist_id.in_([first.id, other.id]))).all()
    assert sorted(states) == [EmailState.sent, EmailState.sent]
