"""What one import run means for each therapist. Pure: plain values in, `Change`s out.

Per therapist a run yields one of (docs/architecture.md, "Imports"):

- **new**: nobody known matches; every value the source gives is proposed;
- **changed**: fields whose value differs, each as old → new. A field edited by hand is
  never overwritten: it becomes a **conflict** that carries both values and is applied only
  when a coordinator picks the import value explicitly;
- **delisted**: known in the searched area before, missing now; proposed as inactive,
  never deleted. A blocked therapist's status is never touched (not by a delisting, not by
  reappearing);
- **unchanged**: nothing differs (nothing is written).

"The source says nothing" (an empty e-mail, no coordinates, no hours this week) never clears
a stored value; only a different value is a change. A value a coordinator already rejected
for a field (`dismissed`) is not proposed again, so re-importing the same data changes
nothing. Entries only for children and adolescents are skipped by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping, Optional

from core.geo.distance import distance_km

KIND_NEW = "new"
KIND_CHANGED = "changed"
KIND_DELISTED = "delisted"
KIND_UNCHANGED = "unchanged"

# The fields an import may propose, in the order a review shows them (Therapist field names;
# "methods" is the set of VT/TP/AP/ST, "coordinates" the pair [lat, lon]).
IMPORT_FIELDS: tuple[str, ...] = (
    "salutation", "title", "first_name", "last_name", "gender",
    "street", "plz", "city", "coordinates",
    "phone", "fax", "email", "website",
    "methods", "offers_individual", "offers_group", "languages", "phone_hours",
)
STATUS_FIELD = "status"
ADDRESS_FIELDS = frozenset({"street", "plz", "city"})
METHOD_FLAG_FIELDS = frozenset({"offers_vt", "offers_tp", "offers_ap", "offers_st"})
COORDINATE_TOLERANCE = 1e-5  # about one metre

SKIP_CHILDREN_ONLY = "Nur Kinder und Jugendliche – übersprungen (Einstellung „Kinder-/Jugendlichen-Praxen importieren“ ist aus)."
SKIP_INSTITUTION = "Eintrag einer Einrichtung, nicht einer Person – übersprungen."


@dataclass
class FieldChange:
    old: Any
    new: Any
    conflict: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "conflict": self.conflict}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FieldChange":
        return cls(data.get("old"), data.get("new"), bool(data.get("conflict")))


@dataclass
class Change:
    kind: str
    fields: dict[str, FieldChange] = field(default_factory=dict)
    note: str = ""

    @property
    def has_conflicts(self) -> bool:
        return any(f.conflict for f in self.fields.values())

    @property
    def is_change(self) -> bool:
        return self.kind != KIND_UNCHANGED

    def fields_json(self) -> dict[str, dict[str, Any]]:
        return {name: fc.as_json() for name, fc in self.fields.items()}


# --------------------------------------------------------------------------- values on both sides


def record_values(record) -> dict[str, Any]:
    """What a `TherapistRecord` proposes per field; None means the source says nothing."""
    coords = None
    if record.lat is not None and record.lon is not None:
        coords = [round(float(record.lat), 6), round(float(record.lon), 6)]
    return {
        "salutation": record.salutation if record.salutation not in (None, "", "none") else None,
        "title": record.title or None,
        "first_name": record.first_name or None,
        "last_name": record.last_name or None,
        "gender": record.gender if record.gender not in (None, "", "unspecified") else None,
        "street": record.street or None,
        "plz": record.plz or None,
        "city": record.city or None,
        "coordinates": coords,
        "phone": record.phone or None,
        "fax": record.fax or None,
        "email": record.email or None,
        "website": record.website or None,
        "methods": sorted(record.methods) or None,
        "offers_individual": record.individual if record.setting_known else None,
        "offers_group": record.group if record.setting_known else None,
        "languages": list(record.languages) or None,
        "phone_hours": record.phone_hours or None,
    }


def therapist_values(therapist) -> dict[str, Any]:
    """The same fields read from a stored therapist (any object with Therapist's attributes)."""
    lat, lon = getattr(therapist, "lat", None), getattr(therapist, "lon", None)
    methods = getattr(therapist, "methods", None)
    if methods is None:
        methods = {c for c, col in (("VT", "offers_vt"), ("TP", "offers_tp"), ("AP", "offers_ap"), ("ST", "offers_st")) if getattr(therapist, col, False)}
    out: dict[str, Any] = {}
    for name in IMPORT_FIELDS:
        if name == "coordinates":
            out[name] = [lat, lon] if lat is not None and lon is not None else None
        elif name == "methods":
            out[name] = sorted(methods)
        else:
            value = getattr(therapist, name, None)
            out[name] = str(value) if value is not None and hasattr(value, "value") else value
    return out


def protected_fields(hand_edited: Iterable[str], *, coordinates_source: Optional[str] = None) -> set[str]:
    """Fields an import must not overwrite: the hand-edited ones, the coordinates when the
    address or the coordinates were set by hand, the methods when any method flag was."""
    protected = set(hand_edited or ())
    if protected & ADDRESS_FIELDS or str(coordinates_source or "") == "manual" or {"lat", "lon"} & protected:
        protected.add("coordinates")
    if protected & METHOD_FLAG_FIELDS:
        protected.add("methods")
    return protected


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == ()


def same_value(name: str, old: Any, new: Any) -> bool:
    """Whether two values of one field mean the same."""
    if _blank(old) and _blank(new):
        return True
    if _blank(old) or _blank(new):
        return False
    if name == "coordinates":
        try:
            return all(math.isclose(float(a), float(b), abs_tol=COORDINATE_TOLERANCE) for a, b in zip(old, new))
        except (TypeError, ValueError):
            return False
    if name == "methods":
        return set(old) == set(new)
    if name == "languages":
        return {str(x).casefold() for x in old} == {str(x).casefold() for x in new}
    if isinstance(old, str) and isinstance(new, str):
        return old.strip() == new.strip()
    return old == new


# --------------------------------------------------------------------------- the per-therapist change


def new_change(incoming: Mapping[str, Any]) -> Change:
    """A therapist nobody knows yet: every value the source gives."""
    return Change(
        KIND_NEW,
        {name: FieldChange(None, incoming[name]) for name in IMPORT_FIELDS if incoming.get(name) is not None},
    )


def diff_therapist(
    incoming: Mapping[str, Any],
    existing: Mapping[str, Any],
    *,
    protected: Collection[str] = (),
    status: str = "active",
    delisted_on: Any = None,
    dismissed: Optional[Mapping[str, Any]] = None,
) -> Change:
    """Changed fields of a known therapist (old → new), conflicts for protected fields.

    `status` and `delisted_on` are the therapist's: a therapist that was made inactive
    because it was delisted and now appears again is proposed as active again; a blocked
    therapist's status is never proposed to change. `dismissed` maps a field to an import
    value a coordinator already rejected for it."""
    dismissed = dismissed or {}
    fields: dict[str, FieldChange] = {}
    for name in IMPORT_FIELDS:
        new = incoming.get(name)
        if new is None:
            continue
        old = existing.get(name)
        if same_value(name, old, new):
            continue
        if name in dismissed and same_value(name, dismissed[name], new):
            continue
        fields[name] = FieldChange(old, new, conflict=name in protected)
    note = ""
    if str(status) == "inactive" and delisted_on is not None:
        fields[STATUS_FIELD] = FieldChange("inactive", "active")
        note = "Wieder in der Arztsuche gelistet."
    return Change(KIND_CHANGED if fields else KIND_UNCHANGED, fields, note)


def delisted_change(*, status: str, delisted_on: Any = None) -> Optional[Change]:
    """A known therapist missing from the searched area: proposed inactive, never deleted.

    None when there is nothing to propose (already marked as delisted). A blocked therapist
    gets the delisting noted, but its status stays blocked."""
    if delisted_on is not None:
        return None
    status = str(status)
    if status == "blocked":
        return Change(KIND_DELISTED, {}, "Nicht mehr in der Arztsuche gelistet; gesperrt – der Status bleibt unverändert.")
    if status == "inactive":
        return Change(KIND_DELISTED, {}, "Nicht mehr in der Arztsuche gelistet; bereits inaktiv.")
    return Change(
        KIND_DELISTED,
        {STATUS_FIELD: FieldChange(status, "inactive")},
        "Nicht mehr in der Arztsuche gelistet – Vorschlag: inaktiv setzen.",
    )


def skip_reason(record, *, include_children_only: bool = False, include_institutions: bool = True) -> Optional[str]:
    """Why a record is not imported at all, or None."""
    if record.children_only and not include_children_only:
        return SKIP_CHILDREN_ONLY
    if not record.is_person and not include_institutions:
        return SKIP_INSTITUTION
    return None


# --------------------------------------------------------------------------- applying a reviewed change


@dataclass
class ApplyPlan:
    values: dict[str, Any]
    kept_conflicts: list[str]
    released: set[str]  # hand-edited fields whose import value was chosen explicitly


def plan_apply(fields: Mapping[str, FieldChange], selected: Optional[Collection[str]] = None) -> ApplyPlan:
    """Which values to write when a change is accepted.

    Accepting the whole change (`selected` None) writes every field except the conflicts,
    which keep the hand-edited value. Accepting chosen fields writes exactly those; a chosen
    conflict takes the import value and the field is no longer treated as hand-edited."""
    values: dict[str, Any] = {}
    kept: list[str] = []
    released: set[str] = set()
    for name, fc in fields.items():
        if selected is None:
            if fc.conflict:
                kept.append(name)
                continue
        elif name not in selected:
            continue
        elif fc.conflict:
            released.add(name)
        values[name] = fc.new
    return ApplyPlan(values, kept, released)


# --------------------------------------------------------------------------- delisting


@dataclass(frozen=True)
class SearchArea:
    """Where a run looked: a set of PLZ (a saved file: the PLZ it contains; a snapshot: its
    postcode area) or a circle (a live search: centre and radius)."""

    plzs: Optional[frozenset[str]] = None
    centre: Optional[tuple[float, float]] = None
    radius_km: Optional[float] = None

    def contains(self, plz: Optional[str], lat: Optional[float], lon: Optional[float]) -> bool:
        if self.centre is not None and self.radius_km is not None:
            if lat is None or lon is None:
                return False
            return distance_km(self.centre, (lat, lon)) <= self.radius_km
        if self.plzs is not None:
            return bool(plz) and plz in self.plzs
        return False


@dataclass(frozen=True)
class KnownTherapist:
    id: int
    plz: Optional[str]
    lat: Optional[float]
    lon: Optional[float]
    status: str = "active"
    delisted_on: Any = None
    from_import: bool = True


def delisted(known: Iterable[KnownTherapist], seen_ids: Collection[int], areas: Iterable[SearchArea]) -> list[int]:
    """Therapists from earlier imports inside one of the searched areas that this run did not
    see. Therapists entered by hand (never imported) are not proposed."""
    areas = list(areas)
    if not areas:
        return []
    out = []
    for t in known:
        if not t.from_import or t.id in seen_ids:
            continue
        if any(a.contains(t.plz, t.lat, t.lon) for a in areas):
            out.append(t.id)
    return out
