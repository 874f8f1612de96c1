"""Domain events and the bus that hands them to the capabilities that react.

A capability that changes something emits an event (`publish(session, event)`); handlers
registered by other capabilities react in the same session, so the consequences commit
or roll back with the action (one unit of work). The events are the capabilities' shared
language and live here, in the platform, so that neither side imports the other.

Which handler reacts to which event is wired once, in `core.bootstrap`; publishing before
that raises instead of silently skipping consequences. See docs/architecture.md, "Events".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Optional

from sqlalchemy.orm import Session

from core.platform.permissions import Actor


@dataclass(frozen=True)
class Event:
    """Base of every domain event: who acted and when."""

    actor: Actor
    now: datetime


@dataclass(frozen=True)
class InquiryClosed(Event):
    """An inquiry stopped being open: answered, expired or cancelled. Pending mails and
    calls for it are cancelled by their capabilities."""

    inquiry_id: int
    therapist_id: int
    status: str  # InquiryStatus value: answered, expired, cancelled
    reason: str


@dataclass(frozen=True)
class SearchPlaced(Event):
    """A search got an acceptance (first acceptance wins). The search leaves its other
    open inquiries."""

    search_id: int
    inquiry_id: int
    therapist_id: int


@dataclass(frozen=True)
class SearchStopped(Event):
    """A search was paused or cancelled: it leaves every open inquiry."""

    search_id: int
    action: str  # SearchAction value: pause, cancel
    reason: str


@dataclass(frozen=True)
class TherapistUnavailable(Event):
    """A therapist was blocked or set inactive: unsent inquiries and pending calls end."""

    therapist_id: int
    status: str  # TherapistStatus value: blocked, inactive
    reason: str


@dataclass(frozen=True)
class TherapistAnswered(Event):
    """A therapist answered (any outcome): the practice cools down until `cooling_until`."""

    therapist_id: int
    inquiry_id: Optional[int]
    cooling_until: date


Handler = Callable[[Session, Any], Any]

_handlers: dict[type, list[Handler]] = defaultdict(list)
_wired = False


class BusNotWired(RuntimeError):
    pass


def subscribe(event_type: type, handler: Handler) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def mark_wired() -> None:
    global _wired
    _wired = True


def is_wired() -> bool:
    return _wired


def handlers_for(event_type: type) -> list[Handler]:
    return list(_handlers.get(event_type, ()))


def publish(session: Session, event: Event) -> list[Any]:
    """Run every handler of `event` now, in `session`; returns their results in order.
    An exception in a handler propagates, so the whole unit of work rolls back."""
    if not _wired:
        raise BusNotWired("Event bus not wired: call core.bootstrap.bootstrap() at start-up.")
    return [handler(session, event) for handler in handlers_for(type(event))]


@dataclass(frozen=True)
class EmailBounced(Event):
    """A mail to `address` bounced permanently (core.inbox): the address is flagged invalid,
    the mail is failed. The inquiry (if any) cannot be answered by e-mail now; the calls
    capability falls back to a phone call."""

    address: str
    reason: str
    outbox_email_id: Optional[int]
    therapist_id: Optional[int]
    patient_id: Optional[int]
    inquiry_id: Optional[int]


@dataclass(frozen=True)
class OutOfOffice(Event):
    """An auto-reply says the therapist is away until `back_on` (the first day back): a
    follow-up call for `inquiry_id` may move to that day or later (calls capability)."""

    therapist_id: int
    inquiry_id: Optional[int]
    back_on: date


@dataclass(frozen=True)
class PhoneInquiryQueued(Event):
    """A phone inquiry (therapist without e-mail) was sent: its call goes on the call list.
    The calls capability answers with {"call_id": …, "call_at": …} (None when no slot fits)."""

    inquiry_id: int
    therapist_id: int


@dataclass(frozen=True)
class PhoneInquiryCalled(Event):
    """A phone inquiry was presented on the phone (e.g. "Anruf geführt" in Vermittlung): the
    inquiry counts as sent, and its call still on the list is done."""

    inquiry_id: int
