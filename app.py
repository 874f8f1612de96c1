"""Dashboard entry: page config, login gate, navigation built from the user's role."""

from __future__ import annotations

import logging

import streamlit as st

from core.platform import users
from core.bootstrap import bootstrap
from core.platform.config import SettingsError, get_settings
from core.platform.db import read_session
from core.platform.permissions import Permission
from core.platform.vocab import NAV_SECTIONS, PAGE_TITLES
from ui import auth, layout, sidebar

# Every page's address (url_path below); before login each one shows the login form.
PAGE_PATHS = ("uebersicht", "anrufliste", "vermittlung", "postausgang", "posteingang", "patienten", "therapeuten", "karte",
              "importe", "benutzer", "protokoll", "datenschutz", "konto")

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="Therapieplatz-Vermittlung", page_icon="🧭", layout="wide")
bootstrap()

try:
    get_settings()
except SettingsError as exc:
    st.error(f"Konfigurationsfehler: {exc}")
    st.stop()

try:
    actor = auth.current_actor()
except Exception as exc:  # noqa: BLE001 - e.g. database unreachable: say so, no traceback
    layout.unexpected_error(exc)
    st.stop()

if actor is None:
    # Before login the navigation knows only the login form (hidden: no list of page files in
    # the sidebar). A deep link (/patienten) shows the login too, not Streamlit's English
    # "Page not found", and after the login the same address opens the page.
    def _login_at(path: str):
        def page() -> None:
            auth.login_form()
        page.__name__ = f"login_{path}"
        return page

    login_pages = [st.Page(_login_at("anmeldung"), title="Anmeldung", icon=":material/login:", url_path="anmeldung", default=True)]
    login_pages += [st.Page(_login_at(p), title="Anmeldung", url_path=p) for p in PAGE_PATHS]
    st.navigation(login_pages, position="hidden").run()
    sidebar.render_public()
    st.stop()

auth.emit_cookie_scripts()

try:
    with read_session() as s:
        must_change = users.needs_password_change(s, actor)
except Exception as exc:  # noqa: BLE001 - database unreachable: say so, no traceback
    layout.unexpected_error(exc)
    st.stop()
if must_change:
    # An admin chose this password: nothing else opens until the user has set their own.
    account = st.Page("pages/account.py", title="Mein Konto", icon=":material/person:", url_path="konto", default=True)
    page = st.navigation([account], position="hidden")
    sidebar.render(actor)
    with layout.guarded():
        page.run()
    st.stop()

work = [st.Page("pages/home.py", title=PAGE_TITLES["home"], icon=":material/dashboard:", url_path="uebersicht", default=True)]
work.append(st.Page("pages/calls.py", title=PAGE_TITLES["calls"], icon=":material/call:", url_path="anrufliste"))
work.append(st.Page("pages/matching.py", title=PAGE_TITLES["matching"], icon=":material/handshake:", url_path="vermittlung"))
work.append(st.Page("pages/outbox.py", title=PAGE_TITLES["outbox"], icon=":material/outbox:", url_path="postausgang"))
work.append(st.Page("pages/inbox.py", title=PAGE_TITLES["inbox"], icon=":material/inbox:", url_path="posteingang"))
master_data = [
    st.Page("pages/patients.py", title=PAGE_TITLES["patients"], icon=":material/personal_injury:", url_path="patienten"),
    st.Page("pages/therapists.py", title=PAGE_TITLES["therapists"], icon=":material/psychology:", url_path="therapeuten"),
    st.Page("pages/map.py", title=PAGE_TITLES["map"], icon=":material/map:", url_path="karte"),
]
if actor.can(Permission.edit):
    master_data.append(st.Page("pages/imports.py", title=PAGE_TITLES["imports"], icon=":material/upload_file:", url_path="importe"))
admin: list = []
if actor.can(Permission.manage_users):
    admin.append(st.Page("pages/users.py", title=PAGE_TITLES["users"], icon=":material/group:", url_path="benutzer"))
if actor.can(Permission.admin):
    admin.append(st.Page("pages/audit_log.py", title=PAGE_TITLES["audit"], icon=":material/history:", url_path="protokoll"))
    admin.append(st.Page("pages/privacy.py", title=PAGE_TITLES["privacy"], icon=":material/shield_person:", url_path="datenschutz"))
admin.append(st.Page("pages/account.py", title="Mein Konto", icon=":material/person:", url_path="konto"))

page = st.navigation({NAV_SECTIONS["work"]: work, NAV_SECTIONS["master_data"]: master_data, NAV_SECTIONS["admin"]: admin})
sidebar.render(actor)
with layout.guarded():
    page.run()
