"""`python -m core.cli create-admin` creates the first admin once (both databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from core.platform.db import make_engine, read_session
from core.platform.models import User
from core.platform.vocab import Role

ROOT = Path(__file__).resolve().parents[2]


def _run(url: str, password: str = "Erstes-Admin-Passwort") -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=url, ADMIN_PASSWORD=password)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "create-admin", "--username", "chefin", "--name", "Die Chefin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def test_create_admin_once(fresh_db_url):
    first = _run(fresh_db_url)
    assert first.returncode == 0, first.stderr
    assert "Konto angelegt: chefin" in first.stdout
    second = _run(fresh_db_url)
    assert second.returncode == 0 and "gibt es schon" in second.stdout
    engine = make_engine(fresh_db_url)
    with read_session(engine) as s:
        admins = s.scalars(select(User).where(User.username == "chefin")).all()
    engine.dispose()
    assert len(admins) == 1 and admins[0].role == Role.admin


def test_create_admin_rejects_short_password(fresh_db_url):
    proc = _run(fresh_db_url, password="kurz")
    assert proc.returncode == 2
    assert "Passwort: mindestens" in proc.stderr and "Traceback" not in proc.stderr
