"""Pieces shared by the Patient:innen and Therapeut:innen pages: value display, grouped
details, history table, CSV import/export panel, paging, status columns with the
vocabulary's colours. Forms come from ui.field_form, the page skeleton from ui.registry_page."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, Callable, Mapping, Optional, Sequence

import pandas as pd
import streamlit as st

from core.registry import csv_files as registry_csv
from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.formatting import file_name, format_date, format_datetime, format_number, plural, table_datetime
from core.registry.patient_detail import HistoryItem
from core.platform.permissions import Actor, Permission
from core.platform.vocab import Labeled, Method
from ui import context
from ui.text import md

PAGE_SIZE = 50

def frame(records: list[dict[str, Any]], *, ints: Sequence[str] = (), dates: Sequence[str] = ()) -> pd.DataFrame:
    """A table whose empty numbers and dates show as empty cells (not 'None')."""
    df = pd.DataFrame(records)
    for col in ints:
        if col in df.columns:
            df[col] = pd.array([None if x is None or pd.isna(x) else int(x) for x in df[col]], dtype="Int64")
    for col in dates:
        if col in df.columns:  # Berlin wall time (formatting.table_datetime), never UTC
            df[col] = pd.to_datetime(pd.Series([table_datetime(x) for x in df[col]], dtype="object"), errors="coerce")
    return df


def datetime_column(label: str, **kwargs) -> Any:
    """A date-and-time column in German form; its values come from frame(dates=[...])."""
    return st.column_config.DatetimeColumn(label, format="DD.MM.YYYY HH:mm", **kwargs)


def count_label(n: int, singular: str, plural_form: str) -> str:
    """core.platform.formatting.plural (the one plural helper)."""
    return plural(n, singular, plural_form)


def show_value(field: str, value: Any) -> str:
    """A stored value as German text for the detail view."""
    if value is None or value == "" or value == []:
        return "–"
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, Labeled):
        return value.label
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if field in ("phone", "fax"):
        return v.phone_display(value)
    if field in ("methods", "preferred_methods"):
        return ", ".join(Method(c).label for c in value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(x) for x in value)
    if isinstance(value, int) and field == "max_distance_km":
        return f"{format_number(value)} km (Luftlinie)"
    return str(value)


def grouped_details(
    groups: Sequence[tuple[str, Sequence[str]]], values: Mapping[str, Any], *, hidden_note: Optional[str] = None
) -> None:
    """The record's fields in titled groups (Stammdaten, Kontakt, …), two groups per row."""
    visible = [(title, [f for f in fields if f in values]) for title, fields in groups]
    visible = [(t, fs) for t, fs in visible if fs]
    for i in range(0, len(visible), 2):
        cols = st.columns(2)
        for col, (title, fields) in zip(cols, visible[i : i + 2]):
            with col.container(border=True):
                st.markdown(f"**{title}**")
                lines = []
                for f in fields:
                    text = show_value(f, values[f])
                    lines.append(f"{v.label(f)}: {md(text)}")  # free text as text (md keeps line breaks)
                st.markdown("  \n".join(lines))
    if hidden_note:
        st.caption(hidden_note)


def state_column(label: str, enum_cls: type[Labeled], **kwargs) -> Any:
    """A column that shows a state as a coloured badge (label and colour from core.vocab)."""
    members = list(enum_cls)
    return st.column_config.MultiselectColumn(
        label, options=[m.label for m in members], color=[m.color for m in members], disabled=True, **kwargs
    )


def badge_list(state: Optional[Labeled]) -> list[str]:
    return [state.label] if state is not None else []


def history_table(items: Sequence[HistoryItem], *, key: str, empty: str) -> None:
    if not items:
        st.info(empty)
        return
    df = pd.DataFrame(
        [
            {"Zeitpunkt": format_datetime(i.at), "Art": i.kind, "Was": i.title,
             "Stand": i.state.label if i.state is not None else "", "Einzelheiten": i.detail}
            for i in items
        ]
    )
    st.dataframe(df, key=key, hide_index=True, placeholder="–", width="stretch")


def csv_panel(actor: Actor, kind: registry_csv.Kind, flt: Any, *, total: int, prefix: str) -> None:
    """Template download, upload with preview (every bad row with reasons), all-or-nothing
    import; export of the current filter (audited). Shown only to roles that may act."""
    label = registry_csv.KIND_LABEL[kind]
    singular = {"patients": "Patient:in", "therapists": "Therapeut:in"}[kind]
    can_edit, can_export = actor.can(Permission.edit), actor.can(Permission.export) and actor.can(Permission.view_sensitive)
    if not (can_edit or can_export):
        return
    with st.expander("CSV-Import und -Export", icon=":material/table_view:"):
        if can_export:
            st.markdown("**Export**")
            st.caption(
                f"Exportiert {'die' if total == 1 else 'alle'} {count_label(total, singular, label)} des aktuellen Filters (nicht nur diese Seite), "
                "mit Kontakt- und Gesundheitsdaten. Der Export wird im Protokoll vermerkt."
            )
            if st.button("Export erstellen", key=f"{prefix}_export", icon=":material/download:", disabled=total == 0):
                with unit_of_work() as s:
                    data = registry_csv.export_csv(s, actor, kind, flt, today=context.today(), now=context.now())
                st.session_state[f"{prefix}_export_data"] = data
            data = st.session_state.get(f"{prefix}_export_data")
            if data:
                st.download_button(
                    "CSV-Datei herunterladen", data, file_name=file_name(label, context.today()),
                    mime="text/csv", key=f"{prefix}_export_download", icon=":material/save:",
                )
        if not can_edit:
            return
        st.markdown("**Import**")
        st.caption(
            "Trennzeichen „;“, UTF-8 (auch mit BOM), Datumsangaben TT.MM.JJJJ, Ja/Nein als ja/nein, "
            "Listen mit „|“ getrennt, Zeiten wie „Mo 09:00-12:00; Mi 14:00-16:00“. Es wird erst "
            "importiert, wenn keine Zeile mehr fehlerhaft ist – dann alle Zeilen auf einmal."
        )
        st.download_button(
            "Vorlage herunterladen", registry_csv.template_csv(kind), file_name=file_name(f"Vorlage {label}"),
            mime="text/csv", key=f"{prefix}_template", icon=":material/description:",
        )
        generation = st.session_state.get(f"{prefix}_generation", 0)  # a new key empties the uploader
        # Streamlit writes "Drag and drop file here · Limit … per file" itself (no option for
        # German); the label says it in German and the limit is the import's real one.
        upload = st.file_uploader(
            f"CSV-Datei auswählen (höchstens {registry_csv.MAX_BYTES // 1_000_000} MB)", type=["csv", "txt"],
            key=f"{prefix}_upload_{generation}", max_upload_size=registry_csv.MAX_BYTES // 1_000_000,
        )
        if upload is None:
            return
        data = upload.getvalue()
        with read_session() as s:
            preview = registry_csv.preview_import(s, actor, kind, data, today=context.today())
        render_preview(preview)
        if not preview.ok:
            return
        skip = False
        if preview.warnings:
            skip = st.checkbox("Mögliche Dubletten nicht importieren", value=True, key=f"{prefix}_skip_dups")
        count = preview.valid_count - (len(preview.duplicate_lines) if skip else 0)
        if st.button(f"{count_label(count, singular, label)} importieren", type="primary", key=f"{prefix}_import", disabled=count == 0):
            try:
                with unit_of_work() as s:
                    result = registry_csv.commit_import(
                        s, actor, kind, data, now=context.now(), today=context.today(), skip_duplicates=skip,
                        filename=upload.name,
                    )
            except registry_csv.ImportRefused as exc:
                render_preview(exc.preview)
                return
            st.session_state[f"{prefix}_toast"] = result.message()
            st.session_state[f"{prefix}_generation"] = generation + 1
            st.rerun()


def render_preview(preview: registry_csv.ImportPreview) -> None:
    for note in preview.notes:
        st.caption(md(note))
    if preview.ok:
        st.success(md(preview.summary()), icon=":material/check_circle:")
    else:
        st.error(md(preview.summary()), icon=":material/error:")
    if preview.problems:
        st.markdown("**Fehlerhafte Zeilen**")
        st.dataframe(
            pd.DataFrame(
                [
                    {"Zeile": p.line, "Name": p.name,
                     "Gründe": " ".join(p.errors.values())}
                    for p in preview.problems
                ]
            ),
            hide_index=True, placeholder="–", width="stretch", key="csv_problems",
            column_config={"Zeile": st.column_config.NumberColumn("Zeile", format="%d", width="small")},
        )
    if preview.warnings:
        st.markdown("**Mögliche Dubletten**")
        st.dataframe(
            pd.DataFrame([{"Zeile": w.line, "Name": w.name, "Hinweis": w.message} for w in preview.warnings]),
            hide_index=True, placeholder="–", width="stretch", key="csv_warnings",
            column_config={"Zeile": st.column_config.NumberColumn("Zeile", format="%d", width="small")},
        )


def reset_page_on_change(signature: Any, *, state_key: str, page_key: str) -> None:
    """Back to page 1 whenever the filter changes (call before the pagination widget).

    The pager's state is dropped rather than set, so the widget starts at its default."""
    if st.session_state.get(state_key) != signature:
        st.session_state[state_key] = signature
        st.session_state.pop(page_key, None)


def current_page(key: str) -> int:
    return int(st.session_state.get(key) or 1)


def pager(total: int, *, key: str) -> int:
    """Page number (1-based) for `total` rows; shown only when there is more than one page."""
    pages = max(1, -(-total // PAGE_SIZE))
    if current_page(key) > pages:
        st.session_state.pop(key, None)
    if pages <= 1:
        return 1
    return st.pagination(pages, key=key)


def filtered_page(fetch: Callable[..., tuple[list, int]], flt: Any, *, prefix: str) -> tuple[list, int, int]:
    """One page of a filtered list: back to page 1 when the filter changed or the page ran
    empty (rows deleted meanwhile). `fetch(offset=, limit=)` runs the core query.
    Returns (rows, total, page number)."""
    reset_page_on_change(flt, state_key=f"{prefix}_filter_sig", page_key=f"{prefix}_page")
    page_no = current_page(f"{prefix}_page")
    rows, total = fetch(offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    if not rows and total and page_no > 1:
        page_no = 1
        rows, total = fetch(offset=0, limit=PAGE_SIZE)
    return rows, total, page_no


def count_line(total: int, singular: str, plural: str, *, filter_text: str, page_no: int) -> str:
    """"**12 Patient:innen** · Filter: … · Seite 1 von 3" above a list."""
    line = f"**{count_label(total, singular, plural)}**"
    if filter_text:
        line += f" · Filter: {filter_text}"
    pages = max(1, -(-total // PAGE_SIZE))
    if pages > 1:
        line += f" · Seite {page_no} von {pages}"
    return line


def tri_state(label: str, *, key: str, yes: str = "ja", no: str = "nein") -> Optional[bool]:
    """A filter that is off, yes or no (segmented control; URL-bound)."""
    choice = st.segmented_control(
        label, ["yes", "no"], format_func=lambda c: yes if c == "yes" else no, key=key, bind="query-params",
    )
    return None if choice is None else choice == "yes"
