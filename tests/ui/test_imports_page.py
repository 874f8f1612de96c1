"""AppTest of the Importe page for every role: coordinators and admins see runs, the review
queue and the live-fetch status; viewers do not get the page at all."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from core.imports import runs
from core.platform.db import get_engine, read_session, unit_of_work
from core.platform.models import Therapist
from core.platform.permissions import SYSTEM
from core.platform.vocab import Role
from tests.support.apptest import login, texts

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche" / "current_2026.json"
PAGE = "pages/imports.py"


def seed_run(url: str) -> None:
    with unit_of_work(get_engine(url)) as s:
        runs.import_file(s, SYSTEM, filename="koeln.json", raw=FIXTURE.read_bytes(), now=datetime.now(timezone.utc))


@pytest.mark.parametrize("role", [Role.coordinator, Role.admin])
def test_the_page_renders_for(app_db, role):
    at = login(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    assert at.title[0].value == "Importe"
    page = texts(at)
    assert "Live-Abruf der Arztsuche" in page and "ausgeschaltet" in page
    assert "Keine Änderungen zu prüfen" in [i.value for i in at.info][0] or "Keine Änderungen zu prüfen" in page


def test_viewers_do_not_get_the_page(app_db):
    at = login(Role.viewer)
    with pytest.raises(Exception, match="(?i)navigation|page"):
        at.switch_page(PAGE).run()


def test_review_queue_with_filters_and_accept_all(app_db):
    seed_run(app_db)
    at = login(Role.coordinator)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "6 Änderungen" in page
    queue = at.dataframe(key="imports_table").value
    assert set(queue["Art"]) == {"neu"}
    assert any("Beispiel" in n for n in queue["Name"])
    assert any("Vorname: – → Anna" in c for c in queue["Änderungen"])
    runs_table = at.dataframe[-1].value  # the runs table comes last
    assert list(runs_table["Neu"]) == [6]
    # filter: nothing changed yet
    at.segmented_control(key="imports_filter").set_value("changed").run()
    assert "Keine Änderungen im Filter „Geändert“." in [i.value for i in at.info]
    at.segmented_control(key="imports_filter").set_value("all").run()
    at.checkbox(key="imports_confirm_all").check().run()
    at.button(key="imports_accept_all").click().run()
    assert not at.exception, at.exception
    with read_session(get_engine(app_db)) as s:
        names = set(s.scalars(select(Therapist.last_name)))
    assert {"Beispiel", "Muster", "Gruppmann"} <= names
    assert "Keine Änderungen zu prüfen" in " ".join(i.value for i in at.info)


def test_detail_of_one_change_shows_the_diff_per_field(app_db):
    seed_run(app_db)
    at = login(Role.admin)
    at.switch_page(PAGE).run()
    # select the first row of the review table (Anna Beispiel)
    at.session_state["imports_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "Dipl.-Psych. Anna Beispiel" in page
    fields = at.dataframe[1].value  # the per-field diff
    assert "Telefonische Erreichbarkeit" in list(fields["Feld"])
    assert "Weitere Zeiten laut Arztsuche" in page and "Sprechstunde (01)" in page
