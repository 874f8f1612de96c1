"""A therapist's status as a state machine, like the Platzsuche in core.registry.searches:
one table says which action leads from which status to which, and what each action needs.

    active   --block-->      blocked    (reason required; no inquiries any more)
    active   --deactivate--> inactive   (reason optional; retired, no statutory patients …)
    blocked  --deactivate--> inactive
    inactive --block-->      blocked
    blocked  --unblock-->    active
    inactive --unblock-->    active     (shown as "Wieder aktiv setzen")

Pages ask `allowed_actions(status)` (through the detail view-model) instead of deciding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Optional

from sqlalchemy.orm import Session

from core.platform import audit, events
from core.platform import validation as v
from core.platform.models import Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import TherapistStatus
from core.registry.records import RegistryError

NOT_FOUND = "Diese Therapeut:in existiert nicht (mehr)."


class TherapistError(RegistryError):
    """A therapist action that is not possible; the message is German."""


class TherapistAction(StrEnum):
    block = "block"
    unblock = "unblock"
    deactivate = "deactivate"


_A, _S = TherapistAction, TherapistStatus
# action: (the statuses it may start from, the status it leads to)
TABLE: dict[TherapistAction, tuple[frozenset[TherapistStatus], TherapistStatus]] = {
    _A.block: (frozenset({_S.active, _S.inactive}), _S.blocked),
    _A.unblock: (frozenset({_S.blocked, _S.inactive}), _S.active),
    _A.deactivate: (frozenset({_S.active, _S.blocked}), _S.inactive),
}
# the same as (status, action) -> next status, in the order the actions are offered
TRANSITIONS: dict[tuple[TherapistStatus, TherapistAction], TherapistStatus] = {
    (start, action): target for action, (starts, target) in TABLE.items() for start in _S if start in starts
}


@dataclass(frozen=True)
class ActionInfo:
    """How an action is offered: German button label, whether a reason is required, and the
    audit action; `unavailable` (the therapist gets no inquiries afterwards) publishes
    TherapistUnavailable so other capabilities withdraw and cancel."""

    label: str
    reason_required: bool
    unavailable_reason: Optional[str]  # German reason for TherapistUnavailable, None: stays available


ACTIONS: dict[TherapistAction, ActionInfo] = {
    TherapistAction.block: ActionInfo("Sperren", True, "Therapeut:in gesperrt"),
    TherapistAction.unblock: ActionInfo("Entsperren", False, None),
    TherapistAction.deactivate: ActionInfo("Inaktiv setzen", False, "Therapeut:in inaktiv gesetzt"),
}

_ALREADY = {
    TherapistStatus.blocked: "ist bereits gesperrt",
    TherapistStatus.active: "ist bereits aktiv",
    TherapistStatus.inactive: "ist bereits inaktiv",
}


def allowed_actions(current: TherapistStatus) -> list[TherapistAction]:
    return [a for (s, a) in TRANSITIONS if s == current]


def action_label(current: TherapistStatus, action: TherapistAction) -> str:
    """"Entsperren" for a blocked therapist, "Wieder aktiv setzen" for an inactive one."""
    if action == TherapistAction.unblock and current == TherapistStatus.inactive:
        return "Wieder aktiv setzen"
    return ACTIONS[action].label


def next_status(current: TherapistStatus, action: TherapistAction, *, name: str = "Die Therapeut:in",
                since: Optional[date] = None) -> TherapistStatus:
    """The status after `action`, or TherapistError naming why it is not possible."""
    target = TRANSITIONS.get((current, action))
    if target is not None:
        return target
    already = TABLE[action][1]
    text = f"{name} {_ALREADY[already]}"
    if already == TherapistStatus.blocked and since is not None:
        text += f" (seit {since:%d.%m.%Y})"
    raise TherapistError(text + ".")


def change_status(
    session: Session, actor: Actor, therapist_id: int, action: TherapistAction, *, today: date, now: datetime,
    reason: Optional[str] = None,
) -> Therapist:
    """Run one transition of the table: check, stamp the date and reason, audit, publish."""
    actor.require(Permission.edit)
    info = ACTIONS[action]
    if info.reason_required:
        try:
            reason = v.validate_reason(reason, what="Sperrgrund")
        except v.FieldError as exc:
            raise v.ValidationErrors({"reason": exc.message}) from None
    else:
        reason = (reason or "").strip() or None
    t = session.get(Therapist, therapist_id)
    if t is None:
        raise TherapistError(NOT_FOUND)
    target = next_status(t.status, action, name=t.full_name, since=t.status_changed_on)
    old = t.status
    t.status, t.status_reason, t.status_changed_on, t.updated_at = target, reason, today, now
    session.flush()
    detail_key = "note" if action == TherapistAction.unblock else "reason"
    audit.record(session, actor, f"therapist.{action.value}", "therapist", t.id, {"status": [old, t.status], detail_key: reason}, now=now)
    if info.unavailable_reason:
        events.publish(session, events.TherapistUnavailable(
            actor=actor, now=now, therapist_id=t.id, status=t.status.value, reason=info.unavailable_reason,
        ))
    return t


def block(session: Session, actor: Actor, therapist_id: int, reason: str, *, today: date, now: datetime) -> Therapist:
    """Blocked therapists get no inquiries; the reason is required and the date stamped."""
    return change_status(session, actor, therapist_id, TherapistAction.block, today=today, now=now, reason=reason)


def unblock(session: Session, actor: Actor, therapist_id: int, *, today: date, now: datetime, note: Optional[str] = None) -> Therapist:
    """Back to active (from blocked or inactive)."""
    return change_status(session, actor, therapist_id, TherapistAction.unblock, today=today, now=now, reason=note)


def deactivate(session: Session, actor: Actor, therapist_id: int, *, today: date, now: datetime, reason: Optional[str] = None) -> Therapist:
    """Inactive: no longer practising or not taking statutory patients (reason optional)."""
    return change_status(session, actor, therapist_id, TherapistAction.deactivate, today=today, now=now, reason=reason)
