"""AppTest for Patient:innen and Therapeut:innen: list, filter, detail for every role (both
databases); create, edit, field errors, duplicates, Platzsuche and therapist status
through the dialogs and panels (SQLite; the services' DB behaviour is tested on both)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from core.registry import patients
from core.registry import therapists
from core.platform.config import get_settings
from core.platform.db import dispose_engines, get_engine, read_session, unit_of_work
from core.platform.models import AuditEntry, Patient, Search, Therapist
from core.platform.permissions import SYSTEM
from core.platform.vocab import PatientStatus, Role, SearchStatus, TherapistStatus
from tests.support.apptest import create_accounts, login, texts

TODAY = datetime.now(timezone.utc).date()
NOW = datetime.now(timezone.utc)


def seed(url: str) -> dict[str, int]:
    ids = {}
    with unit_of_work(get_engine(url)) as s:
        complete = {
            "first_name": "Jana", "last_name": "Müller", "birth_date": "14.03.1990", "plz": "10115", "city": "Berlin",
            "email": "jana@example.de", "phone": "030 1234567", "insurer": "AOK", "insurance_number": "A123456780",
            "symptoms": ["Mobbing"], "diagnosis": "F32.1", "availability": "Mo 09:00-12:00",
            "contracts_signed": True, "consent_given": True,
        }
        ids["jana"] = patients.create_patient(s, SYSTEM, complete, now=NOW, today=TODAY).id
        ids["tom"] = patients.create_patient(s, SYSTEM, {"first_name": "Tom", "last_name": "Weber", "plz": "20095"}, now=NOW, today=TODAY).id
        ids["berg"] = therapists.create_therapist(
            s, SYSTEM, {"title": "Dr.", "first_name": "Eva", "last_name": "Berg", "plz": "10115", "city": "Berlin",
                        "email": "praxis@berg.example", "phone": "030 7654321", "methods": "VT|TP", "phone_hours": "Mo 8-9",
                        "languages": "Englisch"}, now=NOW, today=TODAY,
        ).id
        ids["kern"] = therapists.create_therapist(
            s, SYSTEM, {"first_name": "Lisa", "last_name": "Kern", "plz": "20095", "city": "Hamburg", "methods": "ST"},
            now=NOW, today=TODAY,
        ).id
    return ids


@pytest.fixture
def seeded(app_db):
    return seed(app_db)


@pytest.fixture
def sqlite_app(db_factories, monkeypatch):
    url = db_factories["sqlite"].new_url()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    create_accounts(url)
    ids = seed(url)
    yield url, ids
    get_settings.cache_clear()
    dispose_engines()


def _df(at, index: int = 0):
    return at.dataframe[index].value


def _select_row(at, key: str, row: int):
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()


# --------------------------------------------------------------------------- every role, both databases


@pytest.mark.parametrize("role", list(Role))
def test_list_filter_detail_for_role(seeded, role):
    at = login(role)
    sensitive = role != Role.viewer

    at.switch_page("pages/patients.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Patient:innen"
    df = _df(at)
    assert sorted(df["Name"]) == ["Müller, Jana", "Weber, Tom"]
    assert ("E-Mail" in df.columns) is sensitive and ("Geburtsdatum" in df.columns) is sensitive
    assert "**2 Patient:innen**" in texts(at)
    assert bool([b for b in at.button if b.key == "pat_new"]) is sensitive
    at.text_input(key="pat_plz").input("20").run()
    assert list(_df(at)["Name"]) == ["Weber, Tom"] and "Filter: PLZ 20…" in texts(at)
    at.text_input(key="pat_plz").input("").run()
    at.query_params["patient"] = str(seeded["jana"])
    at.run()
    assert not at.exception, at.exception
    assert any(h.value.startswith("Jana Müller") for h in at.subheader)
    page = texts(at)
    assert ("A123456780" in page) is sensitive and ("F32.1" in page) is sensitive
    assert ("ausgeblendet" in page) is not sensitive
    assert "Verlauf" in [t.label for t in at.tabs]
    # opening the detail with contact and health data is audited (issue 15.2), viewers' isn't needed
    with read_session(get_engine(get_settings().DATABASE_URL)) as s:
        reads_recorded = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "read.patient", AuditEntry.entity_id == seeded["jana"]))
    assert reads_recorded == (1 if sensitive else 0)

    at.switch_page("pages/therapists.py").run()
    assert not at.exception, at.exception
    df = _df(at)
    assert sorted(df["Name"]) == ["Berg, Dr. Eva", "Kern, Lisa"]
    assert ("Telefon" in df.columns) is sensitive
    assert bool([b for b in at.button if b.key == "th_new"]) is sensitive
    at.multiselect(key="th_methods").select("ST").run()
    assert list(_df(at)["Name"]) == ["Kern, Lisa"]
    at.multiselect(key="th_methods").unselect("ST").run()
    _select_row(at, "therapists_table", 0)
    assert not at.exception, at.exception
    assert any(h.value == "Dr. Eva Berg" for h in at.subheader)
    assert ("praxis@berg.example" in texts(at)) is sensitive
    assert bool([b for b in at.button if b.key == f"th_block_{seeded['berg']}"]) is sensitive


# --------------------------------------------------------------------------- patients: create, edit, errors


def _fill_patient(at, prefix: str, **values):
    for key, value in values.items():
        widget = at.text_input(key=prefix + key)
        widget.input(value)


@pytest.mark.parametrize("role", [Role.coordinator, Role.admin])
def test_create_and_edit_patient(sqlite_app, role):
    url, ids = sqlite_app
    at = login(role)
    at.switch_page("pages/patients.py").run()
    at.button(key="pat_new").click().run()
    assert not at.exception, at.exception
    _fill_patient(at, "pf_new_", first_name="Ayşe", last_name="Özdemir", plz="10115", phone="0176 12345678",
                  insurance_number="a123456780")
    at.text_input(key="pf_new_availability_Mo").input("9-12")
    at.text_input(key="pf_new_availability_Mi").input("14:00 – 16:00")
    at.multiselect(key="pf_new_symptoms").select("Schlafstörungen")
    at.button(key="FormSubmitter:patient_form_new-Speichern").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    with read_session(get_engine(url)) as s:
        p = s.scalars(select(Patient).where(Patient.last_name == "Özdemir")).one()
        assert p.availability == "Mo 09:00-12:00; Mi 14:00-16:00" and p.phone == "+4917612345678"
        assert p.insurance_number == "A123456780" and p.symptoms == ["Schlafstörungen"]
    assert "Özdemir, Ayşe" in list(_df(at)["Name"])
    assert at.query_params["patient"] == [str(p.id)] or at.query_params["patient"] == str(p.id)

    # edit the new patient from its detail
    at.button(key="pat_edit").click().run()
    assert not at.exception, at.exception
    k = f"pf_{p.id}_"
    assert at.text_input(key=k + "phone").value == "0176 12345678"
    assert at.text_input(key=k + "availability_Mo").value == "09:00-12:00"
    at.text_input(key=k + "city").input("Berlin-Mitte")
    at.button(key=f"FormSubmitter:patient_form_{p.id}-Speichern").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        assert s.get(Patient, p.id).city == "Berlin-Mitte"
        actions = s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_id == p.id, AuditEntry.entity == "patient", ~AuditEntry.action.startswith("read."))).all()
    assert actions == ["patient.create", "patient.update"]


def test_patient_form_shows_errors_next_to_fields_and_saves_nothing(sqlite_app):
    url, _ = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    at.button(key="pat_new").click().run()
    _fill_patient(at, "pf_new_", first_name="Ben", last_name="Kurz", plz="1011", email="ben@", insurance_number="A123456781")
    at.text_input(key="pf_new_availability_Di").input("12-9")
    at.button(key="FormSubmitter:patient_form_new-Speichern").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("PLZ muss fünfstellig sein") for e in errors)
    assert any(e.startswith("E-Mail:") for e in errors)
    assert any("Prüfziffer" in e for e in errors)
    assert any(e.startswith("Zeitliche Verfügbarkeit:") and "Di" in e for e in errors)
    assert any(e.startswith("Nicht gespeichert") for e in errors)
    with read_session(get_engine(url)) as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.last_name == "Kurz")) == 0
    # the dialog is still open with the typed values
    assert at.text_input(key="pf_new_first_name").value == "Ben"


def test_duplicate_patient_needs_confirmation(sqlite_app):
    url, _ = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    at.button(key="pat_new").click().run()
    _fill_patient(at, "pf_new_", first_name="Jana", last_name="Müller")
    at.date_input(key="pf_new_birth_date").set_value(date(1990, 3, 14))
    at.button(key="FormSubmitter:patient_form_new-Speichern").click().run()
    assert not at.exception, at.exception
    assert any("Mögliche Dublette" in w.value for w in at.warning)
    at.checkbox(key="pf_new_allow_duplicate").check()
    at.button(key="FormSubmitter:patient_form_new-Speichern").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.last_name == "Müller")) == 2


def test_search_lifecycle_on_patient_page(sqlite_app):
    url, ids = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    # incomplete patient: the page names what is missing and the service refuses
    at.query_params["patient"] = str(ids["tom"])
    at.run()
    assert "Für den Start fehlt noch: Verträge unterschrieben" in texts(at)
    at.button(key=f"search_start_{ids['tom']}").click().run()
    assert any("Platzsuche kann noch nicht starten" in e.value for e in at.error)
    # complete patient: start, pause, resume, cancel
    at.query_params["patient"] = str(ids["jana"])
    at.run()
    j = ids["jana"]
    at.text_input(key=f"search_note_{j}").input("Erstgespräch")
    at.button(key=f"search_start_{j}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key=f"search_pause_{j}").click().run()
    at.button(key=f"search_resume_{j}").click().run()
    assert at.button(key=f"search_cancel_{j}").disabled
    at.checkbox(key=f"search_cancel_ok_{j}").check().run()
    at.button(key=f"search_cancel_{j}").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        search = s.scalars(select(Search).where(Search.patient_id == j)).one()
        assert search.status == SearchStatus.cancelled and "Erstgespräch" in search.notes
        assert s.get(Patient, j).status == PatientStatus.search_cancelled


def test_exclusion_from_patient_page_visible_on_therapist_page(sqlite_app):
    url, ids = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    at.query_params["patient"] = str(ids["jana"])
    at.run()
    j = ids["jana"]
    at.text_input(key=f"excl_term_{j}").input("berg").run()
    at.selectbox(key=f"excl_pick_{j}").select_index(0).run()
    at.text_input(key=f"excl_reason_{j}").input("kennt die Therapeutin privat")
    at.button(key=f"excl_add_{j}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.switch_page("pages/therapists.py").run()
    at.query_params["therapist"] = str(ids["berg"])
    at.run()
    df = at.dataframe[1].value
    assert list(df["Patient:in"]) == ["Jana Müller"] and list(df["Grund"]) == ["kennt die Therapeutin privat"]


# --------------------------------------------------------------------------- therapists: create, edit, status


@pytest.mark.parametrize("role", [Role.coordinator, Role.admin])
def test_create_and_edit_therapist(sqlite_app, role):
    url, ids = sqlite_app
    at = login(role)
    at.switch_page("pages/therapists.py").run()
    at.button(key="th_new").click().run()
    assert not at.exception, at.exception
    k = "tf_new_"
    for key, value in {"first_name": "Paul", "last_name": "Sommer", "plz": "20095", "phone": "040 123456",
                       "email": "sommer@praxis.example", "languages": "türkisch, Englisch"}.items():
        at.text_input(key=k + key).input(value)
    at.multiselect(key=k + "methods").select("VT").select("AP")
    at.text_input(key=k + "phone_hours_Di").input("8-9, 12:00-12:30")
    at.button(key="FormSubmitter:therapist_form_new-Speichern").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(url)) as s:
        t = s.scalars(select(Therapist).where(Therapist.last_name == "Sommer")).one()
        assert t.methods == {"VT", "AP"} and t.phone_hours == "Di 08:00-09:00, 12:00-12:30"
        assert t.languages == ["Türkisch", "Englisch"] and t.phone == "+4940123456"
    at.button(key="th_edit").click().run()
    at.number_input(key=f"tf_{t.id}_age_min").set_value(30)
    at.number_input(key=f"tf_{t.id}_age_max").set_value(20)
    at.button(key=f"FormSubmitter:therapist_form_{t.id}-Speichern").click().run()
    assert any("Höchstalter (20) muss mindestens" in e.value for e in at.error)
    at.number_input(key=f"tf_{t.id}_age_max").set_value(60)
    at.button(key=f"FormSubmitter:therapist_form_{t.id}-Speichern").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        t = s.get(Therapist, t.id)
        assert (t.age_min, t.age_max) == (30, 60) and set(t.hand_edited_fields) == {"age_min", "age_max"}


def test_block_and_unblock_therapist(sqlite_app):
    url, ids = sqlite_app
    b = ids["berg"]
    at = login(Role.coordinator)
    at.switch_page("pages/therapists.py").run()
    at.query_params["therapist"] = str(b)
    at.run()
    at.checkbox(key=f"th_block_ok_{b}").check().run()
    at.button(key=f"th_block_{b}").click().run()
    assert any("Sperrgrund fehlt" in e.value for e in at.error)
    at.text_input(key=f"th_block_reason_{b}").input("Beschwerde")
    at.checkbox(key=f"th_block_ok_{b}").check().run()
    at.button(key=f"th_block_{b}").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        t = s.get(Therapist, b)
        assert t.status == TherapistStatus.blocked and t.status_reason == "Beschwerde"
    at.multiselect(key="th_status").select("blocked").run()
    assert list(_df(at)["Name"]) == ["Berg, Dr. Eva"]
    at.button(key=f"th_unblock_{b}").click().run()
    with read_session(get_engine(url)) as s:
        assert s.get(Therapist, b).status == TherapistStatus.active


def test_export_is_audited(sqlite_app):
    url, _ = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/therapists.py").run()
    at.text_input(key="th_plz").input("10").run()
    at.button(key="th_csv_export").click().run()
    assert not at.exception
    with read_session(get_engine(url)) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "therapist.export")).one()
    assert entry.changes == {"count": 1, "filter": "PLZ 10…"}


def test_viewer_gets_no_dialog_even_with_forced_state(sqlite_app):
    url, ids = sqlite_app
    at = login(Role.viewer)
    at.session_state["patients_dialog"] = {"mode": "new"}
    at.switch_page("pages/patients.py").run()
    assert not at.exception
    assert not [t for t in at.text_input if t.key and t.key.startswith("pf_")]
    assert not [b for b in at.button if b.key and "csv" in b.key]


def test_server_side_paging_and_reset_on_filter_change(sqlite_app):
    url, _ = sqlite_app
    from sqlalchemy import insert

    with unit_of_work(get_engine(url)) as s:
        s.execute(insert(Therapist), [
            {"first_name": "Anna", "last_name": f"Seite{i:03d}", "plz": f"3{i:04d}", "created_at": NOW, "updated_at": NOW}
            for i in range(60)
        ])
    at = login(Role.viewer)
    at.switch_page("pages/therapists.py").run()
    assert "**62 Therapeut:innen** · Seite 1 von 2" in texts(at)
    assert len(_df(at)) == 50
    at.pagination(key="th_page").select(2).run()
    assert not at.exception
    assert len(_df(at)) == 12 and "Seite 2 von 2" in texts(at)
    at.text_input(key="th_plz").input("3").run()
    assert "**60 Therapeut:innen** · Filter: PLZ 3… · Seite 1 von 2" in texts(at)
    assert list(_df(at)["Name"])[0] == "Seite000, Anna"


def test_csv_import_preview_and_commit_in_page(sqlite_app):
    url, _ = sqlite_app
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    header = "Vorname;Nachname;Geburtsdatum;PLZ\r\n"
    bad = ("\ufeff" + header + "Ida;Neu;01.02.1980;10115\r\nOle;Alt;31.02.1980;10117\r\n").encode()
    at.file_uploader(key="pat_csv_upload_0").set_value(("neu.csv", bad, "text/csv")).run()
    assert not at.exception, at.exception
    assert any("1 fehlerhaft" in e.value and "nichts importiert" in e.value for e in at.error)
    problems = [d.value for d in at.dataframe if "Gründe" in d.value.columns][0]
    assert list(problems["Zeile"]) == [3] and problems["Gründe"][0].startswith("Geburtsdatum: „31.02.1980“")
    assert not [b for b in at.button if b.key == "pat_csv_import"]
    good = ("\ufeff" + header + "Ida;Neu;01.02.1980;10115\r\nOle;Alt;28.02.1980;10117\r\n").encode()
    at.file_uploader(key="pat_csv_upload_0").set_value(("neu.csv", good, "text/csv")).run()
    assert at.button(key="pat_csv_import").label == "2 Patient:innen importieren"
    at.button(key="pat_csv_import").click().run()
    assert not at.exception and not at.error
    assert "**4 Patient:innen**" in texts(at)
    assert at.file_uploader(key="pat_csv_upload_1").value is None or not at.file_uploader(key="pat_csv_upload_1").value
    with read_session(get_engine(url)) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "patient.import")) == 3


# --------------------------------------------------------------------------- issue 12 points 16, 19, 20; issue 9 point 4


def _dialogs(at):
    """The dialog blocks on screen (AppTest has no accessor for them)."""
    from streamlit.testing.v1.element_tree import Block

    found = []

    def walk(node):
        if isinstance(node, Block):
            if getattr(node, "type", None) == "dialog":
                found.append(node)
            for child in node.children.values():
                walk(child)

    walk(at._tree)
    return found


def _open_record(page: str, param: str, record_id: int):
    """Logged in as coordinator, on `page`, with the record `record_id` selected through the URL."""
    at = login(Role.coordinator)
    at.switch_page(page).run()
    at.query_params[param] = str(record_id)
    at.run()
    return at


def _new_record_form(page: str, new_button: str):
    """Logged in as coordinator, on `page`, with the "Neue …" dialog open."""
    at = login(Role.coordinator)
    at.switch_page(page).run()
    at.button(key=new_button).click().run()
    return at


@pytest.mark.parametrize("page, new, prefix", [("pages/patients.py", "pat_new", "pf_new_"), ("pages/therapists.py", "th_new", "tf_new_")])
def test_12_19_form_widgets_have_no_range_limits_the_service_checks_instead(sqlite_app, page, new, prefix):
    at = _new_record_form(page, new)
    numbers = [n for n in at.number_input if n.key and n.key.startswith(prefix)]
    dates = [d for d in at.date_input if d.key and d.key.startswith(prefix)]
    assert numbers and dates
    # a Streamlit min/max answers in English and blocks "Speichern" without a word
    assert not any(n.proto.has_min or n.proto.has_max for n in numbers), [n.key for n in numbers]
    # future dates reach the service, which names the field in German
    assert all(d.proto.max >= "2100-01-01" for d in dates), [(d.key, d.proto.max) for d in dates]


def test_12_19_future_birth_date_and_negative_distance_get_german_messages_by_the_field(sqlite_app):
    url, _ = sqlite_app
    at = _new_record_form("pages/patients.py", "pat_new")
    _fill_patient(at, "pf_new_", first_name="Lea", last_name="Zukunft")
    at.date_input(key="pf_new_birth_date").set_value(date(TODAY.year + 1, 1, 1))
    at.number_input(key="pf_new_max_distance_km").set_value(-5)
    at.button(key="FormSubmitter:patient_form_new-Speichern").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert "Geburtsdatum liegt in der Zukunft – bitte prüfen." in errors
    assert any(e.startswith("Maximale Entfernung (km) muss zwischen 1 und 200 liegen") for e in errors)
    with read_session(get_engine(url)) as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.last_name == "Zukunft")) == 0


def test_12_19_negative_age_on_therapist_form_is_a_german_message(sqlite_app):
    at = _new_record_form("pages/therapists.py", "th_new")
    at.text_input(key="tf_new_first_name").input("Paul")
    at.text_input(key="tf_new_last_name").input("Minus")
    at.number_input(key="tf_new_age_min").set_value(-1)
    at.button(key="FormSubmitter:therapist_form_new-Speichern").click().run()
    assert any(e.value.startswith("Mindestalter muss zwischen 0 und 120 liegen") for e in at.error)


def test_12_20_closing_the_patient_dialog_with_changes_asks_before_discarding(sqlite_app):
    at = _new_record_form("pages/patients.py", "pat_new")
    dialogs = _dialogs(at)
    assert len(dialogs) == 1 and dialogs[0].proto.dialog.dismissible is False  # Esc / X / click outside do nothing
    # nothing typed: "Abbrechen" simply closes
    at.button(key="FormSubmitter:patient_form_new-Abbrechen").click().run()
    assert not _dialogs(at) and "patients_dialog" not in at.session_state
    # something typed: "Abbrechen" asks, "Weiter bearbeiten" keeps the values
    at.button(key="pat_new").click().run()
    at.text_input(key="pf_new_first_name").input("Halb")
    at.button(key="FormSubmitter:patient_form_new-Abbrechen").click().run()
    assert _dialogs(at) and any("noch nicht gespeichert" in w.value for w in at.warning)
    at.button(key="pf_new_keep").click().run()
    assert _dialogs(at) and at.text_input(key="pf_new_first_name").value == "Halb"
    assert not any("noch nicht gespeichert" in w.value for w in at.warning)
    # … and "Änderungen verwerfen" closes without saving
    at.button(key="FormSubmitter:patient_form_new-Abbrechen").click().run()
    at.button(key="pf_new_discard").click().run()
    assert not _dialogs(at) and not at.exception
    assert "**2 Patient:innen**" in texts(at)


def test_12_16_nul_byte_in_a_list_filter_is_a_german_message_on_the_page(sqlite_app):
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    at.text_input(key="pat_name").input("Mü\x00ller").run()
    assert not at.exception, at.exception
    assert any(e.value.startswith("Filter nicht anwendbar: Name enthält ein unzulässiges Steuerzeichen") for e in at.error)


def test_9_4_status_actions_come_from_the_state_machine(sqlite_app):
    url, ids = sqlite_app
    b = ids["berg"]
    with unit_of_work(get_engine(url)) as s:
        therapists.block(s, SYSTEM, b, "Beschwerde", today=TODAY, now=NOW)
    at = _open_record("pages/therapists.py", "therapist", b)
    keys = {x.key for x in at.button}
    assert f"th_block_{b}" not in keys and {f"th_unblock_{b}", f"th_inactive_{b}"} <= keys
    assert at.button(key=f"th_unblock_{b}").label == "Entsperren"
    at.button(key=f"th_inactive_{b}").click().run()
    assert not at.exception and not at.error
    with read_session(get_engine(url)) as s:
        assert s.get(Therapist, b).status == TherapistStatus.inactive
    assert at.button(key=f"th_unblock_{b}").label == "Wieder aktiv setzen"


def test_12_16_nul_byte_in_the_exclusion_search_is_a_german_message(sqlite_app):
    _, ids = sqlite_app
    at = _open_record("pages/patients.py", "patient", ids["jana"])
    at.text_input(key=f"excl_term_{ids['jana']}").input("be\x00rg").run()
    assert not at.exception, at.exception
    assert any("unzulässiges Steuerzeichen" in e.value for e in at.error)
