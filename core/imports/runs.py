"""Import runs: one file (or one live answer) becomes an `ImportRun` with its proposed changes.

Nothing here writes a therapist: a run only records what changed (new / changed fields /
delisted) as pending `ImportChange`s for the review queue (`core.imports.review`). The steps
(docs/architecture.md, "Imports"):

1. the file's SHA-256: a file already applied is recorded as "bereits importiert" and nothing
   else happens;
2. parsing (`core.imports.parse`); a file that cannot be read is a failed run with the
   German reason, nothing else is written;
3. per record: skipped (children-only unless configured, duplicates), matched by identity
   keys (`core.imports.identity`; ambiguous → review), compared (`core.imports.diff`);
   values are normalised like the registry does (phones as E.164, checked e-mail);
4. known therapists of the searched area that the file does not contain: delisted;
5. one audit entry for the run.

Re-importing the same data changes nothing: a therapist whose stored source hash equals the
incoming values is unchanged without a field-by-field diff, a value rejected in review is
not proposed again, and a proposal that is still pending is not made twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Optional, Sequence

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from core.imports import diff, identity
from core.imports.parse import parse_bytes
from core.imports.records import ImportFormatError, ParseResult, TherapistRecord
from core.platform import audit
from core.platform import validation as v
from core.platform.formatting import BERLIN, format_datetime
from core.platform.locks import lock_import_queue
from core.platform.models import ImportChange, ImportRun, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import ImportChangeKind, ImportRunStatus, ReviewState, TherapistStatus

SOURCE_UPLOAD = "upload"
SOURCE_FOLDER = "folder"
SOURCE_LIVE = "live"
MAX_STORED_MESSAGES = 300

_GERMAN_NATIONAL = re.compile(r"0[1-9]\d{1,4}[ /-]?[1-9]\d{2,8}")
TEXT_LIMITS = {"title": 40, "first_name": 100, "last_name": 100, "street": 255, "city": 100, "website": 255}


@dataclass
class RunOutcome:
    """What a run did, for the page, the job log and tests."""

    run_id: Optional[int]
    status: str
    message: str
    filename: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def already_imported(self) -> bool:
        return self.status == ImportRunStatus.skipped.value

    @property
    def failed(self) -> bool:
        return self.status == ImportRunStatus.failed.value


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def values_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- normalising incoming values


def normalised_values(record: TherapistRecord) -> tuple[dict[str, Any], list[str]]:
    """`diff.record_values` in the form the registry stores (E.164 phones, checked e-mail and
    web address, texts cut to the column length); problems in German."""
    values = diff.record_values(record)
    problems: list[str] = []
    for name in ("phone", "fax"):
        raw = values.get(name)
        if raw:
            fast = _GERMAN_NATIONAL.fullmatch(raw)
            if fast:
                # the usual 116117 spelling "0221 4710123": E.164 is +49 and the digits without
                # the trunk 0 (what normalise_phone gives for it; its full check costs ~0.15 ms)
                values[name] = "+49" + raw[1:].replace(" ", "").replace("/", "").replace("-", "")
                continue
            try:
                values[name] = v.normalise_phone(raw, field=name)
            except v.FieldError:
                values[name] = raw[:32]
                problems.append(f"{v.label(name)} „{raw}“ ist keine gültige Telefonnummer; unverändert übernommen.")
    if values.get("email"):
        email = values["email"]
        if email.isascii():
            # the parser checked the syntax; the domain in lower case as the registry stores it
            # (the full email-validator check costs ~1 ms per address, too much for 40,000)
            local, _, domain = email.rpartition("@")
            values["email"] = f"{local}@{domain.lower()}"[:255]
        else:
            try:
                values["email"] = v.validate_email(email)  # stored addresses are ASCII
            except v.FieldError:
                problems.append(f"E-Mail-Adresse „{email}“ ist ungültig; ignoriert.")
                values["email"] = None
    if values.get("website"):
        try:
            values["website"] = v.validate_website(values["website"])
        except v.FieldError:
            problems.append(f"Web-Adresse „{values['website']}“ ist ungültig; ignoriert.")
            values["website"] = None
    for name, limit in TEXT_LIMITS.items():
        if isinstance(values.get(name), str) and len(values[name]) > limit:
            values[name] = values[name][:limit]
    return values, problems


def other_hours_summary(record: TherapistRecord) -> list[list[Any]]:
    """The other hour types (raw data) per type and weekday, without repeating dates:
    [[type, label, weekday, "09:00-13:00, …"], …]."""
    seen: dict[tuple, list[Any]] = {}
    for h in record.other_hours:
        key = (h["type"], h["weekday"], tuple(h["ranges"]))
        if key not in seen:
            seen[key] = [h["type"], h["label"], h["weekday"], ", ".join(h["ranges"])]
    return list(seen.values())[:40]


def record_extras(record: TherapistRecord) -> dict[str, Any]:
    """What the review shows beside the fields (not written to the therapist)."""
    return {
        "display_name": record.display_name,
        "generation": record.generation,
        "index": record.index,
        "other_hours": other_hours_summary(record),
        "phone_dates": [list(d) for d in record.phone_dates],
        "no_hours": record.no_hours,
        "procedures": record.procedures,
        "specialties": record.specialties,
        "warnings": record.warnings,
        "children": record.children,
        "adults": record.adults,
    }


# --------------------------------------------------------------------------- known therapists


_KNOWN_COLUMNS = (
    Therapist.id, Therapist.salutation, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.gender,
    Therapist.street, Therapist.plz, Therapist.city, Therapist.lat, Therapist.lon, Therapist.coordinates_source,
    Therapist.phone, Therapist.fax, Therapist.email, Therapist.website,
    Therapist.offers_vt, Therapist.offers_tp, Therapist.offers_ap, Therapist.offers_st,
    Therapist.offers_individual, Therapist.offers_group, Therapist.languages, Therapist.phone_hours,
    Therapist.status, Therapist.delisted_on, Therapist.external_id, Therapist.source_hash, Therapist.hand_edited_fields,
)


_INDEX_COLUMNS = (
    Therapist.id, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.street, Therapist.plz,
    Therapist.email, Therapist.lat, Therapist.lon, Therapist.status, Therapist.delisted_on, Therapist.external_id,
    Therapist.source_hash, Therapist.source_entry_hash,
)


class _Known:
    """All therapists once, indexed by identity keys (a run over 40,000 entries reads the
    table in one query instead of one per entry). Only the columns for matching are read for
    everybody; the full rows only for therapists whose data differs (`full_rows`)."""

    def __init__(self, session: Session):
        self.session = session
        self.rows = {row.id: row for row in session.execute(select(*_INDEX_COLUMNS))}
        self._full: dict[int, Any] = {}
        self.index = identity.IdentityIndex.build(
            (
                row.id,
                identity.keys_for(
                    first_name=row.first_name, last_name=row.last_name, plz=row.plz, street=row.street, email=row.email
                ),
            )
            for row in self.rows.values()
        )

    def full_rows(self, ids: Iterable[int]) -> dict[int, Any]:
        missing = sorted({i for i in ids if i not in self._full})
        for start in range(0, len(missing), 1000):
            chunk = missing[start : start + 1000]
            for row in self.session.execute(select(*_KNOWN_COLUMNS).where(Therapist.id.in_(chunk))):
                self._full[row.id] = row
        return self._full


class RunContext:
    """What every run of one batch needs to know, read once: the known therapists (by key and
    by PLZ), dismissed values and pending proposals. Runs of a batch write no therapist, so
    the context stays true while it is shared; each run adds its own proposals to it."""

    def __init__(self, session: Session):
        self.known = _Known(session)
        self.dismissed = _dismissed(session)
        self.pending_by_therapist, self.pending_by_key = _pending(session)
        self.by_plz: dict[str, list[int]] = {}
        # digest of the entry last applied → therapist; not for a delisted one (it may come back)
        self.digests: dict[str, int] = {}
        for row in self.known.rows.values():
            if row.plz:
                self.by_plz.setdefault(row.plz, []).append(row.id)
            if row.source_entry_hash and not (row.status == TherapistStatus.inactive and row.delisted_on is not None):
                self.digests[row.source_entry_hash] = row.id

    def reuse(self, digest: str) -> bool:
        """Whether an entry with this digest was applied before (it is not read again)."""
        return digest in self.digests

    def seen_in(self, records: Iterable[TherapistRecord]) -> set[int]:
        """Known therapists the records point at (matched, or candidates of an ambiguous match)."""
        seen: set[int] = set()
        for record in records:
            found = self.known.index.match(identity.record_keys(record))
            if found.therapist_id is not None:
                seen.add(found.therapist_id)
            seen.update(found.candidates)
        return seen


def _dismissed(session: Session) -> dict[int, dict[str, Any]]:
    """Per therapist: import values a coordinator rejected (whole changes, or fields left
    out / conflicts kept when accepting)."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(ImportChange.therapist_id, ImportChange.review_state, ImportChange.fields).where(
            ImportChange.therapist_id.is_not(None),
            ImportChange.kind == ImportChangeKind.changed,
            or_(
                ImportChange.review_state == ReviewState.rejected,
                (ImportChange.review_state == ReviewState.applied) & (ImportChange.has_conflicts | ImportChange.note.is_not(None)),
            ),
        ).order_by(ImportChange.id)
    )
    for therapist_id, state, fields in rows:
        target = out.setdefault(therapist_id, {})
        for name, fc in (fields or {}).items():
            decision = fc.get("decision")
            if state == ReviewState.rejected or decision in ("rejected", "kept"):
                target[name] = fc.get("new")
    return out


def _pending(session: Session) -> tuple[dict[int, list[tuple[int, str, Any]]], dict[str, list[tuple[int, Any]]]]:
    """Pending proposals: by therapist (id, kind, fields) and, for new ones, by identity key."""
    by_therapist: dict[int, list[tuple[int, str, Any]]] = {}
    by_key: dict[str, list[tuple[int, Any]]] = {}
    rows = session.execute(
        select(ImportChange.id, ImportChange.therapist_id, ImportChange.external_id, ImportChange.kind, ImportChange.values_hash)
        .where(ImportChange.review_state == ReviewState.pending)
    )
    for change_id, therapist_id, external_id, kind, vh in rows:
        if therapist_id is not None:
            by_therapist.setdefault(therapist_id, []).append((change_id, str(kind), vh))
        elif external_id:
            by_key.setdefault(external_id, []).append((change_id, vh))
    return by_therapist, by_key


# --------------------------------------------------------------------------- a run


def import_file(
    session: Session,
    actor: Actor,
    *,
    filename: str,
    raw: bytes,
    now: datetime,
    source: str = SOURCE_UPLOAD,
    include_children_only: bool = False,
    area: Optional[diff.SearchArea] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    details: Optional[dict[str, Any]] = None,
    present_elsewhere: Sequence[TherapistRecord] = (),
    parsed: Optional[ParseResult | ImportFormatError] = None,
    seen_elsewhere: Optional[set[int]] = None,
    context: Optional[RunContext] = None,
) -> RunOutcome:
    """Record one run for one file. The caller's unit of work commits.

    `present_elsewhere` are records of other files uploaded together: a therapist listed
    there is not delisted by this file (`seen_elsewhere`: the same as therapist ids).
    `parsed` is the file already parsed (or the error); `context` is shared by a batch."""
    actor.require(Permission.edit)
    lock_import_queue(session)  # one run or decision at a time (it reads the pending proposals)
    digest = content_hash(raw)
    previous = session.execute(
        select(ImportRun.id, ImportRun.finished_at)
        .where(ImportRun.content_hash == digest, ImportRun.status == ImportRunStatus.done)
        .order_by(ImportRun.id)
        .limit(1)
    ).first()
    if previous is not None:
        message = f"„{filename}“ wurde bereits importiert (Lauf {previous.id} vom {format_datetime(previous.finished_at)}); nichts geändert."
        run = ImportRun(
            source=source, filename=filename[:500], content_hash=digest, status=ImportRunStatus.skipped,
            started_at=now, finished_at=now, created_by=actor.user_id,
            details={**(details or {}), "message": message, "previous_run": previous.id},
        )
        session.add(run)
        session.flush()
        audit.record(session, actor, "import.skipped", "import_run", run.id, {"filename": filename, "previous_run": previous.id}, now=now)
        return RunOutcome(run.id, ImportRunStatus.skipped.value, message, filename)

    run = ImportRun(
        source=source, filename=filename[:500], content_hash=digest, status=ImportRunStatus.running,
        started_at=now, created_by=actor.user_id, details=dict(details or {}),
    )
    session.add(run)
    session.flush()
    if isinstance(parsed, ImportFormatError):
        return fail_run(session, actor, run, parsed.message, now=now)
    if parsed is not None:
        result = parsed
    else:
        context = context or RunContext(session)
        try:
            result = parse_bytes(raw, reference_date=now.astimezone(BERLIN).date(), progress=progress, reuse=context.reuse)
        except ImportFormatError as exc:
            return fail_run(session, actor, run, exc.message, now=now)
    counts = propose_changes(
        session, run, result, now=now, include_children_only=include_children_only, area=area,
        present_elsewhere=present_elsewhere, seen_elsewhere=seen_elsewhere, context=context,
    )
    run.status = ImportRunStatus.done
    run.finished_at = now
    session.flush()
    audit.record(session, actor, "import.run", "import_run", run.id, {"filename": filename, **counts}, now=now)
    return RunOutcome(run.id, ImportRunStatus.done.value, summary_sentence(counts), filename, counts)


def fail_run(session: Session, actor: Actor, run: ImportRun, reason: str, *, now: datetime) -> RunOutcome:
    """A run that could not be read: failed, with the German reason; nothing applied."""
    run.status = ImportRunStatus.failed
    run.finished_at = now
    run.error_count = 1
    run.errors = [reason]
    session.flush()
    audit.record(session, actor, "import.failed", "import_run", run.id, {"filename": run.filename, "reason": reason}, now=now)
    return RunOutcome(run.id, ImportRunStatus.failed.value, f"„{run.filename}“ nicht importiert: {reason}", run.filename or "")


def summary_sentence(counts: dict[str, int]) -> str:
    parts = [
        f"{counts.get('records', 0)} Einträge gelesen",
        f"{counts.get('new', 0)} neu",
        f"{counts.get('changed', 0)} geändert",
        f"{counts.get('delisted', 0)} nicht mehr gelistet",
        f"{counts.get('unchanged', 0)} unverändert",
    ]
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} übersprungen")
    if counts.get("errors"):
        parts.append(f"{counts['errors']} fehlerhaft")
    text = ", ".join(parts) + "."
    if not (counts.get("new") or counts.get("changed") or counts.get("delisted")):
        text += " Keine Änderungen."
    else:
        text += " Die Änderungen warten unter „Änderungen prüfen“."
    return text


def propose_changes(
    session: Session,
    run: ImportRun,
    result: ParseResult,
    *,
    now: datetime,
    include_children_only: bool = False,
    area: Optional[diff.SearchArea] = None,
    present_elsewhere: Sequence[TherapistRecord] = (),
    seen_elsewhere: Optional[set[int]] = None,
    context: Optional[RunContext] = None,
) -> dict[str, int]:
    """The pending changes of one parsed document; fills the run's counts."""
    today = now.astimezone(BERLIN).date()
    ctx = context or RunContext(session)
    known = ctx.known
    known.index.claimed = {}  # claims are per run
    dismissed = ctx.dismissed
    pending_by_therapist, pending_by_key = ctx.pending_by_therapist, ctx.pending_by_key
    messages: list[str] = [s.reason for s in result.skipped] + list(result.warnings)
    rows: list[dict[str, Any]] = []
    superseded: list[int] = []
    seen: set[int] = set()
    counts = {"records": result.entries_total, "new": 0, "changed": 0, "delisted": 0, "unchanged": 0,
              "skipped": len(result.skipped), "errors": len(result.skipped), "ambiguous": 0, "conflicts": 0}

    seen.update(ctx.seen_in(present_elsewhere))
    seen.update(seen_elsewhere or ())
    for digest in result.reused:  # the same entry as applied before: unchanged, not read again
        seen.add(ctx.digests[digest])
        counts["unchanged"] += 1

    usable: list[TherapistRecord] = []
    for record in result.records:
        reason = diff.skip_reason(record, include_children_only=include_children_only)
        if reason:
            counts["skipped"] += 1
            found = known.index.match(identity.record_keys(record))
            if found.therapist_id is not None:
                seen.add(found.therapist_id)  # listed, only not imported: not delisted
            continue
        usable.append(record)
    unique, duplicates = identity.dedupe(usable)
    counts["skipped"] += len(duplicates)
    for d in duplicates:
        messages.append(f"Eintrag {d.index} ({d.display_name}): kommt mehrfach vor – nur einmal übernommen.")

    # matches first (in file order), so the full rows of the therapists to compare come in one query
    planned = []
    for record in unique:
        keys = identity.record_keys(record)
        # the hash of what the source says (before normalising): equal to the therapist's
        # source hash means nothing new, without normalising phones or diffing fields
        planned.append((record, keys, values_hash(diff.record_values(record)), known.index.claim(keys)))
    to_compare = [
        m.therapist_id for _, _, vh, m in planned
        if m.therapist_id is not None and m.kind != "duplicate" and known.rows[m.therapist_id].source_hash != vh
    ]
    full = known.full_rows(to_compare) if to_compare else {}

    for record, keys, vh, match in planned:
        for w in record.warnings:
            messages.append(f"Eintrag {record.index} ({record.display_name}): {w}")
        if match.therapist_id is not None and match.kind != "duplicate":
            row = known.rows[match.therapist_id]
            if row.source_hash == vh and not (row.status == TherapistStatus.inactive and row.delisted_on is not None):
                seen.add(match.therapist_id)
                counts["unchanged"] += 1
                continue
        values, problems = normalised_values(record)
        for w in problems:
            messages.append(f"Eintrag {record.index} ({record.display_name}): {w}")
        extras = {**record_extras(record), "warnings": [*record.warnings, *problems]}
        base = {
            "run_id": run.id, "display_name": record.display_name[:255], "plz": record.plz,
            "review_state": ReviewState.pending, "reviewed_by": None, "reviewed_at": None, "values_hash": vh,
            "entry_hash": record.entry_hash,
        }
        if match.kind == "duplicate":
            counts["skipped"] += 1
            messages.append(f"Eintrag {record.index} ({record.display_name}): kommt mehrfach vor – nur einmal übernommen.")
            continue
        if match.kind == identity.MATCH_AMBIGUOUS:
            seen.update(match.candidates)
            counts["ambiguous"] += 1
            counts["new"] += 1
            change = diff.new_change(values)
            rows.append({**base, "therapist_id": None, "external_id": keys.address or keys.name_plz, "kind": ImportChangeKind.new,
                         "fields": change.fields_json(), "has_conflicts": False, "note": match.reason,
                         "candidates": list(match.candidates), "record": extras})
            continue
        if match.therapist_id is None:
            key = keys.address or keys.name_plz
            earlier = pending_by_key.get(key, []) if key else []
            if any(vh_old == vh for _, vh_old in earlier):
                counts["unchanged"] += 1  # the same proposal is still waiting
                continue
            superseded.extend(cid for cid, _ in earlier if cid is not None)
            counts["new"] += 1
            change = diff.new_change(values)
            rows.append({**base, "therapist_id": None, "external_id": key, "kind": ImportChangeKind.new,
                         "fields": change.fields_json(), "has_conflicts": False, "note": None, "candidates": None, "record": extras})
            continue

        tid = match.therapist_id
        seen.add(tid)
        row = full.get(tid) or known.full_rows([tid])[tid]
        change = diff_against(row, values, dismissed.get(tid))
        if not change.is_change:
            counts["unchanged"] += 1
            continue
        earlier = [c for c in pending_by_therapist.get(tid, []) if c[1] == ImportChangeKind.changed.value]
        if any(vh_old == vh for _, _, vh_old in earlier):
            counts["unchanged"] += 1
            continue
        superseded.extend(cid for cid, _, _ in earlier if cid is not None)
        counts["changed"] += 1
        counts["conflicts"] += int(change.has_conflicts)
        rows.append({**base, "therapist_id": tid, "external_id": keys.address or keys.name_plz, "kind": ImportChangeKind.changed,
                     "fields": change.fields_json(), "has_conflicts": change.has_conflicts, "note": change.note or None,
                     "candidates": None, "record": extras})

    for tid in _delisted_ids(ctx, seen, result, area):
        row = known.rows[tid]
        if any(kind == ImportChangeKind.delisted.value for _, kind, _ in pending_by_therapist.get(tid, [])):
            continue
        change = diff.delisted_change(status=str(row.status), delisted_on=row.delisted_on)
        if change is None:
            continue
        counts["delisted"] += 1
        name = " ".join(p for p in (row.title, row.first_name, row.last_name) if p)
        rows.append({"run_id": run.id, "display_name": name[:255], "plz": row.plz, "review_state": ReviewState.pending,
                     "reviewed_by": None, "reviewed_at": None, "values_hash": None, "entry_hash": None, "therapist_id": tid, "external_id": row.external_id,
                     "kind": ImportChangeKind.delisted, "fields": change.fields_json(), "has_conflicts": False,
                     "note": change.note, "candidates": None, "record": {"delisted_on": today.isoformat()}})

    if superseded:
        session.execute(
            update(ImportChange)
            .where(ImportChange.id.in_(superseded), ImportChange.review_state == ReviewState.pending)
            .values(review_state=ReviewState.rejected, reviewed_at=now, note=f"Ersetzt durch Lauf {run.id}.")
        )
    for chunk in _chunks(rows, 2000):
        session.execute(insert(ImportChange.__table__), chunk)  # Core: one multi-row INSERT per chunk
    for r in rows:  # later runs of the batch see these proposals as pending
        vh_new = r.get("values_hash")
        if r["therapist_id"] is not None:
            pending_by_therapist.setdefault(r["therapist_id"], []).append((None, str(r["kind"]), vh_new))
        elif r["external_id"] and not r.get("candidates"):
            pending_by_key.setdefault(r["external_id"], []).append((None, vh_new))

    run.records_total = counts["records"]
    run.new_count = counts["new"]
    run.changed_count = counts["changed"]
    run.delisted_count = counts["delisted"]
    run.unchanged_count = counts["unchanged"]
    run.skipped_count = counts["skipped"]
    run.error_count = counts["errors"]
    run.errors = messages[:MAX_STORED_MESSAGES]
    run.details = {
        **(run.details or {}),
        "format": result.format,
        "generations": sorted(result.generations),
        "more_results": result.more_results,
        "messages_total": len(messages),
        "ambiguous": counts["ambiguous"],
        "conflicts": counts["conflicts"],
        "superseded": len(superseded),
    }
    session.flush()
    return counts


def diff_against(row, values: dict[str, Any], dismissed: Optional[dict[str, Any]] = None) -> diff.Change:
    """The change of normalised incoming values against one stored therapist (row or model)."""
    return diff.diff_therapist(
        values,
        diff.therapist_values(row),
        protected=diff.protected_fields(row.hand_edited_fields or (), coordinates_source=row.coordinates_source),
        status=str(row.status),
        delisted_on=row.delisted_on,
        dismissed=dismissed,
    )


def _delisted_ids(ctx: RunContext, seen: set[int], result: ParseResult, area: Optional[diff.SearchArea]) -> list[int]:
    """Known imported therapists of the searched area this run did not see. A result list the
    site cut short (`moreResults`) says nothing about who is missing."""
    if result.more_results:
        return []
    if area is None:
        if result.area_plz:
            area = diff.SearchArea(plzs=frozenset({result.area_plz}))
        else:
            plzs = frozenset(r.plz for r in result.records if r.plz)
            if not plzs:
                return []
            area = diff.SearchArea(plzs=plzs)
    rows = ctx.known.rows
    if area.centre is None and area.plzs is not None:
        # only the therapists of those PLZ (a batch of 800 files must not scan 40,000 rows each time)
        selected = (rows[tid] for plz in sorted(area.plzs) for tid in ctx.by_plz.get(plz, ()))
    else:
        selected = iter(rows.values())
    candidates = (
        diff.KnownTherapist(row.id, row.plz, row.lat, row.lon, str(row.status), row.delisted_on, row.external_id is not None)
        for row in selected
    )
    return diff.delisted(candidates, seen, [area])


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

