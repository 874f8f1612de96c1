"""A table whose selected row is remembered by the record's id, not by its position.

st.dataframe reports the selected row as a position. When the list is re-sorted after an
action (an answered inquiry moves up), the same position points at another record, so the
detail panel would jump to it. `selectable_table` keeps the chosen id in the URL (a link or
a reload opens the same record) and, when the rows moved, moves the selection with the
record: the same item stays selected and shows its new state.
"""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd
import streamlit as st

ID_COLUMN = "_id"


def selectable_table(table: pd.DataFrame, *, key: str, param: str, column_config: Optional[dict] = None, **kwargs: Any) -> Optional[int]:
    """Render `table` (with a hidden `_id` column) as a single-row selectable dataframe;
    returns the selected record's id (from the selection, else from the URL)."""
    ids = [int(x) for x in table[ID_COLUMN]] if ID_COLUMN in table.columns else []
    raw = st.query_params.get(param)
    wanted = int(raw) if raw and raw.isdigit() else None
    last_key = f"_sel_{key}"
    state = st.session_state.get(key)
    rows = list(state["selection"]["rows"]) if state and "selection" in state else []
    last = st.session_state.get(last_key)
    user_clicked = last is not None and rows != last.get("rows")
    if not user_clicked:
        # no click since the last run: keep the selection on the record named in the URL
        target = [ids.index(wanted)] if wanted in ids else []
        if rows != target:
            st.session_state[key] = {"selection": {"rows": target, "columns": [], "cells": []}}
            rows = target
    config = {ID_COLUMN: None, **(column_config or {})}
    event = st.dataframe(
        table, key=key, on_select="rerun", selection_mode="single-row", hide_index=True, column_config=config, **kwargs
    )
    picked = [i for i in (event.selection.rows if event is not None else []) if i < len(ids)]
    st.session_state[last_key] = {"rows": picked}
    if picked:
        value = ids[picked[0]]
        if st.query_params.get(param) != str(value):
            st.query_params[param] = str(value)
        return value
    if user_clicked:  # the user cleared the selection
        st.query_params.pop(param, None)
        return None
    return wanted
