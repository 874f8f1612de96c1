"""No text longer than its column reaches the database.

Services validate their fields (core.platform.validation); this guard catches the rest
before the flush, for every model: a value longer than its String(n) column becomes a
German validation error naming the field, never a database error (which on PostgreSQL
would quote the whole row, password hash and health fields included).
"""

from __future__ import annotations

import threading

from sqlalchemy import String, event, inspect
from sqlalchemy.orm import Session

from core.platform.validation import ValidationErrors, label

_lock = threading.Lock()
_installed = False


class FieldTooLong(ValidationErrors):
    """A text is longer than its column allows; `errors` = {field: German message}."""


def too_long(obj: object) -> dict[str, str]:
    """{field: message} for every string attribute of a mapped object longer than its column."""
    errors: dict[str, str] = {}
    mapper = inspect(obj).mapper
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        length = getattr(column.type, "length", None)
        if not isinstance(column.type, String) or not length:
            continue
        value = getattr(obj, attr.key, None)
        if isinstance(value, str) and len(value) > length:
            errors[attr.key] = f"{label(attr.key)} ist zu lang (höchstens {length} Zeichen, jetzt {len(value)})."
    return errors


def _before_flush(session: Session, _context, _instances) -> None:
    errors: dict[str, str] = {}
    for obj in list(session.new) + list(session.dirty):
        errors.update(too_long(obj))
    if errors:
        raise FieldTooLong(errors)


def install() -> None:
    """Check lengths before every flush of every session (idempotent)."""
    global _installed
    with _lock:
        if not _installed:
            event.listen(Session, "before_flush", _before_flush)
            _installed = True
