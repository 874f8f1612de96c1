"""Mein Konto: change one's own password."""

import streamlit as st

from core.platform import users
from core.platform.db import read_session, unit_of_work
from ui import context, layout
from ui.auth import current_session_id, require_actor

actor = require_actor()
layout.header("Mein Konto", f"Angemeldet als {actor.username} ({actor.role.label}).")
with read_session() as s:
    first_time = users.needs_password_change(s, actor)
if first_time:
    st.warning(
        "Ihr Passwort wurde von der Administration vergeben. Bitte wählen Sie jetzt ein eigenes – "
        "danach öffnen sich alle Seiten.", icon=":material/key:",
    )

with st.form("own_password", clear_on_submit=True):
    old = st.text_input("Bisheriges Passwort", type="password", key="acc_old")
    new = st.text_input(
        "Neues Passwort", type="password", key="acc_new",
        help=f"Mindestens {users.MIN_PASSWORD_LENGTH} Zeichen, kein verbreitetes Passwort, keine Zeichenfolge wie 1234…",
    )
    repeat = st.text_input("Neues Passwort wiederholen", type="password", key="acc_repeat")
    if st.form_submit_button("Passwort ändern", type="primary"):
        if new != repeat:
            st.error("Die beiden neuen Passwörter stimmen nicht überein.")
        else:
            try:
                with unit_of_work() as s:
                    ended = users.change_own_password(
                        s, actor, old, new, now=context.now(), keep_session_id=current_session_id()
                    )
                st.toast("Passwort geändert." + (" Ihre anderen Anmeldungen wurden beendet." if ended else ""))
                if first_time:
                    st.rerun()  # the full navigation opens now
            except users.UserError as exc:
                st.error(str(exc))
