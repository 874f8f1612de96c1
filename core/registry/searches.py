"""Platzsuche (search) lifecycle: the state machine of a search as a pure function, and
the services that start, pause, resume and cancel a patient's search.

States: active → successful | paused | cancelled; paused → active | cancelled;
successful and cancelled are final. One open (active or paused) search per patient;
starting one needs a complete patient (`missing_for_search`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.platform import audit, events
from core.platform.formatting import format_datetime
from core.platform.models import Patient, Search, Therapist
from core.platform.locks import lock_for_search_change
from core.platform.permissions import Actor, Permission
from core.platform.vocab import PatientStatus, SearchStatus


class SearchError(ValueError):
    """A search action that is not possible now; the message is German."""


class IncompletePatient(SearchError):
    """The patient lacks what a search needs; `missing` lists the German field names."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__("Platzsuche kann noch nicht starten – es fehlt: " + ", ".join(missing) + ".")


class SearchAction(StrEnum):
    pause = "pause"
    resume = "resume"
    cancel = "cancel"
    succeed = "succeed"


TRANSITIONS: dict[tuple[SearchStatus, SearchAction], SearchStatus] = {
    (SearchStatus.active, SearchAction.pause): SearchStatus.paused,
    (SearchStatus.active, SearchAction.cancel): SearchStatus.cancelled,
    (SearchStatus.active, SearchAction.succeed): SearchStatus.successful,
    (SearchStatus.paused, SearchAction.resume): SearchStatus.active,
    (SearchStatus.paused, SearchAction.cancel): SearchStatus.cancelled,
}
OPEN_STATES = frozenset({SearchStatus.active, SearchStatus.paused})

_ACTION_WORDS = {
    SearchAction.pause: "pausiert",
    SearchAction.resume: "fortgesetzt",
    SearchAction.cancel: "abgebrochen",
    SearchAction.succeed: "als erfolgreich abgeschlossen",
}


def next_status(current: SearchStatus, action: SearchAction) -> SearchStatus:
    """The state after `action`, or SearchError naming why it is not allowed."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        raise SearchError(
            f"Eine Platzsuche im Status „{current.label}“ kann nicht {_ACTION_WORDS[action]} werden."
        )
    return target


def allowed_actions(current: SearchStatus) -> list[SearchAction]:
    return [a for (s, a) in TRANSITIONS if s == current]


# What a patient needs before a search may start (the German names shown to the user).
REQUIRED_FOR_SEARCH: tuple[tuple[str, str], ...] = (
    ("contracts_signed", "Verträge unterschrieben"),
    ("consent_given", "Einwilligung Datenschutz"),
    ("plz", "PLZ"),
    ("birth_date", "Geburtsdatum"),
    ("insurer", "Krankenkasse"),
    ("symptoms", "Symptome (mindestens eins)"),
    ("availability", "Zeitliche Verfügbarkeit"),
)


def missing_for_search(patient: Any) -> list[str]:
    """German names of what is missing; works on a Patient or anything with those attributes."""
    missing = []
    for attr, label in REQUIRED_FOR_SEARCH:
        value = getattr(patient, attr, None)
        if value is None or value is False or (isinstance(value, (str, list, tuple)) and not value):
            missing.append(label)
    return missing


def note_line(actor: Actor, text: str, now: datetime) -> str:
    """'[23.11.2026 10:30 (m.mueller)] text' – one line of a search's notes."""
    return f"[{format_datetime(now)} ({actor.username})] {' '.join(text.split())}"


def _append_note(search: Search, actor: Actor, note: Optional[str], now: datetime) -> None:
    if note and note.strip():
        line = note_line(actor, note, now)
        search.notes = f"{search.notes}\n{line}" if search.notes else line


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class SearchInfo:
    id: int
    patient_id: int
    status: SearchStatus
    started_on: date
    paused_on: Optional[date]
    ended_on: Optional[date]
    placed_therapist_id: Optional[int]
    placed_therapist_name: Optional[str]
    success_on: Optional[date]
    notes: Optional[str]
    waiting_days: Optional[int]

    @property
    def actions(self) -> list[SearchAction]:
        return [a for a in allowed_actions(self.status) if a != SearchAction.succeed]


def _info(search: Search, therapist_name: Optional[str], today: date, show_notes: bool) -> SearchInfo:
    waiting = (today - search.started_on).days if search.status in OPEN_STATES else None
    return SearchInfo(
        id=search.id,
        patient_id=search.patient_id,
        status=search.status,
        started_on=search.started_on,
        paused_on=search.paused_on,
        ended_on=search.ended_on,
        placed_therapist_id=search.placed_therapist_id,
        placed_therapist_name=therapist_name,
        success_on=search.success_on,
        notes=search.notes if show_notes else None,
        waiting_days=waiting,
    )


def searches_for_patient(session: Session, actor: Actor, patient_id: int, *, today: date) -> list[SearchInfo]:
    """All searches of a patient, newest first (notes only for roles that see health data)."""
    actor.require(Permission.view)
    rows = session.execute(
        select(Search, Therapist)
        .outerjoin(Therapist, Therapist.id == Search.placed_therapist_id)
        .where(Search.patient_id == patient_id)
        .order_by(Search.started_on.desc(), Search.id.desc())
    ).all()
    show = actor.can(Permission.view_sensitive)
    return [_info(s, t.full_name if t else None, today, show) for s, t in rows]


def open_search(session: Session, patient_id: int) -> Optional[Search]:
    return session.scalars(
        select(Search).where(Search.patient_id == patient_id, Search.status.in_(list(OPEN_STATES))).order_by(Search.id.desc())
    ).first()


# --------------------------------------------------------------------------- services


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise SearchError("Die Platzsuche wurde inzwischen von jemand anderem geändert – bitte die Seite neu laden.") from None


def start_search(
    session: Session, actor: Actor, patient_id: int, *, today: date, now: datetime, note: Optional[str] = None
) -> Search:
    """Open a search for a complete patient; the patient's status becomes 'auf der Suche'."""
    actor.require(Permission.edit)
    patient = session.get(Patient, patient_id, with_for_update=True)
    if patient is None:
        raise SearchError("Diese Patientin / dieser Patient existiert nicht (mehr).")
    missing = missing_for_search(patient)
    if missing:
        raise IncompletePatient(missing)
    existing = open_search(session, patient_id)
    if existing is not None:
        raise SearchError(
            f"Es gibt bereits eine Platzsuche im Status „{existing.status.label}“ "
            f"(seit {existing.started_on:%d.%m.%Y}); bitte diese fortsetzen oder abbrechen."
        )
    search = Search(patient_id=patient_id, status=SearchStatus.active, started_on=today, created_at=now, updated_at=now)
    _append_note(search, actor, note, now)
    session.add(search)
    old_status = patient.status
    patient.status = PatientStatus.searching
    patient.updated_at = now
    _flush(session)
    audit.record(
        session, actor, "search.start", "search", search.id,
        {"patient_id": patient_id, "patient_status": [old_status, patient.status]}, now=now,
    )
    return search


def change_search(
    session: Session,
    actor: Actor,
    search_id: int,
    action: SearchAction,
    *,
    today: date,
    now: datetime,
    note: Optional[str] = None,
    placed_therapist_id: Optional[int] = None,
) -> Search:
    """Pause, resume, cancel (or mark successful) a search, with an optional note."""
    actor.require(Permission.edit)
    # the search's open inquiries (a pause or cancel withdraws it from them), then the search
    lock_for_search_change(session, [search_id])
    search = session.get(Search, search_id, populate_existing=True)
    if search is None:
        raise SearchError("Diese Platzsuche existiert nicht (mehr).")
    old = search.status
    new = next_status(old, action)
    patient = session.get(Patient, search.patient_id)
    changes: dict[str, Any] = {"status": [old, new]}
    if action == SearchAction.resume:
        missing = missing_for_search(patient)
        if missing:
            raise IncompletePatient(missing)
        search.paused_on = None
    elif action == SearchAction.pause:
        search.paused_on = today
    elif action == SearchAction.cancel:
        search.ended_on = today
        if patient.status == PatientStatus.searching:
            patient.status = PatientStatus.search_cancelled
            changes["patient_status"] = [PatientStatus.searching, patient.status]
    elif action == SearchAction.succeed:
        therapist_id = placed_therapist_id or search.placed_therapist_id
        if therapist_id is None:
            raise SearchError("Für eine erfolgreiche Platzsuche muss die vermittelte Therapeut:in feststehen.")
        search.placed_therapist_id = therapist_id
        search.success_on = today
        search.ended_on = today
        patient.status = PatientStatus.in_therapy
        changes["placed_therapist_id"] = therapist_id
    if action == SearchAction.resume and patient.status != PatientStatus.searching:
        changes["patient_status"] = [patient.status, PatientStatus.searching]
        patient.status = PatientStatus.searching
    search.status = new
    search.updated_at = now
    patient.updated_at = now
    _append_note(search, actor, note, now)
    if note and note.strip():
        changes["note"] = "…"  # the text may hold health details; it stays on the search only
    _flush(session)
    audit.record(session, actor, f"search.{action.value}", "search", search.id, changes, now=now)
    if action in (SearchAction.pause, SearchAction.cancel):
        # A paused or cancelled search must not stay in any inquiry still waiting for an answer
        # (the inquiries capability withdraws it: docs/architecture.md, "Events").
        reason = "Platzsuche pausiert" if action == SearchAction.pause else "Platzsuche abgebrochen"
        events.publish(session, events.SearchStopped(actor=actor, now=now, search_id=search.id, action=action.value, reason=reason))
    return search


def pause_search(session: Session, actor: Actor, search_id: int, *, today: date, now: datetime, note: Optional[str] = None) -> Search:
    return change_search(session, actor, search_id, SearchAction.pause, today=today, now=now, note=note)


def resume_search(session: Session, actor: Actor, search_id: int, *, today: date, now: datetime, note: Optional[str] = None) -> Search:
    return change_search(session, actor, search_id, SearchAction.resume, today=today, now=now, note=note)


def cancel_search(session: Session, actor: Actor, search_id: int, *, today: date, now: datetime, note: Optional[str] = None) -> Search:
    return change_search(session, actor, search_id, SearchAction.cancel, today=today, now=now, note=note)


def add_note(session: Session, actor: Actor, search_id: int, note: str, *, now: datetime) -> Search:
    actor.require(Permission.edit)
    if not note or not note.strip():
        raise SearchError("Notiz ist leer – bitte Text eingeben.")
    search = session.get(Search, search_id)
    if search is None:
        raise SearchError("Diese Platzsuche existiert nicht (mehr).")
    _append_note(search, actor, note, now)
    search.updated_at = now
    _flush(session)
    audit.record(session, actor, "search.note", "search", search.id, {"note": "…"}, now=now)
    return search


