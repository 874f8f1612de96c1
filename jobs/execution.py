"""Run one job: a JobRun row per run, in its own transactions, even when the job fails."""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.platform.config import Settings
from core.platform.db import RETRY_ATTEMPTS, RETRY_PAUSE_S, ConcurrentChange, unit_of_work
from core.platform.logs import scrub
from core.platform.runner import finish_job_run, start_job_run
from jobs import crash
from jobs.spec import JobContext, JobSpec

log = logging.getLogger("jobs")

Clock = Callable[[], datetime]
MAX_ERROR_CHARS = 20_000


def utc_now() -> datetime:
    """The only place the job runner reads the wall clock."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class JobRunOutcome:
    run_id: int
    ok: bool
    summary: Optional[str] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class UnwrittenEnd:
    run_id: int
    finished_at: datetime
    summary: Optional[str]
    error: Optional[str]


class RunTracker:
    """The runs this runner's jobs are running, and ends that could not be written (the
    database was away as the job finished). The runner's leader heartbeat writes those ends
    late and closes every other run of its own that still says "running" (issue: a run stayed
    "running" forever after the database came back)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._unwritten: dict[int, UnwrittenEnd] = {}

    def started(self, run_id: int) -> None:
        with self._lock:
            self._running.add(run_id)

    def finished(self, run_id: int) -> None:
        with self._lock:
            self._running.discard(run_id)

    def remember(self, end: UnwrittenEnd) -> None:
        with self._lock:
            self._unwritten[end.run_id] = end

    def take_unwritten(self) -> list[UnwrittenEnd]:
        with self._lock:
            ends, self._unwritten = list(self._unwritten.values()), {}
            return ends

    def in_flight(self) -> set[int]:
        """Runs not to be treated as orphans: running, or with an end still to write."""
        with self._lock:
            return set(self._running) | set(self._unwritten)


def run_job(
    spec: JobSpec, *, engine: Engine, settings: Settings, runner_id: str, clock: Clock = utc_now,
    tracker: Optional[RunTracker] = None,
) -> JobRunOutcome:
    """Record the start, run the job with `now` injected, record the end (ok or error).

    The job's own writes happen in its own units of work; when it raises, they roll
    back, and the JobRun row still says error with the exception and traceback. When the
    end cannot be written (database away) and a tracker is given, the tracker keeps it for
    the runner to write later; without one the database error is raised.
    """
    started = clock()
    with unit_of_work(engine) as session:
        run_id = start_job_run(session, spec.id, runner_id, now=started)
    if tracker is not None:
        tracker.started(run_id)
    try:
        ctx = JobContext(now=started, runner_id=runner_id, settings=settings, session_scope=crash.session_scope(spec.id, engine))
        t0 = time.monotonic()
        try:
            summary = _run_with_retries(spec, ctx)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, the scheduler goes on
            log.exception("Job %s fehlgeschlagen nach %.2f s", spec.id, time.monotonic() - t0)
            error = describe_exception(exc)
            _finish_or_remember(engine, tracker, run_id, now=clock(), error=error)
            return JobRunOutcome(run_id, ok=False, error=error)
        log.info("Job %s fertig in %.2f s: %s", spec.id, time.monotonic() - t0, summary or "–")
        _finish_or_remember(engine, tracker, run_id, now=clock(), summary=summary)
        return JobRunOutcome(run_id, ok=True, summary=summary)
    finally:
        if tracker is not None:
            tracker.finished(run_id)


def _finish_or_remember(
    engine: Engine, tracker: Optional[RunTracker], run_id: int, *, now: datetime,
    summary: Optional[str] = None, error: Optional[str] = None,
) -> None:
    try:
        _finish(engine, run_id, now=now, summary=summary, error=error)
    except SQLAlchemyError as exc:
        if tracker is None:
            raise
        log.warning("Ende von Lauf %s nicht eintragbar, wird nachgetragen: %s", run_id, type(exc).__name__)
        tracker.remember(UnwrittenEnd(run_id, now, summary, error))


def _run_with_retries(spec: JobSpec, ctx: JobContext, *, sleep: Callable[[float], None] = time.sleep):
    """The job's units of work are plain `with` blocks; when one of them lost a race every
    time (ConcurrentChange: deadlock or serialization failure), the whole job runs again
    after a short jittered pause, as its next scheduled run would (jobs only pick up what is
    still due, so a repeated run does no work twice)."""
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            return spec.func(ctx)
        except ConcurrentChange:
            if attempt >= RETRY_ATTEMPTS:
                raise
            log.info("Job %s: gleichzeitige Änderung, Versuch %d wird wiederholt", spec.id, attempt)
            sleep(RETRY_PAUSE_S * attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")  # pragma: no cover


def describe_exception(exc: BaseException) -> str:
    """`Type: message` on the first line (what the dashboard shows), then the traceback;
    without database row values or addresses (core.platform.logs.scrub)."""
    head = f"{type(exc).__name__}: {exc}".strip()
    text = scrub(head + "\n\n" + "".join(traceback.format_exception(exc)))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS // 2] + "\n…\n" + text[-MAX_ERROR_CHARS // 2 :]


def _finish(engine: Engine, run_id: int, *, now: datetime, summary: Optional[str] = None, error: Optional[str] = None) -> None:
    with unit_of_work(engine) as session:
        finish_job_run(session, run_id, now=now, summary=summary, error=error)
