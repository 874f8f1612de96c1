"""What the map shows: therapists classified by state, patients at their PLZ centroid,
distances (great circle, "Luftlinie"). Queries filter in SQL (PLZ prefix or bounding box)
and compute distances vectorised; the page only draws."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Optional

import numpy as np
from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session

from core.registry.cooling import is_cooling
from core.platform.models import method_codes
from core.geo import distance as geo
from core.platform import timewindows
from core.matching import rules
from core.matching.regions import open_inquiry_clause
from core.platform.config import Settings
from core.platform import references
from core.platform.models import Inquiry, Patient, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import SearchStatus, TherapistStatus
from core.platform.text import contains_ci, has_control_chars
from core.platform.addresses import email_key, normalise_email

RING_KM = (5, 10, 20)
MAX_THERAPISTS = 5000  # a 2-digit region has at most a few thousand; more means a bad filter


class MapState(StrEnum):
    contactable = "contactable"
    cooling = "cooling"
    open_inquiry = "open_inquiry"
    unavailable = "unavailable"  # blocked or inactive


# German label and RGB colour per map state, shown in the legend (one place for both).
MAP_STATES: dict[MapState, tuple[str, tuple[int, int, int]]] = {
    MapState.contactable: ("kontaktierbar", (34, 139, 34)),
    MapState.cooling: ("Abkühlungsphase", (30, 110, 200)),
    MapState.open_inquiry: ("offene Anfrage", (235, 140, 0)),
    MapState.unavailable: ("gesperrt / inaktiv", (140, 140, 140)),
}
PATIENT_COLOR = (150, 40, 160)


@dataclass(frozen=True)
class TherapistPoint:
    id: int
    name: str
    lat: float
    lon: float
    state: MapState
    methods: str
    phone_hours_today: str
    distance_km: Optional[float]
    approximate: bool


@dataclass(frozen=True)
class PatientPoint:
    search_id: int
    patient_id: int
    label: str
    lat: float
    lon: float
    max_km: int
    waiting_days: int


@dataclass
class MapView:
    therapists: list[TherapistPoint] = field(default_factory=list)
    patients: list[PatientPoint] = field(default_factory=list)
    center: Optional[tuple[float, float]] = None
    rings_km: tuple[int, ...] = ()
    truncated: bool = False
    message: str = ""

    def counts(self) -> dict[MapState, int]:
        out = {s: 0 for s in MapState}
        for t in self.therapists:
            out[t.state] += 1
        return out


def classify(status: TherapistStatus, next_contact_at: Optional[date], has_open_inquiry: bool, today: date) -> MapState:
    """Pure rule: one colour per therapist (blocked beats open inquiry beats cooling)."""
    if status != TherapistStatus.active:
        return MapState.unavailable
    if has_open_inquiry:
        return MapState.open_inquiry
    if is_cooling(next_contact_at, today):
        return MapState.cooling
    return MapState.contactable


def phone_hours_on(text: Optional[str], weekday: int) -> str:
    if not text:
        return "keine Telefonzeiten"
    try:
        windows = timewindows.parse(text)
    except ValueError:
        return "Telefonzeiten unlesbar"
    today = [w for w in windows if w.day == weekday]
    if not today:
        return "heute keine Telefonzeit"
    return "heute " + ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in today)


def _therapist_rows(session: Session, stmt) -> list:
    # "open" as matching defines it (unapproved nightly drafts do not block a therapist)
    open_inq = exists().where(Inquiry.therapist_id == Therapist.id, open_inquiry_clause())
    cols = select(
        Therapist.id, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.lat, Therapist.lon,
        Therapist.status, Therapist.next_contact_at, Therapist.offers_vt, Therapist.offers_tp, Therapist.offers_ap,
        Therapist.offers_st, Therapist.phone_hours, Therapist.coordinates_source, Therapist.email,
        open_inq.label("open_inq"),
    ).where(Therapist.lat.is_not(None), Therapist.lon.is_not(None))
    return session.execute(stmt(cols).limit(MAX_THERAPISTS + 1)).all()


def sa_case(condition):
    return case((condition, 1), else_=0)


@dataclass(frozen=True)
class _Practice:
    open_inquiry: bool
    cooling_until: Optional[date]


def _practices(session: Session, rows) -> dict[str, _Practice]:
    """Per shared e-mail address (a practice, as matching sees it): does any member have an
    open inquiry, and until when does any member cool down. Members outside the shown area count."""
    keys = sorted({k for k in (normalise_email(r.email) for r in rows) if k})
    out: dict[str, _Practice] = {}
    open_inq = exists().where(Inquiry.therapist_id == Therapist.id, open_inquiry_clause())
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        stmt = (
            select(email_key().label("key"), func.max(Therapist.next_contact_at), func.count(), func.max(sa_case(open_inq)))
            .where(email_key().in_(chunk))
            .group_by(email_key())
        )
        for key, cooling, members, any_open in session.execute(stmt):
            if members > 1:
                out[key] = _Practice(bool(any_open), cooling)
    return out


def _points(session: Session, rows, today: date, distances: Optional[np.ndarray]) -> list[TherapistPoint]:
    practices = _practices(session, rows)
    points = []
    for i, r in enumerate(rows):
        practice = practices.get(normalise_email(r.email) or "")
        has_open = bool(r.open_inq) or (practice is not None and practice.open_inquiry)
        cooling = max((d for d in (r.next_contact_at, practice.cooling_until if practice else None) if d), default=None)
        methods = list(method_codes(r))
        d = None if distances is None or np.isnan(distances[i]) else float(distances[i])
        points.append(
            TherapistPoint(
                id=r.id,
                name=" ".join(p for p in (r.title, r.first_name, r.last_name) if p),
                lat=r.lat,
                lon=r.lon,
                state=classify(r.status, cooling, has_open, today),
                methods=", ".join(methods) or "–",
                phone_hours_today=phone_hours_on(r.phone_hours, today.weekday()),
                distance_km=d,
                approximate=r.coordinates_source == "plz_centroid",
            )
        )
    return points


def region_view(session: Session, actor: Actor, prefix: str, *, today: date) -> MapView:
    """All therapists and active searches of a PLZ prefix."""
    actor.require(Permission.view)
    prefix = (prefix or "").strip()
    if not prefix.isdigit() or not 1 <= len(prefix) <= 5:
        return MapView(message="Bitte eine PLZ-Region aus Ziffern angeben, z. B. 10.")
    rows = _therapist_rows(session, lambda s: s.where(Therapist.plz.startswith(prefix)).order_by(Therapist.id))
    truncated = len(rows) > MAX_THERAPISTS
    rows = rows[:MAX_THERAPISTS]
    patients = _active_patients(session, today, Patient.plz.startswith(prefix))
    view = MapView(therapists=_points(session, rows, today, None), patients=patients, truncated=truncated)
    pts = [(t.lat, t.lon) for t in view.therapists] + [(p.lat, p.lon) for p in patients]
    if pts:
        view.center = (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
    else:
        view.message = f"In der Region {prefix}… gibt es keine Therapeut:innen oder Platzsuchen mit Koordinaten."
    return view


def _active_patients(session: Session, today: date, *conditions) -> list[PatientPoint]:
    rows = session.execute(
        select(Search.id, Search.started_on, Patient.id, Patient.first_name, Patient.last_name, Patient.lat,
               Patient.lon, Patient.max_distance_km)
        .join(Patient, Patient.id == Search.patient_id)
        .where(Search.status == SearchStatus.active, Patient.lat.is_not(None), *conditions)
        .order_by(*rules.waiting_order_sql())
        .limit(MAX_THERAPISTS)
    ).all()
    return [
        PatientPoint(
            search_id=r[0], patient_id=r[2], label=f"{r[3]} {r[4]}", lat=r[5], lon=r[6],
            max_km=r[7] or 0, waiting_days=(today - r[1]).days,
        )
        for r in rows
    ]


def patient_view(session: Session, actor: Actor, settings: Settings, patient_id: int, *, today: date) -> MapView:
    """One patient at the PLZ centroid, rings, and the therapists around with distances."""
    actor.require(Permission.view)
    patient = session.get(Patient, patient_id)
    if patient is None:
        return MapView(message="Patient:in nicht gefunden.")
    if patient.lat is None or patient.lon is None:
        return MapView(message="Für diese Patient:in ist keine PLZ mit bekannten Koordinaten hinterlegt – bitte PLZ prüfen.")
    max_km = patient.max_distance_km or settings.DEFAULT_MAX_DISTANCE_KM
    center = (patient.lat, patient.lon)
    radius = max(max_km, max(RING_KM)) * 1.25
    rows = _therapist_rows(session, lambda s: geo.where_within_bbox(s, center, radius).order_by(Therapist.id))
    truncated = len(rows) > MAX_THERAPISTS
    rows = rows[:MAX_THERAPISTS]
    distances = geo.distances_km(center, np.array([r.lat for r in rows], dtype=float), np.array([r.lon for r in rows], dtype=float)) if rows else np.array([])
    keep = [i for i, d in enumerate(distances) if not np.isnan(d) and d <= radius]
    rows = [rows[i] for i in keep]
    distances = distances[keep] if len(keep) else np.array([])
    search = session.scalar(select(Search).where(Search.patient_id == patient.id, Search.status == SearchStatus.active))
    point = PatientPoint(
        search_id=search.id if search else 0,
        patient_id=patient.id,
        label=f"{patient.first_name} {patient.last_name}",
        lat=patient.lat,
        lon=patient.lon,
        max_km=max_km,
        waiting_days=(today - search.started_on).days if search else 0,
    )
    rings = tuple(sorted(set(RING_KM) | {max_km}))
    view = MapView(therapists=_points(session, rows, today, distances), patients=[point], center=center, rings_km=rings, truncated=truncated)
    view.therapists.sort(key=lambda t: t.distance_km if t.distance_km is not None else 1e9)
    return view


@dataclass(frozen=True)
class PatientChoice:
    patient_id: int
    label: str


def find_patients(session: Session, actor: Actor, query: str, *, limit: int = 50) -> list[PatientChoice]:
    """Patients with an active search, by name or number, longest waiting first."""
    actor.require(Permission.view)
    stmt = (
        select(Patient.id, Patient.first_name, Patient.last_name, Patient.plz, Search.started_on)
        .join(Search, Search.patient_id == Patient.id)
        .where(Search.status == SearchStatus.active)
    )
    q = (query or "").strip()
    if has_control_chars(q):  # a NUL byte matches nobody (PostgreSQL would refuse the query)
        return []
    by_ref = references.parse_ref(q, "patient") if q[:1].upper() == "P" else None
    if by_ref is not None:
        stmt = stmt.where(Patient.id == by_ref)
    elif q.isascii() and q.isdigit():
        stmt = stmt.where(or_(Patient.id == int(q), Patient.plz.startswith(q)))
    elif q:
        # % and _ match literally; case-insensitive also for umlauts on SQLite
        stmt = stmt.where(or_(contains_ci(Patient.last_name, q), contains_ci(Patient.first_name, q)))
    rows = session.execute(stmt.order_by(*rules.waiting_order_sql()).limit(limit)).all()
    return [PatientChoice(r[0], f"{r[1]} {r[2]} ({references.patient_ref(r[0])}, PLZ {r[3] or '–'})") for r in rows]
