"""Protokoll: who changed or exported what (admins only)."""

import pandas as pd
import streamlit as st

from core.platform import audit
from core.platform.db import read_session
from core.platform.formatting import format_datetime, format_number
from ui import layout
from ui.auth import require_actor

PAGE_SIZE = 50

actor = require_actor()
layout.header("Protokoll", "Jede wichtige Änderung mit Zeitpunkt und handelnder Person, neueste zuerst.")

c1, c2, c3 = st.columns(3)
username = c1.text_input("Benutzername", key="audit_user", placeholder="z. B. admin")
entity = c2.selectbox(
    "Bereich", ["", "user", "patient", "therapist", "search", "inquiry", "outbox_email", "phone_call"],
    format_func=lambda v: v or "alle", key="audit_entity",
)
action = c3.text_input("Aktion beginnt mit", key="audit_action", placeholder="z. B. login")
page_no = int(st.session_state.get("audit_page", 1))

with read_session() as s:
    rows, total = audit.search_entries(
        s, actor, action_prefix=action.strip(), username=username, entity=entity,
        offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE,
    )
pages = max(1, -(-total // PAGE_SIZE))
st.write(f"{format_number(total)} Einträge" + (f", Seite {page_no} von {pages}" if pages > 1 else ""))
if not rows:
    st.info("Keine Einträge für diesen Filter.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Zeitpunkt": format_datetime(e.at),
                    "Person": e.actor_name,
                    "Aktion": audit.action_label(e.action),
                    "Bereich": e.entity,
                    "Nr.": e.entity_id,
                    "Änderungen": "" if not e.changes else ", ".join(f"{k}: {v}" for k, v in e.changes.items()),
                }
                for e in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
if pages > 1:
    st.number_input("Seite", min_value=1, max_value=pages, step=1, key="audit_page")
