"""Chromium: the Anrufliste journey (issue 10) – open the list, record "nicht erreicht", see
the next attempt, record "erreicht" with an acceptance, see the patient placed."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from core.inquiries import lifecycle
from core.platform.config import Settings
from core.platform.db import dispose_engines, get_engine, read_session, unit_of_work
from core.platform.models import PhoneCall, Search
from core.platform.permissions import Actor
from core.platform.vocab import CallState, Role
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.support.seed import patient_with_search, therapist

pytestmark = pytest.mark.e2e
ALWAYS = "Mo 00:00-23:59; Di 00:00-23:59; Mi 00:00-23:59; Do 00:00-23:59; Fr 00:00-23:59; Sa 00:00-23:59; So 00:00-23:59"
SEEDER = Actor(user_id=None, username="e2e", role=Role.coordinator)


def _seed(url):
    """A phone inquiry (practice without e-mail) for one patient, sent: its call is on the list now."""
    now = datetime.now(timezone.utc)
    today = now.date()
    with unit_of_work(get_engine(url)) as s:
        t = therapist(s, last_name="Anrufpraxis", email=None, phone="+49 30 5550123", phone_hours=ALWAYS)
        _, search = patient_with_search(s, first_name="Clara", last_name="Callback", max_distance_km=20,
                                        started_on=date(2026, 3, 1))
        inquiry = lifecycle.create_inquiry(s, SEEDER, t.id, [search.id], today=today, now=now, settings=Settings())
        report = lifecycle.send_inquiry(s, SEEDER, inquiry.id, today=today, now=now, settings=Settings())
        assert report.call_id, report.message
        return inquiry.id, search.id, t.id, report.call_id


def test_call_list_journey(server, page):
    inquiry_id, search_id, therapist_id, first_call = _seed(server["db"])
    dispose_engines()
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()

    page.goto(server["url"] + f"/anrufliste?call={first_call}")
    wait_for_app(page)
    page.get_by_role("heading", name="Anrufliste").wait_for()
    page.get_by_text("Patient:innen der Anfrage", exact=False).first.wait_for()
    screenshot(page, "calls_list")

    # first attempt: nobody answers
    page.get_by_role("button", name="Ergebnis erfassen").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_text("nicht erreicht", exact=True).click()
    wait_for_app(page)
    dialog.get_by_label("Notiz zu diesem Versuch").fill("Niemand geht ran")
    screenshot(page, "calls_dialog_not_reached")
    dialog.get_by_role("button", name="Speichern").click()
    wait_for_app(page)
    page.get_by_text("Nächster Anruf", exact=False).first.wait_for()
    with read_session(get_engine(server["db"])) as s:
        second = s.query(PhoneCall).filter_by(previous_call_id=first_call).one()
        assert s.get(PhoneCall, first_call).state == CallState.failed and second.state == CallState.scheduled
        second_id = second.id
    # the next attempt is shown with the earlier attempt's note
    page.get_by_text("Versuch 1: nicht erreicht – Niemand geht ran", exact=False).first.wait_for()
    screenshot(page, "calls_next_attempt")

    # second attempt: reached, the practice accepts the patient
    page.get_by_role("button", name="Ergebnis erfassen").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_text("erreicht", exact=True).click()
    wait_for_app(page)
    box = dialog.get_by_role("combobox", name=f"A{inquiry_id}-1", exact=False)
    box.click()
    box.fill("angenommen")
    page.get_by_role("option", name="angenommen", exact=True).click()
    screenshot(page, "calls_dialog_reached")
    dialog.get_by_role("button", name="Speichern").click()
    wait_for_app(page)
    page.get_by_text("vermittelt", exact=False).first.wait_for()
    screenshot(page, "calls_placed")
    with read_session(get_engine(server["db"])) as s:
        assert s.get(Search, search_id).placed_therapist_id == therapist_id
        assert s.get(PhoneCall, second_id).state == CallState.done
