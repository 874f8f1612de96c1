"""Queries for the Anrufliste page (issue 10, point 7): the day's calls in time order with
everything a coordinator needs on the phone, "Jetzt erreichbar", the week view, "Meine
Anrufe" and the outcome form's members. Pages get plain values; no SQL in pages.

Privacy: viewers see no phone numbers and no health fields (symptoms); coordinators see the
patients as in the inquiry mail (reference, age, gender, symptoms) plus their names.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.calls import slots
from core.mail import templates as mt
from core.platform.dates import age_on
from core.platform.config import Settings, get_settings
from core.platform.models import Inquiry, InquiryPatient, Patient, PhoneCall, PlzCentroid, Search, Therapist, User
from core.platform import references
from core.platform.formatting import count_of, format_day_month
from core.platform.permissions import Actor, Permission
from core.platform.vocab import CallPurpose, CallResult, CallState, Outcome

SCRIPT = {
    CallPurpose.inquiry: (
        "Vorstellen (Therapieplatz-Vermittlung), Anfrage {ref} kurz erklären: {n} {suchen} einen "
        "Platz. Pro Person fragen: Platz frei (angenommen), kein Platz, nicht passend oder Warteliste "
        "(mit voraussichtlichem Datum)? Zum Schluss: Dürfen wir wieder anfragen, wann?"
    ),
    CallPurpose.follow_up: (
        "Nachfassen zu unserer E-Mail-Anfrage {ref} vom {sent}: Ist sie angekommen? Pro Patient:in fragen: Platz "
        "frei, kein Platz, nicht passend oder Warteliste? Falls noch keine Entscheidung: wann dürfen wir zurückrufen?"
    ),
}
SCRIPT_OTHER = "Anliegen klären und das Ergebnis notieren."


def therapist_ref(therapist_id: int) -> str:
    """core.platform.references, the one helper for visible references (T81)."""
    return references.therapist_ref(therapist_id)


@dataclass(frozen=True)
class CallRow:
    id: int
    start: datetime
    end: datetime
    state: CallState
    result: Optional[CallResult]
    purpose: CallPurpose
    attempt: int
    therapist_id: Optional[int]
    therapist_ref: str
    therapist_name: str
    phone: Optional[str]  # None for viewers
    phone_invalid: bool
    phone_hours: str
    uses_fallback: bool
    fixed_time: bool
    inquiry_id: Optional[int]
    inquiry_ref: Optional[str]
    assigned_to: Optional[int]
    assigned_name: Optional[str]
    notes: Optional[str]
    patients: tuple[str, ...] = ()
    patient_ids: tuple[int, ...] = ()  # for read auditing of what the detail shows
    earlier: tuple[str, ...] = ()  # notes of earlier attempts, oldest first
    script: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == CallState.scheduled

    @property
    def marks(self) -> list[str]:
        out = []
        if self.uses_fallback:
            out.append(slots.FALLBACK_LABEL)
        if self.fixed_time:
            out.append("fester Termin")
        if self.phone_invalid:
            out.append("Nummer falsch")
        return out


@dataclass
class DayList:
    day: date
    rows: list[CallRow] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(1 for r in self.rows if not r.is_open)

    @property
    def open(self) -> int:
        return sum(1 for r in self.rows if r.is_open)

    @property
    def progress(self) -> float:
        return self.done / len(self.rows) if self.rows else 0.0


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=slots.BERLIN)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=slots.BERLIN)


def _name(title, first, last) -> str:
    return " ".join(p for p in (title, first, last) if p)


def _rows(session: Session, actor: Actor, calls: list[PhoneCall], *, today: date, settings: Settings) -> list[CallRow]:
    """Turn calls into rows with therapist, patients and earlier attempts (a few queries in all)."""
    if not calls:
        return []
    contact = actor.can(Permission.view_sensitive)
    therapist_ids = {c.therapist_id for c in calls if c.therapist_id}
    therapists = {t.id: t for t in session.scalars(select(Therapist).where(Therapist.id.in_(therapist_ids)))}
    user_ids = {c.assigned_to for c in calls if c.assigned_to}
    users = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    inquiry_ids = {c.inquiry_id for c in calls if c.inquiry_id}
    inquiries = {i.id: i for i in session.scalars(select(Inquiry).where(Inquiry.id.in_(inquiry_ids)))} if inquiry_ids else {}
    members: dict[int, list[str]] = defaultdict(list)
    member_ids: dict[int, list[int]] = defaultdict(list)
    if inquiry_ids:
        for inquiry_id, position, p in session.execute(
            select(InquiryPatient.inquiry_id, InquiryPatient.position, Patient)
            .join(Search, Search.id == InquiryPatient.search_id)
            .join(Patient, Patient.id == Search.patient_id)
            .where(InquiryPatient.inquiry_id.in_(inquiry_ids), InquiryPatient.withdrawn_at.is_(None))
            .order_by(InquiryPatient.inquiry_id, InquiryPatient.position)
        ):
            members[inquiry_id].append(patient_line(p, inquiry_id, position, today=today, sensitive=contact))
            member_ids[inquiry_id].append(p.id)
    earlier: dict[int, list[str]] = defaultdict(list)
    if inquiry_ids:
        # Columns, not PhoneCall objects: a call this session already holds (still open) may
        # have got its result from another coordinator meanwhile; the identity map would hand
        # back the stale copy (result None) for the row this statement matched by its result.
        for c in session.execute(
            select(PhoneCall.inquiry_id, PhoneCall.scheduled_start, PhoneCall.attempt, PhoneCall.result, PhoneCall.notes)
            .where(PhoneCall.inquiry_id.in_(inquiry_ids), PhoneCall.result.is_not(None))
            .order_by(PhoneCall.scheduled_start)
        ):
            local = c.scheduled_start.astimezone(slots.BERLIN)
            text = f"{local:%d.%m. %H:%M} Versuch {c.attempt}: {c.result.label}"
            if c.notes:
                text += f" – {c.notes}"
            earlier[c.inquiry_id].append((c.scheduled_start, text))
    out = []
    for c in calls:
        t = therapists.get(c.therapist_id)
        inquiry = inquiries.get(c.inquiry_id)
        before = tuple(text for at, text in earlier.get(c.inquiry_id, []) if at < c.scheduled_start)
        ref = mt.inquiry_reference(c.inquiry_id) if c.inquiry_id else None
        template = SCRIPT.get(c.purpose, SCRIPT_OTHER)
        script = template.format(
            ref=ref or "", n=count_of(len(members.get(c.inquiry_id, [])), "patient"),
            suchen="sucht" if len(members.get(c.inquiry_id, [])) == 1 else "suchen",
            sent=format_day_month(inquiry.sent_at) if inquiry and inquiry.sent_at else "–",
        )
        out.append(CallRow(
            id=c.id, start=c.scheduled_start, end=c.scheduled_start + timedelta(minutes=c.duration_minutes),
            state=c.state, result=c.result, purpose=c.purpose, attempt=c.attempt, therapist_id=c.therapist_id,
            therapist_ref=therapist_ref(c.therapist_id) if c.therapist_id else "",
            therapist_name=_name(t.title, t.first_name, t.last_name) if t else "",
            phone=(t.phone if (t and contact) else None), phone_invalid=bool(t and t.phone_invalid),
            phone_hours=(t.phone_hours if t and t.phone_hours else f"{settings.CALL_FALLBACK_HOURS} ({slots.FALLBACK_LABEL})"),
            uses_fallback=c.uses_fallback, fixed_time=c.fixed_time, inquiry_id=c.inquiry_id, inquiry_ref=ref,
            assigned_to=c.assigned_to, assigned_name=users.get(c.assigned_to),
            notes=c.notes, patients=tuple(members.get(c.inquiry_id, [])),
            patient_ids=tuple(member_ids.get(c.inquiry_id, [])), earlier=before, script=script,
        ))
    return out


def patient_line(patient: Patient, inquiry_id: int, position: int, *, today: date, sensitive: bool) -> str:
    """One patient as in the inquiry mail: A12-1, 35 J., weiblich, symptoms (health data: only
    with view_sensitive, then also the name)."""
    parts = [mt.patient_reference(inquiry_id, position)]
    if sensitive:
        parts.append(f"{patient.first_name} {patient.last_name}")
    age = age_on(patient.birth_date, today)
    parts.append(f"{age} J." if age is not None else "Alter unbekannt")
    parts.append(mt.gender_word(patient.gender))
    if sensitive and patient.symptoms:
        parts.append(", ".join(patient.symptoms))
    return " · ".join(p for p in parts if p)


def day_calls(
    session: Session, actor: Actor, day: date, *, today: date, mine: bool = False, settings: Optional[Settings] = None,
    limit: int = 500,
) -> DayList:
    """The calls of one local day in time order (cancelled ones left out); `mine`: assigned to the actor."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    start, end = _day_bounds(day)
    stmt = (select(PhoneCall).where(PhoneCall.scheduled_start >= start, PhoneCall.scheduled_start < end,
                                    PhoneCall.state != CallState.cancelled)
            .order_by(PhoneCall.scheduled_start, PhoneCall.id).limit(limit))
    if mine:
        stmt = stmt.where(PhoneCall.assigned_to == actor.user_id)
    calls = list(session.scalars(stmt))
    return DayList(day, _rows(session, actor, calls, today=today, settings=settings))


def overdue_calls(session: Session, actor: Actor, *, now: datetime, today: date, settings: Optional[Settings] = None,
                  limit: int = 200) -> list[CallRow]:
    """Scheduled calls from before today that nobody made yet."""
    actor.require(Permission.view)
    start, _ = _day_bounds(today)
    calls = list(session.scalars(
        select(PhoneCall).where(PhoneCall.state == CallState.scheduled, PhoneCall.scheduled_start < min(start, now))
        .order_by(PhoneCall.scheduled_start).limit(limit)
    ))
    return _rows(session, actor, calls, today=today, settings=settings or get_settings())


@dataclass(frozen=True)
class Reachable:
    therapist_id: int
    therapist_ref: str
    therapist_name: str
    phone: Optional[str]
    window_closes: datetime
    call_id: int
    matter: str  # German: "Nachfassen fällig", "Anfrage (noch nicht gesendet)", "Rückruf"


def reachable_now(session: Session, actor: Actor, *, now: datetime, settings: Optional[Settings] = None) -> list[Reachable]:
    """Therapists inside their phone hours right now with an open matter (a scheduled call
    that is due today or earlier), sorted by how soon the window closes."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    today = now.astimezone(slots.BERLIN).date()
    _, end = _day_bounds(today)
    rows = session.execute(
        select(PhoneCall.id, PhoneCall.purpose, PhoneCall.fixed_time, PhoneCall.attempt, Therapist.id, Therapist.title,
               Therapist.first_name, Therapist.last_name, Therapist.phone, Therapist.phone_hours, PlzCentroid.state_code)
        .join(Therapist, Therapist.id == PhoneCall.therapist_id)
        .outerjoin(PlzCentroid, PlzCentroid.plz == Therapist.plz)
        .where(PhoneCall.state == CallState.scheduled, PhoneCall.scheduled_start < end,
               or_(Therapist.phone_invalid.is_(False), Therapist.phone_invalid.is_(None)))
        .order_by(PhoneCall.scheduled_start)
    ).all()
    seen: set[int] = set()
    out = []
    contact = actor.can(Permission.view_sensitive)
    for call_id, purpose, fixed, attempt, tid, title, first, last, phone, hours, state in rows:
        if tid in seen:
            continue
        try:
            closes = slots.window_end_at(hours or settings.CALL_FALLBACK_HOURS, now, state=_state(state))
        except ValueError:
            closes = None
        if closes is None:
            continue
        seen.add(tid)
        matter = ("Rückruf" if fixed else "Nachfassen fällig" if purpose == CallPurpose.follow_up
                  else "Anfrage (noch nicht gesendet)" if purpose == CallPurpose.inquiry and attempt == 1
                  else f"{purpose.label}, Versuch {attempt}")
        out.append(Reachable(tid, therapist_ref(tid), _name(title, first, last), phone if contact else None,
                             closes, call_id, matter))
    out.sort(key=lambda r: (r.window_closes, r.therapist_id))
    return out


def _state(code: Optional[str]) -> Optional[str]:
    try:
        return slots.normalise_state(code) or None
    except ValueError:
        return None


def week_view(session: Session, actor: Actor, monday: date, *, mine: bool = False) -> dict[date, list[str]]:
    """Mo–So of the week: per day the open and done calls as short lines ("09:05 T12 Dr. Weber · Nachfassen")."""
    actor.require(Permission.view)
    start, _ = _day_bounds(monday)
    _, end = _day_bounds(monday + timedelta(days=6))
    stmt = (select(PhoneCall.scheduled_start, PhoneCall.state, PhoneCall.purpose, Therapist.id, Therapist.last_name)
            .join(Therapist, Therapist.id == PhoneCall.therapist_id)
            .where(PhoneCall.scheduled_start >= start, PhoneCall.scheduled_start < end,
                   PhoneCall.state != CallState.cancelled)
            .order_by(PhoneCall.scheduled_start))
    if mine:
        stmt = stmt.where(PhoneCall.assigned_to == actor.user_id)
    days: dict[date, list[str]] = {monday + timedelta(days=i): [] for i in range(7)}
    for at, state, purpose, tid, last in session.execute(stmt):
        local = at.astimezone(slots.BERLIN)
        mark = "" if state == CallState.scheduled else f" ({state.label})"
        days.setdefault(local.date(), []).append(f"{local:%H:%M} {therapist_ref(tid)} {last} · {purpose.label}{mark}")
    return days


@dataclass(frozen=True)
class MemberChoice:
    search_id: int
    label: str


def answer_members(session: Session, actor: Actor, call_id: int, *, today: date) -> list[MemberChoice]:
    """The inquiry's patients still waiting for an answer, for the outcome form."""
    actor.require(Permission.view)
    call = session.get(PhoneCall, call_id)
    if call is None or call.inquiry_id is None:
        return []
    sensitive = actor.can(Permission.view_sensitive)
    rows = session.execute(
        select(InquiryPatient.search_id, InquiryPatient.position, Patient)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Patient, Patient.id == Search.patient_id)
        .where(InquiryPatient.inquiry_id == call.inquiry_id, InquiryPatient.withdrawn_at.is_(None),
               InquiryPatient.outcome == Outcome.pending)
        .order_by(InquiryPatient.position)
    ).all()
    return [MemberChoice(sid, patient_line(p, call.inquiry_id, pos, today=today, sensitive=sensitive)) for sid, pos, p in rows]


def coordinators(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """Who calls can be assigned to (active admins and coordinators)."""
    actor.require(Permission.view)
    return [(uid, name) for uid, name in session.execute(
        select(User.id, User.display_name).where(User.active.is_(True), User.role.in_(["admin", "coordinator"]))
        .order_by(User.display_name)
    )]


def call_row(session: Session, actor: Actor, call_id: int, *, today: date, settings: Optional[Settings] = None) -> Optional[CallRow]:
    actor.require(Permission.view)
    call = session.get(PhoneCall, call_id)
    if call is None:
        return None
    return _rows(session, actor, [call], today=today, settings=settings or get_settings())[0]


def next_call_of(session: Session, actor: Actor, call_id: int) -> Optional[datetime]:
    """The scheduled follow-on of a call (after a result), for the confirmation."""
    actor.require(Permission.view)
    return session.scalar(select(PhoneCall.scheduled_start).where(
        PhoneCall.previous_call_id == call_id, PhoneCall.state == CallState.scheduled))
