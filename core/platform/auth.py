"""Login with throttling, and server-side login sessions behind a signed HttpOnly cookie.

Flow (the browser keeps the login across reloads):
1. `authenticate()` checks the password. Every failure answers the same, whether the name
   exists or not; after LOGIN_MAX_FAILURES failures per (typed name, source) – and many more per
   source over all names – each further try waits twice as long, up to LOGIN_LOCK_MINUTES.
   Nobody can lock an account for its owner: the wait is per source. Admins lift waits.
2. `start_session()` creates a LoginSession with a one-time hand-off code (2 minutes).
3. The page's script posts the code to our route `/_app/session`; `exchange_handoff()`
   gives a fresh random token whose signature goes into an HttpOnly cookie.
4. On every click `session_actor()` re-reads the session and the user: a role change, a
   disabled account, a password change, the idle timeout or the absolute lifetime take effect
   at once. On a new browser connection `resolve_token()` maps the cookie to the user again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.config import Settings
from core.platform.models import AuditEntry, LoginSession, LoginThrottle, User
from core.platform.permissions import Actor, Permission, PermissionDenied
from core.platform import users
from core.platform.text import has_control_chars
from core.platform.users import hash_password, needs_rehash, verify_password

COOKIE_NAME = "tp_session"
HANDOFF_SECONDS = 120
_DUMMY_HASH = hash_password("timing-equaliser-not-a-password")

GENERIC_FAILURE = "Benutzername oder Passwort ist falsch."
# First wait after the free tries; it doubles with every further failure (capped).
FIRST_WAIT_SECONDS = 30
# Failures over all names from one source before that source waits (password spraying).
SOURCE_FAILURE_FACTOR = 4
# A quiet name/source is forgotten after this long.
THROTTLE_FORGET = timedelta(hours=24)
# last_seen_at is written at most this often (one write per minute, not per click).
TOUCH_SECONDS = 60
MAX_NAME_CHARS = 200


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


def normalise_login_name(username: str) -> str:
    return (username or "").strip().lower()[:MAX_NAME_CHARS]


# ---------------------------------------------------------------------------- throttling (pure rules)


def wait_after(failures: int, free: int, cap: timedelta) -> Optional[timedelta]:
    """How long a name/source waits after its `failures`-th failure (None: no wait yet)."""
    if failures < free:
        return None
    seconds = FIRST_WAIT_SECONDS * 2 ** min(failures - free, 20)
    return min(timedelta(seconds=seconds), cap)


def wait_message(remaining: timedelta) -> str:
    seconds = max(1, int(remaining.total_seconds() + 0.999))
    if seconds < 120:
        span = f"{seconds} Sekunden"
    else:
        span = f"{(seconds + 59) // 60} Minuten"
    return (
        f"{GENERIC_FAILURE} Zu viele fehlgeschlagene Versuche: Bitte warten Sie {span}, bevor Sie es erneut "
        "versuchen. Wenn Sie Ihr Passwort vergessen haben, wenden Sie sich an die Administration."
    )


def _keyed(settings: Settings, value: str) -> str:
    return hmac.new(secret_key(settings).encode(), value.encode(), hashlib.sha256).hexdigest()


def name_key(settings: Settings, name: str) -> str:
    """The HMAC of a typed login name (what an admin's unlock looks for)."""
    return _keyed(settings, "name:" + normalise_login_name(name))


def _throttle_keys(settings: Settings, name: str, source: str) -> tuple[str, str]:
    return _keyed(settings, f"pair:{name}\x00{source}"), _keyed(settings, f"source:{source}")


def _load_throttles(session: Session, keys: tuple[str, str]) -> dict[str, LoginThrottle]:
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key_hash.in_(keys)).with_for_update())
    return {r.key_hash: r for r in rows}


def _blocked_until(rows: dict[str, LoginThrottle], now: datetime) -> Optional[datetime]:
    until = [r.blocked_until for r in rows.values() if r.blocked_until is not None and r.blocked_until > now]
    return max(until) if until else None


def _count_failure(
    session: Session, settings: Settings, rows: dict[str, LoginThrottle], keys: tuple[str, str], name: str, *, now: datetime
) -> tuple[int, Optional[datetime]]:
    """One more failure for the pair and the source; returns (pair failures, blocked until)."""
    cap = timedelta(minutes=settings.LOGIN_LOCK_MINUTES)
    pair_key, source_key = keys
    result_failures, blocked = 0, None
    for key, free, nkey in (
        (pair_key, settings.LOGIN_MAX_FAILURES, name_key(settings, name)),
        (source_key, settings.LOGIN_MAX_FAILURES * SOURCE_FAILURE_FACTOR, None),
    ):
        row = rows.get(key)
        if row is None:
            row = LoginThrottle(key_hash=key, name_key=nkey, failures=0, last_failure_at=now)
            session.add(row)
        elif row.last_failure_at is not None and row.last_failure_at < now - THROTTLE_FORGET:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = wait_after(row.failures, free, cap)
        row.blocked_until = now + wait if wait is not None else None
        if key == pair_key:
            result_failures = row.failures
        if row.blocked_until is not None:
            blocked = max(blocked, row.blocked_until) if blocked else row.blocked_until
    session.flush()
    return result_failures, blocked


def lift_throttles(session: Session, settings: Settings, username: str) -> int:
    """Forget the failed tries for a login name from every source (admin unlock)."""
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.name_key == name_key(settings, username)))
    return result.rowcount or 0


def unlock_account(session: Session, settings: Settings, actor: Actor, user_id: int, *, now: datetime) -> int:
    """Admin: lift every wait on an account (all sources). Returns the rows removed."""
    actor.require(Permission.manage_users)
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise users.UserError("user", "Benutzer nicht gefunden.")
    lifted = lift_throttles(session, settings, user.username)
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = now
    audit.record(session, actor, "user.unlock", "user", user.id, {"sources": lifted}, now=now)
    return lifted


def reset_password(session: Session, settings: Settings, actor: Actor, user_id: int, new_password: str, *, now: datetime) -> None:
    """Admin sets a new password: all logins of the account end and every wait is lifted."""
    users.reset_password(session, actor, user_id, new_password, now=now)
    user = session.get(User, user_id)
    lift_throttles(session, settings, user.username)


def prune_throttles(session: Session, *, now: datetime) -> int:
    """Housekeeping: drop rows quiet for longer than THROTTLE_FORGET."""
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - THROTTLE_FORGET,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    )
    return result.rowcount or 0


# ---------------------------------------------------------------------------- authentication


def authenticate(
    session: Session, settings: Settings, username: str, password: str, *, now: datetime, source: str = ""
) -> LoginResult:
    """Check a password. The answer does not tell whether the name exists; every path does
    exactly one argon2 verification, so none is measurably faster. Audited without the typed
    name (it may be a password typed into the wrong field) – only a known account's id."""
    name = normalise_login_name(username)
    password = password or ""
    if has_control_chars(name):
        # No account has such a name, and PostgreSQL refuses NUL bytes in a query: answer
        # like a wrong password after the same work, and write nothing.
        verify_password(_DUMMY_HASH, password)
        return LoginResult(False, GENERIC_FAILURE)
    source = "".join(ch for ch in (source or "") if ch.isprintable())[:100] or "unbekannt"
    keys = _throttle_keys(settings, name, source)
    rows = _load_throttles(session, keys)
    user = session.scalar(select(User).where(User.username == name).with_for_update()) if name else None
    details = {"source": source}
    blocked = _blocked_until(rows, now)
    if blocked is not None:
        verify_password(_DUMMY_HASH, password)  # the same work as a real check
        _audit_attempt(session, user, "login.throttled", details, now)
        return LoginResult(False, wait_message(blocked - now))
    has_hash = user is not None and bool(user.password_hash)
    ok = verify_password(user.password_hash if has_hash else _DUMMY_HASH, password) and has_hash
    if not ok:
        failures, blocked = _count_failure(session, settings, rows, keys, name, now=now)
        if user is not None:
            user.failed_logins = failures
            if blocked is not None:
                user.locked_until = blocked
        _audit_attempt(session, user, "login.failed" if user is not None else "login.unknown_user",
                       {**details, "failures": failures}, now)
        return LoginResult(False, wait_message(blocked - now) if blocked is not None else GENERIC_FAILURE)
    # The right password: only now may the answer say something about the account.
    if not user.active:
        audit.record(session, actor_for(user), "login.refused_inactive", "user", user.id, details, now=now)
        return LoginResult(False, "Dieses Konto ist deaktiviert. Bitte wenden Sie sich an die Administration.")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    pair = rows.get(keys[0])
    if pair is not None:
        session.delete(pair)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    actor = actor_for(user)
    audit.record(session, actor, "login.ok", "user", user.id, details, now=now)
    return LoginResult(True, actor=actor)


def _audit_attempt(session: Session, user: Optional[User], action: str, details: dict, now: datetime) -> None:
    if user is not None:
        audit.record(session, actor_for(user), action, "user", user.id, details, now=now)
        return
    # Unknown name: never store what was typed (it may be a password).
    session.add(AuditEntry(at=now, user_id=None, actor_name="unbekannt", action=action, entity="user", entity_id=None,
                           changes=details))


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


def _idle_limit(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.SESSION_IDLE_MINUTES)


def _row_state(session: Session, settings: Settings, row: Optional[LoginSession], *, now: datetime) -> tuple[Optional[User], str]:
    """(user, what to write) for a session row, reading only: write is "" (nothing),
    "touch" (last_seen_at is a minute old) or "idle" (to be revoked)."""
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None, ""
    if row.last_seen_at is not None and row.last_seen_at + _idle_limit(settings) <= now:
        return None, "idle"
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None, ""
    if row.last_seen_at is None or (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
        return user, "touch"
    return user, ""


def _live_row(session: Session, settings: Settings, row: Optional[LoginSession], *, now: datetime) -> Optional[User]:
    """The user of a session row that is still good (not revoked, not expired, not idle,
    user active); an idle row is revoked on the way. Touches last_seen_at (at most once a minute)."""
    user, write = _row_state(session, settings, row, now=now)
    if write == "idle":
        row.revoked_at = now
        row.revoke_reason = "idle"
    elif write == "touch":
        row.last_seen_at = now
    return user


@dataclass(frozen=True)
class SessionCheck:
    actor: Optional[Actor]
    needs_write: bool  # call session_actor in a unit of work (touch or idle revoke)


def check_session(session: Session, settings: Settings, session_id: int, *, now: datetime) -> SessionCheck:
    """Read-only twin of `session_actor` for every click: the current actor, and whether a
    write is due (last_seen_at a minute old, or the idle timeout passed). Dashboard reads
    stay deferred on SQLite; the write happens at most once a minute per tab."""
    user, write = _row_state(session, settings, session.get(LoginSession, session_id), now=now)
    return SessionCheck(actor_for(user) if user is not None else None, bool(write))


def resolve_token(session: Session, settings: Settings, token: str, *, now: datetime) -> Optional[tuple[Actor, int]]:
    """The actor and session id for a valid token, else None."""
    if not token:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _sha(token)))
    user = _live_row(session, settings, row, now=now)
    if user is None:
        return None
    return actor_for(user), row.id


def session_actor(session: Session, settings: Settings, session_id: int, *, now: datetime) -> Optional[Actor]:
    """The user of a login session as the database says *now* (role, name), or None when the
    session ended. Called on every click, so a role change or disabling applies at once."""
    user = _live_row(session, settings, session.get(LoginSession, session_id), now=now)
    return actor_for(user) if user is not None else None


def session_is_valid(session: Session, settings: Settings, session_id: int, *, now: datetime) -> bool:
    return session_actor(session, settings, session_id, now=now) is not None


def end_session(session: Session, session_id: int, actor: Actor, *, now: datetime) -> None:
    """Log out. Only the session's own user may end it (or an admin managing users)."""
    row = session.get(LoginSession, session_id)
    if row is None:
        return
    if row.user_id != actor.user_id and not actor.can(Permission.manage_users):
        raise PermissionDenied("Sie können nur Ihre eigene Anmeldung beenden.")
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoke_reason = "logout" if row.user_id == actor.user_id else "ended_by_admin"
    audit.record(session, actor, "logout", "user", row.user_id, None, now=now)


def expire_sessions(
    session: Session, *, now: datetime, keep_days: int = 30, idle_minutes: Optional[int] = None
) -> dict[str, int]:
    """Housekeeping: mark expired (and, with idle_minutes, idle) sessions revoked, drop stale
    hand-offs, delete old rows and forgotten login throttles."""
    expired = session.execute(
        update(LoginSession)
        .where(LoginSession.revoked_at.is_(None), LoginSession.expires_at <= now)
        .values(revoked_at=now, revoke_reason="expired")
    ).rowcount or 0
    if idle_minutes is not None:
        expired += session.execute(
            update(LoginSession)
            .where(LoginSession.revoked_at.is_(None), LoginSession.token_hash.is_not(None),
                   LoginSession.last_seen_at <= now - timedelta(minutes=idle_minutes))
            .values(revoked_at=now, revoke_reason="idle")
        ).rowcount or 0
    prune_throttles(session, now=now)
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
