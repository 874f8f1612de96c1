"""Outbox benchmark: 1,000 mails rendered into the outbox, then delivered to a local SMTP server.

Run from the repository root:  python bench/outbox.py
- render_1000_s: rendering and queueing 1,000 approved mails (500 inquiry mails to 500
  therapists with 3 patients each, 500 patient mails with a PDF form on every fifth) in one
  unit of work through the batch services (queue_inquiry_emails, queue_patient_emails: a fixed
  number of queries for the whole batch). Target <= 2 s.
- deliver_1000_s: wall time of `core.mail.delivery.deliver_due` for those 1,000 mails to an
  aiosmtpd server on 127.0.0.1 (its own process), on PostgreSQL (own bench_ database): claims
  of 50 with FOR UPDATE SKIP LOCKED, each message written once to its wire bytes, one SMTP
  connection for the run, the bookkeeping of every 5 delivered mails in one transaction with
  a fixed number of statements. Target <= 5 s.
- smtp_floor_1000_s: the same 1,000 prebuilt messages sent over one connection with nothing
  else (no database, no building): the SMTP server's and smtplib's own share of deliver_1000_s.
Both targets are checked; the run exits non-zero when one is missed.
"""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._common import bench_database, print_table, stopwatch, write_results  # noqa: E402
from core.mail import templates as mt  # noqa: E402
from core.mail import delivery  # noqa: E402
from core.mail import documents  # noqa: E402
from core.mail import outbox  # noqa: E402
from core.adapters.smtp import Attachment, OutgoingMail, build_message, make_sender  # noqa: E402
from core.platform.config import load_settings  # noqa: E402
from core.platform.db import get_engine, unit_of_work  # noqa: E402
from core.platform.models import (  # noqa: E402
    Inquiry, InquiryPatient, OutboxEmail, Patient, Search, Therapist, TherapistDocument,
)
from core.platform.permissions import Actor  # noqa: E402
from core.platform.vocab import EmailState, Gender, InquiryChannel, Role, Salutation, SearchStatus  # noqa: E402

MAILS = 1000
TARGET_DELIVER_S = 5.0
TARGET_RENDER_S = 2.0
COORD = Actor(user_id=None, username="bench", role=Role.coordinator)
PDF = b"%PDF-1.4\n" + b"0" * 200_000 + b"\n%%EOF\n"  # a 200 KB form


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The local SMTP server runs in its own process, as a real relay would (in-process it would
# compete with the sender for the GIL). It counts accepted messages and prints the count
# when it is stopped.
SINK_SCRIPT = """
import signal, sys, threading
from aiosmtpd.controller import Controller
class Sink:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.count += 1
        return "250 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait()
c.stop()
print(Sink.count, flush=True)
"""


def start_sink(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SINK_SCRIPT, str(port)], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit("FEHLER: SMTP-Testserver startet nicht")
    return proc


def stop_sink(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return int(out.strip().splitlines()[-1])


def seed(url: str, settings, now: datetime) -> None:
    half = MAILS // 2
    with unit_of_work(get_engine(url)) as s:
        therapists = [
            Therapist(salutation=Salutation.frau, title="Dr.", first_name="Eva", last_name=f"Weber{i}", email=f"t{i}@praxis.example.org",
                      plz="10115", city="Berlin", phone_hours="Mo 09:00-12:00; Mi 14:00-15:00")
            for i in range(half)
        ]
        s.add_all(therapists)
        patients = [
            Patient(salutation=Salutation.frau, gender=Gender.female, first_name=f"P{i}", last_name="Muster",
                    birth_date=date(1985, 1, 1) + timedelta(days=i), email=f"p{i}@example.org", insurer="AOK",
                    symptoms=["Schlafstörungen"], availability="Mo 09:00-12:00; Do 16:00-18:00")
            for i in range(half + 3 * half)
        ]
        s.add_all(patients)
        s.flush()
        searches = [Search(patient_id=p.id, status=SearchStatus.active, started_on=date(2026, 10, 1)) for p in patients]
        s.add_all(searches)
        s.flush()
        for i, t in enumerate(therapists):
            inq = Inquiry(therapist_id=t.id, channel=InquiryChannel.email, size=3)
            s.add(inq)
            s.flush()
            for pos in range(3):
                s.add(InquiryPatient(inquiry_id=inq.id, search_id=searches[half + 3 * i + pos].id, position=pos + 1))
        s.flush()
        for i in range(0, half, 5):
            documents.add_therapist_document(s, COORD, therapists[i].id, f"Anmeldebogen Praxis Müller {i}.pdf", PDF, now)


def queue_all(url: str, settings, now: datetime) -> None:
    """The 1,000 mails rendered and queued in one unit of work, through the batch services
    (queue_inquiry_emails, queue_patient_emails): what the planner's and the page's bulk
    actions call. One mail at a time is `queue_one_by_one`."""
    half = MAILS // 2
    with unit_of_work(get_engine(url)) as s:
        inquiry_ids = s.scalars(select(Inquiry.id).order_by(Inquiry.id)).all()
        therapist_ids = s.scalars(select(Therapist.id).order_by(Therapist.id)).all()
        patient_ids = s.scalars(select(Patient.id).order_by(Patient.id)).all()[:half]
        outbox.queue_inquiry_emails(s, COORD, inquiry_ids, now, approve=True, settings=settings)
        outbox.queue_patient_emails(s, COORD, [
            outbox.PatientMail(pid, mt.PATIENT_PLACE_FOUND_EMAIL, therapist_id=therapist_ids[i]) if i % 5 == 0
            else outbox.PatientMail(pid, mt.PATIENT_STATUS_UPDATE)
            for i, pid in enumerate(patient_ids)
        ], now, approve=True, settings=settings)


def prebuilt_messages(url: str, settings, now: datetime) -> list:
    """The 1,000 delivered mails as wire messages again (built outside the timing)."""
    with unit_of_work(get_engine(url)) as s:
        rows = s.scalars(select(OutboxEmail).where(OutboxEmail.state == EmailState.sent).order_by(OutboxEmail.id)).all()
        docs = {d.id: d for d in s.scalars(select(TherapistDocument))}
        return [
            build_message(OutgoingMail(
                settings.EMAIL_SENDER, settings.EMAIL_SENDER_NAME, r.to_address, r.to_name, r.subject, r.body_text,
                r.body_html, r.message_id, now, settings.EMAIL_SENDER,
                tuple(Attachment(docs[i].filename, docs[i].content) for i in (r.attachment_document_ids or [])),
            ))
            for r in rows
        ]


def smtp_floor(port: int, messages) -> float:
    """Seconds to hand the prebuilt messages to the server over one connection, nothing else."""
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench", timeout=10)
    smtp.ehlo()
    started = time.perf_counter()
    for m in messages:
        smtp.sendmail(m.sender, list(m.recipients), m.raw)
    elapsed = time.perf_counter() - started
    smtp.quit()
    return elapsed


def main() -> None:
    port = free_port()
    sink = start_sink(port)
    received = -1
    floor_s = -1.0
    try:
        with bench_database() as url:
            settings = load_settings(
                environ={"DATABASE_URL": url, "SMTP_MODE": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
                         "SMTP_SECURITY": "plain", "SMTP_TIMEOUT_S": "10"},
                env_file=None,
            )
            now = datetime.now(timezone.utc)
            seed(url, settings, now)
            with stopwatch() as render:
                queue_all(url, settings, now)
            engine = get_engine(url)

            def scope():
                return unit_of_work(engine)

            started = time.monotonic()
            clock = lambda: now + timedelta(seconds=time.monotonic() - started)  # noqa: E731
            with stopwatch() as deliver:
                report = delivery.deliver_due(scope, make_sender(settings), clock, owner="bench", settings=settings)
            with unit_of_work(engine) as s:
                sent = s.scalar(select(func.count()).select_from(OutboxEmail).where(OutboxEmail.state == EmailState.sent))
            floor_s = smtp_floor(port, prebuilt_messages(url, settings, now))
    finally:
        received = stop_sink(sink)
    if sent != MAILS or received != 2 * MAILS or report.sent != MAILS:
        print(f"FEHLER: {sent} gesendet laut Datenbank, {received - MAILS} am Server, Bericht {report.summary()}",
              file=sys.stderr)
        raise SystemExit(1)
    figures = {
        "deliver_1000_s": deliver["s"],
        "deliver_per_mail_ms": deliver["s"] * 1000 / MAILS,
        "render_1000_s": render["s"],
        "render_per_mail_ms": render["s"] * 1000 / MAILS,
        "smtp_floor_1000_s": floor_s,
        "delivered": MAILS,
    }
    print_table("Postausgang: 1.000 E-Mails an einen lokalen SMTP-Server (PostgreSQL)", [
        ("render_1000_s", figures["render_1000_s"]),
        ("render_per_mail_ms", figures["render_per_mail_ms"]),
        ("deliver_1000_s", figures["deliver_1000_s"]),
        ("deliver_per_mail_ms", figures["deliver_per_mail_ms"]),
        ("smtp_floor_1000_s", figures["smtp_floor_1000_s"]),
        ("delivered", MAILS),
        ("target render_1000_s", TARGET_RENDER_S),
        ("target deliver_1000_s", TARGET_DELIVER_S),
    ])
    write_results("outbox", figures)
    missed = [f"{name} {figures[name]:.2f} s > {target} s"
              for name, target in (("render_1000_s", TARGET_RENDER_S), ("deliver_1000_s", TARGET_DELIVER_S))
              if figures[name] > target]
    if missed:
        print("FEHLER: " + "; ".join(missed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
