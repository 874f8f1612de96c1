"""Sidebar on every page: the signed-in user, logout, and the job runner's status line."""

from __future__ import annotations

import streamlit as st

from core.platform.db import read_session
from core.platform.permissions import Actor
from ui import auth, context
from ui.text import md


def render(actor: Actor) -> None:
    with st.sidebar:
        st.markdown(f"**{md(actor.display_name or actor.username)}**  \n{actor.role.label}")
        if st.button("Abmelden", key="logout", icon=":material/logout:"):
            auth.logout(actor)
        st.caption(runner_line())
        st.caption(ATTRIBUTION)


ATTRIBUTION = "PLZ-Daten: [GeoNames](https://www.geonames.org/), [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/)"


def render_public() -> None:
    """The sidebar before login: no navigation, only the data attribution."""
    with st.sidebar:
        st.caption(ATTRIBUTION)


def runner_line() -> str:
    from core.platform.runner import runner_status

    with read_session() as s:
        return runner_status(s, now=context.now(), include_runs=False).label
