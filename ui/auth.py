"""The login gate: login form, cookie hand-off, restoring a login after a reload, logout."""

from __future__ import annotations

import json
import logging
from typing import Optional

import streamlit as st

from core.platform import auth
from core.platform.db import read_session, unit_of_work
from core.platform.permissions import Actor
from ui import context

log = logging.getLogger(__name__)

_ACTOR = "auth_actor"
_SESSION_ID = "auth_session_id"
_HANDOFF = "auth_handoff_code"
_CLEAR_COOKIE = "auth_clear_cookie"
_ENDED = "auth_session_ended"
SESSION_ROUTE = "/_app/session"


def current_actor() -> Optional[Actor]:
    """The signed-in user of this browser tab, or None. Re-read from the database on every
    rerun (every click): a role change, disabling, a password change elsewhere or the idle
    timeout apply to this tab at once, never the role cached at login."""
    session_id: Optional[int] = st.session_state.get(_SESSION_ID)
    if session_id is not None:
        settings, now = context.settings(), context.now()
        with read_session() as s:
            check = auth.check_session(s, settings, session_id, now=now)
        actor = check.actor
        if check.needs_write:  # at most once a minute: last seen, or the idle timeout ends it
            with unit_of_work() as s:
                actor = auth.session_actor(s, settings, session_id, now=now)
        if actor is None:
            _forget()
            st.session_state[_CLEAR_COOKIE] = True
            st.session_state[_ENDED] = True
            return None
        st.session_state[_ACTOR] = actor
        return actor
    st.session_state.pop(_ACTOR, None)
    return _restore_from_cookie()


def login_source() -> str:
    """Where this browser connects from, for login throttling: the proxy's header when
    LOGIN_SOURCE_HEADER names one (its last entry, the one our proxy added), else the address."""
    header = context.settings().LOGIN_SOURCE_HEADER
    try:
        if header and st.context.headers:
            value = st.context.headers.get(header)
            last = value.split(",")[-1].strip() if isinstance(value, str) else ""
            if last:
                return last[:100]
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no request context (tests): one shared source
        return "unbekannt"
    return address[:100] if isinstance(address, str) and address else "unbekannt"


def current_session_id() -> Optional[int]:
    return st.session_state.get(_SESSION_ID)


def _restore_from_cookie() -> Optional[Actor]:
    raw = st.context.cookies.get(auth.COOKIE_NAME) if st.context.cookies else None
    if not raw:
        return None
    token = auth.unsign_token(context.settings(), raw)
    if token is None:
        return None
    with unit_of_work() as s:
        found = auth.resolve_token(s, context.settings(), token, now=context.now())
    if found is None:
        return None
    actor, session_id = found
    st.session_state[_ACTOR] = actor
    st.session_state[_SESSION_ID] = session_id
    return actor


def _forget() -> None:
    for key in (_ACTOR, _SESSION_ID, _HANDOFF):
        st.session_state.pop(key, None)


def _script(method: str, body: str = "") -> str:
    payload = json.dumps(body)
    return (
        "<script>fetch(" + json.dumps(SESSION_ROUTE) + ", {method: " + json.dumps(method) + ", "
        "credentials: 'same-origin', headers: {'Content-Type': 'text/plain'}, body: "
        + (payload if method == "POST" else "null")
        + "}).catch(function(){});</script>"
    )


def emit_cookie_scripts() -> None:
    """Let the browser store (or clear) the HttpOnly cookie through our own route."""
    code = st.session_state.pop(_HANDOFF, None)
    if code:
        st.html(_script("POST", code), unsafe_allow_javascript=True)
    if st.session_state.pop(_CLEAR_COOKIE, False):
        st.html(_script("DELETE"), unsafe_allow_javascript=True)


def login_form() -> None:
    """Render the login screen. On success the script reruns signed in."""
    emit_cookie_scripts()
    st.title("Therapieplatz-Vermittlung")
    st.caption("Bitte melden Sie sich mit Ihrem Benutzerkonto an.")
    if st.session_state.pop(_ENDED, False):
        st.info("Ihre Anmeldung ist abgelaufen oder wurde beendet. Bitte melden Sie sich erneut an.")
    with st.form("login", clear_on_submit=False, enter_to_submit=True):
        username = st.text_input("Benutzername", key="login_username", autocomplete="username")
        password = st.text_input("Passwort", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Anmelden", type="primary")
    if not submitted:
        return
    if not username or not password:
        st.error("Bitte Benutzername und Passwort eingeben.")
        return
    settings = context.settings()
    now = context.now()
    with unit_of_work() as s:
        result = auth.authenticate(s, settings, username, password, now=now, source=login_source())
        if result.ok:
            started = auth.start_session(s, settings, result.actor, now=now)
    if not result.ok:
        st.error(result.message)
        return
    st.session_state[_ACTOR] = result.actor
    st.session_state[_SESSION_ID] = started.session_id
    st.session_state[_HANDOFF] = started.handoff_code
    st.session_state.pop("login_password", None)
    st.rerun()


def logout(actor: Actor) -> None:
    session_id = st.session_state.get(_SESSION_ID)
    if session_id is not None:
        with unit_of_work() as s:
            auth.end_session(s, session_id, actor, now=context.now())
    _forget()
    st.session_state[_CLEAR_COOKIE] = True
    st.rerun()


def require_actor() -> Actor:
    """For pages: the actor app.py already validated in this rerun."""
    actor = st.session_state.get(_ACTOR)
    if actor is None:  # only reachable if a page is run outside app.py
        st.error("Bitte melden Sie sich an.")
        st.stop()
    return actor
