"""Delivery worker: claim due mails under a lease, send through the SMTP adapter, record outcomes."""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, Optional, Sequence
from sqlalchemy import and_, case, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from core.platform import audit
from core.mail import templates as mt
from core.adapters.smtp import (
    Attachment,
    MailSender,
    OutgoingMail,
    SendError,
    build_message,
    new_message_id,
)
from core.platform.addresses import normalise_email
from core.platform.config import Settings
from core.platform.locks import lock_rows
from core.platform.models import Inquiry, InvalidEmailAddress, OutboxEmail, Patient, Therapist, TherapistDocument
from core.platform.permissions import SYSTEM
from core.platform.vocab import EmailState, InquiryStatus
from core.mail.outbox import _cancel, _local_date, _settings, mailbox_mails, mailboxes_members
from core.mail.rules import DEFAULT_BATCH_SIZE, DEFAULT_LEASE, FailureDecision, _INQUIRY_OPEN_FOR, decide_after_failure, log, weekly_limit_wait


# =========================================================================== delivery


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    therapist_id: Optional[int]
    patient_id: Optional[int]
    inquiry_id: Optional[int]
    template: str
    to_address: str
    to_name: str
    subject: str
    body_text: str
    body_html: str
    message_id: str
    attempts: int
    lease_until: datetime
    attachments: tuple[Attachment, ...] = ()
    missing_attachments: tuple[int, ...] = ()


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0
    cancelled: int = 0
    released: int = 0
    lost_lease: int = 0
    sent_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.sent} gesendet"]
        if self.retrying:
            parts.append(f"{self.retrying} später erneut")
        if self.failed:
            parts.append(f"{self.failed} fehlgeschlagen")
        if self.deferred:
            parts.append(f"{self.deferred} warten auf die Wochengrenze")
        if self.cancelled:
            parts.append(f"{self.cancelled} nicht mehr nötig (storniert)")
        if self.released:
            parts.append(f"{self.released} zurück in die Warteschlange")
        return "E-Mails: " + ", ".join(parts)


def _due_condition(now: datetime):
    return or_(
        and_(OutboxEmail.state == EmailState.queued, OutboxEmail.next_attempt_at <= now),
        and_(OutboxEmail.state == EmailState.sending, OutboxEmail.lease_expires_at < now),
    )


def invalid_addresses(session: Session, addresses) -> dict[str, str]:
    """{normalised address: reason} for the given addresses that bounced permanently and
    were not cleared since (core.inbox flags them; correcting the e-mail gives a new address)."""
    wanted = {normalise_email(a) for a in addresses if normalise_email(a)}
    if not wanted:
        return {}
    return dict(session.execute(
        select(InvalidEmailAddress.address, InvalidEmailAddress.reason)
        .where(InvalidEmailAddress.address.in_(wanted), InvalidEmailAddress.cleared_at.is_(None))
    ).all())


def _fail_invalid_recipients(session: Session, rows: list[OutboxEmail], *, now: datetime,
                             report: DeliveryReport) -> list[OutboxEmail]:
    """Mails to an address flagged invalid are failed, not sent (no further mail until the
    address is corrected); their inquiry is flagged for a call."""
    invalid = invalid_addresses(session, {r.to_address for r in rows})
    if not invalid:
        return rows
    kept = []
    is_pg = session.get_bind().dialect.name == "postgresql"
    for row in rows:
        reason = invalid.get(normalise_email(row.to_address) or "")
        if reason is None:
            kept.append(row)
            continue
        if is_pg and row.template == mt.THERAPIST_INQUIRY and row.inquiry_id is not None and not session.scalars(
            select(Inquiry.id).where(Inquiry.id == row.inquiry_id).with_for_update(skip_locked=True, key_share=True)
        ).first():
            continue  # a coordinator is changing the inquiry (and may want this mail): next run
        text = (f"Nicht gesendet: Die Adresse {row.to_address} ist als ungültig markiert ({reason}). "
                "Bitte die E-Mail-Adresse korrigieren.")[:2000]
        row.state = EmailState.failed
        row.last_error = text
        row.lease_owner = None
        row.lease_expires_at = None
        row.updated_at = now
        audit.record(session, SYSTEM, "email.failed", "outbox_email", row.id, {"error": text[:500]}, now=now)
        if row.template == mt.THERAPIST_INQUIRY and row.inquiry_id is not None:
            session.execute(
                update(Inquiry).where(Inquiry.id == row.inquiry_id)
                .values(needs_attention=True, attention_reason=text[:300], version=Inquiry.version + 1)
                .execution_options(synchronize_session=False)
            )
        report.failed += 1
    return kept


def claim_due(
    session: Session, *, owner: str, now: datetime, limit: int, lease_until: datetime, settings: Settings,
    report: Optional[DeliveryReport] = None,
) -> list[ClaimedMail]:
    """Lease up to `limit` due mails to `owner` (one transaction; the caller commits).

    Due: queued with next_attempt_at ≤ now, or sending with an expired lease (its runner
    died). Rows another runner is claiming are skipped (PostgreSQL SKIP LOCKED; SQLite
    serialises writers anyway). The weekly limit (per mailbox: the normalised recipient
    address, whichever therapist record a mail is for) is checked here again under locks on
    every therapist record of that mailbox, so two runners never send to one mailbox at once. Inquiry mails
    and reminders whose inquiry has moved on (answered, cancelled) are cancelled, not sent."""
    report = report if report is not None else DeliveryReport()
    is_pg = session.get_bind().dialect.name == "postgresql"
    stmt = (
        select(OutboxEmail)
        .where(_due_condition(now))
        .order_by(case((OutboxEmail.state == EmailState.sending, 0), else_=1), OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    if is_pg:
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxEmail)
    rows = list(session.scalars(stmt))
    if not rows:
        return []
    rows = _fail_invalid_recipients(session, rows, now=now, report=report)
    if not rows:
        session.flush()
        return []
    interval = settings.EMAIL_MIN_INTERVAL_DAYS
    # The weekly limit is per mailbox: the normalised recipient address, whichever therapist
    # record a mail is for. A mailbox is held when this runner locked every therapist record
    # with that address (SKIP LOCKED: another runner or a coordinator holds the rest).
    mailbox = {r.id: normalise_email(r.to_address) for r in rows if r.therapist_id is not None}
    members = mailboxes_members(session, [k for k in mailbox.values() if k])
    for r in rows:
        key = mailbox.get(r.id)
        if key is not None:
            members[key] = sorted(set(members.get(key) or ()) | {r.therapist_id})
    locked: set[int] = set()
    last_sent: dict[str, datetime] = {}
    busy: set[str] = set()
    if members:
        wanted = sorted({t for ids in members.values() for t in ids})
        if is_pg:
            locked = set(
                session.scalars(
                    select(Therapist.id).where(Therapist.id.in_(wanted)).order_by(Therapist.id)
                    .with_for_update(skip_locked=True, key_share=True)
                )
            )
        else:
            locked = set(wanted)
        held = {key: ids for key, ids in members.items() if set(ids) <= locked}
        traffic = mailbox_mails(session, held, OutboxEmail.state.in_([EmailState.sent, EmailState.sending]))
        for key, mails in traffic.items():
            sent_at = [m.sent_at for m in mails if m.state == EmailState.sent and m.sent_at is not None]
            if sent_at:
                last_sent[key] = max(sent_at)
            if any(m.state == EmailState.sending and m.lease_expires_at is not None and m.lease_expires_at >= now
                   for m in mails):
                busy.add(key)
    inquiry_ids = {r.inquiry_id for r in rows if r.inquiry_id is not None and r.template in _INQUIRY_OPEN_FOR}
    inquiry_state: dict[int, tuple[InquiryStatus, Optional[datetime]]] = {}
    if inquiry_ids:
        inquiry_state = {
            i: (s, a)
            for i, s, a in session.execute(
                select(Inquiry.id, Inquiry.status, Inquiry.answered_at).where(Inquiry.id.in_(inquiry_ids))
            ).all()
        }
    claimed_rows: list[OutboxEmail] = []
    new_ids: dict[int, str] = {}
    claimed_mailboxes: set[str] = set()
    for row in rows:
        if row.inquiry_id in inquiry_state:
            status, answered_at = inquiry_state[row.inquiry_id]
            stale = status not in _INQUIRY_OPEN_FOR[row.template] or (
                row.template == mt.THERAPIST_REMINDER and answered_at is not None
            )
            if stale:
                _cancel(session, SYSTEM, row, now=now, reason=f"Nicht gesendet: die Anfrage ist inzwischen {status.label}.")
                report.cancelled += 1
                continue
        key = mailbox.get(row.id)
        if key is not None:
            if not set(members[key]) <= locked or key in claimed_mailboxes:
                continue  # another runner holds this mailbox, or one mail to it is already in this batch
            wait = weekly_limit_wait(now, last_sent.get(key), interval)
            if wait is None and key in busy:
                wait = now + timedelta(days=interval)
            if wait is not None:
                row.state = EmailState.queued
                row.next_attempt_at = wait
                row.lease_owner = None
                row.lease_expires_at = None
                row.updated_at = now
                report.deferred += 1
                continue
            claimed_mailboxes.add(key)
        if not row.message_id:
            new_ids[row.id] = new_message_id(settings.EMAIL_SENDER)
        claimed_rows.append(row)
    session.flush()  # the cancelled and deferred ones
    if claimed_rows:
        # one statement for the whole claim; the loaded rows are told what it wrote
        lease = {"state": EmailState.sending, "lease_owner": owner, "lease_expires_at": lease_until, "updated_at": now}
        values: dict = dict(lease)
        if new_ids:
            values["message_id"] = case(
                {k: literal(v, OutboxEmail.message_id.type) for k, v in new_ids.items()},
                value=OutboxEmail.id, else_=OutboxEmail.message_id,
            )
        session.execute(
            update(OutboxEmail).where(OutboxEmail.id.in_([r.id for r in claimed_rows])).values(values)
            .execution_options(synchronize_session=False)
        )
        for row in claimed_rows:
            for name, value in lease.items():
                set_committed_value(row, name, value)
            if row.id in new_ids:
                set_committed_value(row, "message_id", new_ids[row.id])
    documents: dict[int, TherapistDocument] = {}
    wanted = {d for r in claimed_rows for d in (r.attachment_document_ids or [])}
    if wanted:
        documents = {d.id: d for d in session.scalars(select(TherapistDocument).where(TherapistDocument.id.in_(wanted)))}
    result = []
    for r in claimed_rows:
        ids = list(r.attachment_document_ids or [])
        result.append(
            ClaimedMail(
                id=r.id, therapist_id=r.therapist_id, patient_id=r.patient_id, inquiry_id=r.inquiry_id,
                template=r.template, to_address=r.to_address, to_name=r.to_name, subject=r.subject,
                body_text=r.body_text, body_html=r.body_html, message_id=r.message_id, attempts=r.attempts,
                lease_until=lease_until,
                attachments=tuple(
                    Attachment(documents[i].filename, documents[i].content) for i in ids if i in documents
                ),
                missing_attachments=tuple(i for i in ids if i not in documents),
            )
        )
    return result


def _per_row(column, key_column, values: dict[int, object]):
    """`column`'s new value per row: CASE key WHEN k THEN v … END (one statement for a batch)."""
    return case({k: literal(v, column.type) for k, v in values.items()}, value=key_column)


def _locks_for(mails: Sequence[ClaimedMail]) -> dict[str, list[int]]:
    """What recording these outcomes changes above the mails: their therapists and the
    inquiries of their inquiry mails (locked first, in the global order)."""
    return {
        "therapists": [m.therapist_id for m in mails if m.therapist_id is not None],
        "inquiries": [m.inquiry_id for m in mails if m.template == mt.THERAPIST_INQUIRY and m.inquiry_id is not None],
    }


def mark_sent_many(session: Session, deliveries: Sequence[tuple[ClaimedMail, datetime]], *, owner: str) -> set[int]:
    """Record several deliveries in one go (only those whose lease we still hold; returns
    their ids). Each mail keeps its own delivery time. The inquiry of an inquiry mail becomes
    sent with that time; the recipients' last contact is updated. Therapist and inquiry rows
    are locked first, in the global order (core.platform.locks), so that a coordinator
    holding them (and wanting one of these mails) is waited for, never deadlocked with.
    A fixed number of statements however many mails: the bookkeeping of a delivery batch."""
    if not deliveries:
        return set()
    lock_rows(session, **_locks_for([mail for mail, _ in deliveries]))
    return _mark_sent_locked(session, deliveries, owner=owner)


def _mark_sent_locked(session: Session, deliveries: Sequence[tuple[ClaimedMail, datetime]], *, owner: str) -> set[int]:
    """mark_sent_many once the caller holds the therapist and inquiry locks."""
    if not deliveries:
        return set()
    at = {mail.id: when for mail, when in deliveries}
    # Core statements on the tables: nothing loaded in the session is touched, and the
    # ORM's bulk-update machinery (a third of the bookkeeping's time) is not needed
    mails, inquiries = OutboxEmail.__table__.c, Inquiry.__table__.c
    done = set(
        session.execute(
            update(OutboxEmail.__table__)
            .where(mails.id.in_(sorted(at)), mails.state == EmailState.sending, mails.lease_owner == owner)
            .values(
                state=EmailState.sent, sent_at=_per_row(mails.sent_at, mails.id, at),
                attempts=mails.attempts + 1, last_error=None, lease_owner=None, lease_expires_at=None,
                next_attempt_at=None, updated_at=_per_row(mails.updated_at, mails.id, at),
            )
            .returning(mails.id)
        ).scalars()
    )
    if not done:
        return done
    sent = [(mail, when) for mail, when in deliveries if mail.id in done]
    inquiry_at = {m.inquiry_id: w for m, w in sent if m.template == mt.THERAPIST_INQUIRY and m.inquiry_id is not None}
    if inquiry_at:
        # A single guarded statement (no read-modify-write that a concurrent edit could make
        # stale and roll back, which would leave a delivered mail "sending"); it bumps the
        # version so a concurrent ORM edit of the inquiry notices.
        moved = set(
            session.execute(
                update(Inquiry.__table__)
                .where(inquiries.id.in_(sorted(inquiry_at)), inquiries.status.in_([InquiryStatus.draft, InquiryStatus.queued]))
                .values(
                    status=InquiryStatus.sent, sent_at=_per_row(inquiries.sent_at, inquiries.id, inquiry_at),
                    updated_at=_per_row(inquiries.updated_at, inquiries.id, inquiry_at), version=inquiries.version + 1,
                )
                .returning(inquiries.id)
            ).scalars()
        )
        audit.record_many(session, SYSTEM, [
            ("inquiry.sent", "inquiry", mail.inquiry_id, {"email_id": mail.id}, when)
            for mail, when in sent if mail.template == mt.THERAPIST_INQUIRY and mail.inquiry_id in moved
        ])
    for table, column, key in ((Therapist.__table__, "last_contact_email_on", "therapist_id"),
                               (Patient.__table__, "last_contact_on", "patient_id")):
        by_day: dict[date, set[int]] = {}
        for mail, when in sent:
            if getattr(mail, key) is not None:
                by_day.setdefault(_local_date(when), set()).add(getattr(mail, key))
        for day, ids in sorted(by_day.items()):  # one statement per day (normally one)
            session.execute(update(table).where(table.c.id.in_(sorted(ids))).values({column: day}))
    audit.record_many(session, SYSTEM, [
        ("email.sent", "outbox_email", mail.id, {"message_id": mail.message_id}, when) for mail, when in sent
    ])
    return done


def mark_sent(session: Session, mail: ClaimedMail, *, owner: str, sent_at: datetime) -> bool:
    """Record one delivery (only while we still hold the lease); see mark_sent_many."""
    return mail.id in mark_sent_many(session, [(mail, sent_at)], owner=owner)


def record_failure(
    session: Session, mail: ClaimedMail, error: SendError, *, owner: str, now: datetime, settings: Settings
) -> Optional[FailureDecision]:
    """A temporary failure goes back to the queue with backoff; a permanent one, or the last
    allowed attempt, fails with the server's text."""
    decision = decide_after_failure(
        attempts_before=mail.attempts, temporary=error.temporary, now=now, max_attempts=settings.EMAIL_MAX_ATTEMPTS
    )
    text = error.text
    if mail.template == mt.THERAPIST_INQUIRY and mail.inquiry_id is not None:
        lock_rows(session, inquiries=[mail.inquiry_id])  # flagged below: its lock before the mail's
    if decision.state == EmailState.failed and error.temporary:
        text = f"{error.text} (aufgegeben nach {decision.attempts} Versuchen)"
    result = session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == mail.id, OutboxEmail.state == EmailState.sending, OutboxEmail.lease_owner == owner)
        .values(
            state=decision.state, attempts=decision.attempts, next_attempt_at=decision.next_attempt_at,
            last_error=text[:2000], lease_owner=None, lease_expires_at=None, updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return None
    if decision.state == EmailState.failed:
        audit.record(session, SYSTEM, "email.failed", "outbox_email", mail.id, {"error": text[:500]}, now=now)
        if mail.template == mt.THERAPIST_INQUIRY and mail.inquiry_id is not None:
            session.execute(
                update(Inquiry)
                .where(Inquiry.id == mail.inquiry_id)
                .values(
                    needs_attention=True, attention_reason=f"E-Mail nicht zugestellt: {text[:300]}",
                    version=Inquiry.version + 1,
                )
                .execution_options(synchronize_session=False)
            )
    return decision


def release(session: Session, mail_ids: Sequence[int], *, owner: str, now: datetime) -> int:
    """Give claimed, unsent mails back to the queue (no attempt counted)."""
    if not mail_ids:
        return 0
    result = session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id.in_(list(mail_ids)), OutboxEmail.state == EmailState.sending, OutboxEmail.lease_owner == owner)
        .values(state=EmailState.queued, lease_owner=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def outgoing(mail: ClaimedMail, *, settings: Settings, date: datetime) -> OutgoingMail:
    return OutgoingMail(
        from_address=settings.EMAIL_SENDER,
        from_name=settings.EMAIL_SENDER_NAME,
        to_address=mail.to_address,
        to_name=mail.to_name,
        subject=mail.subject,
        text=mail.body_text,
        html=mail.body_html,
        message_id=mail.message_id,
        date=date,
        reply_to=settings.EMAIL_SENDER,
        attachments=mail.attachments,
    )


SessionScope = Callable[[], AbstractContextManager[Session]]


DEFAULT_COMMIT_EVERY = 5


class _Outcomes:
    """Outcomes of sent and failed mails, written together every few mails (one short
    transaction per group instead of one per mail). A kill before the write leaves those
    mails `sending`: they are sent again when their lease ends (at least once, never lost)."""

    def __init__(self, session_scope: SessionScope, *, owner: str, settings: Settings, report: DeliveryReport, every: int):
        self._scope = session_scope
        self._owner = owner
        self._settings = settings
        self._report = report
        self._every = max(1, every)
        self._items: list[tuple[ClaimedMail, Optional[SendError], datetime]] = []

    def add(self, mail: ClaimedMail, error: Optional[SendError], at: datetime) -> None:
        self._items.append((mail, error, at))
        if len(self._items) >= self._every:
            self.flush()

    def flush(self) -> None:
        if not self._items:
            return
        sent: list[int] = []
        decisions: list[Optional[FailureDecision]] = []
        lost = 0
        with self._scope() as session, session.no_autoflush:
            # the statements below are Core updates that never read the pending audit rows:
            # without autoflush those rows go out as one multi-row INSERT at commit
            lock_rows(session, **_locks_for([mail for mail, _, _ in self._items]))  # all of them first
            delivered = [(mail, at) for mail, error, at in self._items if error is None]
            done = _mark_sent_locked(session, delivered, owner=self._owner)
            for mail, _ in delivered:
                if mail.id in done:
                    sent.append(mail.id)
                else:
                    lost += 1
                    log.warning("E-Mail %s gesendet, aber die Lease war verloren", mail.id)
            for mail, error, at in self._items:
                if error is not None:
                    decision = record_failure(session, mail, error, owner=self._owner, now=at, settings=self._settings)
                    if decision is None:
                        lost += 1
                    else:
                        decisions.append(decision)
        self._items.clear()
        self._report.sent += len(sent)
        self._report.sent_ids.extend(sent)
        self._report.lost_lease += lost
        self._report.failed += sum(1 for d in decisions if d.state == EmailState.failed)
        self._report.retrying += sum(1 for d in decisions if d.state != EmailState.failed)


def deliver_due(
    session_scope: SessionScope,
    sender: MailSender,
    clock: Callable[[], datetime],
    *,
    owner: str,
    settings: Optional[Settings] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lease: timedelta = DEFAULT_LEASE,
    max_batches: Optional[int] = None,
    commit_every: int = DEFAULT_COMMIT_EVERY,
) -> DeliveryReport:
    """Deliver everything that is due, batch by batch, over one connection.

    `session_scope()` is a unit of work (commits on success). A claim is one transaction;
    outcomes are written every `commit_every` mails and at the end of each batch. A kill at
    any moment loses no mail: a claimed mail stays `sending` until its lease ends and is
    then claimed again (and, if the server had already accepted it, delivered twice, which
    is why the Message-ID stays the same). A mail whose lease is about to end is not sent
    but released (another runner might take it over)."""
    settings = _settings(settings)
    report = DeliveryReport()
    outcomes = _Outcomes(session_scope, owner=owner, settings=settings, report=report, every=commit_every)
    margin = min(timedelta(seconds=settings.SMTP_TIMEOUT_S), lease / 2)
    batches = 0
    with ExitStack() as connection:
        transport = None
        while max_batches is None or batches < max_batches:
            batches += 1
            now = clock()
            with session_scope() as session:
                claimed = claim_due(
                    session, owner=owner, now=now, limit=batch_size, lease_until=now + lease, settings=settings, report=report
                )
            if not claimed:
                break
            for index, mail in enumerate(claimed):
                if clock() >= mail.lease_until - margin:
                    outcomes.flush()
                    with session_scope() as session:
                        report.released += release(session, [m.id for m in claimed[index:]], owner=owner, now=clock())
                    break
                if mail.missing_attachments:
                    missing = ", ".join(map(str, mail.missing_attachments))
                    outcomes.add(mail, SendError(f"Anhang fehlt: Formular {missing} wurde gelöscht.", temporary=False), clock())
                    continue
                try:
                    message = build_message(outgoing(mail, settings=settings, date=clock()))
                except Exception as exc:  # noqa: BLE001 - a mail that cannot be built never goes out
                    outcomes.add(mail, SendError(f"E-Mail lässt sich nicht erstellen: {exc}", temporary=False), clock())
                    continue
                if transport is None:
                    try:
                        transport = connection.enter_context(sender.connect())
                    except SendError as err:
                        for rest in claimed[index:]:
                            outcomes.add(rest, err, clock())
                        outcomes.flush()
                        return report
                try:
                    transport.send(message)
                except SendError as err:
                    outcomes.add(mail, err, clock())
                    if err.connection_lost:
                        connection.close()
                        transport = None
                    continue
                outcomes.add(mail, None, clock())
            outcomes.flush()
    return report


