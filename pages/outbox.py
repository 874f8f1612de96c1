"""Postausgang: drafts, queue, sent and failed e-mails with preview and actions, a live
panel of the queue, the local mail folder, messages to patients and practice forms.
Rules, SQL and rendering live in core.outbox."""

from __future__ import annotations


import streamlit as st

from core.mail import templates as mt
from core.mail import documents
from core.mail import outbox
from core.mail import views as outbox_views
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import count_of, format_datetime, format_number, plural
from core.platform.references import parse_ref, patient_ref, ref_hint, therapist_ref
from core.mail.rules import OutboxError
from core.platform.permissions import Permission
from core.platform.runner import runner_status
from core.platform.vocab import PAGE_TITLES, EmailState
from core.privacy import reads
from ui import context, layout
from ui import registry_view as rv
from ui.auth import require_actor
from ui.selection import ID_COLUMN
from ui.text import md

actor = require_actor()
settings = context.settings()
can_edit = actor.can(Permission.edit)
show_sensitive = actor.can(Permission.view_sensitive)
TOAST = "outbox_toast"

layout.header(
    PAGE_TITLES["outbox"],
    "Alle E-Mails an Therapeut:innen und Patient:innen: Entwürfe prüfen und freigeben, Warteschlange und Fehler im Blick.",
)
if msg := st.session_state.pop(TOAST, None):
    st.toast(msg, icon=":material/check_circle:")
st.caption(outbox_views.delivery_mode_text(settings))


def _done(message: str) -> None:
    st.session_state[TOAST] = md(message)
    st.rerun()


# --------------------------------------------------------------------------- live panel


@st.fragment(run_every=5)
def live_panel() -> None:
    now = context.now()
    with read_session() as s:
        panel = outbox_views.queue_panel(s, actor, now=now)
        status = runner_status(s, now=now, include_runs=False)
    with st.container(border=True):
        c = st.columns(6)
        c[0].metric("Jetzt fällig", format_number(panel.queued_due))
        c[1].metric("Wochengrenze", format_number(panel.waiting_limit),
                    help=f"Höchstens eine E-Mail pro Therapeut:in in {settings.EMAIL_MIN_INTERVAL_DAYS} Tagen")
        c[2].metric("Neuer Versuch geplant", format_number(panel.retrying))
        c[3].metric("Wird gesendet", format_number(panel.sending + panel.stuck))
        c[4].metric("Fehlgeschlagen", format_number(panel.failed))
        c[5].metric("Gesendet (24 Std.)", format_number(panel.sent_24h))
        parts = [status.label]
        parts.append(f"zuletzt gesendet {format_datetime(panel.last_sent_at)}" if panel.last_sent_at else "noch nichts gesendet")
        if panel.next_at:
            parts.append(f"nächste geplante E-Mail {format_datetime(panel.next_at)}")
        if panel.stuck:
            parts.append(f"{format_number(panel.stuck)} unterbrochen ({'wird' if panel.stuck == 1 else 'werden'} erneut versucht)")
        st.caption(" · ".join(parts) + f" · aktualisiert {format_datetime(now)}")
        if not status.alive and (panel.queued_due or panel.stuck):
            st.warning("Der Hintergrunddienst läuft nicht – fällige E-Mails werden erst gesendet, wenn er wieder läuft.")


live_panel()

# --------------------------------------------------------------------------- lists

search = st.text_input("Suche", key="outbox_search", bind="query-params",
                       placeholder="Betreff, Empfänger:in oder Anfrage (z. B. A253)")
now = context.now()
with read_session() as s:
    counts = outbox_views.outbox_counts(s, actor)

TAB_LABELS = {"drafts": "Entwürfe", "queued": "Warteschlange", "sent": "Gesendet", "failed": "Fehlgeschlagen",
              "cancelled": "Storniert"}
EMPTY = {
    "drafts": "Keine Entwürfe. Neue Anfragen und Nachrichten erscheinen hier zur Prüfung, bevor sie gesendet werden.",
    "queued": "Die Warteschlange ist leer – alles Freigegebene ist gesendet.",
    "sent": "Noch keine gesendeten E-Mails.",
    "failed": "Keine fehlgeschlagenen E-Mails.",
    "cancelled": "Keine stornierten E-Mails.",
}


def _table(tab: str, rows: list[outbox_views.EmailRow]):
    records = []
    for r in rows:
        rec = {ID_COLUMN: r.id, "Status": rv.badge_list(r.state)}
        if tab == "drafts":
            rec["Erstellt"] = format_datetime(r.created_at)
        elif tab == "queued":
            rec["Geht am"] = format_datetime(r.next_attempt_at) if r.next_attempt_at else "–"
        elif tab == "sent":
            rec["Gesendet"] = format_datetime(r.sent_at)
        elif tab == "failed":
            rec["Fehler"] = r.last_error
        else:
            rec["Erstellt"] = format_datetime(r.created_at)
        rec.update({
            "An": r.recipient + (f" <{r.to_address}>" if r.to_address else ""),
            "Betreff": r.subject,
            "Art": r.template_title,
            "Anfrage": r.inquiry_ref,
        })
        if tab == "queued":
            rec["Hinweis"] = r.waiting
        if tab in ("sent", "failed"):
            rec["Versuche"] = r.attempts
        records.append(rec)
    table = rv.frame(records, ints=[ID_COLUMN, "Versuche"])
    config = {
        ID_COLUMN: None,
        "Status": rv.state_column("Status", EmailState, width="medium"),
    }
    multi = tab == "drafts" and can_edit
    event = st.dataframe(
        table, key=f"outbox_table_{tab}", on_select="rerun", selection_mode="multi-row" if multi else "single-row",
        hide_index=True, placeholder="–", width="stretch", column_config=config,
    )
    picked = [int(table.iloc[i][ID_COLUMN]) for i in (event.selection.rows if event is not None else [])]
    if len(picked) == 1:
        if st.query_params.get("email") != str(picked[0]):
            st.query_params["email"] = str(picked[0])
    elif not picked:
        raw = st.query_params.get("email")  # a deep link (or the last selection) to one mail
        if raw and raw.isdigit() and int(raw) in {r.id for r in rows}:
            picked = [int(raw)]
    return picked


def _detail(email_id: int, tab: str) -> None:
    if not show_sensitive:
        st.info("Inhalte und Empfängeradressen sind für Ihre Rolle nicht sichtbar (sie können Gesundheitsdaten enthalten).")
        return
    with read_session() as s:
        try:
            d = outbox_views.email_detail(s, actor, email_id, now=now, settings=settings)
        except OutboxError as exc:
            st.warning(md(exc))
            return
    r = d.row
    # the body is on screen: patient mails and inquiry mails describe patients – the read is audited
    with unit_of_work() as s:
        reads.record_read(s, actor, "email", r.id, now=context.now(), patient_id=d.patient_id)
    with st.container(border=True):
        st.markdown(f"#### {md(r.subject)}")
        st.markdown(
            f"{layout.badge_md(r.state)} · {r.template_title} · an **{md(r.recipient)}** {md('<' + (r.to_address or '') + '>')}"
            + (f" · Anfrage {r.inquiry_ref}" if r.inquiry_ref else "")
        )
        facts = [f"Erstellt {format_datetime(r.created_at)}"]
        if r.queued_at:
            facts.append(f"freigegeben {format_datetime(r.queued_at)}")
        if r.sent_at:
            facts.append(f"gesendet {format_datetime(r.sent_at)}")
        if r.attempts:
            facts.append(count_of(r.attempts, "attempt"))
        if d.message_id:
            facts.append(f"Message-ID {md(d.message_id)}")
        st.caption(" · ".join(facts))
        if r.waiting:
            st.info(md(r.waiting), icon=":material/schedule:")
        if r.last_error:
            (st.error if r.state == EmailState.failed else st.warning)(f"Antwort des Mailservers: {md(r.last_error)}")
        if d.attachments:
            st.markdown("Anhänge: " + ", ".join(md(a) for a in d.attachments))
        html_tab, text_tab = st.tabs(["Vorschau (HTML)", "Text"])
        with html_tab:
            st.html(d.body_html)
        with text_tab:
            st.code(d.body_text, language=None, wrap_lines=True)
        if can_edit:
            _actions(d, tab)


def _actions(d: outbox_views.EmailDetail, tab: str) -> None:
    r = d.row
    key = f"{tab}_{r.id}"
    cols = st.columns(2)
    if d.can_approve:
        with cols[0]:
            ok = st.checkbox(f"Ja, freigeben – die E-Mail geht an {md(r.to_address)}.", key=f"confirm_approve_{key}")
            if st.button("Freigeben", key=f"approve_{key}", type="primary", disabled=not ok, icon=":material/send:"):
                try:
                    with unit_of_work() as s:
                        e = outbox.approve(s, actor, r.id, context.now(), settings=settings)
                        when = e.next_attempt_at
                    later = when is not None and when > context.now()
                    _done("Freigegeben – " + (f"geht am {format_datetime(when)} (Wochengrenze)." if later else "geht mit dem nächsten Lauf."))
                except OutboxError as exc:
                    st.error(md(exc))
    if d.can_cancel:
        with cols[1]:
            ok = st.checkbox("Ja, stornieren – die E-Mail wird nicht gesendet.", key=f"confirm_cancel_{key}")
            if st.button("Stornieren", key=f"cancel_{key}", disabled=not ok, icon=":material/cancel:"):
                try:
                    with unit_of_work() as s:
                        outbox.cancel(s, actor, r.id, context.now())
                    _done("E-Mail storniert.")
                except OutboxError as exc:
                    st.error(md(exc))
    if d.can_retry:
        with cols[0]:
            if st.button("Erneut versuchen", key=f"retry_{key}", type="primary", icon=":material/replay:"):
                try:
                    with unit_of_work() as s:
                        outbox.retry(s, actor, r.id, context.now(), settings=settings)
                    _done("Wieder in der Warteschlange.")
                except OutboxError as exc:
                    st.error(md(exc))
    if d.can_resend:
        with cols[0]:
            ok = st.checkbox(f"Ja, noch einmal an {md(r.to_address)} senden.", key=f"confirm_resend_{key}")
            if st.button("Erneut senden", key=f"resend_{key}", disabled=not ok, icon=":material/forward_to_inbox:"):
                try:
                    with unit_of_work() as s:
                        copy = outbox.resend(s, actor, r.id, context.now(), settings=settings)
                        when = copy.next_attempt_at
                    later = when is not None and when > context.now()
                    _done("Kopie in der Warteschlange – " + (f"geht am {format_datetime(when)} (Wochengrenze)." if later else "geht mit dem nächsten Lauf."))
                except OutboxError as exc:
                    st.error(md(exc))
    if d.can_edit:
        with st.expander("Text bearbeiten"):
            with st.form(f"edit_{key}"):
                subject = st.text_input("Betreff", value=r.subject, max_chars=255, key=f"edit_subject_{key}")
                body = st.text_area("Text (ohne Fußzeile; sie wird angehängt)", value=d.editable_body, height=400,
                                    key=f"edit_body_{key}")
                st.caption("Die HTML-Fassung wird aus diesem Text neu erstellt.")
                if st.form_submit_button("Änderungen speichern"):
                    try:
                        with unit_of_work() as s:
                            outbox.edit_draft(s, actor, r.id, context.now(), subject=subject, body=body, settings=settings)
                        _done("Entwurf gespeichert.")
                    except OutboxError as exc:
                        st.error(md(exc))


tab_objects = st.tabs([f"{TAB_LABELS[t]} ({format_number(outbox_views.tab_count(counts, t))})" for t in TAB_LABELS])
for tab, container in zip(TAB_LABELS, tab_objects):
    with container:
        page_key = f"outbox_page_{tab}"
        rv.reset_page_on_change(search, state_key=f"outbox_filter_{tab}", page_key=page_key)
        page_no = rv.current_page(page_key)
        with read_session() as s:
            rows, total = outbox_views.list_emails(s, actor, tab, now=now, search=search or "",
                                             offset=(page_no - 1) * rv.PAGE_SIZE, limit=rv.PAGE_SIZE, settings=settings)
        if not rows:
            st.info(EMPTY[tab] if not search else "Keine E-Mail passt zur Suche.")
            continue
        st.markdown(f"**{count_of(total, 'email')}**" + (f" · Suche: {md(search)}" if search else ""))
        picked = _table(tab, rows)
        rv.pager(total, key=page_key)
        if tab == "drafts" and can_edit and len(picked) > 1:
            ok = st.checkbox(f"Ja, {plural(len(picked), 'Entwurf', 'Entwürfe')} freigeben.", key="confirm_approve_many")
            if st.button(f"{plural(len(picked), 'Entwurf', 'Entwürfe')} freigeben", key="approve_many", type="primary", disabled=not ok):
                try:
                    with unit_of_work() as s:
                        outbox.approve_many(s, actor, picked, context.now(), settings=settings)
                    _done(f"{plural(len(picked), 'Entwurf', 'Entwürfe')} freigegeben.")
                except OutboxError as exc:
                    st.error(md(exc))
        elif len(picked) == 1:
            _detail(picked[0], tab)
        else:
            st.caption("Wählen Sie eine Zeile für Vorschau und Aktionen" + (" (bei Entwürfen auch mehrere zum Freigeben)." if tab == "drafts" and can_edit else "."))

# --------------------------------------------------------------------------- local mail folder

if show_sensitive and settings.SMTP_MODE == "folder":
    mails = outbox_views.local_mailbox(actor, settings=settings, limit=30) or []
    with st.expander(f"Lokaler Mailordner ({format_number(len(mails))} neueste)", icon=":material/inbox:"):
        st.caption(f"So würden die E-Mails ankommen. Ordner: {settings.MAIL_FOLDER}")
        if not mails:
            st.info("Noch keine E-Mails im Ordner. Freigegebene E-Mails landen hier, sobald der Hintergrunddienst sie sendet.")
        else:
            choice = st.selectbox(
                "E-Mail", range(len(mails)), key="outbox_folder_pick",
                format_func=lambda i: md(f"{format_datetime(mails[i].date) if mails[i].date else '–'} · {mails[i].to} · {mails[i].subject}"),
            )
            m = mails[choice]
            st.caption(md(f"Message-ID {m.message_id}" + (f" · Anhänge: {', '.join(m.attachments)}" if m.attachments else "")))
            if m.html:
                st.html(m.html)
            else:
                st.code(m.text, language=None, wrap_lines=True)
            st.download_button("Als .eml herunterladen", m.raw, file_name=m.filename, mime="message/rfc822",
                               key="outbox_folder_download")

# --------------------------------------------------------------------------- new message to a patient, practice forms

if can_edit and show_sensitive:
    with st.expander("Nachricht an Patient:in erstellen", icon=":material/edit_note:"):
        kinds = list(mt.PATIENT_MESSAGE_CHOICES)
        with st.form("outbox_compose"):
            c1, c2 = st.columns(2)
            patient_text = c1.text_input(ref_hint("patient"), key="compose_patient", placeholder=patient_ref(152))
            kind = c2.selectbox("Nachricht", kinds, format_func=mt.template_title, key="compose_kind")
            therapist_text = c1.text_input(ref_hint("therapist") + " – bei „Therapieplatz gefunden“", key="compose_therapist",
                                           placeholder=therapist_ref(81),
                                           help="Leer: die in der Platzsuche vermittelte Therapeut:in.")
            message = st.text_area("Persönliche Zeilen (bei „Stand der Suche“)", key="compose_message")
            st.caption("Es entsteht ein Entwurf; Sie prüfen ihn oben unter „Entwürfe“ und geben ihn frei. "
                       "Formulare der Praxis werden bei „Therapieplatz gefunden“ angehängt.")
            if st.form_submit_button("Entwurf erstellen", type="primary"):
                patient_id = parse_ref(patient_text, "patient")
                therapist_id = parse_ref(therapist_text, "therapist") if (therapist_text or "").strip() else None
                if not patient_id:
                    st.error(f"{ref_hint('patient')}: bitte die Kennung der Patient:in angeben.")
                elif (therapist_text or "").strip() and therapist_id is None:
                    st.error(f"{ref_hint('therapist')}: bitte eine Kennung wie {therapist_ref(81)} angeben.")
                else:
                    try:
                        with unit_of_work() as s:
                            e = outbox.queue_patient_email(
                                s, actor, int(patient_id), kind, context.now(),
                                therapist_id=int(therapist_id) if therapist_id else None, message=message or "",
                                settings=settings,
                            )
                            name = e.to_name
                        _done(f"Entwurf für {name} erstellt.")
                    except OutboxError as exc:
                        st.error(md(exc))

    with st.expander("Formulare einer Praxis (PDF)", icon=":material/picture_as_pdf:"):
        doc_text = st.text_input(ref_hint("therapist"), key="docs_therapist", placeholder=therapist_ref(81))
        doc_therapist = parse_ref(doc_text, "therapist")
        if (doc_text or "").strip() and doc_therapist is None:
            st.error(f"{ref_hint('therapist')}: bitte eine Kennung wie {therapist_ref(81)} angeben.")
        if doc_therapist:
            with read_session() as s:
                brief = outbox_views.therapist_brief(s, actor, int(doc_therapist))
                docs = documents.list_therapist_documents(s, actor, int(doc_therapist)) if brief else []
            if brief is None:
                st.warning(f"Keine Therapeut:in mit der Kennung {therapist_ref(doc_therapist)}.")
            else:
                st.markdown(f"**{md(brief.name)}** ({therapist_ref(brief.id)}) – {plural(len(docs), 'Formular', 'Formulare')}; "
                            "sie werden an „Therapieplatz gefunden“ angehängt.")
                for doc in docs:
                    c1, c2 = st.columns([4, 1])
                    c1.markdown(f"{md(doc.filename)} · {format_number(doc.size_bytes / 1024, 0)} KB · {format_datetime(doc.uploaded_at)}")
                    if c2.button("Entfernen", key=f"doc_delete_{doc.id}"):
                        try:
                            with unit_of_work() as s:
                                documents.delete_therapist_document(s, actor, doc.id, context.now())
                            _done(f"{doc.filename} entfernt.")
                        except OutboxError as exc:
                            st.error(md(exc))
                upload = st.file_uploader("PDF hinzufügen (höchstens 10 MB)", type=["pdf"], key=f"doc_upload_{brief.id}",
                                          max_upload_size=10)
                if upload is not None and st.button("Hochladen", key=f"doc_save_{brief.id}", type="primary"):
                    try:
                        with unit_of_work() as s:
                            row = documents.add_therapist_document(s, actor, brief.id, upload.name, upload.getvalue(), context.now())
                        _done(f"{row.filename} gespeichert.")
                    except OutboxError as exc:
                        st.error(md(exc))
