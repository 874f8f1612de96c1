"""Storing received mail: each once, threaded, with its consequences (bounce, out of office).

`fetch_and_store` is what the inbox job runs: batch by batch it fetches raw mail from the
mailbox, stores it in one unit of work, and moves the batch to the processed folder only
after that commit. A crash between the commit and the move leaves the mail in the folder:
the next run fetches it again, finds it stored (same SHA-256, or same Message-ID and
sender) and only moves it. So nothing is lost and nothing is stored twice.

`store_message(session, raw, ...)` is one mail: parse (core.inbox.parse, never raises),
de-duplicate, match (core.inbox.threads), write the InboxMessage, and for a permanent bounce
fail the original mail, flag the address invalid and publish EmailBounced; for an
out-of-office reply with a return date publish OutOfOffice.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Callable, Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.platform.formatting import format_number, plural
from core.adapters.imap import FetchedMessage, ImapConfig, Mailbox, open_mailbox
from core.inbox import threads
from core.inbox.message import MAX_MESSAGE_BYTES, ParsedMessage, RejectedMessage
from core.inbox.parse import parse_message
from core.platform import audit, events
from core.platform.config import Settings
from core.platform.models import InboxMessage, Inquiry, InvalidEmailAddress, OutboxEmail
from core.platform.permissions import SYSTEM
from core.platform.vocab import EmailState, InboxKind, InboxMatch, InboxState
from core.platform.addresses import email_key, normalise_email

log = logging.getLogger(__name__)

SessionScope = Callable[[], AbstractContextManager[Session]]
BATCH_SIZE = 100


def imap_config(settings: Settings) -> Optional[ImapConfig]:
    """The mailbox from the settings; None while the inbox is not configured."""
    if not settings.inbox_enabled:
        return None
    return ImapConfig(
        host=settings.IMAP_HOST, port=settings.IMAP_PORT, security=settings.IMAP_SECURITY, user=settings.IMAP_USER,
        password=settings.IMAP_PASSWORD, folder=settings.IMAP_FOLDER, processed_folder=settings.IMAP_PROCESSED_FOLDER,
        timeout_s=settings.IMAP_TIMEOUT_S,
    )


@dataclass
class StoreResult:
    inbox_id: Optional[int]
    created: bool
    kind: str = ""
    assigned: bool = False
    rejected: bool = False


@dataclass
class IngestReport:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    assigned: int = 0
    bounces: int = 0
    auto_replies: int = 0
    moved: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.fetched:
            return "Keine neuen Nachrichten."
        parts = [f"{plural(self.fetched, 'Nachricht', 'Nachrichten')} abgeholt, {format_number(self.stored)} neu gespeichert"]
        if self.assigned:
            parts.append(f"{self.assigned} zugeordnet")
        if self.bounces:
            parts.append(f"{self.bounces} Rückläufer")
        if self.auto_replies:
            parts.append(plural(self.auto_replies, "Abwesenheitsnotiz", "Abwesenheitsnotizen"))
        if self.duplicates:
            parts.append(f"{self.duplicates} schon bekannt")
        if self.rejected:
            parts.append(f"{self.rejected} nicht lesbar")
        return ", ".join(parts) + "."


# --------------------------------------------------------------------------- one message


def _parse(raw: bytes, truncated_size: Optional[int], today: date):
    result = parse_message(raw, today=today)
    if truncated_size is None:
        return result
    return RejectedMessage(
        result.sha256, truncated_size,
        f"Nachricht zu groß ({truncated_size / 1_048_576:.1f} MB, höchstens {MAX_MESSAGE_BYTES // 1_048_576} MB); "
        "bitte im Mailprogramm ansehen.",
        message_id=result.message_id, from_address=result.from_address, subject=result.subject,
    )


def _known(session: Session, results) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Stored already: {sha256: id} and {(Message-ID, sender): id} among these results."""
    hashes = list({r.sha256 for r in results})
    ids = list({r.message_id for r in results if r.message_id})
    by_hash: dict[str, int] = {}
    by_id: dict[tuple[str, str], int] = {}
    for i in range(0, len(hashes), 500):
        by_hash.update(dict(session.execute(
            select(InboxMessage.sha256, InboxMessage.id).where(InboxMessage.sha256.in_(hashes[i:i + 500]))).all()))
    for i in range(0, len(ids), 500):
        for mid, sender, row_id in session.execute(
            select(InboxMessage.message_id, InboxMessage.from_address, InboxMessage.id)
            .where(InboxMessage.message_id.in_(ids[i:i + 500]))
        ):
            by_id.setdefault((mid, sender), row_id)
    return by_hash, by_id


def _rejected_row(result: RejectedMessage, *, now: datetime) -> InboxMessage:
    return InboxMessage(
        sha256=result.sha256, message_id=(result.message_id or None), received_at=now,
        from_address=result.from_address[:255], subject=result.subject, kind=InboxKind.other, state=InboxState.new,
        match=InboxMatch.none, body_text="", quoted_text="", body_html="", attachments=[], warnings=[], thread_ids=[],
        reject_reason=result.reason, size=result.size,
    )


def _match_address(m: ParsedMessage) -> str:
    """Whose mail this is about: for a bounce the address that failed, else the sender."""
    if m.bounce is not None and m.bounce.recipient:
        return m.bounce.recipient
    return m.from_address


def _parsed_row(m: ParsedMessage, match: threads.Match, *, now: datetime) -> InboxMessage:
    row = InboxMessage(
        sha256=m.sha256, message_id=m.message_id or None, received_at=now, sent_at=m.date,
        from_address=m.from_address[:255], from_name=m.from_name[:255], subject=m.subject,
        kind=InboxKind(m.kind), state=InboxState.new, match=match.method,
        body_text=m.body, quoted_text=m.quoted, body_html=m.html,
        attachments=[{"name": a.name, "type": a.content_type, "size": a.size} for a in m.attachments],
        warnings=list(m.warnings), thread_ids=list(m.thread_ids), size=m.size,
        inquiry_id=match.inquiry_id, therapist_id=match.therapist_id, patient_id=match.patient_id,
        outbox_email_id=match.outbox_email_id,
    )
    if m.bounce is not None:
        row.bounce_recipient = m.bounce.recipient[:255] or None
        row.bounce_status = m.bounce.status[:32] or None
        row.bounce_diagnostic = m.bounce.diagnostic or None
    if m.auto_reply is not None:
        row.return_date = m.auto_reply.return_date
    return row


def store_many(session: Session, mails: Sequence[tuple[bytes, Optional[int]]], *, now: datetime,
               today: Optional[date] = None) -> list[StoreResult]:
    """Store raw mails (idempotent), in order: (raw, truncated size or None) each. A handful
    of queries per batch, not per mail: de-duplication and threading are looked up at once."""
    today = today or now.date()
    results = [_parse(raw, truncated, today) for raw, truncated in mails]
    by_hash, by_id = _known(session, results)
    parsed = [r for r in results if isinstance(r, ParsedMessage)]
    lookup = threads.Lookup.load(
        session,
        thread_ids=[mid for m in parsed for mid in m.thread_ids],
        refs=[ref for m in parsed for ref in m.inquiry_refs],
        addresses=[_match_address(m) for m in parsed],
    )
    out: list[StoreResult] = []
    new_rows: list[tuple[InboxMessage, object, threads.Match]] = []
    for r in results:
        key = (r.message_id, r.from_address[:255])
        known = by_hash.get(r.sha256) or (by_id.get(key) if r.message_id else None)
        if known is not None:
            out.append(StoreResult(known, False))
            continue
        if isinstance(r, RejectedMessage):
            row, match = _rejected_row(r, now=now), threads.NO_MATCH
        else:
            match = lookup.match(thread_ids=r.thread_ids, inquiry_refs=r.inquiry_refs, from_address=_match_address(r))
            row = _parsed_row(r, match, now=now)
        session.add(row)
        by_hash[r.sha256] = -1  # a second copy in the same batch is a duplicate
        if r.message_id:
            by_id[key] = -1
        new_rows.append((row, r, match))
        out.append(StoreResult(None, True, kind=row.kind, assigned=match.assigned, rejected=isinstance(r, RejectedMessage)))
    session.flush()  # one multi-row INSERT
    rows = iter(new_rows)
    for result in out:
        if not result.created:
            continue
        row, r, match = next(rows)
        result.inbox_id = row.id
        if isinstance(r, RejectedMessage):
            continue
        if r.bounce is not None and r.bounce.permanent:
            _apply_bounce(session, row, now=now)
        elif r.auto_reply is not None and r.auto_reply.return_date and row.therapist_id is not None:
            events.publish(session, events.OutOfOffice(
                actor=SYSTEM, now=now, therapist_id=row.therapist_id, inquiry_id=row.inquiry_id,
                back_on=r.auto_reply.return_date,
            ))
    for result in out:  # duplicates inside the batch point at the stored copy
        if result.inbox_id == -1:
            result.inbox_id = None
    return out


def store_message(session: Session, raw: bytes, *, now: datetime, truncated_size: Optional[int] = None,
                  today: Optional[date] = None) -> StoreResult:
    """Store one raw mail (idempotent). `truncated_size`: the mail was too large and only its
    header came (the adapter's `truncated`); it is stored as not readable with its size."""
    return store_many(session, [(raw, truncated_size)], now=now, today=today)[0]


def bounce_reason(status: Optional[str], diagnostic: Optional[str]) -> str:
    text = " ".join(p for p in (status or "", diagnostic or "") if p).strip()
    return f"Rückläufer: {text}" if text else "Rückläufer: unzustellbar"


def _apply_bounce(session: Session, row: InboxMessage, *, now: datetime) -> None:
    """The original mail failed with the reported reason, the address is invalid, and the
    calls capability hears of it (EmailBounced)."""
    reason = bounce_reason(row.bounce_status, row.bounce_diagnostic)[:1000]
    mail = session.get(OutboxEmail, row.outbox_email_id) if row.outbox_email_id else None
    address = normalise_email(row.bounce_recipient or (mail.to_address if mail else "")) or ""
    if mail is None and address:
        # the report did not include the original Message-ID: the last mail sent to that address
        mail = session.scalars(
            select(OutboxEmail).where(email_key(OutboxEmail.to_address) == address, OutboxEmail.state == EmailState.sent)
            .order_by(OutboxEmail.sent_at.desc(), OutboxEmail.id.desc()).limit(1)
        ).first()
        if mail is not None:
            row.outbox_email_id = mail.id
            row.inquiry_id = row.inquiry_id or mail.inquiry_id
            row.therapist_id = row.therapist_id or mail.therapist_id
            row.patient_id = row.patient_id or mail.patient_id
    if mail is not None and mail.state in (EmailState.sent, EmailState.sending, EmailState.queued):
        before = mail.state
        mail.state = EmailState.failed
        mail.last_error = reason
        mail.lease_owner = None
        mail.lease_expires_at = None
        mail.updated_at = now
        audit.record(session, SYSTEM, "email.failed", "outbox_email", mail.id,
                     {"error": reason[:500], "previous_state": before, "inbox_message_id": row.id}, now=now)
    if address:
        flag = session.scalar(select(InvalidEmailAddress).where(InvalidEmailAddress.address == address))
        if flag is None:
            flag = InvalidEmailAddress(address=address[:255], reason=reason, status=row.bounce_status, flagged_at=now,
                                       inbox_message_id=row.id)
            session.add(flag)
        else:
            flag.reason, flag.status, flag.flagged_at, flag.inbox_message_id = reason, row.bounce_status, now, row.id
            flag.cleared_at = None
            flag.cleared_by = None
        session.flush()
        audit.record(session, SYSTEM, "email.address_invalid", "invalid_email_address", flag.id,
                     {"address": address, "reason": reason[:500], "therapist_id": row.therapist_id,
                      "patient_id": row.patient_id}, now=now)
    if row.inquiry_id is not None:
        session.execute(
            update(Inquiry).where(Inquiry.id == row.inquiry_id)
            .values(needs_attention=True,
                    attention_reason=f"E-Mail unzustellbar ({reason[:200]}) – bitte anrufen und die Adresse korrigieren.",
                    version=Inquiry.version + 1)
            .execution_options(synchronize_session=False)
        )
    audit.record(session, SYSTEM, "inbox.bounce", "inbox_message", row.id,
                 {"address": address, "outbox_email_id": row.outbox_email_id, "inquiry_id": row.inquiry_id}, now=now)
    events.publish(session, events.EmailBounced(
        actor=SYSTEM, now=now, address=address, reason=reason, outbox_email_id=row.outbox_email_id,
        therapist_id=row.therapist_id, patient_id=row.patient_id, inquiry_id=row.inquiry_id,
    ))


# --------------------------------------------------------------------------- the mailbox


def _count(report: IngestReport, results: Sequence[StoreResult]) -> None:
    for result in results:
        if not result.created:
            report.duplicates += 1
            continue
        report.stored += 1
        report.assigned += bool(result.assigned)
        report.bounces += result.kind == InboxKind.bounce
        report.auto_replies += result.kind == InboxKind.auto_reply
        report.rejected += result.rejected


def _store_batch(session: Session, batch: Sequence[FetchedMessage], *, now: datetime, report: IngestReport) -> None:
    mails = [(m.raw, m.size if m.truncated else None) for m in batch]
    try:
        with session.begin_nested():
            results = store_many(session, mails, now=now)
    except IntegrityError:
        # a second runner stored some of these a moment ago: one by one, the stored ones are skipped
        results = []
        for mail in mails:
            try:
                with session.begin_nested():
                    results.extend(store_many(session, [mail], now=now))
            except IntegrityError:
                results.append(StoreResult(None, False))
    _count(report, results)


def fetch_and_store(
    session_scope: SessionScope,
    config: ImapConfig,
    *,
    clock: Callable[[], datetime],
    batch_size: int = BATCH_SIZE,
    max_messages: Optional[int] = None,
    mailbox: Optional[Callable[[ImapConfig], AbstractContextManager[Mailbox]]] = None,
    after_commit: Optional[Callable[[list[int]], None]] = None,
) -> IngestReport:
    """Fetch what waits in the folder, store it, move it to the processed folder after the
    commit. `after_commit` is a test seam (called between commit and move). Raises
    core.adapters.imap.ImapError when the mailbox cannot be read."""
    started = time.monotonic()
    report = IngestReport()
    opener = mailbox or open_mailbox
    with opener(config) as box:
        uids = box.new_uids(limit=max_messages)
        for start in range(0, len(uids), batch_size):
            chunk = uids[start:start + batch_size]
            fetched = list(box.fetch(chunk, max_bytes=MAX_MESSAGE_BYTES))
            report.fetched += len(fetched)
            with session_scope() as session:
                _store_batch(session, fetched, now=clock(), report=report)
            done = [f.uid for f in fetched]
            if after_commit is not None:
                after_commit(done)
            box.move_to_processed(done)
            report.moved += len(done)
    report.seconds = time.monotonic() - started
    return report
