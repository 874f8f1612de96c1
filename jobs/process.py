"""The runner process: standby until it holds the leader lock, then run the scheduler.

Threads:
- main: standby loop (try the lock every STANDBY_POLL_SECONDS), then the BlockingScheduler
  of one leadership term; back to standby if the lock is lost, out on a stop request.
- heartbeat: every HEARTBEAT_SECONDS writes the runner's row; as leader first checks the
  lock is still held and ends the term if not.
- signal watcher: SIGTERM/SIGINT only write a byte to a pipe (safe in a signal handler);
  this thread reads it and stops: scheduler.shutdown(wait=True) lets running jobs finish.
- APScheduler's worker threads run the jobs (jobs/execution.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Callable, Optional, Sequence

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.bootstrap import bootstrap
from core.platform.config import Settings, load_or_exit
from core.platform.db import dispose_engines, get_engine, unit_of_work
from core.platform.runner import LATE_RESULT_NOTE, STANDBY_POLL_SECONDS, LeaderLock, RunnerIdentity, claim_leadership, close_orphaned_runs, finish_job_run, make_leader_lock, mark_stopped, new_runner_identity, record_beat, register_runner
from jobs.execution import Clock, JobRunOutcome, RunTracker, run_job, utc_now
from jobs.options import INTERVAL_ENV, ONLY_ENV, interval_override_or_exit, only_jobs_or_exit
from jobs.registry import JOBS
from jobs.scheduler import BERLIN, build_scheduler
from jobs.spec import JobSpec

log = logging.getLogger("jobs.runner")


# --------------------------------------------------------------------------- one leadership term


class _Term:
    """One leadership term: its scheduler, and ending it safely from any thread.

    `end()` may come before the scheduler has started (then the start listener shuts it
    down at once) or while it runs; the scheduler is shut down exactly once.
    """

    def __init__(self, scheduler: BlockingScheduler) -> None:
        self.scheduler = scheduler
        self._mutex = threading.Lock()
        self._started = False
        self._ending = False
        self._shutdown_sent = False
        self._shut_down = threading.Event()
        scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)

    def run(self) -> None:
        """Blocks until the term ends and running jobs have finished."""
        self.scheduler.start()
        self._shut_down.wait()

    def end(self) -> None:
        with self._mutex:
            self._ending = True
            go = self._started and not self._shutdown_sent
            self._shutdown_sent = self._shutdown_sent or go
        if go:
            self._shutdown(wait=True)

    def _on_started(self, _event: SchedulerEvent) -> None:
        with self._mutex:
            self._started = True
            go = self._ending and not self._shutdown_sent
            self._shutdown_sent = self._shutdown_sent or go
        if go:
            self._shutdown(wait=False)  # inside start(): no job has run yet

    def _shutdown(self, *, wait: bool) -> None:
        try:
            with suppress(SchedulerNotRunningError):
                # Pause first: a scheduler loop waking up while shutdown() waits for running
                # jobs must not hand a due job to the executor being shut down.
                self.scheduler.pause()
                self.scheduler.shutdown(wait=wait)
        finally:
            self._shut_down.set()


# --------------------------------------------------------------------------- the runner


class JobRunner:
    """One runner process: registers its heartbeat row, waits as standby until it holds
    the leader lock, then runs the scheduler until stopped or the lock is lost."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        lock: LeaderLock,
        identity: RunnerIdentity,
        specs: Sequence[JobSpec] = JOBS,
        interval_seconds: Optional[int] = None,
        poll_seconds: float = STANDBY_POLL_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._lock = lock
        self._identity = identity
        self._specs = specs
        self._interval_seconds = interval_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._state = threading.Lock()  # guards _term
        self._term: Optional[_Term] = None
        self._leadership = threading.Lock()  # serialises "am I leader" with writing it
        self._is_leader = False
        self._runs = RunTracker()

    @property
    def runner_id(self) -> str:
        return self._identity.runner_id

    def request_stop(self, reason: str = "") -> None:
        """From any thread: finish running jobs, then leave. Idempotent."""
        if not self._stop.is_set():
            log.info("Stopp angefordert%s; laufende Jobs werden abgeschlossen", f" ({reason})" if reason else "")
        self._stop.set()
        with self._state:
            term = self._term
        if term is not None:
            term.end()

    def run(self) -> int:
        """Until stopped: standby, lead, and back. Returns the exit code (0)."""
        with unit_of_work(self._engine) as session:
            register_runner(session, self._identity, now=self._clock())
        log.info("Hintergrunddienst %s gestartet (%s)", self.runner_id, self._lock.description)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        try:
            while self._wait_for_leadership():
                self._lead()
        finally:
            self._stop.set()
            heartbeat.join(timeout=30)
            self._lock.release()
            self._write_stopped()
        log.info("Hintergrunddienst %s beendet", self.runner_id)
        return 0

    # ---------------------------------------------------------------- standby and leadership

    def _wait_for_leadership(self) -> bool:
        announced = False
        while not self._stop.is_set():
            if self._lock.try_acquire():
                return not self._stop.is_set()
            if not announced:
                log.info("Bereitschaft: ein anderer Hintergrunddienst führt die Jobs aus; Übernahmeversuch alle %.0f s", self._poll_seconds)
                announced = True
            self._stop.wait(self._poll_seconds)
        return False

    def _lead(self) -> None:
        term = _Term(build_scheduler(self._execute, specs=self._specs, interval_seconds=self._interval_seconds))
        with self._state:
            if self._stop.is_set():
                return
            self._term = term
        try:
            if self._claim():
                log.info("Leitung übernommen: %d Jobs geplant (%s)", len(self._specs), ", ".join(s.id for s in self._specs))
                term.run()
            else:
                self._stop.wait(self._poll_seconds)
        finally:
            with self._state:
                self._term = None
            with self._leadership:
                self._is_leader = False
                self._lock.release()
                if not self._stop.is_set():
                    self._write_beat(is_leader=False)
                    log.warning("Leitung abgegeben; zurück in Bereitschaft")

    def _claim(self) -> bool:
        with self._leadership:
            self._is_leader = True
            try:
                with unit_of_work(self._engine) as session:
                    closed = claim_leadership(session, self.runner_id, now=self._clock())
            except SQLAlchemyError as exc:
                log.error("Leitung nicht eintragbar, neuer Versuch: %s", _first_line(exc))
                return False
        if closed:
            log.warning("%d abgebrochene Läufe eines früheren Leiters als Fehler abgeschlossen", closed)
        return True

    def _execute(self, spec: JobSpec) -> Optional[JobRunOutcome]:
        """Scheduler callback: run a job only while the lock is verifiably ours."""
        if self._stop.is_set():
            return None
        if not self._lock.still_held():
            log.error("Job %s nicht gestartet: Leitungssperre nicht mehr gehalten", spec.id)
            self._end_term()
            return None
        return run_job(
            spec, engine=self._engine, settings=self._settings, runner_id=self.runner_id, clock=self._clock,
            tracker=self._runs,
        )

    def _end_term(self) -> None:
        with self._state:
            term = self._term
        if term is not None:
            threading.Thread(target=term.end, name="end-term", daemon=True).start()

    # ---------------------------------------------------------------- heartbeat

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._settings.HEARTBEAT_SECONDS):
            self._beat()

    def _beat(self) -> None:
        lost = False
        with self._leadership:
            if self._is_leader and not self._lock.still_held():
                self._is_leader = False
                lost = True
            self._write_beat(is_leader=self._is_leader)
        if lost:
            log.error("Leitungssperre verloren; Jobs werden angehalten")
            self._end_term()

    def _write_beat(self, *, is_leader: bool) -> None:
        """The heartbeat; as leader also the late ends of runs and closing its own orphans."""
        ends = self._runs.take_unwritten() if is_leader else []
        try:
            with unit_of_work(self._engine) as session:
                now = self._clock()
                record_beat(session, self.runner_id, is_leader=is_leader, now=now)
                for end in ends:
                    late = f"{end.summary or '–'} {LATE_RESULT_NOTE}" if end.error is None else f"{end.error}\n{LATE_RESULT_NOTE}"
                    finish_job_run(
                        session, end.run_id, now=end.finished_at,
                        summary=late if end.error is None else None, error=late if end.error is not None else None,
                    )
                closed = 0
                if is_leader:
                    closed = close_orphaned_runs(
                        session, self.runner_id, now=now, in_flight=self._runs.in_flight() - {e.run_id for e in ends},
                        started_before=now - timedelta(seconds=self._settings.HEARTBEAT_SECONDS),
                    )
        except SQLAlchemyError as exc:
            for end in ends:
                self._runs.remember(end)
            log.warning("Heartbeat nicht geschrieben: %s", _first_line(exc))
            return
        if ends:
            log.warning("%d Laufende nachgetragen (Datenbank war nicht erreichbar)", len(ends))
        if closed:
            log.warning("%d eigene Läufe ohne eingetragenes Ende als Fehler abgeschlossen", closed)

    def beat_now(self) -> None:
        """One heartbeat at once (tests, diagnostics)."""
        self._beat()

    def _write_stopped(self) -> None:
        try:
            with unit_of_work(self._engine) as session:
                mark_stopped(session, self.runner_id, now=self._clock())
        except SQLAlchemyError as exc:
            log.warning("Ende nicht eingetragen: %s", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


# --------------------------------------------------------------------------- process set-up


class BerlinFormatter(logging.Formatter):
    """Timestamps in Europe/Berlin with their offset: 2026-11-23 10:30:05 +0100."""

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, BERLIN).strftime(datefmt or "%Y-%m-%d %H:%M:%S %z")


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BerlinFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our own lines say when a term starts and how each run ended; APScheduler's INFO
    # lines ("Adding job tentatively", "Running job") only repeat that. Its warnings stay.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def install_stop_signals(on_stop: Callable[[str], None]) -> None:
    """SIGTERM/SIGINT call `on_stop(signal name)` in a watcher thread, never inside the handler."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def handler(signum: int, _frame: object) -> None:
        with suppress(OSError):
            os.write(write_fd, bytes([signum]))

    def watch() -> None:
        while True:
            signum = os.read(read_fd, 1)[0]
            on_stop(signal.Signals(signum).name)

    threading.Thread(target=watch, name="signal-watcher", daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main() -> int:
    """`python -m jobs`: 0 after a clean stop; 1 when the database or the lock file is
    unusable (one log line, no traceback); 2 on a bad setting (one line, before logging)."""
    settings = load_or_exit()
    interval = interval_override_or_exit(os.environ)
    only = only_jobs_or_exit(os.environ, [spec.id for spec in JOBS])
    configure_logging()
    bootstrap()
    if interval is not None:
        log.warning("%s=%d: alle Jobs laufen alle %d s statt nach Plan (nur für Tests)", INTERVAL_ENV, interval, interval)
    if only is not None:
        log.warning("%s: nur %s (nur für Tests)", ONLY_ENV, ", ".join(only))
    lock: Optional[LeaderLock] = None
    try:
        lock = make_leader_lock(settings)
        runner = JobRunner(
            settings=settings,
            engine=get_engine(settings.DATABASE_URL),
            lock=lock,
            identity=new_runner_identity(now=utc_now()),
            specs=JOBS if only is None else tuple(spec for spec in JOBS if spec.id in only),
            interval_seconds=interval,
        )
        install_stop_signals(runner.request_stop)
        return runner.run()
    except SQLAlchemyError as exc:
        log.error("Datenbankfehler, Hintergrunddienst beendet (Datenbank erreichbar und migriert?): %s", _first_line(exc))
        return 1
    except OSError as exc:
        log.error("Dateifehler, Hintergrunddienst beendet (JOB_LOCK_PATH prüfen): %s", exc)
        return 1
    finally:
        if lock is not None:
            lock.close()
        dispose_engines()
