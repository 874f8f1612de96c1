"""Patients on both databases: every validation rule through the service (nothing saved on
error), duplicates, edits with audit, viewer projections, lists, exclusions, history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.registry import exclusions as registry_exclusions
from core.registry import patient_detail
from core.registry import patients
from core.registry import searches
from core.platform.models import AuditEntry, OutboxEmail, Patient, PatientExclusion, PhoneCall, Search, Therapist
from core.registry.patients import DuplicateWarning, PatientFilter
from core.platform.permissions import PermissionDenied
from core.platform.validation import ValidationErrors
from core.platform.vocab import EmailState, PatientStatus, SearchStatus, SYMPTOMS
from tests.support.registry_fixtures import COORD, NOW, PATIENT, TODAY, VIEWER


GOOD = PATIENT


def _count(s) -> int:
    return s.scalar(select(func.count()).select_from(Patient))


def _create(s, **over):
    return patients.create_patient(s, COORD, {**GOOD, **over}, now=NOW, today=TODAY)


def test_create_stores_normal_forms_coordinates_city_and_audit(db_session, plz_table):
    p = _create(db_session)
    assert p.phone == "+4917612345678"
    assert p.insurance_number == "A123456780"
    assert p.diagnosis == "F41.1"
    assert p.availability == "Mo 09:00-12:00; Mi 14:00-16:00"
    assert p.max_distance_km == 25 and p.open_to_group is True
    assert p.preferred_methods == ["VT", "TP"]
    assert p.city == "Berlin" and (p.lat, p.lon) == (52.532, 13.385)
    assert p.consent_at == NOW and p.status == PatientStatus.open
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.entity == "patient", AuditEntry.entity_id == p.id)).one()
    assert entry.action == "patient.create" and entry.actor_name == "t.koord"
    assert entry.changes["diagnosis"] == "(geändert)"  # health data is not copied into the log
    assert entry.changes["last_name"] == "Müller"


# Every rule: (field, bad value, words in the message). The good value of each is in GOOD.
BAD = [
    ("first_name", "", "Vorname fehlt"),
    ("last_name", "M3yer", "Nachname darf keine Ziffern"),
    ("plz", "1011", "PLZ muss fünfstellig sein"),
    ("plz", "99999", "PLZ 99999 ist unbekannt"),
    ("email", "jana@", "E-Mail"),
    ("phone", "12345", "Telefon"),
    ("insurance_number", "A123456781", "Prüfziffer"),
    ("insurance_number", "123456780", "Buchstaben und 9 Ziffern"),
    ("birth_date", "24.11.2026", "Zukunft"),
    ("birth_date", "01.01.2015", "ab 14 Jahren"),
    ("birth_date", "01.01.1900", "nicht plausibel"),
    ("prior_therapy_end", "01.01.2027", "Zukunft"),
    ("prior_therapy_end", "01.01.1980", "vor dem Geburtsdatum"),
    ("diagnosis", "G47.0", "Kapitel F"),
    ("symptoms", SYMPTOMS[:7], "höchstens 6"),
    ("symptoms", ["Kopfschmerzen"], "Symptomliste"),
    ("availability", "Mo 12:00-09:00", "Ende muss nach dem Beginn"),
    ("availability", "Mo 09:00-12:00, 11:00-13:00", "überschneiden sich"),
    ("availability", "Xy 09:00-12:00", "Unbekannter Wochentag"),
    ("max_distance_km", "0", "zwischen 1 und 200"),
    ("max_distance_km", "201", "zwischen 1 und 200"),
    ("preferred_methods", ["VT", "Hypnose"], "kein Verfahren"),
    ("transport", "Fahrrad", "Verkehrsmittel"),
    ("last_contact_on", "24.11.2026", "Zukunft"),
]


@pytest.mark.parametrize("field, bad, words", BAD, ids=[f"{f}-{w}" for f, _, w in BAD])
def test_every_rule_rejects_bad_value_and_saves_nothing(db_session, plz_table, field, bad, words):
    before = _count(db_session)
    audits = db_session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, **{field: bad})
    assert field in info.value.errors, info.value.errors
    assert words in info.value.errors[field]
    assert _count(db_session) == before
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == audits


def test_all_errors_reported_at_once(db_session, plz_table):
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, plz="abc", email="x", phone="1", insurance_number="B1")
    assert set(info.value.errors) == {"plz", "email", "phone", "insurance_number"}
    assert _count(db_session) == 0


def test_plz_format_only_without_table(db_session):
    p = _create(db_session, plz="99999", city="Irgendwo")
    assert p.plz == "99999" and p.lat is None
    with pytest.raises(ValidationErrors):
        _create(db_session, first_name="Anna", plz="9999")


def test_prior_therapy_end_without_prior_therapy_is_refused(db_session):
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, prior_therapy=False)
    assert "prior_therapy_end" in info.value.errors
    p = _create(db_session, prior_therapy=None)
    assert p.prior_therapy is True


def test_optional_fields_may_stay_empty(db_session):
    p = patients.create_patient(db_session, COORD, {"first_name": "Ali", "last_name": "Kaya"}, now=NOW, today=TODAY)
    assert p.symptoms == [] and p.availability is None and p.plz is None and p.diagnosis is None


def test_duplicate_warning_on_same_name_and_birth_date(db_session):
    first = _create(db_session)
    with pytest.raises(DuplicateWarning) as info:
        _create(db_session, first_name="JANA", last_name="müller", email="")
    assert [m.id for m in info.value.matches] == [first.id]
    assert "Mögliche Dublette" in str(info.value)
    assert _count(db_session) == 1
    second = patients.create_patient(db_session, COORD, {**GOOD, "email": ""}, now=NOW, today=TODAY, allow_duplicate=True)
    assert second.id != first.id
    # different birth date: no warning
    _create(db_session, birth_date="15.03.1990")


def test_update_changes_given_fields_and_audits_diff(db_session, plz_table):
    p = _create(db_session)
    later = NOW + timedelta(hours=1)
    patients.update_patient(db_session, COORD, p.id, {"plz": "20095", "city": "", "diagnosis": "F32.1"}, now=later, today=TODAY)
    assert p.plz == "20095" and p.city == "Hamburg" and p.lat == 53.551
    assert p.first_name == "Jana" and p.diagnosis == "F32.1"
    entry = db_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "patient.update", AuditEntry.entity_id == p.id)
    ).one()
    assert entry.changes["plz"] == ["10115", "20095"]
    assert entry.changes["diagnosis"] == ["…", "(geändert)"]
    # nothing changed: no audit entry
    patients.update_patient(db_session, COORD, p.id, {"plz": "20095"}, now=later, today=TODAY)
    assert db_session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "patient.update")) == 1


def test_update_with_error_saves_nothing(db_session):
    p = _create(db_session)
    with pytest.raises(ValidationErrors):
        patients.update_patient(db_session, COORD, p.id, {"city": "Köln", "phone": "abc"}, now=NOW, today=TODAY)
    db_session.refresh(p)
    assert p.phone == "+4917612345678" and p.city is None


def test_viewer_sees_no_age_or_birth_date(db_session):
    # permissions and hidden fields of both kinds: tests/integration/test_registry_records.py
    p = _create(db_session)
    detail = patient_detail.get_patient(db_session, VIEWER, p.id, today=TODAY)
    assert detail.values["last_name"] == "Müller" and detail.age is None
    rows, total = patients.list_patients(db_session, VIEWER, today=TODAY)
    assert total == 1 and rows[0].birth_date is None
    full = patient_detail.get_patient(db_session, COORD, p.id, today=TODAY)
    assert full.values["insurance_number"] == "A123456780" and full.age == 36


# --------------------------------------------------------------------------- lists


@pytest.fixture
def population(db_session):
    people = [
        ("Özdemir", "Ayşe", "10115", "Berlin", PatientStatus.searching, SearchStatus.active, 100),
        ("Müller", "Jan", "10247", "Berlin", PatientStatus.searching, SearchStatus.paused, 40),
        ("Schmidt", "Eva", "20095", "Hamburg", PatientStatus.search_cancelled, SearchStatus.cancelled, 300),
        ("Weber", "Tom", "80331", "München", PatientStatus.open, None, None),
        ("Becker", "Lena", "10961", "Berlin", PatientStatus.in_therapy, SearchStatus.successful, 200),
    ]
    ids = {}
    t = Therapist(first_name="Tara", last_name="Thera")
    db_session.add(t)
    db_session.flush()
    for last, first, plz, city, status, search_status, days in people:
        p = Patient(first_name=first, last_name=last, plz=plz, city=city, status=status, created_at=NOW, updated_at=NOW)
        db_session.add(p)
        db_session.flush()
        if search_status is not None:
            db_session.add(Search(
                patient_id=p.id, status=search_status, started_on=TODAY - timedelta(days=days),
                placed_therapist_id=t.id if search_status == SearchStatus.successful else None,
            ))
        ids[last] = p.id
    db_session.flush()
    return ids


def _names(rows):
    return [r.last_name for r in rows]


def test_list_filters(db_session, population):
    def run(**kw):
        rows, total = patients.list_patients(db_session, COORD, PatientFilter(**kw), today=TODAY)
        assert total == len(rows)
        return sorted(_names(rows))

    assert run() == sorted(population)
    assert run(statuses=(PatientStatus.searching,)) == ["Müller", "Özdemir"]
    assert run(search_states=("active", "paused")) == ["Müller", "Özdemir"]
    assert run(search_states=("none",)) == ["Weber"]
    assert run(search_states=("cancelled", "none")) == ["Schmidt", "Weber"]
    assert run(plz_prefix="10") == ["Becker", "Müller", "Özdemir"]
    assert run(plz_prefix="102") == ["Müller"]
    assert run(city="münch") == ["Weber"]
    assert run(name="özdemir") == ["Özdemir"]
    assert run(name="MÜLLER jan") == ["Müller"]
    assert run(name="a%") == []  # LIKE wildcards are literal
    assert run(min_wait_days=50) == ["Özdemir"]
    assert run(min_wait_days=30, max_wait_days=60) == ["Müller"]


def test_list_sort_paging_and_waiting_days(db_session, population):
    rows, total = patients.list_patients(db_session, COORD, PatientFilter(sort="waiting"), today=TODAY, limit=2)
    assert total == 5 and _names(rows) == ["Özdemir", "Müller"]
    assert rows[0].waiting_days == 100 and rows[0].search_status == SearchStatus.active
    rows, _ = patients.list_patients(db_session, COORD, PatientFilter(sort="waiting"), today=TODAY, offset=2, limit=2)
    assert rows[0].waiting_days is None
    rows, _ = patients.list_patients(db_session, COORD, PatientFilter(sort="name", descending=True), today=TODAY)
    assert _names(rows)[0] in {"Özdemir", "Weber"}  # collation decides where Ö goes; Weber before Schmidt
    assert _names(rows).index("Weber") < _names(rows).index("Schmidt")
    rows, _ = patients.list_patients(db_session, COORD, PatientFilter(sort="plz"), today=TODAY)
    assert [r.plz for r in rows] == sorted(r.plz for r in rows)
    assert "PLZ 10…" in PatientFilter(plz_prefix="10", statuses=(PatientStatus.open,)).describe()


# --------------------------------------------------------------------------- exclusions, history


def test_exclusions_both_sides(db_session):
    p = _create(db_session)
    t = Therapist(first_name="Tom", last_name="Berg", title="Dr.")
    db_session.add(t)
    db_session.flush()
    with pytest.raises(ValidationErrors) as info:
        registry_exclusions.add_exclusion(db_session, COORD, p.id, t.id, "  ", now=NOW)
    assert "Grund des Ausschlusses fehlt" in info.value.errors["reason"]
    with pytest.raises(PermissionDenied):
        registry_exclusions.add_exclusion(db_session, VIEWER, p.id, t.id, "x", now=NOW)
    e = registry_exclusions.add_exclusion(db_session, COORD, p.id, t.id, "schlechte Erfahrung", now=NOW)
    with pytest.raises(patients.PatientError, match="bereits ausgeschlossen"):
        registry_exclusions.add_exclusion(db_session, COORD, p.id, t.id, "nochmal", now=NOW)
    mine = registry_exclusions.exclusions_for_patient(db_session, COORD, p.id)
    theirs = registry_exclusions.exclusions_for_therapist(db_session, COORD, t.id)
    assert [x.id for x in mine] == [x.id for x in theirs] == [e.id]
    assert mine[0].therapist_name == "Dr. Tom Berg" and theirs[0].patient_name == "Jana Müller"
    assert registry_exclusions.exclusions_for_patient(db_session, VIEWER, p.id)[0].reason is None
    registry_exclusions.remove_exclusion(db_session, COORD, e.id, now=NOW)
    assert db_session.scalar(select(func.count()).select_from(PatientExclusion)) == 0
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == p.id).order_by(AuditEntry.id)).all()
    assert actions[-2:] == ["patient.exclusion_add", "patient.exclusion_remove"]


def test_history_newest_first_with_every_kind(db_session):
    p = _create(db_session)
    searches.start_search(db_session, COORD, p.id, today=TODAY - timedelta(days=10), now=NOW - timedelta(days=10))
    db_session.add(OutboxEmail(
        patient_id=p.id, to_address="jana.mueller@example.de", to_name="Jana", subject="Ihre Platzsuche",
        body_html="x", body_text="x", template="t", state=EmailState.sent, sent_at=NOW - timedelta(days=5),
    ))
    db_session.add(PhoneCall(patient_id=p.id, scheduled_start=NOW - timedelta(days=2), outcome="erreicht"))
    db_session.flush()
    items = patient_detail.patient_history(db_session, COORD, p.id, today=TODAY)
    kinds = [i.kind for i in items]
    assert {"Platzsuche", "E-Mail", "Telefonat", "Protokoll"} <= set(kinds)
    assert [i.at for i in items] == sorted((i.at for i in items), reverse=True)
    hidden = patient_detail.patient_history(db_session, VIEWER, p.id, today=TODAY)
    mail = next(i for i in hidden if i.kind == "E-Mail")
    assert mail.title == "E-Mail" and mail.detail == ""
