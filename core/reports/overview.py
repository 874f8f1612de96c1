"""Figures for the home page (Übersicht): what needs the coordinators today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.inbox import views as inbox_views
from core.registry.cooling import cooling_clause
from core.platform.formatting import BERLIN
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import CallState, EmailState, InquiryOrigin, InquiryStatus, SearchStatus, TherapistStatus


@dataclass(frozen=True)
class Overview:
    patients_total: int
    searches_active: int
    searches_paused: int
    searches_successful_30d: int
    longest_wait_days: int | None
    therapists_active: int
    therapists_cooling: int
    therapists_blocked: int
    inquiries_draft: int
    inquiries_awaiting: int
    inquiries_answered_7d: int
    emails_queued: int
    emails_failed: int
    calls_today: int
    calls_overdue: int
    conflicts_open: int = 0
    nightly_suggestions: int = 0
    replies_waiting: int = 0  # replies on an inquiry in the Posteingang, answer not recorded yet
    inbox_unassigned: int = 0  # received mail that fits no inquiry ("Nicht zugeordnet")


def _count(session: Session, stmt) -> int:
    return session.scalar(stmt) or 0


def overview(session: Session, actor: Actor, *, today: date, now: datetime) -> Overview:
    actor.require(Permission.view)
    day_start = datetime.combine(today, time.min, tzinfo=BERLIN)
    day_end = day_start + timedelta(days=1)
    oldest = session.scalar(select(func.min(Search.started_on)).where(Search.status == SearchStatus.active))
    inbox_counts = inbox_views.inbox_counts(session, actor)
    return Overview(
        replies_waiting=inbox_views.replies_waiting(session, actor),
        inbox_unassigned=inbox_counts["unassigned"],
        patients_total=_count(session, select(func.count()).select_from(Patient)),
        searches_active=_count(session, select(func.count()).select_from(Search).where(Search.status == SearchStatus.active)),
        searches_paused=_count(session, select(func.count()).select_from(Search).where(Search.status == SearchStatus.paused)),
        searches_successful_30d=_count(
            session,
            select(func.count()).select_from(Search).where(
                Search.status == SearchStatus.successful, Search.success_on >= today - timedelta(days=30)
            ),
        ),
        longest_wait_days=(today - oldest).days if oldest else None,
        therapists_active=_count(
            session, select(func.count()).select_from(Therapist).where(Therapist.status == TherapistStatus.active)
        ),
        therapists_cooling=_count(
            session,
            select(func.count()).select_from(Therapist).where(
                Therapist.status == TherapistStatus.active, cooling_clause(today)
            ),
        ),
        therapists_blocked=_count(
            session, select(func.count()).select_from(Therapist).where(Therapist.status == TherapistStatus.blocked)
        ),
        # drafts a coordinator made; the night's suggestions are counted on their own
        inquiries_draft=_count(
            session,
            select(func.count()).select_from(Inquiry).where(
                Inquiry.status == InquiryStatus.draft, Inquiry.origin != InquiryOrigin.nightly
            ),
        ),
        # an inquiry counts as sent when delivered (or called), not when queued
        inquiries_awaiting=_count(
            session, select(func.count()).select_from(Inquiry).where(Inquiry.status == InquiryStatus.sent)
        ),
        conflicts_open=_count(
            session,
            select(func.count()).select_from(InquiryPatient).where(
                InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None)
            ),
        ),
        nightly_suggestions=_count(
            session,
            select(func.count()).select_from(Inquiry).where(
                Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly
            ),
        ),
        inquiries_answered_7d=_count(
            session,
            select(func.count()).select_from(Inquiry).where(
                Inquiry.status == InquiryStatus.answered, Inquiry.answered_at >= now - timedelta(days=7)
            ),
        ),
        emails_queued=_count(
            session, select(func.count()).select_from(OutboxEmail).where(OutboxEmail.state == EmailState.queued)
        ),
        emails_failed=_count(
            session, select(func.count()).select_from(OutboxEmail).where(OutboxEmail.state == EmailState.failed)
        ),
        calls_today=_count(
            session,
            select(func.count()).select_from(PhoneCall).where(
                PhoneCall.state == CallState.scheduled,
                PhoneCall.scheduled_start >= day_start,
                PhoneCall.scheduled_start < day_end,
            ),
        ),
        calls_overdue=_count(
            session,
            select(func.count()).select_from(PhoneCall).where(
                PhoneCall.state == CallState.scheduled, PhoneCall.scheduled_start < min(now, day_start)
            ),
        ),
    )
