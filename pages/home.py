"""Übersicht: what needs the coordinators today, with real figures from the database."""

import streamlit as st

from core.platform.db import read_session
from core.platform.formatting import format_number
from core.reports.overview import overview
from core.platform.runner import runner_status
from ui import context, layout
from ui.auth import require_actor

actor = require_actor()
layout.header("Übersicht", "Was heute ansteht: Platzsuchen, Anfragen, Postausgang und Anrufe auf einen Blick.")

with read_session() as s:
    o = overview(s, actor, today=context.today(), now=context.now())
    status = runner_status(s, now=context.now())

n = format_number
st.subheader("Platzsuchen")
c = st.columns(4)
c[0].metric("Aktive Platzsuchen", n(o.searches_active))
c[1].metric("Pausiert", n(o.searches_paused))
c[2].metric("Erfolgreich (30 Tage)", n(o.searches_successful_30d))
c[3].metric("Längste Wartezeit", "–" if o.longest_wait_days is None else f"{n(o.longest_wait_days)} Tage")

st.subheader("Therapeut:innen und Anfragen")
c = st.columns(4)
c[0].metric("Aktive Therapeut:innen", n(o.therapists_active))
c[1].metric("In Abkühlungsphase", n(o.therapists_cooling))
c[2].metric("Anfragen warten auf Antwort", n(o.inquiries_awaiting))
c[3].metric("Beantwortet (7 Tage)", n(o.inquiries_answered_7d))

st.subheader("Heute zu tun")
c = st.columns(4)
c[0].metric("Anrufe heute", n(o.calls_today))
c[0].page_link("pages/calls.py", label="Zur Anrufliste", icon=":material/call:")
c[1].metric("Überfällige Anrufe", n(o.calls_overdue))
if o.calls_overdue:
    c[1].page_link("pages/calls.py", label="Überfällige ansehen", icon=":material/schedule:")
c[2].metric("E-Mails in Warteschlange", n(o.emails_queued))
c[3].metric("Fehlgeschlagene E-Mails", n(o.emails_failed))
todo = []
if o.conflicts_open:
    todo.append(f"**{n(o.conflicts_open)}** {'Konflikt' if o.conflicts_open == 1 else 'Konflikte'} (doppelte Zusage) zu klären")
if o.nightly_suggestions:
    todo.append(f"**{n(o.nightly_suggestions)}** {'Vorschlag' if o.nightly_suggestions == 1 else 'Vorschläge'} der Nacht zur Freigabe")
if o.inquiries_draft:
    todo.append(f"**{n(o.inquiries_draft)}** {'Anfrage-Entwurf wartet' if o.inquiries_draft == 1 else 'Anfrage-Entwürfe warten'} auf das Senden")
if todo:
    st.info("  \n".join(todo), icon=":material/task_alt:")
    st.page_link("pages/matching.py", label="Zur Vermittlung", icon=":material/handshake:")
inbox_todo = []
if o.replies_waiting:
    inbox_todo.append(f"**{n(o.replies_waiting)}** {'Antwort wartet' if o.replies_waiting == 1 else 'Antworten warten'} im Posteingang auf das Erfassen")
if o.inbox_unassigned:
    inbox_todo.append(f"**{n(o.inbox_unassigned)}** {'Nachricht' if o.inbox_unassigned == 1 else 'Nachrichten'} im Posteingang nicht zugeordnet")
if inbox_todo:
    st.info("  \n".join(inbox_todo), icon=":material/inbox:")
    st.page_link("pages/inbox.py", label="Zum Posteingang", icon=":material/inbox:")

st.subheader("Hintergrunddienst")
if status.alive:
    st.success(status.label)
else:
    st.warning(status.label + " – E-Mails werden nicht versendet und Fristen nicht geprüft, solange er nicht läuft.")
st.caption(f"{n(o.patients_total)} Patient:innen insgesamt. Entfernungen sind Luftlinie.")
