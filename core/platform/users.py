"""Local user accounts: creation, roles, disabling, password resets (admin only)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.models import LoginSession, User
from core.platform.validation import FieldError, validate_email
from core.platform.permissions import Actor, Permission
from core.platform.text import control_chars_message, has_control_chars
from core.platform.vocab import Role
from core.platform.permissions import SYSTEM

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 hashes anything, but a megabyte "password" is a denial of service
DISPLAY_NAME_MAX = 120  # users.display_name is String(120)

# Passwords people pick first; compared case-insensitively after dropping a trailing run of
# digits and punctuation ("Passwort123!" counts as "passwort"). Kept short on purpose: length
# and the trivial-pattern rules below catch most of the rest.
COMMON_PASSWORDS = frozenset({
    "passwort", "password", "passwd", "kennwort", "geheim", "hallo", "halloo", "willkommen", "welcome",
    "qwertz", "qwerty", "qwertzuiop", "qwertyuiop", "asdfgh", "asdfghjkl", "yxcvbnm", "abc", "abcdef",
    "letmein", "iloveyou", "sommer", "winter", "fruehling", "herbst", "schatz", "fussball", "dragon",
    "master", "admin", "administrator", "changeme", "test", "testtest", "startstart", "ichliebedich",
    "berlin", "hamburg", "muenchen", "deutschland", "therapie", "vermittlung", "praxis", "sonne", "monkey",
})
_KEYBOARD_ROWS = ("1234567890", "qwertzuiop", "qwertyuiop", "asdfghjkl", "yxcvbnm", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz")


class UserError(ValueError):
    """Bad input for an account; `field` names the form field, the message is German."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: Optional[str], password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def validate_username(username: str) -> str:
    value = (username or "").strip().lower()
    if not USERNAME_RE.match(value):
        raise UserError(
            "username",
            "Benutzername: 2–64 Zeichen, Kleinbuchstaben, Ziffern, Punkt, Binde- oder Unterstrich (z. B. m.mueller).",
        )
    return value


def _is_sequence(text: str) -> bool:
    """Only one character, or a run along the keyboard/alphabet/digits (either direction)."""
    if len(set(text)) <= 2:
        return True
    for row in _KEYBOARD_ROWS:
        for seq in (row, row[::-1]):
            doubled = seq * 3
            if text in doubled:
                return True
    return False


def password_problem(password: str, *, username: str = "") -> Optional[str]:
    """Why a password is too weak (German), or None. Pure rule: length plus not common or trivial."""
    pw = password or ""
    if len(pw) < MIN_PASSWORD_LENGTH:
        return f"Passwort: mindestens {MIN_PASSWORD_LENGTH} Zeichen."
    if len(pw) > MAX_PASSWORD_LENGTH:
        return f"Passwort: höchstens {MAX_PASSWORD_LENGTH} Zeichen."
    if pw.strip() != pw:
        return "Passwort: bitte ohne Leerzeichen am Anfang oder Ende."
    if "\x00" in pw:
        return "Passwort: enthält ein unzulässiges Steuerzeichen."
    low = pw.lower()
    if _is_sequence(low) or len(set(low)) < 4:
        return "Passwort: zu einfach (nur ein Zeichen, eine Zahlen- oder Tastaturfolge). Bitte ein längeres, zufälliges wählen."
    stem = re.sub(r"[\d\W_]+$", "", low)
    core_ = re.sub(r"^[\d\W_]+", "", stem)
    if low in COMMON_PASSWORDS or stem in COMMON_PASSWORDS or core_ in COMMON_PASSWORDS or _is_sequence(re.sub(r"\W", "", low) or low):
        return "Passwort: zu verbreitet, es steht in jeder Liste häufiger Passwörter. Bitte ein anderes wählen."
    name = (username or "").strip().lower()
    rest = low.replace(name, "") if name and len(name) >= 3 else low
    if rest != low and len(re.sub(r"[\d\W_]", "", rest)) < 4:
        return "Passwort: besteht fast nur aus dem Benutzernamen. Bitte ein anderes wählen."
    return None


def validate_password(password: str, *, username: str = "") -> str:
    problem = password_problem(password, username=username)
    if problem:
        raise UserError("password", problem)
    return password


def validate_display_name(display_name: str) -> str:
    value = " ".join((display_name or "").split())
    if not value:
        raise UserError("display_name", "Name fehlt (z. B. Maria Müller).")
    if has_control_chars(value):
        raise UserError("display_name", control_chars_message("Name"))
    if len(value) > DISPLAY_NAME_MAX:
        raise UserError("display_name", f"Name ist zu lang (höchstens {DISPLAY_NAME_MAX} Zeichen, jetzt {len(value)}).")
    return value


def validate_user_email(email: Optional[str]) -> Optional[str]:
    try:
        return validate_email(email)
    except FieldError as exc:
        raise UserError("email", exc.message) from None


def generate_password() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    email: Optional[str]
    role: Role
    active: bool
    locked_until: Optional[datetime]
    last_login_at: Optional[datetime]
    failed_logins: int


def list_users(session: Session, actor: Actor) -> list[UserRow]:
    actor.require(Permission.manage_users)
    rows = session.scalars(select(User).order_by(User.active.desc(), User.username))
    return [
        UserRow(u.id, u.username, u.display_name, u.email, u.role, u.active, u.locked_until, u.last_login_at, u.failed_logins)
        for u in rows
    ]


def _count_active_admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.role == Role.admin, User.active.is_(True))) or 0


def create_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    role: Role | str,
    password: str,
    email: Optional[str] = None,
    now: datetime,
    must_change_password: bool = False,
) -> User:
    actor.require(Permission.manage_users)
    username = validate_username(username)
    display_name = validate_display_name(display_name)
    email = validate_user_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise UserError("role", "Unbekannte Rolle.") from None
    validate_password(password, username=username)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError("username", f"Den Benutzernamen „{username}“ gibt es schon.")
    user = User(
        username=username,
        display_name=display_name,
        email=email,
        role=role,
        password_hash=hash_password(password),
        active=True,
        must_change_password=must_change_password,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, {"username": username, "role": role}, now=now)
    return user


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserError("user", "Benutzer nicht gefunden.")
    return user


def change_role(session: Session, actor: Actor, user_id: int, role: Role | str, *, now: datetime) -> None:
    actor.require(Permission.manage_users)
    user = _get(session, user_id)
    role = Role(role)
    if user.role == Role.admin and role != Role.admin and user.active and _count_active_admins(session) <= 1:
        raise UserError("role", "Die letzte aktive Administrator:in kann ihre Rolle nicht verlieren.")
    old = user.role
    user.role = role
    user.updated_at = now
    audit.record(session, actor, "user.change_role", "user", user.id, {"role": [old, role]}, now=now)


def set_active(session: Session, actor: Actor, user_id: int, active: bool, *, now: datetime) -> None:
    actor.require(Permission.manage_users)
    user = _get(session, user_id)
    if not active:
        if user.id == actor.user_id:
            raise UserError("active", "Sie können Ihr eigenes Konto nicht deaktivieren.")
        if user.role == Role.admin and user.active and _count_active_admins(session) <= 1:
            raise UserError("active", "Die letzte aktive Administrator:in kann nicht deaktiviert werden.")
        revoke_all_sessions(session, user.id, now=now, reason="disabled")
    user.active = active
    user.updated_at = now
    audit.record(session, actor, "user.enable" if active else "user.disable", "user", user.id, None, now=now)


def reset_password(session: Session, actor: Actor, user_id: int, new_password: str, *, now: datetime) -> None:
    """Admin sets a new password; the account is unlocked and all its logins end."""
    actor.require(Permission.manage_users)
    user = _get(session, user_id)
    validate_password(new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.failed_logins = 0
    user.locked_until = None
    user.must_change_password = user.id != actor.user_id
    user.updated_at = now
    revoke_all_sessions(session, user.id, now=now, reason="password_reset")
    audit.record(session, actor, "user.reset_password", "user", user.id, None, now=now)


def needs_password_change(session: Session, actor: Actor) -> bool:
    """True when an admin set this account's password (new account or reset): the user must
    choose their own before working."""
    if actor.user_id is None:
        return False
    return bool(session.scalar(select(User.must_change_password).where(User.id == actor.user_id)))


def change_own_password(
    session: Session, actor: Actor, old_password: str, new_password: str, *, now: datetime,
    keep_session_id: Optional[int] = None,
) -> int:
    """A user changes their own password; every other login of theirs ends (a stolen session
    cookie is worthless afterwards). Returns how many sessions ended."""
    if actor.user_id is None:
        raise UserError("old_password", "Nur angemeldete Benutzer:innen können ihr Passwort ändern.")
    user = _get(session, actor.user_id)
    if not verify_password(user.password_hash, old_password or ""):
        raise UserError("old_password", "Das bisherige Passwort stimmt nicht.")
    validate_password(new_password, username=user.username)
    if verify_password(user.password_hash, new_password):
        raise UserError("password", "Passwort: bitte ein anderes als das bisherige wählen.")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.updated_at = now
    ended = revoke_all_sessions(session, user.id, now=now, reason="password_changed", keep_session_id=keep_session_id)
    audit.record(session, actor, "user.change_own_password", "user", user.id, {"other_sessions_ended": ended}, now=now)
    return ended


def revoke_all_sessions(
    session: Session, user_id: int, *, now: datetime, reason: str, keep_session_id: Optional[int] = None
) -> int:
    stmt = update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
    if keep_session_id is not None:
        stmt = stmt.where(LoginSession.id != keep_session_id)
    result = session.execute(stmt.values(revoked_at=now, revoke_reason=reason).execution_options(synchronize_session=False))
    return result.rowcount or 0


def ensure_admin(session: Session, *, username: str, password: str, display_name: str, now: datetime) -> tuple[User, bool]:
    """Create the first admin (command line / demo). Returns (user, created)."""

    existing = session.scalar(select(User).where(User.username == validate_username(username)))
    if existing is not None:
        return existing, False
    return create_user(
        session, SYSTEM, username=username, display_name=display_name, role=Role.admin, password=password, now=now
    ), True
