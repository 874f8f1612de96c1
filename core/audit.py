"""The audit log: who changed or exported what, written in the caller's transaction."""

from __future__ import annotations

from functools import lru_cache

from datetime import date, datetime
from enum import Enum
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEntry
from core.permissions import Actor


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: Optional[int],
    changes: Optional[dict[str, Any]] = None,
    *,
    now: datetime,
) -> AuditEntry:
    """Add an audit entry to the session; it commits (or rolls back) with the change."""
    entry = AuditEntry(
        at=now,
        user_id=actor.user_id,
        actor_name=actor.username,
        action=action,
        entity=entity,
        entity_id=entity_id,
        changes=_plain(changes) if changes else None,
    )
    session.add(entry)
    return entry


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Changed fields as {field: [old, new]}."""
    return {k: [_plain(before.get(k)), _plain(v)] for k, v in after.items() if before.get(k) != v}


def entries_for(session: Session, entity: str, entity_id: int, limit: int = 200) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )


def search_entries(
    session: Session,
    actor: Actor,
    *,
    action_prefix: str = "",
    username: str = "",
    entity: str = "",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditEntry], int]:
    """The audit log for admins, newest first, filtered and paged in SQL."""
    from sqlalchemy import func

    from core.permissions import Permission

    actor.require(Permission.admin)
    stmt = select(AuditEntry)
    if action_prefix:
        stmt = stmt.where(AuditEntry.action.startswith(action_prefix))
    if username:
        stmt = stmt.where(AuditEntry.actor_name == username.strip().lower())
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset(offset).limit(limit)))
    return rows, total


ACTION_LABELS: dict[str, str] = {
    "login.ok": "Anmeldung",
    "login.failed": "Anmeldung fehlgeschlagen",
    "login.locked": "Konto gesperrt (zu viele Fehlversuche)",
    "login.refused_locked": "Anmeldung abgewiesen (gesperrt)",
    "login.refused_inactive": "Anmeldung abgewiesen (deaktiviert)",
    "login.unknown_user": "Anmeldung mit unbekanntem Namen",
    "logout": "Abmeldung",
    "user.create": "Benutzer angelegt",
    "user.change_role": "Rolle geändert",
    "user.disable": "Benutzer deaktiviert",
    "user.enable": "Benutzer aktiviert",
    "user.reset_password": "Passwort zurückgesetzt",
    "user.change_own_password": "Eigenes Passwort geändert",
    "email.create": "E-Mail erstellt",
    "email.approve": "E-Mail freigegeben",
    "email.edit": "E-Mail bearbeitet",
    "email.cancel": "E-Mail storniert",
    "email.retry": "E-Mail erneut versucht",
    "email.resend": "E-Mail erneut gesendet",
    "email.sent": "E-Mail versendet",
    "email.failed": "E-Mail-Versand fehlgeschlagen",
    "document.add": "Dokument angehängt",
    "document.delete": "Dokument entfernt",
    "call.follow_up": "Nachfass-Anruf geplant",
    "plan.discard": "Vorschläge verworfen",
}

_ENTITY_PREFIX = {"patient": "Patient:in", "therapist": "Therapeut:in"}


@lru_cache(maxsize=1)
def all_action_labels() -> dict[str, str]:
    """Every action's German label for the audit log: the ones above plus those the
    capability modules keep next to their actions (imported late: they import this module)."""
    from core import inquiries, patients, searches

    labels = dict(ACTION_LABELS)
    labels.update(searches.ACTION_LABELS)
    labels.update(inquiries.ACTION_LABELS)
    for action, label in patients.ACTION_LABELS.items():  # short labels for the entity's own history
        entity = action.split(".", 1)[0]
        labels.setdefault(action, f"{_ENTITY_PREFIX.get(entity, entity)}: {label}")
    return labels


def action_label(action: str) -> str:
    return all_action_labels().get(action, action)
