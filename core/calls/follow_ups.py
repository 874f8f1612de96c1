"""Follow-ups of unanswered e-mail inquiries (issue 10, point 4; moved here from the mail
capability): after FOLLOW_UP_DAYS without an answer each inquiry gets one follow-up call in
the therapist's phone hours within CALL_HORIZON_DAYS (the fallback window when none are
known, marked "keine Telefonzeiten bekannt"), or – where there is no usable phone number –
one reminder e-mail through the outbox. Neither → the inquiry is flagged.

All calls of one run are planned on one `CallBoard` (capacity CALLERS, one call per
therapist at a time) and written in bulk, so thousands of follow-ups take seconds. An
inquiry for which no slot is free in the horizon stays due and is tried again next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.calls import planning
from core.calls.services import ATTENTION_NO_PHONE, flag_inquiry
from core.mail import templates as mt
from core.mail.outbox import queue_reminder_email
from core.mail.rules import OutboxError
from core.platform.config import Settings, get_settings
from core.platform.models import Inquiry, OutboxEmail, PhoneCall, Therapist
from core.platform.permissions import SYSTEM, Actor
from core.platform.vocab import CallPurpose, InquiryChannel, InquiryStatus, TherapistStatus


@dataclass
class FollowUpReport:
    calls: int = 0
    reminders: int = 0
    skipped: int = 0
    deferred: int = 0  # no free slot in the horizon: tried again on the next run
    fallback: int = 0  # planned in the fallback window

    def summary(self) -> str:
        text = f"Nachfassen: {self.calls} Anrufe geplant, {self.reminders} Erinnerungen in den Postausgang"
        if self.fallback:
            text += f" ({self.fallback} ohne bekannte Telefonzeiten)"
        if self.deferred:
            text += f", {self.deferred} ohne freien Termin (nächster Lauf)"
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


def schedule_follow_ups(
    session: Session, *, now: datetime, settings: Optional[Settings] = None, limit: int = 500, actor: Actor = SYSTEM,
) -> FollowUpReport:
    """The follow-up job: per due inquiry a follow-up call (usable phone number) or else one
    reminder e-mail. Never both, never twice. Oldest inquiries are planned first."""
    settings = settings if settings is not None else get_settings()
    report = FollowUpReport()
    ids = inquiries_needing_follow_up(session, now=now, follow_up_days=settings.FOLLOW_UP_DAYS, limit=limit)
    if not ids:
        return report
    rows = session.execute(
        select(Inquiry.id, Inquiry.therapist_id, Therapist.status, Therapist.email)
        .join(Therapist, Therapist.id == Inquiry.therapist_id)
        .where(Inquiry.id.in_(ids))
    ).all()
    by_id = {r[0]: r for r in rows}
    who = planning.callees(session, [r[1] for r in rows])
    board = planning.board_around(session, [now], settings=settings)
    to_write: list[planning.NewCall] = []
    for inquiry_id in ids:
        _, therapist_id, status, email = by_id[inquiry_id]
        callee = who[therapist_id]
        if status != TherapistStatus.active:
            report.skipped += 1
            continue
        if callee.phone and not callee.phone_invalid:
            plan = board.place(planning.request_for(callee, inquiry_id, now))
            if plan.start is None:
                report.deferred += 1
                continue
            report.fallback += plan.uses_fallback
            to_write.append(planning.NewCall(plan, inquiry_id, CallPurpose.follow_up))
        elif email:
            try:
                queue_reminder_email(session, actor, inquiry_id, now, settings=settings)
            except OutboxError:
                report.skipped += 1
                continue
            report.reminders += 1
        else:
            flag_inquiry(session, actor, inquiry_id, ATTENTION_NO_PHONE, now=now)
            report.skipped += 1
    report.calls = len(planning.insert_calls(session, actor, to_write, now=now, action="call.follow_up"))
    session.flush()
    return report
