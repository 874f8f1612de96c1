"""Delivery against a real SMTP server on 127.0.0.1 (aiosmtpd started by the test, explicit
free port): MIME structure and encodings, escaping, scripted 4xx/5xx faults, STARTTLS/SSL
with login, one connection per batch."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.mail import templates as mt
from core.mail import delivery
from core.mail import documents
from core.mail import outbox
from core.mail import views as outbox_views
from core.adapters.smtp import SendError, SmtpSender, make_sender
from core.platform.models import OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, InquiryStatus, Role
from tests.support.outbox_fixtures import (
    SinkHandler,
    SmtpSink,
    free_port,
    make_inquiry,
    make_patient,
    make_therapist,
    password_authenticator,
    settings_for,
)
from tests.support.scopes import scope_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EVIL = "<script>alert(1)</script>"


def smtp_settings(port: int, **extra):
    return settings_for(SMTP_MODE="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="plain",
                        SMTP_TIMEOUT_S=5, EMAIL_SENDER="vermittlung@example.de", EMAIL_SENDER_NAME="Vermittlung Süd", **extra)


class CountingHandler(SinkHandler):
    ehlos: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        return responses


def test_real_smtp_round_trip(db_session, now):
    handler = CountingHandler()
    with SmtpSink(handler) as sink:
        settings = smtp_settings(sink.port)
        therapist = make_therapist(db_session, phone="030 1")
        inq = make_inquiry(db_session, therapist, [make_patient(db_session), make_patient(db_session, first_name="Zweite")])
        outbox.queue_inquiry_email(db_session, COORD, inq.id, now, approve=True, settings=settings)
        patient = make_patient(db_session, first_name=EVIL, last_name="Ölmüller", email="oel@example.org")
        other = make_therapist(db_session, phone="030 2", email="zweite@praxis.example.org")
        documents.add_therapist_document(db_session, COORD, other.id, "Anmeldebogen Müller.pdf", PDF, now)
        documents.add_therapist_document(db_session, COORD, other.id, "Schweigepflichtentbindung – Ärztin.pdf", PDF, now)
        outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_PLACE_FOUND_PHONE, now,
                                   therapist_id=other.id, approve=True, settings=settings)

        report = delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: now, owner="t", settings=settings)
        assert report.sent == 2
        assert handler.ehlos == 1, "one connection for the whole batch"
        messages = {str(m["To"]): m for m in sink.handler.parsed()}

    inquiry_msg = next(m for to, m in messages.items() if "praxis@example.org" in to)
    assert str(inquiry_msg["Subject"]) == f"Anfrage Psychotherapieplätze – Ref. A{inq.id}"  # UTF-8 subject with umlaut
    assert inquiry_msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in inquiry_msg.iter_parts()] == ["text/plain", "text/html"]
    assert str(inquiry_msg["From"]) == "Vermittlung Süd <vermittlung@example.de>"

    success = next(m for to, m in messages.items() if "oel@example.org" in to)
    assert success.get_content_type() == "multipart/mixed"
    assert success.get_payload()[0].get_content_type() == "multipart/alternative"
    assert [a.get_filename() for a in success.iter_attachments()] == [
        "Anmeldebogen Müller.pdf", "Schweigepflichtentbindung – Ärztin.pdf"]
    assert all(a.get_content_type() == "application/pdf" and a.get_content() == PDF for a in success.iter_attachments())
    html = success.get_body(("html",)).get_content()
    text = success.get_body(("plain",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert EVIL in text  # the text part is plain text, nothing to escape
    assert "Ölmüller" in str(success["To"]) or "oel@example.org" in str(success["To"])

    stored = {e.to_address: e for e in db_session.scalars(select(OutboxEmail))}
    for address, msg in (("praxis@example.org", inquiry_msg), ("oel@example.org", success)):
        assert stored[address].message_id == str(msg["Message-ID"]) and stored[address].state == EmailState.sent
    db_session.refresh(inq)
    assert inq.status == InquiryStatus.sent and inq.sent_at == now


def test_451_twice_then_accepted_is_delivered_once_on_the_third_attempt(db_session, now):
    handler = SinkHandler(data_replies=["451 4.7.1 Greylisted, please try again", "451 4.7.1 Greylisted, please try again", None])
    with SmtpSink(handler) as sink:
        settings = smtp_settings(sink.port, EMAIL_MAX_ATTEMPTS=5)
        patient = make_patient(db_session)
        email = outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_STATUS_UPDATE, now, approve=True,
                                           settings=settings)
        clock = [now]
        deliver = lambda: delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: clock[0], owner="t",  # noqa: E731
                                             settings=settings)
        assert deliver().retrying == 1
        db_session.refresh(email)
        assert (email.state, email.attempts, email.last_error) == (EmailState.queued, 1, "451 4.7.1 Greylisted, please try again")
        clock[0] = email.next_attempt_at
        assert deliver().retrying == 1
        db_session.refresh(email)
        assert email.attempts == 2 and email.next_attempt_at == clock[0] + timedelta(minutes=10)
        clock[0] = email.next_attempt_at
        assert deliver().sent == 1
        db_session.refresh(email)
        assert (email.state, email.attempts, email.last_error) == (EmailState.sent, 3, None)
        assert handler.attempts == 3 and len(handler.messages) == 1
        assert deliver().sent == 0  # nothing more


def test_550_fails_at_once_with_the_servers_text(db_session, now):
    handler = SinkHandler(rcpt_reply="550 5.1.1 <praxis@example.org>: Recipient address rejected: User unknown")
    with SmtpSink(handler) as sink:
        settings = smtp_settings(sink.port)
        inq = make_inquiry(db_session, make_therapist(db_session), [make_patient(db_session)])
        email = outbox.queue_inquiry_email(db_session, COORD, inq.id, now, approve=True, settings=settings)
        report = delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: now, owner="t", settings=settings)
    assert report.failed == 1
    db_session.refresh(email)
    assert email.state == EmailState.failed and email.attempts == 1
    assert email.last_error == "550 5.1.1 <praxis@example.org>: Recipient address rejected: User unknown"
    rows, _ = outbox_views.list_emails(db_session, COORD, "failed", now=now, settings=settings)
    assert rows[0].last_error == email.last_error  # what the outbox page shows
    db_session.refresh(inq)
    assert inq.needs_attention


def test_connection_refused_is_temporary(db_session, now):
    settings = smtp_settings(free_port())  # nobody listens there
    patient = make_patient(db_session)
    email = outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_STATUS_UPDATE, now, approve=True, settings=settings)
    report = delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: now, owner="t", settings=settings)
    assert report.retrying == 1
    db_session.refresh(email)
    assert email.state == EmailState.queued and "nicht erreichbar" in email.last_error


# --------------------------------------------------------------------------- TLS and login


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl not available to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def _one_mail(sender, sink):
    from datetime import datetime, timezone

    from core.adapters.smtp import OutgoingMail, build_message, new_message_id

    mail = OutgoingMail("a@example.de", "Ä", "b@example.de", "Ö", "Grüße", "Text", "<p>Text</p>",
                        new_message_id("a@example.de"), datetime(2026, 11, 23, tzinfo=timezone.utc))
    with sender.connect() as transport:
        transport.send(build_message(mail))
    return sink.handler.parsed()


def test_starttls_with_login(certificate):
    server_ctx, client_ctx = certificate
    handler = SinkHandler()
    with SmtpSink(handler, tls_context=server_ctx, require_starttls=True, auth_required=True,
                  authenticator=password_authenticator("relay-user", "geheim-123")) as sink:
        sender = SmtpSender("127.0.0.1", sink.port, security="starttls", user="relay-user", password="geheim-123",
                            timeout_s=5, ssl_context=client_ctx)
        assert [str(m["Subject"]) for m in _one_mail(sender, sink)] == ["Grüße"]
        bad = SmtpSender("127.0.0.1", sink.port, security="starttls", user="relay-user", password="falsch",
                         timeout_s=5, ssl_context=client_ctx)
        with pytest.raises(SendError) as info:
            _one_mail(bad, sink)
        assert info.value.temporary and info.value.connection_lost and "535" in info.value.text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_ssl_with_login(certificate):
    server_ctx, client_ctx = certificate
    handler = SinkHandler()
    # aiosmtpd does not count implicit TLS as TLS for AUTH, hence auth_require_tls=False
    with SmtpSink(handler, ssl_context=server_ctx, auth_required=True, auth_require_tls=False,
                  authenticator=password_authenticator("relay-user", "geheim-123")) as sink:
        sender = SmtpSender("127.0.0.1", sink.port, security="ssl", user="relay-user", password="geheim-123",
                            timeout_s=5, ssl_context=client_ctx)
        assert len(_one_mail(sender, sink)) == 1


def test_folder_sink_writes_eml_files_the_page_can_list(tmp_path, db_session, now):
    settings = settings_for(SMTP_MODE="folder", MAIL_FOLDER=str(tmp_path / "mail"))
    patient = make_patient(db_session, last_name=EVIL)
    outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_SEARCH_STARTED, now, approve=True, settings=settings)
    report = delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: now, owner="t", settings=settings)
    assert report.sent == 1
    files = list((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    listed = outbox_views.local_mailbox(COORD, settings=settings)
    assert listed[0].subject == "Ihre Therapieplatzsuche hat begonnen" and "&lt;script&gt;" in listed[0].html
