"""Pure field rules for patients and therapists, with German messages naming the field.

Every validator takes a raw value (from a form widget or a CSV cell: str, date, bool,
list …) and returns the clean value to store, or raises `FieldError(field, message)`.
`Collector` runs many validators and gathers their errors into one `ValidationErrors`
{field: message}, so a form shows every problem at once and nothing is saved.

Nothing here touches the database; "is this PLZ in the PLZ table" is answered by a
container the service passes in (or None when the table is not loaded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from datetime import date, datetime
from typing import Any, Callable, Container, Iterable, Mapping, Optional, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email as _validate_email

from core.platform.dates import age_on
from core.platform import timewindows
from core.platform.text import control_chars_message, has_control_chars
from core.platform.vocab import SYMPTOMS, Labeled, Method

T = TypeVar("T")

# German names of the fields, used in every message ("PLZ muss fünfstellig sein …").
FIELD_LABELS: dict[str, str] = {
    "salutation": "Anrede",
    "title": "Titel",
    "gender": "Geschlecht",
    "first_name": "Vorname",
    "last_name": "Nachname",
    "birth_date": "Geburtsdatum",
    "street": "Straße und Hausnummer",
    "plz": "PLZ",
    "city": "Ort",
    "email": "E-Mail",
    "phone": "Telefon",
    "fax": "Fax",
    "website": "Webseite",
    "gp_name": "Hausärztin/Hausarzt",
    "insurer": "Krankenkasse",
    "insurance_number": "Versichertennummer (KVNR)",
    "symptoms": "Symptome",
    "diagnosis": "Diagnose (ICD-10-GM)",
    "prior_therapy": "Frühere Psychotherapie",
    "prior_therapy_end": "Ende der letzten Therapie",
    "availability": "Zeitliche Verfügbarkeit",
    "phone_hours": "Telefonische Erreichbarkeit",
    "max_distance_km": "Maximale Entfernung (km)",
    "transport": "Verkehrsmittel",
    "open_to_group": "Offen für Gruppentherapie",
    "preferred_therapist_gender": "Bevorzugtes Geschlecht der Therapeut:in",
    "preferred_methods": "Bevorzugte Verfahren",
    "methods": "Verfahren",
    "languages": "Sprachen",
    "status": "Status",
    "referral_source": "Empfohlen durch",
    "contracts_signed": "Verträge unterschrieben",
    "consent_given": "Einwilligung Datenschutz",
    "last_contact_on": "Letzter Kontakt",
    "notes": "Notizen",
    "statutory_licence": "Kassensitz",
    "offers_individual": "Einzeltherapie",
    "offers_group": "Gruppentherapie",
    "prefers_group": "Bevorzugt Gruppentherapie",
    "age_min": "Mindestalter",
    "age_max": "Höchstalter",
    "patient_gender_preference": "Bevorzugtes Geschlecht der Patient:innen",
    "potentially_available": "Potenziell verfügbar",
    "potentially_available_notes": "Notiz zur Verfügbarkeit",
    "knows_us": "Kennt uns",
    "next_contact_at": "Nächster Kontakt möglich ab",
    "last_contact_email_on": "Letzter Kontakt per E-Mail",
    "last_contact_phone_on": "Letzter Kontakt per Telefon",
    "last_contact_in_person_on": "Letztes persönliches Gespräch",
    "reason": "Grund",
}


def label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


class FieldError(ValueError):
    """One field's value is not acceptable; `message` is German and names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class ValidationErrors(ValueError):
    """Several fields are not acceptable: {field: German message}. Nothing was saved."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


@dataclass
class Collector:
    """Run validators, keep every clean value and every error."""

    values: dict[str, Any] = dc_field(default_factory=dict)
    errors: dict[str, str] = dc_field(default_factory=dict)

    def check(self, key: str, fn: Callable[..., T], /, *args, **kwargs) -> Optional[T]:
        try:
            value = fn(*args, **kwargs)
        except FieldError as exc:
            self.errors.setdefault(exc.field or key, exc.message)
            return None
        self.values[key] = value
        return value

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ValidationErrors(self.errors)


# --------------------------------------------------------------------------- basic shapes


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, tuple, set, frozenset)) and len(value) == 0
    )


def text(field: str, value: Any, *, max_len: int, required: bool = False) -> Optional[str]:
    if blank(value):
        if required:
            raise FieldError(field, f"{label(field)} fehlt – bitte ausfüllen.")
        return None
    if has_control_chars(value):
        raise FieldError(field, control_chars_message(label(field)))
    result = " ".join(str(value).split()) if "\n" not in str(value) else str(value).strip()
    if len(result) > max_len:
        raise FieldError(field, f"{label(field)} ist zu lang (höchstens {max_len} Zeichen, jetzt {len(result)}).")
    return result


_TRUE = {"1", "true", "ja", "j", "yes", "y", "x", "wahr"}
_FALSE = {"0", "false", "nein", "n", "no", "falsch"}


def boolean(field: str, value: Any, *, default: Optional[bool] = None) -> Optional[bool]:
    """True/False from a checkbox or from CSV words (ja/nein, 1/0, x); blank gives `default`."""
    if isinstance(value, bool):
        return value
    if blank(value):
        return default
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise FieldError(field, f"{label(field)}: „{value}“ ist kein Ja/Nein-Wert (erlaubt: ja, nein).")


def integer(field: str, value: Any, *, lo: int, hi: int, required: bool = False) -> Optional[int]:
    if blank(value):
        if required:
            raise FieldError(field, f"{label(field)} fehlt – bitte eine Zahl von {lo} bis {hi} angeben.")
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"{label(field)} muss eine ganze Zahl sein.")
    try:
        number = int(value) if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise FieldError(field, f"{label(field)} muss eine ganze Zahl sein (gefunden: „{value}“).") from None
    if not lo <= number <= hi:
        raise FieldError(field, f"{label(field)} muss zwischen {lo} und {hi} liegen (gefunden: {number}).")
    return number


def parse_date(field: str, value: Any) -> Optional[date]:
    """A date from a date widget or German text `TT.MM.JJJJ` (ISO `JJJJ-MM-TT` also accepted)."""
    if blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = str(value).strip()
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    raise FieldError(field, f"{label(field)}: „{raw}“ ist kein gültiges Datum – bitte TT.MM.JJJJ, z. B. 23.11.2026.")


def choice(field: str, enum_cls: type[Labeled], value: Any, *, default: Any = None, required: bool = False):
    """An enum member from the member itself, its value or its German label (any case)."""
    if isinstance(value, enum_cls):
        return value
    if blank(value):
        if required and default is None:
            raise FieldError(field, f"{label(field)} fehlt.")
        return default
    raw = str(value).strip().lower()
    for member in enum_cls:
        if raw in {member.value.lower(), member.label.lower()}:
            return member
    allowed = ", ".join(m.label for m in enum_cls)
    raise FieldError(field, f"{label(field)}: „{value}“ ist nicht erlaubt (erlaubt: {allowed}).")


def split_list(value: Any) -> list[str]:
    """Items of a list widget, or of CSV text separated by `|` (also `,` when no `|`)."""
    if blank(value):
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [str(v) for v in value]
    else:
        raw = str(value)
        items = raw.split("|") if "|" in raw else raw.split(",")
    return [" ".join(i.split()) for i in items if i and i.strip()]


# --------------------------------------------------------------------------- names and places


def name(field: str, value: Any) -> str:
    result = text(field, value, max_len=100, required=True)
    assert result is not None
    if any(ch.isdigit() for ch in result):
        raise FieldError(field, f"{label(field)} darf keine Ziffern enthalten.")
    return result


_PLZ = re.compile(r"^\d{5}$", re.ASCII)  # ASCII: "١٠١١٥" (Arabic-Indic digits) is no PLZ


def validate_plz(
    value: Any, known: Optional[Container[str]] = None, *, field: str = "plz", restore_leading_zero: bool = False
) -> Optional[str]:
    """Five digits; when the PLZ table is loaded (`known` given), a PLZ it holds.

    `restore_leading_zero` (CSV import): spreadsheets turn 01067 into 1067; four digits
    get their zero back."""
    if blank(value):
        return None
    raw = str(value).strip()
    if restore_leading_zero and raw.isdigit() and len(raw) == 4:
        raw = "0" + raw
    if not _PLZ.match(raw):
        raise FieldError(field, f"PLZ muss fünfstellig sein, z. B. 10115 (gefunden: „{str(value).strip()}“).")
    if known is not None and raw not in known:
        raise FieldError(field, f"PLZ {raw} ist unbekannt – bitte prüfen (nicht im PLZ-Verzeichnis).")
    return raw


# --------------------------------------------------------------------------- contact


def validate_email(value: Any, *, field: str = "email") -> Optional[str]:
    """Syntax check with email-validator (no DNS lookup); returns the normalised address."""
    if blank(value):
        return None
    raw = str(value).strip()
    try:
        result = _validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise FieldError(
            field, f"{label(field)}: „{raw}“ ist keine gültige E-Mail-Adresse – z. B. name@beispiel.de."
        ) from None
    if len(result.normalized) > 255:
        raise FieldError(field, f"{label(field)} ist zu lang (höchstens 255 Zeichen).")
    return result.normalized


def normalise_phone(value: Any, *, field: str = "phone") -> Optional[str]:
    """A valid phone number (German unless it starts with +/00) as E.164, e.g. +49301234567."""
    if blank(value):
        return None
    raw = str(value).strip()
    try:
        number = phonenumbers.parse(raw, "DE")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise FieldError(
            field, f"{label(field)}: „{raw}“ ist keine gültige Telefonnummer – z. B. 030 1234567 oder +49 30 1234567."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(e164: Optional[str]) -> str:
    """Stored E.164 shown nationally (030 1234567); foreign numbers internationally."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "DE")
    except phonenumbers.NumberParseException:
        return e164
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 49 else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, fmt)


def validate_website(value: Any, *, field: str = "website") -> Optional[str]:
    result = text(field, value, max_len=255)
    if result is None:
        return None
    if " " in result or "." not in result:
        raise FieldError(field, f"{label(field)}: „{result}“ ist keine Web-Adresse – z. B. www.praxis-beispiel.de.")
    return result


# --------------------------------------------------------------------------- insurance


_KVNR = re.compile(r"^[A-Z]\d{9}$", re.ASCII)


def kvnr_check_digit(first_nine: str) -> int:
    """Check digit of the KVNR's immutable part (letter + 8 digits).

    The letter becomes its two-digit alphabet position (A=01 … Z=26); the 10 digits are
    weighted 1,2,1,2,…; products above 9 are replaced by their digit sum; the sum mod 10
    is the check digit. Example: A12345678 → 0.
    """
    if len(first_nine) != 9 or not first_nine[0].isalpha() or not first_nine[1:].isdigit():
        raise ValueError("expected a letter and 8 digits")
    digits = f"{ord(first_nine[0].upper()) - ord('A') + 1:02d}" + first_nine[1:]
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (1 if i % 2 == 0 else 2)
        total += product // 10 + product % 10
    return total % 10


def validate_kvnr(value: Any, *, field: str = "insurance_number") -> Optional[str]:
    """Letter + 9 digits whose last digit is the check digit (spaces ignored, letter upper-cased)."""
    if blank(value):
        return None
    raw = "".join(str(value).split()).upper()
    if not _KVNR.match(raw):
        raise FieldError(
            field,
            f"{label(field)} muss aus einem Buchstaben und 9 Ziffern bestehen, z. B. A123456780 (gefunden: „{str(value).strip()}“).",
        )
    if kvnr_check_digit(raw[:9]) != int(raw[9]):
        raise FieldError(field, f"{label(field)} {raw}: die Prüfziffer stimmt nicht – bitte die Nummer prüfen.")
    return raw


# --------------------------------------------------------------------------- dates


MIN_AGE, MAX_AGE = 14, 110


def validate_birth_date(value: Any, *, today: date, field: str = "birth_date") -> Optional[date]:
    """Not in the future; age between 14 and 110 years."""
    born = parse_date(field, value)
    if born is None:
        return None
    if born > today:
        raise FieldError(field, f"{label(field)} liegt in der Zukunft – bitte prüfen.")
    age = age_on(born, today)
    if age < MIN_AGE:
        raise FieldError(field, f"{label(field)}: Die Person ist {age} Jahre alt – wir vermitteln ab {MIN_AGE} Jahren.")
    if age > MAX_AGE:
        raise FieldError(field, f"{label(field)}: ein Alter von {age} Jahren ist nicht plausibel – bitte prüfen.")
    return born


def validate_prior_therapy_end(
    value: Any, *, birth_date: Optional[date], today: date, field: str = "prior_therapy_end"
) -> Optional[date]:
    """After the birth date and not in the future."""
    end = parse_date(field, value)
    if end is None:
        return None
    if end > today:
        raise FieldError(field, f"{label(field)} liegt in der Zukunft – bitte prüfen.")
    if birth_date is not None and end <= birth_date:
        raise FieldError(field, f"{label(field)} liegt vor dem Geburtsdatum – bitte prüfen.")
    return end


def validate_not_future(field: str, value: Any, *, today: date) -> Optional[date]:
    d = parse_date(field, value)
    if d is not None and d > today:
        raise FieldError(field, f"{label(field)} liegt in der Zukunft – bitte prüfen.")
    return d


# --------------------------------------------------------------------------- health


_ICD_F = re.compile(r"^F\d{2}(\.\d{1,2})?$", re.ASCII)


def validate_icd10_f(value: Any, *, field: str = "diagnosis") -> Optional[str]:
    """Optional ICD-10-GM code of the F chapter: F32, F32.1, F45.41 (upper-cased, spaces ignored)."""
    if blank(value):
        return None
    raw = "".join(str(value).split()).upper()
    if not _ICD_F.match(raw):
        raise FieldError(
            field,
            f"{label(field)}: „{str(value).strip()}“ ist kein Code aus Kapitel F – erwartet z. B. F32, F32.1 oder F45.41.",
        )
    return raw


MAX_SYMPTOMS = 6
_SYMPTOM_LOOKUP = {s.lower(): s for s in SYMPTOMS}


def validate_symptoms(value: Any, *, field: str = "symptoms") -> list[str]:
    """Up to 6 entries of the fixed list (empty allowed on save; a search needs at least one)."""
    items = value if isinstance(value, (list, tuple, set, frozenset)) else (str(value).split("|") if not blank(value) else [])
    result: list[str] = []
    unknown: list[str] = []
    for item in items:
        key = " ".join(str(item).split()).lower()
        if not key:
            continue
        canonical = _SYMPTOM_LOOKUP.get(key)
        if canonical is None:
            unknown.append(str(item).strip())
        elif canonical not in result:
            result.append(canonical)
    if unknown:
        raise FieldError(field, f"{label(field)}: „{'“, „'.join(unknown)}“ steht nicht in der Symptomliste.")
    if len(result) > MAX_SYMPTOMS:
        raise FieldError(field, f"{label(field)}: höchstens {MAX_SYMPTOMS} auswählen (jetzt {len(result)}).")
    return result


# --------------------------------------------------------------------------- preferences


METHOD_CODES = tuple(m.value for m in Method)


def validate_methods(value: Any, *, field: str = "methods") -> list[str]:
    """Method codes VT/TP/AP/ST (codes or German labels, any case), several allowed.

    CSV text may separate them by `|`, `,`, `/` or spaces ("VT|TP", "VT, TP", "VT/TP").
    Returns the codes in canonical order."""
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [v.value if isinstance(v, Method) else str(v) for v in value]
    elif blank(value):
        items = []
    else:
        items = re.split(r"[|,;]", str(value))
    chosen: set[str] = set()
    for item in items:
        raw = " ".join(item.split())
        if not raw:
            continue
        try:
            chosen.add(choice(field, Method, raw).value)
            continue
        except FieldError:
            pass
        for token in re.split(r"[\s/]+", raw):
            if not token:  # "VT/" or "/TP": a separator with nothing on one side
                raise FieldError(
                    field, f"{label(field)}: in „{raw}“ fehlt vor oder nach „/“ ein Verfahren (z. B. VT/TP; erlaubt: VT, TP, AP, ST).",
                )
            try:
                chosen.add(choice(field, Method, token).value)
            except FieldError:
                raise FieldError(field, f"{label(field)}: „{token}“ ist kein Verfahren (erlaubt: VT, TP, AP, ST).") from None
    return [code for code in METHOD_CODES if code in chosen]


def validate_max_distance(value: Any, *, field: str = "max_distance_km") -> Optional[int]:
    return integer(field, value, lo=1, hi=200)


def validate_age_range(age_min: Any, age_max: Any) -> tuple[Optional[int], Optional[int]]:
    lo = integer("age_min", age_min, lo=0, hi=120)
    hi = integer("age_max", age_max, lo=0, hi=120)
    if lo is not None and hi is not None and lo > hi:
        raise FieldError("age_max", f"Höchstalter ({hi}) muss mindestens so groß sein wie das Mindestalter ({lo}).")
    return lo, hi


def validate_windows(value: Any, *, field: str) -> Optional[str]:
    """Weekly windows in any accepted spelling → the normal form (docs/architecture.md, "Weekly time windows") (None when empty)."""
    if blank(value):
        return None
    try:
        if isinstance(value, (list, tuple)):
            windows = timewindows.validate(value)
        else:
            windows = timewindows.parse(str(value))
    except timewindows.TimeWindowError as exc:
        raise FieldError(field, f"{label(field)}: {exc.message}") from None
    except (TypeError, ValueError):  # a list of something that isn't (day, start, end)
        raise FieldError(field, f"{label(field)}: unbekanntes Format – erwartet z. B. „{timewindows.EXAMPLE}“.") from None
    return timewindows.format(windows) or None


def validate_languages(value: Any, *, field: str = "languages") -> list[str]:
    """Language names, first letter upper-case ("englisch" → "Englisch"), no duplicates."""
    result: list[str] = []
    for item in split_list(value):
        if len(item) > 40 or any(ch.isdigit() for ch in item):
            raise FieldError(field, f"{label(field)}: „{item}“ ist keine Sprache.")
        canonical = item[:1].upper() + item[1:]
        if canonical not in result:
            result.append(canonical)
    return result


def validate_reason(value: Any, *, field: str = "reason", what: str = "Grund") -> str:
    if blank(value):
        raise FieldError(field, f"{what} fehlt – bitte kurz angeben, warum.")
    if has_control_chars(value):
        raise FieldError(field, control_chars_message(what))
    result = str(value).strip()
    if len(result) > 2000:
        raise FieldError(field, f"{what} ist zu lang (höchstens 2000 Zeichen).")
    return result


def first_error(errors: Iterable[str]) -> str:
    return next(iter(errors), "")
