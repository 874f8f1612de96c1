"""The audit log as German text for the Protokoll page: areas, record references
(P152, A253 …), change keys and values in German, times in Europe/Berlin.

The stored entries keep their technical form (English keys, ISO UTC times); only this view
translates them, so the log stays exact and the screen stays readable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy.orm import Session

from core.mail import templates as mt
from core.platform import audit, references
from core.platform.formatting import format_date, format_datetime, format_number
from core.platform.permissions import Actor
from core.platform.vocab import (
    CallState, EmailState, InquiryChannel, InquiryOrigin, InquiryStatus, Labeled, Outcome, ResponseType, Role, SearchStatus,
    TherapistStatus,
)

ENTITY_LABELS: dict[str, str] = {
    "user": "Benutzer",
    "patient": "Patient:in",
    "therapist": "Therapeut:in",
    "search": "Platzsuche",
    "inquiry": "Anfrage",
    "outbox_email": "E-Mail",
    "phone_call": "Telefonat",
    "therapist_document": "Dokument",
    "demo_data": "Demodaten",
    "plan": "Planung",
    "session": "Sitzung",
}

CHANGE_LABELS: dict[str, str] = {
    "therapist_id": "Therapeut:in", "patient_id": "Patient:in", "search_id": "Platzsuche", "inquiry_id": "Anfrage",
    "search_ids": "Platzsuchen", "inquiry_ids": "Anfragen", "therapist_ids": "Therapeut:innen",
    "placed_therapist_id": "vermittelt an", "email_id": "E-Mail", "copy_of": "Kopie von",
    "template": "Vorlage", "channel": "Kanal", "origin": "Herkunft", "status": "Status", "state": "Status",
    "previous_status": "vorheriger Status", "response_type": "Antwort", "outcomes": "Ergebnisse",
    "cooling_until": "Abkühlung bis", "next_attempt_at": "nächster Versuch", "sent_at": "gesendet",
    "reason": "Grund", "why": "Grund", "note": "Notiz", "size": "Größe", "role": "Rolle", "username": "Benutzername",
    "failed_logins": "Fehlversuche", "filename": "Datei", "error": "Fehler", "message_id": "Message-ID",
    "region": "Region", "by": "auf welchem Weg", "attempts_before": "Versuche vorher", "last_error": "letzter Fehler",
    "subject": "Betreff", "body_changed": "Text geändert", "mails_cancelled": "E-Mails storniert",
    "calls_cancelled": "Anrufe abgesagt", "inquiries_cancelled": "Anfragen storniert", "how": "Art",
    "count": "Anzahl", "counts": "Anzahl", "scale": "Umfang", "seed": "Startwert", "today": "Stichtag",
    "patients": "Patient:innen", "therapists": "Therapeut:innen", "created": "angelegt", "skipped": "übersprungen",
    "format": "Format", "rows": "Zeilen", "file": "Datei", "plz": "PLZ", "city": "Ort", "display_name": "Anzeigename",
}
_REF_KEYS = {
    "therapist_id": "therapist", "patient_id": "patient", "search_id": "search", "inquiry_id": "inquiry",
    "placed_therapist_id": "therapist", "search_ids": "search", "inquiry_ids": "inquiry", "therapist_ids": "therapist",
}
_ENUMS: dict[str, tuple[type[Labeled], ...]] = {
    "channel": (InquiryChannel,), "origin": (InquiryOrigin,), "response_type": (ResponseType,), "role": (Role,),
    "status": (InquiryStatus, SearchStatus, TherapistStatus), "previous_status": (InquiryStatus,),
    "state": (EmailState, CallState),
}
_ISO_DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_D = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def entity_label(entity: Optional[str]) -> str:
    return ENTITY_LABELS.get(entity or "", entity or "–")


def entity_reference(entity: Optional[str], entity_id: Optional[int]) -> str:
    """P152 / T81 / S150 / A253 for the kinds that have one; else "E-Mail 12"."""
    if entity_id is None:
        return "–"
    if entity in references.PREFIXES:
        return references.ref(entity, entity_id)
    return f"{entity_label(entity)} {format_number(entity_id)}"


def _value(key: str, value: Any) -> Optional[str]:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if key in _REF_KEYS and isinstance(value, int):
        return references.ref(_REF_KEYS[key], value)
    if key in _REF_KEYS and isinstance(value, list) and all(isinstance(v, int) for v in value):
        return ", ".join(references.ref(_REF_KEYS[key], v) for v in value)
    if key == "template" and isinstance(value, str):
        return mt.template_title(value)
    if isinstance(value, list):
        parts = [_value(key, v) or "–" for v in value]
        return " → ".join(parts) if len(value) == 2 and key not in _REF_KEYS else ", ".join(parts)
    if isinstance(value, dict):
        inner = [f"{_key_label(k)}: {v}" for k, v in ((k, _value(k, v)) for k, v in value.items()) if v is not None]
        if key == "outcomes":  # search id → outcome
            inner = [f"{references.search_ref(int(k)) if str(k).isdigit() else k}: {_outcome(v)}" for k, v in value.items()]
        return ", ".join(inner) or None
    if isinstance(value, str):
        if _ISO_DT.match(value):
            try:
                return format_datetime(datetime.fromisoformat(value))
            except ValueError:
                return value
        if _ISO_D.match(value):
            try:
                return format_date(date.fromisoformat(value))
            except ValueError:
                return value
        for enum in _ENUMS.get(key, ()):
            if value in enum.__members__:
                return enum(value).label
        return value
    if isinstance(value, (int, float)):
        return format_number(value)
    return str(value)


def _outcome(value: Any) -> str:
    return Outcome(value).label if str(value) in Outcome.__members__ else str(value)


def _key_label(key: str) -> str:
    return CHANGE_LABELS.get(key, key.replace("_", " "))


def describe_changes(changes: Optional[dict[str, Any]]) -> str:
    """"Anfrage: A12 · Vorlage: Anfrage an Therapeut:in · nächster Versuch: 01.07.2026 12:00";
    empty values (None) are left out."""
    if not changes:
        return ""
    parts = []
    for key, value in changes.items():
        text = _value(key, value)
        if text is not None:
            parts.append(f"{_key_label(key)}: {text}")
    return " · ".join(parts)


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    when: str  # Berlin time
    person: str
    action: str
    area: str
    record: str
    changes: str


def audit_rows(
    session: Session, actor: Actor, *, action_prefix: str = "", username: str = "", entity: str = "",
    offset: int = 0, limit: int = 50,
) -> tuple[list[AuditRow], int]:
    entries, total = audit.search_entries(
        session, actor, action_prefix=action_prefix, username=username, entity=entity, offset=offset, limit=limit,
    )
    return [
        AuditRow(
            at=e.at, when=format_datetime(e.at), person=e.actor_name or "–", action=audit.action_label(e.action),
            area=entity_label(e.entity), record=entity_reference(e.entity, e.entity_id), changes=describe_changes(e.changes),
        )
        for e in entries
    ], total
