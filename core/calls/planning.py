"""Planning calls against the database: load the booked calls into a `CallBoard`, find each
therapist's Bundesland (public holidays) from the PLZ table, and write planned calls.

The rules are in `slots` and `schedule` (pure); this module only loads and writes. One board
per planning run, so planning n calls reads the booked calls once (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.calls import slots
from core.calls.schedule import CallBoard, CallRequest, PlannedCall
from core.platform.config import Settings
from core.platform.models import AuditEntry, PhoneCall, PlzCentroid, Therapist
from core.platform.permissions import Actor
from core.platform.vocab import CallPurpose, CallState

# A booked call longer than this is unusual; the board loads calls starting this much earlier.
_LONGEST_CALL = timedelta(hours=2)


@dataclass(frozen=True)
class Callee:
    """What planning needs of a therapist."""

    therapist_id: int
    phone: Optional[str]
    phone_hours: Optional[str]
    state: Optional[str]
    phone_invalid: bool


def callees(session: Session, therapist_ids: Iterable[int]) -> dict[int, Callee]:
    """Phone, phone hours and Bundesland (from the PLZ table) of many therapists, one query per 1,000."""
    ids = sorted(set(therapist_ids))
    out: dict[int, Callee] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = session.execute(
            select(Therapist.id, Therapist.phone, Therapist.phone_hours, PlzCentroid.state_code, Therapist.phone_invalid)
            .outerjoin(PlzCentroid, PlzCentroid.plz == Therapist.plz)
            .where(Therapist.id.in_(chunk))
        )
        for tid, phone, hours, state, invalid in rows:
            out[tid] = Callee(tid, phone, hours, _known_state(state), bool(invalid))
    return out


def _known_state(code: Optional[str]) -> Optional[str]:
    try:
        return slots.normalise_state(code) or None
    except ValueError:
        return None  # an odd code in the PLZ table: nationwide holidays only


def board_for(session: Session, *, start: datetime, end: datetime, settings: Settings) -> CallBoard:
    """A board with every scheduled call that may overlap ``[start, end)``."""
    board = CallBoard(
        callers=settings.CALLERS, slot_minutes=settings.CALL_SLOT_MINUTES,
        fallback_hours=settings.CALL_FALLBACK_HOURS, horizon_days=settings.CALL_HORIZON_DAYS,
    )
    rows = session.execute(
        select(PhoneCall.scheduled_start, PhoneCall.duration_minutes, PhoneCall.therapist_id, PhoneCall.assigned_to)
        .where(
            PhoneCall.state == CallState.scheduled,
            PhoneCall.scheduled_start >= start - _LONGEST_CALL,
            PhoneCall.scheduled_start < end,
        )
    )
    for begin, minutes, therapist_id, assignee in rows:
        board.book(begin, minutes, therapist_id=therapist_id, assignee=assignee)
    return board


def board_around(session: Session, earliest: Iterable[datetime], *, settings: Settings) -> CallBoard:
    moments = list(earliest)
    start = min(moments)
    end = max(moments) + timedelta(days=settings.CALL_HORIZON_DAYS, hours=1)
    return board_for(session, start=start, end=end, settings=settings)


def request_for(callee: Callee, key, earliest: datetime, *, assignee: Optional[int] = None) -> CallRequest:
    return CallRequest(key, callee.therapist_id, callee.phone_hours, callee.state, earliest, assignee=assignee)


@dataclass(frozen=True)
class NewCall:
    """A planned call to write: the plan plus what the row needs besides."""

    plan: PlannedCall
    inquiry_id: Optional[int]
    purpose: CallPurpose
    attempt: int = 1
    previous_call_id: Optional[int] = None
    notes: Optional[str] = None


def insert_calls(
    session: Session, actor: Actor, calls: Sequence[NewCall], *, now: datetime, action: str,
) -> list[int]:
    """Write planned calls (those with a start) and one audit entry each, in bulk; returns ids."""
    rows = []
    for c in calls:
        p = c.plan
        if p.start is None:
            continue
        rows.append(dict(
            therapist_id=p.therapist_id, inquiry_id=c.inquiry_id, purpose=c.purpose,
            scheduled_start=p.start, duration_minutes=p.minutes, state=CallState.scheduled,
            attempt=c.attempt, previous_call_id=c.previous_call_id, assigned_to=p.assignee,
            uses_fallback=p.uses_fallback, fixed_time=False, notes=c.notes, created_at=now, updated_at=now,
        ))
    if not rows:
        return []
    session.flush()
    ids = list(session.scalars(insert(PhoneCall).returning(PhoneCall.id, sort_by_parameter_order=True), rows))
    session.execute(insert(AuditEntry), [
        dict(at=now, user_id=actor.user_id, actor_name=actor.username, action=action, entity="phone_call",
             entity_id=cid, changes={"inquiry_id": row["inquiry_id"], "start": row["scheduled_start"].isoformat(),
                                     "attempt": row["attempt"], "fallback": row["uses_fallback"]})
        for cid, row in zip(ids, rows)
    ])
    return ids
