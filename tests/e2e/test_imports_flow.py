"""Chromium: a coordinator uploads a saved 116117 response on "Importe", reviews the proposed
new therapists (diff per field), accepts them and finds the therapist in the list."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.platform.vocab import Role
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche" / "current_2026.json"


def test_upload_review_accept_and_see_the_therapist(server, page):
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/importe")
    wait_for_app(page)
    page.get_by_role("heading", name="Importe").wait_for()
    page.get_by_text("Keine Änderungen zu prüfen").wait_for()
    page.get_by_text("Live-Abruf der Arztsuche").wait_for()
    screenshot(page, "imports_empty")

    page.get_by_test_id("stExpander").get_by_text("Dateien hochladen").click()
    page.locator("input[type=file]").set_input_files(str(FIXTURE))
    page.get_by_text("current_2026.json").first.wait_for()
    wait_for_app(page)
    page.get_by_role("button", name="Importieren").click()
    wait_for_app(page)
    page.get_by_text("6 Änderungen").first.wait_for(timeout=30_000)
    page.get_by_text("Die Änderungen warten").first.wait_for()
    grid = page.get_by_test_id("stDataFrame").first
    grid.locator("td[role=gridcell]", has_text="Dipl.-Psych. Anna Beispiel").first.wait_for(state="attached")
    screenshot(page, "imports_review")

    page.get_by_text("Alle 6 im Filter übernehmen").click()
    wait_for_app(page)
    page.get_by_role("button", name="Alle übernehmen").click()
    wait_for_app(page)
    page.get_by_text("Keine Änderungen zu prüfen").wait_for(timeout=30_000)
    screenshot(page, "imports_accepted")

    page.goto(server["url"] + "/therapeuten")
    wait_for_app(page)
    page.get_by_role("heading", name="Therapeut:innen").wait_for()
    grid = page.get_by_test_id("stDataFrame").first
    grid.wait_for()
    grid.locator("td[role=gridcell]", has_text="Beispiel").first.wait_for(state="attached")
    screenshot(page, "imports_therapist_in_list")
