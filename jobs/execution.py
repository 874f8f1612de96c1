"""Run one job: a JobRun row per run, in its own transactions, even when the job fails."""

from __future__ import annotations

import logging
import random
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Callable, Optional

from sqlalchemy.engine import Engine

from core.platform.config import Settings
from core.platform.db import RETRY_ATTEMPTS, RETRY_PAUSE_S, ConcurrentChange, unit_of_work
from core.platform.runner import finish_job_run, start_job_run
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


def run_job(spec: JobSpec, *, engine: Engine, settings: Settings, runner_id: str, clock: Clock = utc_now) -> JobRunOutcome:
    """Record the start, run the job with `now` injected, record the end (ok or error).

    The job's own writes happen in its own units of work; when it raises, they roll
    back, and the JobRun row still says error with the exception and traceback.
    """
    started = clock()
    with unit_of_work(engine) as session:
        run_id = start_job_run(session, spec.id, runner_id, now=started)
    ctx = JobContext(now=started, runner_id=runner_id, settings=settings, session_scope=partial(unit_of_work, engine))
    t0 = time.monotonic()
    try:
        summary = _run_with_retries(spec, ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the scheduler goes on
        log.exception("Job %s fehlgeschlagen nach %.2f s", spec.id, time.monotonic() - t0)
        error = describe_exception(exc)
        _finish(engine, run_id, now=clock(), error=error)
        return JobRunOutcome(run_id, ok=False, error=error)
    log.info("Job %s fertig in %.2f s: %s", spec.id, time.monotonic() - t0, summary or "–")
    _finish(engine, run_id, now=clock(), summary=summary)
    return JobRunOutcome(run_id, ok=True, summary=summary)


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
    """`Type: message` on the first line (what the dashboard shows), then the traceback."""
    head = f"{type(exc).__name__}: {exc}".strip()
    text = head + "\n\n" + "".join(traceback.format_exception(exc))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS // 2] + "\n…\n" + text[-MAX_ERROR_CHARS // 2 :]


def _finish(engine: Engine, run_id: int, *, now: datetime, summary: Optional[str] = None, error: Optional[str] = None) -> None:
    with unit_of_work(engine) as session:
        finish_job_run(session, run_id, now=now, summary=summary, error=error)
