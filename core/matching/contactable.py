"""Contactable therapists of a region in priority order."""

from __future__ import annotations

from dataclasses import replace

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Optional, Sequence
import numpy as np
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session
from core.registry.cooling import is_cooling
from core.platform.models import method_codes
from core.geo import distance as geo
from core.matching import rules
from core.platform.models import Inquiry, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import TherapistStatus
from core.matching.regions import MAX_PAGE, Region, _chunks, _therapist_region_clause, open_inquiry_clause
from core.platform.addresses import KEYS_PER_LOOKUP, email_key, normalise_email


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
    return frozenset(method_codes(row))


def profile_of(row, methods: Optional[frozenset[str]] = None) -> rules.TherapistProfile:
    return rules.TherapistProfile(
        id=row.id,
        status=row.status,
        next_contact_at=row.next_contact_at,
        gender=row.gender,
        patient_gender_preference=row.patient_gender_preference,
        methods=_methods_of(row) if methods is None else methods,
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
    # A practice (shared e-mail) is listed once, under its owner; `members` holds every
    # contactable member of the region with its own profile (owner first), so the planner can
    # ask the colleague whose methods fit. Empty for a single therapist.
    members: tuple["ContactableRow", ...] = field(default=(), compare=False, repr=False)

    @property
    def practice_members(self) -> tuple["ContactableRow", ...]:
        return self.members or (self,)


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


@dataclass(frozen=True)
class _Entry:
    """One line of the contactable list before it is built: the raw rows (owner first)."""

    owner: object
    colleagues: tuple
    has_email: bool
    size: int


# What ordering, practices, pending and cooling need (a page fetches the rest for its rows)
_ORDER_COLS = (
    Therapist.id,
    Therapist.title,
    Therapist.first_name,
    Therapist.last_name,
    Therapist.lat,
    Therapist.lon,
    Therapist.email,
    Therapist.potentially_available,
    Therapist.knows_us,
    Therapist.next_contact_at,
)
# What another practice member outside the list contributes: its size, pending, cooling
_MEMBER_COLS = (Therapist.id, Therapist.email, Therapist.next_contact_at)


def _contactable_entries(
    session: Session, region: Optional[Region], *, today: date, full: bool = True
) -> tuple[list[_Entry], dict[int, float], int, int]:
    """The contactable list as raw rows, sorted; the distances (radius regions); how many
    were hidden (pending, cooling). Practices sharing an e-mail appear once (their owner).
    Building the view rows is left to the caller, so a page builds only what it shows;
    with `full=False` the rows carry only what the order needs (`_full_rows` adds the rest)."""
    open_col = _open_inquiry_of_therapist().label("open_inquiry_id")
    stmt = select(*(_THERAPIST_COLS if full else _ORDER_COLS), open_col).where(Therapist.status == TherapistStatus.active)
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
    keys = [normalise_email(r.email) for r in rows]
    members: dict[str, list] = defaultdict(list)
    for r, key in zip(rows, keys):
        if key:
            members[key].append(r)
    if members:
        if region is None:
            extra_stmt = select(*_MEMBER_COLS, open_col).where(
                Therapist.status != TherapistStatus.active, Therapist.email.is_not(None)
            )
            extra = [r for r in session.execute(extra_stmt).all() if normalise_email(r.email) in members]
        else:
            # the region's keys as short lists: probes of ix_therapists_email_key (a semi-join
            # with the region's query, or one list of hundreds of keys, makes PostgreSQL hash
            # every stored address instead); the region's own rows are not fetched again
            member_stmt = select(*_MEMBER_COLS, open_col).where(email_key().in_(bindparam("keys", expanding=True)))
            if not region.is_radius:
                member_stmt = member_stmt.where(~and_(Therapist.status == TherapistStatus.active, clause))
            extra = []
            for chunk in _chunks(sorted(members), KEYS_PER_LOOKUP):
                extra.extend(session.execute(member_stmt, {"keys": chunk}).all())
        for r in extra:
            if r.id not in region_ids:
                members[normalise_email(r.email)].append(r)

    entries: list[tuple[tuple, _Entry]] = []
    hidden_pending = hidden_cooling = 0
    seen_practices: set[str] = set()
    for r, key in zip(rows, keys):
        size = 1
        colleagues: tuple = ()
        if key:
            if key in seen_practices:
                continue
            seen_practices.add(key)
            group = members[key]
            size = len(group)
            if any(m.open_inquiry_id is not None for m in group):
                hidden_pending += 1
                continue
            if any(is_cooling(m.next_contact_at, today) for m in group):
                hidden_cooling += 1
                continue
            candidates = [m for m in group if m.id in region_ids]
            if len(candidates) > 1:
                owner_id = rules.practice_owner(
                    [rules.PracticeMember(m.id, m.title, m.last_name) for m in candidates], key
                )
                r = next(m for m in candidates if m.id == owner_id)
                colleagues = tuple(sorted((m for m in candidates if m.id != owner_id), key=lambda m: m.id))
            else:
                r = candidates[0]
        else:
            if r.open_inquiry_id is not None:
                hidden_pending += 1
                continue
            if is_cooling(r.next_contact_at, today):
                hidden_cooling += 1
                continue
        sort_key = rules.contactable_sort_key(
            potentially_available=bool(r.potentially_available), knows_us=bool(r.knows_us), has_email=bool(key),
            last_name=r.last_name, first_name=r.first_name, therapist_id=r.id,
        )
        entries.append((sort_key, _Entry(r, colleagues, bool(key), size)))
    entries.sort(key=lambda e: e[0])
    return [e for _, e in entries], distances, hidden_pending, hidden_cooling


def _full_rows(session: Session, entries: Sequence[_Entry]) -> dict[int, object]:
    """Every column of the entries' therapists (owners and colleagues), by id."""
    ids = [m.id for e in entries for m in (e.owner, *e.colleagues)]
    out: dict[int, object] = {}
    for chunk in _chunks(ids):
        out.update((r.id, r) for r in session.execute(select(*_THERAPIST_COLS).where(Therapist.id.in_(chunk))))
    return out


def _build(entry: _Entry, distances: dict[int, float], rows: Optional[dict[int, object]] = None) -> ContactableRow:
    """The view row of an entry; `rows`: full rows by id when the entry's rows are slim."""
    def full(r):
        return r if rows is None else rows[r.id]

    row = _contactable_row(full(entry.owner), has_email=entry.has_email, size=entry.size,
                           distance=distances.get(entry.owner.id))
    if entry.colleagues:
        row = replace(row, members=(row,) + tuple(
            _contactable_row(full(m), has_email=True, size=entry.size, distance=distances.get(m.id))
            for m in entry.colleagues
        ))
    return row


def contactable_all(session: Session, region: Optional[Region], *, today: date) -> tuple[list[ContactableRow], int, int]:
    """Every contactable therapist of the region, sorted; plus how many were hidden
    (pending, cooling). Practices sharing an e-mail appear once (their owner)."""
    entries, distances, pending, cooling = _contactable_entries(session, region, today=today)
    return [_build(e, distances) for e in entries], pending, cooling


def _contactable_row(r, *, has_email: bool, size: int, distance: Optional[float]) -> ContactableRow:
    codes = method_codes(r)  # in METHOD_CODES order
    return ContactableRow(
        id=r.id,
        name=_full_name(r),
        title=r.title,
        first_name=r.first_name,
        last_name=r.last_name,
        plz=r.plz,
        city=r.city,
        has_email=has_email,
        has_phone=bool(r.phone),
        potentially_available=bool(r.potentially_available),
        knows_us=bool(r.knows_us),
        tier=rules.contact_tier(bool(r.potentially_available), bool(r.knows_us)),
        methods=", ".join(codes) or "–",
        practice_size=size,
        distance_km=distance,
        lat=r.lat,
        lon=r.lon,
        last_cooling_until=r.next_contact_at,
        email=r.email,
        phone=r.phone,
        profile=profile_of(r, frozenset(codes)),
    )


def contactable_therapists(
    session: Session, actor: Actor, region: Region, *, today: date, offset: int = 0, limit: int = 50
) -> ContactablePage:
    """One page of the therapists that may be asked now in `region`, in contact order:
    (potentially available and knows us; potentially available; knows us; the rest), with
    e-mail before without, then surname and first name. `total` counts every one of them:
    nothing is cut off silently."""
    actor.require(Permission.view)
    entries, distances, pending, cooling = _contactable_entries(session, region, today=today, full=False)
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    shown = entries[offset : offset + limit]
    rows = _full_rows(session, shown)
    page = [_build(e, distances, rows) for e in shown]
    if not actor.can(Permission.view_sensitive):
        page = [_strip_contact(r) for r in page]
    return ContactablePage(
        rows=page, total=len(entries), offset=offset, limit=limit, region=region,
        hidden_pending=pending, hidden_cooling=cooling,
    )


def _strip_contact(row: ContactableRow) -> ContactableRow:

    return replace(row, email=None, phone=None, members=tuple(replace(m, email=None, phone=None) for m in row.members))


