"""Patients: cleaning, duplicates, create/update, lists and detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Container, Iterable, Mapping, Optional

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.geo import plz as geo_plz
from core.platform import validation as v
from core.platform.formatting import BERLIN
from core.platform.models import Patient, Search
from core.platform.permissions import Actor, Permission
from core.platform.vocab import Gender, GenderPreference, PatientStatus, Salutation, SearchStatus, Transport
from core.registry import records
from core.registry.records import DuplicateMatch, DuplicateWarning, ListFilter, PlzTable, RegistryError
from core.registry.searches import OPEN_STATES

__all__ = ["DuplicateMatch", "DuplicateWarning", "PlzTable"]


FIELDS: tuple[str, ...] = (
    "salutation", "gender", "first_name", "last_name", "birth_date",
    "street", "plz", "city", "email", "phone",
    "insurer", "insurance_number", "gp_name",
    "symptoms", "diagnosis", "prior_therapy", "prior_therapy_end",
    "availability", "max_distance_km", "transport", "open_to_group",
    "preferred_therapist_gender", "preferred_methods",
    "status", "referral_source", "contracts_signed", "consent_given", "last_contact_on", "notes",
)

# Contact, health and insurance fields: only for roles with Permission.view_sensitive.
SENSITIVE: frozenset[str] = frozenset({
    "birth_date", "street", "email", "phone", "gp_name", "insurer", "insurance_number",
    "symptoms", "diagnosis", "prior_therapy", "prior_therapy_end", "notes", "referral_source",
})


class PatientError(RegistryError):
    """A patient action that is not possible; the message is German."""


# --------------------------------------------------------------------------- cleaning (pure)


def clean(
    raw: Mapping[str, Any], *, today: date, known_plz: Optional[Container[str]] = None, from_csv: bool = False
) -> dict[str, Any]:
    """Validate every field of a patient; returns storable values or raises ValidationErrors.

    Missing keys count as empty. Cross-field rules: the end of the last therapy lies after
    the birth date and implies a prior therapy."""
    c = v.Collector()
    g = records.refuse_control_chars(c, raw).get
    c.check("salutation", v.choice, "salutation", Salutation, g("salutation"), default=Salutation.none)
    c.check("gender", v.choice, "gender", Gender, g("gender"), default=Gender.unspecified)
    c.check("first_name", v.name, "first_name", g("first_name"))
    c.check("last_name", v.name, "last_name", g("last_name"))
    born = c.check("birth_date", v.validate_birth_date, g("birth_date"), today=today)
    c.check("street", v.text, "street", g("street"), max_len=255)
    c.check("plz", v.validate_plz, g("plz"), known_plz, restore_leading_zero=from_csv)
    c.check("city", v.text, "city", g("city"), max_len=100)
    c.check("email", v.validate_email, g("email"))
    c.check("phone", v.normalise_phone, g("phone"))
    c.check("gp_name", v.text, "gp_name", g("gp_name"), max_len=255)
    c.check("insurer", v.text, "insurer", g("insurer"), max_len=100)
    c.check("insurance_number", v.validate_kvnr, g("insurance_number"))
    c.check("symptoms", v.validate_symptoms, g("symptoms"))
    c.check("diagnosis", v.validate_icd10_f, g("diagnosis"))
    prior = c.check("prior_therapy", v.boolean, "prior_therapy", g("prior_therapy"))
    if "birth_date" not in c.errors:
        end = c.check("prior_therapy_end", v.validate_prior_therapy_end, g("prior_therapy_end"), birth_date=born, today=today)
        if end is not None and prior is False:
            c.fail("prior_therapy_end", "Ende der letzten Therapie nur angeben, wenn es eine frühere Psychotherapie gab.")
        elif end is not None and prior is None and "prior_therapy" not in c.errors:
            c.values["prior_therapy"] = True
    c.check("availability", v.validate_windows, g("availability"), field="availability")
    c.check("max_distance_km", v.validate_max_distance, g("max_distance_km"))
    c.check("transport", v.choice, "transport", Transport, g("transport"))
    c.check("open_to_group", v.boolean, "open_to_group", g("open_to_group"))
    c.check(
        "preferred_therapist_gender", v.choice, "preferred_therapist_gender", GenderPreference,
        g("preferred_therapist_gender"), default=GenderPreference.any,
    )
    c.check("preferred_methods", v.validate_methods, g("preferred_methods"), field="preferred_methods")
    c.check("status", v.choice, "status", PatientStatus, g("status"), default=PatientStatus.open)
    c.check("referral_source", v.text, "referral_source", g("referral_source"), max_len=255)
    c.check("contracts_signed", v.boolean, "contracts_signed", g("contracts_signed"), default=False)
    c.check("consent_given", v.boolean, "consent_given", g("consent_given"), default=False)
    c.check("last_contact_on", v.validate_not_future, "last_contact_on", g("last_contact_on"), today=today)
    c.check("notes", v.text, "notes", g("notes"), max_len=10_000)
    c.raise_if_errors()
    return c.values


def raw_from_model(p: Patient) -> dict[str, Any]:
    return {f: getattr(p, f) for f in FIELDS}


# --------------------------------------------------------------------------- duplicates


def _label(p_first: str, p_last: str, born: Optional[date]) -> str:
    return f"{p_last}, {p_first}" + (f", geb. {born:%d.%m.%Y}" if born else "")


def find_duplicates(
    session: Session, first_name: str, last_name: str, birth_date: Optional[date], *, exclude_id: Optional[int] = None
) -> list[DuplicateMatch]:
    """Patients with the same name (case-insensitive) and birth date."""
    if birth_date is None or not first_name or not last_name:
        return []
    stmt = select(Patient.id, Patient.first_name, Patient.last_name).where(Patient.birth_date == birth_date)
    if exclude_id is not None:
        stmt = stmt.where(Patient.id != exclude_id)
    key = (records.fold(first_name), records.fold(last_name))
    return [
        DuplicateMatch(pid, _label(first, last, birth_date), "gleicher Name und gleiches Geburtsdatum")
        for pid, first, last in session.execute(stmt)
        if (records.fold(first), records.fold(last)) == key
    ]


# --------------------------------------------------------------------------- create / edit


def _after_create(session: Session, patient: Patient, now: datetime) -> None:
    if patient.consent_given:
        patient.consent_at = now
    geo_plz.place_patient(session, patient)


def _after_update(session: Session, patient: Patient, before: Mapping[str, Any], changes: Mapping[str, Any], now: datetime) -> None:
    if patient.consent_given and not before.get("consent_given"):
        patient.consent_at = now
    if "plz" in changes:
        geo_plz.place_patient(session, patient)


KIND = records.RecordKind(
    entity="patient",
    model=Patient,
    fields=FIELDS,
    sensitive=SENSITIVE,
    not_found="Diese Patientin / dieser Patient existiert nicht (mehr).",
    error=PatientError,
    clean=clean,
    from_model=raw_from_model,
    find_duplicates=lambda session, values, exclude_id: find_duplicates(
        session, values["first_name"], values["last_name"], values.get("birth_date"), exclude_id=exclude_id
    ),
    duplicate_fields=frozenset({"first_name", "last_name", "birth_date"}),
    after_create=_after_create,
    after_update=_after_update,
)


def create_patient(session: Session, actor: Actor, raw: Mapping[str, Any], *, now: datetime, today: date, allow_duplicate: bool = False) -> Patient:
    """Validate and insert a patient (coordinates from the PLZ centroid). Nothing is saved on error."""
    return records.create(KIND, session, actor, raw, now=now, today=today, allow_duplicate=allow_duplicate)


def update_patient(session: Session, actor: Actor, patient_id: int, raw: Mapping[str, Any], *, now: datetime, today: date, allow_duplicate: bool = False) -> Patient:
    """Change the given fields (others keep their values); all rules are checked on the result."""
    return records.update(KIND, session, actor, patient_id, raw, now=now, today=today, allow_duplicate=allow_duplicate)


# --------------------------------------------------------------------------- lists


SEARCH_NONE = "none"  # filter value: patients without any search

SORTS = {**records.COMMON_SORTS, "waiting": "Wartezeit", "created": "Angelegt"}


@dataclass(frozen=True)
class PatientFilter(ListFilter):
    search_states: tuple[str, ...] = ()  # SearchStatus values and/or SEARCH_NONE
    min_wait_days: Optional[int] = None
    max_wait_days: Optional[int] = None

    def problems(self) -> dict[str, str]:
        errors = super().problems()
        for key, label, days in (("min_wait_days", "Wartet seit mind. (Tage)", self.min_wait_days),
                                 ("max_wait_days", "Wartet seit höchstens (Tage)", self.max_wait_days)):
            if days is not None and not 0 <= days <= 36_500:
                errors[key] = f"{label}: bitte eine Zahl ab 0 angeben (gefunden: {days})."
        return errors

    def describe(self) -> str:
        """German summary for the count line: 'Status: offen; PLZ 10…'."""
        parts = self.common_parts()
        if self.search_states:
            parts.append(
                "Platzsuche: "
                + ", ".join("keine" if s == SEARCH_NONE else SearchStatus(s).label for s in self.search_states)
            )
        if self.min_wait_days is not None:
            parts.append(f"wartet ≥ {self.min_wait_days} Tage")
        if self.max_wait_days is not None:
            parts.append(f"wartet ≤ {self.max_wait_days} Tage")
        return "; ".join(parts)


@dataclass(frozen=True)
class PatientRow:
    id: int
    last_name: str
    first_name: str
    status: PatientStatus
    plz: Optional[str]
    city: Optional[str]
    search_id: Optional[int]
    search_status: Optional[SearchStatus]
    search_started_on: Optional[date]
    waiting_days: Optional[int]
    created_on: date
    # sensitive (None for viewers)
    birth_date: Optional[date] = None
    email: Optional[str] = None
    phone: Optional[str] = None

    @property
    def list_name(self) -> str:
        """"Müller, Jana" as the list shows it."""
        return f"{self.last_name}, {self.first_name}"


def current_search_subquery():
    """Each patient's latest search id (the open one if any, since at most one is open)."""
    return (
        select(Search.patient_id.label("patient_id"), func.max(Search.id).label("search_id"))
        .group_by(Search.patient_id)
        .subquery("current_search")
    )


def _filtered(flt: PatientFilter, today: date) -> tuple[Select, Any]:
    # Each patient's current search = the one no newer search of the same patient follows
    # (an anti-join per candidate row on ix_searches_patient_id; no aggregate over all searches).
    s = aliased(Search, name="cs")
    newer = aliased(Search, name="newer")
    is_latest = ~select(newer.id).where(newer.patient_id == s.patient_id, newer.id > s.id).exists()
    stmt = select(Patient, s).outerjoin(s, and_(s.patient_id == Patient.id, is_latest))
    if flt.search_states:
        states = [SearchStatus(x) for x in flt.search_states if x != SEARCH_NONE]
        conds = []
        if states:
            conds.append(s.status.in_(states))
        if SEARCH_NONE in flt.search_states:
            conds.append(s.id.is_(None))
        stmt = stmt.where(or_(*conds))
    stmt = records.filter_common(stmt, Patient, flt)
    if flt.min_wait_days is not None or flt.max_wait_days is not None:
        stmt = stmt.where(s.status.in_(list(OPEN_STATES)))
        if flt.min_wait_days is not None:
            stmt = stmt.where(s.started_on <= date.fromordinal(today.toordinal() - flt.min_wait_days))
        if flt.max_wait_days is not None:
            stmt = stmt.where(s.started_on >= date.fromordinal(today.toordinal() - flt.max_wait_days))
    return stmt, s


def list_patients(
    session: Session, actor: Actor, flt: PatientFilter = PatientFilter(), *, today: date, offset: int = 0, limit: int = 50
) -> tuple[list[PatientRow], int]:
    """One page of patients (filtered and sorted in SQL) and the total count of the filter."""
    actor.require(Permission.view)
    stmt, s = _filtered(flt, today)
    total = records.count(session, stmt, Patient.id)
    desc = flt.descending
    if flt.sort == "waiting":
        # Open searches first, longest waiting (earliest start) first; descending: shortest first.
        not_open = case((s.status.in_(list(OPEN_STATES)), 0), else_=1)
        order = [not_open.asc(), s.started_on.desc() if desc else s.started_on.asc()]
    else:
        cols = {
            "name": [func.lower(Patient.last_name), func.lower(Patient.first_name)],
            "plz": [Patient.plz],
            "city": [func.lower(Patient.city)],
            "status": [Patient.status],
            "created": [Patient.created_at],
        }.get(flt.sort, [func.lower(Patient.last_name), func.lower(Patient.first_name)])
        order = records.directed(cols, desc)
    page = records.ordered_page(session, stmt, order, Patient.id, descending=desc, offset=offset, limit=limit)
    show = actor.can(Permission.view_sensitive)
    rows = []
    for p, search in page:
        waiting = (today - search.started_on).days if search is not None and search.status in OPEN_STATES else None
        rows.append(
            PatientRow(
                id=p.id,
                last_name=p.last_name,
                first_name=p.first_name,
                status=p.status,
                plz=p.plz,
                city=p.city,
                search_id=search.id if search else None,
                search_status=search.status if search else None,
                search_started_on=search.started_on if search else None,
                waiting_days=waiting,
                created_on=p.created_at.astimezone(BERLIN).date(),
                birth_date=p.birth_date if show else None,
                email=p.email if show else None,
                phone=p.phone if show else None,
            )
        )
    return rows, total


def export_rows(session: Session, actor: Actor, flt: PatientFilter, *, today: date) -> Iterable[Patient]:
    """Every patient of the filter in list order (for the audited CSV export). Checks the
    actor at the call, not at the first row."""
    actor.require(Permission.export)
    actor.require(Permission.view_sensitive)
    return _export_rows(session, flt, today)


def _export_rows(session: Session, flt: PatientFilter, today: date) -> Iterable[Patient]:
    stmt, _ = _filtered(flt, today)
    for p, _s in session.execute(stmt.order_by(func.lower(Patient.last_name), func.lower(Patient.first_name), Patient.id)):
        yield p


def lookup(session: Session, actor: Actor, term: str, *, limit: int = 20) -> list[tuple[int, str]]:
    """(id, 'Nachname, Vorname (PLZ Ort)') of patients whose name matches, for pickers."""
    return records.lookup(
        session, actor, Patient, term, (Patient.last_name, Patient.first_name, Patient.plz, Patient.city),
        (func.lower(Patient.last_name), Patient.id),
        lambda ln, fn, plz, city: f"{ln}, {fn} ({plz or '–'} {city or ''})".strip(), limit=limit,
    )
