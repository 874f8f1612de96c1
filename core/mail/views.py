"""Queries and view-models for the Postausgang page and the composer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from core.mail import templates as mt
from core.adapters.smtp import (
    FolderMessage,
    list_folder_messages,
)
from core.platform.config import Settings
from core.platform.models import OutboxEmail, Patient, Therapist, TherapistDocument
from core.platform.permissions import Actor, Permission
from core.platform.vocab import EmailState
from core.platform.text import contains_ci, has_control_chars
from core.mail.outbox import _get_email, _settings
from core.mail.rules import split_signature, waiting_text


# =========================================================================== queries for the outbox page

TABS: dict[str, tuple[EmailState, ...]] = {
    "drafts": (EmailState.draft,),
    "queued": (EmailState.queued, EmailState.sending),
    "sent": (EmailState.sent,),
    "failed": (EmailState.failed,),
    "cancelled": (EmailState.cancelled,),
}


@dataclass(frozen=True)
class EmailRow:
    id: int
    state: EmailState
    template: str
    kind: str  # "Therapeut:in" / "Patient:in"
    recipient: str  # hidden for viewers where it names a patient
    to_address: str  # "" for viewers
    subject: str
    inquiry_ref: str
    created_at: datetime
    queued_at: Optional[datetime]
    next_attempt_at: Optional[datetime]
    sent_at: Optional[datetime]
    attempts: int
    last_error: str  # "" for viewers
    waiting: str

    @property
    def template_title(self) -> str:
        return mt.template_title(self.template)


@dataclass(frozen=True)
class EmailDetail:
    row: EmailRow
    body_text: str
    body_html: str
    message_id: str
    attachments: tuple[str, ...]
    editable_body: str
    can_approve: bool
    can_edit: bool
    can_cancel: bool
    can_retry: bool
    can_resend: bool
    patient_id: Optional[int] = None  # the patient a patient mail is for (read auditing ties the read to them)


def _row(email: OutboxEmail, actor: Actor, *, now: datetime, interval_days: int) -> EmailRow:
    sensitive = actor.can(Permission.view_sensitive)
    is_therapist = email.therapist_id is not None
    if sensitive or is_therapist:
        recipient = email.to_name
    else:
        recipient = f"Patient:in #{email.patient_id}"
    return EmailRow(
        id=email.id,
        state=email.state,
        template=email.template,
        kind="Therapeut:in" if is_therapist else "Patient:in",
        recipient=recipient,
        to_address=email.to_address if sensitive else "",
        subject=email.subject,
        inquiry_ref=mt.inquiry_reference(email.inquiry_id) if email.inquiry_id else "",
        created_at=email.created_at,
        queued_at=email.queued_at,
        next_attempt_at=email.next_attempt_at,
        sent_at=email.sent_at,
        attempts=email.attempts,
        last_error=(email.last_error or "") if sensitive else ("Fehler (Details nur für Koordination)" if email.last_error else ""),
        waiting=waiting_text(
            email.state, attempts=email.attempts, next_attempt_at=email.next_attempt_at,
            lease_expires_at=email.lease_expires_at, is_therapist=is_therapist, now=now, interval_days=interval_days,
        ),
    )


def outbox_counts(session: Session, actor: Actor) -> dict[EmailState, int]:
    actor.require(Permission.view)
    counts = dict(session.execute(select(OutboxEmail.state, func.count()).group_by(OutboxEmail.state)).all())
    return {state: int(counts.get(state, 0)) for state in EmailState}


def tab_count(counts: dict[EmailState, int], tab: str) -> int:
    return sum(counts.get(s, 0) for s in TABS[tab])


def list_emails(
    session: Session, actor: Actor, tab: str, *, now: datetime, search: str = "", offset: int = 0, limit: int = 50,
    settings: Optional[Settings] = None,
) -> tuple[list[EmailRow], int]:
    """One tab of the outbox, paged and filtered in SQL (subject / recipient / A-reference)."""
    actor.require(Permission.view)
    settings = _settings(settings)
    states = TABS[tab]
    stmt = select(OutboxEmail).where(OutboxEmail.state.in_(list(states)))
    term = (search or "").strip()
    if has_control_chars(term):  # a NUL byte matches nothing (PostgreSQL would refuse the query)
        return [], 0
    if term:
        conditions = [contains_ci(OutboxEmail.subject, term)]  # % and _ match literally
        if actor.can(Permission.view_sensitive):
            conditions += [contains_ci(OutboxEmail.to_name, term), contains_ci(OutboxEmail.to_address, term)]
        ref = term.upper().removeprefix("A").split("-")[0]
        if ref.isdigit():
            conditions.append(OutboxEmail.inquiry_id == int(ref))
        stmt = stmt.where(or_(*conditions))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    if tab == "queued":
        order = (OutboxEmail.next_attempt_at.asc(), OutboxEmail.id.asc())
    elif tab == "sent":
        order = (OutboxEmail.sent_at.desc(), OutboxEmail.id.desc())
    else:
        order = (OutboxEmail.updated_at.desc(), OutboxEmail.id.desc())
    emails = session.scalars(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return [_row(e, actor, now=now, interval_days=settings.EMAIL_MIN_INTERVAL_DAYS) for e in emails], total


def email_detail(session: Session, actor: Actor, email_id: int, *, now: datetime, settings: Optional[Settings] = None) -> EmailDetail:
    """Everything about one mail incl. its bodies: only for roles that may see health data
    (inquiry mails describe patients' symptoms)."""
    actor.require(Permission.view_sensitive)
    settings = _settings(settings)
    email = _get_email(session, email_id)
    names = []
    if email.attachment_document_ids:
        found = dict(
            session.execute(
                select(TherapistDocument.id, TherapistDocument.filename).where(
                    TherapistDocument.id.in_(list(email.attachment_document_ids))
                )
            ).all()
        )
        names = [found.get(i, f"(Formular {i} gelöscht)") for i in email.attachment_document_ids]
    editor = actor.can(Permission.edit)
    return EmailDetail(
        row=_row(email, actor, now=now, interval_days=settings.EMAIL_MIN_INTERVAL_DAYS),
        body_text=email.body_text,
        body_html=email.body_html,
        message_id=email.message_id or "",
        attachments=tuple(names),
        editable_body=split_signature(email.body_text)[0],
        can_approve=editor and email.state == EmailState.draft,
        can_edit=editor and email.state == EmailState.draft,
        can_cancel=editor and email.state in (EmailState.draft, EmailState.queued, EmailState.failed),
        can_retry=editor and email.state == EmailState.failed,
        can_resend=editor and email.state == EmailState.sent,
        patient_id=email.patient_id,
    )


@dataclass(frozen=True)
class QueuePanel:
    queued_due: int  # go with the next run
    waiting_limit: int  # held back by the weekly limit
    retrying: int  # waiting for the next attempt after a temporary failure
    sending: int
    stuck: int  # sending with an expired lease (their runner died; they return to the queue)
    failed: int
    next_at: Optional[datetime]  # the next planned mail (when nothing is due now)
    last_sent_at: Optional[datetime]
    sent_24h: int


def queue_panel(session: Session, actor: Actor, *, now: datetime) -> QueuePanel:
    """The live panel: what the delivery job has in front of it (counts only, no content)."""
    actor.require(Permission.view)
    queued = OutboxEmail.state == EmailState.queued

    def count(*conds) -> int:
        return session.scalar(select(func.count()).select_from(OutboxEmail).where(*conds)) or 0

    return QueuePanel(
        queued_due=count(queued, OutboxEmail.next_attempt_at <= now),
        waiting_limit=count(queued, OutboxEmail.next_attempt_at > now, OutboxEmail.attempts == 0),
        retrying=count(queued, OutboxEmail.next_attempt_at > now, OutboxEmail.attempts > 0),
        sending=count(OutboxEmail.state == EmailState.sending, OutboxEmail.lease_expires_at >= now),
        stuck=count(OutboxEmail.state == EmailState.sending, OutboxEmail.lease_expires_at < now),
        failed=count(OutboxEmail.state == EmailState.failed),
        next_at=session.scalar(select(func.min(OutboxEmail.next_attempt_at)).where(queued, OutboxEmail.next_attempt_at > now)),
        last_sent_at=session.scalar(select(func.max(OutboxEmail.sent_at)).where(OutboxEmail.state == EmailState.sent)),
        sent_24h=count(OutboxEmail.state == EmailState.sent, OutboxEmail.sent_at >= now - timedelta(hours=24)),
    )


def local_mailbox(actor: Actor, *, settings: Optional[Settings] = None, limit: int = 30) -> Optional[list[FolderMessage]]:
    """The mails the embedded folder sink wrote (SMTP_MODE=folder), newest first; None in
    other modes. Bodies hold health data: only for roles that may see it."""
    actor.require(Permission.view_sensitive)
    settings = _settings(settings)
    if settings.SMTP_MODE != "folder":
        return None
    return list_folder_messages(Path(settings.path(settings.MAIL_FOLDER)), limit=limit)


def delivery_mode_text(settings: Optional[Settings] = None) -> str:
    """One German line: where mails go in this set-up."""
    settings = _settings(settings)
    if settings.SMTP_MODE == "smtp":
        return f"Versand über den Mailserver {settings.SMTP_HOST}:{settings.SMTP_PORT} ({settings.SMTP_SECURITY.upper()})."
    if settings.SMTP_MODE == "log":
        return "Nur Protokoll: E-Mails werden nicht versendet, nur im Protokoll des Hintergrunddienstes vermerkt."
    return f"Lokaler Mailordner: E-Mails werden nicht versendet, sondern als Dateien in {settings.MAIL_FOLDER} abgelegt (unten einsehbar)."


# =========================================================================== small look-ups for the composer


@dataclass(frozen=True)
class RecipientBrief:
    id: int
    name: str
    email: str
    phone: str


def patient_brief(session: Session, actor: Actor, patient_id: int) -> Optional[RecipientBrief]:
    """Name and contact of a patient for the message composer (coordinators only)."""
    actor.require(Permission.view_sensitive)
    p = session.get(Patient, patient_id)
    if p is None:
        return None
    return RecipientBrief(p.id, f"{p.first_name} {p.last_name}".strip(), p.email or "", p.phone or "")


def therapist_brief(session: Session, actor: Actor, therapist_id: int) -> Optional[RecipientBrief]:
    """Name of a therapist for the composer; e-mail and phone only for roles that may see contacts."""
    actor.require(Permission.view)
    t = session.get(Therapist, therapist_id)
    if t is None:
        return None
    if not actor.can(Permission.view_sensitive):
        return RecipientBrief(t.id, t.full_name, "", "")
    return RecipientBrief(t.id, t.full_name, t.email or "", t.phone or "")
