"""Queries and view-models for the Vermittlung page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Mapping, Optional
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session
from core.mail import templates as mt
from core.matching import regions
from core.matching import rules
from core.platform.config import Settings
from core.platform import references
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.platform.redaction import redact_contacts
from core.platform.permissions import Actor, Permission
from core.platform.vocab import CallPurpose, CallState, EmailState, InquiryChannel, InquiryMark, InquiryOrigin, InquiryStatus, Outcome, ResponseType, SearchStatus
from core.inquiries.loading import InquiryError, _settings, reference


# =========================================================================== queries for the page

INQUIRY_FILTERS: dict[str, str] = {
    "open": "Offen (alle)",
    "unsent": "Ungesendet",
    "awaiting": "Warten auf Antwort",
    "follow_up": InquiryMark.follow_up_due.label,
    "answered": InquiryStatus.answered.label,
    "expired": InquiryStatus.expired.label,
    "reduced": InquiryMark.reduced.label,
    "conflicts": "Konflikte",
    "attention": InquiryMark.needs_attention.label,
    "all": "Alle",
}


def _filter_clause(key: str, *, now: datetime, settings: Settings):
    not_nightly_draft = ~and_(Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly)
    open_conflict = exists().where(
        InquiryPatient.inquiry_id == Inquiry.id, InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None)
    )
    return {
        "open": regions.open_inquiry_clause(),
        "unsent": and_(Inquiry.status.in_([InquiryStatus.draft, InquiryStatus.queued]), not_nightly_draft),
        "awaiting": Inquiry.status == InquiryStatus.sent,
        "follow_up": and_(
            Inquiry.status == InquiryStatus.sent, Inquiry.sent_at <= now - timedelta(days=settings.FOLLOW_UP_DAYS)
        ),
        "answered": Inquiry.status == InquiryStatus.answered,
        "expired": Inquiry.status == InquiryStatus.expired,
        "reduced": Inquiry.reduced.is_(True),
        "conflicts": open_conflict,
        "attention": Inquiry.needs_attention.is_(True),
        "all": not_nightly_draft,
    }[key]


@dataclass(frozen=True)
class InquiryRow:
    id: int
    reference: str
    therapist_id: int
    therapist_name: str
    therapist_plz: Optional[str]
    channel: InquiryChannel
    status: InquiryStatus
    origin: InquiryOrigin
    size: int
    created_at: datetime
    sent_at: Optional[datetime]
    days_since_sent: Optional[int]
    answered_at: Optional[datetime]
    response_type: Optional[ResponseType]
    reduced: bool
    needs_attention: bool
    follow_up_due: bool
    members_text: str  # "2 ausstehend, 1 angenommen"

    @property
    def therapist_ref(self) -> str:
        return references.therapist_ref(self.therapist_id)


def inquiry_counts(session: Session, actor: Actor, *, now: datetime, settings: Optional[Settings] = None) -> dict[str, int]:
    actor.require(Permission.view)
    settings = _settings(settings)
    return {
        key: session.scalar(select(func.count()).select_from(Inquiry).where(_filter_clause(key, now=now, settings=settings))) or 0
        for key in INQUIRY_FILTERS
    }


def list_inquiries(
    session: Session, actor: Actor, *, filter_key: str = "open", now: datetime, therapist_id: Optional[int] = None,
    offset: int = 0, limit: int = 50, settings: Optional[Settings] = None,
) -> tuple[list[InquiryRow], int]:
    """One page of inquiries (newest activity first) and the filter's total."""
    actor.require(Permission.view)
    settings = _settings(settings)
    if filter_key not in INQUIRY_FILTERS:
        filter_key = "open"
    stmt = select(Inquiry, Therapist).join(Therapist, Therapist.id == Inquiry.therapist_id).where(
        _filter_clause(filter_key, now=now, settings=settings)
    )
    if therapist_id is not None:
        stmt = stmt.where(Inquiry.therapist_id == therapist_id)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Inquiry.id).subquery())) or 0
    order = func.coalesce(Inquiry.answered_at, Inquiry.sent_at, Inquiry.queued_at, Inquiry.created_at)
    page = session.execute(
        stmt.order_by(order.desc(), Inquiry.id.desc()).offset(max(0, offset)).limit(max(1, min(limit, 500)))
    ).all()
    ids = [i.id for i, _ in page]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for inquiry_id, outcome, withdrawn, conflict, n in session.execute(
            select(
                InquiryPatient.inquiry_id, InquiryPatient.outcome, InquiryPatient.withdrawn_at.is_not(None),
                InquiryPatient.conflict, func.count(),
            )
            .where(InquiryPatient.inquiry_id.in_(ids))
            .group_by(
                InquiryPatient.inquiry_id, InquiryPatient.outcome, InquiryPatient.withdrawn_at.is_not(None),
                InquiryPatient.conflict,
            )
        ):
            label = InquiryMark.withdrawn.label if withdrawn else Outcome(outcome).label
            counts[inquiry_id][label] = counts[inquiry_id].get(label, 0) + n
            if conflict:
                counts[inquiry_id][InquiryMark.conflict.label] = counts[inquiry_id].get(InquiryMark.conflict.label, 0) + n
    rows = []
    for inquiry, t in page:
        rows.append(
            InquiryRow(
                id=inquiry.id,
                reference=reference(inquiry.id),
                therapist_id=t.id,
                therapist_name=t.full_name,
                therapist_plz=t.plz,
                channel=inquiry.channel,
                status=inquiry.status,
                origin=inquiry.origin,
                size=inquiry.size,
                created_at=inquiry.created_at,
                sent_at=inquiry.sent_at,
                days_since_sent=rules.days_since(inquiry.sent_at, now) if inquiry.status == InquiryStatus.sent else None,
                answered_at=inquiry.answered_at,
                response_type=inquiry.response_type,
                reduced=inquiry.reduced,
                needs_attention=inquiry.needs_attention,
                follow_up_due=inquiry.status == InquiryStatus.sent
                and rules.follow_up_due(inquiry.sent_at, now, settings.FOLLOW_UP_DAYS),
                members_text=", ".join(f"{n} {label}" for label, n in sorted(counts[inquiry.id].items())),
            )
        )
    return rows, total


@dataclass(frozen=True)
class MemberRow:
    member_id: int
    position: int
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    age: Optional[int]  # None for roles without view_sensitive
    waiting_days: Optional[int]
    outcome: Outcome
    withdrawn_at: Optional[datetime]
    withdrawn_reason: Optional[str]
    conflict: bool
    conflict_resolved_at: Optional[datetime]
    conflict_note: Optional[str]
    placed_here: bool
    search_status: SearchStatus
    placed_elsewhere: bool

    @property
    def patient_ref(self) -> str:
        return references.patient_ref(self.patient_id)

    @property
    def search_ref(self) -> str:
        return references.search_ref(self.search_id)

    @property
    def needs_answer(self) -> bool:
        """Still in the inquiry and without an answer: the answer form asks for an outcome."""
        return self.withdrawn_at is None and self.outcome in (Outcome.pending, Outcome.no_response)

    @property
    def answer_optional(self) -> bool:
        """Withdrawn after the therapist saw the inquiry: an answer may still be recorded
        (an acceptance becomes a conflict), but none is required."""
        return self.withdrawn_at is not None and self.outcome == Outcome.pending

    @property
    def status_text(self) -> str:
        if self.withdrawn_at is not None:
            return InquiryMark.withdrawn.label
        text = self.outcome.label
        if self.conflict:
            mark = InquiryMark.conflict_resolved if self.conflict_resolved_at else InquiryMark.conflict
            text += f" – {mark.label}"
        elif self.placed_here:
            text += f" – {InquiryMark.placed.label}"
        return text


@dataclass
class InquiryDetail:
    row: InquiryRow
    therapist_email: Optional[str]
    therapist_phone: Optional[str]
    members: list[MemberRow]
    attention_reason: Optional[str]
    calls: list[tuple[datetime, CallState, CallPurpose]]
    email_state: Optional[EmailState]
    can_send: bool
    can_answer: bool
    can_cancel: bool
    can_mark_call_made: bool = False  # a phone inquiry waiting for its call
    email_id: Optional[int] = None  # the inquiry mail in the outbox (draft, queued, ...)

    @property
    def answer_members(self) -> list[MemberRow]:
        """The members the answer form lists: the required ones first, then the optional."""
        return [m for m in self.members if m.needs_answer] + [m for m in self.members if m.answer_optional]

    @property
    def needs_answer(self) -> list[MemberRow]:
        return [m for m in self.members if m.needs_answer]

    @property
    def can_record_answer(self) -> bool:
        return self.can_answer and bool(self.answer_members)

    def missing_answers(self, given: Mapping[int, object]) -> list[MemberRow]:
        """Required members without an outcome in `given` (search id → outcome or None)."""
        return [m for m in self.needs_answer if given.get(m.search_id) is None]

    @property
    def accepted_members(self) -> list[MemberRow]:
        return [m for m in self.members if m.outcome == Outcome.accepted]


def inquiry_detail(
    session: Session, actor: Actor, inquiry_id: int, *, today: date, now: datetime, settings: Optional[Settings] = None
) -> InquiryDetail:
    actor.require(Permission.view)
    settings = _settings(settings)
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise InquiryError("Diese Anfrage gibt es nicht (mehr).")
    rows, _ = list_inquiries(session, actor, filter_key="all", now=now, therapist_id=inquiry.therapist_id, limit=500, settings=settings)
    row = next((r for r in rows if r.id == inquiry_id), None)
    if row is None:  # an unapproved nightly draft
        t = inquiry.therapist
        row = InquiryRow(
            id=inquiry.id, reference=reference(inquiry.id), therapist_id=t.id, therapist_name=t.full_name,
            therapist_plz=t.plz, channel=inquiry.channel, status=inquiry.status, origin=inquiry.origin, size=inquiry.size,
            created_at=inquiry.created_at, sent_at=None, days_since_sent=None, answered_at=None, response_type=None,
            reduced=False, needs_attention=False, follow_up_due=False, members_text="",
        )
    show = actor.can(Permission.view_sensitive)
    data = session.execute(
        select(InquiryPatient, Search, Patient)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Patient, Patient.id == Search.patient_id)
        .where(InquiryPatient.inquiry_id == inquiry_id)
        .order_by(InquiryPatient.position)
    ).all()
    members = [
        MemberRow(
            member_id=m.id, position=m.position, search_id=s.id, patient_id=p.id,
            patient_name=f"{p.first_name} {p.last_name}", plz=p.plz,
            age=rules.age_on(p.birth_date, today) if show else None,
            waiting_days=(today - s.started_on).days if s.status in (SearchStatus.active, SearchStatus.paused) else None,
            outcome=m.outcome, withdrawn_at=m.withdrawn_at, withdrawn_reason=m.withdrawn_reason, conflict=m.conflict,
            conflict_resolved_at=m.conflict_resolved_at, conflict_note=m.conflict_note,
            placed_here=s.placed_therapist_id == inquiry.therapist_id, search_status=s.status,
            placed_elsewhere=s.placed_therapist_id is not None and s.placed_therapist_id != inquiry.therapist_id,
        )
        for m, s, p in data
    ]
    calls = [
        (c.scheduled_start, c.state, c.purpose)
        for c in session.scalars(select(PhoneCall).where(PhoneCall.inquiry_id == inquiry_id).order_by(PhoneCall.scheduled_start))
    ]
    mail = session.execute(
        select(OutboxEmail.id, OutboxEmail.state).where(OutboxEmail.inquiry_id == inquiry_id, OutboxEmail.template == mt.THERAPIST_INQUIRY)
        .order_by(OutboxEmail.id.desc()).limit(1)
    ).first()
    email_id, email_state = (mail[0], mail[1]) if mail is not None else (None, None)
    t = inquiry.therapist
    phone_pending = inquiry.channel == InquiryChannel.phone and inquiry.status == InquiryStatus.queued
    return InquiryDetail(
        row=row,
        therapist_email=t.email if show else None,
        therapist_phone=t.phone if show else None,
        members=members,
        attention_reason=inquiry.attention_reason if show else redact_contacts(inquiry.attention_reason),
        calls=calls,
        email_state=email_state,
        can_send=inquiry.status == InquiryStatus.draft,
        can_answer=inquiry.status in (InquiryStatus.sent, InquiryStatus.expired) or phone_pending
        or (inquiry.status == InquiryStatus.cancelled and inquiry.sent_at is not None),
        can_cancel=inquiry.status in regions.OPEN_STATUSES,
        can_mark_call_made=phone_pending,
        email_id=email_id,
    )


def placed_searches(session: Session, actor: Actor, *, limit: int = 200) -> list[tuple[int, str, int, str, date]]:
    """Active searches with a placement waiting for the success confirmation:
    (search id, patient name, therapist id, therapist name, placed on), oldest first."""
    actor.require(Permission.view)
    rows = session.execute(
        select(Search.id, Patient.first_name, Patient.last_name, Therapist.id, Therapist.title, Therapist.first_name,
               Therapist.last_name, Search.placed_on)
        .join(Patient, Patient.id == Search.patient_id)
        .join(Therapist, Therapist.id == Search.placed_therapist_id)
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_not(None))
        .order_by(Search.placed_on, Search.id)
        .limit(limit)
    ).all()
    return [
        (r[0], f"{r[1]} {r[2]}", r[3], " ".join(p for p in (r[4], r[5], r[6]) if p), r[7]) for r in rows
    ]


