"""Patient:innen: list with filters (URL-bound), detail with Platzsuche, exclusions and
history, create/edit in a dialog generated from the field spec, CSV import/export.
Rules and SQL live in core; the steps shared with Therapeut:innen in ui.registry_page."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_date, format_datetime, plural
from core.platform.permissions import Permission
from core.platform.vocab import PatientStatus, SearchStatus
from core.privacy import reads
from core.registry import exclusions as registry_exclusions
from core.registry import patient_detail, patients, searches, therapists
from core.registry.forms import PATIENT_FORM
from core.registry.patients import PatientError, PatientFilter
from core.registry.searches import SearchAction, SearchError
from ui import context, layout
from ui import registry_page as rp
from ui import registry_view as rv
from core.platform.references import patient_ref
from ui.contact_log import contact_log_action
from ui.text import md

KIND = rp.PATIENTS
actor = rp.start(KIND)
today = context.today()
can_edit = actor.can(Permission.edit)
show_sensitive = actor.can(Permission.view_sensitive)
rp.flash(KIND)

# --------------------------------------------------------------------------- filters

SEARCH_OPTIONS = [s.value for s in SearchStatus] + [patients.SEARCH_NONE]


def _search_label(value: str) -> str:
    return "keine Platzsuche" if value == patients.SEARCH_NONE else SearchStatus(value).label


with st.container(border=True):
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1.5, 1.5])
    statuses = rp.status_filter(KIND, c1, PatientStatus)
    search_values = c2.multiselect(
        "Platzsuche", SEARCH_OPTIONS, format_func=_search_label, key="pat_search", bind="query-params", placeholder="alle",
        select_all=False,
    )
    common = rp.text_filters(KIND, c3, c4, c5)
    c6, c7, c8, c9 = st.columns([1.5, 1.5, 2, 1])
    # no min/max in the widgets: a negative number gets a German message from the filter check
    min_wait = c6.number_input("Wartet seit mind. (Tage)", value=None, step=7, key="pat_wait_min", bind="query-params")
    max_wait = c7.number_input("Wartet seit höchstens (Tage)", value=None, step=7, key="pat_wait_max", bind="query-params")
    common |= rp.sort_filters(KIND, patients.SORTS, c8, c9)

flt = PatientFilter(
    statuses=statuses,
    search_states=tuple(search_values),
    min_wait_days=int(min_wait) if min_wait is not None else None,
    max_wait_days=int(max_wait) if max_wait is not None else None,
    **common,
)

# --------------------------------------------------------------------------- list

rows, selected_id = rp.list_section(
    KIND, actor, flt, lambda s, **kw: patients.list_patients(s, actor, flt, today=today, **kw),
    lambda r: {
        "Platzsuche": rv.badge_list(r.search_status),
        "Wartet (Tage)": r.waiting_days,
        "PLZ": r.plz or "",
        "Ort": r.city or "",
        **(
            {"Geburtsdatum": r.birth_date, "Telefon": v.phone_display(r.phone), "E-Mail": r.email or ""}
            if show_sensitive else {}
        ),
    },
    ints=["Wartet (Tage)"], dates=["Geburtsdatum"],
    config={
        "Status": rv.state_column("Status", PatientStatus, width="medium"),
        "Platzsuche": rv.state_column("Platzsuche", SearchStatus, width="small"),
        "Wartet (Tage)": st.column_config.NumberColumn(
            "Wartet (Tage)", format="%d", help="Tage seit Beginn der laufenden oder pausierten Platzsuche"
        ),
        "Geburtsdatum": st.column_config.DateColumn("Geburtsdatum", format="DD.MM.YYYY"),
    },
)
rp.dialog(
    KIND, actor, load=lambda s, pid: patient_detail.get_patient(s, actor, pid, today=today).values,
    create=patients.create_patient, update=patients.update_patient, name_of=lambda p: f"{p.first_name} {p.last_name}",
    domain_error=PatientError,
)


# --------------------------------------------------------------------------- detail


def _search_panel(detail: patient_detail.PatientDetail) -> None:
    open_search = detail.open_search
    if open_search is not None:
        st.markdown(
            f"{layout.badge_md(open_search.status)} seit {format_date(open_search.started_on)} · "
            f"wartet seit {plural(open_search.waiting_days, 'Tag', 'Tagen')}"
            + (f" · pausiert am {format_date(open_search.paused_on)}" if open_search.paused_on else "")
        )
    elif detail.current_search is not None:
        last = detail.current_search
        st.markdown(f"Letzte Platzsuche: {layout.badge_md(last.status)} ({format_date(last.started_on)} – {format_date(last.ended_on)})")
    else:
        st.markdown("Noch keine Platzsuche.")
    if detail.missing_to_start:
        st.warning("Für den Start fehlt noch: " + ", ".join(detail.missing_to_start) + ".", icon=":material/checklist:")

    if can_edit:
        note = st.text_input("Notiz zur Aktion (optional)", key=f"search_note_{detail.id}")
        buttons = st.container(horizontal=True)
        action: Optional[str] = None
        if detail.can_start_search:
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
            run, done = {
                "start": (lambda s: searches.start_search(s, actor, detail.id, today=today, now=context.now(), note=note),
                          "Platzsuche gestartet."),
                "note": (lambda s: searches.add_note(s, actor, open_search.id, note, now=context.now()), "Notiz gespeichert."),
            }.get(action) or (
                lambda s: searches.change_search(s, actor, open_search.id, SearchAction(action), today=today, now=context.now(), note=note),
                {"pause": "Platzsuche pausiert.", "resume": "Platzsuche fortgesetzt.", "cancel": "Platzsuche abgebrochen."}[action],
            )
            rp.run_action(KIND, run, done=done, clear=(f"search_note_{detail.id}",), errors=(SearchError,))

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
        rp.exclusions_table(
            [
                {"Therapeut:in": e.therapist_name, "Seit": format_datetime(e.created_at),
                 **({"Grund": e.reason or ""} if show_sensitive else {})}
                for e in detail.exclusions
            ],
            key=f"exclusions_{detail.id}",
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
            try:
                with read_session() as s:
                    options = therapists.lookup(s, actor, term)
            except v.ValidationErrors as exc:
                st.error(md(" ".join(exc.errors.values())), icon=":material/error:")
            else:
                if not options:
                    st.caption("Keine Therapeut:in mit diesem Namen gefunden.")
        labels = dict(options)
        choice = st.selectbox("Treffer", list(labels), format_func=lambda i: labels.get(i, str(i)), key=f"excl_pick_{detail.id}",
                              index=None, placeholder="erst oben suchen", disabled=not options)
        reason = st.text_input("Grund", key=f"excl_reason_{detail.id}")
        if st.button("Ausschließen", key=f"excl_add_{detail.id}", disabled=choice is None, icon=":material/block:"):
            rp.run_action(
                KIND, lambda s: registry_exclusions.add_exclusion(s, actor, detail.id, choice, reason, now=context.now()),
                done=f"{labels[choice].split(' (')[0]} ausgeschlossen.",
                clear=(f"excl_term_{detail.id}", f"excl_reason_{detail.id}", f"excl_pick_{detail.id}"),
            )
    rp.remove_exclusion(KIND, actor, detail.exclusions, record_id=detail.id, key="excl_remove", name_of=lambda e: e.therapist_name)


def _detail(loaded: tuple[patient_detail.PatientDetail, list]) -> None:
    detail, history = loaded
    if detail.sensitive_visible:  # contact and health fields are on screen: the read is audited
        with unit_of_work() as s:
            reads.record_read(s, actor, "patient", detail.id, now=context.now())
    chips = [layout.badge_md(detail.values["status"])]
    if detail.current_search is not None:
        chips.append("Platzsuche " + layout.badge_md(detail.current_search.status))
    rp.detail_head(
        KIND, actor, detail.id, detail.name + (f" ({detail.age} Jahre)" if detail.age is not None else ""),
        " ".join(chips) + f" · {patient_ref(detail.id)} · angelegt {format_date(detail.created_at)}",
    )
    contact_log_action(st.container(horizontal=True, horizontal_alignment="right"), actor, detail.id)  # ui/contact_log.py
    rp.tabs({
        "Details": lambda: rv.grouped_details(
            PATIENT_FORM.groups(), detail.values,
            hidden_note=None if detail.sensitive_visible else
            "Kontakt-, Versicherungs- und Gesundheitsdaten sind für Ihre Rolle ausgeblendet.",
        ),
        "Platzsuche": lambda: _search_panel(detail),
        "Ausschlüsse": lambda: _exclusions_panel(detail),
        "Verlauf": lambda: rv.history_table(history, key=f"history_{detail.id}", empty="Noch keine Einträge."),
    })


rp.detail(
    KIND, selected_id, rows,
    load=lambda s, pid: (patient_detail.get_patient(s, actor, pid, today=today),
                         patient_detail.patient_history(s, actor, pid, today=today)),
    render=_detail, hint="Wählen Sie oben in der Tabelle eine Zeile, um Details, Platzsuche und Verlauf zu sehen.",
)
