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


# --------------------------------------------------------------------------- issue 12 point 21


def test_point21_before_login_the_navigation_knows_only_the_login(app_db):
    """Before login the sidebar listed the page files (app, account, audit log, …) and those
    links led to a dead end: now only the login page is registered (and it is hidden)."""
    at = new_app()
    at.run()
    assert not at.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/patients.py")  # the page files are not registered before login
    assert any("GeoNames" in c.value and "CC BY 4.0" in c.value for c in at.sidebar.caption)


def test_point21_audit_log_in_german_with_berlin_times(app_db):
    from datetime import datetime, timezone

    from core.platform import audit
    from core.platform.db import unit_of_work
    from core.platform.permissions import SYSTEM

    with unit_of_work(get_engine(app_db)) as s:
        audit.record(
            s, SYSTEM, "email.create", "outbox_email", 12, {"template": "therapist_inquiry", "inquiry_id": None},
            now=datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc),
        )
        audit.record(
            s, SYSTEM, "email.approve", "outbox_email", 12,
            {"next_attempt_at": datetime(2026, 7, 1, 10, 5, tzinfo=timezone.utc), "inquiry_id": 7},
            now=datetime(2026, 7, 1, 10, 5, tzinfo=timezone.utc),
        )
    at = login(Role.admin)
    at.switch_page("pages/audit_log.py").run()
    assert not at.exception
    df = at.dataframe[0].value
    mine = df[df["Bereich"] == "E-Mail"]
    text = mine.to_string()
    assert "outbox_email" not in df.to_string() and "None" not in text and "inquiry_id" not in text
    assert "+00:00" not in text and "T10:05" not in text
    assert set(mine["Datensatz"]) == {"E-Mail 12"}
    assert "Vorlage: Anfrage an Therapeut:in" in text
    assert "Anfrage: A7" in text and "nächster Versuch: 01.07.2026 12:05" in text
    assert "01.07.2026 12:00" in set(mine["Zeitpunkt"])


def test_point21_tables_and_multiselects_have_no_english_defaults():
    """Streamlit writes "None" into empty grid cells unless a placeholder is given, and a
    multiselect offers "Select all" unless select_all=False: every call in pages/ and ui/ sets both."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    missing = []
    for f in sorted([*(root / "pages").glob("*.py"), *(root / "ui").glob("*.py")]):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            kws = {k.arg for k in node.keywords}
            if None in kws:  # **kwargs passed through (ui.selection)
                continue
            need = {"dataframe": "placeholder", "data_editor": "placeholder", "multiselect": "select_all"}.get(node.func.attr)
            if need and need not in kws:
                missing.append(f"{f.relative_to(root)}:{node.lineno} {node.func.attr} without {need}")
    assert not missing, "\n".join(missing)


def test_point21_download_names_are_german():
    from datetime import date

    from core.platform.formatting import file_name

    assert file_name("Therapeut:innen", date(2026, 7, 1)) == "Therapeut-innen_2026-07-01.csv"
    assert file_name("Vorlage Patient:innen") == "Vorlage-Patient-innen.csv"


# --------------------------------------------------------------------------- issue 12 point 13


@pytest.mark.parametrize("page,kind", [("pages/patients.py", "patient"), ("pages/therapists.py", "therapist")])
def test_point13_free_text_in_the_detail_is_shown_as_text(app_db, page, kind):
    """A note with an image link made Chromium fetch the URL when the record was opened: names
    and notes are escaped wherever Streamlit renders Markdown."""
    from core.platform.db import unit_of_work
    from tests.support.seed import patient_with_search, therapist

    beacon = "![x](http://127.0.0.1:9/beacon.png) <img src=x> **fett**"
    with unit_of_work(get_engine(app_db)) as s:
        if kind == "patient":
            record, _ = patient_with_search(s, last_name="Bildtest", notes=beacon)
        else:
            record = therapist(s, last_name="Bildtest", notes=beacon, email="bild@example.org")
        record_id = record.id
    at = login(Role.coordinator)
    at.query_params[kind] = str(record_id)
    at.switch_page(page).run()
    assert not at.exception
    shown = texts(at) + "\n".join(str(h.value) for h in at.subheader)
    import re

    from ui.text import md

    assert md(beacon) in shown  # the note is on screen, escaped …
    assert "![x](" not in shown and not re.search(r"(?<!\\)<img", shown) and "**fett**" not in shown  # … never as markup
    assert ("P" if kind == "patient" else "T") + str(record_id) in shown  # with its reference, no bare "Nr."


def test_point21_every_page_address_shows_the_login_before_login():
    """A deep link before login (/posteingang) lands on the login form, and after it on that
    page: app.PAGE_PATHS must name every page address app.py registers."""
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "app.py").read_text(encoding="utf-8")
    paths = set(re.findall(r'url_path="([a-z_-]+)"', source)) - {"anmeldung"}
    listed = set(re.search(r"PAGE_PATHS = \(([^)]*)\)", source, re.S).group(1).replace('"', "").replace("\n", "").replace(" ", "").split(","))
    assert paths <= listed, paths - listed
