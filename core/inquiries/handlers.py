"""How the inquiries capability reacts to other capabilities' events (docs/architecture.md,
"Events"): a paused or cancelled search leaves its open inquiries; a blocked or inactive
therapist's unsent inquiries are cancelled. (A closed inquiry's pending calls end in
core.calls.handlers.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.inquiries.answers import withdraw_search
from core.inquiries.lifecycle import cancel_inquiry
from core.inquiries.loading import InquiryError
from core.platform import events
from core.platform.models import Inquiry
from core.platform.vocab import InquiryStatus


def on_search_stopped(session: Session, event: events.SearchStopped) -> None:
    withdraw_search(session, event.actor, event.search_id, now=event.now, reason=event.reason)


def on_therapist_unavailable(session: Session, event: events.TherapistUnavailable) -> dict:
    """Inquiries not yet sent (drafts, queued mails not yet handed to SMTP) are cancelled
    with their mails and calls, so the patients count again. Sent inquiries stay open:
    the practice may still answer."""
    ids = session.scalars(
        select(Inquiry.id).where(
            Inquiry.therapist_id == event.therapist_id,
            Inquiry.status.in_([InquiryStatus.draft, InquiryStatus.queued]),
        ).order_by(Inquiry.id)
    ).all()
    cancelled = 0
    for inquiry_id in ids:
        try:
            cancel_inquiry(session, event.actor, inquiry_id, now=event.now, reason=event.reason)
            cancelled += 1
        except InquiryError:
            pass  # its mail is being sent right now: it counts as sent and stays open
    return {"inquiries_cancelled": cancelled}


def register() -> None:
    events.subscribe(events.SearchStopped, on_search_stopped)
    events.subscribe(events.TherapistUnavailable, on_therapist_unavailable)
