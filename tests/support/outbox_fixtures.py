"""Helpers for the outbox tests (no tests here): a real SMTP server on 127.0.0.1 (aiosmtpd)
with scripted faults, and small factories for therapists, patients, searches and inquiries."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.platform.config import load_settings
from core.platform.models import Inquiry, InquiryPatient, Patient, Search, Therapist
from core.platform.vocab import Gender, InquiryChannel, InquiryStatus, Salutation, SearchStatus

UTC = timezone.utc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(**overrides):
    env = {k: str(v) for k, v in overrides.items()}
    return load_settings(environ=env, env_file=None)


@dataclass
class SinkHandler:
    """Stores every accepted message; `data_replies` scripts answers to DATA (None = accept)."""

    data_replies: list[Optional[str]] = field(default_factory=list)
    rcpt_reply: Optional[str] = None
    delay_s: float = 0.0
    messages: list[bytes] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            self.attempts += 1
            reply = self.data_replies.pop(0) if self.data_replies else None
            if reply is not None:
                return reply
            self.messages.append(envelope.content)
        return "250 Message accepted for delivery"

    def parsed(self):
        with self.lock:
            return [message_from_bytes(raw, policy=policy.default) for raw in self.messages]

    def message_id_counts(self) -> Counter:
        return Counter(str(m["Message-ID"]) for m in self.parsed())


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with an explicit free port (port=0 breaks its readiness probe)."""

    def __init__(self, handler: Optional[SinkHandler] = None, **controller_kwargs):
        self.handler = handler or SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **controller_kwargs)

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def password_authenticator(user: str, password: str):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate


# --------------------------------------------------------------------------- domain factories


def make_therapist(session, *, email: Optional[str] = "praxis@example.org", phone: Optional[str] = None,
                   last_name: str = "Weber", knows_us: bool = False, **extra) -> Therapist:
    t = Therapist(
        salutation=extra.pop("salutation", Salutation.frau), title=extra.pop("title", "Dr."), first_name="Eva",
        last_name=last_name, email=email, phone=phone, street="Hauptstraße 1", plz="10115", city="Berlin",
        phone_hours=extra.pop("phone_hours", "Mo 09:00-12:00; Mi 14:00-15:00"), knows_us=knows_us, **extra,
    )
    session.add(t)
    session.flush()
    return t


def make_patient(session, *, first_name: str = "Erika", last_name: str = "Muster", email: Optional[str] = "erika@example.org",
                 **extra) -> Patient:
    p = Patient(
        salutation=extra.pop("salutation", Salutation.frau), gender=extra.pop("gender", Gender.female),
        first_name=first_name, last_name=last_name, birth_date=extra.pop("birth_date", date(1990, 5, 1)),
        email=email, phone=extra.pop("phone", "0170 1234567"), insurer=extra.pop("insurer", "AOK Nordost"),
        symptoms=extra.pop("symptoms", ["Schlafstörungen", "Ängste / Panikattacken"]),
        prior_therapy=extra.pop("prior_therapy", False), open_to_group=extra.pop("open_to_group", True),
        availability=extra.pop("availability", "Mo 09:00-12:00, 14:00-15:30; Fr 08:00-09:00"), **extra,
    )
    session.add(p)
    session.flush()
    return p


def make_search(session, patient: Patient, *, started_on: date = date(2026, 11, 1)) -> Search:
    s = Search(patient_id=patient.id, status=SearchStatus.active, started_on=started_on)
    session.add(s)
    session.flush()
    return s


def make_inquiry(session, therapist: Therapist, patients: list[Patient], *, channel=InquiryChannel.email,
                 status=InquiryStatus.draft, sent_at: Optional[datetime] = None) -> Inquiry:
    inquiry = Inquiry(therapist_id=therapist.id, channel=channel, status=status, size=len(patients), sent_at=sent_at)
    session.add(inquiry)
    session.flush()
    for pos, p in enumerate(patients, start=1):
        search = session.query(Search).filter_by(patient_id=p.id, status=SearchStatus.active).first() or make_search(session, p)
        session.add(InquiryPatient(inquiry_id=inquiry.id, search_id=search.id, position=pos))
    session.flush()
    session.refresh(inquiry)
    return inquiry


class MemorySender:
    """A MailSender that keeps what it is handed; `failures` are raised (or None: sent) in
    order, one per send, before it keeps messages again. Counts connections."""

    description = "Speicher"

    def __init__(self, failures=()):
        self.sent = []
        self.failures = list(failures)
        self.connections = 0

    @contextmanager
    def connect(self):
        self.connections += 1
        yield self

    def send(self, message):
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        self.sent.append(message)
