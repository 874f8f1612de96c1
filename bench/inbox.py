"""Inbox benchmark: 2,000 received mails fetched from a local IMAP server and threaded.

Run from the repository root:  python bench/inbox.py
- inbox_2000_s: wall time of `core.inbox.store.fetch_and_store` for 2,000 mails waiting in
  the folder of a private Dovecot on 127.0.0.1 (tests/support/dovecot.py; Debian's
  dovecot-imapd): fetch in batches, parse, de-duplicate, thread against 1,500 sent inquiries
  (In-Reply-To, subject reference, sender), apply bounces and auto-replies, commit per batch,
  move to the processed folder. On PostgreSQL (own bench_ database). Target <= 30 s.
- Mix: 900 replies with In-Reply-To, 300 with only "A123" in the subject, 300 from a
  therapist's address, 200 from unknown senders, 200 DSN bounces, 100 out-of-office replies.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._common import bench_database, fail, print_table, stopwatch, write_results  # noqa: E402
from core.adapters.imap import ImapConfig  # noqa: E402
from core.bootstrap import bootstrap  # noqa: E402
from core.inbox import store  # noqa: E402
from core.platform.db import get_engine, unit_of_work  # noqa: E402
from core.platform.models import InboxMessage, Inquiry, InquiryPatient, OutboxEmail, Patient, Search, Therapist  # noqa: E402
from core.platform.vocab import EmailState, InboxKind, InboxMatch, InquiryChannel, InquiryStatus, SearchStatus  # noqa: E402
from tests.support.dovecot import DovecotServer, DovecotUnavailable  # noqa: E402

MESSAGES = 2000
INQUIRIES = 1500
TARGET_S = 30.0
NOW = datetime.now(timezone.utc)

DSN_TEMPLATE = """From: Mail Delivery System <MAILER-DAEMON@mx.example.de>
To: vermittlung@example.de
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-{n}@mx.example.de>
Date: {date}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="RPT{n}"

--RPT{n}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.de.
<{rcpt}>: host mail.example.org said: 550 5.1.1 User unknown

--RPT{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.de

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

--RPT{n}
Content-Type: text/rfc822-headers

Message-ID: {original}
Subject: Anfrage

--RPT{n}--
"""


def seed(url: str) -> list[tuple[int, str, str]]:
    """Therapists with one sent inquiry each and its outbox mail: (inquiry id, address, Message-ID)."""
    engine = get_engine(url)
    out = []
    with unit_of_work(engine) as s:
        therapists = [Therapist(first_name="T", last_name=f"Praxis{i}", email=f"praxis{i}@example.org", plz="10115",
                                city="Berlin") for i in range(INQUIRIES)]
        patients = [Patient(first_name="P", last_name=f"Patient{i}", plz="10115", birth_date=date(1990, 1, 1))
                    for i in range(INQUIRIES)]
        s.add_all(therapists + patients)
        s.flush()
        searches = [Search(patient_id=p.id, started_on=date(2026, 9, 1), status=SearchStatus.active) for p in patients]
        inquiries = [Inquiry(therapist_id=t.id, channel=InquiryChannel.email, status=InquiryStatus.sent, size=1,
                             sent_at=NOW - timedelta(days=3)) for t in therapists]
        s.add_all(searches + inquiries)
        s.flush()
        s.add_all([InquiryPatient(inquiry_id=q.id, search_id=se.id, position=1) for q, se in zip(inquiries, searches)])
        mails = [OutboxEmail(therapist_id=t.id, inquiry_id=q.id, to_address=t.email, to_name="Praxis",
                             subject=f"Anfrage – Ref. A{q.id}", body_html="x", body_text="x", template="therapist_inquiry",
                             state=EmailState.sent, message_id=f"<a{q.id}.bench@vermittlung.example.de>",
                             sent_at=NOW - timedelta(days=3)) for t, q in zip(therapists, inquiries)]
        s.add_all(mails)
        s.flush()
        out = [(q.id, t.email, m.message_id) for t, q, m in zip(therapists, inquiries, mails)]
    return out


def reply(n: int, *, sender: str, subject: str, in_reply_to: str = "", auto: bool = False, text: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "vermittlung@example.de"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(NOW - timedelta(minutes=n))
    msg["Message-ID"] = f"<bench-{n}@example.org>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    if auto:
        msg["Auto-Submitted"] = "auto-replied"
    body = text or (f"Guten Tag,\n\nleider habe ich keine freien Plätze (Nachricht {n}).\n\nMit freundlichen Grüßen\n\n"
                    "Am 23.11.2026 um 09:30 schrieb Vermittlung:\n> Sehr geehrte ...\n> " + "Text " * 80)
    msg.set_content(body)
    if n % 3 == 0:
        msg.add_alternative(f"<p>leider <b>keine</b> Plätze</p><img src='https://track.example/{n}.gif'>", subtype="html")
    return bytes(msg)


def corpus(seeded: list[tuple[int, str, str]]) -> list[bytes]:
    out: list[bytes] = []
    n = 0
    for i in range(900):  # In-Reply-To
        q, addr, mid = seeded[i]
        out.append(reply(n := n + 1, sender=addr, subject="AW: Anfrage", in_reply_to=mid))
    for i in range(900, 1200):  # reference in the subject, other address
        q, addr, mid = seeded[i]
        out.append(reply(n := n + 1, sender=f"sekretariat{i}@andere.example", subject=f"Ihre Anfrage A{q}"))
    for i in range(1200, 1500):  # the therapist's address, one open inquiry
        q, addr, mid = seeded[i]
        out.append(reply(n := n + 1, sender=addr, subject="Ihre Nachricht"))
    for i in range(200):  # unknown
        out.append(reply(n := n + 1, sender=f"fremd{i}@example.net", subject="Fortbildung"))
    for i in range(200):  # bounces of mails to the first 200 therapists
        q, addr, mid = seeded[i]
        out.append(DSN_TEMPLATE.format(n=n + i, rcpt=addr, original=mid, date=format_datetime(NOW)).replace("\n", "\r\n").encode())
    n += 200
    for i in range(200, 300):  # out of office
        q, addr, mid = seeded[i]
        out.append(reply(n := n + 1, sender=addr, subject="Abwesenheitsnotiz", in_reply_to=mid, auto=True,
                         text="Ich bin bis zum 14.12.2026 nicht in der Praxis."))
    assert len(out) == MESSAGES, len(out)
    return out


def main() -> None:
    bootstrap()
    try:
        server = DovecotServer.start(tls=False)
    except DovecotUnavailable as exc:
        fail(str(exc))
    try:
        with bench_database() as url:
            seeded = seed(url)
            with stopwatch() as appending:
                server.append_many("INBOX", corpus(seeded))
            config = ImapConfig(host="127.0.0.1", port=server.port, security="plain", user=server.user,
                                password=server.password, timeout_s=30)
            engine = get_engine(url)
            with stopwatch() as run:
                report = store.fetch_and_store(lambda: unit_of_work(engine), config, clock=lambda: datetime.now(timezone.utc))
            with unit_of_work(engine) as s:
                stored = s.scalar(select(func.count(InboxMessage.id)))
                by_match = dict(s.execute(select(InboxMessage.match, func.count()).group_by(InboxMessage.match)).all())
                bounces = s.scalar(select(func.count(InboxMessage.id)).where(InboxMessage.kind == InboxKind.bounce))
                failed = s.scalar(select(func.count(OutboxEmail.id)).where(OutboxEmail.state == EmailState.failed))
            left = len(server.uids("INBOX"))
    finally:
        server.stop()
    if stored != MESSAGES or report.moved != MESSAGES or left != 0 or bounces != 200 or failed != 200:
        fail(f"{stored} gespeichert, {report.moved} verschoben, {left} übrig, {bounces} Rückläufer, {failed} fehlgeschlagen; "
             f"{report.summary()}")
    unassigned = by_match.get(InboxMatch.none, 0)
    figures = {
        "inbox_2000_s": run["s"],
        "inbox_per_message_ms": run["s"] * 1000 / MESSAGES,
        "append_2000_s": appending["s"],
        "stored": stored,
        "assigned": report.assigned,
        "unassigned": unassigned,
        "bounces": bounces,
    }
    print_table("Posteingang: 2.000 Nachrichten von einem lokalen IMAP-Server (Dovecot, PostgreSQL)", [
        ("inbox_2000_s", figures["inbox_2000_s"]),
        ("inbox_per_message_ms", figures["inbox_per_message_ms"]),
        ("append_2000_s (Vorbereitung)", figures["append_2000_s"]),
        ("stored", stored),
        ("assigned", report.assigned),
        ("unassigned", unassigned),
        ("bounces", bounces),
        ("target inbox_2000_s", TARGET_S),
    ])
    write_results("inbox", figures)
    if figures["inbox_2000_s"] > TARGET_S:
        fail(f"inbox_2000_s {figures['inbox_2000_s']:.2f} s > {TARGET_S} s")


if __name__ == "__main__":
    main()
