"""Therapeut:innen: list with filters (URL-bound), detail with status actions, exclusions
and history, create/edit in a dialog, CSV import/export. Rules and SQL live in core."""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

import pandas as pd
import streamlit as st

from core.registry import therapists
from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_date, format_datetime
from core.platform.permissions import Permission
from core.registry.therapists import TherapistError, TherapistFilter
from core.platform.vocab import CoordinatesSource, Gender, GenderPreference, Method, PAGE_TITLES, Salutation, TherapistStatus
from ui import context, layout
from ui import registry_view as rv
from ui.auth import require_actor
from core.platform.references import patient_ref, therapist_ref
from ui.text import md
from ui.selection import ID_COLUMN
from ui.windows_editor import windows_editor

actor = require_actor()
today, now = context.today(), context.now()
can_edit = actor.can(Permission.edit)
show_sensitive = actor.can(Permission.view_sensitive)

DIALOG = "therapists_dialog"
DUPLICATE = "therapists_duplicate"
TOAST = "therapists_toast"

layout.header(
    PAGE_TITLES["therapists"],
    "Alle Therapeut:innen mit Status, Verfahren und Abkühlungsphase. Wählen Sie eine Zeile für Details, Sperren und Verlauf.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(md(msg), icon=":material/check_circle:")


@st.cache_data(ttl=600, show_spinner=False)
def _languages(_url: str) -> list[str]:
    with read_session() as s:
        return therapists.language_options(s)


# --------------------------------------------------------------------------- filters

with st.container(border=True):
    c1, c2, c3, c4, c5, c6 = st.columns([1.6, 1, 1.4, 1.4, 1.6, 1.4])
    status_values = c1.multiselect(
        "Status", [s.value for s in TherapistStatus], format_func=lambda x: TherapistStatus(x).label,
        key="th_status", bind="query-params", placeholder="alle", select_all=False
    )
    plz_prefix = c2.text_input("PLZ beginnt mit", key="th_plz", bind="query-params", max_chars=5, placeholder="z. B. 10")
    city = c3.text_input("Ort", key="th_city", bind="query-params")
    name = c4.text_input("Name", key="th_name", bind="query-params", placeholder="Vor- oder Nachname")
    methods = c5.multiselect(
        "Verfahren (eines davon)", [m.value for m in Method], key="th_methods", bind="query-params", placeholder="alle",
        help=", ".join(m.label for m in Method), select_all=False
    )
    language = c6.selectbox(
        "Sprache", _languages(context.settings().DATABASE_URL), index=None, key="th_lang", bind="query-params",
        placeholder="alle", accept_new_options=True,
    )
    f1, f2, f3, f4, f5, f6, f7 = st.columns([1.3, 1, 1.2, 1.1, 1.1, 1.5, 0.8])
    with f1:
        potentially = rv.tri_state("Potenziell verfügbar", key="th_pot")
    with f2:
        knows = rv.tri_state("Kennt uns", key="th_knows")
    with f3:
        cooling = rv.tri_state("Abkühlungsphase", key="th_cool", yes="in", no="frei")
    with f4:
        has_email = rv.tri_state("E-Mail", key="th_email", yes="mit", no="ohne")
    with f5:
        has_hours = rv.tri_state("Telefonzeiten", key="th_hours", yes="mit", no="ohne")
    sort = f6.selectbox("Sortierung", list(therapists.SORTS), format_func=lambda k: therapists.SORTS[k], key="th_sort", bind="query-params")
    descending = f7.toggle("absteigend", key="th_desc", bind="query-params")

flt = TherapistFilter(
    statuses=tuple(TherapistStatus(s) for s in status_values),
    plz_prefix=plz_prefix or "",
    city=city or "",
    name=name or "",
    methods=tuple(methods),
    language=language or "",
    potentially_available=potentially,
    knows_us=knows,
    in_cooling=cooling,
    has_email=has_email,
    has_phone_hours=has_hours,
    sort=sort or "name",
    descending=bool(descending),
)

# --------------------------------------------------------------------------- list

with read_session() as s:
    rows, total, page_no = rv.filtered_page(partial(therapists.list_therapists, s, actor, flt, today=today), flt, prefix="th")

head_left, head_right = st.columns([4, 1])
head_left.markdown(rv.count_line(total, "Therapeut:in", "Therapeut:innen", filter_text=flt.describe(), page_no=page_no))
if can_edit and head_right.button("Neue Therapeut:in", key="th_new", icon=":material/person_add:", type="primary", width="stretch"):
    st.session_state[DIALOG] = {"mode": "new"}
    st.session_state.pop(DUPLICATE, None)

selected_id: Optional[int] = None
if not rows:
    if total == 0 and not flt.describe():
        st.info("Noch keine Therapeut:innen. Legen Sie die erste mit „Neue Therapeut:in“ an oder importieren Sie eine CSV-Datei.")
    else:
        st.info("Keine Therapeut:innen passen zu diesem Filter. Lockern Sie den Filter oben.")
else:
    table = rv.frame(
        [
            {
                ID_COLUMN: r.id,
                "Kennung": therapist_ref(r.id),
                "Name": f"{r.last_name}, {' '.join(p for p in (r.title, r.first_name) if p)}",
                "Status": rv.badge_list(r.status),
                "PLZ": r.plz or "",
                "Ort": r.city or "",
                "Verfahren": list(r.methods),
                "Sprachen": ", ".join(r.languages),
                "Pot. verfügbar": r.potentially_available,
                "Kennt uns": r.knows_us,
                "Nächster Kontakt ab": r.next_contact_at if r.in_cooling else None,
                **(
                    {"Telefon": v.phone_display(r.phone), "E-Mail": r.email or ""}
                    if show_sensitive else {"Telefonzeiten": r.has_phone_hours, "Hat E-Mail": r.has_email}
                ),
            }
            for r in rows
        ],
        dates=["Nächster Kontakt ab"],
    )
    config: dict[str, Any] = {
        ID_COLUMN: None,
        "Kennung": st.column_config.TextColumn("Kennung", width="small"),
        "Status": rv.state_column("Status", TherapistStatus, width="small"),
        "Verfahren": st.column_config.MultiselectColumn(
            "Verfahren", options=[m.value for m in Method], color=[m.color for m in Method], disabled=True,
            help=", ".join(m.label for m in Method),
        ),
        "Pot. verfügbar": st.column_config.CheckboxColumn("Pot. verfügbar", help="potenziell verfügbar"),
        "Kennt uns": st.column_config.CheckboxColumn("Kennt uns"),
        "Nächster Kontakt ab": st.column_config.DateColumn(
            "Nächster Kontakt ab", format="DD.MM.YYYY", help="In der Abkühlungsphase bis zu diesem Tag"
        ),
    }
    event = st.dataframe(
        table, key="therapists_table", on_select="rerun", selection_mode="single-row", hide_index=True, placeholder="–",
        width="stretch", column_config=config,
    )
    picked = event.selection.rows if event is not None else []
    if picked:
        selected_id = int(table.iloc[picked[0]][ID_COLUMN])
        if st.query_params.get("therapist") != str(selected_id):
            st.query_params["therapist"] = str(selected_id)
    else:
        raw_id = st.query_params.get("therapist")
        selected_id = int(raw_id) if raw_id and raw_id.isdigit() else None
rv.pager(total, key="th_page")

rv.csv_panel(actor, "therapists", flt, total=total, prefix="th_csv")
if msg := st.session_state.pop("th_csv_toast", None):
    st.toast(md(msg), icon=":material/check_circle:")
    _languages.clear()


# --------------------------------------------------------------------------- create / edit dialog


def _close_dialog() -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state.pop(DUPLICATE, None)


def _form(therapist_id: Optional[int]) -> None:
    values: dict[str, Any] = {}
    if therapist_id is not None:
        with read_session() as s:
            values = therapists.get_therapist(s, actor, therapist_id, today=today).values
    k = f"tf_{therapist_id or 'new'}_"
    g = values.get
    slots = rv.FieldSlots()
    with st.form(f"therapist_form_{therapist_id or 'new'}", clear_on_submit=False, border=False):
        raw: dict[str, Any] = {}
        st.markdown("##### Stammdaten")
        a, b, c, d = st.columns([1, 1, 2, 2])
        with a:
            raw["salutation"] = rv.select_enum("Anrede", Salutation, g("salutation", Salutation.none), key=k + "salutation", fmt=lambda x: x.label)
        with b:
            raw["title"] = st.text_input("Titel", value=g("title") or "", key=k + "title", placeholder="Dr.")
            slots.add("title")
        with c:
            raw["first_name"] = st.text_input("Vorname", value=g("first_name", ""), key=k + "first_name")
            slots.add("first_name")
        with d:
            raw["last_name"] = st.text_input("Nachname", value=g("last_name", ""), key=k + "last_name")
            slots.add("last_name")
        a, b, c = st.columns(3)
        with a:
            raw["gender"] = rv.select_enum("Geschlecht", Gender, g("gender", Gender.unspecified), key=k + "gender", fmt=lambda x: x.label)
        with b:
            raw["statutory_licence"] = st.checkbox("Kassensitz", value=g("statutory_licence", True), key=k + "statutory_licence")
        with c:
            raw["knows_us"] = st.checkbox("Kennt uns", value=bool(g("knows_us")), key=k + "knows_us")

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
            raw["phone"] = st.text_input("Telefon", value=v.phone_display(g("phone")), key=k + "phone", placeholder="z. B. 030 1234567")
            slots.add("phone")
            raw["email"] = st.text_input("E-Mail", value=g("email") or "", key=k + "email")
            slots.add("email")
        with b:
            raw["fax"] = st.text_input("Fax", value=v.phone_display(g("fax")), key=k + "fax")
            slots.add("fax")
            raw["website"] = st.text_input("Webseite", value=g("website") or "", key=k + "website")
            slots.add("website")
        a, b, c = st.columns(3)
        for col, f, lbl in (
            (a, "last_contact_email_on", "Letzter Kontakt per E-Mail"),
            (b, "last_contact_phone_on", "Letzter Kontakt per Telefon"),
            (c, "last_contact_in_person_on", "Letztes persönliches Gespräch"),
        ):
            with col:
                raw[f] = st.date_input(lbl, value=g(f), max_value=today, format="DD.MM.YYYY", key=k + f)
                slots.add(f)

        st.markdown("##### Angebot und Präferenzen")
        raw["methods"] = st.multiselect(
            "Verfahren", [m.value for m in Method], default=g("methods") or [], format_func=lambda c: Method(c).label,
            key=k + "methods", placeholder="Verfahren wählen", select_all=False
        )
        slots.add("methods")
        a, b, c = st.columns(3)
        with a:
            raw["offers_individual"] = st.checkbox("Einzeltherapie", value=g("offers_individual", True), key=k + "offers_individual")
        with b:
            raw["offers_group"] = st.checkbox("Gruppentherapie", value=bool(g("offers_group")), key=k + "offers_group")
        with c:
            raw["prefers_group"] = st.checkbox("Bevorzugt Gruppentherapie", value=bool(g("prefers_group")), key=k + "prefers_group")
            slots.add("prefers_group")
        a, b, c, d = st.columns(4)
        with a:
            raw["languages"] = st.text_input(
                "Sprachen", value=", ".join(g("languages") or []), key=k + "languages", placeholder="z. B. Englisch, Türkisch",
            )
            slots.add("languages")
        with b:
            raw["age_min"] = st.number_input("Mindestalter", min_value=0, max_value=120, value=g("age_min"), step=1, key=k + "age_min")
            slots.add("age_min")
        with c:
            raw["age_max"] = st.number_input("Höchstalter", min_value=0, max_value=120, value=g("age_max"), step=1, key=k + "age_max")
            slots.add("age_max")
        with d:
            raw["patient_gender_preference"] = rv.select_enum(
                "Bevorzugtes Geschlecht der Patient:innen", GenderPreference, g("patient_gender_preference", GenderPreference.any),
                key=k + "patient_gender_preference", fmt=lambda x: x.label,
            )

        st.markdown("##### Verfügbarkeit")
        raw["phone_hours"] = windows_editor("Telefonische Erreichbarkeit", key=k + "phone_hours", value=g("phone_hours"))
        slots.add("phone_hours")
        a, b, c = st.columns([1, 2, 1])
        with a:
            raw["potentially_available"] = st.checkbox("Potenziell verfügbar", value=bool(g("potentially_available")), key=k + "potentially_available")
        with b:
            raw["potentially_available_notes"] = st.text_input(
                "Notiz zur Verfügbarkeit", value=g("potentially_available_notes") or "", key=k + "potentially_available_notes",
            )
            slots.add("potentially_available_notes")
        with c:
            raw["next_contact_at"] = st.date_input(
                "Nächster Kontakt möglich ab", value=g("next_contact_at"), format="DD.MM.YYYY", key=k + "next_contact_at",
            )
            slots.add("next_contact_at")

        st.markdown("##### Notizen")
        raw["notes"] = st.text_area("Notizen", value=g("notes") or "", key=k + "notes", label_visibility="collapsed")
        slots.add("notes")

        allow_duplicate = False
        if st.session_state.get(DUPLICATE):
            st.warning("\n".join(md(line) for line in st.session_state[DUPLICATE]), icon=":material/content_copy:")
            allow_duplicate = st.checkbox("Trotzdem speichern (es ist eine andere Praxis/Person)", key=k + "allow_duplicate")
        submitted = st.form_submit_button("Speichern", type="primary", icon=":material/save:")

    if not submitted:
        return
    def save(s) -> tuple[int, str]:
        if therapist_id is None:
            t = therapists.create_therapist(s, actor, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
        else:
            t = therapists.update_therapist(s, actor, therapist_id, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
        return t.id, t.full_name

    saved = rv.save_form(save, slots=slots, duplicate_key=DUPLICATE, domain_error=TherapistError, kind="therapist")
    if saved is None:
        return
    saved_id, saved_name = saved
    _close_dialog()
    _languages.clear()
    st.session_state[TOAST] = f"{saved_name} {'angelegt' if therapist_id is None else 'gespeichert'}."
    st.query_params["therapist"] = str(saved_id)
    st.rerun()


dialog_state = st.session_state.get(DIALOG)
if dialog_state and can_edit:
    editing = dialog_state.get("id") if dialog_state.get("mode") == "edit" else None
    title = "Neue Therapeut:in" if editing is None else "Therapeut:in bearbeiten"
    st.dialog(title, width="large", on_dismiss=_close_dialog)(_form)(editing)


# --------------------------------------------------------------------------- detail


def _status_panel(detail: therapists.TherapistDetail) -> None:
    text = layout.badge_md(detail.status)
    if detail.status_changed_on:
        text += f" seit {format_date(detail.status_changed_on)}"
    if detail.status_reason:
        text += f" · Grund: {md(detail.status_reason)}"
    if detail.in_cooling:
        text += f" · Abkühlungsphase bis {format_date(detail.values.get('next_contact_at'))}"
    st.markdown(text)
    if not can_edit:
        return
    act: Optional[str] = None
    with st.container(border=True):
        if detail.status != TherapistStatus.blocked:
            st.markdown("**Sperren** – gesperrte Therapeut:innen bekommen keine Anfragen mehr.")
            reason = st.text_input("Sperrgrund (Pflicht)", key=f"th_block_reason_{detail.id}")
            sure = st.checkbox("Ja, sperren", key=f"th_block_ok_{detail.id}")
            if st.button("Sperren", key=f"th_block_{detail.id}", icon=":material/block:", disabled=not sure):
                act = "block"
        if detail.status != TherapistStatus.active:
            label = "Entsperren" if detail.status == TherapistStatus.blocked else "Wieder aktiv setzen"
            if st.button(label, key=f"th_unblock_{detail.id}", icon=":material/lock_open:"):
                act = "unblock"
        if detail.status == TherapistStatus.active:
            st.markdown("**Inaktiv setzen** – z. B. Ruhestand, Praxis aufgegeben.")
            inactive_reason = st.text_input("Grund (optional)", key=f"th_inactive_reason_{detail.id}")
            if st.button("Inaktiv setzen", key=f"th_inactive_{detail.id}", icon=":material/person_off:"):
                act = "deactivate"
    if act is None:
        return
    try:
        with unit_of_work() as s:
            if act == "block":
                therapists.block(s, actor, detail.id, reason, today=today, now=context.now())
                done = f"{detail.name} gesperrt."
            elif act == "unblock":
                therapists.unblock(s, actor, detail.id, today=today, now=context.now())
                done = f"{detail.name} ist wieder aktiv."
            else:
                therapists.deactivate(s, actor, detail.id, today=today, now=context.now(), reason=inactive_reason)
                done = f"{detail.name} ist jetzt inaktiv."
    except v.ValidationErrors as exc:
        st.error(md(" ".join(exc.errors.values())))
    except TherapistError as exc:
        st.error(md(exc))
    else:
        st.session_state[TOAST] = done
        for key in (f"th_block_reason_{detail.id}", f"th_block_ok_{detail.id}", f"th_inactive_reason_{detail.id}"):
            st.session_state.pop(key, None)
        st.rerun()


def _exclusions_panel(detail: therapists.TherapistDetail) -> None:
    st.caption("Diese Patient:innen möchten nicht an diese Therapeut:in vermittelt werden (Ausschluss auf der Patientenseite anlegen).")
    if not detail.exclusions:
        st.markdown("Keine Ausschlüsse.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {"Patient:in": e.patient_name, "Kennung": patient_ref(e.patient_id), "Seit": format_datetime(e.created_at),
                 **({"Grund": e.reason or ""} if show_sensitive else {})}
                for e in detail.exclusions
            ]
        ),
        hide_index=True, placeholder="–", width="stretch", key=f"th_exclusions_{detail.id}",
    )
    if can_edit:
        from core.registry import exclusions as registry_exclusions
        from core.registry import patients

        by_id = {e.id: e for e in detail.exclusions}
        gone_id = st.selectbox("Ausschluss aufheben", list(by_id), format_func=lambda i: by_id[i].patient_name, index=None,
                               key=f"th_excl_remove_pick_{detail.id}", placeholder="Ausschluss wählen")
        gone = by_id.get(gone_id)
        if st.button("Aufheben", key=f"th_excl_remove_{detail.id}", disabled=gone is None, icon=":material/undo:"):
            try:
                with unit_of_work() as s:
                    registry_exclusions.remove_exclusion(s, actor, gone.id, now=context.now())
            except patients.PatientError as exc:
                st.error(md(exc))
            else:
                st.session_state[TOAST] = f"Ausschluss von {gone.patient_name} aufgehoben."
                st.rerun()


def _detail(therapist_id: int) -> None:
    try:
        with read_session() as s:
            detail = therapists.get_therapist(s, actor, therapist_id, today=today)
            history = therapists.therapist_history(s, actor, therapist_id)
    except TherapistError as exc:
        st.info(md(exc))
        return
    st.divider()
    top_left, top_right = st.columns([4, 2])
    with top_left:
        st.subheader(md(detail.name))
        chips = [layout.badge_md(detail.status)]
        if detail.in_cooling:
            chips.append(":orange-badge[Abkühlungsphase]")
        if detail.values.get("potentially_available"):
            chips.append(":green-badge[potenziell verfügbar]")
        coords = CoordinatesSource(detail.coordinates_source)
        st.markdown(" ".join(chips) + f" · {therapist_ref(detail.id)} · Koordinaten: {coords.label}")
    with top_right:
        row = st.container(horizontal=True, horizontal_alignment="right")
        if can_edit and row.button("Bearbeiten", key="th_edit", icon=":material/edit:"):
            st.session_state[DIALOG] = {"mode": "edit", "id": detail.id}
            st.session_state.pop(DUPLICATE, None)
            st.rerun()
        if row.button("Schließen", key="th_close", icon=":material/close:"):
            st.query_params.pop("therapist", None)
            st.session_state.pop("therapists_table", None)
            st.rerun()
    tab_details, tab_status, tab_excl, tab_history = st.tabs(["Details", "Status", "Ausschlüsse", "Verlauf"])
    with tab_details:
        rv.grouped_details(
            therapists.GROUPS, detail.values,
            hidden_note=None if detail.sensitive_visible else "Kontaktdaten sind für Ihre Rolle ausgeblendet.",
        )
        if detail.hand_edited_fields:
            st.caption(
                "Von Hand geändert (der 116117-Import überschreibt diese Felder nicht): "
                + ", ".join(v.label(f) for f in detail.hand_edited_fields)
            )
    with tab_status:
        _status_panel(detail)
    with tab_excl:
        _exclusions_panel(detail)
    with tab_history:
        rv.history_table(history, key=f"th_history_{detail.id}", empty="Noch keine Einträge.")


if selected_id is not None:
    _detail(selected_id)
elif rows:
    st.caption("Wählen Sie oben in der Tabelle eine Zeile, um Details, Status und Verlauf zu sehen.")
