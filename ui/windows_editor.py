"""Editor for weekly time windows (docs/architecture.md, "Weekly time windows"): one row per weekday with its time ranges.

The editor only collects text; `core.timewindows` parses and checks it (through the
services), so the same rules and German messages apply to forms, CSV and imports.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from core.platform import timewindows


def initial_rows(text: Optional[str]) -> dict[str, str]:
    """Per-day texts for a stored value; a value that does not parse goes to Monday as is."""
    try:
        return timewindows.to_day_rows(timewindows.parse(text or ""))
    except timewindows.TimeWindowError:
        rows = {k: "" for k in timewindows.DAY_KEYS}
        rows["Mo"] = text or ""
        return rows


def rows_to_text(rows: dict[str, str]) -> str:
    """'Mo 9-12; Mi 14-16' from the rows as typed (the parser normalises and checks it)."""
    return "; ".join(f"{day} {text.strip()}" for day, text in rows.items() if text and text.strip())


def windows_editor(label: str, *, key: str, value: Optional[str], help_text: str = "") -> str:
    """Seven compact text inputs (Mo–So), e.g. '09:00-12:00, 14:00-15:30'. Returns section-13 text."""
    st.markdown(f"**{label}**")
    st.caption(
        help_text
        or "Je Wochentag Zeiträume wie 09:00-12:00, mehrere durch Komma getrennt; leer = nicht verfügbar. "
        "Auch 9-12 oder 8:30–10 wird verstanden."
    )
    start = initial_rows(value)
    rows: dict[str, str] = {}
    cols = st.columns(7)
    for col, day in zip(cols, timewindows.DAY_KEYS):
        with col:
            rows[day] = st.text_input(day, value=start[day], key=f"{key}_{day}", placeholder="–")
    return rows_to_text(rows)
