"""Heute zu tun: what needs a coordinator now, each item with where it is done.

Only items whose feature exists are produced: an item is a count from the database plus a
target (a page key and its query parameters, which the page turns into a link). Items
with nothing to do are left out; `TODO_KEYS` lists every kind this house knows today
(the call list, the Posteingang and the 116117 review queue included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import and_, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from core.imports import review as import_review
from core.inbox import views as inbox_views
from core.reports.periods import day_start_utc
from core.matching.regions import open_inquiry_clause
from core.platform.config import Settings
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search
from core.platform.permissions import Actor, Permission
from core.platform.vocab import CallState, EmailState, InquiryOrigin, InquiryStatus, Outcome, SearchStatus

WAITING_SHOWN = 5  # searches waiting longest without an open inquiry, listed by name


@dataclass(frozen=True)
class Target:
    page: str  # a page key of vocab.PAGE_TITLES
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WaitingSearch:
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    started_on: date
    wait_days: int


@dataclass(frozen=True)
class Todo:
    key: str  # vocab.REPORT_TODOS key
    count: int
    target: Target
    urgent: bool = False
    searches: tuple[WaitingSearch, ...] = ()  # for "searches_without_inquiry"


def _count(session: Session, stmt) -> int:
    return session.scalar(stmt) or 0


def waiting_without_inquiry(session: Session, *, today: date, limit: int = WAITING_SHOWN) -> tuple[int, list[WaitingSearch]]:
    """Active, unplaced searches with no pending place in an open inquiry, longest waiting
    first: the first `limit` and (a window count in the same statement) how many there are.
    The searches that are in an open inquiry are a small set, so NOT IN (a hashed subplan)
    beats probing the memberships search by search."""
    in_open = (
        select(InquiryPatient.search_id)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .where(InquiryPatient.outcome == Outcome.pending, InquiryPatient.withdrawn_at.is_(None), open_inquiry_clause())
    )
    first = session.execute(
        select(Search.id, Search.patient_id, Search.started_on, func.count().over().label("total"))
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_(None), Search.id.not_in(in_open))
        .order_by(Search.started_on, Search.id)
        .limit(limit)
    ).all()
    if not first:
        return 0, []
    names = {
        p.id: p
        for p in session.execute(
            select(Patient.id, Patient.first_name, Patient.last_name, Patient.plz).where(Patient.id.in_([r.patient_id for r in first]))
        )
    }
    return int(first[0].total), [
        WaitingSearch(r.id, r.patient_id, f"{names[r.patient_id].first_name} {names[r.patient_id].last_name}".strip(),
                      names[r.patient_id].plz, r.started_on, (today - r.started_on).days)
        for r in first
    ]


def _n(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def todos(session: Session, actor: Actor, *, today: date, now: datetime, settings: Settings) -> list[Todo]:
    actor.require(Permission.view)
    follow_up_before = now - timedelta(days=settings.FOLLOW_UP_DAYS)
    open_or_answered = [InquiryStatus.sent, InquiryStatus.answered, InquiryStatus.queued, InquiryStatus.draft]
    inquiries = session.execute(
        select(
            _n(and_(Inquiry.status == InquiryStatus.sent, Inquiry.sent_at <= follow_up_before)).label("follow_up_due"),
            _n(and_(Inquiry.needs_attention.is_(True), Inquiry.status.in_(open_or_answered))).label("needs_attention"),
            _n(and_(Inquiry.status == InquiryStatus.draft, Inquiry.origin != InquiryOrigin.nightly)).label("inquiry_drafts"),
            _n(and_(Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly)).label("nightly_suggestions"),
        ).where(or_(Inquiry.status.in_([InquiryStatus.sent, InquiryStatus.draft]), Inquiry.needs_attention.is_(True)))
    ).one()._mapping
    mails = session.execute(
        select(_n(OutboxEmail.state == EmailState.failed).label("emails_failed"),
               _n(OutboxEmail.state == EmailState.draft).label("email_drafts"))
        .where(OutboxEmail.state.in_([EmailState.failed, EmailState.draft]))
    ).one()._mapping
    # the Anrufliste's own definitions (core.calls.views: day_calls, overdue_calls)
    day_start, day_end = day_start_utc(today), day_start_utc(today + timedelta(days=1))
    calls = session.execute(
        select(
            _n(PhoneCall.scheduled_start < min(day_start, now)).label("calls_overdue"),
            _n(PhoneCall.scheduled_start >= day_start).label("calls_today"),
        ).where(PhoneCall.state == CallState.scheduled, PhoneCall.scheduled_start < day_end)
    ).one()._mapping
    counts = {
        "calls_overdue": calls["calls_overdue"],
        "calls_today": calls["calls_today"],
        "answers_to_record": inbox_views.replies_waiting(session, actor),
        # the review queue (Importe) is for roles that may edit; others don't get the item
        "import_changes": import_review.pending_counts(session, actor)["all"] if actor.can(Permission.edit) else 0,
        "inbox_unassigned": inbox_views.inbox_counts(session, actor)["unassigned"],
        "follow_up_due": inquiries["follow_up_due"],
        "conflicts": _count(
            session,
            select(func.count(InquiryPatient.id)).where(
                InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None)
            ),
        ),
        "needs_attention": inquiries["needs_attention"],
        "emails_failed": mails["emails_failed"],
        "email_drafts": mails["email_drafts"],
        "inquiry_drafts": inquiries["inquiry_drafts"],
        "nightly_suggestions": inquiries["nightly_suggestions"],
    }
    targets = {
        "calls_overdue": Target("calls"),
        "calls_today": Target("calls"),
        "answers_to_record": Target("inbox"),
        "import_changes": Target("imports"),
        "inbox_unassigned": Target("inbox"),
        "follow_up_due": Target("matching", {"mt_view": "inquiries", "mt_filter": "follow_up"}),
        "conflicts": Target("matching", {"mt_view": "inquiries", "mt_filter": "conflicts"}),
        "needs_attention": Target("matching", {"mt_view": "inquiries", "mt_filter": "attention"}),
        "emails_failed": Target("outbox"),
        "email_drafts": Target("outbox"),
        "inquiry_drafts": Target("matching", {"mt_view": "inquiries", "mt_filter": "unsent"}),
        "nightly_suggestions": Target("matching", {"mt_view": "nightly"}),
    }
    urgent = {"calls_overdue", "conflicts", "needs_attention", "emails_failed", "answers_to_record"}
    items = [Todo(k, n, targets[k], urgent=k in urgent) for k, n in counts.items() if n]
    waiting_total, waiting = waiting_without_inquiry(session, today=today)
    if waiting_total:
        items.append(
            Todo("searches_without_inquiry", waiting_total, Target("matching", {"mt_view": "new"}), searches=tuple(waiting))
        )
    return sorted(items, key=lambda t: not t.urgent)
