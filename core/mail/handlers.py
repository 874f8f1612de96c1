"""How the mail capability reacts to events (docs/architecture.md, "Events"): when an
inquiry closes (answered, expired, cancelled), its unsent mails are cancelled; when a
patient is placed (an acceptance), the message with the practice's contact details is
drafted for the patient, for a coordinator to check and approve in Postausgang."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.mail import templates as mt
from core.mail.outbox import cancel_pending_for_inquiry, queue_patient_email
from core.mail.rules import OutboxError
from core.platform import events
from core.platform.models import Search, Therapist


def on_inquiry_closed(session: Session, event: events.InquiryClosed) -> dict:
    cancelled = cancel_pending_for_inquiry(session, event.actor, event.inquiry_id, event.now, reason=event.reason)
    return {"mails_cancelled": cancelled}


def on_search_placed(session: Session, event: events.SearchPlaced) -> dict:
    """The patient learns at once whom to contact (not only at the success confirmation):
    a draft "Therapieplatz gefunden" (by e-mail when the practice has an address, else by
    phone). Without a patient e-mail address nothing is drafted; the answer report says so."""
    search = session.get(Search, event.search_id)
    therapist = session.get(Therapist, event.therapist_id)
    if search is None or therapist is None or not (search.patient.email or "").strip():
        return {"patient_mails_missing": 1}
    template = mt.PATIENT_PLACE_FOUND_EMAIL if (therapist.email or "").strip() else mt.PATIENT_PLACE_FOUND_PHONE
    try:
        email = queue_patient_email(
            session, event.actor, search.patient_id, template, event.now, therapist_id=therapist.id, approve=False,
        )
    except OutboxError:
        return {"patient_mails_missing": 1}
    return {"patient_mails_drafted": 1, "patient_mail_ids": [email.id]}


def register() -> None:
    events.subscribe(events.InquiryClosed, on_inquiry_closed)
    events.subscribe(events.SearchPlaced, on_search_placed)
