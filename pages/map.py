"""Karte: therapists around a patient (with distance rings) or of a whole PLZ region."""

import pandas as pd
import streamlit as st

from core.inquiries import lifecycle as inquiries
from core.inquiries import loading as inquiry_loading
from core.matching import map_view as map_data
from core.matching import eligibility
from core.geo.geocoding import geocoding_counts
from core.platform.db import read_session, unit_of_work
from core.platform.permissions import Permission
from core.platform.formatting import format_km, format_number
from ui import context, layout
from ui.auth import require_actor
from core.geo.plz import map_backdrop, plz_count
from core.platform.references import therapist_ref
from ui.map_deck import attribution, build_deck
from ui.text import md


@st.cache_data(ttl=3600, show_spinner=False, max_entries=4)
def _cached_backdrop(database_url: str, plz_rows: int):
    with read_session() as s:
        return map_backdrop(s)


def _backdrop():
    """Our own base layer (PLZ points, city names); the same for everyone, so cached per
    database and PLZ table size (a reloaded table draws anew)."""
    with read_session() as s:
        rows = plz_count(s)
    return _cached_backdrop(context.settings().DATABASE_URL, rows)

actor = require_actor()
layout.header(
    "Karte",
    "Therapeut:innen rund um eine Patient:in oder in einer PLZ-Region. Entfernungen sind Luftlinie; "
    "Patient:innen stehen am Mittelpunkt ihrer PLZ.",
)

mode = st.segmented_control("Ansicht", ["Patient:in", "Region"], default="Patient:in", key="map_mode")
today = context.today()
view = None
with read_session() as s:
    if mode == "Region":
        prefix = st.text_input("PLZ-Region", max_chars=5, key="map_region", placeholder="z. B. 10", bind="query-params")
        if prefix:
            view = map_data.region_view(s, actor, prefix, today=today)
    else:
        query = st.text_input("Patient:in suchen (Name, Kennung wie P152 oder PLZ)", key="map_patient_query")
        choices = map_data.find_patients(s, actor, query)
        if choices:
            chosen = st.selectbox(
                f"Patient:in mit aktiver Platzsuche ({len(choices)} Treffer, längste Wartezeit zuerst)",
                choices, format_func=lambda c: md(c.label), key="map_patient",
            )
            if chosen is not None:
                view = map_data.patient_view(s, actor, context.settings(), chosen.patient_id, today=today)
        else:
            st.info("Keine Patient:in mit aktiver Platzsuche gefunden. Ändern Sie die Suche oder wählen Sie „Region“.")

if view is None:
    st.stop()
if view.message:
    st.info(md(view.message))
    st.stop()

counts = view.counts()
legend = " · ".join(
    f"<span style='color: rgb{map_data.MAP_STATES[s][1]}'>●</span> {map_data.MAP_STATES[s][0]} ({format_number(counts[s])})"
    for s in map_data.MapState
)
legend += f" · <span style='color: rgb{map_data.PATIENT_COLOR}'>●</span> Patient:innen ({format_number(len(view.patients))})"
if view.rings_km:
    legend += " · Ringe: " + ", ".join(f"{k} km" for k in view.rings_km) + " (rot: maximale Entfernung der Patient:in)"
st.markdown(legend, unsafe_allow_html=True)
if view.truncated:
    st.warning(f"Es werden nur die ersten {format_number(map_data.MAX_THERAPISTS)} Therapeut:innen gezeigt – bitte die Region eingrenzen.")

event = st.pydeck_chart(build_deck(view, backdrop=_backdrop(), settings=context.settings()), on_select="rerun", selection_mode="single-object", key="map_deck", height=560)
with read_session() as s:
    geo_counts = geocoding_counts(s)
if geo_counts["pending"] or geo_counts["approximate"]:
    st.caption(
        f"{format_number(geo_counts['pending'])} Praxisadressen warten auf Geokodierung, "
        f"{format_number(geo_counts['approximate'])} Praxen stehen nur ungefähr am PLZ-Mittelpunkt."
    )
st.caption(attribution(context.settings()))



_FLASH = "map_created_inquiry"


def _inquiry_action(t: map_data.TherapistPoint) -> None:
    """In patient mode: may this patient go into an inquiry to this therapist? If so, one click creates it."""
    patient = view.patients[0] if view.rings_km and view.patients else None
    if patient is None or not patient.search_id:
        st.page_link("pages/matching.py", label="In der Vermittlung öffnen", icon=":material/handshake:",
                     query_params={"mt_view": "new", "mt_therapist": str(t.id)})
        return
    settings = context.settings()
    with read_session() as s:
        reasons = eligibility.ineligibility_reasons(s, t.id, patient.search_id, today=today, settings=settings, actor=actor)
    if reasons:
        st.markdown(f"**Nicht anfragbar für {md(patient.label)}:**\n" + "\n".join(f"- {md(r)}" for r in reasons))
        return
    if not actor.can(Permission.edit):
        st.caption(f"Passt zu {md(patient.label)}; anfragen können Koordinator:innen.")
        return
    if st.button(f"Anfrage mit {md(patient.label)} erstellen", key=f"map_add_{t.id}_{patient.search_id}",
                 type="primary", icon=":material/add:"):
        try:
            with unit_of_work() as s:
                created = inquiries.create_inquiry(s, actor, t.id, [patient.search_id], today=today,
                                                   now=context.now(), settings=settings)
                ref = inquiry_loading.reference(created.id)
        except inquiry_loading.InquiryError as exc:
            details = list(exc.therapist_reasons) + [r for rs in exc.reasons.values() for r in rs]
            st.error(md(exc) + "".join(f"\n- {md(r)}" for r in details))
            return
        # rerun so the map and the card show the new state (the therapist now has an open inquiry)
        st.session_state[_FLASH] = (t.id, created.id, md(
            f"Anfrage {ref} an {t.name} ({therapist_ref(t.id)}) mit {patient.label} erstellt (noch nicht gesendet)"
            + ("; der E-Mail-Entwurf liegt im Postausgang unter „Entwürfe“." if created.channel == "email" else ".")
        ))
        st.rerun()


def _flash(t: map_data.TherapistPoint) -> None:
    flash = st.session_state.get(_FLASH)
    if not flash or flash[0] != t.id:
        return
    st.session_state.pop(_FLASH, None)
    _, inquiry_id, text = flash
    st.toast(text, icon=":material/check:")
    st.page_link("pages/matching.py", label=f"Anfrage {inquiry_loading.reference(inquiry_id)} in der Vermittlung öffnen",
                 icon=":material/handshake:", query_params={"mt_view": "inquiries", "mt_inquiry": str(inquiry_id)})


picked = None
objects = (event.selection.get("objects", {}) if event and event.selection else {}) or {}
if objects.get("therapists"):
    picked = objects["therapists"][0].get("id")

if view.rings_km:
    nearest = [t for t in view.therapists if t.distance_km is not None][:200]
    st.subheader("Nächste Therapeut:innen")
    table = pd.DataFrame(
        [{"Kennung": therapist_ref(t.id), "Name": t.name, "Entfernung": format_km(t.distance_km), "Verfahren": t.methods,
          "Status": map_data.MAP_STATES[t.state][0], "Telefon": t.phone_hours_today} for t in nearest]
    )
    sel = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row", key="map_table", width="stretch", placeholder="–")
    if sel and sel.selection.rows:
        picked = nearest[sel.selection.rows[0]].id

if picked is not None:
    if st.query_params.get("map_therapist") != str(picked):
        st.query_params["map_therapist"] = str(picked)  # the card survives a reload and can be linked
elif (raw := st.query_params.get("map_therapist", "")).isdigit():
    picked = int(raw)

if picked is not None:
    t = next((t for t in view.therapists if t.id == picked), None)
    if t is not None:
        with st.container(border=True):
            st.markdown(f"**{md(t.name)}** ({therapist_ref(t.id)}) · {map_data.MAP_STATES[t.state][0]}")
            st.markdown(md(f"Verfahren: {t.methods} · {t.phone_hours_today}" + (f" · {format_km(t.distance_km)}" if t.distance_km is not None else "")))
            if t.approximate:
                st.caption("Lage ungefähr (PLZ-Mittelpunkt).")
            _flash(t)
            _inquiry_action(t)
