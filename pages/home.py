"""Übersicht: what needs doing now, how we are doing (with the previous period), the pictures,
the job runner, and one search box. Everything comes from core.reports; this page only lays out."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.platform.db import read_session
from core.platform.formatting import format_date, format_datetime, format_number
from core.platform.vocab import PAGE_TITLES, REPORT_CHARTS, REPORT_FIGURES, REPORT_TODOS, SEARCH_HIT_KINDS, JobResult
from core.reports import lookup
from core.reports.figures import Filters, KeyFigure
from core.reports.overview import cached_home_view, runner_health
from core.reports.periods import CUSTOM, PERIOD_CHOICES, PeriodError, normalise_region, period_for
from core.platform.references import patient_ref
from ui import context, layout, report_charts
from ui import registry_view as rv
from ui.auth import require_actor
from ui.text import md

actor = require_actor()
today, now = context.today(), context.now()
layout.header(PAGE_TITLES["home"], "Was heute ansteht, wie die Vermittlung läuft und wo es hakt – mit Vergleich zum Vorzeitraum.")

# Page keys of vocab.PAGE_TITLES → page files (only pages that exist on this installation).
PAGES = {"calls": "pages/calls.py", "matching": "pages/matching.py", "outbox": "pages/outbox.py", "inbox": "pages/inbox.py", "imports": "pages/imports.py",
         "patients": "pages/patients.py",
         "therapists": "pages/therapists.py", "map": "pages/map.py"}
HIT_TARGETS = {"patient": ("patients", "patient"), "search": ("patients", "patient"),
               "therapist": ("therapists", "therapist"), "inquiry": ("matching", "mt_inquiry")}
HIT_ICONS = {"patient": ":material/personal_injury:", "search": ":material/search:",
             "therapist": ":material/psychology:", "inquiry": ":material/mail:"}

# --------------------------------------------------------------------------- search box

query = st.text_input("Suchen", key="home_search", placeholder="Name, Nummer (P152, T81, S150, A253), E-Mail oder Telefon",
                      icon=":material/search:", label_visibility="collapsed")
if query.strip():
    with read_session() as s:
        found = lookup.find(s, actor, query)
    if found.note:
        st.info(found.note, icon=":material/lock:")
    elif not found.hits:
        st.caption(f"Nichts gefunden für „{md(found.query)}“. Nummern mit Buchstaben eingeben (P152, A253) oder einen Namensteil.")
    else:
        for hit in found.hits:
            page, param = HIT_TARGETS[hit.kind]
            params = {param: str(hit.id)}
            if hit.kind == "inquiry":
                params.update({"mt_view": "inquiries", "mt_filter": "all"})
            st.page_link(PAGES[page], label=f"{hit.reference} · {md(hit.title)} ({SEARCH_HIT_KINDS[hit.kind]})"
                         + (f" – {md(hit.detail)}" if hit.detail else ""), icon=HIT_ICONS[hit.kind], query_params=params)

# --------------------------------------------------------------------------- filters

c1, c2, c3 = st.columns([2, 2, 1])
period_key = c1.selectbox("Zeitraum", list(PERIOD_CHOICES), format_func=PERIOD_CHOICES.get, key="home_period",
                          bind="query-params") or "4w"
start = end = None
if period_key == CUSTOM:
    picked = c2.date_input("Von – bis", value=(today - timedelta(days=27), today), max_value=today, format="DD.MM.YYYY",
                           key="home_range")
    if isinstance(picked, (tuple, list)) and len(picked) == 2:
        start, end = picked
region_text = c3.text_input("PLZ-Region", key="home_region", bind="query-params", max_chars=5, placeholder="z. B. 10")
try:
    period = period_for(period_key, today=today, start=start, end=end)
    region = normalise_region(region_text)
except PeriodError as exc:
    st.warning(str(exc))
    st.stop()
flt = Filters(period, region)

with read_session() as s:
    view = cached_home_view(s, actor, flt, today=today, now=now)
    health = runner_health(s, actor, now=now)
st.caption(
    f"Zeitraum {period.label()} · Vergleich mit {period.previous().label()} · "
    + (f"PLZ-Region {region}…" if region else "ganz Deutschland")
    + f" · berechnet {format_datetime(view.computed_at)}"
)

# --------------------------------------------------------------------------- Heute zu tun

st.subheader("Heute zu tun")
if not view.todos:
    st.success("Nichts offen: keine Konflikte, Fehler oder Entwürfe, jede Platzsuche steckt in einer Anfrage.",
               icon=":material/task_alt:")
for todo in view.todos:
    singular, plural = REPORT_TODOS[todo.key]
    label = f"{format_number(todo.count)} {singular if todo.count == 1 else plural}"
    icon = ":material/priority_high:" if todo.urgent else ":material/arrow_forward:"
    if todo.target.page in PAGES:
        st.page_link(PAGES[todo.target.page], label=label, icon=icon, query_params=todo.target.params or None)
    else:
        st.markdown(label)
    if todo.searches:
        st.caption("Am längsten wartend:")
        with st.container(horizontal=True):
            for w in todo.searches:
                st.page_link(PAGES["patients"], label=f"{patient_ref(w.patient_id)} {md(w.patient_name)} – {format_number(w.wait_days)} Tage",
                             query_params={"patient": str(w.patient_id)})

# --------------------------------------------------------------------------- Kennzahlen


def _value(f: KeyFigure) -> str:
    if f.value is None:
        return "–"
    if f.kind == "rate":
        return f"{format_number(100 * f.value, 0)} %"
    if f.kind == "days":
        return f"{format_number(f.value, 0 if float(f.value).is_integer() else 1)} Tage"
    return format_number(f.value)


def _delta(f: KeyFigure) -> str | None:
    d = f.change
    if d is None:
        return None
    sign = "+" if d > 0 else "-" if d < 0 else "±"
    size = abs(d)
    if f.kind == "rate":
        text = f"{format_number(100 * size, 0)} Pp."  # Prozentpunkte
    elif f.kind == "days":
        text = f"{format_number(size, 0 if float(size).is_integer() else 1)} Tage"
    else:
        text = format_number(size)
    return f"{sign}{text} ggü. Vorzeitraum"


st.subheader("Kennzahlen")
for row in (view.figures[:4], view.figures[4:]):
    cols = st.columns(4)
    for col, f in zip(cols, row):
        label, help_text = REPORT_FIGURES[f.key]
        previous = "" if not f.comparable else f" Vorzeitraum: {_value(KeyFigure(f.key, f.previous, None, f.kind))}."
        color = "off" if f.neutral else "inverse" if f.lower_is_better else "normal"
        col.metric(label, _value(f), delta=_delta(f), delta_color=color,
                   help=help_text + previous, border=True)

# --------------------------------------------------------------------------- charts

st.subheader("Verläufe")
charts = view.charts
left, right = st.columns(2)
left.altair_chart(report_charts.wait_chart(charts.wait), width="stretch")
right.altair_chart(report_charts.placements_chart(charts.placements), width="stretch")
left, right = st.columns(2)
left.altair_chart(report_charts.answers_chart(charts.answers), width="stretch")
right.altair_chart(report_charts.funnel_chart(charts.funnel), width="stretch")

st.markdown(f"**{REPORT_CHARTS['regions_title']}**")
if not charts.regions:
    st.info("Keine Platzsuchen in diesem Zeitraum und dieser Region. Wählen Sie oben einen längeren Zeitraum oder keine Region.")
else:
    table = rv.frame(
        [{REPORT_CHARTS["region"]: f"{r.region}…", REPORT_CHARTS["region_placements"]: r.placements,
          REPORT_CHARTS["region_active"]: r.active, REPORT_CHARTS["region_median_wait"]: r.median_wait_days}
         for r in charts.regions],
        ints=[REPORT_CHARTS["region_placements"], REPORT_CHARTS["region_active"]],
    )
    event = st.dataframe(
        table, key="home_regions", on_select="rerun", selection_mode="single-row", hide_index=True, width="stretch",
        height=min(38 + 35 * len(table), 320), placeholder="–",
        column_config={
            REPORT_CHARTS["region_placements"]: st.column_config.ProgressColumn(
                REPORT_CHARTS["region_placements"], format="%d", min_value=0,
                max_value=max(1, max(r.placements for r in charts.regions))),
            REPORT_CHARTS["region_median_wait"]: st.column_config.NumberColumn(REPORT_CHARTS["region_median_wait"], format="%.0f"),
        },
    )
    picked = event.selection.rows if event is not None else []
    if picked:
        chosen = charts.regions[picked[0]].region
        st.page_link(PAGES["map"], label=f"PLZ-Region {chosen}… auf der Karte zeigen", icon=":material/map:",
                     query_params={"map_region": chosen})
    else:
        st.caption("Wählen Sie eine Zeile, um die Region auf der Karte zu öffnen.")

# --------------------------------------------------------------------------- Hintergrunddienst

st.subheader("Hintergrunddienst")
if health.alive:
    standby = f" · {format_number(health.standby_count)} in Bereitschaft" if health.standby_count else ""
    st.success(health.label + standby, icon=":material/sync:")
elif not health.warnings:
    st.warning(health.label, icon=":material/sync:")
for warning in health.warnings:
    st.warning(warning, icon=":material/warning:")
if health.jobs:
    jobs = rv.frame([
        {"Aufgabe": j.title, "Ergebnis": rv.badge_list(j.result) if j.result else [],
         "Gestartet": format_datetime(j.started_at) if j.started_at else "–",
         "Beendet": format_datetime(j.finished_at) if j.finished_at else "–", "Zusammenfassung": j.summary or "",
         **({"Fehler": j.error or ""} if health.errors_visible else {})}
        for j in health.jobs
    ])
    st.dataframe(jobs, hide_index=True, width="stretch", key="home_jobs", placeholder="–",
                 column_config={"Ergebnis": rv.state_column("Ergebnis", JobResult, width="small")})
else:
    st.caption("Noch keine Läufe aufgezeichnet.")
st.caption(f"Stand {format_date(today)}. Die Zahlen werden kurz zwischengespeichert und nach jeder Änderung neu berechnet.")
