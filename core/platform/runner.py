"""The job runner's coordination: leader lock, heartbeats, job-run records, status.

`python -m jobs` (the APScheduler wiring lives in `jobs/`) uses this module; the dashboard
only calls `runner_status()`. Nothing here imports APScheduler or Streamlit.

Leader election (one runner runs the jobs, any others wait as standby):
- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held on a dedicated
  connection. It dies with that connection, so a killed leader frees it at once. Advisory
  locks are scoped to the current database, so every database elects its own leader. The
  lock connection must reach PostgreSQL directly or through PgBouncer in *session* mode
  (transaction pooling would hand the lock to whichever client happens to share the
  server connection).
- SQLite: an exclusive `flock` on Settings.JOB_LOCK_PATH (filelock); the kernel drops it
  when the process dies, however it dies.

Time is injected: every function takes `now`; only the process wrapper reads the clock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Collection, Optional, Protocol

import filelock
from sqlalchemy import Connection, and_, delete, func, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.platform.config import Settings, get_settings
from core.platform.db import make_engine
from core.platform.formatting import format_datetime, format_time, to_local
from core.platform.models import JobRun, RunnerHeartbeat
from core.platform.vocab import JobResult

log = logging.getLogger(__name__)

# One constant per application: the 64-bit advisory lock key all runners of a database contend for.
LEADER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"therapieplatz:job-runner-leader").digest()[:8], "big", signed=True)
# How often a standby tries to take the lock.
STANDBY_POLL_SECONDS = 2.0
# A leader whose last heartbeat is older than 2 x HEARTBEAT_SECONDS + this is considered gone.
ALIVE_SLACK_SECONDS = 10
HEARTBEAT_KEEP_DAYS = 7
# The outbox job alone runs 2,880 times a day: successful runs are kept a month, runs that
# failed a quarter (long enough to see a pattern), then housekeeping deletes them.
JOB_RUN_KEEP_DAYS = 30
JOB_RUN_ERROR_KEEP_DAYS = 90

# German titles of the jobs for the dashboard, by job id (the ids of jobs/registry.py).
JOB_TITLES: dict[str, str] = {
    "housekeeping": "Aufräumen (abgelaufene Anmeldungen)",
    "outbox_delivery": "E-Mail-Versand (Postausgang)",
    "follow_ups": "Nachfassen unbeantworteter Anfragen",
    "inbox": "Posteingang abholen (Antworten und Rückläufer)",
    "geocoding": "Geokodierung der Praxisadressen",
    "inquiry_expiry": "Ablauf unbeantworteter Anfragen",
    "nightly_plan": "Vorschläge der Nacht (Regionalplanung)",
    "import_folder": "Importordner (116117-Dateien)",
    "arztsuche_live": "Live-Abruf der Arztsuche 116117",
    "privacy_retention": "Anonymisierung nach Ablauf der Aufbewahrungsfrist",
}
ORPHANED_RUN_ERROR = (
    "Lauf abgebrochen: Der Hintergrunddienst wurde beendet, bevor der Lauf fertig war."
)
ORPHANED_OWN_RUN_ERROR = (
    "Lauf abgebrochen: Sein Ende ließ sich nicht eintragen (Datenbank zeitweise nicht erreichbar)."
)
LATE_RESULT_NOTE = "(Ergebnis nachgetragen: die Datenbank war beim Ende des Laufs nicht erreichbar.)"

# TCP keepalives, so that PostgreSQL notices a vanished leader host within about half a minute.
_PG_LOCK_CONNECT_ARGS = {
    "application_name": "tp-jobs-leader-lock",
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


# --------------------------------------------------------------------------- leader lock


class LeaderLock(Protocol):
    """A lock only one runner process can hold; it is freed when its holder dies."""

    description: str

    def try_acquire(self) -> bool:
        """Take the lock without waiting; True if this process holds it now."""

    def still_held(self) -> bool:
        """True while the lock is verifiably held (checked before every job run and beat)."""

    def release(self) -> None:
        """Give the lock up (idempotent); another runner may take it afterwards."""

    def close(self) -> None:
        """Release and free every resource."""


class PostgresAdvisoryLock:
    """`pg_try_advisory_lock` on a dedicated autocommit connection (no pool)."""

    def __init__(self, url: str, key: int = LEADER_LOCK_KEY) -> None:
        self._engine = make_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=_PG_LOCK_CONNECT_ARGS
        )
        self._key = key
        self._conn: Optional[Connection] = None
        self._held = False
        self._mutex = threading.Lock()  # the heartbeat thread and the job threads share the connection
        self.description = f"PostgreSQL-Advisory-Lock {key}"

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._held:
                return True
            try:
                conn = self._connection()
                self._held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}))
            except SQLAlchemyError as exc:
                log.warning("Leitungssperre nicht prüfbar: %s", _first_line(exc))
                self._drop_connection()
            return self._held

    def still_held(self) -> bool:
        with self._mutex:
            if not self._held or self._conn is None:
                return False
            try:
                self._held = bool(self._conn.scalar(_HOLDS_ADVISORY_LOCK, _lock_params(self._key)))
            except SQLAlchemyError as exc:
                log.warning("Verbindung der Leitungssperre verloren: %s", _first_line(exc))
                self._held = False
                self._drop_connection()
            return self._held

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None and self._held:
                try:
                    self._conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                except SQLAlchemyError:
                    pass  # closing the connection below frees it as well
            self._held = False
            self._drop_connection()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def backend_pid(self) -> Optional[int]:
        """The PostgreSQL backend holding the lock (for tests and diagnostics)."""
        with self._mutex:
            return None if self._conn is None else self._conn.scalar(text("SELECT pg_backend_pid()"))

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None


_HOLDS_ADVISORY_LOCK = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = CAST(:classid AS oid) AND objid = CAST(:objid AS oid) AND objsubid = 1)"
)


def _lock_params(key: int) -> dict[str, int]:
    """pg_locks shows a bigint advisory key as its high and low 32 bits (classid, objid)."""
    return {"classid": (key >> 32) & 0xFFFFFFFF, "objid": key & 0xFFFFFFFF}


class FileLeaderLock:
    """An exclusive flock on a file; the kernel releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        # thread_local=False: the heartbeat thread must see the main thread's lock.
        # fallback_to_soft=False: a soft lock would outlive a killed process; fail instead.
        self._lock = filelock.FileLock(str(path), timeout=0, thread_local=False, fallback_to_soft=False)
        self.description = f"Sperrdatei {path}"

    def try_acquire(self) -> bool:
        if self._lock.is_locked:
            return True
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        return True

    def still_held(self) -> bool:
        return self._lock.is_locked and self._path.exists()

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    def close(self) -> None:
        self.release()


def make_leader_lock(settings: Settings) -> LeaderLock:
    """The right lock for the configured database."""
    if settings.is_sqlite:
        return FileLeaderLock(settings.path(settings.JOB_LOCK_PATH))
    return PostgresAdvisoryLock(settings.DATABASE_URL)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


# --------------------------------------------------------------------------- heartbeats


@dataclass(frozen=True)
class RunnerIdentity:
    runner_id: str
    hostname: str
    pid: int
    started_at: datetime


def new_runner_identity(*, now: datetime, hostname: Optional[str] = None, pid: Optional[int] = None) -> RunnerIdentity:
    """A unique id per process start: `<host>-<pid>-<random>` (at most 64 characters)."""
    host = hostname or socket.gethostname() or "unknown"
    pid = pid if pid is not None else os.getpid()
    suffix = f"-{pid}-{secrets.token_hex(3)}"
    return RunnerIdentity(runner_id=host[: 64 - len(suffix)] + suffix, hostname=host[:255], pid=pid, started_at=now)


def register_runner(session: Session, identity: RunnerIdentity, *, now: datetime) -> None:
    """The runner's heartbeat row, written once at start (as standby)."""
    session.add(
        RunnerHeartbeat(
            runner_id=identity.runner_id,
            hostname=identity.hostname,
            pid=identity.pid,
            is_leader=False,
            started_at=identity.started_at,
            beat_at=now,
        )
    )


def record_beat(session: Session, runner_id: str, *, is_leader: bool, now: datetime) -> None:
    session.execute(
        update(RunnerHeartbeat)
        .where(RunnerHeartbeat.runner_id == runner_id)
        .values(beat_at=now, is_leader=is_leader)
    )


def claim_leadership(session: Session, runner_id: str, *, now: datetime) -> int:
    """Called by the runner that just took the leader lock; returns the orphaned runs closed.

    Holding the lock proves every other runner lost it, so their rows stop saying leader.
    No job runs yet in the new term (the previous term of this runner waited for its jobs),
    so every run still "running" is an orphan – of a killed runner, or of this very runner
    when the database went away as a run ended and the lock was retaken – and ends as error.
    """
    session.execute(
        update(RunnerHeartbeat)
        .where(RunnerHeartbeat.runner_id != runner_id, RunnerHeartbeat.is_leader.is_(True))
        .values(is_leader=False)
    )
    record_beat(session, runner_id, is_leader=True, now=now)
    closed = session.execute(
        update(JobRun)
        .where(JobRun.result == JobResult.running)
        .values(result=JobResult.error, finished_at=now, error=ORPHANED_RUN_ERROR)
    )
    return closed.rowcount or 0


def close_orphaned_runs(
    session: Session, runner_id: str, *, now: datetime, in_flight: Collection[int], started_before: datetime
) -> int:
    """A leader's own runs that say "running" although no job of it runs them (their end
    could not be written): closed as errors. `in_flight` are the runs its jobs still run;
    runs started after `started_before` are left alone (one may be starting right now)."""
    stmt = update(JobRun).where(
        JobRun.result == JobResult.running, JobRun.runner_id == runner_id, JobRun.started_at < started_before
    )
    if in_flight:
        stmt = stmt.where(JobRun.id.not_in(list(in_flight)))
    closed = session.execute(
        stmt.values(result=JobResult.error, finished_at=now, error=ORPHANED_OWN_RUN_ERROR)
        .execution_options(synchronize_session=False)
    )
    return closed.rowcount or 0


def mark_stopped(session: Session, runner_id: str, *, now: datetime) -> None:
    """A clean stop: the row keeps is_leader as it was (history), stopped_at says it is gone."""
    session.execute(
        update(RunnerHeartbeat).where(RunnerHeartbeat.runner_id == runner_id).values(beat_at=now, stopped_at=now)
    )


def prune_heartbeats(session: Session, *, now: datetime, keep_days: int = HEARTBEAT_KEEP_DAYS) -> int:
    """Delete rows of runners not heard of for `keep_days` (live runners beat far more often)."""
    result = session.execute(delete(RunnerHeartbeat).where(RunnerHeartbeat.beat_at < now - timedelta(days=keep_days)))
    return result.rowcount or 0


def prune_job_runs(
    session: Session, *, now: datetime, keep_days: int = JOB_RUN_KEEP_DAYS, error_keep_days: int = JOB_RUN_ERROR_KEEP_DAYS
) -> int:
    """Delete finished job runs older than `keep_days` (failed ones: `error_keep_days`)."""
    result = session.execute(
        delete(JobRun).where(
            JobRun.finished_at.is_not(None),
            or_(
                and_(JobRun.result != JobResult.error, JobRun.started_at < now - timedelta(days=keep_days)),
                JobRun.started_at < now - timedelta(days=error_keep_days),
            ),
        )
    )
    return result.rowcount or 0


# --------------------------------------------------------------------------- job runs


def start_job_run(session: Session, job_name: str, runner_id: str, *, now: datetime) -> int:
    run = JobRun(job_name=job_name, runner_id=runner_id, started_at=now, result=JobResult.running)
    session.add(run)
    session.flush()
    return run.id


def finish_job_run(
    session: Session, run_id: int, *, now: datetime, summary: Optional[str] = None, error: Optional[str] = None
) -> None:
    """Close a run: ok with its summary, or error with the exception text. Only a run still
    "running" is closed (an orphan closed meanwhile keeps its error)."""
    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.result == JobResult.running)
        .values(
            finished_at=now,
            result=JobResult.ok if error is None else JobResult.error,
            summary=summary,
            error=error,
        )
    )


# --------------------------------------------------------------------------- status for the dashboard


def job_title(job_name: str) -> str:
    return JOB_TITLES.get(job_name, job_name)


@dataclass(frozen=True)
class LastJobRun:
    job_name: str
    runner_id: str
    started_at: datetime
    finished_at: Optional[datetime]
    result: JobResult
    summary: Optional[str]
    error: Optional[str]

    @property
    def title(self) -> str:
        return job_title(self.job_name)

    @property
    def error_line(self) -> Optional[str]:
        """The first line of the stored error (`ExceptionType: message`)."""
        return self.error.strip().splitlines()[0] if self.error and self.error.strip() else None


@dataclass(frozen=True)
class RunnerStatus:
    now: datetime
    alive: bool  # a leader's heartbeat is recent: jobs are being run
    leader_id: Optional[str]  # the live leader, None when not alive
    last_beat_at: Optional[datetime]  # the live leader's last beat; when not alive the last beat of any runner
    standby_count: int  # live runners waiting to take over
    last_runs: tuple[LastJobRun, ...] = ()  # the latest run per job name, ordered by name

    @property
    def label(self) -> str:
        """One German line for the sidebar and the home page (times in Europe/Berlin)."""
        if self.last_beat_at is None:
            return "Hintergrunddienst noch nie gestartet"
        if self.alive:
            return f"Hintergrunddienst aktiv, zuletzt {format_time(self.last_beat_at)}"
        return f"Hintergrunddienst nicht erreichbar (zuletzt {self._when(self.last_beat_at)})"

    def _when(self, at: datetime) -> str:
        same_day = to_local(at).date() == to_local(self.now).date()
        return format_time(at) if same_day else format_datetime(at)


def alive_window(heartbeat_seconds: int) -> timedelta:
    return timedelta(seconds=2 * heartbeat_seconds + ALIVE_SLACK_SECONDS)


def runner_status(
    session: Session,
    now: datetime,
    *,
    heartbeat_seconds: Optional[int] = None,
    include_runs: bool = True,
) -> RunnerStatus:
    """Is the job runner alive, who leads, how many wait, and how did each job last end.

    `heartbeat_seconds` defaults to Settings.HEARTBEAT_SECONDS; `include_runs=False` skips
    the per-job query (enough for `label`).
    """
    hb = heartbeat_seconds if heartbeat_seconds is not None else get_settings().HEARTBEAT_SECONDS
    live = session.scalars(
        select(RunnerHeartbeat)
        .where(RunnerHeartbeat.stopped_at.is_(None), RunnerHeartbeat.beat_at >= now - alive_window(hb))
        .order_by(RunnerHeartbeat.beat_at.desc())
    ).all()
    leader = next((row for row in live if row.is_leader), None)
    last_beat = leader.beat_at if leader is not None else session.scalar(select(func.max(RunnerHeartbeat.beat_at)))
    return RunnerStatus(
        now=now,
        alive=leader is not None,
        leader_id=leader.runner_id if leader is not None else None,
        last_beat_at=last_beat,
        standby_count=sum(1 for row in live if not row.is_leader),
        last_runs=last_job_runs(session) if include_runs else (),
    )


def last_job_runs(session: Session) -> tuple[LastJobRun, ...]:
    """The latest run of every job name (uses the (job_name, started_at) index)."""
    latest = (
        select(JobRun.job_name, func.max(JobRun.started_at).label("started_at")).group_by(JobRun.job_name).subquery()
    )
    rows = session.scalars(
        select(JobRun)
        .join(latest, (JobRun.job_name == latest.c.job_name) & (JobRun.started_at == latest.c.started_at))
        .order_by(JobRun.job_name, JobRun.id.desc())
    ).all()
    runs: dict[str, LastJobRun] = {}
    for row in rows:
        runs.setdefault(
            row.job_name,
            LastJobRun(
                job_name=row.job_name,
                runner_id=row.runner_id,
                started_at=row.started_at,
                finished_at=row.finished_at,
                result=row.result,
                summary=row.summary,
                error=row.error,
            ),
        )
    return tuple(runs.values())
