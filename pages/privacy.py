"""Datenschutz (admins): the Art. 15 export of a patient, anonymisation, and who saw what."""

import pandas as pd
import streamlit as st

from core.platform.config import get_settings
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_datetime, format_number
from core.privacy import anonymise, export, reads
from ui import context, layout
from ui.auth import require_actor

actor = require_actor()
layout.header(
    "Datenschutz",
    "Auskunft nach Art. 15 DSGVO, Anonymisierung auf Antrag, und wer die Daten einer Person gesehen hat.",
)
settings = get_settings()
days = settings.PATIENT_RETENTION_DAYS
st.caption(
    f"Automatisch anonymisiert werden Patient:innen {format_number(days)} Tage nach dem Ende ihrer Platzsuche."
    if days else "Die automatische Anonymisierung ist ausgeschaltet (PATIENT_RETENTION_DAYS=0)."
)

ref = st.text_input("Patient:in", key="privacy_patient", placeholder="z. B. P152")
patient_id = reads.parse_patient_ref(ref) if ref else None
if not ref:
    st.info("Geben Sie die Nummer einer Patient:in ein (z. B. P152).")
    st.stop()
if patient_id is None:
    st.error("Bitte eine Patientennummer wie P152 eingeben.")
    st.stop()

with layout.guarded():
    with read_session() as s:
        brief = reads.patient_brief(s, actor, patient_id)
    if brief is None:
        st.warning(f"P{patient_id} gibt es nicht.")
        st.stop()
    st.text(f"{brief.ref}: {brief.name}")
    if brief.anonymised_at:
        st.caption(f"Anonymisiert am {format_datetime(brief.anonymised_at)}.")

    tab_export, tab_anon, tab_seen = st.tabs(["Auskunft (Art. 15)", "Anonymisieren", "Wer hat was gesehen"])
    with tab_export:
        st.write("Alle gespeicherten Daten dieser Person als JSON-Datei und als lesbare HTML-Seite. Das Erstellen wird protokolliert.")
        if st.button("Auskunft erstellen", key="privacy_export"):
            with unit_of_work() as s:
                result = export.export_patient(s, actor, brief.id, now=context.now())
            st.session_state["privacy_export_result"] = result
        result = st.session_state.get("privacy_export_result")
        if result is not None and result.patient_id == brief.id:
            c1, c2 = st.columns(2)
            c1.download_button("JSON herunterladen", result.json_bytes, file_name=result.json_filename, mime="application/json")
            c2.download_button("HTML herunterladen", result.html.encode("utf-8"), file_name=result.html_filename, mime="text/html")
    with tab_anon:
        if brief.anonymised_at:
            st.info("Diese Person ist bereits anonymisiert.")
        elif brief.open_search:
            st.warning(f"Die Platzsuche {brief.open_search} läuft noch oder ist pausiert – bitte zuerst beenden.")
        else:
            st.write(
                "Entfernt Namen, Kontaktdaten, Versichertennummer, Gesundheitsangaben, Notizen und die Texte der E-Mails. "
                "Statistiken (Region, Wartezeiten, Ergebnisse) bleiben. Das lässt sich nicht rückgängig machen."
            )
            reason = st.text_input("Grund", value="Auf Antrag (Art. 17 DSGVO)", key="privacy_reason")
            sure = st.checkbox(f"Ja, {brief.ref} endgültig anonymisieren", key="privacy_confirm")
            if st.button("Anonymisieren", type="primary", disabled=not sure, key="privacy_anonymise"):
                try:
                    with unit_of_work() as s:
                        anonymise.anonymise_patient(s, actor, brief.id, now=context.now(), reason=reason.strip() or "Auf Antrag")
                except export.PrivacyError as exc:
                    st.error(str(exc))
                else:
                    st.toast(f"{brief.ref} ist anonymisiert.")
                    st.rerun()
    with tab_seen:
        with read_session() as s:
            rows = reads.who_saw(s, actor, brief.id)
        if not rows:
            st.info("Noch keine Einträge.")
        else:
            st.dataframe(
                pd.DataFrame([
                    {"Zeitpunkt": format_datetime(r.at), "Person": r.actor_name, "Aktion": r.label, "Datensatz": r.what}
                    for r in rows
                ]),
                hide_index=True, width="stretch", placeholder="–"
            )
