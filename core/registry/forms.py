"""Declarative field specs for the patient and therapist forms.

A form is a list of titled sections; a section is rows of fields laid out side by side.
Each field names its column (the key the services' `clean` reads), the widget kind, the
options and help; the German label comes from `core.platform.validation.FIELD_LABELS`
(the same words the error messages use), the sensitive flag from the kind's SENSITIVE set.

`ui.field_form` turns a spec into Streamlit widgets with an error slot under every field,
so a page never registers widgets or error slots by hand. The detail view's groups come
from the same sections. No range checks live in the widgets: every rule (and its German
message) is in the services' `clean`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Optional, Sequence

from core.platform import validation as v
from core.platform.vocab import SYMPTOMS, Gender, GenderPreference, Method, PatientStatus, Salutation, Transport
from core.registry import patients, therapists


class Widget(StrEnum):
    text = "text"            # one line of text
    phone = "phone"          # text, shown in national format
    text_list = "text_list"  # "Englisch, Türkisch" for a list value
    textarea = "textarea"
    date = "date"
    number = "number"        # whole number; no min/max in the widget (the service checks)
    choice = "choice"        # one of `options` (enum members; None allowed with `none_label`)
    yes_no = "yes_no"        # ja / nein / keine Angabe
    checkbox = "checkbox"
    multi = "multi"          # several of `options`
    windows = "windows"      # weekly time windows (Mo–So)


@dataclass(frozen=True)
class FormField:
    name: str
    widget: Widget = Widget.text
    options: tuple[Any, ...] = ()
    help: Optional[str] = None
    placeholder: Optional[str] = None
    max_chars: Optional[int] = None
    step: Optional[int] = None
    default: Any = None  # value of an empty record
    none_label: Optional[str] = None  # choice: offer "no value" under this label
    max_selections: Optional[int] = None
    required: bool = False
    sensitive: bool = False
    width: float = 1.0  # relative column width within its row
    collapsed_label: bool = False  # the section title already says it (notes)

    @property
    def label(self) -> str:
        return v.label(self.name)


@dataclass(frozen=True)
class FormSection:
    title: str
    rows: tuple[tuple[FormField, ...], ...]

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for row in self.rows for f in row)


@dataclass(frozen=True)
class FormSpec:
    kind: str  # "patient" / "therapist"
    sections: tuple[FormSection, ...]

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    def groups(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(title, field names) for the detail view, in form order."""
        return tuple((s.title, tuple(f.name for f in s.fields)) for s in self.sections)


def _spec(kind: str, fields_of_kind: Sequence[str], sensitive: frozenset[str],
          sections: Sequence[tuple[str, Sequence[Sequence[FormField]]]], required: Sequence[str]) -> FormSpec:
    """Marks the sensitive and required fields and checks that the form covers every field."""
    def mark(f: FormField) -> FormField:
        return FormField(**{**f.__dict__, "sensitive": f.name in sensitive, "required": f.name in required})

    spec = FormSpec(kind, tuple(FormSection(title, tuple(tuple(mark(f) for f in row) for row in rows)) for title, rows in sections))
    names = [f.name for f in spec.fields]
    if sorted(names) != sorted(fields_of_kind):
        raise AssertionError(f"{kind} form does not match FIELDS: {set(names) ^ set(fields_of_kind)}")
    return spec


F = FormField
W = Widget
_SALUTATION = F("salutation", W.choice, tuple(Salutation), default=Salutation.none)
_GENDER = F("gender", W.choice, tuple(Gender), default=Gender.unspecified)
_FIRST, _LAST = F("first_name"), F("last_name")
_STREET = F("street", width=2)
_PLZ = F("plz", max_chars=5)
_CITY = F("city", help="Leer lassen: wird aus der PLZ ergänzt.", width=1.5)
_EMAIL = F("email")
_PHONE = F("phone", W.phone, placeholder="z. B. 030 1234567")
_NOTES = F("notes", W.textarea, collapsed_label=True)
_METHODS = tuple(m.value for m in Method)

PATIENT_FORM = _spec("patient", patients.FIELDS, patients.SENSITIVE, (
    ("Stammdaten", (
        (_SALUTATION, _FIRST, _LAST),
        (_GENDER, F("birth_date", W.date), F("status", W.choice, tuple(PatientStatus), default=PatientStatus.open)),
        (F("contracts_signed", W.checkbox), F("consent_given", W.checkbox), F("referral_source"), F("last_contact_on", W.date)),
    )),
    ("Kontakt", ((_STREET, _PLZ, _CITY), (_EMAIL, _PHONE))),
    ("Versicherung", ((
        F("insurer"),
        F("insurance_number", max_chars=12, placeholder="z. B. A123456780"),
        F("gp_name"),
    ),)),
    ("Wünsche/Präferenzen", (
        (F("symptoms", W.multi, tuple(SYMPTOMS), help="bis zu 6", max_selections=6, placeholder="Symptome wählen"),),
        (F("diagnosis", placeholder="z. B. F32.1", help="optional"), F("prior_therapy", W.yes_no), F("prior_therapy_end", W.date)),
        (
            F("max_distance_km", W.number, step=5, help="Luftlinie vom PLZ-Mittelpunkt; leer = Standardwert"),
            F("transport", W.choice, tuple(Transport), none_label="keine Angabe"),
            F("open_to_group", W.yes_no),
        ),
        (
            F("preferred_therapist_gender", W.choice, tuple(GenderPreference), default=GenderPreference.any),
            F("preferred_methods", W.multi, _METHODS, placeholder="egal"),
        ),
    )),
    ("Verfügbarkeit", ((F("availability", W.windows),),)),
    ("Notizen", ((_NOTES,),)),
), required=("first_name", "last_name"))

THERAPIST_FORM = _spec("therapist", therapists.FIELDS, therapists.SENSITIVE, (
    ("Stammdaten", (
        (_SALUTATION, F("title", placeholder="Dr."), F(_FIRST.name, width=2), F(_LAST.name, width=2)),
        (_GENDER, F("statutory_licence", W.checkbox, default=True), F("knows_us", W.checkbox)),
    )),
    ("Kontakt", (
        (_STREET, _PLZ, _CITY),
        (_PHONE, F("fax", W.phone)),
        (_EMAIL, F("website")),
        (F("last_contact_email_on", W.date), F("last_contact_phone_on", W.date), F("last_contact_in_person_on", W.date)),
    )),
    ("Angebot und Präferenzen", (
        (F("methods", W.multi, _METHODS, placeholder="Verfahren wählen"),),
        (F("offers_individual", W.checkbox, default=True), F("offers_group", W.checkbox), F("prefers_group", W.checkbox)),
        (
            F("languages", W.text_list, placeholder="z. B. Englisch, Türkisch"),
            F("age_min", W.number, step=1), F("age_max", W.number, step=1),
            F("patient_gender_preference", W.choice, tuple(GenderPreference), default=GenderPreference.any),
        ),
    )),
    ("Verfügbarkeit", (
        (F("phone_hours", W.windows),),
        (F("potentially_available", W.checkbox), F("potentially_available_notes", width=2), F("next_contact_at", W.date)),
    )),
    ("Notizen", ((_NOTES,),)),
), required=("first_name", "last_name"))

FORMS = {"patient": PATIENT_FORM, "therapist": THERAPIST_FORM}
