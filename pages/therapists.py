"""Therapeut:innen: list with filters (URL-bound), detail with status actions, exclusions
and history, create/edit in a dialog generated from the field spec, CSV import/export.
Rules and SQL live in core; the steps shared with Patient:innen in ui.registry_page."""

from __future__ import annotations

from typing import Any, Optional

import streamlit as st

from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_date, format_datetime
from core.platform.permissions import Permission
from core.platform.vocab import CoordinatesSource, Method, PAGE_TITLES, TherapistStatus
from core.registry import therapists
from core.registry.forms import THERAPIST_FORM
from core.registry.therapists import TherapistAction, TherapistError, TherapistFilter
from ui import context, layout
from ui import registry_page as rp
from ui import registry_view as rv
from ui.auth import require_actor

actor = require_actor()
today, now = context.today(), context.now()
show_sensitive = actor.can(Permission.view_sensitive)

KIND = rp.PageKind(
    prefix="th", param="therapist", csv_kind="therapists", singular="Therapeut:in", plural="Therapeut:innen",
    form=THERAPIST_FORM, form_prefix="tf", form_name="therapist_form",
    duplicate_confirm="Trotzdem speichern (es ist eine andere Praxis/Person)",
)

layout.header(
    PAGE_TITLES["therapists"],
    "Alle Therapeut:innen mit Status, Verfahren und Abkühlungsphase. Wählen Sie eine Zeile für Details, Sperren und Verlauf.",
)


@st.cache_data(ttl=600, show_spinner=False)
def _languages(_url: str) -> list[str]:
    with read_session() as s:
        return therapists.language_options(s)


if st.session_state.get("th_csv_toast"):  # an import may have brought new languages
    _languages.clear()
rp.flash(KIND)


# --------------------------------------------------------------------------- filters

with st.container(border=True):
    c1, c2, c3, c4, c5, c6 = st.columns([1.6, 1, 1.4, 1.4, 1.6, 1.4])
    status_values = c1.multiselect(
        "Status", [s.value for s in TherapistStatus], format_func=lambda x: TherapistStatus(x).label,
        key="th_status", bind="query-params", placeholder="alle",
    )
    plz_prefix = c2.text_input("PLZ beginnt mit", key="th_plz", bind="query-params", max_chars=5, placeholder="z. B. 10")
    city = c3.text_input("Ort", key="th_city", bind="query-params")
    name = c4.text_input("Name", key="th_name", bind="query-params", placeholder="Vor- oder Nachname")
    methods = c5.multiselect(
        "Verfahren (eines davon)", [m.value for m in Method], key="th_methods", bind="query-params", placeholder="alle",
        help=", ".join(m.label for m in Method),
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

rows, total, page_no = rp.fetch_page(KIND, lambda s, **kw: therapists.list_therapists(s, actor, flt, today=today, **kw), flt)
rp.list_head(KIND, actor, total, flt, page_no)
selected_id = rp.table(
    KIND, rows, total, flt,
    [
        {
            "Nr.": r.id,
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
    config={
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
    },
)
rp.pager_and_csv(KIND, actor, flt, total)


# --------------------------------------------------------------------------- create / edit dialog


def _save(s, therapist_id: Optional[int], raw: dict[str, Any], allow_duplicate: bool) -> tuple[int, str]:
    if therapist_id is None:
        t = therapists.create_therapist(s, actor, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
    else:
        t = therapists.update_therapist(s, actor, therapist_id, raw, now=context.now(), today=today, allow_duplicate=allow_duplicate)
    return t.id, t.full_name


rp.dialog(
    KIND, actor, load=lambda s, tid: therapists.get_therapist(s, actor, tid, today=today).values,
    service=_save, domain_error=TherapistError, after_save=lambda: _languages.clear(),
)


# --------------------------------------------------------------------------- detail


# How each status action looks; which ones are offered comes from core (detail.allowed_actions).
_ACTION_UI = {
    TherapistAction.block: ("block", ":material/block:", "**Sperren** – gesperrte Therapeut:innen bekommen keine Anfragen mehr.",
                            "Sperrgrund (Pflicht)", "Ja, sperren"),
    TherapistAction.unblock: ("unblock", ":material/lock_open:", None, None, None),
    TherapistAction.deactivate: ("inactive", ":material/person_off:", "**Inaktiv setzen** – z. B. Ruhestand, Praxis aufgegeben.",
                                 "Grund (optional)", None),
}
_DONE = {TherapistAction.block: "gesperrt.", TherapistAction.unblock: "ist wieder aktiv.", TherapistAction.deactivate: "ist jetzt inaktiv."}


def _status_panel(detail: therapists.TherapistDetail) -> None:
    text = layout.badge_md(detail.status)
    if detail.status_changed_on:
        text += f" seit {format_date(detail.status_changed_on)}"
    if detail.status_reason:
        text += f" · Grund: {detail.status_reason}"
    if detail.in_cooling:
        text += f" · Abkühlungsphase bis {format_date(detail.values.get('next_contact_at'))}"
    st.markdown(text)
    if not detail.allowed_actions:
        return
    chosen: Optional[TherapistAction] = None
    reasons: dict[TherapistAction, str] = {}
    with st.container(border=True):
        for action in detail.allowed_actions:
            key, icon, intro, reason_label, confirm = _ACTION_UI[action]
            if intro:
                st.markdown(intro)
            if reason_label:
                reasons[action] = st.text_input(reason_label, key=f"th_{key}_reason_{detail.id}")
            sure = st.checkbox(confirm, key=f"th_{key}_ok_{detail.id}") if confirm else True
            if st.button(detail.action_label(action), key=f"th_{key}_{detail.id}", icon=icon, disabled=not sure):
                chosen = action
    if chosen is None:
        return
    try:
        with unit_of_work() as s:
            therapists.change_status(s, actor, detail.id, chosen, today=today, now=context.now(), reason=reasons.get(chosen))
    except v.ValidationErrors as exc:
        st.error(" ".join(exc.errors.values()))
    except TherapistError as exc:
        st.error(str(exc))
    else:
        rp.toast(KIND, f"{detail.name} {_DONE[chosen]}")
        for key, *_ in _ACTION_UI.values():
            st.session_state.pop(f"th_{key}_reason_{detail.id}", None)
            st.session_state.pop(f"th_{key}_ok_{detail.id}", None)
        st.rerun()


def _exclusions_panel(detail: therapists.TherapistDetail) -> None:
    st.caption("Diese Patient:innen möchten nicht an diese Therapeut:in vermittelt werden (Ausschluss auf der Patientenseite anlegen).")
    if not detail.exclusions:
        st.markdown("Keine Ausschlüsse.")
        return
    rp.exclusions_table(
        [
            {"Patient:in": e.patient_name, "Nr.": e.patient_id, "Seit": format_datetime(e.created_at),
             **({"Grund": e.reason or ""} if show_sensitive else {})}
            for e in detail.exclusions
        ],
        key=f"th_exclusions_{detail.id}",
        config={"Nr.": st.column_config.NumberColumn("Nr.", format="%d", width="small")},
    )
    rp.remove_exclusion(KIND, actor, detail.exclusions, record_id=detail.id, key="th_excl_remove", name_of=lambda e: e.patient_name)


def _detail(therapist_id: int) -> None:
    try:
        with read_session() as s:
            detail = therapists.get_therapist(s, actor, therapist_id, today=today)
            history = therapists.therapist_history(s, actor, therapist_id)
    except TherapistError as exc:
        st.info(str(exc))
        return
    chips = [layout.badge_md(detail.status)]
    if detail.in_cooling:
        chips.append(":orange-badge[Abkühlungsphase]")
    if detail.values.get("potentially_available"):
        chips.append(":green-badge[potenziell verfügbar]")
    coords = CoordinatesSource(detail.coordinates_source)
    rp.detail_head(KIND, actor, detail.id, detail.name, " ".join(chips) + f" · Nr. {detail.id} · Koordinaten: {coords.label}")
    tab_details, tab_status, tab_excl, tab_history = st.tabs(["Details", "Status", "Ausschlüsse", "Verlauf"])
    with tab_details:
        rv.grouped_details(
            THERAPIST_FORM.groups(), detail.values,
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
