"""AppTest: every page renders without exception for every role that may see it; the
navigation and the core services keep other roles out."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.platform.db import get_engine, read_session
from core.platform.models import AuditEntry
from core.platform.vocab import Role
from tests.support.apptest import PAGES_BY_ROLE, login, new_app, texts


def test_login_form_first(app_db):
    at = new_app()
    at.run()
    assert not at.exception
    assert at.text_input(key="login_username") is not None
    assert "Anmelden" in [b.label for b in at.button]


@pytest.mark.parametrize("role", list(Role))
def test_every_page_renders_for_role(app_db, role):
    at = login(role)
    assert not at.exception, at.exception
    for page in PAGES_BY_ROLE[role]:
        at.switch_page(page).run()
        assert not at.exception, f"{page} as {role}: {at.exception}"
        assert not [e.value for e in at.error], f"{page} as {role} shows errors"
        assert at.title, f"{page} has no title"


@pytest.mark.parametrize("role", [Role.viewer, Role.coordinator])
def test_admin_pages_not_reachable_for(app_db, role):
    at = login(role)
    for page in ("pages/users.py", "pages/audit_log.py"):
        with pytest.raises(Exception, match="(?i)navigation|page"):
            at.switch_page(page).run()


def test_home_shows_real_counts_and_runner_state(app_db):
    at = login(Role.coordinator)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Aktive Platzsuchen"] == "0"
    assert "Hintergrunddienst" in texts(at)


def test_wrong_password_message_in_german(app_db):
    at = login(Role.coordinator, password="falsch")
    assert not at.exception
    assert any("Benutzername oder Passwort ist falsch" in e.value for e in at.error)


def test_five_wrong_passwords_make_this_source_wait_with_german_message(app_db):
    for _ in range(4):
        login(Role.viewer, password="falsch")
    at = login(Role.viewer, password="falsch")
    assert any("Bitte warten Sie 30 Sekunden" in e.value for e in at.error)
    at = login(Role.viewer)  # right password, but this source still waits
    assert any("Bitte warten Sie" in e.value for e in at.error)
    with read_session(get_engine(app_db)) as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "login.failed" in actions and "login.throttled" in actions


def test_admin_creates_user_and_changes_role(app_db):
    at = login(Role.admin)
    at.switch_page("pages/users.py").run()
    at.text_input(key="new_username").input("n.neu")
    at.text_input(key="new_display_name").input("Nina Neu")
    at.text_input(key="new_password").input("Start-Passwort-1")
    at.button(key="FormSubmitter:create_user-Konto anlegen").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    df = at.dataframe[0].value
    assert "n.neu" in list(df["Benutzername"])


def test_admin_create_user_shows_field_error(app_db):
    at = login(Role.admin)
    at.switch_page("pages/users.py").run()
    at.text_input(key="new_username").input("n.neu")
    at.text_input(key="new_display_name").input("Nina Neu")
    at.text_input(key="new_password").input("kurz")
    at.button(key="FormSubmitter:create_user-Konto anlegen").click().run()
    assert any("Passwort: mindestens" in e.value for e in at.error)


def test_logout_returns_to_login(app_db):
    at = login(Role.coordinator)
    at.button(key="logout").click().run()
    assert not at.exception
    assert at.text_input(key="login_username") is not None


def test_password_set_by_admin_must_be_changed_before_anything_else(app_db):
    """An account whose password an admin reset opens only "Mein Konto" until the user has
    chosen their own password; then the whole navigation is there."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from core.platform import users
    from core.platform.db import get_engine, unit_of_work
    from core.platform.models import User
    from tests.support.apptest import ACCOUNTS

    name, _ = ACCOUNTS[Role.coordinator]
    with unit_of_work(get_engine(app_db)) as s:
        admin = s.scalar(select(User).where(User.username == ACCOUNTS[Role.admin][0]))
        target = s.scalar(select(User).where(User.username == name))
        from core.platform.permissions import Actor

        users.reset_password(s, Actor(admin.id, admin.username, Role.admin), target.id, "Vom-Admin-2026!",
                             now=datetime.now(timezone.utc))

    at = login(Role.coordinator, password="Vom-Admin-2026!")
    assert not at.exception
    assert any("Passwort wurde von der Administration vergeben" in w.value for w in at.warning)
    with pytest.raises(ValueError, match="Known pages: \\['[^']*pages/account.py'\\]"):
        at.switch_page("pages/patients.py")  # only the account page is registered

    at.text_input(key="acc_old").input("Vom-Admin-2026!")
    at.text_input(key="acc_new").input("Mein-eigenes-2026")
    at.text_input(key="acc_repeat").input("Mein-eigenes-2026")
    at.button(key="FormSubmitter:own_password-Passwort ändern").click().run()
    assert not at.exception and not at.error
    assert not any("Passwort wurde von der Administration vergeben" in w.value for w in at.warning)
    at.switch_page("pages/patients.py").run()
    assert not at.exception
    assert "Patient:innen" in texts(at)
