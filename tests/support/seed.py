"""Small, explicit data builders for tests (not the demo generator)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from core.platform.models import Patient, PlzCentroid, Search, Therapist


def therapist(session: Session, **kw: Any) -> Therapist:
    values: dict[str, Any] = dict(
        first_name="Tina", last_name="Therapeutin", salutation="frau", gender="female", plz="10115",
        city="Berlin", lat=52.532, lon=13.385, coordinates_source="arztsuche", offers_vt=True,
        phone_hours="Mo 09:00-10:00; Di 09:00-10:00; Mi 09:00-10:00; Do 09:00-10:00; Fr 09:00-10:00",
        email="praxis@example.org",
    )
    values.update(kw)
    t = Therapist(**values)
    session.add(t)
    session.flush()
    return t


def patient_with_search(session: Session, *, started_on: date = date(2026, 9, 1), status: str = "active", **kw: Any) -> tuple[Patient, Search]:
    values: dict[str, Any] = dict(
        first_name="Paula", last_name="Patientin", gender="female", birth_date=date(1990, 5, 17), plz="10115",
        city="Berlin", lat=52.532, lon=13.385, max_distance_km=15, insurer="AOK", symptoms=["Schlafstörungen"],
        availability="Mo 08:00-18:00", contracts_signed=True, consent_given=True, status="searching",
    )
    values.update(kw)
    p = Patient(**values)
    session.add(p)
    session.flush()
    s = Search(patient_id=p.id, started_on=started_on, status=status)
    session.add(s)
    session.flush()
    return p, s


PLZ_ROWS = {
    "10115": ("Berlin", "BE", 52.532, 13.385),
    "20095": ("Hamburg", "HH", 53.551, 10.0),
    "01067": ("Dresden", "SN", 51.05, 13.74),
    "80331": ("München", "BY", 48.137, 11.575),
}


def plz_centroids(session: Session) -> None:
    """A small PLZ table (Berlin, Hamburg, Dresden, München) for registry tests."""
    session.add_all([PlzCentroid(plz=plz, city=c, state_code=st, lat=lat, lon=lon) for plz, (c, st, lat, lon) in PLZ_ROWS.items()])
    session.flush()
