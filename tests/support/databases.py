"""Databases for tests: every test uses a database it created itself.

- SQLite: a file in pytest's tmp dir.
- PostgreSQL: `tp_test_<random>` databases on 127.0.0.1:5432 (trust auth, user postgres),
  created from a migrated template and dropped afterwards. Nothing else is ever touched.

With CI=true a missing PostgreSQL server fails the run; elsewhere those tests skip with
a clear message.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config


ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def _pg_admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def pg_available() -> tuple[bool, str]:
    try:
        eng = _pg_admin_engine()
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def require_pg() -> None:
    ok, why = pg_available()
    if ok:
        return
    msg = f"PostgreSQL at {PG_ADMIN_URL} not reachable ({why})"
    if IN_CI:
        pytest.fail(msg + " - mandatory with CI=true", pytrace=False)
    pytest.skip(msg + " - PostgreSQL tests skipped outside CI")


def pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


def create_pg_database(template: str | None = None) -> str:
    name = f"tp_test_{uuid.uuid4().hex[:12]}"
    eng = _pg_admin_engine()
    with eng.connect() as conn:
        tmpl = f" TEMPLATE {template}" if template else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{tmpl}'))
    eng.dispose()
    return name


def drop_pg_database(name: str) -> None:
    assert name.startswith("tp_test_"), "tests only drop databases they created"
    eng = _pg_admin_engine()
    with eng.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    eng.dispose()


class DatabaseFactory:
    """Creates fresh, migrated databases of one backend for one test session."""

    def __init__(self, backend: str, tmp_dir: Path):
        self.backend = backend
        self.tmp_dir = tmp_dir
        self._template_sqlite: Path | None = None
        self._template_pg: str | None = None
        self._created_pg: list[str] = []

    def new_url(self, migrated: bool = True) -> str:
        if self.backend == "sqlite":
            path = self.tmp_dir / f"db_{uuid.uuid4().hex[:10]}.sqlite"
            if migrated:
                if self._template_sqlite is None:
                    self._template_sqlite = self.tmp_dir / "template.sqlite"
                    migrate(f"sqlite:///{self._template_sqlite}")
                src = sqlite3.connect(self._template_sqlite)
                dst = sqlite3.connect(path)
                src.backup(dst)
                dst.close()
                src.close()
            return f"sqlite:///{path}"
        require_pg()
        if migrated:
            if self._template_pg is None:
                self._template_pg = create_pg_database()
                self._created_pg.append(self._template_pg)
                migrate(pg_url(self._template_pg))
            name = create_pg_database(template=self._template_pg)
        else:
            name = create_pg_database()
        self._created_pg.append(name)
        return pg_url(name)

    def cleanup(self) -> None:
        for name in reversed(self._created_pg):
            try:
                drop_pg_database(name)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
