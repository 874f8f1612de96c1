"""What coordinators do with a received mail: assign it, dismiss it, record the answer in it,
and release an address that was flagged invalid. Each call is one unit of work, audited."""

from __future__ import annotations

from datetime import date, datetime
from typing import Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.inquiries import answers
from core.inquiries.answers import AnswerReport
from core.platform import audit
from core.platform.config import Settings
from core.platform.models import InboxMessage, Inquiry, InvalidEmailAddress, Patient, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import InboxMatch, InboxState, Outcome
from core.platform.addresses import email_key, normalise_email


class InboxError(Exception):
    """A coordinator's action on a received mail cannot be done; the message is German."""


def _load(session: Session, inbox_id: int) -> InboxMessage:
    row = session.get(InboxMessage, inbox_id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if row is None:
        raise InboxError("Diese Nachricht gibt es nicht (mehr).")
    return row


def parse_reference(text: str) -> tuple[str, int]:
    """"A253" → ("inquiry", 253), "P17" → ("patient", 17); raises InboxError otherwise."""
    value = (text or "").strip().upper()
    if len(value) >= 2 and value[0] in ("A", "P") and value[1:].isdigit():
        return ("inquiry" if value[0] == "A" else "patient", int(value[1:]))
    raise InboxError(f"„{text}“ ist keine Anfrage- oder Patientennummer – z. B. A253 oder P17.")


def assign(session: Session, actor: Actor, inbox_id: int, *, now: datetime, inquiry_id: Optional[int] = None,
           patient_id: Optional[int] = None, note: str = "") -> InboxMessage:
    """Assign a mail to an inquiry (its therapist comes along) or to a patient."""
    actor.require(Permission.edit)
    if (inquiry_id is None) == (patient_id is None):
        raise InboxError("Bitte genau eine Anfrage oder eine Patient:in angeben.")
    row = _load(session, inbox_id)
    before = {"inquiry_id": row.inquiry_id, "patient_id": row.patient_id, "state": row.state}
    if inquiry_id is not None:
        inquiry = session.get(Inquiry, inquiry_id)
        if inquiry is None:
            raise InboxError(f"Die Anfrage A{inquiry_id} gibt es nicht.")
        row.inquiry_id, row.therapist_id, row.patient_id = inquiry.id, inquiry.therapist_id, None
    else:
        if session.get(Patient, patient_id) is None:
            raise InboxError(f"Die Patient:in P{patient_id} gibt es nicht.")
        row.patient_id, row.inquiry_id = patient_id, None
    row.state = InboxState.assigned
    row.match = InboxMatch.manual
    row.handled_by, row.handled_at = actor.user_id, now
    row.handled_note = note.strip() or row.handled_note
    row.updated_at = now
    session.flush()
    audit.record(session, actor, "inbox.assign", "inbox_message", row.id,
                 audit.diff(before, {"inquiry_id": row.inquiry_id, "patient_id": row.patient_id, "state": row.state}),
                 now=now)
    return row


def dismiss(session: Session, actor: Actor, inbox_id: int, *, now: datetime, note: str = "") -> InboxMessage:
    """Nothing to do with this mail (newsletter, thanks, handled by phone)."""
    actor.require(Permission.edit)
    row = _load(session, inbox_id)
    if row.state == InboxState.recorded:
        raise InboxError("Zu dieser Nachricht ist die Antwort schon erfasst.")
    before = row.state
    row.state = InboxState.dismissed
    row.handled_by, row.handled_at = actor.user_id, now
    row.handled_note = note.strip() or None
    row.updated_at = now
    audit.record(session, actor, "inbox.dismiss", "inbox_message", row.id,
                 {"state": [before, row.state], "note": row.handled_note}, now=now)
    return row


def record_from_reply(
    session: Session, actor: Actor, inbox_id: int, outcomes: Mapping[int, Outcome | str], *, today: date, now: datetime,
    notes: Optional[Mapping[int, str]] = None, settings: Optional[Settings] = None,
) -> AnswerReport:
    """Record the answer a reply gives, through the inquiries' own answer service (one
    transaction with everything that follows from it), and mark the mail as recorded."""
    actor.require(Permission.edit)
    row = _load(session, inbox_id)
    if row.inquiry_id is None:
        raise InboxError("Diese Nachricht ist keiner Anfrage zugeordnet; bitte zuerst zuordnen.")
    if row.state == InboxState.recorded:
        raise InboxError("Zu dieser Nachricht ist die Antwort schon erfasst.")
    report = answers.record_answer(session, actor, row.inquiry_id, outcomes, today=today, now=now, notes=notes,
                                   settings=settings)
    before = row.state
    row.state = InboxState.recorded
    row.handled_by, row.handled_at = actor.user_id, now
    row.updated_at = now
    audit.record(session, actor, "inbox.record", "inbox_message", row.id,
                 {"state": [before, row.state], "inquiry_id": row.inquiry_id,
                  "outcomes": {str(k): Outcome(v) for k, v in outcomes.items()}}, now=now)
    return report


def clear_invalid_address(session: Session, actor: Actor, address: str, *, now: datetime) -> bool:
    """The address works after all (e.g. the mailbox was full): mails may go to it again."""
    actor.require(Permission.edit)
    flag = session.scalar(select(InvalidEmailAddress).where(
        InvalidEmailAddress.address == normalise_email(address), InvalidEmailAddress.cleared_at.is_(None)))
    if flag is None:
        return False
    flag.cleared_at, flag.cleared_by = now, actor.user_id
    audit.record(session, actor, "email.address_valid", "invalid_email_address", flag.id, {"address": flag.address},
                 now=now)
    return True


def therapist_address_invalid(session: Session, therapist_id: int) -> Optional[str]:
    """The reason the therapist's current e-mail is flagged invalid, else None."""
    return session.scalar(
        select(InvalidEmailAddress.reason)
        .join(Therapist, email_key() == InvalidEmailAddress.address)
        .where(Therapist.id == therapist_id, InvalidEmailAddress.cleared_at.is_(None))
    )
