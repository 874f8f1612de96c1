"""CSV import and export of patients and therapists (German conventions).

- `;` separator, UTF-8 (a BOM is accepted and written, so Excel opens the file right),
  dates `TT.MM.JJJJ`, yes/no as `ja`/`nein`, lists separated by `|`, weekly windows in
  the canonical form (docs/architecture.md, "Weekly time windows"); headers are the German field names of the forms.
- Import is two steps: `preview_import` checks every row with the same rules as the forms
  and lists every bad row with its reasons (plus duplicate warnings); `commit_import`
  checks again and inserts all rows in the caller's transaction, or nothing at all.
- `export_csv` writes the rows of the current list filter; only roles with
  Permission.export may, and every export is written to the audit log.
- Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) are
  written with a leading `'` (OWASP CSV injection); the import removes it again, so an
  exported file imports to the same values (core.platform.text).
"""

from __future__ import annotations

import csv
import hashlib
import io
from core.platform.formatting import count_of, format_number
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Callable, Literal, Optional, Sequence, Union

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.geo import plz as geo_plz
from core.platform import audit
from core.platform import validation as v
from core.platform.addresses import email_key, normalise_email
from core.platform.models import AuditEntry, Patient, PlzCentroid, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.text import neutralise_formula, restore_formula
from core.platform.vocab import CoordinatesSource, TherapistStatus
from core.registry import patients as registry_patients
from core.registry import records
from core.registry import therapists as therapists_mod

Kind = Literal["patients", "therapists"]
KINDS: tuple[Kind, ...] = ("patients", "therapists")
ENTITY = {"patients": "patient", "therapists": "therapist"}
KIND_LABEL = {"patients": "Patient:innen", "therapists": "Therapeut:innen"}
KIND_NOUN = {"patients": "patient", "therapists": "therapist"}  # core.platform.vocab.NOUNS

MAX_BYTES = 20_000_000
MAX_ROWS = 60_000
LIST_SEPARATOR = "|"

# Columns written by the export but never read by the import.
EXPORT_ONLY = {
    "patients": ("Nr.", "Platzsuche", "Platzsuche seit"),
    "therapists": ("Nr.", "Status", "Sperrgrund", "Status seit"),
}


def columns(kind: Kind) -> list[str]:
    """The importable fields of a kind, in template order."""
    if kind == "patients":
        return list(registry_patients.FIELDS)
    if kind == "therapists":
        return list(therapists_mod.FIELDS)
    raise ValueError(f"unknown kind {kind!r}")


def headers(kind: Kind) -> list[str]:
    return [v.label(f) for f in columns(kind)]


EXAMPLES: dict[str, dict[str, str]] = {
    "patients": {
        "salutation": "Frau", "gender": "weiblich", "first_name": "Erika", "last_name": "Beispiel",
        "birth_date": "14.03.1990", "street": "Musterstraße 1", "plz": "10115", "city": "Berlin",
        "email": "erika.beispiel@example.de", "phone": "030 1234567", "insurer": "AOK Nordost",
        "insurance_number": "A123456780", "gp_name": "", "symptoms": "Schlafstörungen|Stress / Überforderung",
        "diagnosis": "", "prior_therapy": "nein", "prior_therapy_end": "", "availability": "Mo 09:00-12:00; Mi 14:00-18:00",
        "max_distance_km": "25", "transport": "ÖPNV", "open_to_group": "ja", "preferred_therapist_gender": "egal",
        "preferred_methods": "VT|TP", "status": "offen", "referral_source": "", "contracts_signed": "ja",
        "consent_given": "ja", "last_contact_on": "", "notes": "Beispielzeile – bitte ersetzen",
    },
    "therapists": {
        "salutation": "Herr", "title": "Dr.", "first_name": "Max", "last_name": "Beispiel", "gender": "männlich",
        "street": "Praxisweg 3", "plz": "10115", "city": "Berlin", "phone": "030 7654321", "fax": "",
        "email": "praxis@beispiel.example", "website": "www.praxis-beispiel.de", "statutory_licence": "ja",
        "methods": "VT|TP", "offers_individual": "ja", "offers_group": "nein", "prefers_group": "nein",
        "languages": "Englisch", "age_min": "18", "age_max": "", "patient_gender_preference": "egal",
        "phone_hours": "Mo 08:00-09:00; Do 12:00-12:50", "potentially_available": "nein",
        "potentially_available_notes": "", "knows_us": "nein", "next_contact_at": "",
        "last_contact_email_on": "", "last_contact_phone_on": "", "last_contact_in_person_on": "",
        "notes": "Beispielzeile – bitte ersetzen",
    },
}


# --------------------------------------------------------------------------- writing


def cell(value: Any) -> str:
    """A stored value as German CSV text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, Enum):
        return getattr(value, "label", value.value)
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, (list, tuple, set, frozenset)):
        return LIST_SEPARATOR.join(str(x) for x in value)
    return str(value)


def _write(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerows([neutralise_formula(c) for c in row] for row in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def template_csv(kind: Kind) -> bytes:
    """Header plus one example row that shows every format."""
    example = EXAMPLES[kind]
    return _write([headers(kind), [example.get(f, "") for f in columns(kind)]])


def _export_values(kind: Kind, obj: Any) -> dict[str, Any]:
    if kind == "patients":
        values = registry_patients.raw_from_model(obj)
    else:
        values = therapists_mod.raw_from_model(obj)
    for f in ("phone", "fax"):
        if values.get(f):
            values[f] = v.phone_display(values[f])
    return values


def export_csv(
    session: Session,
    actor: Actor,
    kind: Kind,
    flt: Union[registry_patients.PatientFilter, therapists_mod.TherapistFilter],
    *,
    today: date,
    now: datetime,
) -> bytes:
    """Every row of the filter (not only the page) as CSV; audited."""
    actor.require(Permission.export)
    actor.require(Permission.view_sensitive)
    fields_ = columns(kind)
    out: list[list[str]] = []
    if kind == "patients":
        extra = list(EXPORT_ONLY["patients"])
        cur = registry_patients.current_search_subquery()

        search_of = {
            pid: (status, started)
            for pid, status, started in session.execute(
                select(cur.c.patient_id, Search.status, Search.started_on).join(Search, Search.id == cur.c.search_id)
            )
        }
        for p in registry_patients.export_rows(session, actor, flt, today=today):
            vals = _export_values(kind, p)
            status, started = search_of.get(p.id, (None, None))
            out.append([str(p.id), cell(status), cell(started)] + [cell(vals[f]) for f in fields_])
    else:
        extra = list(EXPORT_ONLY["therapists"])
        for t in therapists_mod.export_rows(session, actor, flt, today=today):
            vals = _export_values(kind, t)
            out.append([str(t.id), cell(t.status), cell(t.status_reason), cell(t.status_changed_on)] + [cell(vals[f]) for f in fields_])
    audit.record(
        session, actor, f"{ENTITY[kind]}.export", ENTITY[kind], None,
        {"count": len(out), "filter": flt.describe() or "alle"}, now=now,
    )
    return _write([extra + headers(kind)] + out)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RowProblem:
    line: int  # spreadsheet row number (the header is row 1)
    name: str  # "Nachname, Vorname" as far as readable
    errors: dict[str, str]  # field -> German message

    def message(self) -> str:
        return " ".join(self.errors.values())


@dataclass(frozen=True)
class RowWarning:
    line: int
    name: str
    message: str


@dataclass
class ImportPreview:
    kind: Kind
    total_rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    content_hash: str = ""
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list, repr=False)  # (line, clean values)

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.problems and self.total_rows > 0

    @property
    def valid_count(self) -> int:
        return len(self.rows)

    @property
    def duplicate_lines(self) -> set[int]:
        return {w.line for w in self.warnings}

    def summary(self) -> str:
        if self.file_errors:
            return "Die Datei kann nicht gelesen werden: " + " ".join(self.file_errors)
        if not self.total_rows:
            return "Die Datei enthält keine Datenzeilen."
        text = f"{count_of(self.total_rows, 'row')} gelesen: {format_number(self.valid_count)} in Ordnung, {format_number(len(self.problems))} fehlerhaft"
        if self.warnings:
            text += f", {count_of(len(self.warnings), 'duplicate')}"
        text += "."
        if self.problems:
            text += " Es wird nichts importiert, solange eine Zeile fehlerhaft ist."
        return text


class ImportRefused(ValueError):
    """The file has bad rows (or cannot be read); nothing was imported."""

    def __init__(self, preview: ImportPreview):
        self.preview = preview
        super().__init__(preview.summary())


def _decode(data: bytes, preview: ImportPreview) -> Optional[str]:
    if len(data) > MAX_BYTES:
        preview.file_errors.append(f"Die Datei ist größer als {MAX_BYTES // 1_000_000} MB.")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        preview.notes.append("Die Datei ist nicht UTF-8-kodiert; sie wurde als Windows-1252 (Excel) gelesen.")
        return data.decode("cp1252", errors="replace")


def _norm_header(text: str) -> str:
    return " ".join(text.replace("\ufeff", "").split()).casefold()


ALIASES = {
    "patients": {"KVNR": "insurance_number", "Versichertennummer": "insurance_number", "Verfügbarkeit": "availability"},
    "therapists": {"Telefonzeiten": "phone_hours", "Verfahren": "methods"},
}


def _header_map(kind: Kind) -> dict[str, str]:
    """Normalised header text -> field: the German label, the field name, a few aliases."""
    mapping = {}
    for f in columns(kind):
        mapping[_norm_header(v.label(f))] = f
        mapping[_norm_header(f)] = f
    for alias, f in ALIASES[kind].items():
        mapping.setdefault(_norm_header(alias), f)
    return mapping


def _read_rows(text: str, kind: Kind, preview: ImportPreview) -> list[tuple[int, dict[str, str]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";"
    if ";" not in first_line:
        if "\t" in first_line:
            delimiter = "\t"
        elif "," in first_line:
            delimiter = ","
        if delimiter != ";":
            preview.notes.append(
                "Trennzeichen ist nicht „;“ – die Datei wurde mit „" + ("Tab" if delimiter == "\t" else delimiter) + "“ gelesen."
            )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        preview.file_errors.append("Die Datei ist leer.")
        return []
    except csv.Error as exc:
        preview.file_errors.append(f"Die Kopfzeile ist kein gültiges CSV ({exc}).")
        return []
    known = _header_map(kind)
    export_only = {_norm_header(h) for h in EXPORT_ONLY[kind]}
    positions: dict[int, str] = {}
    ignored = []
    for i, h in enumerate(header):
        key = _norm_header(h)
        if key in known and known[key] not in positions.values():
            positions[i] = known[key]
        elif key and key not in export_only:
            ignored.append(h.strip())
    missing = [v.label(f) for f in ("first_name", "last_name") if f not in positions.values()]
    if missing:
        preview.file_errors.append(
            "Pflichtspalten fehlen: " + ", ".join(missing)
            + ". Bitte die Vorlage verwenden (Trennzeichen „;“, erste Zeile mit den Spaltennamen)."
        )
        return []
    if ignored:
        preview.notes.append("Unbekannte Spalten werden ignoriert: " + ", ".join(ignored) + ".")
    rows = []
    try:
        for index, record in enumerate(reader):
            line = index + 2
            if not any(c.strip() for c in record):
                continue
            if len(rows) >= MAX_ROWS:
                preview.file_errors.append(f"Die Datei hat mehr als {MAX_ROWS} Zeilen; bitte aufteilen.")
                return []
            raw = {positions[i]: restore_formula(c) for i, c in enumerate(record) if i in positions}
            if len(record) > len(header) and any(c.strip() for c in record[len(header):]):
                raw["__extra__"] = "x"
            rows.append((line, raw))
    except csv.Error as exc:
        preview.file_errors.append(f"Die Datei ist kein gültiges CSV ({exc}).")
        return []
    return rows


def _row_name(raw: dict[str, Any]) -> str:
    last, first = (raw.get("last_name") or "").strip(), (raw.get("first_name") or "").strip()
    return ", ".join(p for p in (last, first) if p) or "(ohne Namen)"


def _clean_fn(kind: Kind) -> Callable[..., dict[str, Any]]:
    return registry_patients.clean if kind == "patients" else therapists_mod.clean


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _duplicate_warnings(session: Session, kind: Kind, preview: ImportPreview) -> None:
    """Same name + birth date (patients) / same name + PLZ or same e-mail (therapists),
    against the database and within the file."""
    fold = records.fold
    existing: dict[tuple, list[tuple[int, str]]] = {}
    if kind == "patients":
        dates = sorted({vals["birth_date"] for _, vals in preview.rows if vals.get("birth_date")})
        for chunk in _chunks(dates):
            for pid, first, last, born in session.execute(
                select(Patient.id, Patient.first_name, Patient.last_name, Patient.birth_date).where(Patient.birth_date.in_(chunk))
            ):
                existing.setdefault(("n", fold(first), fold(last), born), []).append((pid, f"{last}, {first}"))

        def keys(vals):
            if vals.get("birth_date"):
                yield ("n", fold(vals["first_name"]), fold(vals["last_name"]), vals["birth_date"]), "gleicher Name und gleiches Geburtsdatum"
    else:
        plzs = sorted({vals["plz"] for _, vals in preview.rows if vals.get("plz")})
        emails = sorted({normalise_email(vals["email"]) for _, vals in preview.rows if normalise_email(vals.get("email"))})
        cols = (Therapist.id, Therapist.first_name, Therapist.last_name, Therapist.plz, Therapist.email)
        found = []
        for chunk in _chunks(plzs):
            found += session.execute(select(*cols).where(Therapist.plz.in_(chunk))).all()
        for chunk in _chunks(emails):
            found += session.execute(select(*cols).where(email_key().in_(chunk))).all()
        seen_ids = set()
        for tid, first, last, plz, email in found:
            if tid in seen_ids:
                continue
            seen_ids.add(tid)
            if plz:
                existing.setdefault(("n", fold(first), fold(last), plz), []).append((tid, f"{last}, {first}"))
            if email:
                existing.setdefault(("e", normalise_email(email)), []).append((tid, f"{last}, {first}"))

        def keys(vals):
            if vals.get("plz"):
                yield ("n", fold(vals["first_name"]), fold(vals["last_name"]), vals["plz"]), "gleicher Name und gleiche PLZ"
            if vals.get("email"):
                yield ("e", normalise_email(vals["email"])), "gleiche E-Mail-Adresse"

    in_file: dict[tuple, int] = {}
    for line, vals in preview.rows:
        name = f"{vals['last_name']}, {vals['first_name']}"
        messages = []
        for key, reason in keys(vals):
            for oid, label in existing.get(key, []):
                messages.append(f"{reason} wie {label} (Nr. {oid}) im Bestand")
            if key in in_file:
                messages.append(f"{reason} wie Zeile {in_file[key]}")
            else:
                in_file[key] = line
        if messages:
            preview.warnings.append(RowWarning(line, name, "Mögliche Dublette: " + "; ".join(dict.fromkeys(messages)) + "."))


def preview_import(session: Session, actor: Actor, kind: Kind, data: bytes, *, today: date) -> ImportPreview:
    """Check every row; nothing is written."""
    actor.require(Permission.edit)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    preview = ImportPreview(kind=kind, content_hash=hashlib.sha256(data).hexdigest())
    text = _decode(data, preview)
    if text is None:
        return preview
    raw_rows = _read_rows(text, kind, preview)
    if preview.file_errors:
        return preview
    preview.total_rows = len(raw_rows)
    known = registry_patients.PlzTable(session).preload().known()
    clean = _clean_fn(kind)
    for line, raw in raw_rows:
        extra = raw.pop("__extra__", None)
        try:
            values = clean(raw, today=today, known_plz=known, from_csv=True)
        except v.ValidationErrors as exc:
            errors = dict(exc.errors)
            if extra:
                errors["__row__"] = "Die Zeile hat mehr Zellen als die Kopfzeile (Trennzeichen „;“ im Text? Dann in Anführungszeichen setzen)."
            preview.problems.append(RowProblem(line, _row_name(raw), errors))
            continue
        if extra:
            preview.problems.append(RowProblem(line, _row_name(raw), {
                "__row__": "Die Zeile hat mehr Zellen als die Kopfzeile (Trennzeichen „;“ im Text? Dann in Anführungszeichen setzen)."
            }))
            continue
        preview.rows.append((line, values))
    if not preview.problems:
        _duplicate_warnings(session, kind, preview)
    return preview


@dataclass(frozen=True)
class ImportResult:
    kind: Kind
    created: int
    skipped_duplicates: int
    first_id: Optional[int]
    last_id: Optional[int]

    def message(self) -> str:
        text = f"{count_of(self.created, KIND_NOUN[self.kind])} importiert"
        if self.skipped_duplicates:
            text += f", {count_of(self.skipped_duplicates, 'duplicate')} übersprungen"
        return text + "."


def commit_import(
    session: Session,
    actor: Actor,
    kind: Kind,
    data: bytes,
    *,
    now: datetime,
    today: date,
    skip_duplicates: bool = False,
    filename: Optional[str] = None,
) -> ImportResult:
    """Check the file again and insert every row, or raise ImportRefused and insert nothing."""
    actor.require(Permission.edit)
    preview = preview_import(session, actor, kind, data, today=today)
    if not preview.ok:
        raise ImportRefused(preview)
    skip = preview.duplicate_lines if skip_duplicates else set()
    rows = [vals for line, vals in preview.rows if line not in skip]
    plz_table = registry_patients.PlzTable(session)
    centroids = geo_plz.plz_centroids(session, [r.get("plz") for r in rows]) if plz_table.loaded else {}
    city_of: dict[str, str] = {}
    if plz_table.loaded:
        missing_city = sorted({r["plz"] for r in rows if r.get("plz") and not r.get("city")})
        for chunk in _chunks(missing_city):

            city_of.update(dict(session.execute(select(PlzCentroid.plz, PlzCentroid.city).where(PlzCentroid.plz.in_(chunk))).all()))
    objects: list[Any] = []
    for vals in rows:
        vals = dict(vals)
        if vals.get("plz") and not vals.get("city"):
            vals["city"] = city_of.get(vals["plz"])
        lat, lon = centroids.get(vals.get("plz") or "", (None, None))
        if kind == "patients":
            obj = Patient(**vals, lat=lat, lon=lon, created_at=now, updated_at=now)
            if obj.consent_given:
                obj.consent_at = now
        else:
            obj = Therapist(
                **vals, status=TherapistStatus.active, lat=lat, lon=lon,
                coordinates_source=CoordinatesSource.plz_centroid if lat is not None else CoordinatesSource.missing,
                geocode_pending=bool(vals.get("street")), created_at=now, updated_at=now,
            )
        objects.append(obj)
    session.add_all(objects)
    session.flush()
    entity = ENTITY[kind]
    if objects:
        session.execute(
            insert(AuditEntry),
            [
                {
                    "at": now, "user_id": actor.user_id, "actor_name": actor.username, "action": f"{entity}.import",
                    "entity": entity, "entity_id": o.id, "changes": {"file": filename or "", "sha256": preview.content_hash[:16]},
                }
                for o in objects
            ],
        )
    result = ImportResult(
        kind=kind,
        created=len(objects),
        skipped_duplicates=len(preview.rows) - len(rows),
        first_id=objects[0].id if objects else None,
        last_id=objects[-1].id if objects else None,
    )
    audit.record(
        session, actor, f"{entity}.import", entity, None,
        {"file": filename or "", "sha256": preview.content_hash, "created": result.created,
         "skipped_duplicates": result.skipped_duplicates},
        now=now,
    )
    return result
