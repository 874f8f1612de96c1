"""Matching services: which therapists may be asked in a region, which searches go into an
inquiry to one therapist, and why a search does not (DESIGN §5.2, §7, §11, §14).

Order of work (DESIGN §11): SQL filters first (therapist status and region, search status,
bounding box around the practice with the largest radius any patient accepts), then
vectorised great-circle distances and the profile rules over numpy arrays
(core.matching_rules.profile_mask), then the relation rules (exclusions, earlier answers,
open-inquiry counts) from a handful of set-based queries for the whole candidate set.
The rules themselves live in core.matching_rules; this module only loads facts.

"Open inquiry" (the therapist is pending, the search counts towards its cap): an inquiry
that is unsent (draft, queued) or sent and unanswered. The nightly batching job's
unapproved drafts (origin "nightly", still draft) are suggestions, not inquiries: they
block nobody until a coordinator approves them (core.planner).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Optional, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from core import geo
from core import matching_rules as rules
from core.config import Settings, get_settings
from core.formatting import format_number
from core.models import Inquiry, InquiryPatient, Patient, PatientExclusion, Search, SearchExclusion, Therapist
from core.permissions import Actor, Permission
from core.vocab import (
    InquiryOrigin,
    InquiryStatus,
    Outcome,
    SearchStatus,
    TherapistStatus,
)

OPEN_STATUSES = (InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent)
MAX_REACH_KM = 200  # the bounding box never exceeds this radius (patients' limit is ≤ 200)
IN_CHUNK = 5000  # ids per IN (...) list (SQLite's variable limit)
MAX_PAGE = 500


class MatchingError(ValueError):
    """A matching request that cannot be answered (bad region ...); German message."""


# =========================================================================== shared SQL pieces


def open_inquiry_clause(exclude_inquiry_id: Optional[int] = None):
    """Inquiries that are open: unsent or sent-and-unanswered, except unapproved nightly
    drafts (and except `exclude_inquiry_id`, when an inquiry is re-checked against the rest)."""
    clause = and_(
        Inquiry.status.in_(OPEN_STATUSES),
        not_(and_(Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly)),
    )
    if exclude_inquiry_id is not None:
        clause = and_(clause, Inquiry.id != exclude_inquiry_id)
    return clause


def open_member_clause():
    """A member still waiting for the therapist's answer."""
    return and_(InquiryPatient.withdrawn_at.is_(None), InquiryPatient.outcome == Outcome.pending)


def _chunks(values: Sequence[int], size: int = IN_CHUNK) -> Iterable[list[int]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def email_key():
    """SQL expression of the normalised e-mail (the practice key)."""
    return func.lower(func.trim(Therapist.email))


def same_email(key: str):
    """Therapists whose normalised e-mail is `key`. Besides the exact test, the stored
    address must start with a case variant of the key's first three characters: index
    ranges on ix_therapists_email instead of a scan of every address (stored addresses are
    validated, so they carry no leading blanks)."""
    from itertools import product

    head = key[:3]
    variants = {"".join(chars) for chars in product(*[sorted({c.lower(), c.upper()}) for c in head])}
    ranges = [
        and_(Therapist.email >= v, Therapist.email < v[:-1] + chr(ord(v[-1]) + 1)) for v in sorted(variants) if v
    ]
    return and_(sa.or_(*ranges), email_key() == key) if ranges else email_key() == key


# =========================================================================== regions


@dataclass(frozen=True)
class Region:
    """A PLZ prefix ("10") or a radius around a point; `label` is German for the UI."""

    prefix: Optional[str] = None
    center: Optional[tuple[float, float]] = None
    radius_km: Optional[float] = None
    label: str = ""

    @property
    def is_radius(self) -> bool:
        return self.center is not None

    @property
    def key(self) -> str:
        """What goes into Inquiry.plan_region (5 chars at most)."""
        return (self.prefix or "")[:5]


def region_by_prefix(prefix: str, *, digits: Optional[int] = None) -> Region:
    """A region of PLZ starting with `prefix` (PLZ_PREFIX_DIGITS digits by default; 1–5 allowed)."""
    digits = digits or get_settings().PLZ_PREFIX_DIGITS
    text = (prefix or "").strip()
    if not text.isdigit() or not 1 <= len(text) <= 5:
        raise MatchingError(f"Bitte eine PLZ-Region aus {digits} Ziffern angeben, z. B. {'10'[:digits].ljust(digits, '0')}.")
    return Region(prefix=text, label=f"PLZ {text}…")


def region_by_radius(center: tuple[float, float], radius_km: float, *, label: str = "") -> Region:
    if not (0 < radius_km <= MAX_REACH_KM):
        raise MatchingError(f"Der Umkreis muss zwischen 1 und {MAX_REACH_KM} km liegen.")
    return Region(center=center, radius_km=float(radius_km), label=label or f"{format_number(radius_km)} km Umkreis")


def region_around_plz(session: Session, plz: str, radius_km: float) -> Region:
    centroid = geo.plz_centroid(session, plz)
    if centroid is None:
        raise MatchingError(f"Die PLZ {plz} ist unbekannt – bitte eine fünfstellige PLZ angeben, z. B. 10115.")
    return region_by_radius(centroid, radius_km, label=f"{format_number(radius_km)} km um {plz}")


def _plz_in_prefix(col, prefix: str):
    # A range on equal-length digit strings uses the (status, plz) index in any collation.
    return col.between(prefix.ljust(5, "0"), prefix.ljust(5, "9"))


def _therapist_region_clause(region: Optional[Region]):
    if region is None:
        return None
    if region.prefix is not None:
        return _plz_in_prefix(Therapist.plz, region.prefix)
    box = geo.bounding_box(region.center, region.radius_km)
    return and_(Therapist.lat.between(box.min_lat, box.max_lat), Therapist.lon.between(box.min_lon, box.max_lon))


def active_regions(session: Session, *, digits: Optional[int] = None) -> list[str]:
    """PLZ prefixes of patients with an active, not yet placed search."""
    digits = digits or get_settings().PLZ_PREFIX_DIGITS
    pref = func.substr(Patient.plz, 1, digits)
    rows = session.execute(
        select(pref)
        .join(Search, Search.patient_id == Patient.id)
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_(None), Patient.plz.is_not(None))
        .group_by(pref)
        .order_by(pref)
    ).scalars()
    return [r for r in rows if r]


# =========================================================================== therapists: contactable


_THERAPIST_COLS = (
    Therapist.id,
    Therapist.status,
    Therapist.title,
    Therapist.first_name,
    Therapist.last_name,
    Therapist.gender,
    Therapist.plz,
    Therapist.city,
    Therapist.street,
    Therapist.lat,
    Therapist.lon,
    Therapist.email,
    Therapist.phone,
    Therapist.potentially_available,
    Therapist.knows_us,
    Therapist.next_contact_at,
    Therapist.patient_gender_preference,
    Therapist.offers_vt,
    Therapist.offers_tp,
    Therapist.offers_ap,
    Therapist.offers_st,
    Therapist.offers_individual,
    Therapist.offers_group,
    Therapist.age_min,
    Therapist.age_max,
)


def _open_inquiry_of_therapist():
    return (
        select(func.min(Inquiry.id))
        .where(Inquiry.therapist_id == Therapist.id, open_inquiry_clause())
        .correlate(Therapist)
        .scalar_subquery()
    )


def _methods_of(row) -> frozenset[str]:
    return frozenset(
        code for code, on in (("VT", row.offers_vt), ("TP", row.offers_tp), ("AP", row.offers_ap), ("ST", row.offers_st)) if on
    )


def profile_of(row) -> rules.TherapistProfile:
    return rules.TherapistProfile(
        id=row.id,
        status=row.status,
        next_contact_at=row.next_contact_at,
        gender=row.gender,
        patient_gender_preference=row.patient_gender_preference,
        methods=_methods_of(row),
        offers_individual=bool(row.offers_individual),
        age_min=row.age_min,
        age_max=row.age_max,
        lat=row.lat,
        lon=row.lon,
    )


@dataclass(frozen=True)
class ContactableRow:
    id: int
    name: str
    title: Optional[str]
    first_name: str
    last_name: str
    plz: Optional[str]
    city: Optional[str]
    has_email: bool
    has_phone: bool
    potentially_available: bool
    knows_us: bool
    tier: int
    methods: str
    practice_size: int  # therapists sharing the e-mail address (1 = single)
    distance_km: Optional[float]  # from the region's centre (radius regions only)
    lat: Optional[float]
    lon: Optional[float]
    last_cooling_until: Optional[date]  # the last cooling date (≤ today), for orientation
    # contact data: None for roles without Permission.view_sensitive
    email: Optional[str] = None
    phone: Optional[str] = None
    profile: Optional[rules.TherapistProfile] = field(default=None, compare=False, repr=False)


@dataclass
class ContactablePage:
    rows: list[ContactableRow]
    total: int
    offset: int
    limit: int
    region: Region
    hidden_pending: int = 0  # therapists (incl. practices) left out because an inquiry is open
    hidden_cooling: int = 0


def _full_name(row) -> str:
    return " ".join(p for p in (row.title, row.first_name, row.last_name) if p)


def contactable_all(session: Session, region: Optional[Region], *, today: date) -> tuple[list[ContactableRow], int, int]:
    """Every contactable therapist of the region, sorted; plus how many were hidden
    (pending, cooling). Practices sharing an e-mail appear once (their owner)."""
    open_col = _open_inquiry_of_therapist().label("open_inquiry_id")
    stmt = select(*_THERAPIST_COLS, open_col).where(Therapist.status == TherapistStatus.active)
    clause = _therapist_region_clause(region)
    if clause is not None:
        stmt = stmt.where(clause)
    rows = session.execute(stmt).all()
    distances: dict[int, float] = {}
    if region is not None and region.is_radius:
        if rows:
            d = geo.distances_km(region.center, [r.lat for r in rows], [r.lon for r in rows])
            keep = []
            for r, dist in zip(rows, d):
                if not np.isnan(dist) and dist <= region.radius_km:
                    keep.append(r)
                    distances[r.id] = float(dist)
            rows = keep

    # Practices: every therapist (any status, anywhere) sharing a normalised e-mail.
    region_ids = {r.id for r in rows}
    emails = {rules.normalise_email(r.email) for r in rows if rules.normalise_email(r.email)}
    members: dict[str, list] = defaultdict(list)
    for r in rows:
        key = rules.normalise_email(r.email)
        if key:
            members[key].append(r)
    if emails:
        if region is None:
            extra_stmt = select(*_THERAPIST_COLS, open_col).where(
                Therapist.status != TherapistStatus.active, Therapist.email.is_not(None)
            )
            extra = [r for r in session.execute(extra_stmt).all() if rules.normalise_email(r.email) in emails]
        else:
            # one hashed semi-join with the region's addresses (a long IN list would be
            # compared row by row)
            region_emails = select(email_key()).where(Therapist.status == TherapistStatus.active, clause)
            other = Therapist.__table__.alias("member")
            member_key = func.lower(func.trim(other.c.email))
            member_ids = [
                i
                for i in session.scalars(select(other.c.id).where(other.c.email.is_not(None), member_key.in_(region_emails)))
                if i not in region_ids
            ]
            extra = []
            for chunk in _chunks(member_ids):
                extra.extend(session.execute(select(*_THERAPIST_COLS, open_col).where(Therapist.id.in_(chunk))).all())
        for r in extra:
            if r.id not in region_ids:
                members[rules.normalise_email(r.email)].append(r)

    out: list[ContactableRow] = []
    hidden_pending = hidden_cooling = 0
    seen_practices: set[str] = set()
    for r in rows:
        key = rules.normalise_email(r.email)
        size = 1
        if key:
            if key in seen_practices:
                continue
            seen_practices.add(key)
            group = members[key]
            size = len(group)
            if any(m.open_inquiry_id is not None for m in group):
                hidden_pending += 1
                continue
            if any(m.next_contact_at is not None and m.next_contact_at > today for m in group):
                hidden_cooling += 1
                continue
            candidates = [m for m in group if m.id in region_ids]
            owner_id = rules.practice_owner(
                [rules.PracticeMember(m.id, m.title, m.last_name) for m in candidates], key
            )
            r = next(m for m in candidates if m.id == owner_id)
        else:
            if r.open_inquiry_id is not None:
                hidden_pending += 1
                continue
            if r.next_contact_at is not None and r.next_contact_at > today:
                hidden_cooling += 1
                continue
        out.append(
            ContactableRow(
                id=r.id,
                name=_full_name(r),
                title=r.title,
                first_name=r.first_name,
                last_name=r.last_name,
                plz=r.plz,
                city=r.city,
                has_email=bool(key),
                has_phone=bool(r.phone),
                potentially_available=bool(r.potentially_available),
                knows_us=bool(r.knows_us),
                tier=rules.contact_tier(bool(r.potentially_available), bool(r.knows_us)),
                methods=", ".join(c for c in rules.METHOD_CODES if c in _methods_of(r)) or "–",
                practice_size=size,
                distance_km=distances.get(r.id),
                lat=r.lat,
                lon=r.lon,
                last_cooling_until=r.next_contact_at,
                email=r.email,
                phone=r.phone,
                profile=profile_of(r),
            )
        )
    out.sort(
        key=lambda c: rules.contactable_sort_key(
            potentially_available=c.potentially_available, knows_us=c.knows_us, has_email=c.has_email,
            last_name=c.last_name, first_name=c.first_name, therapist_id=c.id,
        )
    )
    return out, hidden_pending, hidden_cooling


def contactable_therapists(
    session: Session, actor: Actor, region: Region, *, today: date, offset: int = 0, limit: int = 50
) -> ContactablePage:
    """One page of the therapists that may be asked now in `region`, in contact order:
    (potentially available and knows us; potentially available; knows us; the rest), with
    e-mail before without, then surname and first name. `total` counts every one of them:
    nothing is cut off silently."""
    actor.require(Permission.view)
    rows, pending, cooling = contactable_all(session, region, today=today)
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    page = rows[offset : offset + limit]
    if not actor.can(Permission.view_sensitive):
        page = [_strip_contact(r) for r in page]
    return ContactablePage(
        rows=page, total=len(rows), offset=offset, limit=limit, region=region,
        hidden_pending=pending, hidden_cooling=cooling,
    )


def _strip_contact(row: ContactableRow) -> ContactableRow:
    from dataclasses import replace

    return replace(row, email=None, phone=None)


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
    f = SearchFrame(
        rows=rows,
        ids=np.fromiter((r.search_id for r in rows), dtype=np.int64, count=n),
        patient_ids=np.fromiter((r.patient_id for r in rows), dtype=np.int64, count=n),
        lat=np.array([np.nan if r.lat is None else r.lat for r in rows], dtype=np.float64),
        lon=np.array([np.nan if r.lon is None else r.lon for r in rows], dtype=np.float64),
        max_km=np.fromiter((rules.effective_max_km(r.max_distance_km, default_km) for r in rows), dtype=np.float64, count=n),
        gender=np.fromiter((rules.GENDER_CODES[r.gender] for r in rows), dtype=np.int8, count=n),
        preference=np.fromiter((rules.PREFERENCE_CODES[r.preferred_therapist_gender] for r in rows), dtype=np.int8, count=n),
        methods=np.fromiter((rules.method_mask(r.preferred_methods) for r in rows), dtype=np.int16, count=n),
        open_to_group=np.fromiter((bool(r.open_to_group) for r in rows), dtype=bool, count=n),
        age=np.array(
            [np.nan if r.birth_date is None else float(rules.age_on(r.birth_date, today)) for r in rows], dtype=np.float64
        ),
    )
    return f


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
    rows = session.execute(stmt.order_by(Search.started_on, Search.id)).all()
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


def load_searches_reaching(
    session: Session, point: tuple[float, float], *, today: date, default_km: int, factor: float = 1.0
) -> SearchFrame:
    """Active, unplaced searches whose patient's own circle (radius = factor × their max km)
    can contain `point`: one scan, each patient with their own radius (a superset of the
    exact circle from lower bounds of the great-circle distance; the exact distance is
    computed afterwards). No separate query for the largest radius is needed."""
    lat0, lon0 = point
    # all arithmetic in double precision (an integer + 0.01 would make PostgreSQL use numeric)
    max_km = sa.cast(func.coalesce(Patient.max_distance_km, default_km), sa.Float)
    margin = 0.01  # km
    stmt = _candidate_search_stmt().where(func.abs(Patient.lat - lat0) * (KM_PER_DEG / factor) - margin <= max_km)
    if _patient_coordinate_index(session):
        # with an index on patients(lat, lon) a box with the largest radius of any patient
        # (cheap with an index on max_distance_km) lets PostgreSQL read only that band
        largest = session.scalar(select(func.max(Patient.max_distance_km))) or 0
        box = geo.bounding_box(point, min(MAX_REACH_KM, max(largest, default_km)) * factor + margin)
        stmt = stmt.where(Patient.lat.between(box.min_lat, box.max_lat), Patient.lon.between(box.min_lon, box.max_lon))
    # distance >= 2R·cos(φmax)·sin(Δλ/2) >= KM_PER_DEG·cos(φmax)·0.99·|Δλ°| for |Δλ| ≤ 14°
    band = MAX_REACH_KM * factor / KM_PER_DEG
    cos_low = math.cos(math.radians(min(89.0, abs(lat0) + band)))
    if cos_low >= 0.2 and abs(lon0) <= 160:
        dlon = func.abs(Patient.lon - lon0)
        stmt = stmt.where(dlon <= 14.0, dlon * (KM_PER_DEG * cos_low * 0.99 / factor) - margin <= max_km)
    rows = session.execute(stmt.order_by(Search.started_on, Search.id)).all()
    return _search_frame(rows, today=today, default_km=default_km)


def load_all_searches(session: Session, *, today: date, default_km: int) -> SearchFrame:
    rows = session.execute(_candidate_search_stmt().order_by(Search.started_on, Search.id)).all()
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
        q = select(PatientExclusion.patient_id, PatientExclusion.therapist_id)
        if tc is not None:
            q = q.where(PatientExclusion.therapist_id.in_(tc))
        rel.patient_exclusions.update((p, t) for p, t in session.execute(q))
        q = select(SearchExclusion.search_id, SearchExclusion.therapist_id)
        if tc is not None:
            q = q.where(SearchExclusion.therapist_id.in_(tc))
        rel.search_exclusions.update((s, t) for s, t in session.execute(q))
        q = (
            select(InquiryPatient.search_id, Inquiry.therapist_id, InquiryPatient.outcome)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(InquiryPatient.outcome.in_(list(rules.BAD_HISTORY)))
        )
        if tc is not None:
            q = q.where(Inquiry.therapist_id.in_(tc))
        for s, t, o in session.execute(q):
            rel.bad_history[(s, t)] = o
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


# =========================================================================== one therapist


def _therapist_row(session: Session, therapist_id: int):
    return session.execute(select(*_THERAPIST_COLS).where(Therapist.id == therapist_id)).one_or_none()


def therapist_state(
    session: Session, therapist_id: int, email: Optional[str], *, exclude_inquiry_id: Optional[int] = None
) -> rules.TherapistState:
    """Open inquiry of the therapist, and of / cooling in the rest of the practice."""
    own = session.scalar(
        select(func.min(Inquiry.id)).where(Inquiry.therapist_id == therapist_id, open_inquiry_clause(exclude_inquiry_id))
    )
    practice_open = practice_cooling = None
    key = rules.normalise_email(email)
    if key:
        others = session.execute(
            select(Therapist.id, Therapist.next_contact_at).where(same_email(key), Therapist.id != therapist_id)
        ).all()
        if others:
            ids = [o.id for o in others]
            practice_open = session.scalar(
                select(func.min(Inquiry.id)).where(Inquiry.therapist_id.in_(ids), open_inquiry_clause(exclude_inquiry_id))
            )
            dates = [o.next_contact_at for o in others if o.next_contact_at is not None]
            practice_cooling = max(dates) if dates else None
    return rules.TherapistState(
        open_inquiry_id=own, practice_open_inquiry_id=practice_open, practice_cooling_until=practice_cooling
    )


def practice_member_ids(session: Session, therapist_id: int, email: Optional[str]) -> list[int]:
    """The therapist and everyone sharing the normalised e-mail, in id order."""
    key = rules.normalise_email(email)
    if not key:
        return [therapist_id]
    ids = set(session.scalars(select(Therapist.id).where(same_email(key))))
    ids.add(therapist_id)
    return sorted(ids)


def _profile_mask_for_therapist(t: rules.TherapistProfile, frame: SearchFrame, distances: np.ndarray) -> np.ndarray:
    return rules.profile_mask(
        distance=distances,
        max_km=frame.max_km,
        patient_gender=frame.gender,
        patient_preference=frame.preference,
        patient_methods=frame.methods,
        open_to_group=frame.open_to_group,
        age=frame.age,
        therapist_gender=rules.GENDER_CODES[t.gender],
        therapist_preference=rules.PREFERENCE_CODES[t.patient_gender_preference],
        therapist_methods=rules.method_mask(t.methods),
        offers_individual=t.offers_individual,
        age_min=np.nan if t.age_min is None else float(t.age_min),
        age_max=np.nan if t.age_max is None else float(t.age_max),
    )


@dataclass(frozen=True)
class Candidate:
    """An eligible search for a therapist, in waiting order."""

    search_id: int
    patient_id: int
    distance_km: float
    row: object = field(compare=False, repr=False)


def eligible_candidates(
    session: Session, profile: rules.TherapistProfile, *, today: date, settings: Settings,
    exclude_inquiry_id: Optional[int] = None,
) -> list[Candidate]:
    """Every search that passes every pair rule for this therapist, longest waiting first
    (therapist-level rules are not checked here)."""
    if profile.lat is None or profile.lon is None:
        return []
    frame = load_searches_reaching(
        session, (profile.lat, profile.lon), today=today, default_km=settings.DEFAULT_MAX_DISTANCE_KM
    )
    if not len(frame):
        return []
    distances = geo.distances_km((profile.lat, profile.lon), frame.lat, frame.lon)
    mask = _profile_mask_for_therapist(profile, frame, distances)
    idx = np.nonzero(mask)[0]
    if not len(idx):
        return []
    rel = load_relations(session, therapist_ids=[profile.id], search_ids=[int(frame.ids[i]) for i in idx])
    cap = settings.MAX_OPEN_INQUIRIES_PER_SEARCH
    out: list[Candidate] = []
    for i in idx:
        sid, pid = int(frame.ids[i]), int(frame.patient_ids[i])
        if rel.blocked(sid, pid, profile.id) or rel.open_counts.get(sid, 0) >= cap:
            continue
        out.append(Candidate(sid, pid, float(distances[i]), frame.rows[i]))
    return out


def propose_inquiry(
    session: Session, therapist_id: int, *, today: date, settings: Optional[Settings] = None,
    actor: Optional[Actor] = None,
) -> list[int]:
    """Search ids for an inquiry to this therapist, in inquiry order (longest waiting first,
    at most MAX_INQUIRY_SIZE). Empty when the therapist may not be asked now (blocked,
    cooling, open inquiry, practice pending or cooling) or nobody qualifies."""
    if actor is not None:
        actor.require(Permission.view)
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    if row is None:
        return []
    profile = profile_of(row)
    if rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today):
        return []
    candidates = eligible_candidates(session, profile, today=today, settings=settings)
    return rules.take_proposal([c.search_id for c in candidates], settings.MAX_INQUIRY_SIZE)


def _search_row(session: Session, search_id: int):
    return session.execute(
        select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id).where(Search.id == search_id)
    ).one_or_none()


def pair_distance(t_lat, t_lon, s_lat, s_lon) -> Optional[float]:
    """The same vectorised formula as the proposal (so boundaries agree to the last bit)."""
    if None in (t_lat, t_lon, s_lat, s_lon):
        return None
    d = float(geo.distances_km((t_lat, t_lon), [s_lat], [s_lon])[0])
    return None if np.isnan(d) else d


def ineligibility_reasons(
    session: Session, therapist_id: int, search_id: int, *, today: date, settings: Optional[Settings] = None,
    actor: Optional[Actor] = None,
) -> list[str]:
    """Why this search cannot go into an inquiry to this therapist now: one German sentence
    per failed rule (therapist-level rules first); empty when it can."""
    if actor is not None:
        actor.require(Permission.view)
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    if row is None:
        return ["Diese Therapeut:in gibt es nicht (mehr)."]
    srow = _search_row(session, search_id)
    if srow is None:
        return ["Diese Platzsuche gibt es nicht (mehr)."]
    profile = profile_of(row)
    reasons = rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today)
    rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[search_id])
    sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
    reasons += rules.pair_reasons(
        profile, sp, rel.facts(search_id, srow.patient_id, therapist_id),
        distance_km=pair_distance(row.lat, row.lon, srow.lat, srow.lon), today=today,
        cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
    )
    return reasons


@dataclass
class CheckResult:
    """The re-check of a planned inquiry: therapist-level reasons and, per search, the pair
    reasons (empty lists: fine)."""

    therapist_reasons: list[str]
    search_reasons: dict[int, list[str]]

    @property
    def ok(self) -> bool:
        return not self.therapist_reasons and not any(self.search_reasons.values())

    def valid_ids(self) -> list[int]:
        return [sid for sid, reasons in self.search_reasons.items() if not reasons]


def check_inquiry(
    session: Session, therapist_id: int, search_ids: Sequence[int], *, today: date, settings: Settings,
    exclude_inquiry_id: Optional[int] = None,
) -> CheckResult:
    """Every rule for an inquiry to `therapist_id` with `search_ids`, from fresh queries
    (call it after taking the row locks). `exclude_inquiry_id`: an existing inquiry that is
    being re-checked does not count against itself."""
    row = _therapist_row(session, therapist_id)
    if row is None:
        return CheckResult(["Diese Therapeut:in gibt es nicht (mehr)."], {sid: [] for sid in search_ids})
    profile = profile_of(row)
    t_reasons = rules.therapist_reasons(
        profile, therapist_state(session, therapist_id, row.email, exclude_inquiry_id=exclude_inquiry_id), today=today
    )
    srows = {
        r.search_id: r
        for r in session.execute(
            select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id).where(Search.id.in_(list(search_ids)))
        )
    }
    rel = load_relations(
        session, therapist_ids=[therapist_id], search_ids=list(search_ids), exclude_inquiry_id=exclude_inquiry_id
    )
    per_search: dict[int, list[str]] = {}
    for sid in search_ids:
        srow = srows.get(sid)
        if srow is None:
            per_search[sid] = ["Diese Platzsuche gibt es nicht (mehr)."]
            continue
        sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
        per_search[sid] = rules.pair_reasons(
            profile, sp, rel.facts(sid, srow.patient_id, therapist_id),
            distance_km=pair_distance(row.lat, row.lon, srow.lat, srow.lon), today=today,
            cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
        )
    return CheckResult(t_reasons, per_search)


# =========================================================================== proposal view for the page


@dataclass(frozen=True)
class CandidateRow:
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    city: Optional[str]
    waiting_days: int
    started_on: date
    distance_km: Optional[float]
    max_km: int
    age: Optional[int]  # None for roles without view_sensitive
    eligible: bool
    proposed: bool
    reasons: tuple[str, ...] = ()


@dataclass
class ProposalView:
    therapist_id: int
    therapist_name: str
    therapist_place: str
    has_email: bool
    has_phone: bool
    therapist_reasons: list[str]
    eligible: list[CandidateRow]  # every eligible search, waiting order; the first ones proposed
    rejected: list[CandidateRow]  # nearby searches that fail, with reasons
    rejected_total: int
    max_size: int


def proposal_view(
    session: Session, actor: Actor, therapist_id: int, *, today: date, settings: Optional[Settings] = None,
    explain_limit: int = 30,
) -> ProposalView:
    """The proposal for one therapist with every eligible search and, for nearby searches
    that do not qualify, the reasons ("Warum nicht?")."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    if row is None:
        raise MatchingError("Diese Therapeut:in gibt es nicht (mehr).")
    profile = profile_of(row)
    t_reasons = rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today)
    show_age = actor.can(Permission.view_sensitive)
    eligible: list[CandidateRow] = []
    rejected: list[CandidateRow] = []
    rejected_total = 0
    if profile.lat is not None and profile.lon is not None:
        frame = load_searches_reaching(
            session, (profile.lat, profile.lon), today=today, default_km=settings.DEFAULT_MAX_DISTANCE_KM, factor=1.5
        )
        distances = geo.distances_km((profile.lat, profile.lon), frame.lat, frame.lon) if len(frame) else np.array([])
        # nearby = within the patient's limit plus 50 % (what a coordinator would ask about)
        near = [i for i in range(len(frame)) if not np.isnan(distances[i]) and distances[i] <= frame.max_km[i] * 1.5]
        rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[int(frame.ids[i]) for i in near])
        cap = settings.MAX_OPEN_INQUIRIES_PER_SEARCH
        for i in near:
            srow = frame.rows[i]
            sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
            reasons = rules.pair_reasons(
                profile, sp, rel.facts(sp.search_id, sp.patient_id, therapist_id),
                distance_km=float(distances[i]), today=today, cap=cap,
            )
            cand = CandidateRow(
                search_id=sp.search_id, patient_id=sp.patient_id,
                patient_name=f"{srow.first_name} {srow.last_name}", plz=srow.plz, city=srow.city,
                waiting_days=(today - srow.started_on).days, started_on=srow.started_on,
                distance_km=float(distances[i]), max_km=int(sp.max_km),
                age=rules.age_on(srow.birth_date, today) if show_age else None,
                eligible=not reasons, proposed=False, reasons=tuple(reasons),
            )
            if reasons:
                rejected_total += 1
                if len(rejected) < explain_limit:
                    rejected.append(cand)
            else:
                eligible.append(cand)
    if not t_reasons:
        proposed = set(rules.take_proposal([c.search_id for c in eligible], settings.MAX_INQUIRY_SIZE))
        from dataclasses import replace

        eligible = [replace(c, proposed=c.search_id in proposed) for c in eligible]
    return ProposalView(
        therapist_id=therapist_id,
        therapist_name=_full_name(row),
        therapist_place=" ".join(p for p in (row.plz, row.city) if p),
        has_email=bool(rules.normalise_email(row.email)),
        has_phone=bool(row.phone),
        therapist_reasons=t_reasons,
        eligible=eligible,
        rejected=rejected,
        rejected_total=rejected_total,
        max_size=settings.MAX_INQUIRY_SIZE,
    )


# =========================================================================== the predecessor's way (bench only)


def naive_propose(session: Session, therapist_id: int, *, today: date, settings: Optional[Settings] = None) -> list[int]:
    """The predecessor's way (upstream-domain §3), for the benchmark only: every active
    search, one by one in Python, oldest first, the distance check first, then the other
    rules with their own queries per candidate; no pre-filter, no early stop, cut to
    MAX_INQUIRY_SIZE at the end."""
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    profile = profile_of(row)
    default_km = settings.DEFAULT_MAX_DISTANCE_KM
    out = []
    rows = session.execute(
        select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id)
        .where(Search.status == SearchStatus.active).order_by(Search.started_on, Search.id)
    ).all()
    for srow in rows:
        d = None
        if None not in (srow.lat, srow.lon, row.lat, row.lon):
            d = geo.distance_km((srow.lat, srow.lon), (row.lat, row.lon))
        if rules.rule_distance(d, rules.effective_max_km(srow.max_distance_km, default_km)):
            continue
        rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[srow.search_id])
        sp = search_profile(srow, default_km)
        if not rules.pair_reasons(
            profile, sp, rel.facts(srow.search_id, srow.patient_id, therapist_id), distance_km=d, today=today,
            cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
        ):
            out.append(srow.search_id)
    return out[: settings.MAX_INQUIRY_SIZE]


__all__ = [
    "Candidate",
    "CandidateRow",
    "CheckResult",
    "check_inquiry",
    "ContactablePage",
    "ContactableRow",
    "MatchingError",
    "ProposalView",
    "Region",
    "Relations",
    "SearchFrame",
    "active_regions",
    "contactable_all",
    "contactable_therapists",
    "eligible_candidates",
    "ineligibility_reasons",
    "load_all_searches",
    "load_relations",
    "load_searches_near",
    "load_searches_reaching",
    "max_reach_km",
    "naive_propose",
    "open_inquiry_clause",
    "open_member_clause",
    "practice_member_ids",
    "propose_inquiry",
    "proposal_view",
    "region_around_plz",
    "region_by_prefix",
    "region_by_radius",
    "therapist_state",
]
