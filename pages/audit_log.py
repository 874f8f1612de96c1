"""Protokoll: who changed or exported what (admins only). German areas, references and
change descriptions, Berlin times (core.reports.audit_view)."""

import pandas as pd
import streamlit as st

from core.platform.db import read_session
from core.platform.formatting import count_of
from core.reports import audit_view
from ui import layout
from ui.auth import require_actor

PAGE_SIZE = 50

actor = require_actor()
layout.header("Protokoll", "Jede wichtige Änderung mit Zeitpunkt und handelnder Person, neueste zuerst.")

c1, c2, c3 = st.columns(3)
username = c1.text_input("Benutzername", key="audit_user", placeholder="z. B. admin")
entity = c2.selectbox(
    "Bereich", ["", *audit_view.ENTITY_LABELS],
    format_func=lambda v: audit_view.entity_label(v) if v else "alle", key="audit_entity",
)
action = c3.text_input("Aktion beginnt mit", key="audit_action", placeholder="z. B. login",
                       help="Technischer Name der Aktion, z. B. „inquiry“ für alle Anfrage-Aktionen.")
page_no = int(st.session_state.get("audit_page", 1))

with read_session() as s:
    rows, total = audit_view.audit_rows(
        s, actor, action_prefix=action.strip(), username=username, entity=entity,
        offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE,
    )
pages = max(1, -(-total // PAGE_SIZE))
st.markdown(f"**{count_of(total, 'entry')}**" + (f" · Seite {page_no} von {pages}" if pages > 1 else ""))
if not rows:
    st.info("Keine Einträge für diesen Filter.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {"Zeitpunkt": r.when, "Person": r.person, "Aktion": r.action, "Bereich": r.area,
                 "Datensatz": r.record, "Änderungen": r.changes}
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch", placeholder="–",
        column_config={"Änderungen": st.column_config.TextColumn("Änderungen", width="large")},
    )
if pages > 1:
    st.number_input("Seite", min_value=1, max_value=pages, step=1, key="audit_page")
