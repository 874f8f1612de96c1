"""Importe: 116117 response files (upload, ZIP, watched folder, optional live fetch), the
runs with their counts and errors, and the review queue ("Änderungen prüfen") with diffs per
field. Reading, rules and writes live in core.imports."""

from __future__ import annotations

import streamlit as st

from core.imports import review, sources
from core.imports.review import FILTERS, ReviewError
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import format_datetime, format_number
from core.platform.permissions import Permission
from core.platform.vocab import PAGE_TITLES
from ui import context, layout
from ui import registry_view as rv
from ui.auth import require_actor
from ui.selection import ID_COLUMN

actor = require_actor()
settings = context.settings()
TOAST = "imports_toast"
PAGE_SIZE = 50

layout.header(
    PAGE_TITLES["imports"],
    "Therapeut:innen aus der Arztsuche 116117: Antwortdateien hochladen, Änderungen prüfen und übernehmen. "
    "Nichts wird ohne Ihre Prüfung übernommen; von Hand geänderte Felder werden nie überschrieben.",
)
if not actor.can(Permission.edit):
    st.info("Importe sind Koordinator:innen und Administrator:innen vorbehalten.")
    st.stop()
if msg := st.session_state.pop(TOAST, None):
    st.toast(msg, icon=":material/check_circle:")


def _done(message: str) -> None:
    st.session_state[TOAST] = message
    st.rerun()


# --------------------------------------------------------------------------- live fetch status

with read_session() as s:
    live = sources.live_status(s, actor, settings)
with st.container(border=True):
    st.markdown("**Live-Abruf der Arztsuche**" + (" · eingeschaltet" if live.enabled else " · aus"))
    st.caption(live.explanation)
    if live.areas:
        st.caption("Suchgebiete: " + ", ".join(live.areas))
    st.caption(live.last_message or "Noch kein Live-Abruf.")

# --------------------------------------------------------------------------- upload

with st.expander("Dateien hochladen", expanded=False, icon=":material/upload_file:"):
    st.caption(
        "Gespeicherte Antworten der Arztsuche (JSON, beide Formate), Stichtagsdateien oder ein ZIP mit vielen Dateien. "
        f"Dateien im Importordner ({settings.IMPORT_FOLDER}) liest der Hintergrunddienst alle 5 Minuten."
    )
    uploads = st.file_uploader(
        "Antwortdateien", type=["json", "zip"], accept_multiple_files=True, key="imports_upload",
    )
    if st.button("Importieren", key="imports_run", type="primary", disabled=not uploads, icon=":material/play_arrow:"):
        bar = st.progress(0.0, text="Dateien werden gelesen …")
        files = [sources.UploadedFile(u.name, u.getvalue()) for u in uploads or []]
        with unit_of_work() as s:
            outcomes, problems = sources.import_uploads(
                s, actor, files, now=context.now(), include_children_only=settings.IMPORT_CHILDREN_ONLY,
                progress=lambda fraction, text: bar.progress(min(1.0, fraction), text=text),
            )
        st.session_state["imports_last_outcomes"] = [(o.filename, o.status, o.message) for o in outcomes] + [
            ("", "failed", p) for p in problems
        ]
        _done(rv.count_label(len(outcomes), "Datei", "Dateien") + " gelesen.")
    for filename, status, message in st.session_state.get("imports_last_outcomes", []):
        text = f"{filename}: {message}" if filename else message
        {"done": st.success, "skipped": st.info}.get(status, st.warning)(text)

# --------------------------------------------------------------------------- review queue

st.subheader("Änderungen prüfen")
with read_session() as s:
    counts = review.pending_counts(s, actor)
choice = st.segmented_control(
    "Filter",
    options=list(FILTERS),
    format_func=lambda k: f"{FILTERS[k]} ({format_number(counts[k])})",
    default="all",
    key="imports_filter",
)
kind_filter = choice or "all"
rv.reset_page_on_change(kind_filter, state_key="imports_filter_sig", page_key="imports_page")
page_no = rv.current_page("imports_page")
with read_session() as s:
    rows, total = review.review_queue(s, actor, kind_filter=kind_filter, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)

if not total:
    st.info(
        "Keine Änderungen zu prüfen. Laden Sie oben eine Antwortdatei der Arztsuche hoch."
        if kind_filter == "all" else f"Keine Änderungen im Filter „{FILTERS[kind_filter]}“."
    )
else:
    st.markdown(f"**{format_number(total)} Änderungen** · Filter: {FILTERS[kind_filter]}")
    records = [
        {
            ID_COLUMN: r.id,
            "Art": r.kind_label,
            "Name": r.display_name,
            "PLZ": r.plz,
            "Therapeut:in": r.therapist_ref or ("mehrdeutig" if r.candidates else "neu"),
            "Konflikt": "ja" if r.has_conflicts else "",
            "Änderungen": "; ".join(f"{f.label}: {f.old} → {f.new}" for f in r.fields[:4]) + (" …" if len(r.fields) > 4 else ""),
            "Hinweis": r.note,
        }
        for r in rows
    ]
    table = rv.frame(records, ints=[ID_COLUMN])
    event = st.dataframe(
        table, key="imports_table", on_select="rerun", selection_mode="multi-row", hide_index=True, placeholder="–",
        width="stretch", column_config={ID_COLUMN: None},
    )
    rv.pager(total, key="imports_page")
    picked = [int(table.iloc[i][ID_COLUMN]) for i in (event.selection.rows if event is not None else [])]

    cols = st.columns(4)
    if cols[0].button(f"Ausgewählte übernehmen ({len(picked)})", key="imports_accept_selected", disabled=not picked, type="primary"):
        with unit_of_work() as s:
            summary = review.accept(s, actor, picked, now=context.now())
        _done(summary.sentence())
    if cols[1].button(f"Ausgewählte ablehnen ({len(picked)})", key="imports_reject_selected", disabled=not picked):
        with unit_of_work() as s:
            n = review.reject(s, actor, picked, now=context.now())
        _done(f"{n} Änderungen abgelehnt.")
    with cols[2]:
        sure = st.checkbox(f"Alle {format_number(total)} im Filter übernehmen", key="imports_confirm_all")
        if st.button("Alle übernehmen", key="imports_accept_all", disabled=not sure):
            with unit_of_work() as s:
                summary = review.accept_all(s, actor, now=context.now(), kind_filter=kind_filter)
            _done(summary.sentence())
    with cols[3]:
        sure_reject = st.checkbox(f"Alle {format_number(total)} im Filter ablehnen", key="imports_confirm_reject_all")
        if st.button("Alle ablehnen", key="imports_reject_all", disabled=not sure_reject):
            with unit_of_work() as s:
                n = review.reject_all(s, actor, now=context.now(), kind_filter=kind_filter)
            _done(f"{n} Änderungen abgelehnt.")

    if len(picked) == 1:
        row = next(r for r in rows if r.id == picked[0])
        with st.container(border=True):
            st.markdown(f"#### {row.display_name}")
            st.caption(" · ".join(p for p in (row.kind_label, row.plz, row.therapist_ref, row.note) if p))
            if row.candidates:
                st.warning("Mehrdeutig: passt zu " + ", ".join(f"T{c}" for c in row.candidates)
                           + ". Ordnen Sie den Eintrag einer davon zu – oder übernehmen Sie ihn als neue Therapeut:in.")
                target = st.selectbox("Zuordnen zu", row.candidates, format_func=lambda c: f"T{c}", key=f"imports_assign_{row.id}")
                if st.button("Zuordnen", key="imports_assign"):
                    try:
                        with unit_of_work() as s:
                            review.assign(s, actor, row.id, int(target), now=context.now())
                        _done(f"Eintrag T{target} zugeordnet; die Änderungen stehen jetzt zur Prüfung.")
                    except ReviewError as exc:
                        st.error(str(exc))
            st.dataframe(
                rv.frame([
                    {"Feld": f.label, "Bisher": f.old, "Neu (116117)": f.new,
                     "Konflikt": "von Hand geändert – bleibt, außer Sie wählen den neuen Wert" if f.conflict else ""}
                    for f in row.fields
                ]),
                hide_index=True, width="stretch", key="imports_fields", placeholder="–",
            )
            if row.other_hours:
                st.caption("Weitere Zeiten laut Arztsuche (nur zur Information): " + "; ".join(row.other_hours))
            if row.warnings:
                with st.expander(f"{len(row.warnings)} Hinweise zum Eintrag"):
                    for w in row.warnings:
                        st.text(w)
            chosen = st.multiselect(
                "Felder einzeln übernehmen",
                options=[f.name for f in row.fields],
                format_func=lambda name: next(f.label for f in row.fields if f.name == name),
                key=f"imports_fields_{row.id}", select_all=False,
            )
            if st.button("Gewählte Felder übernehmen", key="imports_accept_fields", disabled=not chosen):
                try:
                    with unit_of_work() as s:
                        summary = review.accept(s, actor, [row.id], now=context.now(), fields={row.id: chosen})
                    _done(summary.sentence())
                except ReviewError as exc:
                    st.error(str(exc))

# --------------------------------------------------------------------------- runs

st.subheader("Läufe")
with read_session() as s:
    run_rows = review.recent_runs(s, actor, limit=20)
if not run_rows:
    st.info("Noch keine Importe.")
else:
    st.dataframe(
        rv.frame(
            [
                {
                    "Lauf": r.id, "Gestartet": format_datetime(r.started_at), "Quelle": r.source, "Datei": r.filename,
                    "Status": r.status_label, "Einträge": r.records, "Neu": r.new, "Geändert": r.changed,
                    "Nicht mehr gelistet": r.delisted, "Unverändert": r.unchanged, "Übersprungen": r.skipped,
                    "Fehler": r.errors,
                }
                for r in run_rows
            ],
            ints=["Lauf", "Einträge", "Neu", "Geändert", "Nicht mehr gelistet", "Unverändert", "Übersprungen", "Fehler"],
        ),
        hide_index=True, width="stretch", key="imports_runs", placeholder="–",
        column_config={"Lauf": st.column_config.NumberColumn("Lauf", format="%d", width="small")},
    )
    for r in run_rows[:5]:
        if r.messages or r.message:
            with st.expander(f"Lauf {r.id} ({r.filename}): {r.status_label}" + (f", {len(r.messages)} Meldungen" if r.messages else "")):
                if r.message:
                    st.text(r.message)
                for m in r.messages[:50]:
                    st.text(m)
