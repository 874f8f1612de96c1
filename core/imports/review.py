"""The review queue ("Änderungen prüfen"): pending import changes, accepted or rejected as a
whole, per therapist or per field. Accepting is the only way an import writes a therapist.

- new → a therapist is created with the proposed values (coordinates from the response,
  otherwise the address goes to the geocoding job);
- changed → the chosen fields are written; conflicts (hand-edited fields) keep the
  hand-edited value unless the coordinator picks the import value explicitly;
- delisted → the therapist is set inactive (never deleted); a blocked therapist stays blocked;
- reappearing after a delisting → active again (never for a blocked therapist).

Every apply is audited in the same transaction; the caller's unit of work commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Optional, Sequence

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session, defer

from core.geo.geocoding import request_geocoding
from core.imports import diff, runs
from core.platform import audit
from core.platform.formatting import BERLIN
from core.platform.locks import lock_import_queue
from core.platform.models import METHOD_COLUMNS, AuditEntry, ImportChange, ImportRun, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.validation import phone_display
from core.platform.vocab import CoordinatesSource, Gender, ImportChangeKind, ReviewState, Salutation, TherapistStatus
from core.registry import therapists as registry

FILTERS: dict[str, str] = {
    "all": "Alle",
    "new": "Neu",
    "changed": "Geändert",
    "delisted": "Nicht mehr gelistet",
    "conflicts": "Konflikte",
}
FIELD_LABELS: dict[str, str] = {
    "salutation": "Anrede", "title": "Titel", "first_name": "Vorname", "last_name": "Nachname", "gender": "Geschlecht",
    "street": "Straße und Hausnummer", "plz": "PLZ", "city": "Ort", "coordinates": "Koordinaten",
    "phone": "Telefon", "fax": "Fax", "email": "E-Mail", "website": "Website",
    "methods": "Verfahren", "offers_individual": "Einzeltherapie", "offers_group": "Gruppentherapie",
    "languages": "Sprachen", "phone_hours": "Telefonische Erreichbarkeit", "status": "Status",
}
FIELD_ORDER = {name: i for i, name in enumerate((*diff.IMPORT_FIELDS, diff.STATUS_FIELD))}  # JSONB keeps no key order
DELISTED_REASON = "Nicht mehr in der Arztsuche 116117 gelistet (Import)."


class ReviewError(ValueError):
    """A change cannot be applied as asked; the message is German."""


@dataclass
class FieldRow:
    name: str
    label: str
    old: str
    new: str
    conflict: bool


@dataclass
class ChangeRow:
    id: int
    run_id: int
    kind: str
    kind_label: str
    therapist_id: Optional[int]
    therapist_ref: str
    display_name: str
    plz: str
    has_conflicts: bool
    note: str
    candidates: list[int]
    fields: list[FieldRow]
    warnings: list[str] = field(default_factory=list)
    other_hours: list[str] = field(default_factory=list)  # raw data of other hour types, for reading


@dataclass
class ApplySummary:
    applied: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    kept_conflicts: int = 0
    geocoding: int = 0
    skipped: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        parts = [f"{self.applied} Änderungen übernommen"]
        if self.created:
            parts.append(f"{self.created} Therapeut:innen neu angelegt")
        if self.updated:
            parts.append(f"{self.updated} aktualisiert")
        if self.deactivated:
            parts.append(f"{self.deactivated} inaktiv gesetzt")
        if self.kept_conflicts:
            parts.append(f"{self.kept_conflicts} Konfliktfelder behielten den Handwert")
        if self.geocoding:
            parts.append(f"{self.geocoding} Adressen an die Geokodierung übergeben")
        text = ", ".join(parts) + "."
        if self.skipped:
            text += " Nicht übernommen: " + "; ".join(self.skipped[:5])
        return text


# --------------------------------------------------------------------------- queries


def _filtered(stmt, kind_filter: str, run_id: Optional[int]):
    stmt = stmt.where(ImportChange.review_state == ReviewState.pending)
    if kind_filter == "conflicts":
        stmt = stmt.where(ImportChange.has_conflicts.is_(True))
    elif kind_filter in ("new", "changed", "delisted"):
        stmt = stmt.where(ImportChange.kind == ImportChangeKind(kind_filter))
    elif kind_filter != "all":
        raise ReviewError(f"Unbekannter Filter „{kind_filter}“.")
    if run_id is not None:
        stmt = stmt.where(ImportChange.run_id == run_id)
    return stmt


def pending_counts(session: Session, actor: Actor, *, run_id: Optional[int] = None) -> dict[str, int]:
    """How many pending changes each filter shows."""
    actor.require(Permission.edit)
    return {
        key: session.execute(_filtered(select(func.count(ImportChange.id)), key, run_id)).scalar_one()
        for key in FILTERS
    }


def _text(name: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return "–"
    if name == "coordinates":
        return f"{float(value[0]):.5f}, {float(value[1]):.5f}".replace(".", ",")
    if name in ("offers_individual", "offers_group"):
        return "ja" if value else "nein"
    if name == "status":
        try:
            return TherapistStatus(value).label
        except ValueError:
            return str(value)
    if name in ("salutation", "gender"):
        return _enum_label(name, value)
    if isinstance(value, list):
        return ", ".join(str(x) for x in value)
    if name in ("phone", "fax"):
        return phone_display(value) if str(value).startswith("+") else str(value)
    return str(value)


def _enum_label(name: str, value: Any) -> str:
    from_vocab = {"salutation": Salutation, "gender": Gender}[name]
    try:
        return from_vocab(value).label
    except ValueError:
        return str(value)


def review_queue(
    session: Session,
    actor: Actor,
    *,
    kind_filter: str = "all",
    run_id: Optional[int] = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ChangeRow], int]:
    """One page of pending changes (oldest first) and the total for the filter."""
    actor.require(Permission.edit)
    total = session.execute(_filtered(select(func.count(ImportChange.id)), kind_filter, run_id)).scalar_one()
    changes = session.execute(
        _filtered(select(ImportChange), kind_filter, run_id).order_by(ImportChange.id).limit(limit).offset(offset)
    ).scalars()
    rows = []
    for c in changes:
        kind = ImportChangeKind(c.kind)
        fields = [
            FieldRow(name, FIELD_LABELS.get(name, name), _text(name, fc.get("old")), _text(name, fc.get("new")), bool(fc.get("conflict")))
            for name, fc in sorted((c.fields or {}).items(), key=lambda item: FIELD_ORDER.get(item[0], 99))
        ]
        rows.append(
            ChangeRow(
                id=c.id, run_id=c.run_id, kind=kind.value, kind_label=kind.label,
                therapist_id=c.therapist_id, therapist_ref=f"T{c.therapist_id}" if c.therapist_id else "",
                display_name=c.display_name or "", plz=c.plz or "", has_conflicts=bool(c.has_conflicts),
                note=c.note or "", candidates=list(c.candidates or []), fields=fields,
                warnings=list((c.record or {}).get("warnings") or []),
                other_hours=[
                    f"{h[1]} ({h[0]}): {h[2] or '?'} {h[3]}" for h in (c.record or {}).get("other_hours") or []
                    if isinstance(h, list) and len(h) == 4
                ],
            )
        )
    return rows, total


# --------------------------------------------------------------------------- accepting and rejecting


def pending_ids(session: Session, actor: Actor, *, kind_filter: str = "all", run_id: Optional[int] = None) -> list[int]:
    actor.require(Permission.edit)
    return list(session.execute(_filtered(select(ImportChange.id), kind_filter, run_id).order_by(ImportChange.id)).scalars())


def accept(
    session: Session,
    actor: Actor,
    change_ids: Sequence[int],
    *,
    now: datetime,
    fields: Optional[dict[int, Sequence[str]]] = None,
) -> ApplySummary:
    """Apply pending changes. `fields` optionally names, per change id, the fields to take
    (per-field review); without it the whole change is taken except its conflicts.

    Works in chunks of 1,000: new therapists of a chunk are inserted together, so accepting
    a whole first import of 40,000 entries does not cost one round trip per therapist."""
    actor.require(Permission.edit)
    lock_import_queue(session)  # decisions and runs take turns (core.platform.locks)
    summary = ApplySummary()
    today = now.astimezone(BERLIN).date()

    def selected_for(change_id: int) -> Optional[set[str]]:
        return None if fields is None or change_id not in fields else set(fields[change_id])

    for chunk_start in range(0, len(change_ids), 1000):
        chunk = list(change_ids[chunk_start : chunk_start + 1000])
        kinds = session.execute(
            select(ImportChange.id, ImportChange.kind, ImportChange.review_state, ImportChange.display_name)
            .where(ImportChange.id.in_(chunk)).order_by(ImportChange.id)
        ).all()
        for row in kinds:
            if row.review_state != ReviewState.pending:
                summary.skipped.append(f"{row.display_name}: bereits entschieden")
        new_ids = [r.id for r in kinds if r.review_state == ReviewState.pending and r.kind == ImportChangeKind.new]
        other_ids = [r.id for r in kinds if r.review_state == ReviewState.pending and r.kind != ImportChangeKind.new]
        if new_ids:
            _create_new(session, actor, new_ids, selected_for, summary, now=now)
        if other_ids:
            changes = session.execute(
                select(ImportChange).options(defer(ImportChange.record)).where(ImportChange.id.in_(other_ids)).order_by(ImportChange.id)
            ).scalars().all()
            therapist_ids = {c.therapist_id for c in changes if c.therapist_id}
            therapists = {t.id: t for t in session.execute(select(Therapist).where(Therapist.id.in_(therapist_ids))).scalars()}
            for change in changes:
                _apply_one(session, actor, change, therapists.get(change.therapist_id), selected_for(change.id), summary, now=now, today=today)
        session.flush()
    return summary


def _create_new(session: Session, actor: Actor, ids: list[int], selected_for, summary: ApplySummary, *, now: datetime) -> None:
    """New therapists of one chunk: one multi-row INSERT for the therapists, one for their audit
    entries, one UPDATE for the changes (no ORM object per row; 40,000 at once stay fast)."""
    rows = session.execute(
        select(ImportChange.id, ImportChange.run_id, ImportChange.external_id, ImportChange.display_name,
               ImportChange.fields, ImportChange.values_hash, ImportChange.entry_hash)
        .where(ImportChange.id.in_(ids)).order_by(ImportChange.id)
    ).all()
    wanted = {r.external_id for r in rows if r.external_id}
    taken = set(session.execute(select(Therapist.external_id).where(Therapist.external_id.in_(wanted))).scalars()) if wanted else set()
    planned = [(row, *_new_therapist_values(row, selected_for(row.id), taken, now=now)) for row in rows]
    # RETURNING without a parameter order keeps the multi-row INSERT batched; rows are matched
    # back by their content (two rows with equal content are interchangeable)
    # the table, not the entity: Core's multi-row INSERT (the ORM bulk path splits rows by
    # which values are None and ends up with one statement per row)
    table = Therapist.__table__
    returned = session.execute(
        insert(table).returning(table.c.id, *(table.c[c.key] for c in _MATCH_COLUMNS)), [values for _, values, _ in planned]
    ).all()
    ids_by_content: dict[tuple, list[int]] = {}
    for r in returned:
        ids_by_content.setdefault(tuple(r[1:]), []).append(r[0])
    entries, links, partial = [], {}, []
    for row, values, plan in planned:
        therapist_id = ids_by_content[tuple(values[c.key] for c in _MATCH_COLUMNS)].pop(0)
        if values["lat"] is None and (values.get("street") or values.get("plz")):
            request_geocoding(session, session.get(Therapist, therapist_id), now=now)
            summary.geocoding += 1
        links[row.id] = therapist_id
        if selected_for(row.id) is not None:
            partial.append((row.id, {name: {**fc, "decision": "applied" if name in plan.values else "rejected"}
                                     for name, fc in (row.fields or {}).items()}))
        summary.created += 1
        summary.applied += 1
        entries.append({
            "at": now, "user_id": actor.user_id, "actor_name": actor.username, "action": "therapist.import",
            "entity": "therapist", "entity_id": therapist_id,
            "changes": {"run": row.run_id, "change": row.id, "fields": sorted(plan.values)},
        })
    session.execute(insert(AuditEntry.__table__), entries)
    session.execute(
        update(ImportChange)
        .where(ImportChange.id.in_(list(links)))
        .values(
            therapist_id=case(links, value=ImportChange.id),
            review_state=ReviewState.applied, reviewed_by=actor.user_id, reviewed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    for change_id, decided in partial:
        session.execute(
            update(ImportChange).where(ImportChange.id == change_id)
            .values(fields=decided, note="Teilweise übernommen.").execution_options(synchronize_session=False)
        )


_MATCH_COLUMNS = (Therapist.source_hash, Therapist.external_id, Therapist.last_name, Therapist.first_name, Therapist.plz, Therapist.street)


def _new_therapist_values(row, selected: Optional[set[str]], taken: set[str], *, now: datetime) -> tuple[dict[str, Any], diff.ApplyPlan]:
    """The INSERT values of a new therapist from an accepted proposal (same mapping as `_set_values`)."""
    fcs = {name: diff.FieldChange.from_json(fc) for name, fc in (row.fields or {}).items()}
    plan = diff.plan_apply(fcs, selected)
    v = plan.values
    coords = v.get("coordinates")
    methods = v.get("methods") or []
    values: dict[str, Any] = {
        "first_name": v.get("first_name") or "", "last_name": v.get("last_name") or row.display_name or "?",
        "salutation": v.get("salutation") or Salutation.none, "title": v.get("title"),
        "gender": v.get("gender") or Gender.unspecified,
        "street": v.get("street"), "plz": v.get("plz"), "city": v.get("city"),
        "lat": float(coords[0]) if coords else None, "lon": float(coords[1]) if coords else None,
        "coordinates_source": CoordinatesSource.arztsuche if coords else CoordinatesSource.missing,
        "geocode_pending": False,
        "phone": v.get("phone"), "fax": v.get("fax"), "email": v.get("email"), "website": v.get("website"),
        "languages": list(v.get("languages") or []), "phone_hours": v.get("phone_hours"),
        "offers_individual": True if v.get("offers_individual") is None else bool(v["offers_individual"]),
        "offers_group": bool(v.get("offers_group")),
        "status": TherapistStatus.active, "hand_edited_fields": [],
        "external_id": None, "source_hash": row.values_hash, "source_entry_hash": row.entry_hash,
        "created_at": now, "updated_at": now,
    }
    for code, column in METHOD_COLUMNS.items():
        values[column] = code in methods
    if row.external_id and row.external_id not in taken:
        values["external_id"] = row.external_id
        taken.add(row.external_id)
    return values, plan


def accept_all(session: Session, actor: Actor, *, now: datetime, kind_filter: str = "all", run_id: Optional[int] = None) -> ApplySummary:
    """Bulk accept of everything the filter shows (conflicts keep the hand-edited value)."""
    return accept(session, actor, pending_ids(session, actor, kind_filter=kind_filter, run_id=run_id), now=now)


def reject(session: Session, actor: Actor, change_ids: Sequence[int], *, now: datetime) -> int:
    """Reject pending changes: nothing is written; the rejected values are not proposed again."""
    actor.require(Permission.edit)
    lock_import_queue(session)  # decisions and runs take turns (core.platform.locks)
    n = 0
    for chunk_start in range(0, len(change_ids), 1000):
        chunk = list(change_ids[chunk_start : chunk_start + 1000])
        for change in session.execute(select(ImportChange).where(ImportChange.id.in_(chunk))).scalars():
            if change.review_state != ReviewState.pending:
                continue
            change.review_state = ReviewState.rejected
            change.reviewed_by, change.reviewed_at = actor.user_id, now
            n += 1
    session.flush()
    if n:
        audit.record(session, actor, "import.reject", "import_change", change_ids[0] if len(change_ids) == 1 else None,
                     {"changes": list(change_ids)[:200], "count": n}, now=now)
    return n


def assign(session: Session, actor: Actor, change_id: int, therapist_id: int, *, now: datetime) -> ChangeRow:
    """An ambiguous proposal belongs to one of its candidates: it becomes a change of that
    therapist (fields old → new, conflicts for hand-edited ones) and stays in the queue."""
    actor.require(Permission.edit)
    lock_import_queue(session)  # decisions and runs take turns (core.platform.locks)
    change = session.get(ImportChange, change_id)
    if change is None or change.review_state != ReviewState.pending:
        raise ReviewError("Diese Änderung ist bereits entschieden.")
    if change.therapist_id is not None or not change.candidates:
        raise ReviewError("Nur mehrdeutige neue Einträge lassen sich zuordnen.")
    if therapist_id not in change.candidates:
        raise ReviewError(f"T{therapist_id} gehört nicht zu den vorgeschlagenen Therapeut:innen.")
    t = session.get(Therapist, therapist_id)
    values = {name: fc.get("new") for name, fc in (change.fields or {}).items()}  # a new change carries every value
    result = runs.diff_against(t, values)
    change.therapist_id = therapist_id
    change.kind = ImportChangeKind.changed
    change.fields = result.fields_json()
    change.has_conflicts = result.has_conflicts
    change.candidates = None
    change.note = f"Von Hand T{therapist_id} zugeordnet." + (" Keine abweichenden Felder." if not result.fields else "")
    session.flush()
    audit.record(session, actor, "import.assign", "import_change", change.id, {"therapist": therapist_id}, now=now)
    rows, _ = review_queue(session, actor, kind_filter="all", limit=1, offset=_position(session, change.id))
    return rows[0]


def _position(session: Session, change_id: int) -> int:
    return session.execute(
        select(func.count(ImportChange.id)).where(ImportChange.review_state == ReviewState.pending, ImportChange.id < change_id)
    ).scalar_one()


def reject_all(session: Session, actor: Actor, *, now: datetime, kind_filter: str = "all", run_id: Optional[int] = None) -> int:
    return reject(session, actor, pending_ids(session, actor, kind_filter=kind_filter, run_id=run_id), now=now)


def _decide(change: ImportChange, actor: Actor, now: datetime, decisions: dict[str, str], *, partial: bool) -> None:
    change.fields = {
        name: {**fc, "decision": decisions.get(name, "rejected")} for name, fc in (change.fields or {}).items()
    }
    change.review_state = ReviewState.applied
    change.reviewed_by, change.reviewed_at = actor.user_id, now
    if partial and change.note is None:
        change.note = "Teilweise übernommen."


def _apply_one(
    session: Session,
    actor: Actor,
    change: ImportChange,
    therapist: Optional[Therapist],
    selected: Optional[set[str]],
    summary: ApplySummary,
    *,
    now: datetime,
    today: date,
) -> None:
    fcs = {name: diff.FieldChange.from_json(fc) for name, fc in (change.fields or {}).items()}
    plan = diff.plan_apply(fcs, selected)
    decisions = {name: "applied" for name in plan.values}
    decisions.update({name: "kept" for name in plan.kept_conflicts})
    kind = ImportChangeKind(change.kind)

    if therapist is None:
        summary.skipped.append(f"{change.display_name}: Therapeut:in nicht gefunden")
        return
    elif kind == ImportChangeKind.delisted:
        if "status" in plan.values and therapist.status == TherapistStatus.active:
            registry.deactivate(session, actor, therapist.id, today=today, now=now, reason=DELISTED_REASON)
            summary.deactivated += 1
        therapist.delisted_on = today
        therapist.updated_at = now
        audit.record(session, actor, "therapist.import_delisted", "therapist", therapist.id,
                     {"run": change.run_id, "change": change.id, "status": str(therapist.status)}, now=now)
    else:
        _update(session, actor, therapist, plan, change.values_hash, now=now, today=today)
        therapist.source_entry_hash = change.entry_hash
        if therapist.geocode_pending:
            summary.geocoding += 1
        summary.updated += 1
        summary.kept_conflicts += len(plan.kept_conflicts)
        audit.record(session, actor, "therapist.import_update", "therapist", therapist.id,
                     {"run": change.run_id, "change": change.id,
                      "fields": {k: [fcs[k].old, fcs[k].new] for k in plan.values if k not in registry.SENSITIVE},
                      "sensitive_fields": sorted(k for k in plan.values if k in registry.SENSITIVE),
                      "kept_conflicts": plan.kept_conflicts}, now=now)
    summary.applied += 1
    _decide(change, actor, now, decisions, partial=selected is not None and set(decisions) != set(fcs))


def _set_values(t: Therapist, values: dict[str, Any]) -> bool:
    """Write import values onto a therapist; True when the coordinates came with them."""
    coords = False
    for name, value in values.items():
        if name == "coordinates":
            if value:
                t.lat, t.lon = float(value[0]), float(value[1])
                t.coordinates_source = CoordinatesSource.arztsuche
                t.geocode_pending = False
                coords = True
        elif name == "methods":
            for code, column in METHOD_COLUMNS.items():
                setattr(t, column, code in (value or []))
        elif name == "status":
            continue
        else:
            setattr(t, name, value)
    return coords


def _update(session: Session, actor: Actor, t: Therapist, plan: diff.ApplyPlan, values_hash: Optional[str], *, now: datetime, today: date) -> None:
    address_before = (t.street, t.plz, t.city)
    has_coords = _set_values(t, plan.values)
    if plan.released:
        t.hand_edited_fields = sorted(set(t.hand_edited_fields or []) - plan.released)
    if "status" in plan.values and plan.values["status"] == "active" and t.status == TherapistStatus.inactive:
        registry.unblock(session, actor, t.id, today=today, now=now, note="Wieder in der Arztsuche 116117 gelistet.")
        t.delisted_on = None
    if values_hash:
        # the data of this run is decided; what was left out is remembered as dismissed values
        t.source_hash = values_hash
    if (t.street, t.plz, t.city) != address_before and not has_coords:
        request_geocoding(session, t, now=now)
    t.updated_at = now


# --------------------------------------------------------------------------- runs for the page


@dataclass
class RunRow:
    id: int
    source: str
    filename: str
    status: str
    status_label: str
    started_at: datetime
    finished_at: Optional[datetime]
    records: int
    new: int
    changed: int
    delisted: int
    unchanged: int
    skipped: int
    errors: int
    messages: list[str]
    message: str


SOURCE_LABELS = {"upload": "Hochgeladen", "folder": "Importordner", "live": "Live-Abruf"}


def recent_runs(session: Session, actor: Actor, *, limit: int = 20) -> list[RunRow]:
    actor.require(Permission.edit)
    rows = []
    for r in session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)).scalars():
        details = r.details or {}
        rows.append(
            RunRow(
                id=r.id, source=SOURCE_LABELS.get(r.source, r.source), filename=r.filename or "",
                status=str(r.status), status_label=r.status.label, started_at=r.started_at, finished_at=r.finished_at,
                records=r.records_total, new=r.new_count, changed=r.changed_count, delisted=r.delisted_count,
                unchanged=r.unchanged_count, skipped=r.skipped_count, errors=r.error_count,
                messages=list(r.errors or []), message=str(details.get("message") or ""),
            )
        )
    return rows
