"""The clock and the actors of the registry tests (patients, therapists, CSV, bad input)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from core.platform.permissions import Actor
from core.platform.vocab import Role

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
COORD = Actor(None, "t.koord", Role.coordinator)
VIEWER = Actor(None, "t.lesen", Role.viewer)

# A complete, valid patient and therapist as a form would send them (raw values).
PATIENT = {
    "salutation": "Frau",
    "gender": "weiblich",
    "first_name": "Jana",
    "last_name": "Müller",
    "birth_date": "14.03.1990",
    "street": "Hauptstraße 1",
    "plz": "10115",
    "city": "",
    "email": "jana.mueller@example.de",
    "phone": "0176-12345678",
    "insurer": "AOK Nordost",
    "insurance_number": "a123456780",
    "symptoms": ["Schlafstörungen", "Ängste / Panikattacken"],
    "diagnosis": "f41.1",
    "prior_therapy": True,
    "prior_therapy_end": "30.06.2020",
    "availability": "mo 9-12; Mi 14:00 – 16:00",
    "max_distance_km": "25",
    "transport": "ÖPNV",
    "open_to_group": "ja",
    "preferred_therapist_gender": "egal",
    "preferred_methods": ["VT", "TP"],
    "contracts_signed": True,
    "consent_given": True,
}

THERAPIST = {
    "salutation": "Herr",
    "title": "Dr.",
    "first_name": "Tom",
    "last_name": "Berg",
    "gender": "männlich",
    "street": "Praxisweg 3",
    "plz": "10115",
    "city": "Berlin",
    "phone": "030 1234567",
    "fax": "030 1234568",
    "email": "praxis@berg.example",
    "website": "www.praxis-berg.de",
    "methods": "VT|TP",
    "languages": "englisch|Türkisch",
    "age_min": "18",
    "age_max": "65",
    "phone_hours": "Mo 8-9; Do 12:00 – 12:50",
    "offers_group": True,
    "prefers_group": False,
}
