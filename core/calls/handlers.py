"""How the calls capability reacts to other capabilities' events (docs/architecture.md,
"Events"): a phone inquiry that was sent gets its call, and that call is done once the
inquiry was presented on the phone; a closed inquiry's pending calls end
(answered, expired, cancelled); a blocked or inactive therapist's pending calls end; a
bounced inquiry mail falls back to a call; an out-of-office reply postpones follow-up calls."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.calls import services
from core.platform import events


def on_phone_inquiry_queued(session: Session, event: events.PhoneInquiryQueued) -> dict:
    return services.plan_inquiry_call(session, event.actor, event.inquiry_id, event.therapist_id, now=event.now)


def on_phone_inquiry_called(session: Session, event: events.PhoneInquiryCalled) -> dict:
    n = services.complete_inquiry_calls(session, event.actor, event.inquiry_id, now=event.now)
    return {"calls_done": n}


def on_inquiry_closed(session: Session, event: events.InquiryClosed) -> dict:
    n = services.cancel_pending_calls(session, event.actor, inquiry_id=event.inquiry_id, now=event.now, reason=event.reason)
    return {"calls_cancelled": n}


def on_therapist_unavailable(session: Session, event: events.TherapistUnavailable) -> dict:
    n = services.cancel_pending_calls(session, event.actor, therapist_id=event.therapist_id, now=event.now,
                                      reason=event.reason or "Therapeut:in nicht mehr verfügbar")
    return {"calls_cancelled": n}


def on_email_bounced(session: Session, event: events.EmailBounced) -> dict:
    """A therapist's inquiry mail bounced: the open inquiry falls back to a phone call."""
    if event.inquiry_id is None or event.therapist_id is None:
        return {}
    return services.fall_back_to_call(session, event.actor, event.inquiry_id, event.therapist_id, now=event.now)


def on_out_of_office(session: Session, event: events.OutOfOffice) -> dict:
    """An auto-reply names the first day back: pending follow-up calls move there."""
    n = services.postpone_follow_ups(session, event.actor, event.therapist_id, event.back_on, now=event.now)
    return {"calls_postponed": n}


def register() -> None:
    events.subscribe(events.PhoneInquiryQueued, on_phone_inquiry_queued)
    events.subscribe(events.PhoneInquiryCalled, on_phone_inquiry_called)
    events.subscribe(events.InquiryClosed, on_inquiry_closed)
    events.subscribe(events.TherapistUnavailable, on_therapist_unavailable)
    events.subscribe(events.EmailBounced, on_email_bounced)
    events.subscribe(events.OutOfOffice, on_out_of_office)
