"""Übersicht in Chromium with the demo data: every chart draws, the key figures show their
change, the to-dos link on, and a screenshot is saved (test-artifacts/overview_demo.png)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.platform.db import dispose_engines, make_engine
from demo.data import DEMO, load_demo_data
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from core.platform.vocab import Role
from ui import context

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_server(server):
    engine = make_engine(server["db"])
    with Session(engine) as s:
        load_demo_data(s, scale=DEMO, today=context.today(), geonames_path=None)
        s.commit()
    engine.dispose()
    dispose_engines()
    return server


def test_overview_with_demo_data(demo_server, page):
    page.set_viewport_size({"width": 1400, "height": 3600})  # Streamlit scrolls inside its own container: show it all
    page.goto(demo_server["url"])
    wait_for_app(page)
    with page.expect_response(lambda r: "/_app/session" in r.url and r.ok, timeout=30_000):
        _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    wait_for_app(page)
    page.get_by_role("heading", name="Kennzahlen").wait_for()
    charts = page.locator("[data-testid='stVegaLiteChart']")
    charts.nth(3).wait_for()  # all four drawn (wait for the effect, not a fixed time)
    assert charts.count() == 4
    # Vega draws marks as SVG paths or canvas; every chart has its German title
    for title in ("Wartezeit der laufenden Platzsuchen", "Vermittlungen pro Woche", "Antworten pro Woche nach Art",
                  "Von der Anfrage zum Therapieplatz"):
        page.get_by_text(title).first.wait_for()
    metrics = page.locator("[data-testid='stMetric']")
    metrics.nth(7).wait_for()
    assert metrics.count() == 8
    assert page.get_by_text("ggü. Vorzeitraum").count() >= 4
    page.get_by_text("Heute zu tun").wait_for()
    page.wait_for_timeout(1500)  # let Vega finish its transitions before the picture
    screenshot(page, "overview_demo")

    # the search box jumps to a record
    page.get_by_placeholder("Name, Nummer").fill("A1")
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.get_by_text("A1 ·").first.wait_for()
    screenshot(page, "overview_search")
    page.get_by_text("A1 ·").first.click()
    wait_for_app(page)
    page.wait_for_url("**mt_inquiry=1**")
    page.get_by_role("heading", name="Vermittlung").wait_for()


def test_contact_log_download_from_patient_page(demo_server, page, tmp_path):
    page.goto(demo_server["url"])
    wait_for_app(page)
    with page.expect_response(lambda r: "/_app/session" in r.url and r.ok, timeout=30_000):
        _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(demo_server["url"] + "/patienten?patient=9")
    wait_for_app(page)
    page.get_by_role("button", name="Kontaktprotokoll", exact=True).click()
    wait_for_app(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Kontaktprotokoll (PDF)").click()
    target = tmp_path / "kp.pdf"
    info.value.save_as(target)
    assert info.value.suggested_filename.startswith("Kontaktprotokoll_P9_")
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(target).pages)
    assert "Kontaktprotokoll" in text and "Praxen angefragt" in text
    screenshot(page, "patient_contact_log")
