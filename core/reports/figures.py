"""Kennzahlen and chart data of Übersicht, computed in SQL for a period and a region.

Definitions (each figure's German help text in core.platform.vocab.REPORT_FIGURES says the same):

- A search is *active on day D* when it started on or before D, had not ended by D
  (ended_on empty or after D) and is not paused since D or earlier. For D = today this is
  exactly the searches with status active. (Pauses that were resumed leave no trace, so an
  earlier period may count a search that was paused back then as active.)
- *Waiting time* of an active search on D: days from its start to D.
- A *placement* is a search whose placed_on (the day a therapist's acceptance was recorded)
  lies in the period; *days to placement* run from the search's start to placed_on.
- An inquiry is *awaiting an answer* at an instant when it was sent before and neither
  answered, expired nor cancelled yet.
- *Answer rate (7 days)*: of the inquiries sent in the period whose seven days have passed,
  the share answered within seven days of sending.
- *Acceptance rate*: of the per-patient answers recorded in the period (accepted or one of
  the rejections), the share accepted.
- *Contactable now*: active therapists with an e-mail address or a phone number, not
  cooling, with no open inquiry (a snapshot; the history of cooling isn't kept).

Region: a PLZ prefix; searches are filtered by the patient's PLZ, inquiries and therapists
by the practice's PLZ. Every function returns plain values; the page formats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy import and_, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from core.matching.regions import open_inquiry_clause
from core.platform.models import Inquiry, InquiryPatient, Patient, Search, Therapist
from core.platform.vocab import (
    WAIT_BINS,
    InquiryStatus,
    Outcome,
    ResponseType,
    SearchStatus,
    TherapistStatus,
)
from core.registry.cooling import cooling_clause
from core.reports.periods import Period, change, day_start_utc
from core.reports.sql import berlin_date, date_param, days_between, median, plus_days, week_start

REGION_DIGITS = 2  # the per-region table groups by this many PLZ digits
ANSWER_WINDOW_DAYS = 7
REJECTIONS = (Outcome.rejected_capacity, Outcome.rejected_unsuitable, Outcome.rejected_other)
ACCEPTED_TYPES = (ResponseType.all_accepted, ResponseType.partly_accepted)
ANSWER_TYPES = (ResponseType.all_accepted, ResponseType.partly_accepted, ResponseType.all_rejected, ResponseType.no_response)


@dataclass(frozen=True)
class Filters:
    period: Period
    region: Optional[str] = None  # PLZ prefix


@dataclass(frozen=True)
class KeyFigure:
    key: str  # REPORT_FIGURES key
    value: Optional[float]
    previous: Optional[float]
    kind: str  # "count" | "days" | "rate" (0..1)
    lower_is_better: bool = False
    comparable: bool = True  # False: a snapshot without a previous value
    neutral: bool = False  # a change is neither good nor bad (demand, work in flight)

    @property
    def change(self) -> Optional[float]:
        return change(self.value, self.previous) if self.comparable else None


# --------------------------------------------------------------------------- building blocks


def _patient_region(region: Optional[str]):
    if not region:
        return None
    return Patient.plz.like(f"{region}%")


def _therapist_region(region: Optional[str]):
    if not region:
        return None
    return Therapist.plz.like(f"{region}%")


def _searches(stmt: sa.Select, region: Optional[str]) -> sa.Select:
    clause = _patient_region(region)
    if clause is not None:
        stmt = stmt.join(Patient, Patient.id == Search.patient_id).where(clause)
    return stmt


def _inquiries(stmt: sa.Select, region: Optional[str]) -> sa.Select:
    clause = _therapist_region(region)
    if clause is not None:
        stmt = stmt.join(Therapist, Therapist.id == Inquiry.therapist_id).where(clause)
    return stmt


def active_on_clause(day: date):
    """SQL: the search was active on `day` (see the module docstring)."""
    d = date_param(day)
    return and_(
        Search.started_on <= d,
        # not ended by then (a cancelled or successful search without an end date never counts)
        or_(and_(Search.ended_on.is_(None), Search.status.in_([SearchStatus.active, SearchStatus.paused])),
            Search.ended_on > d),
        not_(and_(Search.status == SearchStatus.paused, Search.paused_on.is_not(None), Search.paused_on <= d)),
    )


def _rate(num: Optional[int], den: Optional[int]) -> Optional[float]:
    return None if not den else (num or 0) / den


# --------------------------------------------------------------------------- key figures
# Each figure is wanted for the period and the previous one: one scan per table computes
# both with conditional sums (the page's cold load is a handful of queries, not dozens).


def _placed_in(period: Period):
    return and_(
        Search.placed_on.is_not(None),
        Search.placed_on >= date_param(period.start),
        Search.placed_on <= date_param(period.end),
    )


def _awaiting_at(at: datetime):
    """SQL: the inquiry was sent before `at` and not answered, expired or cancelled by then."""
    closed_at = func.coalesce(Inquiry.answered_at, Inquiry.expired_at, Inquiry.cancelled_at)
    return and_(
        Inquiry.sent_at < at,
        Inquiry.status.in_([InquiryStatus.sent, InquiryStatus.answered, InquiryStatus.expired, InquiryStatus.cancelled]),
        or_(closed_at.is_(None), closed_at >= at),
    )


def _answer_window(period: Period, now: datetime):
    """SQL: sent in the period, and its seven days are over by now."""
    start, end = period.bounds_utc()
    cutoff = now - timedelta(days=ANSWER_WINDOW_DAYS)
    return and_(Inquiry.sent_at >= start, Inquiry.sent_at < end, Inquiry.sent_at <= cutoff)


_ANSWERED_IN_TIME = and_(
    Inquiry.status == InquiryStatus.answered,
    Inquiry.answered_at.is_not(None),
    Inquiry.answered_at <= plus_days(Inquiry.sent_at, ANSWER_WINDOW_DAYS),
)


def _n(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _wait_if_active(day: date):
    """Days waited on `day` by a search active then, else NULL (for the median aggregate)."""
    return case((active_on_clause(day), days_between(date_param(day), Search.started_on)), else_=sa.null())


def _days_if_placed(period: Period):
    return case((_placed_in(period), days_between(Search.placed_on, Search.started_on)), else_=sa.null())


def _search_figures(session: Session, p: Period, q: Period, region: Optional[str]) -> dict[str, Any]:
    """Counts and medians of searches for both periods from one scan."""
    stmt = _searches(select(
        _n(active_on_clause(p.end)).label("active_p"),
        _n(active_on_clause(q.end)).label("active_q"),
        _n(_placed_in(p)).label("placed_p"),
        _n(_placed_in(q)).label("placed_q"),
        median(_wait_if_active(p.end)).label("wait_p"),
        median(_wait_if_active(q.end)).label("wait_q"),
        median(_days_if_placed(p)).label("to_placement_p"),
        median(_days_if_placed(q)).label("to_placement_q"),
    ).select_from(Search).where(Search.started_on <= date_param(p.end)), region)
    row = dict(session.execute(stmt).one()._mapping)
    return {k: (None if v is None else float(v)) if k.startswith(("wait", "to_")) else int(v) for k, v in row.items()}


def _inquiry_counts(session: Session, p: Period, q: Period, *, now: datetime, region: Optional[str]) -> dict[str, int]:
    p_at, q_at = min(p.bounds_utc()[1], now), q.bounds_utc()[1]
    stmt = _inquiries(select(
        _n(_awaiting_at(p_at)).label("awaiting_p"),
        _n(_awaiting_at(q_at)).label("awaiting_q"),
        _n(_answer_window(p, now)).label("sent_p"),
        _n(and_(_answer_window(p, now), _ANSWERED_IN_TIME)).label("in_time_p"),
        _n(_answer_window(q, now)).label("sent_q"),
        _n(and_(_answer_window(q, now), _ANSWERED_IN_TIME)).label("in_time_q"),
    ).select_from(Inquiry).where(Inquiry.sent_at.is_not(None), Inquiry.sent_at < p_at), region)
    return dict(session.execute(stmt).one()._mapping)


def _acceptance_counts(session: Session, p: Period, q: Period, region: Optional[str]) -> dict[str, int]:
    """Per-patient answers (accepted or rejected) recorded in each period, and the accepted ones."""
    (p_start, p_end), (q_start, q_end) = p.bounds_utc(), q.bounds_utc()
    in_p = and_(InquiryPatient.outcome_at >= p_start, InquiryPatient.outcome_at < p_end)
    in_q = and_(InquiryPatient.outcome_at >= q_start, InquiryPatient.outcome_at < q_end)
    accepted = InquiryPatient.outcome == Outcome.accepted
    stmt = (
        select(_n(in_p).label("answers_p"), _n(and_(in_p, accepted)).label("accepted_p"),
               _n(in_q).label("answers_q"), _n(and_(in_q, accepted)).label("accepted_q"))
        .select_from(InquiryPatient)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .where(
            InquiryPatient.outcome.in_([Outcome.accepted, *REJECTIONS]),
            InquiryPatient.outcome_at >= min(p_start, q_start),
            InquiryPatient.outcome_at < max(p_end, q_end),
        )
    )
    return dict(session.execute(_inquiries(stmt, region)).one()._mapping)


def contactable_now(session: Session, *, today: date, region: Optional[str] = None) -> int:
    open_inquiry = exists().where(Inquiry.therapist_id == Therapist.id, open_inquiry_clause())
    stmt = select(func.count(Therapist.id)).where(
        Therapist.status == TherapistStatus.active,
        not_(cooling_clause(today)),
        or_(Therapist.email.is_not(None), Therapist.phone.is_not(None)),
        not_(open_inquiry),
    )
    clause = _therapist_region(region)
    if clause is not None:
        stmt = stmt.where(clause)
    return session.scalar(stmt) or 0


def key_figures(session: Session, flt: Filters, *, today: date, now: datetime) -> list[KeyFigure]:
    p, q, r = flt.period, flt.period.previous(), flt.region
    sc = _search_figures(session, p, q, r)
    ic = _inquiry_counts(session, p, q, now=now, region=r)
    ac = _acceptance_counts(session, p, q, r)
    return [
        KeyFigure("active_searches", sc["active_p"], sc["active_q"], "count", neutral=True),
        KeyFigure("median_wait_days", sc["wait_p"], sc["wait_q"], "days", lower_is_better=True),
        KeyFigure("placements", sc["placed_p"], sc["placed_q"], "count"),
        KeyFigure("median_days_to_placement", sc["to_placement_p"], sc["to_placement_q"], "days", lower_is_better=True),
        KeyFigure("inquiries_awaiting", ic["awaiting_p"], ic["awaiting_q"], "count", neutral=True),
        KeyFigure("answer_rate_7d", _rate(ic["in_time_p"], ic["sent_p"]), _rate(ic["in_time_q"], ic["sent_q"]), "rate"),
        KeyFigure("acceptance_rate", _rate(ac["accepted_p"], ac["answers_p"]), _rate(ac["accepted_q"], ac["answers_q"]),
                  "rate"),
        KeyFigure("contactable_now", contactable_now(session, today=today, region=r), None, "count", comparable=False),
    ]


# --------------------------------------------------------------------------- chart data


@dataclass(frozen=True)
class Bar:
    label: str
    value: float


@dataclass(frozen=True)
class WeekValue:
    week: date  # Monday
    series: str  # "" for a single series, else e.g. a ResponseType value
    value: int


@dataclass(frozen=True)
class RegionRow:
    region: str  # PLZ prefix of REGION_DIGITS digits
    placements: int
    active: int
    median_wait_days: Optional[float]


def wait_distribution(session: Session, day: date, region: Optional[str] = None) -> list[Bar]:
    """Active searches on `day` per waiting-time bin (vocab.WAIT_BINS), every bin present."""
    wait = days_between(date_param(day), Search.started_on)
    whens = []
    for i, (_label, lo, hi) in enumerate(WAIT_BINS):
        cond = wait >= lo if hi is None else and_(wait >= lo, wait < hi)
        whens.append((cond, i))
    bin_col = case(*whens, else_=len(WAIT_BINS) - 1).label("bin")
    stmt = _searches(select(bin_col, func.count(Search.id).label("n")).where(active_on_clause(day)), region).group_by(bin_col)
    counts = {int(row.bin): int(row.n) for row in session.execute(stmt)}
    return [Bar(label, counts.get(i, 0)) for i, (label, _lo, _hi) in enumerate(WAIT_BINS)]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def placements_per_week(session: Session, period: Period, region: Optional[str] = None) -> list[WeekValue]:
    wk = week_start(Search.placed_on).label("week")
    stmt = _searches(select(wk, func.count(Search.id).label("n")).where(_placed_in(period)), region).group_by(wk)
    counts = {_as_date(row.week): int(row.n) for row in session.execute(stmt)}
    return [WeekValue(w, "", counts.get(w, 0)) for w in period.weeks()]


def answers_per_week(session: Session, period: Period, region: Optional[str] = None) -> list[WeekValue]:
    """Answers (and expiries, as "keine Antwort") per Berlin week and response type."""
    start, end = period.bounds_utc()
    at = func.coalesce(Inquiry.answered_at, Inquiry.expired_at)
    wk = week_start(berlin_date(at)).label("week")
    stmt = (
        select(wk, Inquiry.response_type, func.count(Inquiry.id).label("n"))
        .where(
            Inquiry.status.in_([InquiryStatus.answered, InquiryStatus.expired]),
            Inquiry.response_type.is_not(None),
            at >= start,
            at < end,
        )
        .group_by(wk, Inquiry.response_type)
    )
    counts = {(_as_date(row.week), ResponseType(row.response_type)): int(row.n) for row in session.execute(_inquiries(stmt, region))}
    return [WeekValue(w, t.value, counts.get((w, t), 0)) for w in period.weeks() for t in ANSWER_TYPES]


def funnel(session: Session, period: Period, region: Optional[str] = None) -> dict[str, int]:
    """Inquiries sent in the period → answered → with an acceptance → a patient of it successfully placed there."""
    start, end = period.bounds_utc()
    placed_here = exists().where(
        InquiryPatient.inquiry_id == Inquiry.id,
        InquiryPatient.outcome == Outcome.accepted,
        Search.id == InquiryPatient.search_id,
        Search.status == SearchStatus.successful,
        Search.placed_therapist_id == Inquiry.therapist_id,
    )
    answered = Inquiry.status == InquiryStatus.answered
    accepted = and_(answered, Inquiry.response_type.in_(ACCEPTED_TYPES))
    stmt = select(
        func.count(Inquiry.id).label("sent"),
        func.coalesce(func.sum(case((answered, 1), else_=0)), 0).label("answered"),
        func.coalesce(func.sum(case((accepted, 1), else_=0)), 0).label("accepted"),
        # nested CASE: the EXISTS probe runs only for inquiries with an acceptance
        func.coalesce(func.sum(case((accepted, case((placed_here, 1), else_=0)), else_=0)), 0).label("successful"),
    ).where(Inquiry.sent_at.is_not(None), Inquiry.sent_at >= start, Inquiry.sent_at < end)
    row = session.execute(_inquiries(stmt, region)).one()
    return {"sent": int(row.sent or 0), "answered": int(row.answered or 0), "accepted": int(row.accepted or 0),
            "successful": int(row.successful or 0)}


def per_region(session: Session, period: Period, region: Optional[str] = None) -> list[RegionRow]:
    """Per PLZ region (REGION_DIGITS digits of the patient's PLZ): placements in the period,
    active searches and their median waiting time at the period's end (one grouped scan)."""
    prefix = func.substr(Patient.plz, 1, REGION_DIGITS)
    active, placed = active_on_clause(period.end), _placed_in(period)
    stmt = (
        select(prefix.label("region"), _n(placed).label("placed"), _n(active).label("active"),
               median(_wait_if_active(period.end)).label("median"))
        .select_from(Search)
        .join(Patient, Patient.id == Search.patient_id)
        .where(Patient.plz.is_not(None), Search.started_on <= date_param(period.end), or_(placed, active))
        .group_by(prefix)
        .order_by(prefix)
    )
    clause = _patient_region(region)
    if clause is not None:
        stmt = stmt.where(clause)
    return [RegionRow(r.region, int(r.placed), int(r.active), None if r.median is None else float(r.median))
            for r in session.execute(stmt)]


@dataclass(frozen=True)
class Charts:
    wait: list[Bar]
    placements: list[WeekValue]
    answers: list[WeekValue]
    funnel: dict[str, int]
    regions: list[RegionRow]


def charts(session: Session, flt: Filters) -> Charts:
    p, r = flt.period, flt.region
    return Charts(
        wait=wait_distribution(session, p.end, r),
        placements=placements_per_week(session, p, r),
        answers=answers_per_week(session, p, r),
        funnel=funnel(session, p, r),
        regions=per_region(session, p, r),
    )


__all__ = [
    "Filters", "KeyFigure", "key_figures", "charts", "Charts", "Bar", "WeekValue", "RegionRow", "day_start_utc",
]
