"""Regions (PLZ prefix, radius) and the SQL pieces every matching query shares."""

from __future__ import annotations


from dataclasses import dataclass
from typing import Iterable, Optional, Sequence
from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session
from core.geo import distance as geo
from core.geo import plz as geo_plz
from core.platform.config import get_settings
from core.platform.formatting import format_number
from core.platform.models import Inquiry, InquiryPatient, Patient, Search, Therapist
from core.platform.vocab import OPEN_INQUIRY_STATUSES, InquiryOrigin, InquiryStatus, Outcome, SearchStatus


OPEN_STATUSES = OPEN_INQUIRY_STATUSES  # defined in the platform vocabulary (the lock order needs it too)
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
    centroid = geo_plz.plz_centroid(session, plz)
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


