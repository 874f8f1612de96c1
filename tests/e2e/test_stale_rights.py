"""Issue 12 point 1 in Chromium: an admin demotes a logged-in coordinator from another
browser context; the coordinator's next click shows the viewer view and the export is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.platform.db import get_engine, read_session, unit_of_work
from core.platform.models import AuditEntry
from core.platform.vocab import Role
from tests.e2e.conftest import screenshot, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.support import seed

pytestmark = pytest.mark.e2e


def _context_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="de-DE")
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    return ctx, pg


def _login_and_wait_for_cookie(page, role: Role) -> None:
    _login(page, role)
    page.get_by_role("heading", name="Übersicht").wait_for()
    for _ in range(100):  # the hand-off route sets the cookie just after the first render
        if any(c["name"] == "tp_session" for c in page.context.cookies()):
            return
        page.wait_for_timeout(100)
    raise AssertionError("no session cookie")


def _sidebar_role(page) -> str:
    return page.get_by_test_id("stSidebar").inner_text()


def test_p1_demoted_coordinator_sees_viewer_view_on_next_click_and_cannot_export(server, browser):
    with unit_of_work(get_engine(server["db"])) as s:
        seed.patient_with_search(s, first_name="Erna", last_name="Rollentest", email="erna.rollentest@example.org")
    coord_ctx, coord = _context_page(browser)
    admin_ctx, admin = _context_page(browser)
    try:
        coord.goto(server["url"])
        wait_for_app(coord)
        _login_and_wait_for_cookie(coord, Role.coordinator)
        coord.goto(server["url"] + "/patienten")
        wait_for_app(coord)
        coord.get_by_text("CSV-Import und -Export").click()
        export = coord.get_by_role("button", name="Export erstellen")
        export.wait_for()
        assert Role.coordinator.label in _sidebar_role(coord)
        screenshot(coord, "stale_rights_1_coordinator_before")

        # the admin, in another browser context, makes the coordinator a viewer
        admin.goto(server["url"])
        wait_for_app(admin)
        _login_and_wait_for_cookie(admin, Role.admin)
        admin.goto(server["url"] + "/benutzer")
        wait_for_app(admin)
        grid = admin.get_by_test_id("stDataFrame").first
        grid.wait_for()
        box = grid.bounding_box()
        # rows: t.admin, t.koordination, t.lesen (active first, by name); click the second row's marker
        admin.mouse.click(box["x"] + 18, box["y"] + 35 + 35 + 17)
        wait_for_app(admin)
        admin.get_by_role("heading", name="Test Koordinator:in (t.koordination)").wait_for()
        admin.get_by_test_id("stSelectbox").filter(has_text="Rolle").first.click()
        admin.get_by_role("option", name=Role.viewer.label).click()
        admin.get_by_role("button", name="Rolle speichern").click()
        wait_for_app(admin)
        admin.get_by_text(f"Rolle von t.koordination ist jetzt {Role.viewer.label}").wait_for()
        screenshot(admin, "stale_rights_2_admin_demoted")

        # the coordinator's next click: the export button of the page still on screen
        export.click()
        wait_for_app(coord)
        coord.wait_for_function(
            "label => document.querySelector('[data-testid=stSidebar]')?.innerText.includes(label)", arg=Role.viewer.label
        )
        wait_for_app(coord)
        # Streamlit removes the previous run's elements when the new run ends: poll, don't peek
        expect(coord.get_by_role("button", name="Export erstellen")).to_have_count(0)
        expect(coord.get_by_role("button", name="CSV-Datei herunterladen")).to_have_count(0)
        expect(coord.get_by_text("CSV-Import und -Export")).to_have_count(0)
        screenshot(coord, "stale_rights_3_viewer_after_next_click")
        # no contact data for viewers (the grid's accessible table carries the cell texts)
        expect(coord.get_by_test_id("stDataFrame").first.locator("td[role=gridcell]", has_text="erna.rollentest")).to_have_count(0)
        expect(coord.get_by_text("erna.rollentest@example.org")).to_have_count(0)
        with read_session(get_engine(server["db"])) as s:
            actions = s.scalars(select(AuditEntry.action)).all()
        assert "user.change_role" in actions and "patient.export" not in actions
    finally:
        coord_ctx.close()
        admin_ctx.close()
