"""Engine, session factory and the unit of work; SQLite and PostgreSQL details live here."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.platform.config import PROJECT_ROOT, get_settings

_engines: dict[str, Engine] = {}
READ_ONLY_OPTION = "tp_read_only"  # execution option read_session sets on its connection
_lock = threading.Lock()


def _sqlite_path(url: str) -> Path | None:
    path = url.removeprefix("sqlite:///")
    if not path or path == ":memory:":
        return None
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p


def normalise_url(url: str) -> str:
    """Relative SQLite paths are relative to the project root, wherever a process starts."""
    if url.startswith("sqlite:///"):
        p = _sqlite_path(url)
        if p is not None:
            return f"sqlite:///{p}"
    return url


def make_engine(url: str, **kwargs) -> Engine:
    url = normalise_url(url)
    # SQL parameters are personal data (names, health fields, password hashes): an error
    # message or a log line shows the statement, never the values.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        p = _sqlite_path(url)
        if p is not None:
            p.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            # Let SQLAlchemy emit BEGIN itself so that transactions behave as on PostgreSQL.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover
            # Writers: IMMEDIATE takes the write lock at the start, so there are no "database is
            # locked" upgrade races. Readers (read_session): a deferred BEGIN, which in WAL mode
            # reads a snapshot without waiting for a writer (the job runner's long batches).
            if conn.get_execution_options().get(READ_ONLY_OPTION):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if kwargs.get("poolclass") is None:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (thread-safe; sessions are not shared)."""
    url = normalise_url(url or get_settings().DATABASE_URL)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """One session per user action: commits when the block succeeds, rolls back otherwise."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session for queries only; never commits. Loaded objects stay readable after the
    block (close() detaches them without expiring their attributes). On SQLite its
    transaction is deferred, so a reader never queues behind a writer."""
    session = session_factory(engine)()
    try:
        session.connection(execution_options={READ_ONLY_OPTION: True})
        yield session
    finally:
        session.close()
