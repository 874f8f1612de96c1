"""The steps patients and therapists share, written once and parametrised by a `RecordKind`:
create and update (validate, duplicates, city from the PLZ, audit without copying contact
or health data), the viewer-safe projection for the detail, the common list filters
(PLZ prefix, city, name tokens), sorting and paging in SQL, the German filter summary and
the name lookup for pickers.

`core.registry.patients` and `core.registry.therapists` declare what differs (fields,
rules, duplicate keys, what happens after a save) and call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Container, Mapping, Optional, Sequence

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from core.geo import plz as geo_plz
from core.platform import audit
from core.platform import validation as v
from core.platform.models import PlzCentroid
from core.platform.permissions import Actor, Permission
from core.platform.text import contains_ci, control_chars_message, has_control_chars


class RegistryError(ValueError):
    """A registry action that is not possible; the message is German."""


@dataclass(frozen=True)
class DuplicateMatch:
    id: int
    label: str
    reason: str


class DuplicateWarning(RegistryError):
    """Possible duplicates exist; repeat with allow_duplicate=True to save anyway."""

    def __init__(self, matches: Sequence[DuplicateMatch]):
        self.matches = list(matches)
        names = "; ".join(f"{m.label} (Nr. {m.id})" for m in self.matches)
        super().__init__(f"Mögliche Dublette: {names}. Bitte prüfen, ob es dieselbe Person ist.")


def fold(text: Optional[str]) -> str:
    """Names compared for duplicates: case and inner white space ignored."""
    return " ".join((text or "").split()).casefold()


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


class _PlusOne:
    """A PLZ container that also accepts the record's own, already stored PLZ."""

    def __init__(self, inner: Container[str], extra: str):
        self.inner, self.extra = inner, extra

    def __contains__(self, item: object) -> bool:
        return item == self.extra or item in self.inner


# --------------------------------------------------------------------------- the kind


@dataclass(frozen=True)
class RecordKind:
    """What differs between patients and therapists; everything else is below, once."""

    entity: str  # "patient" / "therapist": audit entity and action prefix
    model: type
    fields: tuple[str, ...]
    sensitive: frozenset[str]
    not_found: str  # German message for a missing record
    error: type[RegistryError]
    clean: Callable[..., dict[str, Any]]  # (raw, *, today, known_plz, from_csv) -> storable values
    from_model: Callable[[Any], dict[str, Any]]  # record -> values in `fields` terms
    find_duplicates: Callable[[Session, Mapping[str, Any], Optional[int]], list[DuplicateMatch]]
    duplicate_fields: frozenset[str]  # a change of one of these checks for duplicates again
    to_fields: Callable[[Mapping[str, Any]], dict[str, Any]] = dict  # storable values -> `fields` terms
    create_defaults: Mapping[str, Any] = field(default_factory=dict)
    after_create: Callable[[Session, Any, datetime], None] = lambda session, obj, now: None
    # (session, record, before, changes, now), after the new values are set
    after_update: Callable[[Session, Any, Mapping[str, Any], Mapping[str, Any], datetime], None] = (
        lambda session, obj, before, changes, now: None
    )

    def load(self, session: Session, record_id: int) -> Any:
        obj = session.get(self.model, record_id)
        if obj is None:
            raise self.error(self.not_found)
        return obj


def refuse_control_chars(collector: v.Collector, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Raw values with a NUL (or another control character) become an error of their field
    and are left out, so no validator and no database ever sees them."""
    kept = {}
    for key, value in raw.items():
        if has_control_chars(value):
            collector.fail(key, control_chars_message(v.label(key)))
        else:
            kept[key] = value
    return kept


def _audit_create_values(kind: RecordKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """Audit entries name filled-in contact/health fields but do not copy their content."""
    return {
        k: ("(geändert)" if k in kind.sensitive and val not in (None, [], "") else val)
        for k, val in kind.to_fields(values).items()
    }


def _refuse_duplicates(kind: RecordKind, session: Session, values: Mapping[str, Any], exclude_id: Optional[int]) -> None:
    dups = kind.find_duplicates(session, values, exclude_id)
    if dups:
        raise DuplicateWarning(dups)


def create(
    kind: RecordKind, session: Session, actor: Actor, raw: Mapping[str, Any], *, now: datetime, today: date,
    allow_duplicate: bool = False,
) -> Any:
    """Validate and insert a record; nothing is saved on error."""
    actor.require(Permission.edit)
    plz_table = PlzTable(session)
    values = kind.clean(raw, today=today, known_plz=plz_table.known())
    if not allow_duplicate:
        _refuse_duplicates(kind, session, values, None)
    if values.get("plz") and not values.get("city"):
        values["city"] = plz_table.city(values["plz"])
    obj = kind.model(**values, **kind.create_defaults, created_at=now, updated_at=now)
    session.add(obj)
    kind.after_create(session, obj, now)
    session.flush()
    audit.record(session, actor, f"{kind.entity}.create", kind.entity, obj.id, _audit_create_values(kind, values), now=now)
    return obj


def update(
    kind: RecordKind, session: Session, actor: Actor, record_id: int, raw: Mapping[str, Any], *, now: datetime,
    today: date, allow_duplicate: bool = False,
) -> Any:
    """Change the given fields (others keep their values); every rule is checked on the result."""
    actor.require(Permission.edit)
    obj = kind.load(session, record_id)
    before = kind.from_model(obj)
    merged = {**before, **{k: val for k, val in raw.items() if k in kind.fields}}
    plz_table = PlzTable(session)
    # An unchanged, already stored PLZ stays acceptable even if the table no longer lists it.
    known = plz_table.known()
    if known is not None and before.get("plz") and merged.get("plz") == before.get("plz"):
        known = _PlusOne(known, before["plz"])
    values = kind.clean(merged, today=today, known_plz=known)
    changes = audit.diff(before, kind.to_fields(values))
    if not changes:
        return obj
    if not allow_duplicate and kind.duplicate_fields & changes.keys():
        _refuse_duplicates(kind, session, values, obj.id)
    if values.get("plz") and not values.get("city") and "plz" in changes:
        values["city"] = plz_table.city(values["plz"])
    for k, val in values.items():
        setattr(obj, k, val)
    kind.after_update(session, obj, before, changes, now)
    obj.updated_at = now
    session.flush()
    audit.record(
        session, actor, f"{kind.entity}.update", kind.entity, obj.id,
        {k: (["…", "(geändert)"] if k in kind.sensitive else val) for k, val in changes.items()},
        now=now,
    )
    return obj


def visible_values(kind: RecordKind, actor: Actor, obj: Any) -> tuple[bool, dict[str, Any]]:
    """(may the actor see sensitive fields, the record's values without the hidden ones)."""
    show = actor.can(Permission.view_sensitive)
    values = kind.from_model(obj)
    return show, {f: values[f] for f in kind.fields if show or f not in kind.sensitive}


# --------------------------------------------------------------------------- lists


@dataclass(frozen=True, kw_only=True)
class ListFilter:
    """The filters every registry list has; a kind's filter adds its own."""

    statuses: tuple[Any, ...] = ()  # the kind's status enum members
    plz_prefix: str = ""
    city: str = ""
    name: str = ""
    sort: str = "name"
    descending: bool = False

    # (field, label) of the free-text filters, checked before any SQL runs
    TEXT_FILTERS = (("plz_prefix", "PLZ beginnt mit"), ("city", "Ort"), ("name", "Name"))

    def common_parts(self) -> list[str]:
        """"Status: offen", "PLZ 10…", "Ort „Berlin“", "Name „Mül“" for the filters that are set."""
        statuses = ", ".join(s.label for s in self.statuses)
        texts = (("Status: {}", statuses), ("PLZ {}…", self.plz_prefix), ("Ort „{}“", self.city), ("Name „{}“", self.name))
        return [text.format(value) for text, value in texts if value]

    def problems(self) -> dict[str, str]:
        """German errors for filter values no query can take (NUL bytes …); a kind adds its own."""
        return {
            key: control_chars_message(label)
            for key, label in self.TEXT_FILTERS
            if has_control_chars(getattr(self, key, ""))
        }

    def check(self) -> None:
        """Raise ValidationErrors before any SQL runs when a filter value is not usable."""
        errors = self.problems()
        if errors:
            raise v.ValidationErrors(errors)


# sort keys every list offers (German labels); a kind adds its own
COMMON_SORTS = {"name": "Name", "plz": "PLZ", "city": "Ort", "status": "Status"}


def plz_digits(prefix: str) -> str:
    """The ASCII digits of a PLZ prefix filter, at most five."""
    return "".join(ch for ch in prefix if "0" <= ch <= "9")[:5]


def name_condition(model: Any, term: str):
    """Every word of `term` in the first or the last name (case-insensitive, literal)."""
    return [or_(contains_ci(model.first_name, t), contains_ci(model.last_name, t)) for t in term.split()]


def filter_common(stmt: Select, model: Any, flt: ListFilter) -> Select:
    """PLZ prefix, city and name of a list filter."""
    flt.check()
    prefix = plz_digits(flt.plz_prefix)
    if flt.statuses:
        stmt = stmt.where(model.status.in_(list(flt.statuses)))
    if prefix:
        stmt = stmt.where(model.plz.startswith(prefix))
    if flt.city.strip():
        stmt = stmt.where(contains_ci(model.city, flt.city.strip()))
    return stmt.where(*name_condition(model, flt.name))


def count(session: Session, stmt: Select, id_column: Any) -> int:
    return session.scalar(select(func.count()).select_from(stmt.with_only_columns(id_column).order_by(None).subquery())) or 0


def ordered_page(
    session: Session, stmt: Select, order: list, id_column: Any, *, descending: bool, offset: int, limit: int,
) -> list:
    """One page of `stmt` in `order` (columns already directed), the id as tie-breaker."""
    order = [*order, id_column.desc() if descending else id_column.asc()]
    return session.execute(stmt.order_by(*order).offset(max(offset, 0)).limit(max(min(limit, 500), 1))).all()


def directed(columns: Sequence[Any], descending: bool) -> list:
    return [c.desc() if descending else c.asc() for c in columns]


def lookup(
    session: Session, actor: Actor, model: Any, term: str, columns: Sequence[Any], order: Sequence[Any],
    label: Callable[..., str], *, limit: int = 20,
) -> list[tuple[int, str]]:
    """(id, German label) of the records whose name matches `term`, for pickers."""
    actor.require(Permission.view)
    if has_control_chars(term):
        raise v.ValidationErrors({"name": control_chars_message("Name")})
    stmt = select(model.id, *columns).where(*name_condition(model, term)).order_by(*order).limit(limit)
    return [(row[0], label(*row[1:])) for row in session.execute(stmt)]
