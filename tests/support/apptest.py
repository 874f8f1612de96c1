"""Helpers for AppTest page tests: a migrated database with one user per role, and a
login through the real login form."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.platform import users
from core.platform.db import get_engine, unit_of_work
from core.platform.models import User
from core.platform.vocab import Role

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")

ACCOUNTS = {
    Role.admin: ("t.admin", "Admin-Passwort-1"),
    Role.coordinator: ("t.koordination", "Koord-Passwort-1"),
    Role.viewer: ("t.lesen", "Lesen-Passwort-1"),
}

# Pages every role may open, and the extra ones for admins (path relative to app.py).
PAGES_BY_ROLE = {
    Role.viewer: ["pages/home.py", "pages/calls.py", "pages/matching.py", "pages/outbox.py", "pages/inbox.py", "pages/account.py", "pages/map.py", "pages/patients.py", "pages/therapists.py"],
    Role.coordinator: ["pages/home.py", "pages/calls.py", "pages/matching.py", "pages/outbox.py", "pages/inbox.py", "pages/account.py", "pages/map.py", "pages/patients.py", "pages/therapists.py", "pages/imports.py"],
    Role.admin: ["pages/home.py", "pages/calls.py", "pages/matching.py", "pages/outbox.py", "pages/inbox.py", "pages/account.py", "pages/map.py", "pages/patients.py", "pages/therapists.py", "pages/imports.py", "pages/users.py", "pages/audit_log.py", "pages/privacy.py"],
}


@lru_cache(maxsize=None)
def _password_hash(password: str) -> str:
    """argon2 is slow on purpose: hash each test password once per test session."""
    return users.hash_password(password)


def create_accounts(url: str) -> None:
    """One account per role, inserted with pre-computed hashes (the login form still
    verifies them the real way)."""
    now = datetime.now(timezone.utc)
    with unit_of_work(get_engine(url)) as s:
        for role, (name, password) in ACCOUNTS.items():
            s.add(User(
                username=name, display_name=f"Test {role.label}", role=role, password_hash=_password_hash(password),
                active=True, must_change_password=False, created_at=now, updated_at=now,
            ))


def new_app(timeout: float = 30) -> AppTest:
    return AppTest.from_file(APP, default_timeout=timeout)


def login(role: Role, *, password: str | None = None) -> AppTest:
    at = new_app()
    at.run()
    name, pw = ACCOUNTS[role]
    at.text_input(key="login_username").input(name)
    at.text_input(key="login_password").input(password if password is not None else pw)
    at.button[0].click()
    at.run()
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.error] + [e.value for e in at.title]
    parts += [e.value for e in at.caption] + [e.value for e in at.success] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)
