"""Issue 15 point 7: the outbox's speed properties, as counts rather than seconds (both
databases). Rendering and delivering cost a fixed number of statements per batch, not per
mail or per patient; one SMTP connection serves a whole run; a message is written once and
handed to the server as those bytes. bench/outbox.py has the seconds."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from core.adapters.smtp import BuiltMessage, SmtpSender, _SmtpTransport
from core.mail import delivery as mail_delivery
from core.mail import outbox
from core.mail import templates as mt
from core.mail.rules import OutboxError
from core.platform.models import AuditEntry, Inquiry, OutboxEmail, Patient, Therapist
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, InquiryStatus, Role
from tests.support.outbox_fixtures import MemorySender, SinkHandler, SmtpSink, make_inquiry, make_patient, make_therapist, settings_for
from tests.support.scopes import scope_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
SETTINGS = settings_for(EMAIL_MIN_INTERVAL_DAYS=7)


@contextmanager
def statements(session):
    """The statements the session's connection sends. An executemany counts once, and so do
    consecutive identical INSERTs: PostgreSQL gets the rows of a flush as one multi-row
    INSERT, SQLite's driver takes them row by row (in process, no round trips)."""
    seen: list[str] = []
    bind = session.connection()

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT") and seen and seen[-1] == statement:
            return
        seen.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", count)


def _inquiries(session, count: int, patients: int, *, tag: str) -> list[int]:
    ids = []
    for i in range(count):
        t = make_therapist(session, email=f"{tag}{i}@praxis.example.org", last_name=f"Weber{tag}{i}")
        pats = [make_patient(session, first_name=f"P{tag}{i}{j}", email=f"p{tag}{i}{j}@example.org") for j in range(patients)]
        ids.append(make_inquiry(session, t, pats).id)
    session.flush()
    session.expire_all()
    return ids


# --------------------------------------------------------------------------- rendering


def test_one_inquiry_mail_costs_the_same_statements_with_one_patient_or_six(db_session, now):
    """The old code loaded every patient of the inquiry lazily (its search, then the patient):
    two more statements per patient. Now they are loaded together."""
    small, big = _inquiries(db_session, 1, 1, tag="s") + _inquiries(db_session, 1, 6, tag="b")
    with statements(db_session) as one:
        outbox.queue_inquiry_email(db_session, COORD, small, now, approve=True, settings=SETTINGS)
        db_session.flush()
    with statements(db_session) as six:
        outbox.queue_inquiry_email(db_session, COORD, big, now, approve=True, settings=SETTINGS)
        db_session.flush()
    assert len(six) == len(one), (one, six)


def test_queueing_many_inquiry_mails_costs_a_fixed_number_of_statements(db_session, now):
    few, many = _inquiries(db_session, 2, 3, tag="f"), _inquiries(db_session, 12, 3, tag="m")
    with statements(db_session) as for_few:
        outbox.queue_inquiry_emails(db_session, COORD, few, now, approve=True, settings=SETTINGS)
        db_session.flush()
    with statements(db_session) as for_many:
        emails = outbox.queue_inquiry_emails(db_session, COORD, many, now, approve=True, settings=SETTINGS)
        db_session.flush()
    assert len(for_many) == len(for_few) <= 16, "\n".join(s[:100] for s in for_many)
    assert [e.inquiry_id for e in emails] == many and all(e.state == EmailState.queued for e in emails)
    statuses = db_session.scalars(select(Inquiry.status).where(Inquiry.id.in_(many))).all()
    assert set(statuses) == {InquiryStatus.queued}


def test_queueing_many_patient_mails_costs_a_fixed_number_of_statements(db_session, now):
    therapist = make_therapist(db_session, email="platz@praxis.example.org", phone="030 123456")
    patients = [make_patient(db_session, first_name=f"Q{i}", email=f"q{i}@example.org") for i in range(14)]
    db_session.flush()

    def requests(ps):
        return [outbox.PatientMail(p.id, mt.PATIENT_PLACE_FOUND_EMAIL, therapist_id=therapist.id) if i % 2
                else outbox.PatientMail(p.id, mt.PATIENT_STATUS_UPDATE) for i, p in enumerate(ps)]

    with statements(db_session) as for_few:
        outbox.queue_patient_emails(db_session, COORD, requests(patients[:2]), now, approve=True, settings=SETTINGS)
        db_session.flush()
    with statements(db_session) as for_many:
        outbox.queue_patient_emails(db_session, COORD, requests(patients[2:]), now, approve=True, settings=SETTINGS)
        db_session.flush()
    assert len(for_many) == len(for_few) <= 12, for_many


def test_the_batch_renders_what_one_at_a_time_renders(db_session, now):
    one_by_one = _inquiries(db_session, 2, 2, tag="Xone")
    together = _inquiries(db_session, 2, 2, tag="Xtwo")
    singles = [outbox.queue_inquiry_email(db_session, COORD, i, now, settings=SETTINGS) for i in one_by_one]
    batch = outbox.queue_inquiry_emails(db_session, COORD, together, now, settings=SETTINGS)
    def same(mail, tag):  # the inquiry number and the test's name tags aside
        return mail.body_text.replace(f"A{mail.inquiry_id}", "A#").replace(tag, "#")

    for a, b in zip(singles, batch):
        assert same(a, "Xone") == same(b, "Xtwo")
        assert a.state == b.state == EmailState.draft
    patient = make_patient(db_session, first_name="Rita", email="rita@example.org")
    db_session.flush()
    single = outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_STATUS_UPDATE, now, settings=SETTINGS)
    [batched] = outbox.queue_patient_emails(db_session, COORD, [outbox.PatientMail(patient.id, mt.PATIENT_STATUS_UPDATE)],
                                            now, settings=SETTINGS)
    assert (single.subject, single.body_text, single.body_html) == (batched.subject, batched.body_text, batched.body_html)
    creates = db_session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "email.create"))
    assert creates == 6


def test_mails_of_one_batch_to_one_mailbox_keep_the_weekly_limit_apart(db_session, now):
    a = make_therapist(db_session, email="gemeinsam@praxis.example.org", last_name="Eins")
    b = make_therapist(db_session, email="Gemeinsam@Praxis.example.org", last_name="Zwei")
    ia = make_inquiry(db_session, a, [make_patient(db_session, email="x1@example.org")])
    ib = make_inquiry(db_session, b, [make_patient(db_session, email="x2@example.org")])
    db_session.flush()
    first, second = outbox.queue_inquiry_emails(db_session, COORD, [ia.id, ib.id], now, approve=True, settings=SETTINGS)
    assert first.next_attempt_at == now
    assert second.next_attempt_at >= now + timedelta(days=7)


def test_a_batch_is_all_or_nothing(db_session, now):
    good = _inquiries(db_session, 1, 1, tag="g")[0]
    phone_only = make_inquiry(db_session, make_therapist(db_session, email=None, phone="030 1"), [make_patient(db_session)])
    db_session.flush()
    with pytest.raises(OutboxError):
        outbox.queue_inquiry_emails(db_session, COORD, [good, good], now, settings=SETTINGS)
    with pytest.raises(OutboxError):
        outbox.queue_inquiry_emails(db_session, COORD, [good, phone_only.id], now, settings=SETTINGS)
    with pytest.raises(OutboxError):
        outbox.queue_patient_emails(db_session, COORD, [outbox.PatientMail(10**9, mt.PATIENT_STATUS_UPDATE)], now,
                                    settings=SETTINGS)


# --------------------------------------------------------------------------- delivery


def _delivered(session, now, n: int, *, tag: str):
    ids = _inquiries(session, n, 2, tag=tag)
    outbox.queue_inquiry_emails(session, COORD, ids, now, approve=True, settings=SETTINGS)
    session.commit()
    sender = MemorySender()
    with statements(session) as seen:
        report = mail_delivery.deliver_due(scope_for(session), sender, lambda: now, owner="runner", settings=SETTINGS,
                                           commit_every=5)
    assert report.sent == n and len(sender.sent) == n
    return seen, sender


def test_recording_a_group_of_deliveries_costs_what_recording_one_costs(db_session, now):
    """One claim and one bookkeeping group each: the old code locked and wrote every
    delivered mail on its own (about seven statements a mail) and asked three questions
    per mailbox in the claim."""
    one, _ = _delivered(db_session, now, 1, tag="e")
    five, _ = _delivered(db_session, now, 5, tag="f")
    assert len(five) == len(one), (one, five)
    sent = db_session.scalars(select(OutboxEmail).where(OutboxEmail.state == EmailState.sent)).all()
    assert len(sent) == 6 and len({m.sent_at for m in sent}) == 1
    assert db_session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "email.sent")) == 6
    assert db_session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "inquiry.sent")) == 6
    therapists = db_session.scalars(select(Therapist.last_contact_email_on)).all()
    assert set(therapists) == {now.date()}


def test_every_delivered_mail_keeps_its_own_delivery_time(db_session, now):
    ids = _inquiries(db_session, 3, 1, tag="z")
    patient = make_patient(db_session, first_name="Zoe", email="zoe@example.org")
    db_session.flush()
    outbox.queue_inquiry_emails(db_session, COORD, ids, now, approve=True, settings=SETTINGS)
    outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_STATUS_UPDATE, now, approve=True, settings=SETTINGS)
    db_session.commit()
    ticks = iter(range(100))
    clock = lambda: now + timedelta(seconds=next(ticks))  # noqa: E731
    mail_delivery.deliver_due(scope_for(db_session), MemorySender(), clock, owner="runner", settings=SETTINGS)
    db_session.expire_all()
    mails = db_session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
    assert len({m.sent_at for m in mails}) == 4 and all(m.state == EmailState.sent for m in mails)
    inquiries = {i.id: i for i in db_session.scalars(select(Inquiry))}
    for m in mails:
        if m.inquiry_id is not None:
            assert inquiries[m.inquiry_id].sent_at == m.sent_at and inquiries[m.inquiry_id].status == InquiryStatus.sent
    assert db_session.get(Patient, patient.id).last_contact_on == now.date()


def test_a_run_over_several_claims_uses_one_connection(db_session, now):
    ids = _inquiries(db_session, 7, 1, tag="c")
    outbox.queue_inquiry_emails(db_session, COORD, ids, now, approve=True, settings=SETTINGS)
    db_session.commit()
    sender = MemorySender()
    report = mail_delivery.deliver_due(scope_for(db_session), sender, lambda: now, owner="runner", settings=SETTINGS,
                                       batch_size=3, commit_every=2)
    assert report.sent == 7 and sender.connections == 1


def test_the_wire_bytes_go_to_the_server_as_they_are(db_session, now):
    """The SMTP transport hands over the bytes build_message wrote (the old code gave
    smtplib an EmailMessage, which it wrote out a second time)."""
    ids = _inquiries(db_session, 2, 1, tag="w")
    outbox.queue_inquiry_emails(db_session, COORD, ids, now, approve=True, settings=SETTINGS)
    db_session.commit()
    handed: list = []

    class Recording(_SmtpTransport):
        def send(self, message):
            handed.append(message)
            super().send(message)

    class Sender(SmtpSender):
        @contextmanager
        def connect(self):
            with super().connect() as transport:
                yield Recording(transport._smtp)

    handler = SinkHandler()
    with SmtpSink(handler) as sink:
        report = mail_delivery.deliver_due(scope_for(db_session), Sender("127.0.0.1", sink.port, security="plain"),
                                           lambda: now, owner="runner", settings=SETTINGS)
    assert report.sent == 2 and all(isinstance(m, BuiltMessage) for m in handed)
    received = sorted(handler.messages)
    assert received == sorted(m.raw for m in handed)


def test_mailboxes_are_found_by_normalised_address_in_chunks(db_session, monkeypatch):
    make_therapist(db_session, email="Gleich@Praxis.example.org", last_name="A")
    make_therapist(db_session, email="gleich@praxis.example.org", last_name="B")
    make_therapist(db_session, email="anders@praxis.example.org", last_name="C")
    make_therapist(db_session, email="GLEICHER@praxis.example.org", last_name="D")
    db_session.flush()
    asked = ["gleich@PRAXIS.example.org", "anders@praxis.example.org", "niemand@praxis.example.org", None]
    at_once = outbox.mailboxes_members(db_session, asked)
    monkeypatch.setattr(outbox, "KEYS_PER_LOOKUP", 1)  # one key per lookup: the chunks add up
    one_by_one = outbox.mailboxes_members(db_session, asked)
    assert one_by_one == at_once
    assert [len(at_once[k]) for k in sorted(at_once)] == [1, 2, 0]


def test_audit_entries_written_together_read_like_single_ones(db_session, now):
    from core.platform import audit
    from core.platform.permissions import SYSTEM

    audit.record_many(db_session, SYSTEM, [("email.sent", "outbox_email", 7, {"message_id": "<a@b>", "at": now}, now),
                                           ("email.sent", "outbox_email", 8, None, now)])
    audit.record(db_session, SYSTEM, "email.sent", "outbox_email", 9, {"message_id": "<c@d>", "at": now}, now=now)
    db_session.flush()
    rows = db_session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.entity_id, r.actor_name, r.action, r.at) for r in rows] == [
        (7, SYSTEM.username, "email.sent", now), (8, SYSTEM.username, "email.sent", now), (9, SYSTEM.username, "email.sent", now)]
    assert rows[0].changes == {"message_id": "<a@b>", "at": now.isoformat()} == {**rows[2].changes, "message_id": "<a@b>"}
    assert rows[1].changes is None
    with pytest.raises(ValueError):
        audit.record_many(db_session, SYSTEM, [("x" * 65, "outbox_email", 1, None, now)])
