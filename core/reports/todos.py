"""Heute zu tun: what needs a coordinator now, each item with where it is done.

Only items whose feature exists are produced: an item is a count from the database plus a
target (a page key and its query parameters, which the page turns into a link). Items
with nothing to do are left out; `TODO_KEYS` lists every kind this house knows today
(the call list and the 116117 review add theirs when they land).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import and_, exists, func, not_, select
from sqlalchemy.orm import Session

from core.matching.regions import open_inquiry_clause
from core.platform.config import Settings
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, Search
from core.platform.vocab import EmailState, InquiryOrigin, InquiryStatus, Outcome, SearchStatus

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
    """Active, unplaced searches with no pending place in an open inquiry, longest waiting first."""
    in_open = exists().where(
        InquiryPatient.search_id == Search.id,
        InquiryPatient.outcome == Outcome.pending,
        InquiryPatient.withdrawn_at.is_(None),
        Inquiry.id == InquiryPatient.inquiry_id,
        open_inquiry_clause(),
    )
    where = and_(Search.status == SearchStatus.active, Search.placed_therapist_id.is_(None), not_(in_open))
    total = _count(session, select(func.count(Search.id)).where(where))
    rows = session.execute(
        select(Search.id, Search.patient_id, Search.started_on, Patient.first_name, Patient.last_name, Patient.plz)
        .join(Patient, Patient.id == Search.patient_id)
        .where(where)
        .order_by(Search.started_on, Search.id)
        .limit(limit)
    ).all()
    return total, [
        WaitingSearch(r.id, r.patient_id, f"{r.first_name} {r.last_name}".strip(), r.plz, r.started_on, (today - r.started_on).days)
        for r in rows
    ]


def todos(session: Session, *, today: date, now: datetime, settings: Settings) -> list[Todo]:
    follow_up_before = now - timedelta(days=settings.FOLLOW_UP_DAYS)
    counts = {
        "answers_to_record": _count(
            session,
            select(func.count(Inquiry.id)).where(Inquiry.status == InquiryStatus.sent, Inquiry.sent_at <= follow_up_before),
        ),
        "conflicts": _count(
            session,
            select(func.count(InquiryPatient.id)).where(
                InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None)
            ),
        ),
        "needs_attention": _count(
            session,
            select(func.count(Inquiry.id)).where(
                Inquiry.needs_attention.is_(True), Inquiry.status.in_([InquiryStatus.sent, InquiryStatus.answered,
                                                                       InquiryStatus.queued, InquiryStatus.draft])
            ),
        ),
        "emails_failed": _count(session, select(func.count(OutboxEmail.id)).where(OutboxEmail.state == EmailState.failed)),
        "email_drafts": _count(session, select(func.count(OutboxEmail.id)).where(OutboxEmail.state == EmailState.draft)),
        "inquiry_drafts": _count(
            session,
            select(func.count(Inquiry.id)).where(Inquiry.status == InquiryStatus.draft, Inquiry.origin != InquiryOrigin.nightly),
        ),
        "nightly_suggestions": _count(
            session,
            select(func.count(Inquiry.id)).where(Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly),
        ),
    }
    targets = {
        "answers_to_record": Target("matching", {"mt_view": "inquiries", "mt_filter": "follow_up"}),
        "conflicts": Target("matching", {"mt_view": "inquiries", "mt_filter": "conflicts"}),
        "needs_attention": Target("matching", {"mt_view": "inquiries", "mt_filter": "attention"}),
        "emails_failed": Target("outbox"),
        "email_drafts": Target("outbox"),
        "inquiry_drafts": Target("matching", {"mt_view": "inquiries", "mt_filter": "unsent"}),
        "nightly_suggestions": Target("matching", {"mt_view": "nightly"}),
    }
    urgent = {"conflicts", "needs_attention", "emails_failed"}
    items = [Todo(k, n, targets[k], urgent=k in urgent) for k, n in counts.items() if n]
    waiting_total, waiting = waiting_without_inquiry(session, today=today)
    if waiting_total:
        items.append(
            Todo("searches_without_inquiry", waiting_total, Target("matching", {"mt_view": "new"}), searches=tuple(waiting))
        )
    return sorted(items, key=lambda t: not t.urgent)
