"""Patients: cleaning, duplicates, create/update, lists and detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Container, Iterable, Mapping, Optional, Sequence
from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased
from core.platform import audit
from core.geo import plz as geo_plz
from core.platform import validation as v
from core.platform.formatting import BERLIN
from core.platform.models import Patient, Search
from core.platform.permissions import Actor, Permission
from core.registry.searches import OPEN_STATES
from core.platform.vocab import Gender, GenderPreference, PatientStatus, Salutation, SearchStatus, Transport
from core.platform.models import PlzCentroid


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

# How the detail view groups the fields (German group titles).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Stammdaten", ("salutation", "gender", "first_name", "last_name", "birth_date", "status", "referral_source",
                    "contracts_signed", "consent_given", "last_contact_on")),
    ("Kontakt", ("street", "plz", "city", "email", "phone")),
    ("Versicherung", ("insurer", "insurance_number", "gp_name")),
    ("Wünsche/Präferenzen", ("symptoms", "diagnosis", "prior_therapy", "prior_therapy_end", "max_distance_km",
                             "transport", "open_to_group", "preferred_therapist_gender", "preferred_methods")),
    ("Verfügbarkeit", ("availability",)),
    ("Notizen", ("notes",)),
)


class PatientError(ValueError):
    """A patient action that is not possible; the message is German."""


@dataclass(frozen=True)
class DuplicateMatch:
    id: int
    label: str
    reason: str


class DuplicateWarning(PatientError):
    """Possible duplicates exist; repeat with allow_duplicate=True to save anyway."""

    def __init__(self, matches: Sequence[DuplicateMatch]):
        self.matches = list(matches)
        names = "; ".join(f"{m.label} (Nr. {m.id})" for m in self.matches)
        super().__init__(f"Mögliche Dublette: {names}. Bitte prüfen, ob es dieselbe Person ist.")


# --------------------------------------------------------------------------- cleaning (pure)


def clean(
    raw: Mapping[str, Any], *, today: date, known_plz: Optional[Container[str]] = None, from_csv: bool = False
) -> dict[str, Any]:
    """Validate every field of a patient; returns storable values or raises ValidationErrors.

    Missing keys count as empty. Cross-field rules: the end of the last therapy lies after
    the birth date and implies a prior therapy."""
    c = v.Collector()
    g = raw.get
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


# --------------------------------------------------------------------------- PLZ table


class PlzTable:
    """`in` answers whether the PLZ table knows a PLZ; `known()` is None while the table is empty.

    Single lookups query one row; `preload()` reads the whole (≈8,000 rows) table for imports."""

    def __init__(self, session: Session):
        self._session = session
        self._loaded: Optional[bool] = None
        self._all: Optional[frozenset[str]] = None

    @property
    def loaded(self) -> bool:
        if self._loaded is None:
            self._loaded = geo_plz.plz_count(self._session) > 0
        return self._loaded

    def preload(self) -> "PlzTable":
        if self.loaded and self._all is None:

            self._all = frozenset(self._session.scalars(select(PlzCentroid.plz)))
        return self

    def __contains__(self, plz: object) -> bool:
        if self._all is not None:
            return plz in self._all
        return geo_plz.plz_info(self._session, str(plz)) is not None

    def known(self) -> Optional["PlzTable"]:
        return self if self.loaded else None

    def city(self, plz: Optional[str]) -> Optional[str]:
        info = geo_plz.plz_info(self._session, plz) if plz and self.loaded else None
        return info.city if info else None


# --------------------------------------------------------------------------- duplicates


def _fold(text: Optional[str]) -> str:
    return " ".join((text or "").split()).casefold()


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
    key = (_fold(first_name), _fold(last_name))
    return [
        DuplicateMatch(pid, _label(first, last, birth_date), "gleicher Name und gleiches Geburtsdatum")
        for pid, first, last in session.execute(stmt)
        if (_fold(first), _fold(last)) == key
    ]


# --------------------------------------------------------------------------- create / edit


def _audit_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Audit entries name changed health/contact fields but do not copy their content."""
    return {k: ("(geändert)" if k in SENSITIVE and val not in (None, [], "") else val) for k, val in values.items()}


def create_patient(
    session: Session,
    actor: Actor,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    today: date,
    allow_duplicate: bool = False,
) -> Patient:
    """Validate and insert a patient (coordinates from the PLZ centroid). Nothing is saved on error."""
    actor.require(Permission.edit)
    plz_table = PlzTable(session)
    values = clean(raw, today=today, known_plz=plz_table.known())
    if not allow_duplicate:
        dups = find_duplicates(session, values["first_name"], values["last_name"], values.get("birth_date"))
        if dups:
            raise DuplicateWarning(dups)
    if values.get("plz") and not values.get("city"):
        values["city"] = plz_table.city(values["plz"])
    patient = Patient(**values, created_at=now, updated_at=now)
    if patient.consent_given:
        patient.consent_at = now
    geo_plz.place_patient(session, patient)
    session.add(patient)
    session.flush()
    audit.record(session, actor, "patient.create", "patient", patient.id, _audit_values(values), now=now)
    return patient


def update_patient(
    session: Session,
    actor: Actor,
    patient_id: int,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    today: date,
    allow_duplicate: bool = False,
) -> Patient:
    """Change the given fields (others keep their values); all rules are checked on the result."""
    actor.require(Permission.edit)
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise PatientError("Diese Patientin / dieser Patient existiert nicht (mehr).")
    before = raw_from_model(patient)
    merged = {**before, **{k: val for k, val in raw.items() if k in FIELDS}}
    plz_table = PlzTable(session)
    # An unchanged, already stored PLZ stays acceptable even if the table no longer lists it.
    known = plz_table.known()
    if known is not None and merged.get("plz") == before.get("plz") and before.get("plz"):
        known = _PlusOne(known, before["plz"])
    values = clean(merged, today=today, known_plz=known)
    changes = audit.diff(before, values)
    if not changes:
        return patient
    if not allow_duplicate and {"first_name", "last_name", "birth_date"} & changes.keys():
        dups = find_duplicates(session, values["first_name"], values["last_name"], values.get("birth_date"), exclude_id=patient.id)
        if dups:
            raise DuplicateWarning(dups)
    if values.get("plz") and not values.get("city") and values.get("plz") != before.get("plz"):
        values["city"] = plz_table.city(values["plz"])
    for k, val in values.items():
        setattr(patient, k, val)
    if values.get("consent_given") and not before.get("consent_given"):
        patient.consent_at = now
    if "plz" in changes:
        geo_plz.place_patient(session, patient)
    patient.updated_at = now
    session.flush()
    audit.record(
        session, actor, "patient.update", "patient", patient.id,
        {k: (["…", "(geändert)"] if k in SENSITIVE else val) for k, val in audit.diff(before, values).items()},
        now=now,
    )
    return patient


class _PlusOne:
    def __init__(self, inner: Container[str], extra: str):
        self.inner, self.extra = inner, extra

    def __contains__(self, item: object) -> bool:
        return item == self.extra or item in self.inner


# --------------------------------------------------------------------------- lists


SEARCH_NONE = "none"  # filter value: patients without any search

SORTS = {
    "name": "Name",
    "plz": "PLZ",
    "city": "Ort",
    "status": "Status",
    "waiting": "Wartezeit",
    "created": "Angelegt",
}


@dataclass(frozen=True)
class PatientFilter:
    statuses: tuple[PatientStatus, ...] = ()
    search_states: tuple[str, ...] = ()  # SearchStatus values and/or SEARCH_NONE
    plz_prefix: str = ""
    city: str = ""
    name: str = ""
    min_wait_days: Optional[int] = None
    max_wait_days: Optional[int] = None
    sort: str = "name"
    descending: bool = False

    def describe(self) -> str:
        """German summary for the count line: 'Status: offen; PLZ 10…'."""
        parts = []
        if self.statuses:
            parts.append("Status: " + ", ".join(s.label for s in self.statuses))
        if self.search_states:
            parts.append(
                "Platzsuche: "
                + ", ".join("keine" if s == SEARCH_NONE else SearchStatus(s).label for s in self.search_states)
            )
        if self.plz_prefix:
            parts.append(f"PLZ {self.plz_prefix}…")
        if self.city:
            parts.append(f"Ort „{self.city}“")
        if self.name:
            parts.append(f"Name „{self.name}“")
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


def _like_variants(term: str) -> list[str]:
    """Case variants so that umlauts match on SQLite too (its LIKE folds ASCII only)."""
    return list(dict.fromkeys([term, term.lower(), term[:1].upper() + term[1:].lower(), term.upper()]))


def _contains_ci(col, term: str):
    return or_(*[col.ilike(f"%{_escape_like(t)}%", escape="\\") for t in _like_variants(term)])


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    if flt.statuses:
        stmt = stmt.where(Patient.status.in_(list(flt.statuses)))
    if flt.search_states:
        states = [SearchStatus(x) for x in flt.search_states if x != SEARCH_NONE]
        conds = []
        if states:
            conds.append(s.status.in_(states))
        if SEARCH_NONE in flt.search_states:
            conds.append(s.id.is_(None))
        stmt = stmt.where(or_(*conds))
    prefix = "".join(ch for ch in flt.plz_prefix if ch.isdigit())[:5]
    if prefix:
        stmt = stmt.where(Patient.plz.startswith(prefix))
    if flt.city.strip():
        stmt = stmt.where(_contains_ci(Patient.city, flt.city.strip()))
    for token in flt.name.split():
        stmt = stmt.where(or_(_contains_ci(Patient.first_name, token), _contains_ci(Patient.last_name, token)))
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
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Patient.id).subquery())) or 0
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
        order = [c.desc() if desc else c.asc() for c in cols]
    order.append(Patient.id.desc() if desc else Patient.id.asc())
    page = session.execute(stmt.order_by(*order).offset(max(offset, 0)).limit(max(min(limit, 500), 1))).all()
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
    actor.require(Permission.view)
    stmt = select(Patient.id, Patient.last_name, Patient.first_name, Patient.plz, Patient.city)
    for token in term.split():
        stmt = stmt.where(or_(_contains_ci(Patient.first_name, token), _contains_ci(Patient.last_name, token)))
    stmt = stmt.order_by(func.lower(Patient.last_name), Patient.id).limit(limit)
    return [(i, f"{ln}, {fn} ({plz or '–'} {city or ''})".strip()) for i, ln, fn, plz, city in session.execute(stmt)]


