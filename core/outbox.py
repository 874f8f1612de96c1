"""The outbox: every e-mail to a therapist or a patient, from draft to delivered.

Life cycle (states from core.vocab.EmailState):

    draft ──approve──▶ queued ──claim──▶ sending ──accepted──▶ sent
      │                  │  ▲               │  │
      └──cancel──▶ cancelled  └─temporary failure (backoff)   └─permanent / attempts used up──▶ failed
                         ▲                  │                                              │
                         │       lease expired after a crash: back to the queue            └─retry──▶ queued
                         └───────────────── cancel (draft, queued, failed)

- A mail is rendered when it is created; the stored subject/HTML/text is exactly what is
  sent (the preview shows it). A draft's text can be edited by hand before approval.
- Delivery (`deliver_due`) claims due mails with a lease (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL), sends them over one connection, and records each outcome in its own short
  transaction, so a killed process loses nothing: its mails come back when the lease expires.
  The Message-ID is stored at the first claim, so a mail sent again after a crash carries the
  same id.
- "Sent" means accepted by the SMTP server; the delivery time is also the inquiry's sent time.
- Weekly limit: at most one e-mail per therapist per EMAIL_MIN_INTERVAL_DAYS, planned when a
  mail is queued (the outbox shows when it will go) and checked again at the claim.
- Reminders (`schedule_follow_ups`): an unanswered e-mail inquiry gets a follow-up call when the
  therapist has a phone number, otherwise one reminder e-mail.

Pure rules first (no database), then the services (session, actor, ..., now), then delivery
and reminders, then the queries for the outbox page.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core import audit
from core import mail_templates as mt
from core.adapters.smtp import (
    Attachment,
    FolderMessage,
    MailSender,
    OutgoingMail,
    SendError,
    build_message,
    list_folder_messages,
    new_message_id,
)
from core.config import Settings, get_settings
from core.formatting import BERLIN, format_datetime
from core.models import (
    Inquiry,
    InquiryPatient,
    OutboxEmail,
    Patient,
    PhoneCall,
    Search,
    Therapist,
    TherapistDocument,
)
from core.permissions import SYSTEM, Actor, Permission
from core.vocab import (
    CallPurpose,
    CallState,
    EmailState,
    InquiryChannel,
    InquiryStatus,
    SearchStatus,
    TherapistStatus,
)

log = logging.getLogger(__name__)

# Backoff after a temporary failure: 5, 10, 20, 40 minutes, ... at most 6 hours.
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=6)
# A claimed mail belongs to its runner this long; after a crash it returns to the queue then.
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_BATCH_SIZE = 50
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
FOLLOW_UP_CALL_HOUR = 10
SIGNATURE_SEPARATOR = "\n-- \n"

THERAPIST_TEMPLATES = frozenset({mt.THERAPIST_INQUIRY, mt.THERAPIST_REMINDER, mt.THERAPIST_THANKS})
PATIENT_TEMPLATES = frozenset(
    {mt.PATIENT_SEARCH_STARTED, mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE, mt.PATIENT_STATUS_UPDATE}
)
# Inquiry states in which its mails may still go out (an inquiry mail, a reminder).
_INQUIRY_OPEN_FOR = {
    mt.THERAPIST_INQUIRY: {InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent},
    mt.THERAPIST_REMINDER: {InquiryStatus.sent},
}


class OutboxError(ValueError):
    """An outbox action that is not possible now; the message is German and says why."""


# =========================================================================== pure rules


def backoff_delay(attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP) -> timedelta:
    """Wait after the `attempts`-th failed attempt: base · 2^(attempts-1), at most `cap`."""
    if attempts < 1:
        return timedelta(0)
    return min(base * (2 ** min(attempts - 1, 30)), cap)


@dataclass(frozen=True)
class FailureDecision:
    state: EmailState  # queued (retry) or failed
    next_attempt_at: Optional[datetime]
    attempts: int


def decide_after_failure(*, attempts_before: int, temporary: bool, now: datetime, max_attempts: int) -> FailureDecision:
    """A temporary failure retries with backoff until `max_attempts` attempts were made;
    a permanent one (5xx) fails at once."""
    attempts = attempts_before + 1
    if temporary and attempts < max_attempts:
        return FailureDecision(EmailState.queued, now + backoff_delay(attempts), attempts)
    return FailureDecision(EmailState.failed, None, attempts)


def weekly_limit_wait(now: datetime, last_sent_at: Optional[datetime], interval_days: int) -> Optional[datetime]:
    """When the next e-mail to a therapist may go, or None if it may go now."""
    if last_sent_at is None or interval_days <= 0:
        return None
    allowed = last_sent_at + timedelta(days=interval_days)
    return allowed if allowed > now else None


def earliest_send_time(now: datetime, occupied: Iterable[datetime], interval_days: int) -> datetime:
    """The earliest moment ≥ now at least `interval_days` away from every occupied moment
    (other mails to the same therapist: delivered ones, planned ones)."""
    if interval_days <= 0:
        return now
    gap = timedelta(days=interval_days)
    t = now
    for moment in sorted(occupied):
        if moment - gap < t < moment + gap:
            t = moment + gap
    return t


def next_weekday_at(after: datetime, hour: int = FOLLOW_UP_CALL_HOUR) -> datetime:
    """The first Monday–Friday `hour`:00 Europe/Berlin strictly after `after` (aware result)."""
    local = after.astimezone(BERLIN)
    day = local.date()
    for offset in range(0, 8):
        d = day + timedelta(days=offset)
        candidate = datetime.combine(d, time(hour), tzinfo=BERLIN)
        if d.weekday() < 5 and candidate > local:
            return candidate
    raise AssertionError("unreachable: a weekday lies within 8 days")  # pragma: no cover


def split_signature(text: str) -> tuple[str, str]:
    """(body, signature incl. separator) of a rendered text; the legal footer is the signature."""
    idx = text.find(SIGNATURE_SEPARATOR)
    if idx < 0:
        return text.rstrip("\n"), ""
    return text[:idx].rstrip("\n"), text[idx:]


def waiting_text(
    state: EmailState, *, attempts: int, next_attempt_at: Optional[datetime], lease_expires_at: Optional[datetime],
    is_therapist: bool, now: datetime, interval_days: int,
) -> str:
    """One German line: why a mail is where it is and when it goes."""
    if state == EmailState.queued:
        if next_attempt_at is not None and next_attempt_at > now:
            when = format_datetime(next_attempt_at)
            if attempts > 0:
                return f"Neuer Versuch am {when}"
            if is_therapist:
                return f"Wartet auf die Wochengrenze (höchstens eine E-Mail in {interval_days} Tagen), geht am {when}"
            return f"Geplant für {when}"
        return "Geht mit dem nächsten Lauf des Hintergrunddienstes"
    if state == EmailState.sending:
        if lease_expires_at is not None and lease_expires_at < now:
            return "Versand unterbrochen, wird erneut versucht"
        return "Wird gerade gesendet"
    return ""


# =========================================================================== helpers


def _settings(settings: Optional[Settings]) -> Settings:
    return settings if settings is not None else get_settings()


def _local_date(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


def _get_email(session: Session, email_id: int, *, for_update: bool = False) -> OutboxEmail:
    stmt = select(OutboxEmail).where(OutboxEmail.id == email_id).execution_options(populate_existing=True)
    if for_update:
        stmt = stmt.with_for_update()
    email = session.scalars(stmt).one_or_none()
    if email is None:
        raise OutboxError("Diese E-Mail gibt es nicht (mehr).")
    return email


def _validate_address(address: Optional[str], who: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    if not address or not address.strip():
        raise OutboxError(f"{who} hat keine E-Mail-Adresse.")
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise OutboxError(f"Die E-Mail-Adresse von {who} ist ungültig: {address}") from None


def _therapist_occupied(session: Session, therapist_id: int, *, now: datetime, interval_days: int, exclude_id: Optional[int]) -> list[datetime]:
    """Moments of other mails to this therapist that the weekly limit must keep apart from."""
    horizon = now - timedelta(days=interval_days)
    rows = session.execute(
        select(OutboxEmail.id, OutboxEmail.state, OutboxEmail.sent_at, OutboxEmail.next_attempt_at).where(
            OutboxEmail.therapist_id == therapist_id,
            or_(
                and_(OutboxEmail.state == EmailState.sent, OutboxEmail.sent_at >= horizon),
                OutboxEmail.state.in_([EmailState.queued, EmailState.sending]),
            ),
        )
    ).all()
    occupied = []
    for row_id, state, sent_at, next_at in rows:
        if row_id == exclude_id:
            continue
        if state == EmailState.sent:
            occupied.append(sent_at)
        elif state == EmailState.sending:
            occupied.append(now)
        else:
            occupied.append(max(now, next_at or now))
    return occupied


def _put_in_queue(session: Session, email: OutboxEmail, *, now: datetime, settings: Settings) -> None:
    """queued, with the time the weekly limit allows (now for patients)."""
    go_at = now
    if email.therapist_id is not None:
        occupied = _therapist_occupied(
            session, email.therapist_id, now=now, interval_days=settings.EMAIL_MIN_INTERVAL_DAYS, exclude_id=email.id
        )
        go_at = earliest_send_time(now, occupied, settings.EMAIL_MIN_INTERVAL_DAYS)
    email.state = EmailState.queued
    email.queued_at = now
    email.next_attempt_at = go_at
    email.lease_owner = None
    email.lease_expires_at = None


def _set_inquiry_status(session: Session, inquiry_id: int, *, from_states: Sequence[InquiryStatus], values: dict) -> bool:
    """Move an inquiry on through the ORM (its version column guards concurrent edits)."""
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or inquiry.status not in from_states:
        return False
    for key, value in values.items():
        setattr(inquiry, key, value)
    return True


def _new_email(
    *, actor: Actor, template: str, rendered: mt.RenderedMail, to_address: str, to_name: str,
    therapist_id: Optional[int] = None, patient_id: Optional[int] = None, inquiry_id: Optional[int] = None,
    attachment_ids: Sequence[int] = (), now: datetime,
) -> OutboxEmail:
    return OutboxEmail(
        therapist_id=therapist_id,
        patient_id=patient_id,
        inquiry_id=inquiry_id,
        to_address=to_address,
        to_name=to_name[:255],
        subject=rendered.subject[:255],
        body_html=rendered.html,
        body_text=rendered.text,
        template=template,
        attachment_document_ids=list(attachment_ids),
        state=EmailState.draft,
        attempts=0,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )


def _finish_new(
    session: Session, actor: Actor, email: OutboxEmail, *, approve: bool, now: datetime, settings: Settings
) -> OutboxEmail:
    session.add(email)
    session.flush()
    audit.record(
        session, actor, "email.create", "outbox_email", email.id,
        {"template": email.template, "inquiry_id": email.inquiry_id}, now=now,
    )
    if approve:
        _approve(session, actor, email, now=now, settings=settings)
    return email


def _inquiry_patients(inquiry: Inquiry) -> list[tuple[int, Patient]]:
    """(position, patient) of the patients still in the inquiry, in order, renumbered 1..n."""
    members = [m for m in inquiry.patients if m.withdrawn_at is None]
    return [(m.position, m.search.patient) for m in sorted(members, key=lambda m: m.position)]


def _load_inquiry(session: Session, inquiry_id: int) -> Inquiry:
    inquiry = session.get(Inquiry, inquiry_id, populate_existing=True)
    if inquiry is None:
        raise OutboxError("Diese Anfrage gibt es nicht (mehr).")
    return inquiry


def _has_mail(session: Session, inquiry_id: int, template: str, states: Sequence[EmailState]) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(OutboxEmail).where(
                OutboxEmail.inquiry_id == inquiry_id, OutboxEmail.template == template, OutboxEmail.state.in_(list(states))
            )
        )
    )


# =========================================================================== services: creating mails


def queue_inquiry_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, approve: bool = False,
    settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Render the inquiry e-mail of a draft inquiry into the outbox.

    approve=False: a draft in the outbox (the inquiry stays draft until the mail is approved).
    approve=True: queued at once (the inquiry becomes queued). Either way the inquiry counts
    as sent only when the mail is delivered (`sent_at` = delivery time)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    if inquiry.channel != InquiryChannel.email:
        raise OutboxError("Diese Anfrage läuft per Telefon, nicht per E-Mail.")
    if inquiry.status not in (InquiryStatus.draft, InquiryStatus.queued):
        raise OutboxError(f"Die Anfrage ist bereits {inquiry.status.label}; es wird keine neue E-Mail erstellt.")
    if _has_mail(session, inquiry_id, mt.THERAPIST_INQUIRY, [EmailState.draft, EmailState.queued, EmailState.sending, EmailState.sent]):
        raise OutboxError("Für diese Anfrage gibt es schon eine E-Mail im Postausgang.")
    return _inquiry_mail(session, actor, inquiry, mt.THERAPIST_INQUIRY, now, approve=approve, settings=settings)


def _inquiry_mail(
    session: Session, actor: Actor, inquiry: Inquiry, template: str, now: datetime, *, approve: bool,
    settings: Settings, **extra_context,
) -> OutboxEmail:
    """Render an inquiry or reminder mail to the inquiry's therapist (pseudonymised patients)."""
    therapist = inquiry.therapist
    address = _validate_address(therapist.email, therapist.full_name)
    patients = _inquiry_patients(inquiry)
    if not patients:
        raise OutboxError("Die Anfrage enthält keine Patient:innen mehr.")
    context = mt.inquiry_context(
        settings, inquiry_id=inquiry.id, therapist=therapist, patients=patients, today=_local_date(now), **extra_context
    )
    rendered = mt.render(template, context)
    email = _new_email(
        actor=actor, template=template, rendered=rendered, to_address=address,
        to_name=therapist.full_name, therapist_id=therapist.id, inquiry_id=inquiry.id, now=now,
    )
    return _finish_new(session, actor, email, approve=approve, now=now, settings=settings)


def queue_reminder_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, settings: Optional[Settings] = None
) -> OutboxEmail:
    """The one reminder for a sent, unanswered e-mail inquiry; queued (the weekly limit applies)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    if inquiry.status != InquiryStatus.sent or inquiry.answered_at is not None:
        raise OutboxError("Erinnern lässt sich nur an eine gesendete, unbeantwortete Anfrage.")
    if _has_mail(session, inquiry_id, mt.THERAPIST_REMINDER, list(EmailState)):
        raise OutboxError("Für diese Anfrage gibt es schon eine Erinnerung.")
    return _inquiry_mail(
        session, actor, inquiry, mt.THERAPIST_REMINDER, now, approve=True, settings=settings,
        sent_on=_local_date(inquiry.sent_at or now),
    )


def queue_thanks_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, search_ids: Optional[Sequence[int]] = None,
    approve: bool = False, settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Thanks/confirmation to the therapist after an acceptance, naming the accepted patients
    (default: every member with outcome accepted). The weekly limit applies."""
    from core.vocab import Outcome

    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    members = sorted(inquiry.patients, key=lambda m: m.position)
    if search_ids is not None:
        chosen = [m for m in members if m.search_id in set(search_ids)]
    else:
        chosen = [m for m in members if m.outcome == Outcome.accepted]
    if not chosen:
        raise OutboxError("Keine angenommenen Patient:innen in dieser Anfrage.")
    therapist = inquiry.therapist
    address = _validate_address(therapist.email, therapist.full_name)
    context = mt.thanks_context(
        settings, inquiry_id=inquiry.id, therapist=therapist,
        accepted=[(m.position, m.search.patient) for m in chosen], today=_local_date(now),
    )
    rendered = mt.render(mt.THERAPIST_THANKS, context)
    email = _new_email(
        actor=actor, template=mt.THERAPIST_THANKS, rendered=rendered, to_address=address,
        to_name=therapist.full_name, therapist_id=therapist.id, inquiry_id=inquiry.id, now=now,
    )
    return _finish_new(session, actor, email, approve=approve, now=now, settings=settings)


def queue_patient_email(
    session: Session, actor: Actor, patient_id: int, template: str, now: datetime, *,
    therapist_id: Optional[int] = None, message: str = "", document_ids: Optional[Sequence[int]] = None,
    approve: bool = False, settings: Optional[Settings] = None,
) -> OutboxEmail:
    """A message to a patient: search started, place found (contact by e-mail / by phone, with
    the therapist's PDF forms attached; default all of them), or a status update."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    if template not in PATIENT_TEMPLATES:
        raise OutboxError(f"Unbekannte Nachricht an Patient:innen: {template}")
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise OutboxError("Diese Patientin / diesen Patienten gibt es nicht (mehr).")
    name = f"{patient.first_name} {patient.last_name}".strip()
    address = _validate_address(patient.email, name)
    search = session.scalars(
        select(Search).where(Search.patient_id == patient.id).order_by(
            case((Search.status == SearchStatus.active, 0), else_=1), Search.started_on.desc(), Search.id.desc()
        ).limit(1)
    ).first()
    therapist = None
    documents: list[TherapistDocument] = []
    if template in (mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE):
        if therapist_id is None and search is not None:
            therapist_id = search.placed_therapist_id
        therapist = session.get(Therapist, therapist_id) if therapist_id is not None else None
        if therapist is None:
            raise OutboxError("Bitte wählen Sie die Therapeut:in, bei der der Platz gefunden wurde.")
        if template == mt.PATIENT_PLACE_FOUND_EMAIL and not therapist.email:
            raise OutboxError("Die Praxis hat keine E-Mail-Adresse; wählen Sie die Variante „Kontakt per Telefon“.")
        if template == mt.PATIENT_PLACE_FOUND_PHONE and not therapist.phone:
            raise OutboxError("Die Praxis hat keine Telefonnummer; wählen Sie die Variante „Kontakt per E-Mail“.")
        stmt = select(TherapistDocument).where(TherapistDocument.therapist_id == therapist.id).order_by(TherapistDocument.id)
        documents = list(session.scalars(stmt))
        if document_ids is not None:
            wanted = set(document_ids)
            unknown = wanted - {d.id for d in documents}
            if unknown:
                raise OutboxError("Ein gewähltes Formular gehört nicht zu dieser Praxis.")
            documents = [d for d in documents if d.id in wanted]
    elif document_ids:
        raise OutboxError("Formulare lassen sich nur an die Nachricht „Therapieplatz gefunden“ anhängen.")
    asked = 0
    if search is not None:
        asked = session.scalar(
            select(func.count(func.distinct(Inquiry.therapist_id)))
            .select_from(InquiryPatient)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(
                InquiryPatient.search_id == search.id,
                Inquiry.status.in_([InquiryStatus.sent, InquiryStatus.answered, InquiryStatus.expired]),
            )
        ) or 0
    context = mt.patient_context(
        settings, patient=patient, therapist=therapist, today=_local_date(now), forms=[d.filename for d in documents],
        search_started_on=search.started_on if search is not None else None, therapists_asked=asked,
        message=message, max_distance_km=patient.max_distance_km,
    )
    rendered = mt.render(template, context)
    email = _new_email(
        actor=actor, template=template, rendered=rendered, to_address=address, to_name=name, patient_id=patient.id,
        attachment_ids=[d.id for d in documents], now=now,
    )
    return _finish_new(session, actor, email, approve=approve, now=now, settings=settings)


# =========================================================================== services: life cycle


def _approve(session: Session, actor: Actor, email: OutboxEmail, *, now: datetime, settings: Settings) -> None:
    if email.inquiry_id is not None and email.template in _INQUIRY_OPEN_FOR:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and inquiry.status not in _INQUIRY_OPEN_FOR[email.template]:
            raise OutboxError(f"Die Anfrage ist {inquiry.status.label}; diese E-Mail wird nicht mehr gesendet.")
    _put_in_queue(session, email, now=now, settings=settings)
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        _set_inquiry_status(
            session, email.inquiry_id, from_states=[InquiryStatus.draft],
            values={"status": InquiryStatus.queued, "queued_at": now, "updated_at": now},
        )
    audit.record(
        session, actor, "email.approve", "outbox_email", email.id,
        {"next_attempt_at": email.next_attempt_at}, now=now,
    )


def approve(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Draft → queued (at the time the weekly limit allows)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.draft:
        raise OutboxError(f"Nur Entwürfe lassen sich freigeben; diese E-Mail ist {email.state.label}.")
    _approve(session, actor, email, now=now, settings=settings)
    session.flush()
    return email


def approve_many(
    session: Session, actor: Actor, email_ids: Sequence[int], now: datetime, *, settings: Optional[Settings] = None
) -> int:
    """Approve several drafts in one transaction (all or none)."""
    for email_id in email_ids:
        approve(session, actor, email_id, now, settings=settings)
    return len(email_ids)


def edit_draft(
    session: Session, actor: Actor, email_id: int, now: datetime, *, subject: str, body: str,
    settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Change subject and text of a draft. `body` is the text above the legal footer; the
    HTML part is made from the same words (escaped), so the preview stays what is sent."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.draft:
        raise OutboxError(f"Nur Entwürfe lassen sich bearbeiten; diese E-Mail ist {email.state.label}.")
    subject = " ".join((subject or "").split())
    if not subject:
        raise OutboxError("Betreff: bitte ausfüllen.")
    if len(subject) > 255:
        raise OutboxError("Betreff: höchstens 255 Zeichen.")
    body = (body or "").replace("\r\n", "\n").strip("\n")
    if not body.strip():
        raise OutboxError("Text: bitte ausfüllen.")
    _, signature = split_signature(email.body_text)
    before = {"subject": email.subject, "body": split_signature(email.body_text)[0]}
    email.subject = subject
    email.body_text = body + "\n" + (signature or "\n")
    email.body_html = mt.render_edited_html(body, mt.footer_from_settings(settings))
    email.updated_at = now
    audit.record(
        session, actor, "email.edit", "outbox_email", email.id,
        {"subject": [before["subject"], subject], "body_changed": before["body"] != body}, now=now,
    )
    session.flush()
    return email


def cancel(session: Session, actor: Actor, email_id: int, now: datetime, *, reason: str = "") -> OutboxEmail:
    """Draft, queued or failed → cancelled. A cancelled inquiry mail sends its inquiry back to draft."""
    actor.require(Permission.edit)
    email = _get_email(session, email_id, for_update=True)
    if email.state == EmailState.sending:
        raise OutboxError("Diese E-Mail wird gerade gesendet und lässt sich nicht mehr stornieren.")
    if email.state not in (EmailState.draft, EmailState.queued, EmailState.failed):
        raise OutboxError(f"Diese E-Mail ist {email.state.label} und lässt sich nicht stornieren.")
    _cancel(session, actor, email, now=now, reason=reason)
    session.flush()
    return email


def _cancel(session: Session, actor: Actor, email: OutboxEmail, *, now: datetime, reason: str) -> None:
    before = email.state
    email.state = EmailState.cancelled
    email.next_attempt_at = None
    email.lease_owner = None
    email.lease_expires_at = None
    if reason:
        email.last_error = reason
    email.updated_at = now
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        _set_inquiry_status(
            session, email.inquiry_id, from_states=[InquiryStatus.queued],
            values={"status": InquiryStatus.draft, "queued_at": None, "updated_at": now},
        )
    audit.record(
        session, actor, "email.cancel", "outbox_email", email.id, {"state": [before, EmailState.cancelled], "reason": reason or None}, now=now
    )


def cancel_pending_for_inquiry(session: Session, actor: Actor, inquiry_id: int, now: datetime, *, reason: str = "") -> int:
    """For Matching: when an inquiry is answered, cancelled or expires, its unsent mails
    (drafts, queued inquiry mails and reminders) are cancelled. Returns how many."""
    actor.require(Permission.edit)
    emails = session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.inquiry_id == inquiry_id,
            OutboxEmail.template.in_([mt.THERAPIST_INQUIRY, mt.THERAPIST_REMINDER]),
            OutboxEmail.state.in_([EmailState.draft, EmailState.queued, EmailState.failed]),
        ).with_for_update()
    ).all()
    for email in emails:
        _cancel(session, actor, email, now=now, reason=reason)
    session.flush()
    return len(emails)


def retry(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Failed → queued with a fresh set of attempts (the weekly limit still applies)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.failed:
        raise OutboxError(f"Nur fehlgeschlagene E-Mails lassen sich erneut versuchen; diese ist {email.state.label}.")
    if email.inquiry_id is not None and email.template in _INQUIRY_OPEN_FOR:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and inquiry.status not in _INQUIRY_OPEN_FOR[email.template]:
            raise OutboxError(f"Die Anfrage ist {inquiry.status.label}; diese E-Mail wird nicht mehr gesendet.")
    previous = email.attempts
    email.attempts = 0
    _put_in_queue(session, email, now=now, settings=settings)
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and (inquiry.attention_reason or "").startswith("E-Mail"):
            inquiry.needs_attention = False
            inquiry.attention_reason = None
    audit.record(
        session, actor, "email.retry", "outbox_email", email.id,
        {"attempts_before": previous, "last_error": email.last_error}, now=now,
    )
    session.flush()
    return email


def resend(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Send a delivered mail once more as a new outbox entry (same content, new Message-ID),
    e.g. when the recipient says it never arrived. For therapists the weekly limit applies."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    original = _get_email(session, email_id)
    if original.state != EmailState.sent:
        raise OutboxError("Nur gesendete E-Mails lassen sich erneut senden; fehlgeschlagene bitte „Erneut versuchen“.")
    copy = OutboxEmail(
        therapist_id=original.therapist_id,
        patient_id=original.patient_id,
        inquiry_id=original.inquiry_id,
        to_address=original.to_address,
        to_name=original.to_name,
        subject=original.subject,
        body_html=original.body_html,
        body_text=original.body_text,
        template=original.template,
        attachment_document_ids=list(original.attachment_document_ids or []),
        state=EmailState.draft,
        attempts=0,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    session.flush()
    _put_in_queue(session, copy, now=now, settings=settings)
    audit.record(session, actor, "email.resend", "outbox_email", copy.id, {"copy_of": original.id}, now=now)
    session.flush()
    return copy


# =========================================================================== therapist documents (PDF forms)


@dataclass(frozen=True)
class DocumentRow:
    id: int
    therapist_id: int
    filename: str
    size_bytes: int
    uploaded_at: datetime


def clean_filename(name: str) -> str:
    """The last path component, no control characters, umlauts kept, ending in .pdf."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip().strip(".")
    if not base:
        base = "Formular"
    if not base.lower().endswith(".pdf"):
        base += ".pdf"
    if len(base) > 200:
        base = base[:196] + ".pdf"
    return base


def add_therapist_document(
    session: Session, actor: Actor, therapist_id: int, filename: str, content: bytes, now: datetime
) -> DocumentRow:
    """Store a PDF form of a therapist (≤ 10 MB, PDF only)."""
    actor.require(Permission.edit)
    if session.get(Therapist, therapist_id) is None:
        raise OutboxError("Diese Therapeut:in gibt es nicht (mehr).")
    if not content:
        raise OutboxError("Datei: die Datei ist leer.")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise OutboxError("Datei: höchstens 10 MB; bitte verkleinern Sie das PDF.")
    if not content.lstrip()[:5] == b"%PDF-":
        raise OutboxError("Datei: nur PDF-Dateien sind erlaubt.")
    doc = TherapistDocument(
        therapist_id=therapist_id, filename=clean_filename(filename), content=content, size_bytes=len(content), uploaded_at=now
    )
    session.add(doc)
    session.flush()
    audit.record(session, actor, "document.add", "therapist_document", doc.id, {"therapist_id": therapist_id, "filename": doc.filename}, now=now)
    return DocumentRow(doc.id, doc.therapist_id, doc.filename, doc.size_bytes, doc.uploaded_at)


def list_therapist_documents(session: Session, actor: Actor, therapist_id: int) -> list[DocumentRow]:
    actor.require(Permission.view)
    rows = session.execute(
        select(
            TherapistDocument.id, TherapistDocument.therapist_id, TherapistDocument.filename,
            TherapistDocument.size_bytes, TherapistDocument.uploaded_at,
        ).where(TherapistDocument.therapist_id == therapist_id).order_by(TherapistDocument.id)
    ).all()
    return [DocumentRow(*r) for r in rows]


def delete_therapist_document(session: Session, actor: Actor, document_id: int, now: datetime) -> None:
    """Remove a form; refused while an unsent mail still wants to attach it."""
    actor.require(Permission.edit)
    doc = session.get(TherapistDocument, document_id)
    if doc is None:
        raise OutboxError("Dieses Formular gibt es nicht (mehr).")
    pending = session.scalars(
        select(OutboxEmail.attachment_document_ids).where(
            OutboxEmail.state.in_([EmailState.draft, EmailState.queued, EmailState.sending, EmailState.failed]),
            OutboxEmail.patient_id.is_not(None),
        )
    ).all()
    if any(document_id in (ids or []) for ids in pending):
        raise OutboxError("Das Formular hängt an einer noch nicht gesendeten E-Mail; stornieren Sie diese zuerst.")
    audit.record(session, actor, "document.delete", "therapist_document", doc.id, {"filename": doc.filename}, now=now)
    session.delete(doc)
    session.flush()


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


def claim_due(
    session: Session, *, owner: str, now: datetime, limit: int, lease_until: datetime, settings: Settings,
    report: Optional[DeliveryReport] = None,
) -> list[ClaimedMail]:
    """Lease up to `limit` due mails to `owner` (one transaction; the caller commits).

    Due: queued with next_attempt_at ≤ now, or sending with an expired lease (its runner
    died). Rows another runner is claiming are skipped (PostgreSQL SKIP LOCKED; SQLite
    serialises writers anyway). The weekly limit is checked here again under a lock on the
    therapist row, so two runners never send to the same therapist at once. Inquiry mails
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
    interval = settings.EMAIL_MIN_INTERVAL_DAYS
    therapist_ids = {r.therapist_id for r in rows if r.therapist_id is not None}
    locked: set[int] = set()
    last_sent: dict[int, datetime] = {}
    busy: set[int] = set()
    if therapist_ids:
        if is_pg:
            locked = set(
                session.scalars(
                    select(Therapist.id).where(Therapist.id.in_(therapist_ids)).with_for_update(skip_locked=True)
                )
            )
        else:
            locked = set(therapist_ids)
        if locked:
            last_sent = dict(
                session.execute(
                    select(OutboxEmail.therapist_id, func.max(OutboxEmail.sent_at))
                    .where(OutboxEmail.therapist_id.in_(locked), OutboxEmail.state == EmailState.sent)
                    .group_by(OutboxEmail.therapist_id)
                ).all()
            )
            busy = set(
                session.scalars(
                    select(OutboxEmail.therapist_id).where(
                        OutboxEmail.therapist_id.in_(locked),
                        OutboxEmail.state == EmailState.sending,
                        OutboxEmail.lease_expires_at >= now,
                    )
                )
            )
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
    claimed_therapists: set[int] = set()
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
        tid = row.therapist_id
        if tid is not None:
            if tid not in locked or tid in claimed_therapists:
                continue  # another runner holds this therapist, or one mail to them is already in this batch
            wait = weekly_limit_wait(now, last_sent.get(tid), interval)
            if wait is None and tid in busy:
                wait = now + timedelta(days=interval)
            if wait is not None:
                row.state = EmailState.queued
                row.next_attempt_at = wait
                row.lease_owner = None
                row.lease_expires_at = None
                row.updated_at = now
                report.deferred += 1
                continue
            claimed_therapists.add(tid)
        row.state = EmailState.sending
        row.lease_owner = owner
        row.lease_expires_at = lease_until
        row.updated_at = now
        if not row.message_id:
            row.message_id = new_message_id(settings.EMAIL_SENDER)
        claimed_rows.append(row)
    session.flush()
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


def mark_sent(session: Session, mail: ClaimedMail, *, owner: str, sent_at: datetime) -> bool:
    """Record a delivery (only while we still hold the lease). The inquiry of an inquiry
    mail becomes sent with this time; the recipient's last contact is updated."""
    result = session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == mail.id, OutboxEmail.state == EmailState.sending, OutboxEmail.lease_owner == owner)
        .values(
            state=EmailState.sent, sent_at=sent_at, attempts=OutboxEmail.attempts + 1, last_error=None,
            lease_owner=None, lease_expires_at=None, next_attempt_at=None, updated_at=sent_at,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return False
    day = _local_date(sent_at)
    if mail.template == mt.THERAPIST_INQUIRY and mail.inquiry_id is not None:
        # A single guarded statement (no read-modify-write that a concurrent edit could make
        # stale and roll back, which would leave a delivered mail "sending"); it bumps the
        # version so a concurrent ORM edit of the inquiry notices.
        moved = session.execute(
            update(Inquiry)
            .where(Inquiry.id == mail.inquiry_id, Inquiry.status.in_([InquiryStatus.draft, InquiryStatus.queued]))
            .values(status=InquiryStatus.sent, sent_at=sent_at, updated_at=sent_at, version=Inquiry.version + 1)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount:
            audit.record(session, SYSTEM, "inquiry.sent", "inquiry", mail.inquiry_id, {"email_id": mail.id}, now=sent_at)
    if mail.therapist_id is not None:
        session.execute(
            update(Therapist).where(Therapist.id == mail.therapist_id).values(last_contact_email_on=day)
            .execution_options(synchronize_session=False)
        )
    if mail.patient_id is not None:
        session.execute(
            update(Patient).where(Patient.id == mail.patient_id).values(last_contact_on=day)
            .execution_options(synchronize_session=False)
        )
    audit.record(session, SYSTEM, "email.sent", "outbox_email", mail.id, {"message_id": mail.message_id}, now=sent_at)
    return True


def record_failure(
    session: Session, mail: ClaimedMail, error: SendError, *, owner: str, now: datetime, settings: Settings
) -> Optional[FailureDecision]:
    """A temporary failure goes back to the queue with backoff; a permanent one, or the last
    allowed attempt, fails with the server's text."""
    decision = decide_after_failure(
        attempts_before=mail.attempts, temporary=error.temporary, now=now, max_attempts=settings.EMAIL_MAX_ATTEMPTS
    )
    text = error.text
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
            for mail, error, at in self._items:
                if error is None:
                    if mark_sent(session, mail, owner=self._owner, sent_at=at):
                        sent.append(mail.id)
                    else:
                        lost += 1
                        log.warning("E-Mail %s gesendet, aber die Lease war verloren", mail.id)
                else:
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


# =========================================================================== reminders


@dataclass
class FollowUpReport:
    calls: int = 0
    reminders: int = 0
    skipped: int = 0

    def summary(self) -> str:
        text = f"Nachfassen: {self.calls} Anrufe geplant, {self.reminders} Erinnerungen in den Postausgang"
        if self.skipped:
            text += f", {self.skipped} übersprungen (keine Kontaktdaten oder gesperrt)"
        return text


def inquiries_needing_follow_up(session: Session, *, now: datetime, follow_up_days: int, limit: int = 500) -> list[int]:
    """Sent e-mail inquiries without an answer for `follow_up_days`, with neither a follow-up
    call nor a reminder yet (a cancelled reminder counts: a coordinator decided)."""
    cutoff = now - timedelta(days=follow_up_days)
    has_call = exists().where(PhoneCall.inquiry_id == Inquiry.id, PhoneCall.purpose == CallPurpose.follow_up)
    has_reminder = exists().where(OutboxEmail.inquiry_id == Inquiry.id, OutboxEmail.template == mt.THERAPIST_REMINDER)
    return list(
        session.scalars(
            select(Inquiry.id)
            .where(
                Inquiry.channel == InquiryChannel.email,
                Inquiry.status == InquiryStatus.sent,
                Inquiry.answered_at.is_(None),
                Inquiry.sent_at <= cutoff,
                ~has_call,
                ~has_reminder,
            )
            .order_by(Inquiry.sent_at, Inquiry.id)
            .limit(limit)
        )
    )


def schedule_follow_ups(session: Session, *, now: datetime, settings: Optional[Settings] = None, limit: int = 500) -> FollowUpReport:
    """The reminder job: per unanswered e-mail inquiry a follow-up call (therapist has a phone
    number; at the next weekday 10:00 until calls are planned in phone hours) or else one
    reminder e-mail. Never both, never twice."""
    settings = _settings(settings)
    report = FollowUpReport()
    for inquiry_id in inquiries_needing_follow_up(session, now=now, follow_up_days=settings.FOLLOW_UP_DAYS, limit=limit):
        inquiry = session.get(Inquiry, inquiry_id, populate_existing=True)
        therapist = inquiry.therapist
        if therapist.status != TherapistStatus.active:
            report.skipped += 1
            continue
        if therapist.phone:
            call = PhoneCall(
                therapist_id=therapist.id,
                inquiry_id=inquiry.id,
                purpose=CallPurpose.follow_up,
                scheduled_start=next_weekday_at(now),
                duration_minutes=settings.CALL_SLOT_MINUTES,
                state=CallState.scheduled,
                attempt=1,
                created_at=now,
                updated_at=now,
            )
            session.add(call)
            session.flush()
            audit.record(session, SYSTEM, "call.follow_up", "phone_call", call.id, {"inquiry_id": inquiry.id}, now=now)
            report.calls += 1
        elif therapist.email:
            try:
                queue_reminder_email(session, SYSTEM, inquiry.id, now, settings=settings)
            except OutboxError as exc:
                log.warning("Erinnerung für Anfrage %s nicht möglich: %s", inquiry.id, exc)
                report.skipped += 1
                continue
            report.reminders += 1
        else:
            report.skipped += 1
    session.flush()
    return report


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
    if term:
        conditions = [OutboxEmail.subject.ilike(f"%{term}%")]
        if actor.can(Permission.view_sensitive):
            conditions += [OutboxEmail.to_name.ilike(f"%{term}%"), OutboxEmail.to_address.ilike(f"%{term}%")]
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
    actor.require(Permission.view)
    t = session.get(Therapist, therapist_id)
    if t is None:
        return None
    return RecipientBrief(t.id, t.full_name, t.email or "", t.phone or "")
