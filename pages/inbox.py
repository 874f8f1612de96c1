"""Posteingang: replies, bounces and auto-replies the job fetched from the mailbox, with the
inquiry they belong to; assign, dismiss, and "Antwort erfassen" right beside a reply.
Queries, rules and actions live in core.inbox; reply text is shown as text, HTML only
sanitised, never for roles without access to health data."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.inbox import services as inbox_services
from core.inbox import views as inbox_views
from core.inquiries.loading import InquiryError
from core.privacy import reads
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_date, format_datetime, format_number
from core.platform.permissions import Permission
from core.platform.runner import runner_status
from core.platform.vocab import PAGE_TITLES, InboxKind, InboxState, Outcome
from core.matching import rules as matching_rules
from ui import context, layout
from ui import registry_view as rv
from ui.auth import require_actor
from ui.selection import ID_COLUMN

actor = require_actor()
settings = context.settings()
can_edit = actor.can(Permission.edit)
TOAST = "inbox_toast"
PAGE_SIZE = rv.PAGE_SIZE

layout.header(
    PAGE_TITLES["inbox"],
    "Antworten, Rückläufer und Abwesenheitsnotizen aus dem Postfach – neben der Anfrage, zu der sie gehören.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(msg, icon=":material/check_circle:")

how_to = inbox_views.mailbox_text(settings)
if how_to:
    st.info(how_to, icon=":material/mail_lock:")
else:
    with read_session() as s:
        status = runner_status(s, now=context.now(), include_runs=False)
    st.caption(f"{inbox_views.mailbox_description(settings)} · {status.label}")


def _done(message: str) -> None:
    st.session_state[TOAST] = message
    st.rerun()


now = context.now()
today = context.today()
with read_session() as s:
    counts = inbox_views.inbox_counts(s, actor)

tab = st.segmented_control(
    "Bereich", list(inbox_views.TABS), default="new", key="inbox_tab",
    format_func=lambda k: f"{inbox_views.TABS[k]} ({format_number(counts[k])})",
) or "new"
EMPTY = {
    "new": "Keine neuen Nachrichten. Der Hintergrunddienst holt neue Post alle paar Minuten ab.",
    "assigned": "Noch keine Nachricht einer Anfrage oder Patient:in zugeordnet.",
    "unassigned": "Alles zugeordnet – hier erscheinen Nachrichten, die zu keiner Anfrage passen.",
    "bounces": "Keine Rückläufer.",
    "all": "Noch keine Nachrichten empfangen.",
}

rv.reset_page_on_change(tab, state_key="inbox_tab_seen", page_key="inbox_page")
page_no = rv.current_page("inbox_page")
with read_session() as s:
    rows, total = inbox_views.list_messages(s, actor, tab, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
st.caption(f"{format_number(total)} {'Nachricht' if total == 1 else 'Nachrichten'} · {inbox_views.TABS[tab]}")


def _table(rows: list[inbox_views.InboxRow]) -> list[int]:
    records = [{
        ID_COLUMN: r.id,
        "Eingang": format_datetime(r.received_at),
        "Art": rv.badge_list(r.kind),
        "Status": rv.badge_list(r.state),
        "Von": r.sender,
        "Betreff": r.subject,
        "Zuordnung": r.reference_text,
        "Anhänge": r.attachments,
    } for r in rows]
    table = rv.frame(records, ints=[ID_COLUMN, "Anhänge"])
    event = st.dataframe(
        table, key=f"inbox_table_{tab}", on_select="rerun", selection_mode="single-row", hide_index=True,
        placeholder="–", width="stretch",
        column_config={
            ID_COLUMN: None,
            "Art": rv.state_column("Art", InboxKind, width="medium"),
            "Status": rv.state_column("Status", InboxState, width="small"),
        },
    )
    picked = [int(table.iloc[i][ID_COLUMN]) for i in (event.selection.rows if event is not None else [])]
    if picked:
        st.query_params["nachricht"] = str(picked[0])
        return picked
    raw = st.query_params.get("nachricht")  # a deep link (or the last selection)
    return [int(raw)] if raw and raw.isdigit() else []


def _facts(d: inbox_views.InboxDetail) -> None:
    r = d.row
    badges = [layout.badge_md(r.kind), layout.badge_md(r.state), layout.badge_md(r.match)]
    st.markdown(" ".join(badges))
    facts = [f"Eingang {format_datetime(r.received_at)}"]
    if r.sent_at:
        facts.append(f"gesendet {format_datetime(r.sent_at)}")
    if r.reference:
        facts.append(f"gehört zu {r.reference}" + (f" ({d.inquiry_status_text})" if d.inquiry_status_text else ""))
    st.caption(" · ".join(facts))
    # sender and subject are free text: shown as text, never as Markdown
    sender = r.sender if not d.from_address or d.from_address in r.sender else f"{r.sender} <{d.from_address}>"
    st.text(f"Von: {sender}\nBetreff: {r.subject}")


def _kind_notes(d: inbox_views.InboxDetail) -> None:
    r = d.row
    if r.reject_reason:
        st.warning(f"Nachricht nicht lesbar: {r.reject_reason}")
    if r.kind == InboxKind.bounce:
        parts = ["Rückläufer: Die E-Mail wurde nicht zugestellt."]
        if d.bounce_recipient:
            parts.append(f"Empfänger {d.bounce_recipient}.")
        if r.bounce_status:
            parts.append(f"Status {r.bounce_status}.")
        st.error(" ".join(parts))
        if d.bounce_diagnostic:
            st.text(f"Antwort des Mailservers: {d.bounce_diagnostic}")
    if r.kind == InboxKind.auto_reply:
        back = f" Zurück ab {format_date(r.return_date)}; das Nachfassen wird frühestens dann geplant." if r.return_date else ""
        st.info(f"Automatische Antwort (Abwesenheitsnotiz).{back}", icon=":material/beach_access:")
    if d.address_invalid:
        st.warning(f"Die E-Mail-Adresse der Therapeut:in ist als ungültig markiert ({d.address_invalid}). "
                   "Bis sie korrigiert ist, gehen keine E-Mails an sie; die Anfrage wird telefonisch nachgefasst.")
    if d.warnings and d.can_see_body:
        st.caption("Hinweise beim Lesen: " + "; ".join(d.warnings[:5]))


def _body(d: inbox_views.InboxDetail) -> None:
    if not d.can_see_body:
        st.info("Inhalte und Absenderadressen sind für Ihre Rolle nicht sichtbar (sie können Gesundheitsdaten enthalten).")
        return
    with unit_of_work() as s:  # a reply may carry health data: reading it is audited
        reads.record_read(s, actor, "reply", d.row.id, now=context.now(), patient_id=d.row.patient_id)
    text_tab, html_tab = st.tabs(["Text", "HTML-Ansicht (bereinigt)"])
    with text_tab:
        st.code(d.body_text or "(kein Text)", language=None, wrap_lines=True)
        if d.quoted_text:
            with st.expander("Zitierter Verlauf"):
                st.code(d.quoted_text, language=None, wrap_lines=True)
    with html_tab:
        if d.body_html:
            st.caption("Ohne Skripte, eingebettete Seiten, Formulare und Bilder von außen.")
            st.html(d.body_html)
        else:
            st.caption("Diese Nachricht hat keinen HTML-Teil.")
    if d.attachments:
        st.markdown("**Anhänge** (nur aufgelistet, nicht geöffnet)")
        st.dataframe(
            rv.frame([{"Name": a.get("name", ""), "Typ": a.get("type", ""),
                       "Größe": f"{format_number(max(1, round(int(a.get('size', 0)) / 1024)))} KB"} for a in d.attachments]),
            hide_index=True, width="stretch", key=f"inbox_att_{d.row.id}", placeholder="–",
        )


def _answer_form(d: inbox_views.InboxDetail) -> None:
    r = d.row
    options = list(matching_rules.ANSWER_OUTCOMES)
    with st.form(f"inbox_answer_{r.id}"):
        st.markdown(f"**Antwort erfassen** für {r.reference}")
        if d.suggested:
            st.caption("Vorausgefüllt aus der Nachricht (Absage wegen Kapazität) – bitte prüfen.")
        choices: dict[int, Any] = {}
        for m in d.answer_members:
            label = f"{m.position}. {m.patient_name}" + (" (zurückgezogen)" if m.withdrawn else "")
            opts: list[Any] = ([None] if m.withdrawn else []) + options
            pre = d.suggested.get(m.search_id)
            index = opts.index(pre) if pre in opts else (0 if m.withdrawn else None)
            choices[m.search_id] = st.selectbox(
                label, opts, index=index, key=f"inbox_outcome_{r.id}_{m.search_id}", placeholder="Ergebnis wählen",
                format_func=lambda o: "– nicht genannt" if o is None else Outcome(o).label,
            )
        submitted = st.form_submit_button("Antwort speichern", type="primary")
    if submitted:
        given = {sid: o for sid, o in choices.items() if o is not None}
        missing = [m for m in d.answer_members if not m.withdrawn and m.search_id not in given]
        if missing:
            st.error("Bitte für jede Patient:in ein Ergebnis wählen (fehlt: " + ", ".join(m.patient_name for m in missing) + ").")
            return
        try:
            with unit_of_work() as s:
                report = inbox_services.record_from_reply(s, actor, r.id, given, today=today, now=context.now(),
                                                          settings=settings)
            _done(report.summary())
        except (inbox_services.InboxError, InquiryError) as exc:
            st.error(str(exc))


def _actions(d: inbox_views.InboxDetail) -> None:
    r = d.row
    c1, c2 = st.columns(2)
    with c1:
        with st.form(f"inbox_assign_{r.id}", border=True):
            ref = st.text_input("Zuordnen zu", key=f"inbox_ref_{r.id}", placeholder="Anfrage A253 oder Patient:in P17")
            if st.form_submit_button("Zuordnen", icon=":material/link:"):
                try:
                    kind, number = inbox_services.parse_reference(ref)
                    with unit_of_work() as s:
                        inbox_services.assign(s, actor, r.id, now=context.now(),
                                              **({"inquiry_id": number} if kind == "inquiry" else {"patient_id": number}))
                    _done(f"Nachricht {ref.strip().upper()} zugeordnet.")
                except inbox_services.InboxError as exc:
                    st.error(str(exc))
    with c2:
        if r.state != InboxState.dismissed:
            with st.form(f"inbox_dismiss_{r.id}", border=True):
                note = st.text_input("Notiz (optional)", key=f"inbox_note_{r.id}", placeholder="z. B. Werbung, telefonisch geklärt")
                if st.form_submit_button("Verwerfen (nichts zu tun)", icon=":material/archive:"):
                    try:
                        with unit_of_work() as s:
                            inbox_services.dismiss(s, actor, r.id, now=context.now(), note=note)
                        _done("Nachricht als erledigt abgelegt.")
                    except inbox_services.InboxError as exc:
                        st.error(str(exc))


def _detail(inbox_id: int) -> None:
    try:
        with read_session() as s:
            d = inbox_views.message_detail(s, actor, inbox_id, today=today, now=now, settings=settings)
    except inbox_services.InboxError as exc:
        st.info(str(exc))
        return
    with st.container(border=True):
        _facts(d)
        _kind_notes(d)
        if d.can_record:
            left, right = st.columns([3, 2])
            with left:
                _body(d)
            with right:
                _answer_form(d)
        else:
            _body(d)
        if d.can_edit:
            _actions(d)


if not rows:
    st.info(EMPTY[tab])
    raw = st.query_params.get("nachricht")  # a deep link (e.g. from the inquiry) opens its mail anyway
    if raw and raw.isdigit():
        _detail(int(raw))
else:
    picked = _table(rows)
    rv.pager(total, key="inbox_page")
    if picked:
        _detail(picked[0])
    else:
        st.caption("Zeile wählen, um die Nachricht zu lesen.")
