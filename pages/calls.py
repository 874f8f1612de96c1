"""Anrufliste: today's calls in time order, who is reachable right now, the week, "Meine
Anrufe", and the outcome form as a dialog. Rules, SQL and planning live in core.calls."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from core.calls import services as call_services
from core.calls import views as call_views
from core.platform.db import ConcurrentChange, read_session, run_unit_of_work, unit_of_work
from core.platform.formatting import BERLIN, format_date, format_datetime, format_day_month, format_number, format_time
from core.platform.permissions import Permission
from core.platform.timewindows import DAY_KEYS
from core.privacy import reads
from core.platform.vocab import PAGE_TITLES, CallResult, CallState, Outcome
from ui import context, layout
from ui.auth import require_actor
from ui.text import md

actor = require_actor()
settings = context.settings()
can_edit = actor.can(Permission.edit)
TOAST = "calls_toast"
DIALOG = "calls_dialog"  # {"kind": "result" | "move" | "cancel", "id": call id} while a dialog is open
ANSWER_OUTCOMES = [Outcome.accepted, Outcome.rejected_capacity, Outcome.rejected_unsuitable, Outcome.rejected_other,
                   Outcome.waitlisted, Outcome.no_response]

layout.header(
    PAGE_TITLES["calls"],
    "Anrufe in den Telefonzeiten der Praxen: wer heute dran ist, wer gerade erreichbar ist, und das Ergebnis jedes Anrufs.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(msg, icon=":material/check_circle:")

now = context.now()
today = context.today()


def _done(message: str) -> None:
    _close_dialog()
    st.session_state[TOAST] = message
    st.rerun()


def _open_dialog(kind: str, call_id: int) -> None:
    st.session_state[DIALOG] = {"kind": kind, "id": call_id}


def _close_dialog() -> None:
    st.session_state.pop(DIALOG, None)


# --------------------------------------------------------------------------- filters

f = st.columns([2, 2, 4])
day = f[0].date_input("Tag", value=today, format="DD.MM.YYYY", key="calls_day")
mine = f[1].toggle("Meine Anrufe", key="calls_mine", disabled=actor.user_id is None,
                   help="Nur Anrufe, die Ihnen zugewiesen sind (nicht zugewiesene teilen sich alle).")

with read_session() as s:
    day_list = call_views.day_calls(s, actor, day, today=today, mine=mine, settings=settings)
    reachable = call_views.reachable_now(s, actor, now=now, settings=settings)
    overdue = call_views.overdue_calls(s, actor, now=now, today=today, settings=settings) if day == today else []
    team = call_views.coordinators(s, actor)

st.progress(day_list.progress,
            text=f"{format_date(day)}: {format_number(day_list.done)} erledigt, {format_number(day_list.open)} offen "
                 f"von {format_number(len(day_list.rows))} Anrufen")

tab_day, tab_now, tab_week = st.tabs([
    f"Tagesliste ({format_number(len(day_list.rows))})",
    f"Jetzt erreichbar ({format_number(len(reachable))})",
    "Woche",
])


def _table(rows: list[call_views.CallRow]) -> pd.DataFrame:
    return pd.DataFrame([{
        "Uhrzeit": format_time(r.start),
        "Therapeut:in": f"{r.therapist_ref} {r.therapist_name}",
        "Telefon": r.phone or "",
        "Wählen": (f"tel:{r.phone.replace(' ', '')}" if r.phone else None),
        "Telefonzeiten": r.phone_hours,
        "Anfrage": r.inquiry_ref or "",
        "Anlass": f"{r.purpose.label}, Versuch {r.attempt}",
        "Status": r.result.label if r.result else r.state.label,
        "Zugewiesen": r.assigned_name or "alle",
        "Hinweise": ", ".join(r.marks),
    } for r in rows])


COLUMNS = {
    "Wählen": st.column_config.LinkColumn("Wählen", display_text="anrufen", help="Wählt die Nummer (tel:-Link)"),
    "Telefonzeiten": st.column_config.TextColumn("Telefonzeiten", width="medium"),
}


def _plain(text: str) -> str:
    """Free text (names, numbers) inside markdown: every markdown character escaped."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~:$" else ch for ch in text)


def _details(row: call_views.CallRow) -> None:
    with st.container(border=True):
        st.markdown(f"**{format_datetime(row.start)} · {row.therapist_ref} {_plain(row.therapist_name)}** "
                    f"{layout.badge_md(row.result or row.state)}")
        if row.phone:
            dial = "".join(ch for ch in row.phone if ch.isdigit() or ch == "+")
            st.markdown(f"Telefon: [{_plain(row.phone)}](tel:{dial})"
                        + (" – :red-badge[Nummer als falsch markiert]" if row.phone_invalid else ""))
        st.text(f"Telefonzeiten: {row.phone_hours}")
        if row.patients:
            st.markdown(f"**Patient:innen der Anfrage {row.inquiry_ref}**")
            st.text("\n".join(row.patients))
            if actor.can(Permission.view_sensitive):  # names and symptoms: the read is audited
                with unit_of_work() as s:
                    for patient_id in row.patient_ids:
                        reads.record_read(s, actor, "patient", patient_id, now=context.now())
        if row.earlier:
            st.markdown("**Frühere Versuche**")
            st.text("\n".join(row.earlier))
        if row.notes:
            st.text(f"Notiz: {row.notes}")
        st.info(row.script, icon=":material/record_voice_over:")
        if can_edit and row.is_open:
            b = st.columns(3)
            b[0].button("Ergebnis erfassen", key=f"result_{row.id}", type="primary", icon=":material/call:",
                        on_click=_open_dialog, args=("result", row.id))
            b[1].button("Verschieben", key=f"move_{row.id}", on_click=_open_dialog, args=("move", row.id))
            b[2].button("Absagen", key=f"cancel_{row.id}", on_click=_open_dialog, args=("cancel", row.id))
            options = [None] + [uid for uid, _ in team]
            names = {uid: name for uid, name in team}
            current = row.assigned_to if row.assigned_to in names else None
            who = st.selectbox("Zugewiesen an", options, index=options.index(current), key=f"assign_{row.id}",
                               format_func=lambda uid: "alle (nicht zugewiesen)" if uid is None else names[uid])
            if who != current:
                with unit_of_work() as s:
                    call_services.assign_call(s, actor, row.id, who, now=context.now())
                _done("Zuweisung gespeichert.")


def outcome_dialog(call_id: int) -> None:
    with read_session() as s:
        row = call_views.call_row(s, actor, call_id, today=today, settings=settings)
        members = call_views.answer_members(s, actor, call_id, today=today)
    if row is None or not row.is_open:
        st.warning("Dieser Anruf ist bereits erledigt oder abgesagt.")
        _close_dialog()
        return
    st.markdown(f"**{row.therapist_ref} {_plain(row.therapist_name)}** · {format_datetime(row.start)}")
    result = st.radio("Ergebnis", list(CallResult), format_func=lambda r: r.label, key="dlg_result", horizontal=True)
    outcomes, until, callback_at = {}, {}, None
    if result == CallResult.reached and members:
        answered = st.toggle("Antwort der Praxis jetzt erfassen", value=True, key="dlg_answered")
        if answered:
            for m in members:
                c = st.columns([3, 2, 2])
                c[0].text(m.label)
                outcomes[m.search_id] = c[1].selectbox(m.label, ANSWER_OUTCOMES, format_func=lambda o: o.label,
                                                       key=f"dlg_outcome_{m.search_id}", index=len(ANSWER_OUTCOMES) - 1,
                                                       label_visibility="collapsed")
                if outcomes[m.search_id] == Outcome.waitlisted:
                    until[m.search_id] = c[2].date_input("Voraussichtlich ab", value=None, format="DD.MM.YYYY",
                                                         key=f"dlg_until_{m.search_id}")
    if result == CallResult.callback:
        c = st.columns(2)
        d = c[0].date_input("Rückruf am", value=today + timedelta(days=1), format="DD.MM.YYYY", key="dlg_cb_day")
        t = c[1].time_input("um", value=datetime(2000, 1, 1, 10, 0).time(), step=300, key="dlg_cb_time")
        callback_at = datetime.combine(d, t, tzinfo=BERLIN)
    note = st.text_area("Notiz zu diesem Versuch", key="dlg_note", placeholder="z. B. Sekretariat: Frau Dr. ab 14 Uhr")
    if st.button("Speichern", type="primary", key="dlg_save"):
        try:
            # retried on a deadlock or serialization failure (the answer path, like Vermittlung);
            # the dialog keeps its input either way
            report = run_unit_of_work(lambda s: call_services.record_call_result(
                s, actor, call_id, result, now=context.now(), today=today, note=note,
                outcomes=outcomes or None, waitlist_until=until or None, callback_at=callback_at, settings=settings,
            ))
        except call_services.CallError as exc:
            st.error(str(exc))
            return
        except ConcurrentChange as exc:
            st.warning(md(exc), icon=":material/sync_problem:")
            return
        if report.next_call_id is not None:
            st.query_params["call"] = str(report.next_call_id)  # the list shows the next call right away
        _done(report.summary())


def move_dialog(call_id: int) -> None:
    c = st.columns(2)
    d = c[0].date_input("Neuer Tag", value=today + timedelta(days=1), format="DD.MM.YYYY", key="mv_day")
    t = c[1].time_input("um", value=datetime(2000, 1, 1, 10, 0).time(), step=300, key="mv_time")
    note = st.text_input("Grund", key="mv_note")
    if st.button("Verschieben", type="primary", key="mv_save"):
        try:
            with unit_of_work() as s:
                call = call_services.reschedule_call(s, actor, call_id, datetime.combine(d, t, tzinfo=BERLIN),
                                                     now=context.now(), note=note)
                when = call.scheduled_start
        except call_services.CallError as exc:
            st.error(str(exc))
            return
        _done(f"Anruf verschoben auf {format_datetime(when)}.")


def cancel_dialog(call_id: int) -> None:
    st.write("Der Anruf wird von der Liste genommen; es wird kein neuer Versuch geplant.")
    reason = st.text_input("Grund", key="cx_reason", placeholder="z. B. Antwort kam per Fax")
    if st.button("Absagen", type="primary", key="cx_save"):
        try:
            with unit_of_work() as s:
                call_services.cancel_call(s, actor, call_id, now=context.now(), reason=reason)
        except call_services.CallError as exc:
            st.error(str(exc))
            return
        _done("Anruf abgesagt.")


wanted = st.query_params.get("call")
linked = None
if wanted and wanted.isdigit() and int(wanted) not in {r.id for r in overdue + day_list.rows}:
    with read_session() as s:
        linked = call_views.call_row(s, actor, int(wanted), today=today, settings=settings)

with tab_day:
    if linked is not None:
        st.markdown(f"**Verlinkter Anruf am {format_date(linked.start)}**")
        _details(linked)
    if overdue:
        st.warning(f"{format_number(len(overdue))} überfällige Anrufe von früheren Tagen – bitte zuerst erledigen "
                   "oder verschieben.", icon=":material/schedule:")
        st.dataframe(_table(overdue), hide_index=True, column_config=COLUMNS, key="calls_overdue_table", placeholder="–")
    if not day_list.rows and linked is None:
        st.info("Für diesen Tag stehen keine Anrufe auf der Liste. Nachfass-Anrufe plant der Hintergrunddienst "
                "stündlich; Telefon-Anfragen kommen beim Senden in der Vermittlung hierher.")
    elif day_list.rows or overdue:
        if day_list.rows:
            st.dataframe(_table(day_list.rows), hide_index=True, column_config=COLUMNS, key="calls_day_table", placeholder="–")
        choices = overdue + day_list.rows
        ids = [r.id for r in choices]
        by_id = {r.id: r for r in choices}
        first_open = next((r.id for r in choices if r.is_open), ids[0])
        start = int(wanted) if wanted and wanted.isdigit() and int(wanted) in by_id else first_open
        picked = st.selectbox(
            "Anruf", ids, index=ids.index(start), key="calls_pick",
            format_func=lambda i: f"{format_date(by_id[i].start)} {format_time(by_id[i].start)} "
                                  f"{by_id[i].therapist_ref} {by_id[i].therapist_name}",
        )
        _details(by_id[picked])

with tab_now:
    if not reachable:
        st.info("Gerade ist keine Praxis mit offenem Anliegen in ihrer Telefonzeit.")
    else:
        st.dataframe(pd.DataFrame([{
            "Therapeut:in": f"{r.therapist_ref} {r.therapist_name}",
            "Telefon": r.phone or "",
            "Wählen": f"tel:{r.phone.replace(' ', '')}" if r.phone else None,
            "Erreichbar bis": format_time(r.window_closes),
            "Anliegen": r.matter,
        } for r in reachable]), hide_index=True, column_config=COLUMNS, key="calls_now_table", placeholder="–")

with tab_week:
    monday = day - timedelta(days=day.weekday())
    with read_session() as s:
        week = call_views.week_view(s, actor, monday, mine=mine)
    cols = st.columns(7)
    for i, (d, lines) in enumerate(sorted(week.items())[:7]):
        with cols[i]:
            st.markdown(f"**{DAY_KEYS[d.weekday()]} {format_day_month(d)}**")
            st.caption(f"{format_number(len(lines))} Anrufe")
            if lines:
                st.text("\n".join(lines[:40]) + (f"\n… und {len(lines) - 40} weitere" if len(lines) > 40 else ""))

dialog_state = st.session_state.get(DIALOG)
if dialog_state and can_edit:
    kind, dialog_call = dialog_state["kind"], dialog_state["id"]
    if kind == "result":
        st.dialog("Ergebnis erfassen", width="large", on_dismiss=_close_dialog)(outcome_dialog)(dialog_call)
    elif kind == "move":
        st.dialog("Anruf verschieben", on_dismiss=_close_dialog)(move_dialog)(dialog_call)
    elif kind == "cancel":
        st.dialog("Anruf absagen", on_dismiss=_close_dialog)(cancel_dialog)(dialog_call)

if not can_edit:
    st.caption("Lesezugriff: Ergebnisse erfassen, verschieben und absagen können Koordinator:innen.")
st.caption(f"Stand {format_datetime(now)} · Telefonnummern als Link wählen direkt (tel:). "
           f"Ohne bekannte Telefonzeiten wird im Ersatzfenster {settings.CALL_FALLBACK_HOURS} angerufen. "
           f"Status der Anrufe: {', '.join(s.label for s in CallState)}.")
