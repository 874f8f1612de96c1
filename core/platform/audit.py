"""The audit log: who changed or exported what, written in the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, Optional

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from core.platform.models import AuditEntry
from core.platform.permissions import Actor, Permission
from core.platform.vocab import AUDIT_ACTIONS


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


def record_many(
    session: Session, actor: Actor, entries: list[tuple[str, str, Optional[int], Optional[dict[str, Any]], datetime]]
) -> None:
    """Several audit entries (action, entity, entity id, changes, at) written at once with
    one INSERT in the caller's transaction: for bookkeeping that records many rows of one
    kind (delivered mails). Unlike `record` nothing is added to the session, so the ORM's
    flush (and its length check, done here for the three short columns) is skipped."""
    if not entries:
        return
    columns = AuditEntry.__table__.c
    limits = {"actor_name": columns.actor_name.type.length, "action": columns.action.type.length,
              "entity": columns.entity.type.length}
    rows = [
        {"at": at, "user_id": actor.user_id, "actor_name": actor.username, "action": action, "entity": entity,
         "entity_id": entity_id, "changes": _plain(changes) if changes else None}
        for action, entity, entity_id, changes, at in entries
    ]
    for row in rows:
        for name, limit in limits.items():
            if len(row[name] or "") > limit:
                raise ValueError(f"Audit-Eintrag: {name} ist länger als {limit} Zeichen.")
    session.execute(insert(AuditEntry.__table__), rows)


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


def action_label(action: str) -> str:
    """The German label of an audit action (one table: core.platform.vocab.AUDIT_ACTIONS)."""
    return AUDIT_ACTIONS.get(action, action)
