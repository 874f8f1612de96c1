"""The Kontaktprotokoll action on the patient page: create (audited) and then download.

Creating the PDF writes an audit entry, so it happens on a button press only; the file is
kept in the session for the download button that follows. Viewers don't get the action
(core.reports.contact_log refuses them too)."""

from __future__ import annotations

import streamlit as st

from core.platform.db import unit_of_work
from core.platform.permissions import Actor, Permission
from core.reports.contact_log import ContactLogError, create_contact_log
from ui import context

_STATE = "contact_log_file"


def contact_log_action(container, actor: Actor, patient_id: int) -> None:
    if not actor.can(Permission.view_sensitive):
        return
    ready = st.session_state.get(_STATE)
    if ready and ready[0] == patient_id:
        container.download_button(
            "Kontaktprotokoll (PDF)", data=ready[2], file_name=ready[1], mime="application/pdf",
            key=f"contact_log_download_{patient_id}", icon=":material/download:", on_click="ignore",
        )
        return
    if container.button("Kontaktprotokoll", key=f"contact_log_create_{patient_id}", icon=":material/picture_as_pdf:",
                        help="Alle Anfragen für diese Person mit Daten als PDF – Nachweis für die Kostenerstattung "
                             "(§ 13 Abs. 3 SGB V). Das Erstellen wird protokolliert."):
        try:
            with unit_of_work() as s:
                result = create_contact_log(s, actor, patient_id, today=context.today(), now=context.now(),
                                            settings=context.settings())
        except ContactLogError as exc:
            st.error(str(exc))
            return
        st.session_state[_STATE] = (patient_id, result.filename, result.content)
        st.toast(f"Kontaktprotokoll erstellt: {result.log.summary}.", icon=":material/check_circle:")
        st.rerun()
