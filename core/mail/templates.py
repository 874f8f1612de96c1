"""Rendering of the e-mail templates in templates/ (an .html and a .txt per message).

One Jinja2 environment: autoescape for .html (a patient called `<script>` stays text),
StrictUndefined (a missing variable fails loudly instead of mailing an empty field),
German dates and numbers through Babel. The subject is set in the .txt template
(`{% set subject %}…{% endset %}`), so one file pair holds everything of a message.

The context builders below turn ORM rows into plain values; the templates never see a
database object and never call anything that could load more data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence

from babel.dates import format_date as _babel_date
from babel.numbers import format_decimal as _babel_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.platform.dates import age_on
from core.platform.config import PROJECT_ROOT, Settings
from core.platform.formatting import BERLIN, LOCALE
from core.platform.vocab import Gender, Salutation
from core.platform import formatting, references, timewindows

TEMPLATES_DIR = PROJECT_ROOT / "templates"

# Template ids (stored in OutboxEmail.template) and their German titles for the outbox page.
THERAPIST_INQUIRY = "therapist_inquiry"
THERAPIST_REMINDER = "therapist_reminder"
THERAPIST_THANKS = "therapist_thanks"
PATIENT_SEARCH_STARTED = "patient_search_started"
PATIENT_PLACE_FOUND_EMAIL = "patient_place_found_email"
PATIENT_PLACE_FOUND_PHONE = "patient_place_found_phone"
PATIENT_STATUS_UPDATE = "patient_status_update"
PATIENT_SUCCESS = "patient_success"  # after the first sessions: the search is closed
EDITED = "edited"  # the HTML part of a draft whose text a coordinator edited

TEMPLATE_TITLES: dict[str, str] = {
    THERAPIST_INQUIRY: "Anfrage an Therapeut:in",
    THERAPIST_REMINDER: "Erinnerung an Therapeut:in",
    THERAPIST_THANKS: "Dank für Zusage",
    PATIENT_SEARCH_STARTED: "Suche gestartet",
    PATIENT_PLACE_FOUND_EMAIL: "Therapieplatz gefunden (Kontakt per E-Mail)",
    PATIENT_PLACE_FOUND_PHONE: "Therapieplatz gefunden (Kontakt per Telefon)",
    PATIENT_STATUS_UPDATE: "Stand der Suche",
    PATIENT_SUCCESS: "Therapie begonnen (Suche abgeschlossen)",
}
# Patient messages a coordinator may write by hand in Postausgang.
PATIENT_MESSAGE_CHOICES = (
    PATIENT_SEARCH_STARTED, PATIENT_STATUS_UPDATE, PATIENT_PLACE_FOUND_EMAIL, PATIENT_PLACE_FOUND_PHONE, PATIENT_SUCCESS,
)
MESSAGE_TEMPLATES = tuple(TEMPLATE_TITLES)


def template_title(template: str) -> str:
    return TEMPLATE_TITLES.get(template, template)


class TemplateError(ValueError):
    """A template cannot be rendered with the values given (a programming error, German message)."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


# --------------------------------------------------------------------------- filters


def _datum(value: Optional[date | datetime]) -> str:
    """23.11.2026 (datetimes shown in Europe/Berlin)."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = value.astimezone(BERLIN).date()
    return _babel_date(value, "dd.MM.yyyy", locale=LOCALE)


def _datum_lang(value: Optional[date | datetime]) -> str:
    """Montag, 23. November 2026."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = value.astimezone(BERLIN).date()
    return _babel_date(value, "full", locale=LOCALE)


def _zahl(value: Optional[float | int], decimals: int = 0) -> str:
    """1.234 / 1.234,5."""
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return _babel_decimal(value, pattern, locale=LOCALE)


def plural(n: int, singular: str, plural_form: str) -> str:
    """The German noun for a count (1 → singular, 0 and 2+ → plural); core.platform.formatting.noun."""
    return formatting.noun(n, singular, plural_form)


def _anzahl(n: int, singular: str, plural_form: str) -> str:
    """'1 Person', '3 Personen', '1.200 Personen' (core.platform.formatting.plural)."""
    return formatting.plural(n, singular, plural_form)


def _ja_nein(value: Optional[bool]) -> str:
    if value is None:
        return "keine Angabe"
    return "ja" if value else "nein"


def _liste(values: Sequence[str]) -> str:
    """'A', 'A und B', 'A, B und C'."""
    values = [v for v in values if v]
    if not values:
        return ""
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " und " + values[-1]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(datum=_datum, datum_lang=_datum_lang, zahl=_zahl, ja_nein=_ja_nein, liste=_liste)
    env.globals.update(plural=plural, anzahl=_anzahl)
    return env


def render(template: str, context: dict[str, Any]) -> RenderedMail:
    """Render `<template>.txt` (text and subject) and `<template>.html`."""
    env = environment()
    try:
        text_module = env.get_template(f"{template}.txt").make_module(context)
        html = env.get_template(f"{template}.html").render(context)
    except Exception as exc:  # StrictUndefined, missing file, filter errors
        raise TemplateError(f"Vorlage {template} lässt sich nicht füllen: {type(exc).__name__}: {exc}") from exc
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise TemplateError(f"Vorlage {template}.txt setzt keinen Betreff.")
    return RenderedMail(subject=subject, html=html.strip() + "\n", text=_tidy_text(str(text_module)))


def render_edited_html(text: str, footer: "Footer") -> str:
    """The HTML part of a draft whose plain text was edited by hand: the same words,
    escaped, in the normal frame (the footer is already part of the text)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    return environment().get_template(f"{EDITED}.html").render(paragraphs=paragraphs, footer=footer).strip() + "\n"


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one empty line in a row, one final newline."""
    lines = [line if line == "-- " else line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plain values for the templates


@dataclass(frozen=True)
class Footer:
    company: str
    address: str
    register: str
    managing_director: str
    privacy_sentence: str
    email: str
    sender_name: str


def footer_from_settings(settings: Settings) -> Footer:
    return Footer(
        company=settings.COMPANY_NAME,
        address=settings.COMPANY_ADDRESS,
        register=settings.COMPANY_REGISTER,
        managing_director=settings.COMPANY_MANAGING_DIRECTOR,
        privacy_sentence=settings.PRIVACY_SENTENCE,
        email=settings.EMAIL_SENDER,
        sender_name=settings.EMAIL_SENDER_NAME,
    )


@dataclass(frozen=True)
class AvailabilityDay:
    day: str  # Montag
    ranges: str  # 09:00–12:00, 14:00–15:30 Uhr


@dataclass(frozen=True)
class Availability:
    days: tuple[AvailabilityDay, ...] = ()
    raw: str = ""  # shown as is when the text is not in a form we can read

    @property
    def empty(self) -> bool:
        return not self.days and not self.raw


def availability(text: Optional[str]) -> Availability:
    """Every day and every range of a weekly-window text (docs/architecture.md, "Weekly time windows"), full day names.

    Uses core.timewindows.format for the normal form; text it rejects is shown verbatim
    rather than dropped (upstream showed only the first range per day)."""
    if not text or not text.strip():
        return Availability()
    try:

        normal = timewindows.format(timewindows.parse(text))
        names = dict(zip(timewindows.DAY_KEYS, timewindows.DAY_NAMES))
    except ImportError:  # pragma: no cover - timewindows is part of the foundation
        return Availability(raw=text.strip())
    except ValueError:
        return Availability(raw=" ".join(text.split()))
    days = []
    for part in normal.split("; "):
        if not part:
            continue
        key, _, ranges = part.partition(" ")
        pretty = ", ".join(r.replace("-", "–") for r in ranges.split(", "))
        days.append(AvailabilityDay(day=names.get(key, key), ranges=f"{pretty} Uhr"))
    return Availability(days=tuple(days))


def gender_word(gender: Gender | str | None) -> str:
    """The vocabulary label (weiblich, männlich, divers, keine Angabe)."""
    try:
        return Gender(gender).label
    except ValueError:
        return Gender.unspecified.label


def letter_salutation(salutation: Salutation | str | None, title: Optional[str], first_name: str, last_name: str) -> str:
    """'Sehr geehrte Frau Dr. Weber' / 'Sehr geehrter Herr Roth' / 'Guten Tag Kim Weber'
    (no guessing a salutation from the gender: upstream's 'anything else is Frau' bug)."""
    title_part = f"{title} " if title else ""
    if salutation == Salutation.frau:
        return f"Sehr geehrte Frau {title_part}{last_name}".strip()
    if salutation == Salutation.herr:
        return f"Sehr geehrter Herr {title_part}{last_name}".strip()
    name = " ".join(p for p in (title, first_name, last_name) if p)
    return f"Guten Tag {name}".strip() if name else "Sehr geehrte Damen und Herren"


@dataclass(frozen=True)
class PatientSummary:
    """One patient of an inquiry, pseudonymous: a reference, never a name."""

    number: int  # position in the inquiry, 1..6
    reference: str  # A123-2
    age: Optional[int]
    gender: str
    symptoms: tuple[str, ...]
    insurer: str
    prior_therapy: Optional[bool]
    prior_therapy_end: Optional[date]
    open_to_group: Optional[bool]
    availability: Availability


@dataclass(frozen=True)
class TherapistContact:
    salutation_line: str
    full_name: str
    street: str
    plz_city: str
    phone: str
    email: str
    website: str
    phone_hours: Availability
    knows_us: bool
    prefers_group: bool


@dataclass(frozen=True)
class PatientPerson:
    salutation_line: str
    full_name: str
    email: str
    phone: str
    availability: Availability
    insurer: str


def inquiry_reference(inquiry_id: int) -> str:
    return references.inquiry_ref(inquiry_id)


def patient_reference(inquiry_id: int, position: int) -> str:
    return f"A{inquiry_id}-{position}"


def patient_summary(patient, *, inquiry_id: int, position: int, today: date) -> PatientSummary:
    return PatientSummary(
        number=position,
        reference=patient_reference(inquiry_id, position),
        age=age_on(patient.birth_date, today),
        gender=gender_word(patient.gender),
        symptoms=tuple(patient.symptoms or ()),
        insurer=patient.insurer or "keine Angabe",
        prior_therapy=patient.prior_therapy,
        prior_therapy_end=patient.prior_therapy_end,
        open_to_group=patient.open_to_group,
        availability=availability(patient.availability),
    )


def therapist_contact(therapist) -> TherapistContact:
    plz_city = " ".join(p for p in (therapist.plz, therapist.city) if p)
    return TherapistContact(
        salutation_line=letter_salutation(therapist.salutation, therapist.title, therapist.first_name, therapist.last_name),
        full_name=therapist.full_name,
        street=therapist.street or "",
        plz_city=plz_city,
        phone=therapist.phone or "",
        email=therapist.email or "",
        website=therapist.website or "",
        phone_hours=availability(therapist.phone_hours),
        knows_us=bool(therapist.knows_us),
        prefers_group=bool(therapist.prefers_group),
    )


def patient_person(patient) -> PatientPerson:
    return PatientPerson(
        salutation_line=letter_salutation(patient.salutation, None, patient.first_name, patient.last_name),
        full_name=f"{patient.first_name} {patient.last_name}".strip(),
        email=patient.email or "",
        phone=patient.phone or "",
        availability=availability(patient.availability),
        insurer=patient.insurer or "",
    )


def interval_text(days: int) -> str:
    """'pro Woche' (7), 'alle zwei Wochen' (14), 'in 10 Tagen' (otherwise)."""
    if days == 7:
        return "pro Woche"
    if days == 14:
        return "alle zwei Wochen"
    if days == 1:
        return "pro Tag"
    return f"in {_anzahl(days, 'Tag', 'Tagen')}"


def base_context(settings: Settings, *, today: date) -> dict[str, Any]:
    return {
        "footer": footer_from_settings(settings),
        "today": today,
        "interval_text": interval_text(settings.EMAIL_MIN_INTERVAL_DAYS),
    }


def inquiry_context(
    settings: Settings, *, inquiry_id: int, therapist, patients: Iterable[tuple[int, Any]], today: date,
    sent_on: Optional[date] = None,
) -> dict[str, Any]:
    """For therapist_inquiry and therapist_reminder; `patients` are (position, Patient)."""
    summaries = [patient_summary(p, inquiry_id=inquiry_id, position=pos, today=today) for pos, p in patients]
    return {
        **base_context(settings, today=today),
        "reference": inquiry_reference(inquiry_id),
        "therapist": therapist_contact(therapist),
        "patients": summaries,
        "n": len(summaries),
        "sent_on": sent_on,
    }


def thanks_context(
    settings: Settings, *, inquiry_id: int, therapist, accepted: Iterable[tuple[int, Any]], today: date
) -> dict[str, Any]:
    """For therapist_thanks: the accepted patients with reference and name (they will get in touch)."""
    people = [
        {"reference": patient_reference(inquiry_id, pos), "name": f"{p.first_name} {p.last_name}".strip()}
        for pos, p in accepted
    ]
    return {
        **base_context(settings, today=today),
        "reference": inquiry_reference(inquiry_id),
        "therapist": therapist_contact(therapist),
        "people": people,
        "n": len(people),
    }


def patient_context(
    settings: Settings, *, patient, today: date, therapist=None, forms: Sequence[str] = (),
    search_started_on: Optional[date] = None, therapists_asked: int = 0, message: str = "",
    max_distance_km: Optional[int] = None,
) -> dict[str, Any]:
    """For the patient messages (search started, place found, status update)."""
    return {
        **base_context(settings, today=today),
        "patient": patient_person(patient),
        "therapist": therapist_contact(therapist) if therapist is not None else None,
        "forms": list(forms),
        "search_started_on": search_started_on,
        "therapists_asked": therapists_asked,
        "message_paragraphs": [p.strip() for p in (message or "").replace("\r\n", "\n").split("\n\n") if p.strip()],
        "max_distance_km": max_distance_km if max_distance_km is not None else settings.DEFAULT_MAX_DISTANCE_KM,
    }
