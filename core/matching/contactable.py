"""Contactable therapists of a region in priority order."""

from __future__ import annotations

from dataclasses import replace

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Optional
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from core.registry.cooling import is_cooling
from core.platform.models import method_codes
from core.geo import distance as geo
from core.matching import rules
from core.platform.models import Inquiry, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import TherapistStatus
from core.matching.regions import MAX_PAGE, Region, _chunks, _therapist_region_clause, open_inquiry_clause
from core.platform.addresses import email_key, normalise_email


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
    emails = {normalise_email(r.email) for r in rows if normalise_email(r.email)}
    members: dict[str, list] = defaultdict(list)
    for r in rows:
        key = normalise_email(r.email)
        if key:
            members[key].append(r)
    if emails:
        if region is None:
            extra_stmt = select(*_THERAPIST_COLS, open_col).where(
                Therapist.status != TherapistStatus.active, Therapist.email.is_not(None)
            )
            extra = [r for r in session.execute(extra_stmt).all() if normalise_email(r.email) in emails]
        else:
            # one hashed semi-join with the region's addresses (a long IN list would be
            # compared row by row)
            region_emails = select(email_key()).where(Therapist.status == TherapistStatus.active, clause)
            other = Therapist.__table__.alias("member")
            member_key = email_key(other.c.email)
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
                members[normalise_email(r.email)].append(r)

    out: list[ContactableRow] = []
    hidden_pending = hidden_cooling = 0
    seen_practices: set[str] = set()
    for r in rows:
        key = normalise_email(r.email)
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
            if any(is_cooling(m.next_contact_at, today) for m in group):
                hidden_cooling += 1
                continue
            candidates = [m for m in group if m.id in region_ids]
            owner_id = rules.practice_owner(
                [rules.PracticeMember(m.id, m.title, m.last_name) for m in candidates], key
            )
            r = next(m for m in candidates if m.id == owner_id)
            colleagues = sorted((m for m in candidates if m.id != owner_id), key=lambda m: m.id)
        else:
            colleagues = []
            if r.open_inquiry_id is not None:
                hidden_pending += 1
                continue
            if is_cooling(r.next_contact_at, today):
                hidden_cooling += 1
                continue
        row = _contactable_row(r, has_email=bool(key), size=size, distance=distances.get(r.id))
        if colleagues:
            row = replace(row, members=(row,) + tuple(
                _contactable_row(m, has_email=True, size=size, distance=distances.get(m.id)) for m in colleagues
            ))
        out.append(row)
    out.sort(
        key=lambda c: rules.contactable_sort_key(
            potentially_available=c.potentially_available, knows_us=c.knows_us, has_email=c.has_email,
            last_name=c.last_name, first_name=c.first_name, therapist_id=c.id,
        )
    )
    return out, hidden_pending, hidden_cooling


def _contactable_row(r, *, has_email: bool, size: int, distance: Optional[float]) -> ContactableRow:
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
        methods=", ".join(c for c in rules.METHOD_CODES if c in _methods_of(r)) or "–",
        practice_size=size,
        distance_km=distance,
        lat=r.lat,
        lon=r.lon,
        last_cooling_until=r.next_contact_at,
        email=r.email,
        phone=r.phone,
        profile=profile_of(r),
    )


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

    return replace(row, email=None, phone=None, members=tuple(replace(m, email=None, phone=None) for m in row.members))


