"""Patient:innen: list with filters (URL-bound), detail with Platzsuche, exclusions and
history, create/edit in a dialog, CSV import/export. Rules and SQL live in core."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Any, Optional

import pandas as pd
import streamlit as st

from core.registry import exclusions as registry_exclusions
from core.registry import patient_detail
from core.registry import patients
from core.registry import searches
from core.registry import therapists
from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_date, format_datetime
from core.registry.patients import PatientError, PatientFilter
from core.platform.permissions import Permission
from core.registry.searches import IncompletePatient, SearchAction, SearchError
from core.platform.vocab import SYMPTOMS, Gender, GenderPreference, Method, PAGE_TITLES, PatientStatus, Salutation, SearchStatus, Transport
from ui import context, layout
from ui import registry_view as rv
from ui.auth import require_actor
from core.platform.references import patient_ref
from ui.text import md
from ui.selection import ID_COLUMN
from ui.windows_editor import windows_editor

actor = require_actor()
today, now = context.today(), context.now()
can_edit = actor.can(Permission.edit)
show_sensitive = actor.can(Permission.view_sensitive)

DIALOG = "patients_dialog"  # {"mode": "new"} or {"mode": "edit", "id": 5}: the dialog stays open while set
DUPLICATE = "patients_duplicate"  # message list of the last duplicate warning
TOAST = "patients_toast"

layout.header(
    PAGE_TITLES["patients"],
    "Alle Patient:innen mit Status und Platzsuche. Wählen Sie eine Zeile für Details, Platzsuche, Ausschlüsse und Verlauf.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(md(msg), icon=":material/check_circle:")

# --------------------------------------------------------------------------- filters

SEARCH_OPTIONS = [s.value for s in SearchStatus] + [patients.SEARCH_NONE]


def _search_label(value: str) -> str:
    return "keine Platzsuche" if value == patients.SEARCH_NONE else SearchStatus(value).label


with st.container(border=True):
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1.5, 1.5])
    status_values = c1.multiselect(
        "Status", [s.value for s in PatientStatus], format_func=lambda x: PatientStatus(x).label,
        key="pat_status", bind="query-params", placeholder="alle", select_all=False
    )
    search_values = c2.multiselect(
        "Platzsuche", SEARCH_OPTIONS, format_func=_search_label, key="pat_search", bind="query-params", placeholder="alle", select_all=False
    )
    plz_prefix = c3.text_input("PLZ beginnt mit", key="pat_plz", bind="query-params", max_chars=5, placeholder="z. B. 10")
    city = c4.text_input("Ort", key="pat_city", bind="query-params")
    name = c5.text_input("Name", key="pat_name", bind="query-params", placeholder="Vor- oder Nachname")
    c6, c7, c8, c9 = st.columns([1.5, 1.5, 2, 1])
    min_wait = c6.number_input(
        "Wartet seit mind. (Tage)", min_value=0, max_value=3650, value=None, step=7, key="pat_wait_min", bind="query-params",
    )
    max_wait = c7.number_input(
        "Wartet seit höchstens (Tage)", min_value=0, max_value=3650, value=None, step=7, key="pat_wait_max", bind="query-params",
    )
    sort = c8.selectbox(
        "Sortierung", list(patients.SORTS), format_func=lambda k: patients.SORTS[k], key="pat_sort", bind="query-params",
    )
    descending = c9.toggle("absteigend", key="pat_desc", bind="query-params")

flt = PatientFilter(
    statuses=tuple(PatientStatus(s) for s in status_values),
    search_states=tuple(search_values),
    plz_prefix=plz_prefix or "",
    city=city or "",
    name=name or "",
    min_wait_days=int(min_wait) if min_wait is not None else None,
    max_wait_days=int(max_wait) if max_wait is not None else None,
    sort=sort or "name",
    descending=bool(descending),
)

# --------------------------------------------------------------------------- list

with read_session() as s:
    rows, total, page_no = rv.filtered_page(partial(patients.list_patients, s, actor, flt, today=today), flt, prefix="pat")

head_left, head_right = st.columns([4, 1])
head_left.markdown(rv.count_line(total, "Patient:in", "Patient:innen", filter_text=flt.describe(), page_no=page_no))
if can_edit and head_right.button("Neue Patient:in", key="pat_new", icon=":material/person_add:", type="primary", width="stretch"):
    st.session_state[DIALOG] = {"mode": "new"}
    st.session_state.pop(DUPLICATE, None)

if not rows:
    if total == 0 and not flt.describe():
        st.info("Noch keine Patient:innen. Legen Sie die erste mit „Neue Patient:in“ an oder importieren Sie eine CSV-Datei.")
    else:
        st.info("Keine Patient:innen passen zu diesem Filter. Lockern Sie den Filter oben.")
    selected_id: Optional[int] = None
else:
    table = rv.frame(
        [
            {
                ID_COLUMN: r.id,
                "Kennung": patient_ref(r.id),
                "Name": f"{r.last_name}, {r.first_name}",
                "Status": rv.badge_list(r.status),
                "Platzsuche": rv.badge_list(r.search_status),
                "Wartet (Tage)": r.waiting_days,
                "PLZ": r.plz or "",
                "Ort": r.city or "",
                **(
                    {"Geburtsdatum": r.birth_date, "Telefon": v.phone_display(r.phone), "E-Mail": r.email or ""}
                    if show_sensitive else {}
                ),
            }
            for r in rows
        ],
        ints=["Wartet (Tage)"], dates=["Geburtsdatum"],
    )
    config: dict[str, Any] = {
        ID_COLUMN: None,
        "Kennung": st.column_config.TextColumn("Kennung", width="small"),
        "Status": rv.state_column("Status", PatientStatus, width="medium"),
        "Platzsuche": rv.state_column("Platzsuche", SearchStatus, width="small"),
        "Wartet (Tage)": st.column_config.NumberColumn(
            "Wartet (Tage)", format="%d", help="Tage seit Beginn der laufenden oder pausierten Platzsuche"
        ),
        "Geburtsdatum": st.column_config.DateColumn("Geburtsdatum", format="DD.MM.YYYY"),
    }
    event = st.dataframe(
        table, key="patients_table", on_select="rerun", selection_mode="single-row", hide_index=True, placeholder="–",
        width="stretch", column_config=config,
    )
    picked = event.selection.rows if event is not None else []
    if picked:
        selected_id = int(table.iloc[picked[0]][ID_COLUMN])
        if st.query_params.get("patient") != str(selected_id):
            st.query_params["patient"] = str(selected_id)
    else:
        raw_id = st.query_params.get("patient")
        selected_id = int(raw_id) if raw_id and raw_id.isdigit() else None
rv.pager(total, key="pat_page")

rv.csv_panel(actor, "patients", flt, total=total, prefix="pat_csv")
if msg := st.session_state.pop("pat_csv_toast", None):
    st.toast(md(msg), icon=":material/check_circle:")


# --------------------------------------------------------------------------- create / edit dialog


def _close_dialog() -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state.pop(DUPLICATE, None)


def _form(patient_id: Optional[int]) -> None:
    values: dict[str, Any] = {}
    if patient_id is not None:
        with read_session() as s:
            values = patient_detail.get_patient(s, actor, patient_id, today=today).values
    k = f"pf_{patient_id or 'new'}_"
    g = values.get
    slots = rv.FieldSlots()
    with st.form(f"patient_form_{patient_id or 'new'}", clear_on_submit=False, border=False):
        raw: dict[str, Any] = {}
        st.markdown("##### Stammdaten")
        a, b, c = st.columns(3)
        with a:
            raw["salutation"] = rv.select_enum("Anrede", Salutation, g("salutation", Salutation.none), key=k + "salutation", fmt=lambda x: x.label)
            slots.add("salutation")
        with b:
            raw["first_name"] = st.text_input("Vorname", value=g("first_name", ""), key=k + "first_name")
            slots.add("first_name")
        with c:
            raw["last_name"] = st.text_input("Nachname", value=g("last_name", ""), key=k + "last_name")
            slots.add("last_name")
        a, b, c = st.columns(3)
        with a:
            raw["gender"] = rv.select_enum("Geschlecht", Gender, g("gender", Gender.unspecified), key=k + "gender", fmt=lambda x: x.label)
            slots.add("gender")
        with b:
            raw["birth_date"] = st.date_input(
                "Geburtsdatum", value=g("birth_date"), min_value=date(1900, 1, 1), max_value=today,
                format="DD.MM.YYYY", key=k + "birth_date",
            )
            slots.add("birth_date")
        with c:
            raw["status"] = rv.select_enum("Status", PatientStatus, g("status", PatientStatus.open), key=k + "status", fmt=lambda x: x.label)
            slots.add("status")
        a, b, c, d = st.columns(4)
        with a:
            raw["contracts_signed"] = st.checkbox("Verträge unterschrieben", value=bool(g("contracts_signed")), key=k + "contracts_signed")
        with b:
            raw["consent_given"] = st.checkbox("Einwilligung Datenschutz", value=bool(g("consent_given")), key=k + "consent_given")
        with c:
            raw["referral_source"] = st.text_input("Empfohlen durch", value=g("referral_source") or "", key=k + "referral_source")
            slots.add("referral_source")
        with d:
            raw["last_contact_on"] = st.date_input(
                "Letzter Kontakt", value=g("last_contact_on"), max_value=today, format="DD.MM.YYYY", key=k + "last_contact_on",
            )
            slots.add("last_contact_on")

        st.markdown("##### Kontakt")
        a, b, c = st.columns([2, 1, 1.5])
        with a:
            raw["street"] = st.text_input("Straße und Hausnummer", value=g("street") or "", key=k + "street")
            slots.add("street")
        with b:
            raw["plz"] = st.text_input("PLZ", value=g("plz") or "", max_chars=5, key=k + "plz")
            slots.add("plz")
        with c:
            raw["city"] = st.text_input("Ort", value=g("city") or "", key=k + "city", help="Leer lassen: wird aus der PLZ ergänzt.")
            slots.add("city")
        a, b = st.columns(2)
        with a:
            raw["email"] = st.text_input("E-Mail", value=g("email") or "", key=k + "email")
            slots.add("email")
        with b:
            raw["phone"] = st.text_input("Telefon", value=v.phone_display(g("phone")), key=k + "phone", placeholder="z. B. 030 1234567")
            slots.add("phone")

        st.markdown("##### Versicherung")
        a, b, c = st.columns(3)
        with a:
            raw["insurer"] = st.text_input("Krankenkasse", value=g("insurer") or "", key=k + "insurer")
            slots.add("insurer")
        with b:
            raw["insurance_number"] = st.text_input(
                "Versichertennummer (KVNR)", value=g("insurance_number") or "", max_chars=12, key=k + "insurance_number",
                placeholder="z. B. A123456780",
            )
            slots.add("insurance_number")
        with c:
            raw["gp_name"] = st.text_input("Hausärztin/Hausarzt", value=g("gp_name") or "", key=k + "gp_name")
            slots.add("gp_name")

        st.markdown("##### Wünsche/Präferenzen")
        raw["symptoms"] = st.multiselect(
            "Symptome (bis zu 6)", SYMPTOMS, default=[x for x in (g("symptoms") or []) if x in SYMPTOMS],
            max_selections=6, key=k + "symptoms", placeholder="Symptome wählen", select_all=False
        )
        slots.add("symptoms")
        a, b, c = st.columns(3)
        with a:
            raw["diagnosis"] = st.text_input("Diagnose (ICD-10-GM, optional)", value=g("diagnosis") or "", key=k + "diagnosis", placeholder="z. B. F32.1")
            slots.add("diagnosis")
        with b:
            raw["prior_therapy"] = rv.select_enum(
                "Frühere Psychotherapie", rv.YES_NO_UNKNOWN, g("prior_therapy"), key=k + "prior_therapy", fmt=rv.yes_no,
            )
            slots.add("prior_therapy")
        with c:
            raw["prior_therapy_end"] = st.date_input(
                "Ende der letzten Therapie", value=g("prior_therapy_end"), min_value=date(1900, 1, 1), max_value=today,
                format="DD.MM.YYYY", key=k + "prior_therapy_end",
            )
            slots.add("prior_therapy_end")
        a, b, c = st.columns(3)
        with a:
            raw["max_distance_km"] = st.number_input(
                "Maximale Entfernung (km)", min_value=1, max_value=200, value=g("max_distance_km"), step=5,
                key=k + "max_distance_km", help="Luftlinie vom PLZ-Mittelpunkt; leer = Standardwert",
            )
            slots.add("max_distance_km")
        with b:
            raw["transport"] = rv.select_enum(
                "Verkehrsmittel", [None, *Transport], g("transport"), key=k + "transport",
                fmt=lambda x: "keine Angabe" if x is None else x.label,
            )
            slots.add("transport")
        with c:
            raw["open_to_group"] = rv.select_enum(
                "Offen für Gruppentherapie", rv.YES_NO_UNKNOWN, g("open_to_group"), key=k + "open_to_group", fmt=rv.yes_no,
            )
            slots.add("open_to_group")
        a, b = st.columns(2)
        with a:
            raw["preferred_therapist_gender"] = rv.select_enum(
                "Bevorzugtes Geschlecht der Therapeut:in", GenderPreference, g("preferred_therapist_gender", GenderPreference.any),
                key=k + "preferred_therapist_gender", fmt=lambda x: x.label,
            )
            slots.add("preferred_therapist_gender")
        with b:
            raw["preferred_methods"] = st.multiselect(
                "Bevorzugte Verfahren", [m.value for m in Method], default=g("preferred_methods") or [],
                format_func=lambda c: Method(c).label, key=k + "preferred_methods", placeholder="egal", select_all=False
            )
            slots.add("preferred_methods")

        st.markdown("##### Verfügbarkeit")
        raw["availability"] = windows_editor("Zeitliche Verfügbarkeit", key=k + "availability", value=g("availability"))
        slots.add("availability")

        st.markdown("##### Notizen")
        raw["notes"] = st.text_area("Notizen", value=g("notes") or "", key=k + "notes", label_visibility="collapsed")
        slots.add("notes")

        allow_duplicate = False
        if st.session_state.get(DUPLICATE):
            st.warning("\n".join(md(line) for line in st.session_state[DUPLICATE]), icon=":material/content_copy:")
            allow_duplicate = st.checkbox("Trotzdem speichern (es ist eine andere Person)", key=k + "allow_duplicate")
        submitted = st.form_submit_button("Speichern", type="primary", icon=":material/save:")

    if not submitted:
        return
    def save(s) -> tuple[int, str]:
        if patient_id is None:
            p = patients.create_patient(s, actor, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
        else:
            p = patients.update_patient(s, actor, patient_id, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
        return p.id, f"{p.first_name} {p.last_name}"

    saved = rv.save_form(save, slots=slots, duplicate_key=DUPLICATE, domain_error=PatientError)
    if saved is None:
        return
    saved_id, saved_name = saved
    _close_dialog()
    st.session_state[TOAST] = f"{saved_name} {'angelegt' if patient_id is None else 'gespeichert'}."
    st.query_params["patient"] = str(saved_id)
    st.rerun()


dialog_state = st.session_state.get(DIALOG)
if dialog_state and can_edit:
    editing = dialog_state.get("id") if dialog_state.get("mode") == "edit" else None
    title = "Neue Patient:in" if editing is None else "Patient:in bearbeiten"
    st.dialog(title, width="large", on_dismiss=_close_dialog)(_form)(editing)


# --------------------------------------------------------------------------- detail


def _search_panel(detail: patient_detail.PatientDetail) -> None:
    open_search = detail.open_search
    if open_search is not None:
        st.markdown(
            f"{layout.badge_md(open_search.status)} seit {format_date(open_search.started_on)} · "
            f"wartet seit {open_search.waiting_days} Tagen"
            + (f" · pausiert am {format_date(open_search.paused_on)}" if open_search.paused_on else "")
        )
    elif detail.current_search is not None:
        last = detail.current_search
        st.markdown(f"Letzte Platzsuche: {layout.badge_md(last.status)} ({format_date(last.started_on)} – {format_date(last.ended_on)})")
    else:
        st.markdown("Noch keine Platzsuche.")
    if detail.missing_for_search and (open_search is None or open_search.status == SearchStatus.paused):
        st.warning("Für den Start fehlt noch: " + ", ".join(detail.missing_for_search) + ".", icon=":material/checklist:")

    if can_edit:
        note = st.text_input("Notiz zur Aktion (optional)", key=f"search_note_{detail.id}")
        buttons = st.container(horizontal=True)
        action: Optional[str] = None
        if open_search is None:
            if buttons.button("Platzsuche starten", key=f"search_start_{detail.id}", type="primary", icon=":material/play_arrow:"):
                action = "start"
        else:
            for a in open_search.actions:
                label = {SearchAction.pause: "Pausieren", SearchAction.resume: "Fortsetzen", SearchAction.cancel: "Abbrechen"}[a]
                icon = {SearchAction.pause: ":material/pause:", SearchAction.resume: ":material/play_arrow:", SearchAction.cancel: ":material/cancel:"}[a]
                if a == SearchAction.cancel:
                    sure = buttons.checkbox("Ja, abbrechen", key=f"search_cancel_ok_{detail.id}",
                                            help="Die Platzsuche endet; für eine neue muss sie neu gestartet werden.")
                    if buttons.button(label, key=f"search_{a.value}_{detail.id}", icon=icon, disabled=not sure):
                        action = a.value
                elif buttons.button(label, key=f"search_{a.value}_{detail.id}", icon=icon):
                    action = a.value
            if note and buttons.button("Nur Notiz speichern", key=f"search_addnote_{detail.id}", icon=":material/note_add:"):
                action = "note"
        if action:
            try:
                with unit_of_work() as s:
                    if action == "start":
                        searches.start_search(s, actor, detail.id, today=today, now=context.now(), note=note)
                        done = "Platzsuche gestartet."
                    elif action == "note":
                        searches.add_note(s, actor, open_search.id, note, now=context.now())
                        done = "Notiz gespeichert."
                    else:
                        searches.change_search(s, actor, open_search.id, SearchAction(action), today=today, now=context.now(), note=note)
                        done = {"pause": "Platzsuche pausiert.", "resume": "Platzsuche fortgesetzt.", "cancel": "Platzsuche abgebrochen."}[action]
            except IncompletePatient as exc:
                st.error(md(exc), icon=":material/checklist:")
            except SearchError as exc:
                st.error(md(exc))
            else:
                st.session_state[TOAST] = done
                st.session_state.pop(f"search_note_{detail.id}", None)
                st.rerun()

    if detail.searches:
        st.markdown("**Alle Platzsuchen**")
        st.dataframe(
            rv.frame(
                [
                    {"Status": rv.badge_list(x.status), "Beginn": x.started_on, "Ende": x.ended_on,
                     "Vermittelt an": x.placed_therapist_name or "", **({"Notizen": x.notes or ""} if show_sensitive else {})}
                    for x in detail.searches
                ],
                dates=["Beginn", "Ende"],
            ),
            hide_index=True, placeholder="–", width="stretch", key=f"searches_{detail.id}",
            column_config={
                "Status": rv.state_column("Status", SearchStatus, width="small"),
                "Beginn": st.column_config.DateColumn("Beginn", format="DD.MM.YYYY"),
                "Ende": st.column_config.DateColumn("Ende", format="DD.MM.YYYY"),
                "Notizen": st.column_config.TextColumn("Notizen", width="large"),
            },
        )


def _exclusions_panel(detail: patient_detail.PatientDetail) -> None:
    st.caption("Ausgeschlossene Therapeut:innen bekommen diese Person nie in einer Anfrage vorgeschlagen.")
    if detail.exclusions:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Therapeut:in": e.therapist_name, "Seit": format_datetime(e.created_at),
                     **({"Grund": e.reason or ""} if show_sensitive else {})}
                    for e in detail.exclusions
                ]
            ),
            hide_index=True, placeholder="–", width="stretch", key=f"exclusions_{detail.id}",
        )
    else:
        st.markdown("Keine Ausschlüsse.")
    if not can_edit:
        return
    with st.container(border=True):
        st.markdown("**Therapeut:in ausschließen**")
        term = st.text_input("Therapeut:in suchen (Name)", key=f"excl_term_{detail.id}")
        options: list[tuple[int, str]] = []
        if term.strip():
            with read_session() as s:
                options = therapists.lookup(s, actor, term)
            if not options:
                st.caption("Keine Therapeut:in mit diesem Namen gefunden.")
        labels = dict(options)
        choice = st.selectbox("Treffer", list(labels), format_func=lambda i: labels.get(i, str(i)), key=f"excl_pick_{detail.id}",
                              index=None, placeholder="erst oben suchen", disabled=not options)
        reason = st.text_input("Grund", key=f"excl_reason_{detail.id}")
        if st.button("Ausschließen", key=f"excl_add_{detail.id}", disabled=choice is None, icon=":material/block:"):
            try:
                with unit_of_work() as s:
                    registry_exclusions.add_exclusion(s, actor, detail.id, choice, reason, now=context.now())
            except v.ValidationErrors as exc:
                st.error(md(" ".join(exc.errors.values())))
            except PatientError as exc:
                st.error(md(exc))
            else:
                st.session_state[TOAST] = f"{labels[choice].split(' (')[0]} ausgeschlossen."
                for key in (f"excl_term_{detail.id}", f"excl_reason_{detail.id}", f"excl_pick_{detail.id}"):
                    st.session_state.pop(key, None)
                st.rerun()
    if detail.exclusions:
        by_id = {e.id: e for e in detail.exclusions}
        gone_id = st.selectbox("Ausschluss aufheben", list(by_id), format_func=lambda i: by_id[i].therapist_name, index=None,
                               key=f"excl_remove_pick_{detail.id}", placeholder="Ausschluss wählen")
        gone = by_id.get(gone_id)
        if st.button("Aufheben", key=f"excl_remove_{detail.id}", disabled=gone is None, icon=":material/undo:"):
            try:
                with unit_of_work() as s:
                    registry_exclusions.remove_exclusion(s, actor, gone.id, now=context.now())
            except PatientError as exc:
                st.error(md(exc))
            else:
                st.session_state[TOAST] = f"Ausschluss von {gone.therapist_name} aufgehoben."
                st.rerun()


def _detail(patient_id: int) -> None:
    try:
        with read_session() as s:
            detail = patient_detail.get_patient(s, actor, patient_id, today=today)
            history = patient_detail.patient_history(s, actor, patient_id, today=today)
    except PatientError as exc:
        st.info(md(exc))
        return
    st.divider()
    top_left, top_right = st.columns([4, 2])
    with top_left:
        st.subheader(md(detail.name) + (f" ({detail.age} Jahre)" if detail.age is not None else ""))
        chips = [layout.badge_md(detail.values["status"])]
        if detail.current_search is not None:
            chips.append("Platzsuche " + layout.badge_md(detail.current_search.status))
        st.markdown(" ".join(chips) + f" · {patient_ref(detail.id)} · angelegt {format_date(detail.created_at)}")
    with top_right:
        row = st.container(horizontal=True, horizontal_alignment="right")
        if can_edit and row.button("Bearbeiten", key="pat_edit", icon=":material/edit:"):
            st.session_state[DIALOG] = {"mode": "edit", "id": detail.id}
            st.session_state.pop(DUPLICATE, None)
            st.rerun()
        if row.button("Schließen", key="pat_close", icon=":material/close:"):
            st.query_params.pop("patient", None)
            st.session_state.pop("patients_table", None)
            st.rerun()
    tab_details, tab_search, tab_excl, tab_history = st.tabs(["Details", "Platzsuche", "Ausschlüsse", "Verlauf"])
    with tab_details:
        rv.grouped_details(
            patients.GROUPS, detail.values,
            hidden_note=None if detail.sensitive_visible else
            "Kontakt-, Versicherungs- und Gesundheitsdaten sind für Ihre Rolle ausgeblendet.",
        )
    with tab_search:
        _search_panel(detail)
    with tab_excl:
        _exclusions_panel(detail)
    with tab_history:
        rv.history_table(history, key=f"history_{detail.id}", empty="Noch keine Einträge.")


if selected_id is not None:
    _detail(selected_id)
elif rows:
    st.caption("Wählen Sie oben in der Tabelle eine Zeile, um Details, Platzsuche und Verlauf zu sehen.")
