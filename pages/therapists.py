"""Therapeut:innen: list with filters (URL-bound), detail with status actions, exclusions
and history, create/edit in a dialog generated from the field spec, CSV import/export.
Rules and SQL live in core; the steps shared with Patient:innen in ui.registry_page."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from core.platform import validation as v
from core.platform.db import read_session
from core.platform.formatting import format_date, format_datetime
from core.platform.permissions import Permission
from core.platform.vocab import CoordinatesSource, Method, TherapistStatus
from core.registry import therapists
from core.registry.forms import THERAPIST_FORM
from core.registry.therapists import TherapistAction, TherapistError, TherapistFilter
from ui import context, layout
from ui import registry_page as rp
from ui import registry_view as rv
from core.platform.references import patient_ref, therapist_ref
from ui.text import md

KIND = rp.THERAPISTS
actor = rp.start(KIND)
today = context.today()
show_sensitive = actor.can(Permission.view_sensitive)


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
    statuses = rp.status_filter(KIND, c1, TherapistStatus)
    common = rp.text_filters(KIND, c2, c3, c4)
    methods = c5.multiselect(
        "Verfahren (eines davon)", [m.value for m in Method], key="th_methods", bind="query-params", placeholder="alle",
        help=", ".join(m.label for m in Method), select_all=False,
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
    common |= rp.sort_filters(KIND, therapists.SORTS, f6, f7)

flt = TherapistFilter(
    statuses=statuses, methods=tuple(methods), language=language or "", potentially_available=potentially, knows_us=knows,
    in_cooling=cooling, has_email=has_email, has_phone_hours=has_hours, **common,
)

# --------------------------------------------------------------------------- list

rows, selected_id = rp.list_section(
    KIND, actor, flt, lambda s, **kw: therapists.list_therapists(s, actor, flt, today=today, **kw),
    lambda r: {
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
    },
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
rp.dialog(
    KIND, actor, load=lambda s, tid: therapists.get_therapist(s, actor, tid, today=today).values,
    create=therapists.create_therapist, update=therapists.update_therapist, name_of=lambda t: t.full_name,
    domain_error=TherapistError, after_save=_languages.clear,
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
        text += f" · Grund: {md(detail.status_reason)}"
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
    rp.run_action(
        KIND, lambda s: therapists.change_status(s, actor, detail.id, chosen, today=today, now=context.now(), reason=reasons.get(chosen)),
        done=f"{detail.name} {_DONE[chosen]}",
        clear=[f"th_{key}_{part}_{detail.id}" for key, *_ in _ACTION_UI.values() for part in ("reason", "ok")],
    )


def _exclusions_panel(detail: therapists.TherapistDetail) -> None:
    st.caption("Diese Patient:innen möchten nicht an diese Therapeut:in vermittelt werden (Ausschluss auf der Patientenseite anlegen).")
    if not detail.exclusions:
        st.markdown("Keine Ausschlüsse.")
        return
    rp.exclusions_table(
        [
            {"Patient:in": e.patient_name, "Kennung": patient_ref(e.patient_id), "Seit": format_datetime(e.created_at),
             **({"Grund": e.reason or ""} if show_sensitive else {})}
            for e in detail.exclusions
        ],
        key=f"th_exclusions_{detail.id}",
    )
    rp.remove_exclusion(KIND, actor, detail.exclusions, record_id=detail.id, key="th_excl_remove", name_of=lambda e: e.patient_name)


def _details_tab(detail: therapists.TherapistDetail) -> None:
    rv.grouped_details(
        THERAPIST_FORM.groups(), detail.values,
        hidden_note=None if detail.sensitive_visible else "Kontaktdaten sind für Ihre Rolle ausgeblendet.",
    )
    if detail.hand_edited_fields:
        st.caption(
            "Von Hand geändert (der 116117-Import überschreibt diese Felder nicht): "
            + ", ".join(v.label(f) for f in detail.hand_edited_fields)
        )


def _detail(loaded: tuple[therapists.TherapistDetail, list]) -> None:
    detail, history = loaded
    chips = [layout.badge_md(detail.status)]
    if detail.in_cooling:
        chips.append(":orange-badge[Abkühlungsphase]")
    if detail.values.get("potentially_available"):
        chips.append(":green-badge[potenziell verfügbar]")
    coords = CoordinatesSource(detail.coordinates_source)
    rp.detail_head(KIND, actor, detail.id, detail.name, " ".join(chips) + f" · {therapist_ref(detail.id)} · Koordinaten: {coords.label}")
    rp.tabs({
        "Details": lambda: _details_tab(detail),
        "Status": lambda: _status_panel(detail),
        "Ausschlüsse": lambda: _exclusions_panel(detail),
        "Verlauf": lambda: rv.history_table(history, key=f"th_history_{detail.id}", empty="Noch keine Einträge."),
    })


rp.detail(
    KIND, selected_id, rows,
    load=lambda s, tid: (therapists.get_therapist(s, actor, tid, today=today), therapists.therapist_history(s, actor, tid)),
    render=_detail, hint="Wählen Sie oben in der Tabelle eine Zeile, um Details, Status und Verlauf zu sehen.",
)
