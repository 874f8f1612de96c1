"""The parts of the Patient:innen and Therapeut:innen pages that are the same for both,
parametrised by a `PageKind`: the toast, the count line with the "Neue …" button, the
table with row selection bound to the URL, the pager and CSV panel, the record dialog
(generated from the kind's field spec), the detail header with Bearbeiten/Schließen and
the "Ausschluss aufheben" picker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import streamlit as st

from core.platform import validation as v
from core.platform.db import read_session, unit_of_work
from core.platform.permissions import Actor, Permission
from core.registry import exclusions as registry_exclusions
from core.platform.vocab import PAGE_TITLES
from core.registry.forms import PATIENT_FORM, THERAPIST_FORM, FormSpec
from core.registry.records import RegistryError
from ui import context, field_form, layout
from ui import registry_view as rv
from ui.auth import require_actor
from ui.field_form import DialogKeys
from core.platform.references import ref
from ui.selection import ID_COLUMN
from ui.text import md


@dataclass(frozen=True)
class PageKind:
    prefix: str  # widget keys: "pat" / "th"
    param: str  # URL parameter of the selected record: "patient" / "therapist"
    csv_kind: str  # "patients" / "therapists"
    singular: str  # "Patient:in"
    plural: str  # "Patient:innen"
    form: FormSpec
    form_prefix: str  # "pf" / "tf": widget keys of the form
    form_name: str  # "patient_form" / "therapist_form"
    duplicate_confirm: str  # label of the "save anyway" box

    @property
    def ref_kind(self) -> str:
        """The kind of its visible reference (core.platform.references): P152 / T81."""
        return {"patients": "patient", "therapists": "therapist"}[self.csv_kind]

    @property
    def table_key(self) -> str:
        return f"{self.csv_kind}_table"

    @property
    def toast_key(self) -> str:
        return f"{self.csv_kind}_toast"

    @property
    def dialog(self) -> DialogKeys:
        return DialogKeys(f"{self.csv_kind}_dialog", f"{self.csv_kind}_duplicate", f"{self.csv_kind}_discard")

    page: str = ""  # key of PAGE_TITLES
    intro: str = ""  # the line of help under the title

    @property
    def new_label(self) -> str:
        return f"Neue {self.singular}"


PATIENTS = PageKind(
    prefix="pat", param="patient", csv_kind="patients", singular="Patient:in", plural="Patient:innen",
    form=PATIENT_FORM, form_prefix="pf", form_name="patient_form",
    duplicate_confirm="Trotzdem speichern (es ist eine andere Person)", page="patients",
    intro="Alle Patient:innen mit Status und Platzsuche. Wählen Sie eine Zeile für Details, Platzsuche, Ausschlüsse und Verlauf.",
)
THERAPISTS = PageKind(
    prefix="th", param="therapist", csv_kind="therapists", singular="Therapeut:in", plural="Therapeut:innen",
    form=THERAPIST_FORM, form_prefix="tf", form_name="therapist_form",
    duplicate_confirm="Trotzdem speichern (es ist eine andere Praxis/Person)", page="therapists",
    intro="Alle Therapeut:innen mit Status, Verfahren und Abkühlungsphase. Wählen Sie eine Zeile für Details, Sperren und Verlauf.",
)


def start(kind: PageKind) -> Actor:
    """The signed-in actor (or the login), the title with its help line."""
    actor = require_actor()
    layout.header(PAGE_TITLES[kind.page], kind.intro)
    return actor


def toast(kind: PageKind, done: str) -> None:
    """Remember a confirmation for the next run (shown by `flash`)."""
    st.session_state[kind.toast_key] = done


def flash(kind: PageKind) -> None:
    for key in (kind.toast_key, f"{kind.prefix}_csv_toast"):
        if msg := st.session_state.pop(key, None):
            st.toast(md(msg), icon=":material/check_circle:")


def status_filter(kind: PageKind, column: Any, states: type) -> tuple:
    """The "Status" multiselect (URL-bound) as a tuple of members."""
    values = column.multiselect(
        "Status", [m.value for m in states], format_func=lambda x: states(x).label,
        key=f"{kind.prefix}_status", bind="query-params", placeholder="alle", select_all=False,
    )
    return tuple(states(x) for x in values)


def text_filters(kind: PageKind, plz_column: Any, city_column: Any, name_column: Any) -> dict[str, str]:
    """PLZ prefix, city and name inputs (URL-bound), as ListFilter keyword arguments."""
    return {
        "plz_prefix": plz_column.text_input("PLZ beginnt mit", key=f"{kind.prefix}_plz", bind="query-params", max_chars=5,
                                            placeholder="z. B. 10") or "",
        "city": city_column.text_input("Ort", key=f"{kind.prefix}_city", bind="query-params") or "",
        "name": name_column.text_input("Name", key=f"{kind.prefix}_name", bind="query-params", placeholder="Vor- oder Nachname") or "",
    }


def sort_filters(kind: PageKind, sorts: dict[str, str], sort_column: Any, desc_column: Any) -> dict[str, Any]:
    """Sort order and direction (URL-bound), as ListFilter keyword arguments."""
    sort = sort_column.selectbox("Sortierung", list(sorts), format_func=lambda k: sorts[k], key=f"{kind.prefix}_sort",
                                 bind="query-params")
    return {"sort": sort or "name", "descending": bool(desc_column.toggle("absteigend", key=f"{kind.prefix}_desc", bind="query-params"))}


def list_section(
    kind: PageKind, actor: Actor, flt: Any, fetch: Callable[..., tuple[list, int]], record: Callable[[Any], dict[str, Any]], *,
    config: dict[str, Any], ints: Sequence[str] = (), dates: Sequence[str] = (),
) -> tuple[list, Optional[int]]:
    """Count line, "Neue …" button, the table (Kennung P152/T81, Name, Status, then `record(row)`'s
    columns), pager and CSV panel. Returns the page's rows and the selected record's id."""
    rows, total, page_no = fetch_page(kind, fetch, flt)
    list_head(kind, actor, total, flt, page_no)
    records = [{ID_COLUMN: r.id, "Kennung": ref(kind.ref_kind, r.id), "Name": r.list_name, "Status": rv.badge_list(r.status),
                **record(r)} for r in rows]
    selected = table(kind, rows, total, flt, records, config=config, ints=ints, dates=dates)
    pager_and_csv(kind, actor, flt, total)
    return rows, selected


def fetch_page(kind: PageKind, fetch: Callable[..., tuple[list, int]], flt: Any) -> tuple[list, int, int]:
    """rv.filtered_page, with a filter the services refuse (NUL byte …) shown in German."""
    try:
        with read_session() as s:
            return rv.filtered_page(lambda **kw: fetch(s, **kw), flt, prefix=kind.prefix)
    except v.ValidationErrors as exc:
        st.error("Filter nicht anwendbar: " + md(" ".join(exc.errors.values())), icon=":material/error:")
        return [], 0, 1


def list_head(kind: PageKind, actor: Actor, total: int, flt: Any, page_no: int) -> None:
    """"**12 Patient:innen** · Filter: …" and the "Neue …" button for editors."""
    left, right = st.columns([4, 1])
    left.markdown(rv.count_line(total, kind.singular, kind.plural, filter_text=flt.describe(), page_no=page_no))
    if actor.can(Permission.edit) and right.button(
        kind.new_label, key=f"{kind.prefix}_new", icon=":material/person_add:", type="primary", width="stretch",
    ):
        field_form.open_dialog(kind.dialog)


def table(kind: PageKind, rows: Sequence[Any], total: int, flt: Any, records: list[dict[str, Any]], *,
          config: dict[str, Any], ints: Sequence[str] = (), dates: Sequence[str] = ()) -> Optional[int]:
    """The list (or why it is empty) and the selected record's id (row click or URL)."""
    if not rows:
        if total == 0 and not flt.describe():
            st.info(f"Noch keine {kind.plural}. Legen Sie die erste mit „{kind.new_label}“ an oder importieren Sie eine CSV-Datei.")
        else:
            st.info(f"Keine {kind.plural} passen zu diesem Filter. Lockern Sie den Filter oben.")
        return None
    frame = rv.frame(records, ints=ints, dates=dates)
    config = {ID_COLUMN: None, "Kennung": st.column_config.TextColumn("Kennung", width="small"), **config}
    event = st.dataframe(
        frame, key=kind.table_key, on_select="rerun", selection_mode="single-row", hide_index=True, placeholder="–",
        width="stretch", column_config=config,
    )
    picked = event.selection.rows if event is not None else []
    if picked:
        selected = int(frame.iloc[picked[0]][ID_COLUMN])
        if st.query_params.get(kind.param) != str(selected):
            st.query_params[kind.param] = str(selected)
        return selected
    raw_id = st.query_params.get(kind.param)
    return int(raw_id) if raw_id and raw_id.isdigit() else None


def pager_and_csv(kind: PageKind, actor: Actor, flt: Any, total: int) -> None:
    rv.pager(total, key=f"{kind.prefix}_page")
    rv.csv_panel(actor, kind.csv_kind, flt, total=total, prefix=f"{kind.prefix}_csv")


def dialog(kind: PageKind, actor: Actor, *, load: Callable[[Any, int], dict[str, Any]], create: Callable[..., Any],
           update: Callable[..., Any], name_of: Callable[[Any], str], domain_error: type[Exception],
           after_save: Callable[[], None] = lambda: None) -> None:
    """The create/edit dialog of the kind's field spec, for editors only.

    `load(session, id)` gives the stored values; `create(session, actor, raw, …)` and
    `update(session, actor, id, raw, …)` are the kind's services; `name_of(record)` names
    the saved record in the toast."""
    if not actor.can(Permission.edit):
        return

    def service(s: Any, record_id: Optional[int], raw: dict[str, Any], allow: bool) -> tuple[int, str]:
        when = {"now": context.now(), "today": context.today(), "allow_duplicate": allow}
        obj = create(s, actor, raw, **when) if record_id is None else update(s, actor, record_id, raw, **when)
        return obj.id, name_of(obj)

    def body(record_id: Optional[int]) -> None:
        values: dict[str, Any] = {}
        if record_id is not None:
            with read_session() as s:
                values = load(s, record_id)
        suffix = record_id or "new"

        def saved(saved_id: int, name: str) -> None:
            after_save()
            toast(kind, f"{name} {'angelegt' if record_id is None else 'gespeichert'}.")
            st.query_params[kind.param] = str(saved_id)
            st.rerun()

        field_form.record_form(
            kind.form, values, keys=kind.dialog, form_key=f"{kind.form_name}_{suffix}", key_prefix=f"{kind.form_prefix}_{suffix}_",
            duplicate_confirm=kind.duplicate_confirm,
            service=lambda s, raw, allow: service(s, record_id, raw, allow),
            domain_error=domain_error, on_saved=saved, ref_kind=kind.ref_kind,
        )

    field_form.show_dialog((kind.new_label, f"{kind.singular} bearbeiten"), kind.dialog, body)


def detail(kind: PageKind, selected_id: Optional[int], rows: Sequence[Any], *, load: Callable[[Any, int], Any],
           render: Callable[[Any], None], hint: str) -> None:
    """The selected record below the list (`load(session, id)` in one read session, then
    `render(loaded)`), a German note when it no longer exists, or `hint` while none is selected."""
    if selected_id is None:
        if rows:
            st.caption(hint)
        return
    try:
        with read_session() as s:
            loaded = load(s, selected_id)
    except RegistryError as exc:
        st.info(md(exc))
        return
    render(loaded)


def tabs(panels: dict[str, Callable[[], None]]) -> None:
    """One tab per (title, panel), each panel drawn inside its tab."""
    for tab, panel in zip(st.tabs(list(panels)), panels.values()):
        with tab:
            panel()


def detail_head(kind: PageKind, actor: Actor, record_id: int, title: str, line: str) -> None:
    """Title, chips line and the Bearbeiten/Schließen buttons above a record's tabs. `title`
    is free text (a name) and shown as text; `line` is markup the page built (badges)."""
    st.divider()
    left, right = st.columns([4, 2])
    with left:
        st.subheader(md(title))
        st.markdown(line)
    with right:
        row = st.container(horizontal=True, horizontal_alignment="right")
        if actor.can(Permission.edit) and row.button("Bearbeiten", key=f"{kind.prefix}_edit", icon=":material/edit:"):
            field_form.open_dialog(kind.dialog, record_id)
            st.rerun()
        if row.button("Schließen", key=f"{kind.prefix}_close", icon=":material/close:"):
            st.query_params.pop(kind.param, None)
            st.session_state.pop(kind.table_key, None)
            st.rerun()


def run_action(kind: PageKind, action: Callable[[Any], Any], *, done: str, clear: Sequence[str] = (),
               errors: tuple[type[Exception], ...] = (RegistryError,)) -> None:
    """`action(session)` in one unit of work; then a toast, the given widget keys cleared and
    a rerun that shows the new state. A refusal is shown as its German message."""
    try:
        with unit_of_work() as s:
            action(s)
    except v.ValidationErrors as exc:
        st.error(md(" ".join(exc.errors.values())), icon=":material/error:")
    except errors as exc:
        st.error(md(exc), icon=":material/error:")
    else:
        toast(kind, done)
        for key in clear:
            st.session_state.pop(key, None)
        st.rerun()


def remove_exclusion(kind: PageKind, actor: Actor, exclusions: Sequence[Any], *, record_id: int, key: str,
                     name_of: Callable[[Any], str]) -> None:
    """"Ausschluss aufheben": pick one of the record's exclusions and remove it."""
    if not exclusions or not actor.can(Permission.edit):
        return
    by_id = {e.id: e for e in exclusions}
    gone_id = st.selectbox("Ausschluss aufheben", list(by_id), format_func=lambda i: name_of(by_id[i]), index=None,
                           key=f"{key}_pick_{record_id}", placeholder="Ausschluss wählen")
    gone = by_id.get(gone_id)
    if st.button("Aufheben", key=f"{key}_{record_id}", disabled=gone is None, icon=":material/undo:"):
        run_action(kind, lambda s: registry_exclusions.remove_exclusion(s, actor, gone.id, now=context.now()),
                   done=f"Ausschluss von {name_of(gone)} aufgehoben.")


def exclusions_table(rows: list[dict[str, Any]], *, key: str, config: Optional[dict[str, Any]] = None) -> None:
    st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder="–", width="stretch", key=key, column_config=config or {})
