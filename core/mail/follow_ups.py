"""Reminders and follow-up calls for unanswered inquiries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from core.platform import audit
from core.mail import templates as mt
from core.platform.config import Settings
from core.platform.models import Inquiry, OutboxEmail, PhoneCall
from core.platform.permissions import SYSTEM
from core.platform.vocab import CallPurpose, CallState, InquiryChannel, InquiryStatus, TherapistStatus
from core.mail.outbox import _settings, queue_reminder_email
from core.mail.rules import OutboxError, log, next_weekday_at


# =========================================================================== reminders


@dataclass
class FollowUpReport:
    calls: int = 0
    reminders: int = 0
    skipped: int = 0

    def summary(self) -> str:
        text = f"Nachfassen: {self.calls} Anrufe geplant, {self.reminders} Erinnerungen in den Postausgang"
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


def schedule_follow_ups(session: Session, *, now: datetime, settings: Optional[Settings] = None, limit: int = 500) -> FollowUpReport:
    """The reminder job: per unanswered e-mail inquiry a follow-up call (therapist has a phone
    number; at the next weekday 10:00 until calls are planned in phone hours) or else one
    reminder e-mail. Never both, never twice."""
    settings = _settings(settings)
    report = FollowUpReport()
    for inquiry_id in inquiries_needing_follow_up(session, now=now, follow_up_days=settings.FOLLOW_UP_DAYS, limit=limit):
        inquiry = session.get(Inquiry, inquiry_id, populate_existing=True)
        therapist = inquiry.therapist
        if therapist.status != TherapistStatus.active:
            report.skipped += 1
            continue
        if therapist.phone:
            call = PhoneCall(
                therapist_id=therapist.id,
                inquiry_id=inquiry.id,
                purpose=CallPurpose.follow_up,
                scheduled_start=next_weekday_at(now),
                duration_minutes=settings.CALL_SLOT_MINUTES,
                state=CallState.scheduled,
                attempt=1,
                created_at=now,
                updated_at=now,
            )
            session.add(call)
            session.flush()
            audit.record(session, SYSTEM, "call.follow_up", "phone_call", call.id, {"inquiry_id": inquiry.id}, now=now)
            report.calls += 1
        elif therapist.email:
            try:
                queue_reminder_email(session, SYSTEM, inquiry.id, now, settings=settings)
            except OutboxError as exc:
                log.warning("Erinnerung für Anfrage %s nicht möglich: %s", inquiry.id, exc)
                report.skipped += 1
                continue
            report.reminders += 1
        else:
            report.skipped += 1
    session.flush()
    return report


