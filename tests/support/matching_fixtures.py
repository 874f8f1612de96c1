"""Builders shared by the matching/inquiry integration tests (no tests in here).

Geometry: Berlin Mitte at (52.52, 13.40); one degree of latitude is about 111.2 km, so
`north(km)` moves a point that far north."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from core.platform.config import Settings
from core.platform.models import Inquiry, InquiryPatient, Patient, Search, Therapist
from core.platform.permissions import Actor
from core.platform.vocab import Role
from tests.support.seed import patient_with_search, therapist

BASE = (52.52, 13.40)
KM_PER_DEG_LAT = 111.19492664455873  # 2πR/360 with R = 6371.0088
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
SETTINGS = Settings()
COORD = Actor(user_id=None, username="k.oordination", role=Role.coordinator, display_name="Koordination")
VIEWER = Actor(user_id=None, username="l.esen", role=Role.viewer, display_name="Lesen")


def north(km: float, base: tuple[float, float] = BASE) -> tuple[float, float]:
    return (base[0] + km / KM_PER_DEG_LAT, base[1])


_counter = {"n": 0}


def _n() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_therapist(session: Session, *, at: tuple[float, float] | None = BASE, **kw: Any) -> Therapist:
    n = _n()
    values: dict[str, Any] = dict(
        last_name=kw.pop("last_name", f"Therapeut{n:04d}"),
        email=kw.pop("email", f"praxis{n}@example.org"),
        phone="+493012345678",
        plz="10115",
    )
    if at is None:
        values.update(lat=None, lon=None, coordinates_source="missing")
    else:
        values.update(lat=at[0], lon=at[1])
    values.update(kw)
    return therapist(session, **values)


def make_search(
    session: Session, *, at: tuple[float, float] | None = BASE, started_on: date = date(2026, 9, 1), **kw: Any
) -> Search:
    n = _n()
    values: dict[str, Any] = dict(last_name=kw.pop("last_name", f"Patient{n:04d}"), max_distance_km=25, plz="10115")
    if at is None:
        values.update(lat=None, lon=None)
    else:
        values.update(lat=at[0], lon=at[1])
    status = kw.pop("status", "active")
    values.update(kw)
    _, search = patient_with_search(session, started_on=started_on, status=status, **values)
    return search


def open_inquiry(session: Session, therapist_id: int, search_ids: list[int], *, status: str = "sent", origin: str = "manual") -> Inquiry:
    """An inquiry row written directly (state of the world, not through the services)."""
    inquiry = Inquiry(therapist_id=therapist_id, channel="email", status=status, origin=origin, size=max(len(search_ids), 1),
                      sent_at=NOW if status in ("sent", "answered", "expired") else None)
    inquiry.patients = [InquiryPatient(search_id=sid, position=i) for i, sid in enumerate(search_ids, start=1)]
    session.add(inquiry)
    session.flush()
    return inquiry


def patient_of(session: Session, search: Search) -> Patient:
    return session.get(Patient, search.patient_id)
