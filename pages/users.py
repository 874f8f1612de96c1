"""Benutzer: create accounts, change roles, disable, reset passwords (admins only)."""

import pandas as pd
import streamlit as st

from core.platform import auth, users
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import count_of, format_datetime
from core.platform.vocab import Role
from ui import context, layout
from ui.auth import require_actor

actor = require_actor()
layout.header("Benutzer", "Konten der Mitarbeitenden: anlegen, Rolle ändern, deaktivieren, Passwort zurücksetzen.")

with read_session() as s:
    rows = users.list_users(s, actor)  # refuses unless the role may manage users

if msg := st.session_state.pop("users_toast", None):
    st.toast(msg)
if pw := st.session_state.pop("users_new_password", None):
    st.success(
        f"Neues Passwort für **{pw[0]}**: `{pw[1]}` – bitte sicher übermitteln. "
        "Es wird nur jetzt angezeigt; bei der nächsten Anmeldung muss es geändert werden."
    )

now = context.now()
table = pd.DataFrame(
    [
        {
            "Benutzername": u.username,
            "Name": u.display_name,
            "Rolle": u.role.label,
            "Status": "aktiv" if u.active else "deaktiviert",
            "Gesperrt bis": format_datetime(u.locked_until) if u.locked_until and u.locked_until > now else "",
            "Letzte Anmeldung": format_datetime(u.last_login_at) if u.last_login_at else "nie",
        }
        for u in rows
    ]
)
st.markdown(count_of(len(rows), "account"))
selection = st.dataframe(
    table, key="users_table", on_select="rerun", selection_mode="single-row", hide_index=True, width="stretch", placeholder="–"
)
selected_rows = selection.selection.rows if selection else []

if selected_rows:
    u = rows[selected_rows[0]]
    st.subheader(f"{u.display_name} ({u.username})")
    col_role, col_active, col_pw = st.columns(3)
    if u.locked_until and u.locked_until > now or u.failed_logins:
        st.caption(
            f"{u.failed_logins} fehlgeschlagene Anmeldeversuche in Folge"
            + (f"; Wartezeit bis {format_datetime(u.locked_until)}" if u.locked_until and u.locked_until > now else "")
            + ". Die Wartezeit gilt nur für die Quelle der Fehlversuche; die Person selbst kann sich von ihrem Gerät anmelden."
        )
        if st.button("Sperre aufheben", key=f"unlock_{u.id}", icon=":material/lock_open:"):
            try:
                with unit_of_work() as s:
                    auth.unlock_account(s, context.settings(), actor, u.id, now=context.now())
                st.session_state["users_toast"] = f"Sperre für {u.username} aufgehoben."
                st.rerun()
            except users.UserError as exc:
                st.error(str(exc))
    with col_role:
        with st.form(f"role_{u.id}"):
            new_role = st.selectbox(
                "Rolle", list(Role), index=list(Role).index(u.role), format_func=lambda r: r.label, key=f"role_sel_{u.id}"
            )
            if st.form_submit_button("Rolle speichern"):
                try:
                    with unit_of_work() as s:
                        users.change_role(s, actor, u.id, new_role, now=context.now())
                    st.session_state["users_toast"] = f"Rolle von {u.username} ist jetzt {new_role.label}."
                    st.rerun()
                except users.UserError as exc:
                    st.error(str(exc))
    with col_active:
        label = "Konto deaktivieren" if u.active else "Konto wieder aktivieren"
        confirm = st.checkbox(
            "Ja, " + ("deaktivieren – alle Anmeldungen enden sofort." if u.active else "wieder aktivieren."),
            key=f"confirm_active_{u.id}",
        )
        if st.button(label, key=f"toggle_{u.id}", disabled=not confirm):
            try:
                with unit_of_work() as s:
                    users.set_active(s, actor, u.id, not u.active, now=context.now())
                st.session_state["users_toast"] = f"{u.username} ist jetzt {'deaktiviert' if u.active else 'aktiv'}."
                st.rerun()
            except users.UserError as exc:
                st.error(str(exc))
    with col_pw:
        st.caption("Setzt ein zufälliges Passwort, hebt eine Sperre auf und beendet alle Anmeldungen des Kontos.")
        if st.button("Passwort zurücksetzen", key=f"reset_{u.id}"):
            new_password = users.generate_password()
            try:
                with unit_of_work() as s:
                    auth.reset_password(s, context.settings(), actor, u.id, new_password, now=context.now())
                st.session_state["users_new_password"] = (u.username, new_password)
                st.rerun()
            except users.UserError as exc:
                st.error(str(exc))
else:
    st.caption("Wählen Sie eine Zeile, um Rolle, Status oder Passwort zu ändern.")

with st.expander("Neues Konto anlegen", expanded=not rows):
    with st.form("create_user", clear_on_submit=False):
        username = st.text_input("Benutzername", placeholder="m.mueller", key="new_username")
        display_name = st.text_input("Name", placeholder="Maria Müller", key="new_display_name")
        email = st.text_input("E-Mail (optional)", key="new_email")
        role = st.selectbox("Rolle", list(Role), index=1, format_func=lambda r: r.label, key="new_role")
        password = st.text_input(
            "Erstes Passwort", type="password", key="new_password",
            help=f"Mindestens {users.MIN_PASSWORD_LENGTH} Zeichen, kein verbreitetes Passwort, keine Zeichenfolge wie 1234…"
        )
        if st.form_submit_button("Konto anlegen", type="primary"):
            try:
                with unit_of_work() as s:
                    users.create_user(
                        s, actor, username=username, display_name=display_name, role=role, password=password,
                        email=email, now=context.now(), must_change_password=True,
                    )
                st.session_state["users_toast"] = f"Konto {username.strip().lower()} angelegt."
                st.rerun()
            except users.UserError as exc:
                st.error(str(exc))
