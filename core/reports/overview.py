"""Übersicht: what needs the coordinators today, the key figures and the chart data.

`home_view` is what the page shows (to-dos, key figures with the previous period, chart
data), computed in SQL by core.reports.figures and core.reports.todos; `cached_home_view`
is the same through the short data-versioned cache of core.reports.cache. `overview` is
the older plain count set (kept for its callers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.platform.config import Settings, get_settings
from core.inbox import views as inbox_views
from core.registry.cooling import cooling_clause
from core.reports import cache as report_cache
from core.reports.figures import Charts, Filters, KeyFigure, charts, key_figures
from core.reports.sql import no_jit
from core.reports.todos import Todo, todos
from core.platform.formatting import BERLIN, format_datetime
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.runner import JOB_TITLES, runner_status
from core.platform.vocab import CallState, EmailState, InquiryOrigin, InquiryStatus, JobResult, SearchStatus, TherapistStatus


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


# --------------------------------------------------------------------------- the page's view


@dataclass(frozen=True)
class HomeView:
    filters: Filters
    todos: list[Todo]
    figures: list[KeyFigure]
    charts: Charts
    computed_at: datetime


def home_view(
    session: Session, actor: Actor, flt: Filters, *, today: date, now: datetime, settings: Settings | None = None
) -> HomeView:
    """Everything of Übersicht except the job runner's live status (uncached)."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    no_jit(session)
    return HomeView(
        filters=flt,
        todos=todos(session, actor, today=today, now=now, settings=settings),
        figures=key_figures(session, flt, today=today, now=now),
        charts=charts(session, flt),
        computed_at=now,
    )


def cached_home_view(
    session: Session, actor: Actor, flt: Filters, *, today: date, now: datetime, settings: Settings | None = None
) -> HomeView:
    """home_view through the report cache: recomputed when data changed, the day changed,
    or after the cache's TTL (which also bounds how late a follow-up edge of `now` shows)."""
    actor.require(Permission.view)
    key = ("home", flt, today, actor.role)  # to-dos may differ by role (what one may act on)
    return report_cache.cached(
        session, key, lambda: home_view(session, actor, flt, today=today, now=now, settings=settings)
    )


# --------------------------------------------------------------------------- Hintergrunddienst

HEARTBEAT_WARN_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class JobRow:
    title: str
    started_at: datetime | None  # None: the job never ran
    finished_at: datetime | None
    result: JobResult | None
    summary: str | None
    error: str | None  # the first line; only for roles that may see it (admins)


@dataclass(frozen=True)
class RunnerHealth:
    alive: bool
    label: str
    last_beat_at: datetime | None
    standby_count: int
    jobs: list[JobRow]
    warnings: list[str]  # German
    errors_visible: bool


def runner_health(session: Session, actor: Actor, *, now: datetime) -> RunnerHealth:
    """The job runner's state for Übersicht: alive or standby, every job's last run, and a
    warning when a job failed or the heartbeat is older than two minutes (live, uncached)."""
    actor.require(Permission.view)
    status = runner_status(session, now=now)
    show_errors = actor.can(Permission.admin)
    warnings: list[str] = []
    if status.last_beat_at is None:
        warnings.append("Der Hintergrunddienst ist noch nie gelaufen: E-Mails werden nicht versendet und Fristen nicht geprüft.")
    elif now - status.last_beat_at > HEARTBEAT_WARN_AFTER:
        warnings.append(
            f"Letztes Lebenszeichen des Hintergrunddienstes um {format_datetime(status.last_beat_at)} – "
            "seitdem werden E-Mails nicht versendet und Fristen nicht geprüft."
        )
    elif not status.alive and status.standby_count:
        warnings.append("Der Hintergrunddienst läuft nur in Bereitschaft; kein Prozess führt gerade die Aufgaben aus.")
    failed = [r for r in status.last_runs if r.result == JobResult.error]
    if failed:
        names = ", ".join(r.title for r in failed)
        warnings.append(f"Letzter Lauf fehlgeschlagen: {names}." + ("" if show_errors else " Die Administration sieht die Fehlermeldung."))
    ran = {r.job_name for r in status.last_runs}
    jobs = [
        JobRow(r.title, r.started_at, r.finished_at, r.result, r.summary, r.error_line if show_errors else None)
        for r in status.last_runs
    ] + [JobRow(title, None, None, None, "noch nie gelaufen", None) for name, title in JOB_TITLES.items() if name not in ran]
    jobs.sort(key=lambda j: j.title)
    return RunnerHealth(status.alive, status.label, status.last_beat_at, status.standby_count, jobs, warnings, show_errors)
