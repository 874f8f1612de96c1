"""Shared fixtures. `db_session` runs a test on both SQLite and PostgreSQL inside a
transaction that is rolled back; `fresh_db_url` gives a whole new migrated database for
tests that need real commits (job runner, concurrency, AppTest, browser)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from hypothesis import settings
from sqlalchemy.orm import Session

from core.bootstrap import bootstrap
from core.platform.db import make_engine
from tests.support.databases import DatabaseFactory
from tests.support.log_privacy import COLLECTOR

bootstrap()  # the event handlers, as every entry point wires them

# Hypothesis: a quick profile for the edit-test loop, a thorough one in CI (CI=true).
# HYPOTHESIS_PROFILE=ci selects the thorough one locally too.
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "dev"))

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config):
    # Tests never read the developer's .env or database by accident.
    os.environ.setdefault("DATABASE_URL", "sqlite:///var/test-never-used.db")
    COLLECTOR.install()  # issue 12: every log line of the run is checked for patients' data


def pytest_sessionfinish(session, exitstatus):
    """Acceptance of issue 12: no log line written during the run names a test patient."""
    found = COLLECTOR.violations()
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = "Personenbezogene Daten im Log (Name oder E-Mail einer Test-Patient:in):\n" + "\n".join(found[:20])
    if reporter is not None:
        reporter.write_sep("=", "log privacy check failed", red=True)
        reporter.write_line(text)
    else:  # pragma: no cover
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def db_factories(tmp_path_factory):
    factories = {b: DatabaseFactory(b, tmp_path_factory.mktemp(f"db_{b}")) for b in BACKENDS}
    yield factories
    for f in factories.values():
        f.cleanup()


@pytest.fixture(scope="session")
def _shared_engines(db_factories):
    engines = {}
    yield engines
    for e in engines.values():
        e.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def db_engine(backend, db_factories, _shared_engines):
    """A migrated database shared by the tests of one session and backend."""
    if backend not in _shared_engines:
        _shared_engines[backend] = make_engine(db_factories[backend].new_url())
    return _shared_engines[backend]


@pytest.fixture
def db_session(db_engine):
    """Session in an outer transaction; code under test may commit (savepoints)."""
    conn = db_engine.connect()
    trans = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        trans.rollback()
        conn.close()


@pytest.fixture
def fresh_db_url(backend, db_factories):
    return db_factories[backend].new_url()


@pytest.fixture
def now():
    return datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
