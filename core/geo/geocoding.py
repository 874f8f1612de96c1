"""Therapist coordinates: 116117 data first, else the practice address geocoded (cached,
rate-limited), else the PLZ centroid (approximate).

Privacy (docs/architecture.md, "Privacy"): only Therapist rows are ever geocoded. Patient addresses never
reach this module; `practice_address` refuses anything that is not a Therapist.

The background job calls `geocode_pending_therapists`; the map page reads
`geocoding_counts`. A therapist whose practice address changed goes back into the queue
through `request_geocoding`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.adapters.geocoder import GeocodeResult, Geocoder, GeocoderError, PracticeAddress
from core.geo.plz import normalise_plz, plz_centroid
from core.platform.models import GeocodeCacheEntry, Therapist
from core.platform.vocab import CoordinatesSource

DEFAULT_BATCH = 50


@dataclass
class GeocodingSummary:
    processed: int = 0
    geocoded: int = 0  # precise coordinates from the geocoder (fresh or from the cache)
    cache_hits: int = 0
    lookups: int = 0  # addresses sent to the geocoder (cache misses)
    approximate: int = 0  # placed at the PLZ centroid
    missing: int = 0  # no coordinates at all (PLZ unknown)
    kept_manual: int = 0  # hand-entered coordinates, left alone
    failed: int = 0  # geocoder errors; the therapist stays pending
    error: Optional[str] = None  # the error that stopped the batch
    therapist_ids: list[int] = field(default_factory=list)

    def message(self) -> str:
        """One German line for the job log and the page."""
        text = (
            f"{self.processed} verarbeitet: {self.geocoded} geokodiert ({self.cache_hits} aus dem Cache), "
            f"{self.approximate} am PLZ-Mittelpunkt (ungefähr), {self.missing} ohne Koordinaten"
        )
        if self.kept_manual:
            text += f", {self.kept_manual} mit manuellen Koordinaten"
        if self.failed:
            text += f"; Geocoder-Fehler, später erneut: {self.error}"
        return text


def practice_address(therapist: Therapist) -> Optional[PracticeAddress]:
    """The practice address to geocode, or None when there is no street to look up.

    Only a Therapist is accepted: this is the single door to the geocoder."""
    if not isinstance(therapist, Therapist):
        raise TypeError("only therapist practice addresses may be geocoded")
    street = " ".join((therapist.street or "").split())
    plz = normalise_plz(therapist.plz) or ""
    city = " ".join((therapist.city or "").split())
    if not street or not (plz or city):
        return None
    return PracticeAddress(street=street, plz=plz, city=city)


def cache_key(address: PracticeAddress) -> str:
    """The geocode_cache key: case and spacing do not make a new lookup."""

    def norm(value: str) -> str:
        return " ".join(value.casefold().split())

    return f"de|{address.plz}|{norm(address.city)}|{norm(address.street)}"[:500]


def _place_at_centroid(session: Session, therapist: Therapist) -> bool:
    centroid = plz_centroid(session, therapist.plz) if therapist.plz else None
    if centroid is None:
        therapist.lat = therapist.lon = None
        therapist.coordinates_source = CoordinatesSource.missing
        return False
    therapist.lat, therapist.lon = centroid
    therapist.coordinates_source = CoordinatesSource.plz_centroid
    return True


def request_geocoding(session: Session, therapist: Therapist, *, now: datetime) -> None:
    """After a change of the practice address: the PLZ centroid now, the address geocoded later."""
    _place_at_centroid(session, therapist)
    therapist.geocode_pending = True
    therapist.updated_at = now


def _cached(session: Session, key: str) -> Optional[GeocodeCacheEntry]:
    return session.execute(select(GeocodeCacheEntry).where(GeocodeCacheEntry.query == key)).scalar_one_or_none()


def _store(session: Session, key: str, result: Optional[GeocodeResult], now: datetime) -> None:
    entry = GeocodeCacheEntry(
        query=key,
        found=result is not None,
        lat=result.lat if result else None,
        lon=result.lon if result else None,
        display_name=result.display_name if result else None,
        created_at=now,
        hit_count=0,
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        pass  # another process stored the same address meanwhile; its answer is as good


def geocode_pending_therapists(
    session: Session,
    geocoder: Optional[Geocoder],
    *,
    limit: int = DEFAULT_BATCH,
    now: datetime,
) -> GeocodingSummary:
    """Give up to `limit` therapists marked `geocode_pending` their coordinates.

    Per therapist: a cached answer (no HTTP call) or one geocoder lookup, stored in the
    cache whether found or not; found → `geocoded`; not found or no street → the PLZ
    centroid (`plz_centroid`, approximate) or `missing`. Hand-entered (`manual`)
    coordinates are never replaced.

    Without a geocoder (offline mode) therapists that have no coordinates yet are placed
    at their centroid and stay pending, so they are geocoded once a geocoder is
    configured. A geocoder error leaves the therapist pending (at the back of the queue)
    and ends the batch.

    Commits after each therapist and before each network call, so no transaction (and on
    SQLite no write lock) is held while waiting for the geocoder; pass a session without
    unrelated pending changes.
    """
    summary = GeocodingSummary()
    stmt = select(Therapist.id).where(Therapist.geocode_pending.is_(True))
    if geocoder is None:
        stmt = stmt.where(Therapist.coordinates_source == CoordinatesSource.missing)
    ids = list(session.scalars(stmt.order_by(Therapist.updated_at, Therapist.id).limit(limit)))
    session.commit()

    for therapist_id in ids:
        therapist = session.get(Therapist, therapist_id)
        if therapist is None or not therapist.geocode_pending:
            continue
        summary.processed += 1
        summary.therapist_ids.append(therapist_id)

        if therapist.coordinates_source == CoordinatesSource.manual and therapist.lat is not None and therapist.lon is not None:
            therapist.geocode_pending = False
            summary.kept_manual += 1
            session.commit()
            continue

        address = practice_address(therapist)
        if geocoder is None:
            placed = _place_at_centroid(session, therapist)
            summary.approximate += placed
            summary.missing += not placed
            therapist.updated_at = now
            session.commit()
            continue

        result: Optional[GeocodeResult] = None
        if address is not None:
            key = cache_key(address)
            entry = _cached(session, key)
            if entry is not None:
                entry.hit_count += 1
                summary.cache_hits += 1
                if entry.found and entry.lat is not None and entry.lon is not None:
                    result = GeocodeResult(entry.lat, entry.lon, entry.display_name)
            else:
                session.commit()  # end the transaction before waiting on the network
                summary.lookups += 1
                try:
                    result = geocoder.geocode(address)
                except GeocoderError as exc:
                    if therapist.lat is None or therapist.lon is None:
                        _place_at_centroid(session, therapist)
                    therapist.updated_at = now  # to the back of the queue
                    summary.failed += 1
                    summary.error = str(exc)
                    session.commit()
                    break
                _store(session, key, result, now)

        if result is not None:
            therapist.lat, therapist.lon = result.lat, result.lon
            therapist.coordinates_source = CoordinatesSource.geocoded
            summary.geocoded += 1
        else:
            placed = _place_at_centroid(session, therapist)
            summary.approximate += placed
            summary.missing += not placed
        therapist.geocode_pending = False
        therapist.updated_at = now
        session.commit()
    return summary


def geocoding_counts(session: Session) -> dict[str, int]:
    """For the map page: therapists waiting for geocoding, placed only approximately
    (PLZ centroid), and without any coordinates."""
    row = session.execute(
        select(
            func.coalesce(func.sum(case((Therapist.geocode_pending.is_(True), 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Therapist.coordinates_source == CoordinatesSource.plz_centroid, 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            (Therapist.coordinates_source == CoordinatesSource.missing)
                            | Therapist.lat.is_(None)
                            | Therapist.lon.is_(None),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        )
    ).one()
    return {"pending": int(row[0]), "approximate": int(row[1]), "missing": int(row[2])}
