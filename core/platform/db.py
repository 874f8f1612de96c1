"""Engine, session factory and the unit of work; SQLite and PostgreSQL details live here."""

from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
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


class SqliteMedian:
    """The aggregate `tp_median(x)` on SQLite connections (NULLs ignored), which has no
    percentile_cont; PostgreSQL's twin is in core.reports.sql.median."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value) -> None:
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        if not self.values:
            return None
        v = sorted(self.values)
        mid = len(v) // 2
        return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


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
            dbapi_conn.create_aggregate("tp_median", 1, SqliteMedian)  # core.reports.sql.median

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


# =========================================================================== concurrent changes

CONCURRENT_CHANGE_MESSAGE = "Gleichzeitige Änderung – bitte noch einmal speichern"
RETRY_ATTEMPTS = 4  # one try and three retries
RETRY_PAUSE_S = 0.05  # base pause before a retry; grows with each attempt, jittered ±50 %
# PostgreSQL SQLSTATEs of a transaction that lost a race and may simply run again
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
log = logging.getLogger(__name__)
T = TypeVar("T")


class ConcurrentChange(RuntimeError):
    """The unit of work lost a race with another one (deadlock or serialization failure)
    every time it ran; nothing was written. The message is German, for the coordinator,
    whose input the page keeps so that saving again is one click."""

    def __init__(self, message: str = CONCURRENT_CHANGE_MESSAGE):
        super().__init__(message)


def is_concurrency_failure(exc: BaseException) -> bool:
    """A database error that means "another transaction got in the way; run again": a
    PostgreSQL deadlock or serialization failure, or SQLite's busy "database is locked"."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConcurrentChange):
            return True
        if isinstance(exc, DBAPIError):
            orig = exc.orig
            code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
            if code in _RETRYABLE_SQLSTATES:
                return True
            if "database is locked" in str(orig):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """One session per user action: commits when the block succeeds, rolls back otherwise.
    A deadlock or serialization failure comes out as ConcurrentChange (German message); a
    `with` block cannot run twice, so callers that can repeat their work use
    run_unit_of_work, which retries."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        session.rollback()
        if not isinstance(exc, ConcurrentChange) and is_concurrency_failure(exc):
            raise ConcurrentChange() from exc
        raise
    finally:
        session.close()


def run_unit_of_work(
    work: Callable[[Session], T],
    engine: Engine | None = None,
    *,
    attempts: int = RETRY_ATTEMPTS,
    pause_s: float = RETRY_PAUSE_S,
    sleep: Callable[[float], None] = time.sleep,
    rng: Optional[random.Random] = None,
) -> T:
    """Run `work(session)` in one unit of work and return its result. When the transaction
    fails with a deadlock or serialization failure (it was rolled back, nothing written),
    wait a short jittered pause and run `work` again in a fresh unit of work, up to
    `attempts` times in all; then raise ConcurrentChange. `work` must do nothing outside
    the session (it may run more than once)."""
    rng = rng or random
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(engine) as session:
                return work(session)
        except ConcurrentChange as exc:
            if attempt >= attempts:
                log.warning("Gleichzeitige Änderung: %d Versuche erfolglos (%s)", attempts, exc.__cause__)
                raise
            log.info("Gleichzeitige Änderung, Versuch %d von %d wird wiederholt (%s)", attempt, attempts, exc.__cause__)
            sleep(pause_s * attempt * rng.uniform(0.5, 1.5))
    raise AssertionError("unreachable")  # pragma: no cover


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
