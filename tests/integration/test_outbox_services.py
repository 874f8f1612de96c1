"""Outbox services on both databases: life cycle, delivery bookkeeping, weekly limit,
leases, reminders, attachments and who may see what."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.mail import templates as mt
from core.mail import delivery as mail_delivery
from core.mail import documents
from core.calls import follow_ups
from core.mail import outbox
from core.mail import views as outbox_views
from core.adapters.smtp import SendError
from core.platform.models import AuditEntry, OutboxEmail, PhoneCall, Therapist
from core.mail.rules import OutboxError
from core.platform.permissions import Actor, PermissionDenied
from core.platform.vocab import CallPurpose, EmailState, InquiryChannel, InquiryStatus, Outcome, Role
from tests.support.outbox_fixtures import (
    MemorySender,
    make_inquiry,
    make_patient,
    make_search,
    make_therapist,
    settings_for,
)
from tests.support.scopes import scope_for

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator, display_name="Karla Koch")
VIEWER = Actor(user_id=None, username="l.lese", role=Role.viewer)
SETTINGS = settings_for(EMAIL_MIN_INTERVAL_DAYS=7, EMAIL_MAX_ATTEMPTS=5, FOLLOW_UP_DAYS=7)


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def deliver(session, sender, clock, **kw):
    return mail_delivery.deliver_due(scope_for(session), sender, clock, owner=kw.pop("owner", "runner-a"), settings=SETTINGS, **kw)


@pytest.fixture
def clock(now):
    return Clock(now)


def inquiry_with_patients(session, n=2, **tkw):
    t = make_therapist(session, **tkw)
    pats = [make_patient(session, first_name=f"P{i}", last_name="<script>alert(1)</script>") for i in range(n)]
    return make_inquiry(session, t, pats)


# --------------------------------------------------------------------------- life cycle


def test_draft_approve_deliver_sets_inquiry_sent_at_delivery_time(db_session, clock):
    inq = inquiry_with_patients(db_session)
    email = outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)
    assert email.state == EmailState.draft and email.template == mt.THERAPIST_INQUIRY
    assert email.subject == f"Anfrage Psychotherapieplätze – Ref. A{inq.id}"
    assert inq.status == InquiryStatus.draft

    outbox.approve(db_session, COORD, email.id, clock.now, settings=SETTINGS)
    assert email.state == EmailState.queued and email.next_attempt_at == clock.now
    db_session.refresh(inq)
    assert inq.status == InquiryStatus.queued and inq.sent_at is None  # queued is not sent

    sender = MemorySender()
    clock.advance(minutes=3)
    report = deliver(db_session, sender, clock)
    assert report.sent == 1 and len(sender.sent) == 1
    db_session.refresh(email)
    db_session.refresh(inq)
    assert email.state == EmailState.sent and email.sent_at == clock.now and email.attempts == 1
    assert email.message_id and sender.sent[0]["Message-ID"] == email.message_id
    assert inq.status == InquiryStatus.sent and inq.sent_at == clock.now
    assert db_session.get(Therapist, inq.therapist_id).last_contact_email_on == clock.now.astimezone(BERLIN).date()
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "outbox_email", AuditEntry.entity_id == email.id)).all()
    assert {"email.create", "email.approve", "email.sent"} <= set(actions)


def test_preview_is_exactly_what_is_sent(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    email = outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    detail = outbox_views.email_detail(db_session, COORD, email.id, now=clock.now, settings=SETTINGS)
    sender = MemorySender()
    deliver(db_session, sender, clock)
    msg = sender.sent[0]
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == detail.body_text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == detail.body_html
    assert str(msg["Subject"]) == detail.row.subject


def test_inquiry_mail_needs_email_channel_and_address(db_session, clock):
    t = make_therapist(db_session, email=None)
    inq = make_inquiry(db_session, t, [make_patient(db_session)])
    with pytest.raises(OutboxError, match="keine E-Mail-Adresse"):
        outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)
    phone = make_inquiry(db_session, make_therapist(db_session), [make_patient(db_session)], channel=InquiryChannel.phone)
    with pytest.raises(OutboxError, match="Telefon"):
        outbox.queue_inquiry_email(db_session, COORD, phone.id, clock.now, settings=SETTINGS)


def test_only_one_inquiry_mail_per_inquiry(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)
    with pytest.raises(OutboxError, match="schon eine E-Mail"):
        outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)


def test_edit_draft_keeps_footer_and_escapes(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    email = outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)
    body = outbox_views.email_detail(db_session, COORD, email.id, now=clock.now, settings=SETTINGS).editable_body
    assert "-- " not in body and SETTINGS.COMPANY_NAME not in body.splitlines()[-1]
    outbox.edit_draft(db_session, COORD, email.id, clock.now, subject="Neuer Betreff – Ref. A1",
                      body=body + "\n\nPS: <b>bitte</b> bald melden", settings=SETTINGS)
    assert email.subject == "Neuer Betreff – Ref. A1"
    assert "PS: <b>bitte</b> bald melden\n\n-- \n" in email.body_text
    assert "&lt;b&gt;bitte&lt;/b&gt;" in email.body_html and SETTINGS.COMPANY_NAME in email.body_html
    with pytest.raises(OutboxError, match="Betreff"):
        outbox.edit_draft(db_session, COORD, email.id, clock.now, subject=" ", body="x", settings=SETTINGS)
    outbox.approve(db_session, COORD, email.id, clock.now, settings=SETTINGS)
    with pytest.raises(OutboxError, match="Nur Entwürfe"):
        outbox.edit_draft(db_session, COORD, email.id, clock.now, subject="x", body="y", settings=SETTINGS)


def test_cancel_queued_inquiry_mail_returns_inquiry_to_draft(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    email = outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    outbox.cancel(db_session, COORD, email.id, clock.now)
    db_session.refresh(inq)
    assert email.state == EmailState.cancelled and inq.status == InquiryStatus.draft
    assert deliver(db_session, MemorySender(), clock).sent == 0
    with pytest.raises(OutboxError):
        outbox.cancel(db_session, COORD, email.id, clock.now)


def test_temporary_failures_back_off_then_fail_after_max_attempts(db_session, clock):
    patient = make_patient(db_session)
    make_search(db_session, patient)
    email = outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_SEARCH_STARTED, clock.now,
                                       approve=True, settings=SETTINGS)
    temp = SendError("451 4.3.0 Bitte später", temporary=True, code=451)
    sender = MemorySender(failures=[temp] * 5)
    expected_waits = [5, 10, 20, 40]
    for attempt, wait in enumerate(expected_waits, start=1):
        assert deliver(db_session, sender, clock).retrying == 1
        db_session.refresh(email)
        assert (email.state, email.attempts) == (EmailState.queued, attempt)
        assert email.next_attempt_at == clock.now + timedelta(minutes=wait)
        assert email.last_error == "451 4.3.0 Bitte später"
        # not due yet: nothing happens a minute before
        clock.advance(minutes=wait - 1)
        assert deliver(db_session, sender, clock).retrying == 0
        clock.advance(minutes=1)
    assert deliver(db_session, sender, clock).failed == 1
    db_session.refresh(email)
    assert email.state == EmailState.failed and email.attempts == 5
    assert email.last_error == "451 4.3.0 Bitte später (aufgegeben nach 5 Versuchen)"

    outbox.retry(db_session, COORD, email.id, clock.now, settings=SETTINGS)
    assert email.state == EmailState.queued and email.attempts == 0
    assert deliver(db_session, sender, clock).sent == 1


def test_permanent_failure_fails_at_once_and_flags_the_inquiry(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    email = outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    sender = MemorySender(failures=[SendError("550 5.1.1 <praxis@example.org>: Recipient address rejected", temporary=False, code=550)])
    assert deliver(db_session, sender, clock).failed == 1
    db_session.refresh(email)
    db_session.refresh(inq)
    assert email.state == EmailState.failed and email.attempts == 1
    assert email.last_error.startswith("550 5.1.1")
    assert inq.status == InquiryStatus.queued and inq.needs_attention and "550" in inq.attention_reason
    outbox.retry(db_session, COORD, email.id, clock.now, settings=SETTINGS)
    db_session.refresh(inq)
    assert not inq.needs_attention


def test_connection_failure_counts_for_every_claimed_mail(db_session, clock):
    for i in range(3):
        p = make_patient(db_session, first_name=f"X{i}")
        outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, clock.now, approve=True, settings=SETTINGS)

    class Down:
        description = "down"

        def connect(self):
            raise SendError("Mailserver nicht erreichbar (Verbindung abgelehnt)", temporary=True, connection_lost=True)

    report = deliver(db_session, Down(), clock)
    assert report.retrying == 3 and report.sent == 0
    states = db_session.scalars(select(OutboxEmail.state)).all()
    assert set(states) == {EmailState.queued}


def test_resend_creates_a_new_copy(db_session, clock):
    p = make_patient(db_session)
    email = outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, clock.now, approve=True,
                                       settings=SETTINGS, message="Hallo")
    sender = MemorySender()
    deliver(db_session, sender, clock)
    copy = outbox.resend(db_session, COORD, email.id, clock.now, settings=SETTINGS)
    assert copy.id != email.id and copy.state == EmailState.queued and copy.body_text == email.body_text
    deliver(db_session, sender, clock)
    db_session.refresh(copy)
    assert copy.state == EmailState.sent and copy.message_id != email.message_id
    assert len(sender.sent) == 2


# --------------------------------------------------------------------------- weekly limit


def test_weekly_limit_planned_when_queueing_and_shown(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    sender = MemorySender()
    deliver(db_session, sender, clock)
    sent_at = clock.now
    # the therapist accepts two days later; the thanks mail has to wait for the week to pass
    clock.advance(days=2)
    inq.patients[0].outcome = Outcome.accepted
    db_session.flush()
    thanks = outbox.queue_thanks_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    assert thanks.next_attempt_at == sent_at + timedelta(days=7)
    rows, total = outbox_views.list_emails(db_session, COORD, "queued", now=clock.now, settings=SETTINGS)
    assert total == 1 and "Wochengrenze" in rows[0].waiting and "30.11.2026" in rows[0].waiting
    panel = outbox_views.queue_panel(db_session, COORD, now=clock.now)
    assert panel.waiting_limit == 1 and panel.queued_due == 0 and panel.next_at == thanks.next_attempt_at
    clock.advance(days=4, hours=23)
    assert deliver(db_session, sender, clock).sent == 0
    clock.now = sent_at + timedelta(days=7)
    assert deliver(db_session, sender, clock).sent == 1
    assert len(sender.sent) == 2


def test_weekly_limit_checked_again_at_send_time(db_session, clock):
    t = make_therapist(db_session)
    a = make_inquiry(db_session, t, [make_patient(db_session)])
    b = make_inquiry(db_session, t, [make_patient(db_session, first_name="Zweite")])
    ea = outbox.queue_inquiry_email(db_session, COORD, a.id, clock.now, approve=True, settings=SETTINGS)
    eb = outbox.queue_inquiry_email(db_session, COORD, b.id, clock.now, approve=True, settings=SETTINGS)
    assert eb.next_attempt_at == clock.now + timedelta(days=7)  # planned a week later
    # someone forces both to be due now (e.g. a changed setting): still only one goes
    eb.next_attempt_at = clock.now
    db_session.flush()
    sender = MemorySender()
    report = deliver(db_session, sender, clock)
    assert report.sent == 1 and report.deferred == 1 and len(sender.sent) == 1
    db_session.refresh(ea)
    db_session.refresh(eb)
    assert ea.state == EmailState.sent and eb.state == EmailState.queued
    assert eb.next_attempt_at == ea.sent_at + timedelta(days=7)


def test_another_runners_mail_in_flight_blocks_the_therapist(db_session, clock):
    t = make_therapist(db_session)
    a = make_inquiry(db_session, t, [make_patient(db_session)])
    b = make_inquiry(db_session, t, [make_patient(db_session)])
    outbox.queue_inquiry_email(db_session, COORD, a.id, clock.now, approve=True, settings=SETTINGS)
    eb = outbox.queue_inquiry_email(db_session, COORD, b.id, clock.now, approve=True, settings=SETTINGS)
    claimed = mail_delivery.claim_due(db_session, owner="runner-x", now=clock.now, limit=10,
                               lease_until=clock.now + timedelta(minutes=5), settings=SETTINGS)
    assert len(claimed) == 1
    eb.next_attempt_at = clock.now
    db_session.flush()
    again = mail_delivery.claim_due(db_session, owner="runner-y", now=clock.now, limit=10,
                             lease_until=clock.now + timedelta(minutes=5), settings=SETTINGS)
    assert again == []
    db_session.refresh(eb)
    assert eb.state == EmailState.queued and eb.next_attempt_at == clock.now + timedelta(days=7)


# --------------------------------------------------------------------------- leases


def test_expired_lease_returns_the_mail_with_the_same_message_id(db_session, clock):
    p = make_patient(db_session)
    email = outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, clock.now, approve=True, settings=SETTINGS)
    first = mail_delivery.claim_due(db_session, owner="dead-runner", now=clock.now, limit=10,
                             lease_until=clock.now + timedelta(minutes=5), settings=SETTINGS)
    assert [m.id for m in first] == [email.id]
    db_session.refresh(email)
    assert email.state == EmailState.sending and email.lease_owner == "dead-runner"
    # the runner died; before the lease ends nobody touches the mail
    clock.advance(minutes=4)
    assert mail_delivery.claim_due(db_session, owner="runner-b", now=clock.now, limit=10,
                            lease_until=clock.now + timedelta(minutes=5), settings=SETTINGS) == []
    panel = outbox_views.queue_panel(db_session, COORD, now=clock.now + timedelta(minutes=2))
    assert panel.stuck == 1
    clock.advance(minutes=2)
    sender = MemorySender()
    assert deliver(db_session, sender, clock, owner="runner-b").sent == 1
    db_session.refresh(email)
    assert email.state == EmailState.sent and str(sender.sent[0]["Message-ID"]) == first[0].message_id
    # the dead runner's late report changes nothing
    assert not mail_delivery.mark_sent(db_session, first[0], owner="dead-runner", sent_at=clock.now)


def test_lease_about_to_expire_releases_instead_of_sending(db_session, clock):
    p = make_patient(db_session)
    outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, clock.now, approve=True, settings=SETTINGS)
    ticks = iter([clock.now, clock.now + timedelta(minutes=10)] + [clock.now + timedelta(minutes=10)] * 20)
    report = mail_delivery.deliver_due(scope_for(db_session), MemorySender(), lambda: next(ticks), owner="slow",
                                settings=SETTINGS, lease=timedelta(minutes=5), max_batches=1)
    assert report.released == 1 and report.sent == 0
    assert db_session.scalars(select(OutboxEmail.state)).one() == EmailState.queued


# --------------------------------------------------------------------------- reminders


def sent_inquiry(session, clock, *, phone=None, email="praxis@example.org"):
    t = make_therapist(session, phone=phone, email=email)
    return make_inquiry(session, t, [make_patient(session)], status=InquiryStatus.sent,
                        sent_at=clock.now - timedelta(days=7, minutes=1))


def test_follow_up_call_when_the_therapist_has_a_phone(db_session, clock):
    inq = sent_inquiry(db_session, clock, phone="030 99999")
    report = follow_ups.schedule_follow_ups(db_session, now=clock.now, settings=SETTINGS)
    assert (report.calls, report.reminders) == (1, 0)
    call = db_session.scalars(select(PhoneCall).where(PhoneCall.inquiry_id == inq.id)).one()
    assert call.purpose == CallPurpose.follow_up and call.therapist_id == inq.therapist_id
    # now = Monday 23.11.2026 10:30 Berlin, phone hours Mo 09:00-12:00: the next slot is now
    assert call.scheduled_start == datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN) and not call.uses_fallback
    assert follow_ups.schedule_follow_ups(db_session, now=clock.now, settings=SETTINGS).calls == 0  # never twice


def test_reminder_email_without_phone_once_and_not_before_follow_up_days(db_session, clock):
    inq = sent_inquiry(db_session, clock)
    early = follow_ups.schedule_follow_ups(db_session, now=clock.now - timedelta(minutes=2), settings=SETTINGS)
    assert early.reminders == 0
    report = follow_ups.schedule_follow_ups(db_session, now=clock.now, settings=SETTINGS)
    assert report.reminders == 1
    reminder = db_session.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inq.id)).one()
    assert reminder.template == mt.THERAPIST_REMINDER and reminder.state == EmailState.queued
    assert reminder.subject.startswith("Erinnerung:")
    assert follow_ups.schedule_follow_ups(db_session, now=clock.now + timedelta(days=1), settings=SETTINGS).reminders == 0


def test_reminder_not_sent_when_the_inquiry_was_answered_meanwhile(db_session, clock):
    inq = sent_inquiry(db_session, clock)
    follow_ups.schedule_follow_ups(db_session, now=clock.now, settings=SETTINGS)
    inq.status = InquiryStatus.answered
    inq.answered_at = clock.now
    db_session.flush()
    sender = MemorySender()
    report = deliver(db_session, sender, clock)
    assert report.cancelled == 1 and sender.sent == []
    reminder = db_session.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inq.id)).one()
    assert reminder.state == EmailState.cancelled and "beantwortet" in reminder.last_error


def test_answered_and_phone_inquiries_get_no_follow_up(db_session, clock):
    a = sent_inquiry(db_session, clock)
    a.status = InquiryStatus.answered
    make_inquiry(db_session, make_therapist(db_session), [make_patient(db_session)], channel=InquiryChannel.phone,
                 status=InquiryStatus.sent, sent_at=clock.now - timedelta(days=10))
    db_session.flush()
    report = follow_ups.schedule_follow_ups(db_session, now=clock.now, settings=SETTINGS)
    assert (report.calls, report.reminders) == (0, 0)


def test_cancel_pending_for_inquiry(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, approve=True, settings=SETTINGS)
    assert outbox.cancel_pending_for_inquiry(db_session, COORD, inq.id, clock.now, reason="Anfrage storniert") == 1


# --------------------------------------------------------------------------- attachments


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_pdf_forms_are_checked_and_attached_to_the_success_mail(db_session, clock):
    t = make_therapist(db_session, phone="030 1")
    p = make_patient(db_session)
    with pytest.raises(OutboxError, match="nur PDF"):
        documents.add_therapist_document(db_session, COORD, t.id, "bild.png", b"\x89PNG....", clock.now)
    with pytest.raises(OutboxError, match="10 MB"):
        documents.add_therapist_document(db_session, COORD, t.id, "gross.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), clock.now)
    doc = documents.add_therapist_document(db_session, COORD, t.id, "C:\\Users\\x\\Anmeldebogen Müller.pdf", PDF, clock.now)
    assert doc.filename == "Anmeldebogen Müller.pdf"
    email = outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_PLACE_FOUND_PHONE, clock.now,
                                       therapist_id=t.id, approve=True, settings=SETTINGS)
    assert email.attachment_document_ids == [doc.id]
    assert "Anmeldebogen Müller.pdf" in email.body_text
    with pytest.raises(OutboxError, match="noch nicht gesendeten"):
        documents.delete_therapist_document(db_session, COORD, doc.id, clock.now)
    sender = MemorySender()
    deliver(db_session, sender, clock)
    names = [part.get_filename() for part in sender.sent[0].iter_attachments()]
    assert names == ["Anmeldebogen Müller.pdf"]
    assert next(sender.sent[0].iter_attachments()).get_content() == PDF


def test_place_found_by_email_needs_the_practice_address(db_session, clock):
    t = make_therapist(db_session, email=None, phone="030 1")
    p = make_patient(db_session)
    with pytest.raises(OutboxError, match="Kontakt per Telefon"):
        outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_PLACE_FOUND_EMAIL, clock.now, therapist_id=t.id,
                                   settings=SETTINGS)


# --------------------------------------------------------------------------- roles


def test_viewers_see_states_and_subjects_but_no_bodies_or_addresses(db_session, clock):
    p = make_patient(db_session, first_name="Geheim", last_name="Person")
    email = outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, clock.now, settings=SETTINGS)
    rows, total = outbox_views.list_emails(db_session, VIEWER, "drafts", now=clock.now, settings=SETTINGS)
    assert total == 1 and rows[0].subject == email.subject
    assert rows[0].to_address == "" and "Geheim" not in rows[0].recipient
    with pytest.raises(PermissionDenied):
        outbox_views.email_detail(db_session, VIEWER, email.id, now=clock.now, settings=SETTINGS)
    with pytest.raises(PermissionDenied):
        outbox.approve(db_session, VIEWER, email.id, clock.now, settings=SETTINGS)
    with pytest.raises(PermissionDenied):
        outbox_views.local_mailbox(VIEWER, settings=SETTINGS)
    coord_rows, _ = outbox_views.list_emails(db_session, COORD, "drafts", now=clock.now, settings=SETTINGS)
    assert coord_rows[0].to_address == "erika@example.org" and coord_rows[0].recipient == "Geheim Person"
    counts = outbox_views.outbox_counts(db_session, VIEWER)
    assert counts[EmailState.draft] == 1


def test_list_search_and_counts(db_session, clock):
    inq = inquiry_with_patients(db_session, n=1)
    outbox.queue_inquiry_email(db_session, COORD, inq.id, clock.now, settings=SETTINGS)
    rows, total = outbox_views.list_emails(db_session, COORD, "drafts", now=clock.now, search=f"A{inq.id}", settings=SETTINGS)
    assert total == 1 and rows[0].inquiry_ref == f"A{inq.id}"
    rows, total = outbox_views.list_emails(db_session, COORD, "drafts", now=clock.now, search="gibtsnicht", settings=SETTINGS)
    assert total == 0
