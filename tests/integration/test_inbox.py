"""The Posteingang end to end against a real Dovecot on 127.0.0.1 and both databases: threading
(headers, subject reference, sender, patient, unassigned), bounces (mail failed, address
invalid, no further mail, event), out-of-office (recognised, return date, event), storing
once, the job killed between commit and move, rejected mail, and the audited actions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.adapters.imap import ImapConfig
from core.inbox import services, store, views
from core.mail import delivery
from core.platform import events
from core.platform.db import make_engine, unit_of_work
from core.platform.models import AuditEntry, InboxMessage, Inquiry, InvalidEmailAddress, OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, InboxKind, InboxMatch, InboxState, InquiryStatus, Outcome, Role
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist, settings_for
from tests.support.dovecot import dovecot, dovecot_server  # noqa: F401 - fixtures
from tests.support.mail_samples import DSN
from tests.support.scopes import scope_for

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)
COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
VIEWER = Actor(user_id=None, username="v.viewer", role=Role.viewer)


def imap(server) -> ImapConfig:
    return ImapConfig(host="127.0.0.1", port=server.port, security="plain", user=server.user,
                      password=server.password, folder="INBOX", processed_folder="Verarbeitet", timeout_s=10)


def run(session, server, **kw):
    return store.fetch_and_store(scope_for(session), imap(server), clock=lambda: NOW, **kw)


def mail(*, subject="AW: Anfrage Psychotherapieplatz – Ref. A1", sender="praxis@example.org", text="Leider keine Kapazität.",
         in_reply_to=None, message_id="<r1@example.org>", headers=()) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "vermittlung@example.de"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(NOW - timedelta(hours=1))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    for k, v in headers:
        msg[k] = v
    msg.set_content(text)
    return bytes(msg)


@pytest.fixture
def world(db_session):
    """A therapist with one sent e-mail inquiry (and its outbox mail), a patient with a mail."""
    t = make_therapist(db_session, email="praxis@example.org", phone="+4930123456")
    p1 = make_patient(db_session, first_name="Anna", email="anna@example.org")
    p2 = make_patient(db_session, first_name="Bert", email="bert@example.org")
    inquiry = make_inquiry(db_session, t, [p1, p2], status=InquiryStatus.sent, sent_at=NOW - timedelta(days=2))
    sent = OutboxEmail(therapist_id=t.id, inquiry_id=inquiry.id, to_address="praxis@example.org", to_name="Praxis",
                       subject=f"Anfrage – Ref. A{inquiry.id}", body_html="<p>x</p>", body_text="x",
                       template="therapist_inquiry", state=EmailState.sent, message_id=f"<a{inquiry.id}.x@vermittlung.example.de>",
                       sent_at=NOW - timedelta(days=2))
    to_patient = OutboxEmail(patient_id=p1.id, to_address="anna@example.org", to_name="Anna", subject="Ihre Suche",
                             body_html="<p>y</p>", body_text="y", template="patient_search_started", state=EmailState.sent,
                             message_id="<p1.y@vermittlung.example.de>", sent_at=NOW - timedelta(days=3))
    db_session.add_all([sent, to_patient])
    db_session.flush()
    return {"therapist": t, "inquiry": inquiry, "sent": sent, "patients": (p1, p2), "to_patient": to_patient}


def rows(session):
    return list(session.scalars(select(InboxMessage).order_by(InboxMessage.id)))


# --------------------------------------------------------------------------- threading


def test_reply_with_in_reply_to_lands_on_its_inquiry(db_session, dovecot, world):
    other = make_therapist(db_session, email="andere@example.org", last_name="Anders")
    dovecot.append("INBOX", mail(sender="andere@example.org", subject="Re: Ihre Mail", in_reply_to=world["sent"].message_id))
    report = run(db_session, dovecot)
    assert (report.fetched, report.stored, report.assigned, report.moved) == (1, 1, 1, 1)
    [m] = rows(db_session)
    assert (m.inquiry_id, m.match, m.kind, m.state) == (world["inquiry"].id, InboxMatch.header, InboxKind.reply, InboxState.new)
    assert m.outbox_email_id == world["sent"].id and m.therapist_id == world["therapist"].id != other.id
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Verarbeitet")) == 1
    assert [r.id for r in views.replies_for_inquiry(db_session, COORD, world["inquiry"].id)] == [m.id]
    assert views.replies_waiting(db_session, COORD) == 1


def test_reply_without_headers_but_reference_in_subject(db_session, dovecot, world):
    ref = f"A{world['inquiry'].id}"
    dovecot.append("INBOX", mail(sender="sekretariat@andere-domain.example", subject=f"Ihre Anfrage {ref}"))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert (m.inquiry_id, m.match, m.therapist_id) == (world["inquiry"].id, InboxMatch.subject, world["therapist"].id)


def test_sender_with_exactly_one_open_inquiry(db_session, dovecot, world):
    dovecot.append("INBOX", mail(sender="Praxis Weber <PRAXIS@example.org>", subject="Ihre Nachricht"))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert (m.inquiry_id, m.match) == (world["inquiry"].id, InboxMatch.sender)


def test_sender_with_two_open_inquiries_is_not_guessed(db_session, dovecot, world):
    extra = make_patient(db_session, first_name="Cora", email=None)
    make_inquiry(db_session, world["therapist"], [extra], status=InquiryStatus.sent, sent_at=NOW - timedelta(days=1))
    dovecot.append("INBOX", mail(subject="Ihre Nachricht"))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert (m.inquiry_id, m.match, m.therapist_id) == (None, InboxMatch.none, world["therapist"].id)
    assert views.inbox_counts(db_session, COORD)["unassigned"] == 1


def test_unknown_sender_lands_in_nicht_zugeordnet(db_session, dovecot, world):
    dovecot.append("INBOX", mail(sender="fremd@example.net", subject="Fortbildung"))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert (m.inquiry_id, m.patient_id, m.therapist_id, m.match) == (None, None, None, InboxMatch.none)
    counts = views.inbox_counts(db_session, COORD)
    assert counts["unassigned"] == 1 and counts["assigned"] == 0 and counts["new"] == 1
    listed, total = views.list_messages(db_session, COORD, "unassigned")
    assert total == 1 and listed[0].reference_text == "Nicht zugeordnet"


def test_patient_reply_is_matched_to_the_patient(db_session, dovecot, world):
    p1 = world["patients"][0]
    dovecot.append("INBOX", mail(sender="anna@example.org", subject="Re: Ihre Suche", in_reply_to="<p1.y@vermittlung.example.de>"),
                   mail(sender="bert@example.org", subject="Frage", message_id="<r2@example.org>"))
    run(db_session, dovecot)
    a, b = rows(db_session)
    assert (a.patient_id, a.match, a.inquiry_id) == (p1.id, InboxMatch.patient, None)
    assert (b.patient_id, b.match) == (world["patients"][1].id, InboxMatch.patient)


# --------------------------------------------------------------------------- bounces and auto-replies


def test_dsn_bounce_fails_the_mail_flags_the_address_and_stops_further_mail(db_session, dovecot, world, monkeypatch):
    heard = []
    monkeypatch.setitem(events._handlers, events.EmailBounced, [lambda s, e: heard.append(e)])
    sent = world["sent"]
    raw = DSN.replace(b"praxis.alt@example.org", b"praxis@example.org").replace(
        b"<a253.4f2c@vermittlung.example.de>", sent.message_id.encode())
    dovecot.append("INBOX", raw)
    report = run(db_session, dovecot)
    assert report.bounces == 1
    [m] = rows(db_session)
    assert (m.kind, m.bounce_recipient, m.bounce_status, m.outbox_email_id) == (InboxKind.bounce, "praxis@example.org", "5.1.1", sent.id)
    db_session.refresh(sent)
    assert sent.state == EmailState.failed and "5.1.1" in sent.last_error and "User unknown" in sent.last_error
    flag = db_session.scalar(select(InvalidEmailAddress).where(InvalidEmailAddress.address == "praxis@example.org"))
    assert flag is not None and flag.cleared_at is None and "Rückläufer" in flag.reason
    inquiry = db_session.get(Inquiry, world["inquiry"].id)
    db_session.refresh(inquiry)
    assert inquiry.needs_attention and "anrufen" in inquiry.attention_reason
    assert [(e.address, e.inquiry_id, e.therapist_id) for e in heard] == [("praxis@example.org", inquiry.id, world["therapist"].id)]
    assert services.therapist_address_invalid(db_session, world["therapist"].id)
    assert views.inbox_counts(db_session, COORD)["bounces"] == 1
    actions = set(db_session.scalars(select(AuditEntry.action)))
    assert {"inbox.bounce", "email.address_invalid", "email.failed"} <= actions

    # no further mail to that address: the outbox fails it instead of sending
    later = OutboxEmail(therapist_id=world["therapist"].id, to_address="Praxis@Example.org", to_name="Praxis",
                        subject="Erinnerung", body_html="x", body_text="x", template="therapist_reminder",
                        state=EmailState.queued, next_attempt_at=NOW - timedelta(minutes=1), message_id="<later@x>")
    db_session.add(later)
    db_session.flush()
    claimed = delivery.claim_due(db_session, owner="t", now=NOW, limit=10, lease_until=NOW + timedelta(minutes=5),
                                 settings=settings_for())
    assert [c.id for c in claimed] == []
    db_session.refresh(later)
    assert later.state == EmailState.failed and "ungültig" in later.last_error

    # corrected: cleared, mails go out again
    assert services.clear_invalid_address(db_session, COORD, "praxis@example.org", now=NOW)
    later.state, later.next_attempt_at = EmailState.queued, NOW - timedelta(minutes=1)
    db_session.flush()
    claimed = delivery.claim_due(db_session, owner="t", now=NOW, limit=10, lease_until=NOW + timedelta(minutes=5),
                                 settings=settings_for())
    assert [c.id for c in claimed] == [later.id]


def test_out_of_office_is_recognised_with_return_date(db_session, dovecot, world, monkeypatch):
    heard = []
    monkeypatch.setitem(events._handlers, events.OutOfOffice, [lambda s, e: heard.append(e)])
    dovecot.append("INBOX", mail(subject="Abwesenheitsnotiz: Anfrage", in_reply_to=world["sent"].message_id,
                                 headers=(("Auto-Submitted", "auto-replied"),),
                                 text="Ich bin bis zum 14.12.2026 nicht in der Praxis."),
                   mail(subject="Automatische Antwort", message_id="<ooo2@example.org>", sender="fremd@example.net",
                        text="Ich bin im Urlaub."))
    report = run(db_session, dovecot)
    assert report.auto_replies == 2
    a, b = rows(db_session)
    assert (a.kind, a.return_date, a.inquiry_id) == (InboxKind.auto_reply, date(2026, 12, 15), world["inquiry"].id)
    assert (b.kind, b.return_date) == (InboxKind.auto_reply, None)
    assert [(e.therapist_id, e.inquiry_id, e.back_on) for e in heard] == [(world["therapist"].id, world["inquiry"].id, date(2026, 12, 15))]
    assert views.replies_waiting(db_session, COORD) == 0  # an auto-reply is no answer to record


# --------------------------------------------------------------------------- storing once


def test_second_run_and_second_copy_never_duplicate(db_session, dovecot, world):
    raw = mail()
    dovecot.append("INBOX", raw, raw, mail(text="Anders", message_id="<r1@example.org>"))  # same bytes twice; same id again
    report = run(db_session, dovecot)
    assert (report.fetched, report.stored, report.duplicates) == (3, 1, 2)
    dovecot.append("INBOX", raw)
    report = run(db_session, dovecot)
    assert (report.stored, report.duplicates, report.moved) == (0, 1, 1)
    assert len(rows(db_session)) == 1
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Verarbeitet")) == 4


def test_unreadable_mail_is_stored_with_a_reason_and_moved(db_session, dovecot, world):
    dovecot.append("INBOX", b"\x00\x01garbage without any header\r\n")
    report = run(db_session, dovecot)
    assert report.rejected == 1
    [m] = rows(db_session)
    assert m.reject_reason and m.kind == InboxKind.other
    assert dovecot.uids("INBOX") == []


def test_too_large_mail_is_stored_as_not_readable(db_session, dovecot, world, monkeypatch):
    monkeypatch.setattr(store, "MAX_MESSAGE_BYTES", 2_000)
    dovecot.append("INBOX", mail(text="x" * 5_000))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert "zu groß" in m.reject_reason and m.subject.startswith("AW:") and m.size > 5_000


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    from datetime import datetime, timezone
    from core.bootstrap import bootstrap
    from core.adapters.imap import ImapConfig
    from core.inbox import store
    from core.platform.db import make_engine, unit_of_work
    bootstrap()
    engine = make_engine(os.environ["KILL_DB_URL"])
    cfg = ImapConfig(host="127.0.0.1", port=int(os.environ["KILL_IMAP_PORT"]), security="plain",
                     user=os.environ["KILL_IMAP_USER"], password=os.environ["KILL_IMAP_PASSWORD"])
    def die(uids):
        os._exit(137)  # killed right after the commit, before the move
    store.fetch_and_store(lambda: unit_of_work(engine), cfg, clock=lambda: datetime.now(timezone.utc),
                          batch_size=4, after_commit=die)
""")


def test_job_killed_between_commit_and_move_neither_loses_nor_duplicates(fresh_db_url, dovecot):
    dovecot.append_many("INBOX", [mail(message_id=f"<k{i}@example.org>", text=f"Nachricht {i}") for i in range(10)])
    env = dict(os.environ, KILL_DB_URL=fresh_db_url, KILL_IMAP_PORT=str(dovecot.port), KILL_IMAP_USER=dovecot.user,
               KILL_IMAP_PASSWORD=dovecot.password, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT], env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 137, proc.stderr.decode()[-2000:]
    engine = make_engine(fresh_db_url)
    try:
        with unit_of_work(engine) as s:
            assert s.scalar(select(func.count(InboxMessage.id))) == 4  # the first batch is committed ...
        assert len(dovecot.uids("INBOX")) == 10  # ... but still in the folder
        report = store.fetch_and_store(lambda: unit_of_work(engine), imap(dovecot), clock=lambda: NOW, batch_size=4)
        assert (report.fetched, report.stored, report.duplicates, report.moved) == (10, 6, 4, 10)
        with unit_of_work(engine) as s:
            ids = list(s.scalars(select(InboxMessage.message_id)))
        assert sorted(ids) == sorted(f"<k{i}@example.org>" for i in range(10))
        assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Verarbeitet")) == 10
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- what coordinators do


def test_assign_dismiss_and_record_are_audited(db_session, dovecot, world):
    dovecot.append("INBOX", mail(sender="fremd@example.net", subject="Zu Ihrer Anfrage"),
                   mail(sender="news@example.net", subject="Newsletter", message_id="<n1@example.net>"))
    run(db_session, dovecot)
    reply, newsletter = rows(db_session)
    inquiry = world["inquiry"]
    services.assign(db_session, COORD, reply.id, inquiry_id=inquiry.id, now=NOW)
    assert (reply.state, reply.match, reply.therapist_id) == (InboxState.assigned, InboxMatch.manual, world["therapist"].id)
    services.dismiss(db_session, COORD, newsletter.id, now=NOW, note="Werbung")
    assert newsletter.state == InboxState.dismissed

    detail = views.message_detail(db_session, COORD, reply.id, today=NOW.date(), now=NOW)
    assert detail.can_record and detail.body_text == "Leider keine Kapazität."
    assert detail.suggested == {m.search_id: Outcome.rejected_capacity for m in detail.answer_members}
    report = services.record_from_reply(db_session, COORD, reply.id, detail.suggested, today=NOW.date(), now=NOW)
    assert report.response_type is not None
    db_session.refresh(inquiry)
    assert inquiry.status == InquiryStatus.answered and reply.state == InboxState.recorded
    actions = [a for a in db_session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert {"inbox.assign", "inbox.dismiss", "inbox.record", "inquiry.answer"} <= set(actions)
    with pytest.raises(services.InboxError, match="schon erfasst"):
        services.record_from_reply(db_session, COORD, reply.id, detail.suggested, today=NOW.date(), now=NOW)


def test_viewer_sees_no_bodies_and_cannot_act(db_session, dovecot, world):
    dovecot.append("INBOX", mail(in_reply_to=world["sent"].message_id, text="Patientin Anna hat Panikattacken ..."))
    run(db_session, dovecot)
    [m] = rows(db_session)
    d = views.message_detail(db_session, VIEWER, m.id, today=NOW.date(), now=NOW)
    assert (d.can_see_body, d.body_text, d.body_html, d.from_address, d.attachments) == (False, "", "", "", [])
    assert not d.can_edit and not d.can_record
    listed, _ = views.list_messages(db_session, VIEWER, "all")
    assert "@" not in listed[0].sender
    with pytest.raises(Exception, match="Rolle"):
        services.dismiss(db_session, VIEWER, m.id, now=NOW)


def test_plain_bounce_without_original_id_fails_the_last_mail_to_that_address(db_session, dovecot, world):
    from tests.support.mail_samples import EXIM

    dovecot.append("INBOX", EXIM.replace(b"praxis@old-domain.example", b"praxis@example.org")
                   .replace(b"Message-ID: <a12.9@vermittlung.example.de>\n", b""))
    run(db_session, dovecot)
    [m] = rows(db_session)
    assert (m.kind, m.outbox_email_id, m.inquiry_id) == (InboxKind.bounce, world["sent"].id, world["inquiry"].id)
    db_session.refresh(world["sent"])
    assert world["sent"].state == EmailState.failed and "550" in world["sent"].last_error
    assert services.therapist_address_invalid(db_session, world["therapist"].id)


def test_inbox_job_is_off_without_settings_and_fetches_with_them(db_session, dovecot, world):
    from jobs import inbox_jobs
    from jobs.registry import JOBS
    from jobs.spec import JobContext

    assert "inbox" in {j.id for j in JOBS}
    off = JobContext(now=NOW, runner_id="t", settings=settings_for(), session_scope=scope_for(db_session))
    assert "nicht eingerichtet" in inbox_jobs.fetch(off)
    dovecot.append("INBOX", mail(in_reply_to=world["sent"].message_id))
    on = JobContext(now=NOW, runner_id="t", session_scope=scope_for(db_session), settings=settings_for(
        IMAP_HOST="127.0.0.1", IMAP_PORT=dovecot.port, IMAP_SECURITY="plain", IMAP_USER=dovecot.user,
        IMAP_PASSWORD=dovecot.password))
    assert inbox_jobs.fetch(on) == "1 Nachricht abgeholt, 1 neu gespeichert, 1 zugeordnet."  # plural helper (issue 12 point 22)
    assert inbox_jobs.fetch(on) == "Keine neuen Nachrichten."
