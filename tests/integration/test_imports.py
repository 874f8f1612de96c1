"""Import runs and the review queue on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.imports import review, runs
from core.platform.models import AuditEntry, ImportChange, ImportRun, Therapist
from core.platform.permissions import Actor, PermissionDenied
from core.platform.vocab import CoordinatesSource, ReviewState, Role, TherapistStatus
from core.registry import therapists as registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche"
COORD = Actor(user_id=None, username="koordination", role=Role.coordinator, display_name="Koordination")
VIEWER = Actor(user_id=None, username="lesend", role=Role.viewer)
NOW = datetime(2026, 3, 11, 9, 0, tzinfo=timezone.utc)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def current_data() -> dict:
    return json.loads(fixture_bytes("current_2026.json"))


def as_bytes(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def import_and_accept(session, raw: bytes, name: str = "antwort.json", now=NOW):
    outcome = runs.import_file(session, COORD, filename=name, raw=raw, now=now)
    summary = review.accept_all(session, COORD, now=now, run_id=outcome.run_id)
    return outcome, summary


def without_therapist(last_name: str) -> dict:
    """The fixture searched again: `last_name` is no longer listed, a new colleague in the same
    PLZ is (so the PLZ is still part of the searched area)."""
    data = current_data()
    entries = []
    for e in data["arztPraxisDatas"]:
        if isinstance(e, dict) and e.get("name") == last_name:
            e = {**e, "vorname": "Kim", "name": "Nachfolge", "strasse": "Neuer Weg", "hausnummer": "1", "email": ""}
        entries.append(e)
    data["arztPraxisDatas"] = entries
    return data


def therapist_named(session, last_name: str) -> Therapist:
    return session.execute(select(Therapist).where(Therapist.last_name == last_name)).scalar_one()


def test_new_therapist_accepted_exists_with_phone_hours_and_methods(db_session):
    outcome = runs.import_file(db_session, COORD, filename="koeln.json", raw=fixture_bytes("current_2026.json"), now=NOW)
    assert outcome.status == "done"
    # 9 entries: 7 usable, 1 children-only skipped, 2 unusable
    assert outcome.counts["records"] == 9
    assert outcome.counts["new"] == 6
    assert outcome.counts["skipped"] == 3
    assert db_session.execute(select(func.count(Therapist.id))).scalar_one() == 0  # nothing written before review
    counts = review.pending_counts(db_session, COORD, run_id=outcome.run_id)
    assert counts["new"] == 6 and counts["changed"] == 0
    rows, total = review.review_queue(db_session, COORD, kind_filter="new", run_id=outcome.run_id)
    assert total == 6
    anna = next(r for r in rows if "Beispiel" in r.display_name)
    assert {f.name: f.new for f in anna.fields}["methods"] == "VT"

    summary = review.accept(db_session, COORD, [anna.id], now=NOW)
    assert summary.created == 1
    t = therapist_named(db_session, "Beispiel")
    assert t.phone_hours == "Mo 12:00-12:50; Mi 12:00-12:50; Do 08:00-08:50; Fr 08:30-09:00, 13:00-13:25"
    assert t.methods == {"VT"}
    assert (t.offers_individual, t.offers_group) == (True, True)
    assert t.phone == "+492214710123"  # stored like the registry stores phones
    assert (t.lat, t.lon, t.coordinates_source) == (50.9381, 6.9571, CoordinatesSource.arztsuche)
    assert t.plz == "50667" and t.street == "Musterstraße 12a" and t.title == "Dipl.-Psych."
    assert t.external_id and t.source_hash
    assert t.status == TherapistStatus.active
    change = db_session.get(ImportChange, anna.id)
    assert change.review_state == ReviewState.applied and change.therapist_id == t.id
    actions = set(db_session.execute(select(AuditEntry.action)).scalars())
    assert {"import.run", "therapist.import"} <= actions


def test_missing_coordinates_go_to_the_geocoding_job(db_session):
    outcome, summary = import_and_accept(db_session, fixture_bytes("current_2026.json"))
    j = therapist_named(db_session, "Weiß-Öztürk")
    assert j.geocode_pending is True
    assert summary.geocoding >= 1


def test_same_file_twice_is_already_imported(db_session):
    raw = fixture_bytes("current_2026.json")
    first = runs.import_file(db_session, COORD, filename="a.json", raw=raw, now=NOW)
    second = runs.import_file(db_session, COORD, filename="a-kopie.json", raw=raw, now=NOW + timedelta(hours=1))
    assert second.already_imported
    assert "bereits importiert" in second.message and f"Lauf {first.run_id}" in second.message
    assert db_session.execute(select(func.count(ImportChange.id)).where(ImportChange.run_id == second.run_id)).scalar_one() == 0
    assert db_session.get(ImportRun, second.run_id).status.value == "skipped"


def test_the_same_data_again_changes_nothing(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    before = {t.id: (t.updated_at, t.phone_hours) for t in db_session.execute(select(Therapist)).scalars()}
    # the same data saved again (other bytes, other hash)
    again = runs.import_file(db_session, COORD, filename="wieder.json", raw=as_bytes(current_data()), now=NOW + timedelta(days=1))
    assert again.status == "done"
    assert (again.counts["new"], again.counts["changed"], again.counts["delisted"]) == (0, 0, 0)
    assert again.counts["unchanged"] == 6
    assert "Keine Änderungen" in again.message
    after = {t.id: (t.updated_at, t.phone_hours) for t in db_session.execute(select(Therapist)).scalars()}
    assert before == after


def test_a_hand_edited_field_survives_a_changed_import_as_a_conflict(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    t = therapist_named(db_session, "Beispiel")
    registry.update_therapist(db_session, COORD, t.id, {"phone": "0221 5550000"}, today=NOW.date(), now=NOW)
    assert "phone" in t.hand_edited_fields
    data = current_data()
    data["arztPraxisDatas"][0]["tel"] = "0221 4719999"
    data["arztPraxisDatas"][0]["fax"] = "0221 4718888"
    outcome = runs.import_file(db_session, COORD, filename="neu.json", raw=as_bytes(data), now=NOW + timedelta(days=1))
    assert outcome.counts["changed"] == 1
    rows, _ = review.review_queue(db_session, COORD, kind_filter="conflicts")
    (row,) = rows
    phone = next(f for f in row.fields if f.name == "phone")
    assert phone.conflict and phone.old == "0221 5550000" and phone.new == "0221 4719999"
    summary = review.accept(db_session, COORD, [row.id], now=NOW + timedelta(days=1))
    assert summary.kept_conflicts == 1
    assert t.phone == "+492215550000"  # the hand-edited value stays
    assert t.fax == "+492214718888"  # the other change was taken
    # the kept conflict is not proposed again by the same data
    again = runs.import_file(db_session, COORD, filename="neu2.json", raw=as_bytes(data) + b" ", now=NOW + timedelta(days=2))
    assert again.counts["changed"] == 0


def test_per_field_accept_can_take_the_import_value_of_a_conflict(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    t = therapist_named(db_session, "Beispiel")
    registry.update_therapist(db_session, COORD, t.id, {"phone": "0221 5550000"}, today=NOW.date(), now=NOW)
    data = current_data()
    data["arztPraxisDatas"][0]["tel"] = "0221 4719999"
    data["arztPraxisDatas"][0]["ort"] = "Köln-Altstadt"
    runs.import_file(db_session, COORD, filename="neu.json", raw=as_bytes(data), now=NOW)
    (row,), _ = review.review_queue(db_session, COORD, kind_filter="changed")
    review.accept(db_session, COORD, [row.id], now=NOW, fields={row.id: ["phone"]})
    assert t.phone == "+492214719999" and "phone" not in t.hand_edited_fields
    assert t.city == "Köln"  # not chosen


def test_a_blocked_therapist_stays_blocked(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    t = therapist_named(db_session, "Muster")
    registry.block(db_session, COORD, t.id, "Möchte nicht kontaktiert werden", today=NOW.date(), now=NOW)
    data = current_data()
    data["arztPraxisDatas"][1]["tel"] = "0221 4710556"
    # Muster changed, and in a second file the whole PLZ is searched without Muster
    import_and_accept(db_session, as_bytes(data), "geaendert.json", now=NOW + timedelta(days=1))
    assert t.status == TherapistStatus.blocked and t.phone == "+492214710556"
    outcome, summary = import_and_accept(db_session, as_bytes(without_therapist("Muster")), "ohne.json", now=NOW + timedelta(days=2))
    assert outcome.counts["delisted"] == 1
    assert t.status == TherapistStatus.blocked
    assert t.delisted_on is not None


def test_a_delisted_therapist_is_proposed_inactive(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    outcome = runs.import_file(db_session, COORD, filename="ohne.json", raw=as_bytes(without_therapist("Beispiel")), now=NOW + timedelta(days=1))
    assert outcome.counts["delisted"] == 1
    (row,), _ = review.review_queue(db_session, COORD, kind_filter="delisted")
    assert "Beispiel" in row.display_name
    status = next(f for f in row.fields if f.name == "status")
    assert (status.old, status.new) == ("aktiv", "inaktiv")
    t = therapist_named(db_session, "Beispiel")
    assert t.status == TherapistStatus.active  # only proposed
    review.accept(db_session, COORD, [row.id], now=NOW + timedelta(days=1))
    assert t.status == TherapistStatus.inactive and t.delisted_on is not None
    assert db_session.get(Therapist, t.id) is not None  # never deleted
    # listed again later → proposed active again
    back = runs.import_file(db_session, COORD, filename="zurueck.json", raw=as_bytes(current_data()), now=NOW + timedelta(days=8))
    assert back.counts["changed"] == 1
    (row,), _ = review.review_queue(db_session, COORD, kind_filter="changed")
    review.accept(db_session, COORD, [row.id], now=NOW + timedelta(days=8))
    assert t.status == TherapistStatus.active and t.delisted_on is None


def test_a_cut_list_proposes_no_delisting(db_session):
    import_and_accept(db_session, fixture_bytes("current_2026.json"))
    cut = current_data()
    cut["arztPraxisDatas"] = cut["arztPraxisDatas"][:1]
    cut["moreResults"] = True
    outcome = runs.import_file(db_session, COORD, filename="gekuerzt.json", raw=as_bytes(cut), now=NOW)
    assert outcome.counts["delisted"] == 0


@pytest.mark.parametrize(
    "name, words",
    [
        ("invalid.json", "kein gültiges JSON"),
        ("truncated.json", "endet mitten im Inhalt"),
        ("wrong_shape.json", "„arztPraxisDatas“ fehlt"),
    ],
)
def test_unreadable_files_are_failed_runs_and_nothing_is_applied(db_session, name, words):
    outcome = runs.import_file(db_session, COORD, filename=name, raw=fixture_bytes(name), now=NOW)
    assert outcome.failed and words in outcome.message
    run = db_session.get(ImportRun, outcome.run_id)
    assert run.status.value == "failed" and words in run.errors[0]
    assert db_session.execute(select(func.count(ImportChange.id))).scalar_one() == 0
    assert db_session.execute(select(func.count(Therapist.id))).scalar_one() == 0


def test_legacy_and_snapshot_files_import_too(db_session):
    _, s1 = import_and_accept(db_session, fixture_bytes("legacy_2025.json"), "alt.json")
    _, s2 = import_and_accept(db_session, fixture_bytes("snapshot_52062.json"), "52062.json")
    assert s1.created == 4  # Clara Klein (children only) skipped
    assert s2.created == 2  # Ida Jung (children only) skipped, Otto Weg deleted
    assert therapist_named(db_session, "Schröder").phone_hours == "Mo 08:00-09:00; Mi 12:00-12:50, 16:00-16:25; Fr 07:30-08:00"


def test_matching_by_name_and_plz_updates_the_existing_therapist(db_session):
    t = registry.create_therapist(
        db_session, COORD,
        {"first_name": "Anna", "last_name": "Beispiel", "plz": "50667", "city": "Köln", "street": "Altweg 1"},
        today=NOW.date(), now=NOW,
    )
    outcome = runs.import_file(db_session, COORD, filename="k.json", raw=fixture_bytes("current_2026.json"), now=NOW)
    assert outcome.counts["changed"] == 1 and outcome.counts["new"] == 5
    (row,), _ = review.review_queue(db_session, COORD, kind_filter="changed")
    assert row.therapist_id == t.id


def test_reject_and_rejected_values_are_not_proposed_again(db_session):
    outcome = runs.import_file(db_session, COORD, filename="k.json", raw=fixture_bytes("current_2026.json"), now=NOW)
    n = review.reject_all(db_session, COORD, now=NOW, run_id=outcome.run_id)
    assert n == 6
    assert db_session.execute(select(func.count(Therapist.id))).scalar_one() == 0
    assert review.pending_counts(db_session, COORD)["all"] == 0


def test_viewers_may_not_import_or_review(db_session):
    with pytest.raises(PermissionDenied):
        runs.import_file(db_session, VIEWER, filename="x.json", raw=b"{}", now=NOW)
    with pytest.raises(PermissionDenied):
        review.review_queue(db_session, VIEWER)


def test_an_ambiguous_entry_goes_to_review_and_can_be_assigned(db_session):
    # two known colleagues share the practice e-mail; the import brings one of them under a new name
    a = registry.create_therapist(db_session, COORD, {"first_name": "Eva", "last_name": "Alt", "plz": "10115", "email": "team@praxis.example"},
                                  today=NOW.date(), now=NOW, allow_duplicate=True)
    b = registry.create_therapist(db_session, COORD, {"first_name": "Ina", "last_name": "Berg", "plz": "10115", "email": "team@praxis.example"},
                                  today=NOW.date(), now=NOW, allow_duplicate=True)
    data = {"arztPraxisDatas": [{"vorname": "Eva", "name": "Neu", "plz": "10117", "ort": "Berlin", "email": "team@praxis.example",
                                 "tel": "030 12345678", "psy": [{"heading": "Verhaltenstherapie", "values": ["Einzeltherapie"]}]}]}
    outcome = runs.import_file(db_session, COORD, filename="neu.json", raw=as_bytes(data), now=NOW)
    assert outcome.counts["ambiguous"] == 1
    (row,), _ = review.review_queue(db_session, COORD)
    assert row.candidates == sorted([a.id, b.id]) and "bitte zuordnen" in row.note
    assigned = review.assign(db_session, COORD, row.id, a.id, now=NOW)
    assert assigned.kind == "changed" and assigned.therapist_id == a.id
    assert {f.name for f in assigned.fields} >= {"last_name", "plz", "phone", "methods"}
    review.accept(db_session, COORD, [row.id], now=NOW)
    assert a.last_name == "Neu" and a.plz == "10117" and a.methods == {"VT"}
    assert db_session.execute(select(func.count(Therapist.id))).scalar_one() == 2
