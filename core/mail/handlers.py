"""How the mail capability reacts to events (docs/architecture.md, "Events"): when an
inquiry closes (answered, expired, cancelled), its unsent mails are cancelled."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.mail.outbox import cancel_pending_for_inquiry
from core.platform import events


def on_inquiry_closed(session: Session, event: events.InquiryClosed) -> dict:
    cancelled = cancel_pending_for_inquiry(session, event.actor, event.inquiry_id, event.now, reason=event.reason)
    return {"mails_cancelled": cancelled}


def register() -> None:
    events.subscribe(events.InquiryClosed, on_inquiry_closed)
