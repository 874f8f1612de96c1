"""Call services: plan an inquiry's call, record what happened on the phone, reschedule,
cancel, assign. Each takes the acting user and `now`, writes audit entries in the same
transaction and leaves the commit to the caller's unit of work.

Results (issue 10, point 5, as coordinators say them, core.platform.vocab.CallResult):

- *erreicht*: the call is done. With per-patient outcomes the answer is recorded through the
  same answer path as Vermittlung (`core.inquiries.answers.record_answer`), so placement,
  withdrawal, cooling and cancellations happen once, in this transaction. Without outcomes a
  phone inquiry counts as sent (the therapist heard it) and waits for the answer.
- *nicht erreicht*, *besetzt*, *Anrufbeantworter*: a failed attempt. The next attempt is
  planned in a window on a later local day, until MAX_CALL_ATTEMPTS attempts have failed; then
  the inquiry is flagged "braucht Aufmerksamkeit".
- *Rückruf vereinbart*: the call is done and a new call is booked at the agreed time (it may
  lie outside the phone hours and is never moved by planning).
- *falsche Nummer*: the therapist's phone is flagged for correction, their other pending
  calls end, the inquiry is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Mapping, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calls import planning, slots
from core.inquiries import answers as inquiry_answers
from core.inquiries import lifecycle as inquiry_lifecycle
from core.inquiries.loading import InquiryError, reference
from core.platform import audit
from core.platform.config import Settings, get_settings
from core.platform.locks import lock_rows
from core.platform.models import Inquiry, PhoneCall, Therapist, User
from core.platform.permissions import Actor, Permission
from core.platform.vocab import CallPurpose, CallResult, CallState, InquiryChannel, InquiryStatus, Outcome

FAILED_RESULTS = frozenset({CallResult.not_reached, CallResult.busy, CallResult.voicemail})
ATTENTION_ATTEMPTS = "Braucht Aufmerksamkeit: {n} Anrufversuche ohne Erfolg – bitte anders nachfassen."
ATTENTION_NO_SLOT = "Braucht Aufmerksamkeit: kein freier Anruftermin in den Telefonzeiten innerhalb von {days} Tagen."
ATTENTION_WRONG_NUMBER = "Braucht Aufmerksamkeit: Telefonnummer von {name} ist falsch – bitte korrigieren."
ATTENTION_NO_PHONE_INQUIRY = "Braucht Aufmerksamkeit: die Telefonnummer fehlt oder ist als falsch markiert – kein Anruf geplant."
ATTENTION_NO_PHONE = "Braucht Aufmerksamkeit: keine Telefonnummer für den Nachfass-Anruf – bitte Kontaktdaten ergänzen."


class CallError(ValueError):
    """A call action that is not possible; the message is German."""


def _settings(settings: Optional[Settings]) -> Settings:
    return settings if settings is not None else get_settings()


def next_local_day(moment: datetime) -> datetime:
    """Midnight (Europe/Berlin) of the local day after `moment`: "a later day" for retries."""
    local = moment.astimezone(slots.BERLIN).date() + timedelta(days=1)
    return datetime.combine(local, time(0), tzinfo=slots.BERLIN)


def _load_call(session: Session, call_id: int, *, lock: bool = True) -> PhoneCall:
    stmt = select(PhoneCall).where(PhoneCall.id == call_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    call = session.scalars(stmt).one_or_none()
    if call is None:
        raise CallError("Diesen Anruf gibt es nicht (mehr).")
    return call


def _lock_call_and_matter(
    session: Session, call_id: int, outcomes: Optional[Mapping[int, Outcome | str]] = None
) -> PhoneCall:
    """The call, locked after what recording its result may change: its therapist and
    inquiry (a flag), and with an answer everything the answer locks (practice, inquiries,
    searches). Everyone else locks those before the calls (the global lock order,
    core.platform.locks); locking the call first deadlocked with an answer by mail that
    cancels the inquiry's calls (bench/load.py)."""
    head = session.execute(
        select(PhoneCall.therapist_id, PhoneCall.inquiry_id).where(PhoneCall.id == call_id)
    ).one_or_none()
    if head is None:
        raise CallError("Diesen Anruf gibt es nicht (mehr).")
    if outcomes and head.inquiry_id is not None:
        try:
            inquiry_answers.lock_for_answer(session, head.inquiry_id, outcomes)
        except InquiryError as exc:
            raise CallError(str(exc)) from None
    lock_rows(session, therapists=[head.therapist_id], inquiries=[head.inquiry_id])
    return _load_call(session, call_id)


def _require_open(call: PhoneCall) -> None:
    if call.state != CallState.scheduled:
        raise CallError(f"Dieser Anruf ist bereits {call.state.label}.")


def flag_inquiry(session: Session, actor: Actor, inquiry_id: Optional[int], reason: str, *, now: datetime) -> None:
    if inquiry_id is None:
        return
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or (inquiry.needs_attention and inquiry.attention_reason == reason):
        return
    inquiry.needs_attention = True
    inquiry.attention_reason = reason
    inquiry.updated_at = now
    audit.record(session, actor, "call.attention", "inquiry", inquiry_id, {"reason": reason}, now=now)


# =========================================================================== planning one call


def plan_call(
    session: Session, actor: Actor, *, therapist_id: int, inquiry_id: Optional[int], purpose: CallPurpose,
    earliest: datetime, now: datetime, settings: Settings, attempt: int = 1, previous_call_id: Optional[int] = None,
    assignee: Optional[int] = None, action: str = "call.inquiry",
) -> tuple[Optional[PhoneCall], planning.PlannedCall]:
    """Plan one call in the therapist's phone hours (or the fallback) under the capacity."""
    callee = planning.callees(session, [therapist_id])[therapist_id]
    board = planning.board_around(session, [earliest], settings=settings)
    plan = board.place(planning.request_for(callee, inquiry_id, earliest, assignee=assignee))
    ids = planning.insert_calls(
        session, actor,
        [planning.NewCall(plan, inquiry_id, purpose, attempt=attempt, previous_call_id=previous_call_id)],
        now=now, action=action,
    )
    return (session.get(PhoneCall, ids[0]) if ids else None), plan


def plan_inquiry_call(
    session: Session, actor: Actor, inquiry_id: int, therapist_id: int, *, now: datetime,
    settings: Optional[Settings] = None,
) -> dict:
    """A phone inquiry was sent: its call goes on the list in the next free slot."""
    settings = _settings(settings)
    callee = planning.callees(session, [therapist_id])[therapist_id]
    if not callee.phone or callee.phone_invalid:
        flag_inquiry(session, actor, inquiry_id, ATTENTION_NO_PHONE_INQUIRY, now=now)
        return {"call_id": None, "call_at": None, "reason": ATTENTION_NO_PHONE_INQUIRY}
    call, plan = plan_call(
        session, actor, therapist_id=therapist_id, inquiry_id=inquiry_id, purpose=CallPurpose.inquiry,
        earliest=now, now=now, settings=settings,
    )
    if call is None:
        flag_inquiry(session, actor, inquiry_id, ATTENTION_NO_SLOT.format(days=settings.CALL_HORIZON_DAYS), now=now)
        return {"call_id": None, "call_at": None, "reason": plan.reason}
    return {"call_id": call.id, "call_at": call.scheduled_start, "uses_fallback": call.uses_fallback}


def fall_back_to_call(
    session: Session, actor: Actor, inquiry_id: int, therapist_id: int, *, now: datetime,
    settings: Optional[Settings] = None,
) -> dict:
    """The inquiry's mail bounced: unless a call for it is already on the list, plan one
    (or flag the inquiry when the therapist has no usable phone)."""
    settings = _settings(settings)
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or inquiry.status not in (InquiryStatus.queued, InquiryStatus.sent):
        return {}
    pending = session.scalar(
        select(PhoneCall.id).where(PhoneCall.inquiry_id == inquiry_id, PhoneCall.state == CallState.scheduled).limit(1)
    )
    if pending is not None:
        return {"call_id": pending}
    callee = planning.callees(session, [therapist_id])[therapist_id]
    if not callee.phone or callee.phone_invalid:
        flag_inquiry(session, actor, inquiry_id, ATTENTION_NO_PHONE_INQUIRY, now=now)
        return {"call_id": None}
    call, plan = plan_call(
        session, actor, therapist_id=therapist_id, inquiry_id=inquiry_id, purpose=CallPurpose.follow_up,
        earliest=now, now=now, settings=settings,
    )
    if call is None:
        flag_inquiry(session, actor, inquiry_id, ATTENTION_NO_SLOT.format(days=settings.CALL_HORIZON_DAYS), now=now)
        return {"call_id": None}
    return {"call_id": call.id, "call_at": call.scheduled_start}


def postpone_follow_ups(
    session: Session, actor: Actor, therapist_id: int, back_on: date, *, now: datetime,
    settings: Optional[Settings] = None,
) -> int:
    """Scheduled calls to a therapist who is away move to the first free slot in the phone
    hours from the first day back (a fixed-time callback agreed with the practice stays)."""
    settings = _settings(settings)
    first_day = datetime.combine(back_on, time.min, tzinfo=slots.BERLIN)
    calls = session.scalars(
        select(PhoneCall).where(
            PhoneCall.therapist_id == therapist_id, PhoneCall.state == CallState.scheduled,
            PhoneCall.scheduled_start < first_day, PhoneCall.fixed_time.is_(False),
        ).order_by(PhoneCall.id).with_for_update()
    ).all()
    if not calls:
        return 0
    callee = planning.callees(session, [therapist_id])[therapist_id]
    board = planning.board_around(session, [first_day], settings=settings)
    moved = 0
    for call in calls:
        plan = board.place(planning.request_for(callee, call.inquiry_id, first_day, assignee=call.assigned_to))
        if plan.start is None:
            continue  # nothing fits within the horizon: the call stays; the list shows it as due
        audit.record(session, actor, "call.reschedule", "phone_call", call.id,
                     {"from": call.scheduled_start, "to": plan.start, "reason": "Abwesenheitsnotiz"}, now=now)
        call.scheduled_start = plan.start
        call.updated_at = now
        moved += 1
    session.flush()
    return moved


# =========================================================================== results


@dataclass
class CallReport:
    call_id: int
    result: CallResult
    next_call_id: Optional[int] = None
    next_call_at: Optional[datetime] = None
    flagged: Optional[str] = None
    answer: Optional[inquiry_answers.AnswerReport] = None
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"Ergebnis gespeichert: {self.result.label}."]
        if self.answer is not None:
            parts.append(self.answer.summary())
        parts.extend(self.messages)
        if self.next_call_at is not None:
            local = self.next_call_at.astimezone(slots.BERLIN)
            parts.append(f"Nächster Anruf: {local:%d.%m.%Y %H:%M}.")
        if self.flagged:
            parts.append(self.flagged)
        return " ".join(parts)


def failed_attempts(session: Session, call: PhoneCall) -> int:
    """Failed attempts for the same matter (this inquiry, or this callee without one)."""
    cond = [PhoneCall.state == CallState.failed, PhoneCall.result.in_(list(FAILED_RESULTS))]
    if call.inquiry_id is not None:
        cond.append(PhoneCall.inquiry_id == call.inquiry_id)
    else:
        cond += [PhoneCall.inquiry_id.is_(None), PhoneCall.therapist_id == call.therapist_id,
                 PhoneCall.patient_id == call.patient_id]
    return session.scalar(select(func.count()).select_from(PhoneCall).where(*cond)) or 0


def record_call_result(
    session: Session,
    actor: Actor,
    call_id: int,
    result: CallResult | str,
    *,
    now: datetime,
    today: date,
    note: Optional[str] = None,
    outcomes: Optional[Mapping[int, Outcome | str]] = None,
    outcome_notes: Optional[Mapping[int, str]] = None,
    waitlist_until: Optional[Mapping[int, Optional[date]]] = None,
    callback_at: Optional[datetime] = None,
    settings: Optional[Settings] = None,
) -> CallReport:
    """Record what happened on a scheduled call (see the module doc). One unit of work."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    result = CallResult(result)
    call = _lock_call_and_matter(session, call_id, outcomes if result == CallResult.reached else None)
    _require_open(call)
    if result == CallResult.callback:
        if callback_at is None:
            raise CallError("Bitte den vereinbarten Rückruf-Termin angeben (Datum und Uhrzeit).")
        slots.require_aware(callback_at, "callback_at")
        if callback_at < now - timedelta(minutes=1):
            raise CallError("Der Rückruf-Termin liegt in der Vergangenheit – bitte einen späteren Zeitpunkt wählen.")
    if outcomes and result != CallResult.reached:
        raise CallError("Eine Antwort der Praxis lässt sich nur mit „erreicht“ erfassen.")
    report = CallReport(call_id=call.id, result=result)
    call.result = result
    call.notes = (note or "").strip() or None
    call.done_at = now
    call.done_by = actor.user_id
    call.updated_at = now
    call.state = CallState.failed if (result in FAILED_RESULTS or result == CallResult.wrong_number) else CallState.done
    call.outcome = result.label
    session.flush()
    audit.record(session, actor, "call.result", "phone_call", call.id,
                 {"result": result, "inquiry_id": call.inquiry_id, "note": call.notes}, now=now)
    therapist = session.get(Therapist, call.therapist_id) if call.therapist_id else None
    if therapist is not None and result != CallResult.wrong_number:
        therapist.last_contact_phone_on = today if result in (CallResult.reached, CallResult.callback) else therapist.last_contact_phone_on

    if result == CallResult.reached:
        _reached(session, actor, call, report, now=now, today=today, outcomes=outcomes, outcome_notes=outcome_notes,
                 waitlist_until=waitlist_until, settings=settings)
    elif result in FAILED_RESULTS:
        _failed(session, actor, call, report, now=now, settings=settings)
    elif result == CallResult.callback:
        nxt = PhoneCall(
            therapist_id=call.therapist_id, patient_id=call.patient_id, inquiry_id=call.inquiry_id, purpose=call.purpose,
            scheduled_start=callback_at, duration_minutes=call.duration_minutes, state=CallState.scheduled,
            attempt=call.attempt + 1, previous_call_id=call.id, assigned_to=call.assigned_to or actor.user_id,
            uses_fallback=False, fixed_time=True, created_at=now, updated_at=now,
        )
        session.add(nxt)
        session.flush()
        audit.record(session, actor, "call.callback", "phone_call", nxt.id,
                     {"previous_call_id": call.id, "start": callback_at}, now=now)
        report.next_call_id, report.next_call_at = nxt.id, nxt.scheduled_start
    elif result == CallResult.wrong_number and therapist is not None:
        therapist.phone_invalid = True
        therapist.updated_at = now
        audit.record(session, actor, "therapist.phone_invalid", "therapist", therapist.id,
                     {"phone": therapist.phone, "call_id": call.id}, now=now)
        cancel_pending_calls(session, actor, therapist_id=therapist.id, now=now, reason="Telefonnummer falsch")
        report.flagged = ATTENTION_WRONG_NUMBER.format(name=therapist.full_name)
        flag_inquiry(session, actor, call.inquiry_id, report.flagged, now=now)
    session.flush()
    return report


def _reached(session, actor, call, report, *, now, today, outcomes, outcome_notes, waitlist_until, settings) -> None:
    if call.inquiry_id is None:
        return
    inquiry = session.get(Inquiry, call.inquiry_id)
    if outcomes:
        try:
            report.answer = inquiry_answers.record_answer(
                session, actor, call.inquiry_id, outcomes, today=today, now=now, notes=outcome_notes,
                waitlist_until=waitlist_until, settings=settings,
            )
        except InquiryError as exc:
            raise CallError(str(exc)) from None
    elif inquiry.channel == InquiryChannel.phone and inquiry.status == InquiryStatus.queued:
        inquiry_lifecycle.mark_call_made(session, actor, inquiry.id, now=now)
        report.messages.append(f"Die Anfrage {reference(inquiry.id)} gilt jetzt als gesendet.")


def _failed(session, actor, call, report, *, now, settings) -> None:
    failures = failed_attempts(session, call)
    if failures >= settings.MAX_CALL_ATTEMPTS:
        report.flagged = ATTENTION_ATTEMPTS.format(n=failures)
        flag_inquiry(session, actor, call.inquiry_id, report.flagged, now=now)
        return
    if call.therapist_id is None:
        return
    earliest = next_local_day(max(now, call.scheduled_start))
    nxt, plan = plan_call(
        session, actor, therapist_id=call.therapist_id, inquiry_id=call.inquiry_id, purpose=call.purpose,
        earliest=earliest, now=now, settings=settings, attempt=call.attempt + 1, previous_call_id=call.id,
        assignee=call.assigned_to, action="call.retry",
    )
    if nxt is None:
        report.flagged = ATTENTION_NO_SLOT.format(days=settings.CALL_HORIZON_DAYS)
        flag_inquiry(session, actor, call.inquiry_id, report.flagged, now=now)
        return
    report.next_call_id, report.next_call_at = nxt.id, nxt.scheduled_start


# =========================================================================== manual changes


def reschedule_call(
    session: Session, actor: Actor, call_id: int, start: datetime, *, now: datetime, note: Optional[str] = None,
) -> PhoneCall:
    """Move a scheduled call to a time the coordinator chose (it stays there: fixed time)."""
    actor.require(Permission.edit)
    slots.require_aware(start, "start")
    call = _load_call(session, call_id)
    _require_open(call)
    if start < now - timedelta(minutes=1):
        raise CallError("Der neue Termin liegt in der Vergangenheit – bitte einen späteren Zeitpunkt wählen.")
    before = call.scheduled_start
    call.scheduled_start = start
    call.fixed_time = True
    if note and note.strip():
        call.notes = ((call.notes + "\n") if call.notes else "") + note.strip()
    call.updated_at = now
    session.flush()
    audit.record(session, actor, "call.reschedule", "phone_call", call.id, {"from": before, "to": start}, now=now)
    return call


def cancel_call(session: Session, actor: Actor, call_id: int, *, now: datetime, reason: str = "") -> PhoneCall:
    actor.require(Permission.edit)
    call = _load_call(session, call_id)
    _require_open(call)
    call.state = CallState.cancelled
    call.outcome = (reason or "von Hand abgesagt").strip()
    call.updated_at = now
    session.flush()
    audit.record(session, actor, "call.cancel", "phone_call", call.id, {"reason": call.outcome}, now=now)
    return call


def assign_call(session: Session, actor: Actor, call_id: int, user_id: Optional[int], *, now: datetime) -> PhoneCall:
    """Give a call to a coordinator ("Meine Anrufe") or back to everyone (None)."""
    actor.require(Permission.edit)
    call = _load_call(session, call_id)
    _require_open(call)
    if user_id is not None and session.get(User, user_id) is None:
        raise CallError("Diese Benutzerin / diesen Benutzer gibt es nicht.")
    call.assigned_to = user_id
    call.updated_at = now
    session.flush()
    audit.record(session, actor, "call.assign", "phone_call", call.id, {"assigned_to": user_id}, now=now)
    return call


def complete_inquiry_calls(session: Session, actor: Actor, inquiry_id: int, *, now: datetime) -> int:
    """The inquiry was presented by phone outside the call list: its scheduled inquiry call is done."""
    calls = session.scalars(select(PhoneCall).where(
        PhoneCall.inquiry_id == inquiry_id, PhoneCall.purpose == CallPurpose.inquiry,
        PhoneCall.state == CallState.scheduled).with_for_update()).all()
    for call in calls:
        call.state = CallState.done
        call.result = CallResult.reached
        call.outcome = CallResult.reached.label
        call.notes = "In der Vermittlung als geführt markiert"
        call.done_at = now
        call.done_by = actor.user_id
        call.updated_at = now
        audit.record(session, actor, "call.result", "phone_call", call.id,
                     {"result": CallResult.reached, "inquiry_id": inquiry_id, "note": call.notes}, now=now)
    return len(calls)


def cancel_pending_calls(
    session: Session, actor: Actor, *, now: datetime, reason: str,
    inquiry_id: Optional[int] = None, therapist_id: Optional[int] = None,
) -> int:
    """Cancel every scheduled call of an inquiry or of a therapist (used by the event handlers)."""
    cond = [PhoneCall.state == CallState.scheduled]
    if inquiry_id is not None:
        cond.append(PhoneCall.inquiry_id == inquiry_id)
    if therapist_id is not None:
        cond.append(PhoneCall.therapist_id == therapist_id)
    if len(cond) == 1:
        raise ValueError("cancel_pending_calls needs an inquiry or a therapist")
    calls = session.scalars(select(PhoneCall).where(*cond).with_for_update()).all()
    for call in calls:
        call.state = CallState.cancelled
        call.outcome = reason
        call.updated_at = now
    return len(calls)
