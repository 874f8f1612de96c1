"""Therapists: cleaning raw input, create/edit, status (block/unblock/inactive), lists
with filters/sort/paging in SQL, viewer-safe projections, duplicates, history.

Fields a coordinator edits by hand are remembered in `hand_edited_fields`, so the
116117 importer never overwrites them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Container, Iterable, Mapping, Optional, Sequence

from sqlalchemy import Select, exists, func, literal_column, or_, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from core.geo.geocoding import request_geocoding
from core.platform import validation as v
from core.platform.addresses import email_key, normalise_email
from core.registry.cooling import cooling_clause, is_cooling
from core.platform.models import METHOD_COLUMNS, Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import Gender, GenderPreference, Method, Outcome, Salutation, TherapistStatus
from core.registry import records
from core.registry import therapist_status
from core.registry.exclusions import ExclusionRow, exclusions_for_therapist
from core.registry.patient_detail import HistoryItem, audit_items
from core.registry.records import DuplicateMatch, DuplicateWarning, ListFilter
from core.registry.therapist_status import TherapistAction, TherapistError, block, change_status, deactivate, unblock

__all__ = ["DuplicateWarning", "TherapistAction", "TherapistError", "block", "change_status", "deactivate", "unblock"]


FIELDS: tuple[str, ...] = (
    "salutation", "title", "first_name", "last_name", "gender",
    "street", "plz", "city", "phone", "fax", "email", "website",
    "statutory_licence", "methods", "offers_individual", "offers_group", "prefers_group",
    "languages", "age_min", "age_max", "patient_gender_preference",
    "phone_hours", "potentially_available", "potentially_available_notes", "knows_us", "next_contact_at",
    "last_contact_email_on", "last_contact_phone_on", "last_contact_in_person_on", "notes",
)

# Contact fields: only for roles with Permission.view_sensitive.
SENSITIVE: frozenset[str] = frozenset({"street", "phone", "fax", "email", "website", "notes"})

ADDRESS_FIELDS = frozenset({"street", "plz", "city"})

# --------------------------------------------------------------------------- cleaning (pure)


def clean(
    raw: Mapping[str, Any], *, today: date, known_plz: Optional[Container[str]] = None, from_csv: bool = False
) -> dict[str, Any]:
    """Validate every field of a therapist; returns storable values (methods as offers_* flags)."""
    c = v.Collector()
    g = records.refuse_control_chars(c, raw).get
    c.check("salutation", v.choice, "salutation", Salutation, g("salutation"), default=Salutation.none)
    c.check("title", v.text, "title", g("title"), max_len=40)
    c.check("first_name", v.name, "first_name", g("first_name"))
    c.check("last_name", v.name, "last_name", g("last_name"))
    c.check("gender", v.choice, "gender", Gender, g("gender"), default=Gender.unspecified)
    c.check("street", v.text, "street", g("street"), max_len=255)
    c.check("plz", v.validate_plz, g("plz"), known_plz, restore_leading_zero=from_csv)
    c.check("city", v.text, "city", g("city"), max_len=100)
    c.check("phone", v.normalise_phone, g("phone"))
    c.check("fax", v.normalise_phone, g("fax"), field="fax")
    c.check("email", v.validate_email, g("email"))
    c.check("website", v.validate_website, g("website"))
    c.check("statutory_licence", v.boolean, "statutory_licence", g("statutory_licence"), default=True)
    methods = c.check("methods", v.validate_methods, g("methods"))
    c.check("offers_individual", v.boolean, "offers_individual", g("offers_individual"), default=True)
    c.check("offers_group", v.boolean, "offers_group", g("offers_group"), default=False)
    c.check("prefers_group", v.boolean, "prefers_group", g("prefers_group"), default=False)
    c.check("languages", v.validate_languages, g("languages"))
    try:
        lo, hi = v.validate_age_range(g("age_min"), g("age_max"))
        c.values["age_min"], c.values["age_max"] = lo, hi
    except v.FieldError as exc:
        c.fail(exc.field, exc.message)
    c.check(
        "patient_gender_preference", v.choice, "patient_gender_preference", GenderPreference,
        g("patient_gender_preference"), default=GenderPreference.any,
    )
    c.check("phone_hours", v.validate_windows, g("phone_hours"), field="phone_hours")
    c.check("potentially_available", v.boolean, "potentially_available", g("potentially_available"), default=False)
    c.check("potentially_available_notes", v.text, "potentially_available_notes", g("potentially_available_notes"), max_len=2000)
    c.check("knows_us", v.boolean, "knows_us", g("knows_us"), default=False)
    c.check("next_contact_at", v.parse_date, "next_contact_at", g("next_contact_at"))
    for f in ("last_contact_email_on", "last_contact_phone_on", "last_contact_in_person_on"):
        c.check(f, v.validate_not_future, f, g(f), today=today)
    c.check("notes", v.text, "notes", g("notes"), max_len=10_000)
    if c.values.get("prefers_group") and c.values.get("offers_group") is False:
        c.fail("prefers_group", "Bevorzugt Gruppentherapie geht nur, wenn Gruppentherapie angeboten wird.")
    c.raise_if_errors()
    values = dict(c.values)
    values.pop("methods", None)
    for code, col in METHOD_COLUMNS.items():
        values[col] = code in (methods or [])
    return values


def raw_from_model(t: Therapist) -> dict[str, Any]:
    raw = {f: getattr(t, f) for f in FIELDS if f != "methods"}
    raw["methods"] = [code for code in METHOD_COLUMNS if getattr(t, METHOD_COLUMNS[code])]
    return raw


def _as_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values back in FIELDS terms (offers_* → methods) for diffs and audit."""
    out = {k: val for k, val in values.items() if k not in METHOD_COLUMNS.values()}
    out["methods"] = [code for code, col in METHOD_COLUMNS.items() if values.get(col)]
    return out


# --------------------------------------------------------------------------- duplicates


def find_duplicates(
    session: Session,
    first_name: str,
    last_name: str,
    plz: Optional[str],
    email: Optional[str],
    *,
    exclude_id: Optional[int] = None,
) -> list[DuplicateMatch]:
    """Therapists with the same name and PLZ, or with the same e-mail address."""
    conds = []
    if plz:
        conds.append(Therapist.plz == plz)
    if email:
        conds.append(email_key() == normalise_email(email))
    if not conds:
        return []
    stmt = select(Therapist.id, Therapist.first_name, Therapist.last_name, Therapist.plz, Therapist.city, Therapist.email).where(
        or_(*conds)
    )
    if exclude_id is not None:
        stmt = stmt.where(Therapist.id != exclude_id)
    key = (records.fold(first_name), records.fold(last_name))
    matches = []
    for tid, first, last, t_plz, city, t_email in session.execute(stmt.order_by(Therapist.id)):
        label = f"{last}, {first}" + (f" ({t_plz} {city})" if t_plz else "")
        if plz and t_plz == plz and (records.fold(first), records.fold(last)) == key:
            matches.append(DuplicateMatch(tid, label, "gleicher Name und gleiche PLZ"))
        elif email and t_email and normalise_email(t_email) == normalise_email(email):
            matches.append(DuplicateMatch(tid, label, "gleiche E-Mail-Adresse"))
    return matches


# --------------------------------------------------------------------------- create / edit


def _place(session: Session, therapist: Therapist, now: datetime) -> None:
    """PLZ centroid now; the practice address is geocoded later by the job runner."""
    if therapist.coordinates_source == "manual":
        return
    request_geocoding(session, therapist, now=now)


def _after_update(session: Session, therapist: Therapist, before: Mapping[str, Any], changes: Mapping[str, Any], now: datetime) -> None:
    therapist.hand_edited_fields = sorted(set(therapist.hand_edited_fields or []) | set(changes))
    if ADDRESS_FIELDS & changes.keys():
        _place(session, therapist, now)


KIND = records.RecordKind(
    entity="therapist",
    model=Therapist,
    fields=FIELDS,
    sensitive=SENSITIVE,
    not_found=therapist_status.NOT_FOUND,
    error=TherapistError,
    clean=clean,
    from_model=raw_from_model,
    to_fields=_as_fields,
    find_duplicates=lambda session, values, exclude_id: find_duplicates(
        session, values["first_name"], values["last_name"], values.get("plz"), values.get("email"), exclude_id=exclude_id
    ),
    duplicate_fields=frozenset({"first_name", "last_name", "plz", "email"}),
    create_defaults={"status": TherapistStatus.active},
    after_create=_place,
    after_update=_after_update,
)


def create_therapist(session: Session, actor: Actor, raw: Mapping[str, Any], *, now: datetime, today: date, allow_duplicate: bool = False) -> Therapist:
    return records.create(KIND, session, actor, raw, now=now, today=today, allow_duplicate=allow_duplicate)


def update_therapist(session: Session, actor: Actor, therapist_id: int, raw: Mapping[str, Any], *, now: datetime, today: date, allow_duplicate: bool = False) -> Therapist:
    """Change the given fields; they become hand-edited, so the 116117 import leaves them
    alone. Every rule is checked on the result."""
    return records.update(KIND, session, actor, therapist_id, raw, now=now, today=today, allow_duplicate=allow_duplicate)


# --------------------------------------------------------------------------- lists


SORTS = {**records.COMMON_SORTS, "next_contact": "Nächster Kontakt", "updated": "Zuletzt geändert"}


@dataclass(frozen=True)
class TherapistFilter(ListFilter):
    methods: tuple[str, ...] = ()  # offers any of these
    language: str = ""
    potentially_available: Optional[bool] = None
    knows_us: Optional[bool] = None
    in_cooling: Optional[bool] = None
    has_email: Optional[bool] = None
    has_phone_hours: Optional[bool] = None

    TEXT_FILTERS = ListFilter.TEXT_FILTERS + (("language", "Sprache"),)

    def describe(self) -> str:
        parts = self.common_parts()
        if self.methods:
            parts.append("Verfahren: " + "/".join(self.methods))
        if self.language:
            parts.append(f"Sprache: {self.language}")
        for flag, yes, no in (
            (self.potentially_available, "potenziell verfügbar", "nicht potenziell verfügbar"),
            (self.knows_us, "kennt uns", "kennt uns nicht"),
            (self.in_cooling, "in Abkühlungsphase", "nicht in Abkühlungsphase"),
            (self.has_email, "mit E-Mail", "ohne E-Mail"),
            (self.has_phone_hours, "mit Telefonzeiten", "ohne Telefonzeiten"),
        ):
            if flag is not None:
                parts.append(yes if flag else no)
        return "; ".join(parts)


@dataclass(frozen=True)
class TherapistRow:
    id: int
    name: str  # "Dr. Anna Beispiel"
    last_name: str
    first_name: str
    title: Optional[str]
    status: TherapistStatus
    plz: Optional[str]
    city: Optional[str]
    methods: tuple[str, ...]
    languages: tuple[str, ...]
    potentially_available: bool
    knows_us: bool
    next_contact_at: Optional[date]
    in_cooling: bool
    has_email: bool
    has_phone_hours: bool
    # sensitive (None for viewers)
    email: Optional[str] = None
    phone: Optional[str] = None

    @property
    def list_name(self) -> str:
        """"Berg, Dr. Eva" as the list shows it."""
        return f"{self.last_name}, {' '.join(p for p in (self.title, self.first_name) if p)}"


def _language_condition(session: Session, language: str):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return type_coerce(Therapist.languages, JSONB).contains([language])
    each = func.json_each(Therapist.languages).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == language))


def _filtered(session: Session, flt: TherapistFilter, today: date) -> Select:
    stmt = select(Therapist)
    stmt = records.filter_common(stmt, Therapist, flt)
    codes = [m for m in flt.methods if m in METHOD_COLUMNS]
    if codes:
        stmt = stmt.where(or_(*[getattr(Therapist, METHOD_COLUMNS[m]).is_(True) for m in codes]))
    if flt.language.strip():
        try:
            language = v.validate_languages(flt.language)[0]
        except v.FieldError as exc:
            raise v.ValidationErrors({"language": exc.message}) from None
        stmt = stmt.where(_language_condition(session, language))
    if flt.potentially_available is not None:
        stmt = stmt.where(Therapist.potentially_available.is_(flt.potentially_available))
    if flt.knows_us is not None:
        stmt = stmt.where(Therapist.knows_us.is_(flt.knows_us))
    if flt.in_cooling is not None:
        cooling = cooling_clause(today)
        stmt = stmt.where(cooling if flt.in_cooling else or_(Therapist.next_contact_at.is_(None), ~cooling))
    if flt.has_email is not None:
        has = (Therapist.email.is_not(None)) & (Therapist.email != "")
        stmt = stmt.where(has if flt.has_email else ~has | Therapist.email.is_(None))
    if flt.has_phone_hours is not None:
        has = (Therapist.phone_hours.is_not(None)) & (Therapist.phone_hours != "")
        stmt = stmt.where(has if flt.has_phone_hours else ~has | Therapist.phone_hours.is_(None))
    return stmt


_LIST_COLUMNS = (
    Therapist.id, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.status, Therapist.plz,
    Therapist.city, Therapist.offers_vt, Therapist.offers_tp, Therapist.offers_ap, Therapist.offers_st,
    Therapist.languages, Therapist.potentially_available, Therapist.knows_us, Therapist.next_contact_at,
    Therapist.email, Therapist.phone, Therapist.phone_hours,
)


def list_therapists(
    session: Session, actor: Actor, flt: TherapistFilter = TherapistFilter(), *, today: date, offset: int = 0, limit: int = 50
) -> tuple[list[TherapistRow], int]:
    """One page of therapists (filtered, sorted and paged in SQL) and the filter's total."""
    actor.require(Permission.view)
    stmt = _filtered(session, flt, today)
    total = records.count(session, stmt, Therapist.id)
    desc = flt.descending
    cols = {
        "name": [Therapist.last_name, Therapist.first_name],
        "plz": [Therapist.plz],
        "city": [Therapist.city],
        "status": [Therapist.status],
        "next_contact": [Therapist.next_contact_at],
        "updated": [Therapist.updated_at],
    }.get(flt.sort, [Therapist.last_name, Therapist.first_name])
    page = records.ordered_page(
        session, stmt.with_only_columns(*_LIST_COLUMNS), records.directed(cols, desc), Therapist.id,
        descending=desc, offset=offset, limit=limit,
    )
    show = actor.can(Permission.view_sensitive)
    rows = []
    for r in page:
        methods = tuple(code for code, on in zip(METHOD_COLUMNS, (r.offers_vt, r.offers_tp, r.offers_ap, r.offers_st)) if on)
        rows.append(
            TherapistRow(
                id=r.id,
                name=" ".join(p for p in (r.title, r.first_name, r.last_name) if p),
                last_name=r.last_name,
                first_name=r.first_name,
                title=r.title,
                status=r.status,
                plz=r.plz,
                city=r.city,
                methods=methods,
                languages=tuple(r.languages or ()),
                potentially_available=r.potentially_available,
                knows_us=r.knows_us,
                next_contact_at=r.next_contact_at,
                in_cooling=is_cooling(r.next_contact_at, today),
                has_email=bool(r.email),
                has_phone_hours=bool(r.phone_hours),
                email=r.email if show else None,
                phone=r.phone if show else None,
            )
        )
    return rows, total


def export_rows(session: Session, actor: Actor, flt: TherapistFilter, *, today: date) -> Iterable[Therapist]:
    """Every therapist of the filter (for the audited CSV export); checks the actor at the call."""
    actor.require(Permission.export)
    actor.require(Permission.view_sensitive)
    stmt = _filtered(session, flt, today).order_by(Therapist.last_name, Therapist.first_name, Therapist.id)
    return iter(session.scalars(stmt))


def language_options(session: Session) -> list[str]:
    """Every language some therapist speaks, sorted (for the filter)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = select(func.jsonb_array_elements_text(type_coerce(Therapist.languages, JSONB)).label("lang")).distinct()
        values = session.scalars(select(literal_column("lang")).select_from(stmt.subquery()))
    else:
        each = func.json_each(Therapist.languages).table_valued("value")
        values = session.scalars(select(each.c.value).select_from(Therapist).join(each, true()).distinct())
    return sorted({str(x) for x in values if x}, key=str.casefold)


def lookup(session: Session, actor: Actor, term: str, *, limit: int = 20) -> list[tuple[int, str]]:
    """(id, 'Nachname, Vorname (PLZ Ort)') of therapists whose name matches, for pickers."""
    return records.lookup(
        session, actor, Therapist, term,
        (Therapist.title, Therapist.last_name, Therapist.first_name, Therapist.plz, Therapist.city),
        (Therapist.last_name, Therapist.first_name, Therapist.id),
        lambda title, ln, fn, plz, city: f"{ln}, {' '.join(p for p in (title, fn) if p)} ({plz or '–'} {city or ''})".replace(" )", ")"),
        limit=limit,
    )


# --------------------------------------------------------------------------- detail


@dataclass(frozen=True)
class TherapistDetail:
    id: int
    sensitive_visible: bool
    values: dict[str, Any]
    status: TherapistStatus
    status_reason: Optional[str]
    status_changed_on: Optional[date]
    in_cooling: bool
    coordinates_source: Any
    has_coordinates: bool
    external_id: Optional[str]
    hand_edited_fields: list[str]
    delisted_on: Optional[date]
    created_at: datetime
    updated_at: datetime
    exclusions: list[ExclusionRow]
    can_edit: bool = False
    # the status actions this actor may take now, from therapist_status.TRANSITIONS
    allowed_actions: tuple[TherapistAction, ...] = ()

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.values.get("title"), self.values["first_name"], self.values["last_name"]) if p)

    def can(self, action: TherapistAction) -> bool:
        return action in self.allowed_actions

    def action_label(self, action: TherapistAction) -> str:
        return therapist_status.action_label(self.status, action)


def get_therapist(session: Session, actor: Actor, therapist_id: int, *, today: date) -> TherapistDetail:
    actor.require(Permission.view)
    t = KIND.load(session, therapist_id)
    show, values = records.visible_values(KIND, actor, t)
    can_edit = actor.can(Permission.edit)
    return TherapistDetail(
        id=t.id,
        sensitive_visible=show,
        values=values,
        status=t.status,
        status_reason=t.status_reason,
        status_changed_on=t.status_changed_on,
        in_cooling=is_cooling(t.next_contact_at, today),
        coordinates_source=t.coordinates_source,
        has_coordinates=t.lat is not None and t.lon is not None,
        external_id=t.external_id,
        hand_edited_fields=list(t.hand_edited_fields or []),
        delisted_on=t.delisted_on,
        created_at=t.created_at,
        updated_at=t.updated_at,
        exclusions=exclusions_for_therapist(session, actor, t.id),
        can_edit=can_edit,
        allowed_actions=tuple(therapist_status.allowed_actions(t.status)) if can_edit else (),
    )


def therapist_history(session: Session, actor: Actor, therapist_id: int) -> list[HistoryItem]:
    """Inquiries with outcomes, e-mails, calls and audit entries, newest first."""
    actor.require(Permission.view)
    show = actor.can(Permission.view_sensitive)
    items: list[HistoryItem] = []
    inquiries = list(session.scalars(select(Inquiry).where(Inquiry.therapist_id == therapist_id)))
    if inquiries:
        counts: dict[int, dict[Outcome, int]] = {}
        for inquiry_id, outcome, n in session.execute(
            select(InquiryPatient.inquiry_id, InquiryPatient.outcome, func.count())
            .where(InquiryPatient.inquiry_id.in_([i.id for i in inquiries]))
            .group_by(InquiryPatient.inquiry_id, InquiryPatient.outcome)
        ):
            counts.setdefault(inquiry_id, {})[outcome] = n
        for inq in inquiries:
            at = inq.answered_at or inq.sent_at or inq.queued_at or inq.created_at
            summary = ", ".join(f"{n}× {o.label}" for o, n in sorted(counts.get(inq.id, {}).items(), key=lambda x: x[0].value))
            title = f"Anfrage A{inq.id} ({inq.channel.label}, {inq.size} Patient:innen)"
            detail = inq.status.label + (f" · {summary}" if summary else "")
            items.append(HistoryItem(at, "Anfrage", title, detail, inq.status))
    for m in session.scalars(select(OutboxEmail).where(OutboxEmail.therapist_id == therapist_id)):
        detail = f"an {m.to_address}" if show else ""
        if m.last_error and show:
            detail += f" · Fehler: {m.last_error}"
        items.append(HistoryItem(m.sent_at or m.queued_at or m.created_at, "E-Mail", m.subject, detail, m.state))
    for c in session.scalars(select(PhoneCall).where(PhoneCall.therapist_id == therapist_id)):
        detail = " · ".join(x for x in (c.outcome, c.notes if show else None) if x)
        items.append(HistoryItem(c.scheduled_start, "Telefonat", f"Telefonat ({c.purpose.label}, Versuch {c.attempt})", detail, c.state))
    items += audit_items(session, "therapist", [therapist_id], show=show)
    items.sort(key=lambda i: i.at, reverse=True)
    return items


def method_labels(codes: Sequence[str]) -> str:
    return ", ".join(Method(c).label for c in codes)
