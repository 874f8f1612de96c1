"""The search box: numbers, name parts, e-mail and phone, respecting the role (both databases)."""

from __future__ import annotations

from core.reports.lookup import classify, find, national_digits
from tests.support.matching_fixtures import COORD, VIEWER, make_search, make_therapist, open_inquiry, patient_of


def _world(s):
    search = make_search(s, first_name="Greta", last_name="Sonnenfeld", phone="+4930987654", email="greta.s@example.org")
    patient = patient_of(s, search)
    make_search(s, first_name="Gregor", last_name="Sonnenberg")
    t = make_therapist(s, first_name="Theo", last_name="Sonnenschein", phone="+4940111222", email="praxis.sonne@example.org")
    inquiry = open_inquiry(s, t.id, [search.id])
    return patient, search, t, inquiry


def test_classify_is_pure():
    assert classify("p152") == ("reference", "P152")
    assert classify(" A 253 ") == ("reference", "A253")
    assert classify("Müller") == ("name", "Müller")
    assert classify("MAX@Example.org") == ("email", "max@example.org")
    assert classify("030 987654") == ("phone", "30987654")
    assert classify("+49 30 987654") == ("phone", "30987654")
    assert classify("12") == ("empty", "")
    assert national_digits("0049 (30) 98-76-54") == "30987654"


def test_patient_by_number_name_part_and_phone(db_session):
    patient, search, t, inquiry = _world(db_session)
    by_number = find(db_session, COORD, f"P{patient.id}").hits
    assert [(h.kind, h.id, h.reference) for h in by_number] == [("patient", patient.id, f"P{patient.id}")]
    by_name = find(db_session, COORD, "sonnenf").hits
    assert [(h.kind, h.id) for h in by_name] == [("patient", patient.id)]
    both = find(db_session, COORD, "gre sonnen").hits  # every word must match first or last name
    assert {h.title for h in both} == {"Greta Sonnenfeld", "Gregor Sonnenberg"}
    by_phone = find(db_session, COORD, "030 987654").hits
    assert [(h.kind, h.id) for h in by_phone] == [("patient", patient.id)]
    by_mail = find(db_session, COORD, "greta.s@example").hits
    assert [(h.kind, h.id) for h in by_mail] == [("patient", patient.id)]
    assert [h.kind for h in find(db_session, COORD, "040 111222").hits] == ["therapist"]
    assert find(db_session, COORD, f"S{search.id}").hits[0].id == patient.id  # a search opens its patient


def test_viewer_finds_by_number_and_name_but_not_by_contact_data(db_session):
    patient, _search, _t, inquiry = _world(db_session)
    assert [h.id for h in find(db_session, VIEWER, f"P{patient.id}").hits] == [patient.id]
    assert [h.id for h in find(db_session, VIEWER, "Sonnenfeld").hits] == [patient.id]
    phone = find(db_session, VIEWER, "030 987654")
    assert phone.hits == [] and "nicht freigegeben" in phone.note
    assert find(db_session, VIEWER, "greta.s@example.org").hits == []
    assert find(db_session, VIEWER, f"A{inquiry.id}").hits[0].kind == "inquiry"


def test_inquiry_by_a_number(db_session):
    _patient, _search, t, inquiry = _world(db_session)
    hits = find(db_session, COORD, f"a{inquiry.id}").hits
    assert [(h.kind, h.id, h.reference) for h in hits] == [("inquiry", inquiry.id, f"A{inquiry.id}")]
    assert "Sonnenschein" in hits[0].title
    assert find(db_session, COORD, "A999999").hits == []


def test_like_wildcards_are_literal(db_session):
    _world(db_session)
    assert find(db_session, COORD, "%").hits == []
    assert find(db_session, COORD, "_").hits == []
