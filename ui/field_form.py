"""Forms generated from a declarative field spec (core.registry.forms): one widget and one
error slot per field, section titles, columns per row. Widgets carry no range checks (a
Streamlit min/max shows English messages and blocks the submit without a word); every
rule is checked by the service and its German message appears under the field.

`record_dialog` runs such a form in a dialog that Esc or a click outside cannot close:
"Abbrechen" closes it, and asks first when something was changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Mapping, Optional

import streamlit as st

from core.platform import validation as v
from core.platform.db import unit_of_work
from core.platform.vocab import Labeled, Method
from core.registry.forms import FormField, FormSpec, Widget
from core.registry.records import DuplicateWarning
from ui.windows_editor import initial_rows, rows_to_text, windows_editor
from core.platform.references import ref
from ui.text import md

# Wide enough for every real date; anything implausible is refused by the service in German.
DATE_MIN, DATE_MAX = date(1900, 1, 1), date(2100, 12, 31)


def yes_no(value: Optional[bool]) -> str:
    return "keine Angabe" if value is None else ("ja" if value else "nein")


def _option_label(f: FormField, option: Any) -> str:
    if option is None:
        return f.none_label or "keine Angabe"
    if isinstance(option, Labeled):
        return option.label
    if f.name in ("methods", "preferred_methods"):
        return Method(option).label
    return str(option)


def _choices(f: FormField) -> list[Any]:
    if f.widget == Widget.yes_no:
        return [None, True, False]
    return ([None] if f.none_label else []) + list(f.options)


def initial_value(f: FormField, values: Mapping[str, Any]) -> Any:
    """What the field's widget returns while nobody has touched it."""
    value = values.get(f.name, f.default)
    if value is None:
        value = f.default
    w = f.widget
    if w in (Widget.text, Widget.textarea):
        return "" if value is None else str(value)
    if w == Widget.phone:
        return v.phone_display(value)
    if w == Widget.text_list:
        return ", ".join(value or [])
    if w == Widget.checkbox:
        return bool(value)
    if w in (Widget.choice, Widget.yes_no):
        choices = _choices(f)
        return value if value in choices else choices[0]
    if w == Widget.multi:
        return [x for x in (value or []) if x in f.options]
    if w == Widget.windows:
        return rows_to_text(initial_rows(value))
    return value  # date, number


def _widget(f: FormField, start: Any, key: str) -> Any:
    w, label, hint = f.widget, f.label, f.help
    if w in (Widget.text, Widget.phone, Widget.text_list):
        return st.text_input(label, value=start, key=key, max_chars=f.max_chars, placeholder=f.placeholder, help=hint)
    if w == Widget.textarea:
        return st.text_area(label, value=start, key=key, help=hint,
                            label_visibility="collapsed" if f.collapsed_label else "visible")
    if w == Widget.date:
        return st.date_input(label, value=start, min_value=DATE_MIN, max_value=DATE_MAX, format="DD.MM.YYYY", key=key, help=hint)
    if w == Widget.number:
        return st.number_input(label, value=start, step=f.step or 1, key=key, help=hint, placeholder=f.placeholder)
    if w == Widget.checkbox:
        return st.checkbox(label, value=start, key=key, help=hint)
    if w in (Widget.choice, Widget.yes_no):
        choices = _choices(f)
        return st.selectbox(label, choices, index=choices.index(start), format_func=lambda o: _option_label(f, o), key=key, help=hint)
    if w == Widget.multi:
        return st.multiselect(label, list(f.options), default=start, format_func=lambda o: _option_label(f, o), key=key,
                              max_selections=f.max_selections, placeholder=f.placeholder or "wählen", help=hint,
                              select_all=False)
    if w == Widget.windows:
        return windows_editor(label, key=key, value=None if not start else start)
    raise ValueError(f"unknown widget {w!r}")


@dataclass
class RenderedForm:
    raw: dict[str, Any]  # field -> the widget's value, as the services' `clean` reads it
    initial: dict[str, Any]  # field -> the value before any change
    slots: dict[str, Any]  # field -> the empty slot under its widget

    @property
    def dirty(self) -> bool:
        return any(self.raw[k] != self.initial[k] for k in self.raw)

    def show_errors(self, errors: Mapping[str, str]) -> list[str]:
        """Each message under its field; returns those without a field in the form."""
        rest = []
        for name, message in errors.items():
            slot = self.slots.get(name)
            if slot is None:
                rest.append(message)
            else:
                slot.error(message, icon=":material/error:")
        return rest


def render_fields(spec: FormSpec, values: Mapping[str, Any], *, key_prefix: str) -> RenderedForm:
    """Every section of `spec`: a title, then its rows in columns; under each widget a slot."""
    form = RenderedForm({}, {}, {})
    required = [f.label for f in spec.fields if f.required]
    if required:
        st.caption("Pflichtfelder: " + ", ".join(required) + ". Alles andere kann später ergänzt werden.")
    for section in spec.sections:
        st.markdown(f"##### {section.title}")
        for row in section.rows:
            columns = st.columns([f.width for f in row]) if len(row) > 1 else [st.container()]
            for f, column in zip(row, columns):
                with column:
                    start = initial_value(f, values)
                    form.initial[f.name] = start
                    form.raw[f.name] = _widget(f, start, key_prefix + f.name)
                    form.slots[f.name] = st.empty()
    return form


# --------------------------------------------------------------------------- the dialog


@dataclass(frozen=True)
class DialogKeys:
    """Session-state keys of one page's record dialog."""

    open: str  # {"mode": "new"} or {"mode": "edit", "id": 5} while the dialog is open
    duplicate: str  # messages of the last duplicate warning
    discard: str  # set while "Änderungen verwerfen?" is asked

    def close(self) -> None:
        for key in (self.open, self.duplicate, self.discard):
            st.session_state.pop(key, None)


def open_dialog(keys: DialogKeys, record_id: Optional[int] = None) -> None:
    st.session_state[keys.open] = {"mode": "new"} if record_id is None else {"mode": "edit", "id": record_id}
    st.session_state.pop(keys.duplicate, None)
    st.session_state.pop(keys.discard, None)


def editing_id(keys: DialogKeys) -> Optional[int]:
    state = st.session_state.get(keys.open) or {}
    return state.get("id") if state.get("mode") == "edit" else None


def record_form(
    spec: FormSpec, values: Mapping[str, Any], *, keys: DialogKeys, form_key: str, key_prefix: str,
    duplicate_confirm: str, service: Callable[[Any, dict[str, Any], bool], tuple[int, str]],
    domain_error: type[Exception], on_saved: Callable[[int, str], None], ref_kind: str = "patient",
) -> None:
    """The form with Speichern/Abbrechen inside a dialog. `ref_kind` names possible duplicates
    by their reference (P152 / T81, core.platform.references).

    `service(session, raw, allow_duplicate)` saves in one unit of work and returns (id, name);
    field errors appear under their fields, a possible duplicate as a warning with a
    confirmation box, a domain error as one German line. `on_saved(id, name)` runs after a
    save (the dialog state is already cleared; it may st.rerun())."""
    with st.form(form_key, clear_on_submit=False, border=False):
        form = render_fields(spec, values, key_prefix=key_prefix)
        allow_duplicate = False
        if st.session_state.get(keys.duplicate):
            st.warning("\n".join(md(line) for line in st.session_state[keys.duplicate]), icon=":material/content_copy:")
            allow_duplicate = st.checkbox(duplicate_confirm, key=key_prefix + "allow_duplicate")
        with st.container(horizontal=True):
            submitted = st.form_submit_button("Speichern", type="primary", icon=":material/save:")
            cancelled = st.form_submit_button("Abbrechen", icon=":material/close:")
    if cancelled:
        if not form.dirty:
            keys.close()
            st.rerun()
        st.session_state[keys.discard] = True
    if st.session_state.get(keys.discard):
        _ask_discard(keys, key_prefix)
    if not submitted:
        return
    st.session_state.pop(keys.discard, None)
    try:
        with unit_of_work() as s:
            saved_id, saved_name = service(s, form.raw, allow_duplicate)
    except v.ValidationErrors as exc:
        rest = form.show_errors(exc.errors)
        st.error("Nicht gespeichert – bitte die markierten Felder korrigieren. " + md(" ".join(rest)), icon=":material/error:")
        return
    except DuplicateWarning as exc:
        st.session_state[keys.duplicate] = ["Mögliche Dublette – bitte prüfen:"] + [
            f"- {m.label} ({ref(ref_kind, m.id)}): {m.reason}" for m in exc.matches
        ]
        st.rerun()
    except domain_error as exc:
        st.error(md(exc))
        return
    keys.close()
    on_saved(saved_id, saved_name)


def _ask_discard(keys: DialogKeys, key_prefix: str) -> None:
    st.warning("Es gibt Änderungen, die noch nicht gespeichert sind. Verwerfen?", icon=":material/warning:")
    with st.container(horizontal=True):
        if st.button("Änderungen verwerfen", key=key_prefix + "discard", icon=":material/delete:"):
            keys.close()
            st.rerun()
        if st.button("Weiter bearbeiten", key=key_prefix + "keep", icon=":material/edit:"):
            st.session_state.pop(keys.discard, None)
            st.rerun()


def show_dialog(titles: tuple[str, str], keys: DialogKeys, body: Callable[[Optional[int]], None]) -> None:
    """The record dialog while `keys.open` is set; titles are (new, edit). Not dismissible:
    Esc, the X and a click outside would throw the typed values away without a word;
    "Abbrechen" closes it and asks first when something was changed."""
    if st.session_state.get(keys.open):
        record_id = editing_id(keys)
        st.dialog(titles[0] if record_id is None else titles[1], width="large", dismissible=False)(body)(record_id)
