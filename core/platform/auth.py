"""Login with lockout, and server-side login sessions behind a signed HttpOnly cookie.

Flow (the browser keeps the login across reloads):
1. `authenticate()` checks the password; five failures lock the account for 15 minutes.
2. `start_session()` creates a LoginSession with a one-time hand-off code (2 minutes).
3. The page's script posts the code to our route `/_app/session`; `exchange_handoff()`
   gives a fresh random token whose signature goes into an HttpOnly cookie.
4. On every new browser connection `resolve_token()` maps the cookie to the user again;
   logout or expiry revoke the row, so an old cookie is worthless.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.config import Settings
from core.platform.models import LoginSession, User
from core.platform.permissions import Actor
from core.platform.users import needs_rehash, hash_password, verify_password
from core.platform.formatting import format_time
from core.platform.models import AuditEntry
from core.platform.text import has_control_chars
from sqlalchemy import delete

COOKIE_NAME = "tp_session"
HANDOFF_SECONDS = 120
_DUMMY_HASH = hash_password("timing-equaliser-not-a-password")


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    message: str = ""
    actor: Optional[Actor] = None
    handoff_code: Optional[str] = None
    session_id: Optional[int] = None


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, username=user.username, role=user.role, display_name=user.display_name)


def _locked_message(until: datetime) -> str:

    return (
        "Zu viele fehlgeschlagene Anmeldungen: Das Konto ist bis "
        f"{format_time(until)} Uhr gesperrt. Bitte warten Sie oder wenden Sie sich an die Administration."
    )


def authenticate(session: Session, settings: Settings, username: str, password: str, *, now: datetime) -> LoginResult:
    """Check a password. Failed attempts, lockouts and logins are audited."""
    name = (username or "").strip().lower()
    generic = "Benutzername oder Passwort ist falsch."
    if has_control_chars(name):
        # no account has such a name, and PostgreSQL refuses NUL bytes in a query: answer, write nothing
        verify_password(_DUMMY_HASH, "")  # same work as a real check
        return LoginResult(False, generic)
    user = session.scalar(select(User).where(User.username == name).with_for_update())
    if user is None:
        verify_password(_DUMMY_HASH, password or "")  # same work as a real check
        session.add(_anon_audit(name, "login.unknown_user", now))
        return LoginResult(False, generic)
    system_actor = actor_for(user)
    if user.locked_until is not None and user.locked_until > now:
        audit.record(session, system_actor, "login.refused_locked", "user", user.id, None, now=now)
        return LoginResult(False, _locked_message(user.locked_until))
    if not user.active:
        verify_password(_DUMMY_HASH, password or "")
        audit.record(session, system_actor, "login.refused_inactive", "user", user.id, None, now=now)
        return LoginResult(False, "Dieses Konto ist deaktiviert. Bitte wenden Sie sich an die Administration.")
    if not verify_password(user.password_hash, password or ""):
        if user.locked_until is not None and user.locked_until <= now:
            user.failed_logins = 0
            user.locked_until = None
        user.failed_logins += 1
        if user.failed_logins >= settings.LOGIN_MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
            audit.record(session, system_actor, "login.locked", "user", user.id, {"failed_logins": user.failed_logins}, now=now)
            return LoginResult(False, _locked_message(user.locked_until))
        audit.record(session, system_actor, "login.failed", "user", user.id, {"failed_logins": user.failed_logins}, now=now)
        left = settings.LOGIN_MAX_FAILURES - user.failed_logins
        return LoginResult(False, f"{generic} Noch {left} Versuch{'e' if left != 1 else ''} bis zur Sperre.")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, system_actor, "login.ok", "user", user.id, None, now=now)
    return LoginResult(True, actor=system_actor)


def _anon_audit(name: str, action: str, now: datetime):

    return AuditEntry(at=now, user_id=None, actor_name=name[:120] or "?", action=action, entity="user", entity_id=None)


def start_session(session: Session, settings: Settings, actor: Actor, *, now: datetime) -> LoginResult:
    """Create the server-side session and a one-time hand-off code for the cookie route."""
    code = secrets.token_urlsafe(32)
    row = LoginSession(
        user_id=actor.user_id,
        handoff_hash=_sha(code),
        handoff_expires_at=now + timedelta(seconds=HANDOFF_SECONDS),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.SESSION_HOURS),
    )
    session.add(row)
    session.flush()
    return LoginResult(True, actor=actor, handoff_code=code, session_id=row.id)


def exchange_handoff(session: Session, code: str, *, now: datetime) -> Optional[str]:
    """Swap a one-time hand-off code for a fresh session token (None when invalid)."""
    row = session.scalar(select(LoginSession).where(LoginSession.handoff_hash == _sha(code or "")).with_for_update())
    if row is None or row.revoked_at is not None or row.handoff_expires_at is None or row.handoff_expires_at < now:
        return None
    token = secrets.token_urlsafe(32)
    row.token_hash = _sha(token)
    row.handoff_hash = None
    row.handoff_expires_at = None
    row.last_seen_at = now
    return token


def resolve_token(session: Session, token: str, *, now: datetime) -> Optional[tuple[Actor, int]]:
    """The actor and session id for a valid token, else None."""
    if not token:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _sha(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_seen_at = now
    return actor_for(user), row.id


def session_is_valid(session: Session, session_id: int, *, now: datetime) -> bool:
    row = session.get(LoginSession, session_id)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return False
    user = session.get(User, row.user_id)
    return user is not None and user.active


def end_session(session: Session, session_id: int, actor: Actor, *, now: datetime) -> None:
    row = session.get(LoginSession, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        row.revoke_reason = "logout"
    audit.record(session, actor, "logout", "user", actor.user_id, None, now=now)


def expire_sessions(session: Session, *, now: datetime, keep_days: int = 30) -> dict[str, int]:
    """Housekeeping: mark expired sessions revoked, drop stale hand-offs, delete old rows."""
    expired = session.execute(
        update(LoginSession)
        .where(LoginSession.revoked_at.is_(None), LoginSession.expires_at <= now)
        .values(revoked_at=now, revoke_reason="expired")
    ).rowcount or 0
    stale = session.execute(
        update(LoginSession)
        .where(LoginSession.token_hash.is_(None), LoginSession.revoked_at.is_(None), LoginSession.handoff_expires_at < now)
        .values(revoked_at=now, revoke_reason="handoff_unused")
    ).rowcount or 0

    deleted = session.execute(
        delete(LoginSession).where(LoginSession.revoked_at.is_not(None), LoginSession.revoked_at < now - timedelta(days=keep_days))
    ).rowcount or 0
    return {"expired": expired, "unused_handoffs": stale, "deleted": deleted}


# ---------------------------------------------------------------------------- cookie signing


def secret_key(settings: Settings) -> str:
    """SECRET_KEY from settings; for the embedded set-up one is generated once under var/."""
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    path: Path = settings.path("var/secret_key")
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def sign_token(settings: Settings, token: str) -> str:
    return URLSafeSerializer(secret_key(settings), salt="tp-session").dumps(token)


def unsign_token(settings: Settings, value: str) -> Optional[str]:
    try:
        token = URLSafeSerializer(secret_key(settings), salt="tp-session").loads(value or "")
    except BadSignature:
        return None
    return token if isinstance(token, str) else None
