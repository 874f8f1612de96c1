"""Searches as arrays for vectorised matching, and the relation facts between therapists and searches."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Optional, Sequence
import numpy as np
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from core.geo import distance as geo
from core.matching import rules
from core.platform.models import Inquiry, InquiryPatient, Patient, PatientExclusion, Search, SearchExclusion
from core.platform.vocab import Outcome, SearchStatus
from core.matching.regions import MAX_REACH_KM, _chunks, open_inquiry_clause, open_member_clause


# =========================================================================== searches as arrays


_SEARCH_COLS = (
    Search.id.label("search_id"),
    Search.status,
    Search.started_on,
    Search.placed_therapist_id,
    Patient.id.label("patient_id"),
    Patient.first_name,
    Patient.last_name,
    Patient.plz,
    Patient.city,
    Patient.gender,
    Patient.birth_date,
    Patient.preferred_therapist_gender,
    Patient.preferred_methods,
    Patient.open_to_group,
    Patient.lat,
    Patient.lon,
    Patient.max_distance_km,
)


@dataclass
class SearchFrame:
    """Active searches as parallel numpy arrays (row i = rows[i]), longest waiting first."""

    rows: list
    ids: np.ndarray
    patient_ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    max_km: np.ndarray
    gender: np.ndarray
    preference: np.ndarray
    methods: np.ndarray
    open_to_group: np.ndarray
    age: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def _search_frame(rows: list, *, today: date, default_km: int) -> SearchFrame:
    n = len(rows)
    # one pass per column over the transposed rows (C-level zip), None → NaN by numpy
    cols = dict(zip(rows[0]._fields, zip(*rows))) if n else {f: () for f in _FRAME_FIELDS}
    gender_codes, preference_codes = rules.GENDER_CODES, rules.PREFERENCE_CODES
    f = SearchFrame(
        rows=rows,
        ids=np.fromiter(cols["search_id"], dtype=np.int64, count=n),
        patient_ids=np.fromiter(cols["patient_id"], dtype=np.int64, count=n),
        lat=np.array(cols["lat"], dtype=np.float64),
        lon=np.array(cols["lon"], dtype=np.float64),
        max_km=np.fromiter((rules.effective_max_km(k, default_km) for k in cols["max_distance_km"]), dtype=np.float64, count=n),
        gender=np.fromiter((gender_codes[g] for g in cols["gender"]), dtype=np.int8, count=n),
        preference=np.fromiter((preference_codes[p] for p in cols["preferred_therapist_gender"]), dtype=np.int8, count=n),
        methods=np.fromiter((rules.method_mask(m) for m in cols["preferred_methods"]), dtype=np.int16, count=n),
        open_to_group=np.fromiter((bool(g) for g in cols["open_to_group"]), dtype=bool, count=n),
        age=np.array(
            [np.nan if b is None else float(rules.age_on(b, today)) for b in cols["birth_date"]], dtype=np.float64
        ),
    )
    return f


_FRAME_FIELDS = ("search_id", "patient_id", "lat", "lon", "max_distance_km", "gender", "preferred_therapist_gender",
                 "preferred_methods", "open_to_group", "birth_date")


def search_profile(row, default_km: int) -> rules.SearchProfile:
    return rules.SearchProfile(
        search_id=row.search_id,
        max_km=rules.effective_max_km(row.max_distance_km, default_km),
        status=row.status,
        started_on=row.started_on,
        placed_therapist_id=row.placed_therapist_id,
        patient_id=row.patient_id,
        gender=row.gender,
        birth_date=row.birth_date,
        preferred_therapist_gender=row.preferred_therapist_gender,
        preferred_methods=frozenset(row.preferred_methods or ()),
        open_to_group=row.open_to_group,
        lat=row.lat,
        lon=row.lon,
    )


def _candidate_search_stmt():
    return (
        select(*_SEARCH_COLS)
        .join(Patient, Patient.id == Search.patient_id)
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_(None))
    )


def max_reach_km(session: Session, default_km: int) -> int:
    """The largest distance any active, unplaced search accepts (capped at MAX_REACH_KM)."""
    value = session.scalar(
        select(func.max(func.coalesce(Patient.max_distance_km, default_km)))
        .select_from(Search)
        .join(Patient, Patient.id == Search.patient_id)
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_(None))
    )
    return int(min(MAX_REACH_KM, max(value or default_km, 1)))


def load_searches_near(
    session: Session, points: Sequence[tuple[float, float]], radius_km: float, *, today: date, default_km: int
) -> SearchFrame:
    """Active, unplaced searches whose patient lies in the bounding box around `points`
    widened by `radius_km` (all of them when `points` is empty and radius is None)."""
    stmt = _candidate_search_stmt()
    if points:
        boxes = [geo.bounding_box(p, radius_km) for p in points]
        stmt = stmt.where(
            Patient.lat.between(min(b.min_lat for b in boxes), max(b.max_lat for b in boxes)),
            Patient.lon.between(min(b.min_lon for b in boxes), max(b.max_lon for b in boxes)),
        )
    rows = session.execute(stmt.order_by(*rules.waiting_order_sql())).all()
    return _search_frame(rows, today=today, default_km=default_km)


KM_PER_DEG = math.pi * geo.EARTH_RADIUS_KM / 180.0  # great-circle km per degree of latitude
_COORD_INDEX: dict[str, bool] = {}


def _patient_coordinate_index(session: Session) -> bool:
    """Whether PostgreSQL has an index on patients(lat …) (migration 0002 adds it; a database
    without it still works, only slower); asked once per database and process."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    key = getattr(bind, "engine", bind).url.render_as_string(hide_password=True)
    if key not in _COORD_INDEX:
        _COORD_INDEX[key] = bool(
            session.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'patients' "
                    "AND indexdef ~ '\\(lat[,)]'"
                )
            )
        )
    return _COORD_INDEX[key]


def largest_radius_km():
    """The largest max distance any patient gave (a scalar subquery; cheap with the index on
    patients.max_distance_km), for the bounding box of `load_searches_reaching`."""
    return select(func.max(Patient.max_distance_km)).scalar_subquery()


def load_searches_reaching(
    session: Session, point: tuple[float, float], *, today: date, default_km: int, factor: float = 1.0,
    largest_km: Optional[int] = None,
) -> SearchFrame:
    """Active, unplaced searches whose patient's own circle (radius = factor × their max km)
    can contain `point`: one scan, each patient with their own radius (a superset of the
    exact circle from lower bounds of the great-circle distance; the exact distance is
    computed afterwards). `largest_km`: the value of `largest_radius_km()` when the caller
has it already (saves a round trip)."""
    lat0, lon0 = point
    # all arithmetic in double precision (an integer + 0.01 would make PostgreSQL use numeric)
    max_km = sa.cast(func.coalesce(Patient.max_distance_km, default_km), sa.Float)
    margin = 0.01  # km
    stmt = _candidate_search_stmt().where(func.abs(Patient.lat - lat0) * (KM_PER_DEG / factor) - margin <= max_km)
    if _patient_coordinate_index(session):
        # with an index on patients(lat, lon) a box with the largest radius of any patient
        # (cheap with an index on max_distance_km) lets PostgreSQL read only that band
        largest = (session.scalar(select(largest_radius_km())) if largest_km is None else largest_km) or 0
        box = geo.bounding_box(point, min(MAX_REACH_KM, max(largest, default_km)) * factor + margin)
        stmt = stmt.where(Patient.lat.between(box.min_lat, box.max_lat), Patient.lon.between(box.min_lon, box.max_lon))
    # distance >= 2R·cos(φmax)·sin(Δλ/2) >= KM_PER_DEG·cos(φmax)·0.99·|Δλ°| for |Δλ| ≤ 14°
    band = MAX_REACH_KM * factor / KM_PER_DEG
    cos_low = math.cos(math.radians(min(89.0, abs(lat0) + band)))
    if cos_low >= 0.2 and abs(lon0) <= 160:
        dlon = func.abs(Patient.lon - lon0)
        stmt = stmt.where(dlon <= 14.0, dlon * (KM_PER_DEG * cos_low * 0.99 / factor) - margin <= max_km)
    rows = session.execute(stmt.order_by(*rules.waiting_order_sql())).all()
    return _search_frame(rows, today=today, default_km=default_km)


def load_all_searches(session: Session, *, today: date, default_km: int) -> SearchFrame:
    rows = session.execute(_candidate_search_stmt().order_by(*rules.waiting_order_sql())).all()
    return _search_frame(rows, today=today, default_km=default_km)


# =========================================================================== relation facts


@dataclass
class Relations:
    """Facts between therapists and searches, loaded set-based for a candidate set."""

    patient_exclusions: set[tuple[int, int]] = field(default_factory=set)  # (patient_id, therapist_id)
    search_exclusions: set[tuple[int, int]] = field(default_factory=set)  # (search_id, therapist_id)
    bad_history: dict[tuple[int, int], Outcome] = field(default_factory=dict)  # (search_id, therapist_id)
    open_counts: dict[int, int] = field(default_factory=dict)  # search_id → open inquiries
    open_pairs: set[tuple[int, int]] = field(default_factory=set)  # (search_id, therapist_id)

    def facts(self, search_id: int, patient_id: int, therapist_id: int) -> rules.PairFacts:
        return rules.PairFacts(
            excluded_by_patient=(patient_id, therapist_id) in self.patient_exclusions,
            excluded_by_search=(search_id, therapist_id) in self.search_exclusions,
            bad_outcome=self.bad_history.get((search_id, therapist_id)),
            open_inquiries=self.open_counts.get(search_id, 0),
            open_with_therapist=(search_id, therapist_id) in self.open_pairs,
        )

    def blocked(self, search_id: int, patient_id: int, therapist_id: int) -> bool:
        """Exclusions or a bad earlier answer (not the cap)."""
        return (
            (patient_id, therapist_id) in self.patient_exclusions
            or (search_id, therapist_id) in self.search_exclusions
            or (search_id, therapist_id) in self.bad_history
            or (search_id, therapist_id) in self.open_pairs
        )


def load_relations(
    session: Session, *, therapist_ids: Optional[Sequence[int]] = None, search_ids: Optional[Sequence[int]] = None,
    exclude_inquiry_id: Optional[int] = None,
) -> Relations:
    """Exclusions and answers for the given therapists (None: all), open-inquiry counts for
    the given searches (None: all). A few queries regardless of the set's size."""
    rel = Relations()
    t_chunks = list(_chunks(sorted(set(therapist_ids)))) if therapist_ids is not None else [None]
    s_chunks = list(_chunks(sorted(set(search_ids)))) if search_ids is not None else [None]
    if therapist_ids is not None and not therapist_ids:
        t_chunks = []
    if search_ids is not None and not search_ids:
        s_chunks = []
    for tc in t_chunks:
        # the three facts keyed by therapist in one round trip: (kind, search or patient, therapist, outcome)
        parts = [
            select(sa.literal("p").label("kind"), PatientExclusion.patient_id.label("key"),
                   PatientExclusion.therapist_id.label("therapist_id"), sa.literal(None, sa.String).label("outcome")),
            select(sa.literal("s"), SearchExclusion.search_id, SearchExclusion.therapist_id, sa.literal(None, sa.String)),
            select(sa.literal("h"), InquiryPatient.search_id, Inquiry.therapist_id, sa.cast(InquiryPatient.outcome, sa.String))
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(InquiryPatient.outcome.in_(list(rules.BAD_HISTORY))),
        ]
        if tc is not None:
            parts = [
                parts[0].where(PatientExclusion.therapist_id.in_(tc)),
                parts[1].where(SearchExclusion.therapist_id.in_(tc)),
                parts[2].where(Inquiry.therapist_id.in_(tc)),
            ]
        for kind, key, t, outcome in session.execute(sa.union_all(*parts)):
            if kind == "p":
                rel.patient_exclusions.add((key, t))
            elif kind == "s":
                rel.search_exclusions.add((key, t))
            else:
                rel.bad_history[(key, t)] = Outcome(outcome)
    for sc in s_chunks:
        q = (
            select(InquiryPatient.search_id, Inquiry.id, Inquiry.therapist_id)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(open_inquiry_clause(exclude_inquiry_id), open_member_clause())
        )
        if sc is not None:
            q = q.where(InquiryPatient.search_id.in_(sc))
        seen: set[tuple[int, int]] = set()
        for s, inquiry_id, t in session.execute(q):
            if (s, inquiry_id) not in seen:
                seen.add((s, inquiry_id))
                rel.open_counts[s] = rel.open_counts.get(s, 0) + 1
            rel.open_pairs.add((s, t))
    return rel


