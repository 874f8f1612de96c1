"""Log in, reload (still logged in), log out, reload (login form again)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot, wait_for_app
from tests.support.apptest import ACCOUNTS
from core.platform.vocab import Role

pytestmark = pytest.mark.e2e


def _login(page, role: Role) -> None:
    """Log in through the form and wait until the browser holds the session cookie (the
    hand-off route answered): a navigation before that would land on the login again."""
    name, pw = ACCOUNTS[role]
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(pw)
    with page.expect_response(lambda r: "/_app/session" in r.url and r.ok):
        page.get_by_role("button", name="Anmelden").click()


def test_login_survives_reload_and_logout_ends_it(server, page):
    page.goto(server["url"])
    wait_for_app(page)
    page.get_by_label("Benutzername").wait_for()
    screenshot(page, "login_form")
    _login(page, Role.coordinator)  # waits for the cookie hand-off
    page.get_by_role("heading", name="Übersicht").wait_for()
    cookie = next(c for c in page.context.cookies() if c["name"] == "tp_session")
    assert cookie["httpOnly"] is True
    screenshot(page, "home_after_login")

    page.reload()
    wait_for_app(page)
    page.get_by_role("heading", name="Übersicht").wait_for()
    assert page.get_by_label("Benutzername").count() == 0

    page.get_by_role("button", name="Abmelden").click()
    page.get_by_label("Benutzername").wait_for()
    page.reload()
    wait_for_app(page)
    page.get_by_label("Benutzername").wait_for()
    assert page.get_by_role("heading", name="Übersicht").count() == 0
    screenshot(page, "login_after_logout")


def test_viewer_cannot_open_admin_page_by_url(server, page):
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.viewer)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/benutzer")
    wait_for_app(page)
    page.get_by_role("heading", name="Übersicht").or_(page.get_by_label("Benutzername")).first.wait_for()
    assert page.get_by_role("heading", name="Benutzer").count() == 0
    assert page.get_by_role("heading", name="Übersicht").count() == 1 or page.get_by_label("Benutzername").count() == 1
