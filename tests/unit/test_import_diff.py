"""Identity keys and per-therapist change computation of the importer (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.arztsuche import parse_response
from core.imports import diff, identity
from core.imports.diff import FieldChange, KnownTherapist, SearchArea
from core.imports.identity import IdentityIndex, keys_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche"


@pytest.fixture(scope="module")
def records():
    return {r.last_name: r for r in parse_response(json.loads((FIXTURES / "current_2026.json").read_text("utf-8")))}


def therapist(**kw):
    base = dict(
        salutation="frau", title="Dipl.-Psych.", first_name="Anna", last_name="Beispiel", gender="female",
        street="Musterstraße 12a", plz="50667", city="Köln", lat=50.9381, lon=6.9571,
        phone="0221 4710123", fax="0221 4710124", email="kontakt@praxis-beispiel.example",
        website="https://www.praxis-beispiel.example", methods={"VT"}, offers_individual=True, offers_group=True,
        languages=["Englisch", "Spanisch"],
        phone_hours="Mo 12:00-12:50; Mi 12:00-12:50; Do 08:00-08:50; Fr 08:30-09:00, 13:00-13:25",
    )
    base.update(kw)
    return SimpleNamespace(**base)


# --------------------------------------------------------------------------- identity


def test_keys_ignore_spelling_of_street_case_umlauts_and_title():
    a = keys_for(first_name="Jürgen", last_name="Weiß-Öztürk", plz="01099", street="Königsbrücker Straße 5 b", email=None)
    b = keys_for(first_name="JUERGEN", last_name="Weiss Oeztuerk", plz="01099", street="Koenigsbruecker Str. 5b", email=None)
    assert a.address == b.address and a.address is not None
    assert a.name_plz == b.name_plz


def test_middle_names_do_not_change_the_key_but_the_house_number_does():
    a = keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None)
    b = keys_for(first_name="Anna Maria", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None)
    c = keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 14", email=None)
    assert a.address == b.address
    assert a.address != c.address and a.name_plz == c.name_plz


def test_record_keys_equal_stored_keys(records):
    anna = records["Beispiel"]
    stored = keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email="Kontakt@Praxis-Beispiel.example")
    assert identity.record_keys(anna) == stored


def test_split_street():
    assert identity.split_street("Musterstraße 12a") == ("Musterstraße", "12a")
    assert identity.split_street("Beispielweg 3-5") == ("Beispielweg", "3-5")
    assert identity.split_street("Straße des 17. Juni 100") == ("Straße des 17. Juni", "100")
    assert identity.split_street("Am Markt") == ("Am Markt", "")


def test_matching_order_address_then_name_plz_then_email():
    index = IdentityIndex.build([
        (1, keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None)),
        (2, keys_for(first_name="Jonas", last_name="Muster", plz="50672", street="Altweg 1", email=None)),
        (3, keys_for(first_name="Eva", last_name="Alt", plz="10115", street="Weg 1", email="eva@praxis.example")),
    ])
    m = index.match(keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstr. 12 a", email=None))
    assert (m.kind, m.therapist_id) == ("address", 1)
    m = index.match(keys_for(first_name="Jonas", last_name="Muster", plz="50672", street="Beispielweg 3-5", email=None))
    assert (m.kind, m.therapist_id) == ("name_plz", 2)
    m = index.match(keys_for(first_name="Eva", last_name="Neu", plz="10115", street="Weg 1", email="EVA@praxis.example"))
    assert (m.kind, m.therapist_id) == ("email", 3)
    m = index.match(keys_for(first_name="Zoe", last_name="Fremd", plz="10115", street="Weg 9", email=None))
    assert m.kind == "none" and m.therapist_id is None


def test_ambiguous_matches_go_to_review_instead_of_guessing():
    # two colleagues with the same shared practice e-mail; a renamed record matches both
    index = IdentityIndex.build([
        (1, keys_for(first_name="Eva", last_name="Alt", plz="10115", street="Weg 1", email="praxis@team.example")),
        (2, keys_for(first_name="Ina", last_name="Berg", plz="10115", street="Weg 1", email="praxis@team.example")),
        (3, keys_for(first_name="Tom", last_name="Gleich", plz="20095", street="A 1", email=None)),
        (4, keys_for(first_name="Tom", last_name="Gleich", plz="20095", street="B 2", email=None)),
    ])
    m = index.match(keys_for(first_name="Eva", last_name="Neu", plz="10115", street="Weg 1", email="praxis@team.example"))
    assert m.kind == "ambiguous" and m.candidates == (1, 2) and "bitte zuordnen" in m.reason
    m = index.match(keys_for(first_name="Tom", last_name="Gleich", plz="20095", street="C 3", email=None))
    assert m.kind == "ambiguous" and m.candidates == (3, 4)


def test_two_records_claiming_one_therapist():
    index = IdentityIndex.build([(1, keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None))])
    first = index.claim(keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None))
    assert first.therapist_id == 1
    same = index.claim(keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Musterstraße 12a", email=None))
    assert same.kind == "duplicate"
    other = index.claim(keys_for(first_name="Anna", last_name="Beispiel", plz="50667", street="Zweitpraxis 1", email=None))
    assert other.kind == "ambiguous" and other.therapist_id is None


def test_dedupe_keeps_the_same_person_at_two_addresses(records):
    anna = records["Beispiel"]
    again = parse_response(json.loads((FIXTURES / "current_2026.json").read_text("utf-8")))[0]
    unique, dups = identity.dedupe([anna, again, records["Muster"]])
    assert [r.last_name for r in unique] == ["Beispiel", "Muster"] and len(dups) == 1


# --------------------------------------------------------------------------- changes


def test_new_therapist_proposes_every_given_value(records):
    change = diff.new_change(diff.record_values(records["Beispiel"]))
    assert change.kind == "new"
    assert change.fields["methods"].new == ["VT"]
    assert change.fields["phone_hours"].new.startswith("Mo 12:00-12:50")
    assert change.fields["coordinates"].new == [50.9381, 6.9571]
    assert all(fc.old is None and not fc.conflict for fc in change.fields.values())
    # Jonas has no e-mail: the field is not proposed at all
    assert "email" not in diff.new_change(diff.record_values(records["Muster"])).fields


def test_same_data_is_unchanged(records):
    incoming = diff.record_values(records["Beispiel"])
    change = diff.diff_therapist(incoming, diff.therapist_values(therapist()))
    assert change.kind == "unchanged" and change.fields == {}


def test_changed_fields_old_to_new(records):
    stored = therapist(phone="0221 999", phone_hours="Mo 12:00-12:50", methods={"VT", "TP"}, lat=50.9, lon=6.9)
    change = diff.diff_therapist(diff.record_values(records["Beispiel"]), diff.therapist_values(stored))
    assert change.kind == "changed"
    assert change.fields["phone"] == FieldChange("0221 999", "0221 4710123")
    assert change.fields["methods"] == FieldChange(["TP", "VT"], ["VT"])
    assert change.fields["coordinates"].old == [50.9, 6.9]
    assert set(change.fields) == {"phone", "phone_hours", "methods", "coordinates"}


def test_tiny_coordinate_noise_and_language_order_are_no_change(records):
    stored = therapist(lat=50.938100004, lon=6.957099996, languages=["spanisch", "Englisch"])
    assert diff.diff_therapist(diff.record_values(records["Beispiel"]), diff.therapist_values(stored)).kind == "unchanged"


def test_missing_values_never_clear_stored_ones(records):
    # Jonas: no e-mail, no fax in the response; stored values stay, no change proposed
    stored = therapist(
        title="Dr. med.", first_name="Jonas", last_name="Muster", salutation="herr", gender="male",
        street="Beispielweg 3-5", plz="50672", lat=50.9412, lon=6.9468, phone="0221 4710555", fax="0221 1",
        email="jonas@muster.example", website="www.muster-psychotherapie.example", methods={"TP", "AP"},
        languages=[], phone_hours="Mo 07:30-08:00, 13:00-14:00; Do 07:30-08:00",
    )
    change = diff.diff_therapist(diff.record_values(records["Muster"]), diff.therapist_values(stored))
    assert change.kind == "unchanged", change.fields


def test_hand_edited_field_becomes_a_conflict_with_both_values(records):
    stored = therapist(phone="0221 HANDY", email="neu@hand.example")
    protected = diff.protected_fields(["phone"])
    change = diff.diff_therapist(diff.record_values(records["Beispiel"]), diff.therapist_values(stored), protected=protected)
    assert change.fields["phone"] == FieldChange("0221 HANDY", "0221 4710123", conflict=True)
    assert change.fields["email"].conflict is False
    assert change.has_conflicts
    plan = diff.plan_apply(change.fields)
    assert plan.values == {"email": "kontakt@praxis-beispiel.example"}
    assert plan.kept_conflicts == ["phone"]
    chosen = diff.plan_apply(change.fields, selected={"phone"})
    assert chosen.values == {"phone": "0221 4710123"} and chosen.released == {"phone"}


def test_hand_edited_address_protects_the_coordinates():
    assert "coordinates" in diff.protected_fields(["street"])
    assert "coordinates" in diff.protected_fields([], coordinates_source="manual")
    assert "methods" in diff.protected_fields(["offers_vt"])
    assert diff.protected_fields([]) == set()


def test_dismissed_values_are_not_proposed_again(records):
    stored = therapist(phone="0221 HANDY")
    incoming = diff.record_values(records["Beispiel"])
    change = diff.diff_therapist(incoming, diff.therapist_values(stored), protected={"phone"}, dismissed={"phone": "0221 4710123"})
    assert change.kind == "unchanged"
    # a different new value is proposed again
    change = diff.diff_therapist(incoming, diff.therapist_values(stored), protected={"phone"}, dismissed={"phone": "0221 0"})
    assert "phone" in change.fields


def test_blocked_status_is_never_touched(records):
    incoming = diff.record_values(records["Beispiel"])
    change = diff.diff_therapist(incoming, diff.therapist_values(therapist()), status="blocked", delisted_on="2026-01-01")
    assert "status" not in change.fields
    delisted = diff.delisted_change(status="blocked")
    assert delisted.kind == "delisted" and delisted.fields == {} and "gesperrt" in delisted.note


def test_delisted_is_proposed_inactive_and_reappearing_is_proposed_active(records):
    d = diff.delisted_change(status="active")
    assert d.kind == "delisted" and d.fields["status"] == FieldChange("active", "inactive")
    assert diff.delisted_change(status="inactive", delisted_on="2026-01-01") is None
    back = diff.diff_therapist(diff.record_values(records["Beispiel"]), diff.therapist_values(therapist()), status="inactive", delisted_on="2026-01-01")
    assert back.fields["status"] == FieldChange("inactive", "active")
    # inactive for another reason (set by hand): stays inactive
    other = diff.diff_therapist(diff.record_values(records["Beispiel"]), diff.therapist_values(therapist()), status="inactive")
    assert "status" not in other.fields


def test_children_only_entries_are_skipped_by_default(records):
    assert diff.skip_reason(records["Kinderlieb"]) == diff.SKIP_CHILDREN_ONLY
    assert diff.skip_reason(records["Kinderlieb"], include_children_only=True) is None
    assert diff.skip_reason(records["Beispiel"]) is None
    assert diff.skip_reason(records["Gruppmann"]) is None  # group-only adults are imported


def test_delisted_only_inside_the_searched_area_and_only_imported_ones():
    known = [
        KnownTherapist(1, "50667", 50.94, 6.96),
        KnownTherapist(2, "50672", 50.94, 6.95),
        KnownTherapist(3, "10115", 52.53, 13.38),
        KnownTherapist(4, "50667", 50.94, 6.96, from_import=False),
    ]
    by_plz = SearchArea(plzs=frozenset({"50667", "50672"}))
    assert diff.delisted(known, {2}, [by_plz]) == [1]
    circle = SearchArea(centre=(50.9375, 6.9603), radius_km=5)
    assert diff.delisted(known, set(), [circle]) == [1, 2]
    assert diff.delisted(known, set(), []) == []
