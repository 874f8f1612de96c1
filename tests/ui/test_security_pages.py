"""Issue 12 security points as a person sees them (AppTest, both databases): stale rights (1),
the login answers (8), sessions ending (10), the admin's unlock (8)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from core.platform import users
from core.platform.db import get_engine, read_session, unit_of_work
from core.platform.models import AuditEntry, User
from core.platform.permissions import Actor
from core.platform.vocab import Role
from tests.support import seed
from tests.support.apptest import ACCOUNTS, login, new_app, texts


def _admin_does(url, fn):
    with unit_of_work(get_engine(url)) as s:
        admin = s.scalar(select(User).where(User.username == ACCOUNTS[Role.admin][0]))
        target = s.scalar(select(User).where(User.username == ACCOUNTS[Role.coordinator][0]))
        fn(s, Actor(admin.id, admin.username, Role.admin), target)


def _now():
    return datetime.now(timezone.utc)


def _sidebar(at) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def test_p1_a_demoted_coordinator_gets_the_viewer_view_on_the_next_click(app_db):
    with unit_of_work(get_engine(app_db)) as s:
        seed.patient_with_search(s, first_name="Exportina", last_name="Rollenwechsel")
    at = login(Role.coordinator)
    at.switch_page("pages/patients.py").run()
    assert at.button(key="pat_csv_export") is not None  # the export is offered
    assert _sidebar(at).endswith(Role.coordinator.label)

    _admin_does(app_db, lambda s, admin, target: users.change_role(s, admin, target.id, Role.viewer, now=_now()))

    at.button(key="pat_csv_export").click().run()  # the next click: the old page's export button
    assert not at.exception
    assert _sidebar(at).endswith(Role.viewer.label)
    assert "pat_csv_export" not in [b.key for b in at.button]
    assert "pat_csv_export_data" not in at.session_state
    with read_session(get_engine(app_db)) as s:
        assert "patient.export" not in s.scalars(select(AuditEntry.action)).all()


def test_p1_disabling_ends_the_open_session_on_the_next_click(app_db):
    at = login(Role.coordinator)
    assert not at.exception and not [t for t in at.text_input if t.key == "login_username"]
    _admin_does(app_db, lambda s, admin, target: users.set_active(s, admin, target.id, False, now=_now()))
    at.run()
    assert [t.key for t in at.text_input] == ["login_username", "login_password"]
    assert any("abgelaufen oder wurde beendet" in i.value for i in at.info)


def test_p8_unknown_name_and_wrong_password_read_the_same(app_db):
    wrong = login(Role.coordinator, password="falsch")
    at = new_app()
    at.run()
    at.text_input(key="login_username").input("gibt.es.nicht")
    at.text_input(key="login_password").input("falsch")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == [e.value for e in wrong.error] == ["Benutzername oder Passwort ist falsch."]


def test_p8_admin_sees_failed_tries_and_lifts_the_wait(app_db):
    for _ in range(6):
        login(Role.coordinator, password="falsch")
    assert any("warten" in e.value for e in login(Role.coordinator).error)
    at = login(Role.admin)
    at.switch_page("pages/users.py").run()
    names = list(at.dataframe[0].value["Benutzername"])
    at.dataframe[0].select_rows = None  # noqa: B018 - AppTest has no row selection API; use the service path below
    # select the coordinator's row the way Streamlit stores a selection
    at.session_state["users_table"] = {"selection": {"rows": [names.index(ACCOUNTS[Role.coordinator][0])], "columns": []}}
    at.run()
    assert "fehlgeschlagene Anmeldeversuche" in texts(at)
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("unlock_"))).click().run()
    assert not at.exception
    assert login(Role.coordinator).session_state["auth_actor"].role == Role.coordinator


def test_p10_changing_ones_password_ends_ones_other_sessions(app_db):
    office = login(Role.coordinator)
    laptop = login(Role.coordinator)
    _, old = ACCOUNTS[Role.coordinator]
    office.switch_page("pages/account.py").run()
    office.text_input(key="acc_old").input(old)
    office.text_input(key="acc_new").input("Neues-Buero-Wort-7")
    office.text_input(key="acc_repeat").input("Neues-Buero-Wort-7")
    office.button(key="FormSubmitter:own_password-Passwort ändern").click().run()
    assert not office.exception and not office.error
    office.run()
    assert office.session_state["auth_actor"] is not None  # this one stays
    laptop.run()
    assert [t.key for t in laptop.text_input] == ["login_username", "login_password"]  # that one ended


def test_p10_a_trivial_new_password_is_refused_in_german(app_db):
    at = login(Role.coordinator)
    at.switch_page("pages/account.py").run()
    at.text_input(key="acc_old").input(ACCOUNTS[Role.coordinator][1])
    at.text_input(key="acc_new").input("1234567890")
    at.text_input(key="acc_repeat").input("1234567890")
    at.button(key="FormSubmitter:own_password-Passwort ändern").click().run()
    assert any("zu einfach" in e.value for e in at.error)
