"""Issue 12, point 16 on both databases: NUL bytes, LIKE wildcards and bad e-mail addresses
get a German message (or match nothing) and write nothing; the point number is in each name."""

from __future__ import annotations


import pytest
from sqlalchemy import func, select

from core.mail import views as outbox_views
from core.matching import map_view
from core.platform import auth, users
from core.platform.config import load_settings
from core.platform.models import AuditEntry, OutboxEmail, Patient, Therapist, User
from core.platform.permissions import SYSTEM
from core.platform.validation import ValidationErrors
from core.platform.vocab import EmailState, Role
from core.registry import patients, therapists
from core.registry.patients import PatientFilter
from core.registry.therapists import TherapistFilter
from tests.support import seed
from tests.support.registry_fixtures import COORD, NOW, TODAY

SETTINGS = load_settings(environ={}, env_file=None)


def _count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("kind, create", [
    ("patient", patients.create_patient),
    ("therapist", therapists.create_therapist),
])
@pytest.mark.parametrize("field", ["last_name", "city", "notes", "email"])
def test_12_16_nul_byte_in_a_form_field_is_a_german_field_error_and_nothing_is_written(db_session, kind, create, field):
    raw = {"first_name": "Jana", "last_name": "Müller", field: "Mül\x00ler"}
    with pytest.raises(ValidationErrors) as info:
        create(db_session, COORD, raw, now=NOW, today=TODAY)
    assert "unzulässiges Steuerzeichen" in info.value.errors[field]
    assert _count(db_session, Patient) + _count(db_session, Therapist) + _count(db_session, AuditEntry) == 0


@pytest.mark.parametrize("lister, flt", [
    (patients.list_patients, PatientFilter(name="a\x00b")),
    (patients.list_patients, PatientFilter(city="\x00")),
    (therapists.list_therapists, TherapistFilter(name="\x00")),
    (therapists.list_therapists, TherapistFilter(language="Eng\x00lisch")),
    (therapists.list_therapists, TherapistFilter(language="Englisch42")),
])
def test_12_16_bad_list_filters_give_german_messages_not_database_errors(db_session, lister, flt):
    with pytest.raises(ValidationErrors) as info:
        lister(db_session, COORD, flt, today=TODAY)
    assert all(message and "Error" not in message for message in info.value.errors.values())


def test_12_16_negative_wait_days_filter_is_a_german_message(db_session):
    with pytest.raises(ValidationErrors) as info:
        patients.list_patients(db_session, COORD, PatientFilter(min_wait_days=-7), today=TODAY)
    assert info.value.errors["min_wait_days"].startswith("Wartet seit mind. (Tage): bitte eine Zahl ab 0")


@pytest.mark.parametrize("lookup", [patients.lookup, therapists.lookup])
def test_12_16_nul_byte_in_a_picker_search_is_a_german_message(db_session, lookup):
    with pytest.raises(ValidationErrors, match="Steuerzeichen"):
        lookup(db_session, COORD, "Be\x00rg")


@pytest.mark.parametrize("kind", ["patient", "therapist"])
def test_12_16_percent_and_underscore_match_literally_in_registry_lists(db_session, kind):
    create, lister, flt = {
        "patient": (patients.create_patient, patients.list_patients, PatientFilter),
        "therapist": (therapists.create_therapist, therapists.list_therapists, TherapistFilter),
    }[kind]
    create(db_session, COORD, {"first_name": "Anna", "last_name": "Prozent_Unter"}, now=NOW, today=TODAY)
    create(db_session, COORD, {"first_name": "Berta", "last_name": "Prozentx"}, now=NOW, today=TODAY)
    assert lister(db_session, COORD, flt(name="%"), today=TODAY)[1] == 0
    rows, total = lister(db_session, COORD, flt(name="prozent_"), today=TODAY)
    assert total == 1 and rows[0].last_name == "Prozent_Unter"


def test_12_16_map_patient_search_escapes_wildcards_and_ignores_nul(db_session):
    seed.patient_with_search(db_session, first_name="Ada", last_name="Voll_Text")
    seed.patient_with_search(db_session, first_name="Bea", last_name="Vollxtext")
    assert map_view.find_patients(db_session, COORD, "%") == []
    assert [c.label.split(" (")[0] for c in map_view.find_patients(db_session, COORD, "voll_")] == ["Ada Voll_Text"]
    assert map_view.find_patients(db_session, COORD, "Vol\x00l") == []


def test_12_16_outbox_search_escapes_wildcards_and_ignores_nul(db_session):
    t = seed.therapist(db_session)
    for subject in ("Anfrage 100% sicher", "Anfrage 100 x sicher"):
        db_session.add(OutboxEmail(
            therapist_id=t.id, to_address="praxis@example.org", to_name="Praxis", subject=subject, body_html="",
            body_text="", template="inquiry", state=EmailState.draft, created_at=NOW, updated_at=NOW,
        ))
    db_session.flush()
    rows, total = outbox_views.list_emails(db_session, COORD, "drafts", now=NOW, search="100%", settings=SETTINGS)
    assert total == 1 and rows[0].subject == "Anfrage 100% sicher"
    assert outbox_views.list_emails(db_session, COORD, "drafts", now=NOW, search="_", settings=SETTINGS)[1] == 0
    assert outbox_views.list_emails(db_session, COORD, "drafts", now=NOW, search="\x00", settings=SETTINGS) == ([], 0)


def test_12_16_nul_byte_in_login_name_gets_the_generic_answer_and_writes_nothing(db_session, now):
    users.create_user(db_session, SYSTEM, username="k.koch", display_name="Karla Koch", role=Role.coordinator,
                      password="richtig-geheim-1", now=now)
    before = _count(db_session, AuditEntry)
    result = auth.authenticate(db_session, SETTINGS, "k.ko\x00ch", "richtig-geheim-1", now=now)
    assert not result.ok and result.message == "Benutzername oder Passwort ist falsch."
    assert _count(db_session, AuditEntry) == before


@pytest.mark.parametrize("email", ["keine-adresse", "a@b", "name@beispiel.de\x00"])
def test_12_16_a_users_email_is_validated(db_session, now, email):
    with pytest.raises(users.UserError) as info:
        users.create_user(db_session, SYSTEM, username="k.koch", display_name="Karla Koch", role=Role.coordinator,
                          password="richtig-geheim-1", email=email, now=now)
    assert info.value.field == "email" and "E-Mail" in str(info.value)
    assert _count(db_session, User) == 0


def test_12_16_a_users_email_is_stored_normalised(db_session, now):
    u = users.create_user(db_session, SYSTEM, username="k.koch", display_name="Karla Koch", role=Role.coordinator,
                          password="richtig-geheim-1", email=" Karla@Beispiel.DE ", now=now)
    assert u.email == "Karla@beispiel.de"
