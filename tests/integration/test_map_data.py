"""Map data: state classification, region and patient views with distances (both DBs)."""

from __future__ import annotations

from datetime import date

import pytest

from core.matching import map_view as map_data
from core.platform.config import load_settings
from core.matching.map_view import MapState, classify
from core.platform.models import Inquiry
from core.platform.permissions import SYSTEM
from core.platform.vocab import TherapistStatus
from tests.support.seed import patient_with_search, therapist

TODAY = date(2026, 11, 23)
SETTINGS = load_settings(environ={}, env_file=None)


@pytest.mark.parametrize(
    "status,next_contact,open_inq,expected",
    [
        (TherapistStatus.active, None, False, MapState.contactable),
        (TherapistStatus.active, TODAY, False, MapState.contactable),  # cooling ends today
        (TherapistStatus.active, date(2026, 11, 24), False, MapState.cooling),
        (TherapistStatus.active, date(2026, 11, 24), True, MapState.open_inquiry),
        (TherapistStatus.blocked, None, True, MapState.unavailable),
        (TherapistStatus.inactive, None, False, MapState.unavailable),
    ],
)
def test_classify(status, next_contact, open_inq, expected):
    assert classify(status, next_contact, open_inq, TODAY) == expected


def test_phone_hours_today():
    assert map_data.phone_hours_on("Mo 09:00-10:00, 14:00-15:00; Mi 08:00-09:00", 0) == "heute 09:00-10:00, 14:00-15:00"
    assert map_data.phone_hours_on("Mi 08:00-09:00", 0) == "heute keine Telefonzeit"
    assert map_data.phone_hours_on(None, 0) == "keine Telefonzeiten"


def test_patient_view_distances_rings_and_states(db_session):
    p, _ = patient_with_search(db_session, lat=52.52, lon=13.40, max_distance_km=15, plz="10178")
    near = therapist(db_session, last_name="Nah", email="nah@example.org", lat=52.53, lon=13.41)
    cooling = therapist(db_session, last_name="Kuehl", email="kuehl@example.org", lat=52.50, lon=13.35, next_contact_at=date(2026, 12, 20))
    busy = therapist(db_session, last_name="Belegt", email="belegt@example.org", lat=52.55, lon=13.45)
    db_session.add(Inquiry(therapist_id=busy.id, channel="email", status="sent", size=1))
    blocked = therapist(db_session, last_name="Gesperrt", email="gesperrt@example.org", lat=52.51, lon=13.42, status="blocked")
    far = therapist(db_session, last_name="Muenchen", email="muenchen@example.org", plz="80331", lat=48.137, lon=11.575)
    db_session.flush()
    view = map_data.patient_view(db_session, SYSTEM, SETTINGS, p.id, today=TODAY)
    ids = {t.id: t for t in view.therapists}
    assert far.id not in ids
    assert ids[near.id].state == MapState.contactable
    assert ids[cooling.id].state == MapState.cooling
    assert ids[busy.id].state == MapState.open_inquiry
    assert ids[blocked.id].state == MapState.unavailable
    assert view.rings_km == (5, 10, 15, 20)
    assert 0 < ids[near.id].distance_km < 2
    assert [t.distance_km for t in view.therapists] == sorted(t.distance_km for t in view.therapists)


def test_patient_without_coordinates_gets_a_message(db_session):
    p, _ = patient_with_search(db_session, lat=None, lon=None)
    view = map_data.patient_view(db_session, SYSTEM, SETTINGS, p.id, today=TODAY)
    assert "PLZ" in view.message and not view.therapists


def test_region_view(db_session):
    therapist(db_session, plz="10115")
    therapist(db_session, plz="10999", lat=52.49, lon=13.42)
    therapist(db_session, plz="80331", lat=48.137, lon=11.575)
    patient_with_search(db_session, plz="10117")
    view = map_data.region_view(db_session, SYSTEM, "10", today=TODAY)
    assert len(view.therapists) == 2 and len(view.patients) == 1 and view.center is not None
    assert "Ziffern" in map_data.region_view(db_session, SYSTEM, "Berlin", today=TODAY).message


def test_find_patients_by_name_and_number(db_session):
    p, _ = patient_with_search(db_session, last_name="Zimmermann")
    assert [c.patient_id for c in map_data.find_patients(db_session, SYSTEM, "zimmer")] == [p.id]
    assert [c.patient_id for c in map_data.find_patients(db_session, SYSTEM, str(p.id))] == [p.id]


def test_practice_members_share_open_inquiry_and_cooling(db_session):
    """A practice (one e-mail address) is hidden by matching while any member is pending or
    cooling; the map colours every member the same way."""
    owner = therapist(db_session, last_name="Inhaberin", email="praxis-mitte@example.org", lat=52.53, lon=13.41)
    colleague = therapist(db_session, last_name="Kollege", email=" Praxis-Mitte@Example.org", lat=52.531, lon=13.411)
    db_session.add(Inquiry(therapist_id=owner.id, channel="email", status="sent", size=1))
    cooler = therapist(db_session, last_name="Kuehl", email="kuehl-praxis@example.org", lat=52.5, lon=13.3,
                       next_contact_at=date(2027, 1, 10))
    partner = therapist(db_session, last_name="Partner", email="kuehl-praxis@example.org", lat=52.5, lon=13.31)
    alone = therapist(db_session, last_name="Allein", email="allein@example.org", lat=52.52, lon=13.4)
    db_session.flush()
    view = map_data.region_view(db_session, SYSTEM, "10", today=TODAY)
    states = {t.id: t.state for t in view.therapists}
    assert states[owner.id] == states[colleague.id] == MapState.open_inquiry
    assert states[cooler.id] == states[partner.id] == MapState.cooling
    assert states[alone.id] == MapState.contactable
