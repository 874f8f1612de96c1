"""Chromium: the whole placement flow on the Vermittlung page – create and send two
inquiries from proposals, the outbox delivers one, answers with mixed outcomes, the placed
patient is withdrawn from the other inquiry, a second acceptance becomes a conflict that is
released with a note, and the success is confirmed."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.mail import delivery
from core.platform.config import Settings
from core.platform.db import dispose_engines, get_engine, read_session, unit_of_work
from core.platform.models import Inquiry, OutboxEmail, Search
from core.platform.vocab import InquiryStatus, Role, SearchStatus
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.support.seed import patient_with_search, therapist

pytestmark = pytest.mark.e2e


def _seed(url):
    with unit_of_work(get_engine(url)) as s:
        mail = therapist(s, last_name="Mailpraxis", email="mailpraxis@example.org", plz="10115", lat=52.531, lon=13.384,
                         knows_us=True)
        phone = therapist(s, last_name="Telefonpraxis", email=None, phone="+493099999999", plz="10117", lat=52.517, lon=13.389)
        older = patient_with_search(s, first_name="Ada", last_name="Älter", plz="10178", lat=52.52, lon=13.40,
                                    max_distance_km=20, started_on=date(2026, 2, 1), email="ada@example.org")[1]
        younger = patient_with_search(s, first_name="Ben", last_name="Jünger", plz="10178", lat=52.52, lon=13.40,
                                      max_distance_km=20, started_on=date(2026, 5, 1))[1]
        return mail.id, phone.id, older.id, younger.id


def _deliver(url):
    """What the outbox job does (tested by the outbox issue): deliver due mails."""
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    with unit_of_work(get_engine(url)) as s:
        for m in delivery.claim_due(s, owner="e2e", now=now, limit=20, lease_until=now + timedelta(minutes=5), settings=Settings()):
            delivery.mark_sent(s, m, owner="e2e", sent_at=now)


def _goto(page, server, query: str, view: str = "Neue Anfrage") -> None:
    """Open the page; plain parameters (mt_therapist, mt_inquiry) come from the URL, the view
    is chosen by clicking (a reload keeps the browser session's widget values)."""
    page.goto(server["url"] + "/vermittlung?" + query)
    wait_for_app(page)
    page.get_by_role("heading", name="Vermittlung").first.wait_for()
    page.get_by_role("radio", name=view, exact=True).click()
    wait_for_app(page)


def _inquiry(page, server, inquiry_id: int) -> None:
    _goto(page, server, f"mt_inquiry={inquiry_id}", view="Anfragen")
    page.get_by_role("radio", name="Alle (", exact=False).click()
    wait_for_app(page)
    page.get_by_role("heading", name=f"Anfrage A{inquiry_id}", exact=False).wait_for()


def _eventually(check, *, timeout: float = 45.0, what: str = "the saved state"):
    """Wait for an action's effect in the database: a click returns before Streamlit's rerun
    has saved anything, so reading the database right after it races the server."""
    deadline = time.monotonic() + timeout
    while True:
        dispose_engines()
        try:
            value = check()
        except (AssertionError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return check()  # raises with the real assertion
        time.sleep(0.1)


def _create_from_proposal(page, server, therapist_id: int, name: str) -> None:
    _goto(page, server, f"mt_therapist={therapist_id}")
    page.get_by_role("textbox", name="PLZ-Region oder PLZ").fill("10")
    page.get_by_role("textbox", name="PLZ-Region oder PLZ").press("Enter")
    wait_for_app(page)
    page.get_by_role("heading", name=f"Anfrage an Tina {name}").wait_for()
    page.get_by_text("Gleich senden").click()
    wait_for_app(page)
    page.get_by_role("button", name="Anfrage erstellen").click()
    page.wait_for_url(re.compile(r"mt_inquiry=\d+"))  # the created inquiry is opened
    wait_for_app(page)
    screenshot(page, f"matching_created_{name.lower()}")


def _choose(page, label: str, option: str) -> None:
    """A selectbox (react-aria combobox): type to filter, then click the option."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_full_placement_flow_in_the_browser(server, page):
    mail_id, phone_id, older_id, younger_id = _seed(server["db"])
    dispose_engines()
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()

    # region list and proposal
    _goto(page, server, "")
    page.get_by_role("textbox", name="PLZ-Region oder PLZ").fill("10")
    page.get_by_role("textbox", name="PLZ-Region oder PLZ").press("Enter")
    wait_for_app(page)
    page.get_by_text("2 kontaktierbare Therapeut:innen").wait_for()
    screenshot(page, "matching_region_list")
    _create_from_proposal(page, server, mail_id, "Mailpraxis")
    screenshot(page, "matching_created_mail_inquiry")
    _create_from_proposal(page, server, phone_id, "Telefonpraxis")
    def both_created():
        with read_session(get_engine(server["db"])) as s:
            found = {i.therapist_id: i for i in s.scalars(select(Inquiry))}
            return found if set(found) == {mail_id, phone_id} else None

    _eventually(both_created)
    with read_session(get_engine(server["db"])) as s:
        inquiries = {i.therapist_id: i for i in s.scalars(select(Inquiry))}
        assert {i.status for i in inquiries.values()} == {InquiryStatus.queued}
        assert [m.search_id for m in inquiries[mail_id].patients] == [older_id, younger_id]
    mail_inquiry, phone_inquiry = inquiries[mail_id].id, inquiries[phone_id].id
    _deliver(server["db"])  # the e-mail inquiry counts as sent once delivered

    # the phone inquiry: the call is made, the therapist accepts the older, rejects the younger
    _inquiry(page, server, phone_inquiry)
    screenshot(page, "matching_phone_inquiry")
    page.get_by_role("button", name="Anruf geführt").click()
    wait_for_app(page)
    page.get_by_text("Antwort erfassen").wait_for()
    _choose(page, "1. Ada Älter", "angenommen")
    _choose(page, "2. Ben Jünger", "abgelehnt (Kapazität)")
    screenshot(page, "matching_answer_form")
    page.get_by_role("button", name="Antwort speichern").click()
    wait_for_app(page)
    def placed():
        with read_session(get_engine(server["db"])) as s:
            return s.get(Search, older_id).placed_therapist_id == phone_id

    _eventually(placed)
    with read_session(get_engine(server["db"])) as s:
        assert s.get(Search, older_id).placed_therapist_id == phone_id
        mail_inq = s.get(Inquiry, mail_inquiry)
        assert mail_inq.reduced and mail_inq.status == InquiryStatus.sent  # Ada withdrawn, Ben still asked

    # the e-mail practice answers late: accepts Ben and also Ada (already placed → conflict)
    _inquiry(page, server, mail_inquiry)
    page.get_by_text("reduziert").first.wait_for()
    _choose(page, "2. Ben Jünger", "angenommen")
    _choose(page, "1. Ada Älter (zurückgezogen)", "angenommen")
    page.get_by_role("button", name="Antwort speichern").click()
    wait_for_app(page)
    screenshot(page, "matching_answer_with_conflict")

    # conflict released with a note, success confirmed
    _goto(page, server, "", view="Zusagen & Konflikte")
    page.get_by_text("1 offener Konflikt").wait_for()
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selection cell
    wait_for_app(page)
    page.get_by_label("Wie wurde der Konflikt gelöst?").fill("Praxis informiert, Platz geht an jemand anderen")
    page.get_by_role("button", name="Zusage freigeben").click()
    wait_for_app(page)
    page.get_by_text("Keine offenen Konflikte").wait_for()
    _inquiry(page, server, phone_inquiry)
    page.get_by_role("button", name="Erfolg bestätigen").click()
    wait_for_app(page)
    screenshot(page, "matching_success")

    def succeeded():
        with read_session(get_engine(server["db"])) as s:
            return s.get(Search, older_id).status == SearchStatus.successful

    _eventually(succeeded)
    with read_session(get_engine(server["db"])) as s:
        assert s.get(Search, older_id).status == SearchStatus.successful
        assert s.get(Search, younger_id).placed_therapist_id == mail_id
        assert s.scalar(select(OutboxEmail.to_address).where(OutboxEmail.patient_id.is_not(None))) == "ada@example.org"
