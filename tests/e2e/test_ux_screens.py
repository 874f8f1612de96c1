"""Chromium: the page states changed for issue 12 (points 3, 5, 13, 21, 23), each with a
screenshot in test-artifacts/ux_*.png and an assertion on what a person sees."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from core.geo import plz as geo_plz
from core.inquiries import lifecycle
from core.mail import delivery
from core.platform.config import Settings
from core.platform.db import dispose_engines, get_engine, unit_of_work
from core.platform.permissions import SYSTEM
from core.platform.vocab import Role
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.support.seed import patient_with_search, therapist

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _patient_under_load(page):
    """The shared test machine is slow at times: wait longer before calling a step failed."""
    page.set_default_timeout(45_000)


class _Beacon:
    """A loopback HTTP server that counts requests: the "tracking pixel" of a note."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pixel.png"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _outside_requests(page, server) -> list[str]:
    """Collect every request the page makes to a host other than the dashboard itself."""
    own = urlparse(server["url"]).netloc
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if urlparse(r.url).netloc not in (own, "") and not r.url.startswith("data:") else None)
    return seen


def _seed(url):
    now = datetime.now(timezone.utc) - timedelta(days=1)
    with unit_of_work(get_engine(url)) as s:
        geo_plz.ensure_plz_table(s)
        ids = []
        for n, name in enumerate(("Adler", "Birke")):
            t = therapist(s, last_name=name, email=f"{name.lower()}@example.org", plz="10115", lat=52.53, lon=13.38)
            _, search = patient_with_search(s, first_name="Pia", last_name=f"Probe{n}", lat=52.52, lon=13.40, plz="10178",
                                            max_distance_km=25, email=f"pia{n}@example.org")
            at = now + timedelta(hours=n)
            i = lifecycle.create_inquiry(s, SYSTEM, t.id, [search.id], today=at.date(), now=at, settings=Settings())
            lifecycle.send_inquiry(s, SYSTEM, i.id, today=at.date(), now=at, settings=Settings())
            for mail in delivery.claim_due(s, owner="e2e", now=at, limit=10, lease_until=at + timedelta(minutes=5), settings=Settings()):
                delivery.mark_sent(s, mail, owner="e2e", sent_at=at)
            ids.append((i.id, search.id))
        # a draft inquiry (created without "Gleich senden")
        t = therapist(s, last_name="Entwurf", email="entwurf@example.org", plz="10115", lat=52.53, lon=13.38)
        _, search = patient_with_search(s, first_name="Dora", last_name="Draft", lat=52.52, lon=13.40, plz="10178", max_distance_km=25)
        draft = lifecycle.create_inquiry(s, SYSTEM, t.id, [search.id], today=now.date(), now=now, settings=Settings())
        return ids, draft.id


@pytest.fixture(scope="module")
def seeded(server):
    data = _seed(server["db"])
    dispose_engines()
    return data


def test_ux_before_login_only_the_login(server, page):
    seen = _outside_requests(page, server)
    page.goto(server["url"] + "/patienten")
    wait_for_app(page)
    page.get_by_label("Benutzername").wait_for()
    screenshot(page, "ux_login_before")
    assert page.locator("[data-testid='stSidebarNav']").count() == 0  # no list of page files
    # Streamlit itself shows an English "Page not found" for a deep link before login (it
    # matches the address against the legacy pages/ folder before the script runs).
    if page.get_by_role("button", name="Close").count():
        page.get_by_role("button", name="Close").first.click()
    from tests.e2e.test_login_flow import _login as login
    login(page, Role.coordinator)
    page.get_by_role("heading", name="Patient:innen").wait_for()  # … and then the page it named
    screenshot(page, "ux_login_deep_link_after")
    assert not seen, seen


def test_ux_answer_keeps_the_selection(server, page, seeded):
    (first, s1), (second, _) = seeded[0]
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/vermittlung")
    wait_for_app(page)
    page.get_by_role("radio", name="Anfragen", exact=True).click()
    wait_for_app(page)
    page.get_by_role("radio", name="Alle (", exact=False).click()
    wait_for_app(page)
    # the older inquiry sits in the second row: click it
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for()
    page.wait_for_timeout(800)
    box = grid.bounding_box()
    # rows: A2 (sent last), the draft, A1 (sent first): click A1's selection box in the third row
    row_y = box["y"] + 35 + 2 * 35 + 17
    page.mouse.move(box["x"] + 18, row_y)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + 18, row_y)
    page.wait_for_timeout(1000)
    wait_for_app(page)
    page.get_by_role("heading", name=f"Anfrage A{first} an", exact=False).wait_for()
    screenshot(page, "ux_answer_before")
    combo = page.get_by_role("combobox", name=re.compile("Pia Probe0")).first
    combo.click()
    combo.fill("abgelehnt (Kapazität)")
    page.get_by_role("option", name="abgelehnt (Kapazität)", exact=True).click()
    page.get_by_role("button", name="Antwort speichern").click()
    page.get_by_test_id("stToastText").first.wait_for()
    page.wait_for_timeout(500)
    wait_for_app(page)
    page.get_by_role("heading", name=f"Anfrage A{first} an", exact=False).wait_for()
    screenshot(page, "ux_answer_kept_selection")
    assert page.get_by_role("heading", name=f"Anfrage A{second} an", exact=False).count() == 0
    assert page.get_by_role("button", name="Antwort speichern").count() == 0  # answered: shows its new state


def test_ux_new_inquiry_is_a_draft_in_the_outbox(server, page, seeded):
    _, draft_id = seeded
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/postausgang")
    wait_for_app(page)
    try:
        page.get_by_role("tab", name="Entwürfe (1)").wait_for()  # the draft inquiry's mail is here
    except Exception:
        screenshot(page, "ux_outbox_failed")
        raise
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for()
    page.wait_for_timeout(800)
    box = grid.bounding_box()
    page.mouse.move(box["x"] + 18, box["y"] + 35 + 17)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    page.wait_for_timeout(1000)
    wait_for_app(page)
    page.get_by_role("tab", name="Vorschau (HTML)").wait_for()
    page.get_by_text(f"Anfrage A{draft_id}", exact=False).first.wait_for()
    screenshot(page, "ux_outbox_drafts")


def test_ux_note_with_image_link_fetches_nothing(server, page):
    beacon = _Beacon()
    try:
        with unit_of_work(get_engine(server["db"])) as s:
            p, _ = patient_with_search(s, first_name="Nora", last_name="Notiz", notes=f"Bitte beachten ![x]({beacon.url}) <img src=\"{beacon.url}\">")
            pid = p.id
        dispose_engines()
        page.goto(server["url"])
        wait_for_app(page)
        _login(page, Role.coordinator)
        page.get_by_role("heading", name="Übersicht").wait_for()
        page.goto(server["url"] + f"/patienten?patient={pid}")
        wait_for_app(page)
        page.get_by_text("Bitte beachten", exact=False).first.wait_for()
        page.wait_for_timeout(1000)
        screenshot(page, "ux_note_as_text")
        assert beacon.hits == [], "the note made the browser fetch a URL"
        assert page.get_by_text(f"![x]({beacon.url})", exact=False).count() >= 1  # shown literally
    finally:
        beacon.close()


def test_ux_map_own_base_layer_no_outside_requests(server, page, seeded):
    seen = _outside_requests(page, server)
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/karte")
    wait_for_app(page)
    page.get_by_role("heading", name="Karte").wait_for(timeout=60_000)
    missing_glyphs: list[str] = []
    page.on("console", lambda m: missing_glyphs.append(m.text) if "Missing character" in m.text else None)
    search = page.get_by_label("Patient:in suchen (Name, Kennung wie P152 oder PLZ)")
    try:
        search.wait_for(timeout=60_000)
    except Exception:
        screenshot(page, "ux_map_failed")
        raise
    search.fill("Probe0")
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.locator("[data-testid='stDeckGlJsonChart'] canvas").first.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1500)
    screenshot(page, "ux_map_backdrop")
    page.get_by_text("eigene Ebene aus den PLZ-Mittelpunkten", exact=False).wait_for()
    assert not seen, seen  # no CARTO, no tiles, no fonts from outside
    assert not missing_glyphs, missing_glyphs  # city labels with umlauts


def test_ux_audit_log_in_german(server, page, seeded):
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.admin)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/protokoll")
    wait_for_app(page)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.wait_for_timeout(800)
    screenshot(page, "ux_audit_log")
