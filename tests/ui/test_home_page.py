"""AppTest of Übersicht for every role on a small data set: to-dos with links, the eight key
figures with their change, the four charts and the region table, the job runner's state, and
the search box (P-number, name part, phone only with contact rights, A-number)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.platform.db import get_engine, unit_of_work
from core.platform.models import JobRun, RunnerHeartbeat
from core.platform.vocab import Role
from core.reports import cache as report_cache
from tests.support.apptest import login, texts
from tests.support.matching_fixtures import make_search, make_therapist, open_inquiry, patient_of
from ui import context


@pytest.fixture
def home_data(app_db):
    report_cache.REPORTS.clear()
    now = context.now()
    today = context.today()
    with unit_of_work(get_engine(app_db)) as s:
        waiting = make_search(s, first_name="Wilma", last_name="Wartelang", started_on=today - timedelta(days=120),
                              phone="+4930555123")
        placed = make_search(s, first_name="Pia", last_name="Platz", started_on=today - timedelta(days=60))
        t = make_therapist(s, first_name="Tom", last_name="Telefonheld")
        inquiry = open_inquiry(s, t.id, [placed.id], status="sent")
        inquiry.sent_at = now - timedelta(days=10)
        answered = open_inquiry(s, make_therapist(s).id, [placed.id], status="answered")
        answered.sent_at, answered.answered_at, answered.response_type = now - timedelta(days=9), now - timedelta(days=5), "partly_accepted"
        answered.patients[0].outcome, answered.patients[0].outcome_at = "accepted", now - timedelta(days=5)
        placed.placed_therapist_id, placed.placed_on = answered.therapist_id, today - timedelta(days=5)
        s.add(RunnerHeartbeat(runner_id="r1", hostname="h", pid=1, is_leader=True, started_at=now, beat_at=now))
        s.add(JobRun(job_name="outbox_delivery", runner_id="r1", started_at=now - timedelta(minutes=1),
                     finished_at=now - timedelta(minutes=1), result="error", error="SMTPError: 421 Versuch später"))
        s.flush()
        ids = {"waiting_patient": patient_of(s, waiting).id, "inquiry": inquiry.id}
    yield ids
    report_cache.REPORTS.clear()


@pytest.mark.parametrize("role", list(Role))
def test_home_renders_for_every_role(home_data, role):
    at = login(role)
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    metrics = {m.label: m for m in at.metric}
    assert {"Aktive Platzsuchen", "Mittlere Wartezeit", "Vermittlungen", "Tage bis zur Vermittlung",
            "Anfragen warten auf Antwort", "Antwortquote (7 Tage)", "Zusagequote", "Jetzt anfragbar"} <= set(metrics)
    assert metrics["Aktive Platzsuchen"].value == "2"
    assert metrics["Vermittlungen"].value == "1"
    assert "ggü. Vorzeitraum" in (metrics["Vermittlungen"].delta or "")
    assert metrics["Mittlere Wartezeit"].value == "90 Tage"  # 60 and 120 days
    charts = at.get("vega_lite_chart")
    assert len(charts) == 4
    links = [p.proto.label for p in at.get("page_link")]
    assert any("seit über 7 Tagen ohne Antwort" in l for l in links)  # the answer to record, linked
    assert any(l.startswith(f"P{home_data['waiting_patient']} Wilma Wartelang") for l in links)
    assert "Hintergrunddienst aktiv" in texts(at)
    assert "Letzter Lauf fehlgeschlagen: E-Mail-Versand (Postausgang)" in texts(at)
    jobs = next(d.value for d in at.dataframe if "Aufgabe" in d.value.columns)
    shown = " ".join(str(v) for v in jobs.to_numpy().ravel())
    assert ("421 Versuch später" in shown) == (role == Role.admin)  # only admins see the error text


def _search(at, text):
    at.text_input(key="home_search").input(text).run()
    assert not at.exception, at.exception
    return [p.proto.label for p in at.get("page_link") if " · " in p.proto.label]


def test_search_box_for_coordinator(home_data):
    at = login(Role.coordinator)
    pid = home_data["waiting_patient"]
    assert any(l.startswith(f"P{pid} · Wilma Wartelang") for l in _search(at, f"P{pid}"))
    assert any(l.startswith(f"P{pid} · Wilma Wartelang") for l in _search(at, "wartel"))
    assert any(l.startswith(f"P{pid} · Wilma Wartelang") for l in _search(at, "030 555123"))
    assert any(l.startswith(f"A{home_data['inquiry']} · Tom Telefonheld") for l in _search(at, f"A{home_data['inquiry']}"))


def test_search_box_for_viewer_finds_no_one_by_phone(home_data):
    at = login(Role.viewer)
    pid = home_data["waiting_patient"]
    assert any(l.startswith(f"P{pid} · Wilma Wartelang") for l in _search(at, f"P{pid}"))
    assert any(l.startswith(f"P{pid} · Wilma Wartelang") for l in _search(at, "Wartelang"))
    assert _search(at, "030 555123") == []
    assert any("nicht freigegeben" in i.value for i in at.info)


@pytest.mark.parametrize("role", list(Role))
def test_contact_log_from_patient_page(home_data, app_db, role):
    from sqlalchemy import select

    from core.platform.db import read_session
    from core.platform.models import AuditEntry

    at = login(role)
    at.switch_page("pages/patients.py").run()
    at.query_params["patient"] = str(home_data["waiting_patient"])
    at.run()
    assert not at.exception, at.exception
    create = [b for b in at.button if b.key == f"contact_log_create_{home_data['waiting_patient']}"]
    if role == Role.viewer:
        assert create == []  # viewers can't
        return
    create[0].click().run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    downloads = [d for d in at.get("download_button") if "Kontaktprotokoll" in d.proto.label]
    assert len(downloads) == 1
    with read_session(get_engine(app_db)) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "patient.contact_log")).all()
    assert [(e.entity, e.entity_id) for e in entries] == [("patient", home_data["waiting_patient"])]


def test_filters_period_and_region(home_data):
    at = login(Role.coordinator)
    at.selectbox(key="home_period").select("quarter").run()
    at.text_input(key="home_region").input("10").run()
    assert not at.exception, at.exception
    assert "PLZ-Region 10…" in texts(at)
    assert {m.label: m.value for m in at.metric}["Aktive Platzsuchen"] == "2"  # both test patients live in 10115
    at.text_input(key="home_region").input("99").run()
    assert {m.label: m.value for m in at.metric}["Aktive Platzsuchen"] == "0"
    at.text_input(key="home_region").input("1a").run()
    assert any("1 bis 5 Ziffern" in w.value for w in at.warning)
    at.text_input(key="home_region").input("").run()
    at.selectbox(key="home_period").select("custom").run()
    assert not at.exception, at.exception
    assert at.date_input(key="home_range") is not None
