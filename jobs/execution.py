"""Run one job: a JobRun row per run, in its own transactions, even when the job fails."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Callable, Optional

from sqlalchemy.engine import Engine

from core.platform.config import Settings
from core.platform.db import unit_of_work
from core.platform.logs import scrub
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
        summary = spec.func(ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the scheduler goes on
        log.exception("Job %s fehlgeschlagen nach %.2f s", spec.id, time.monotonic() - t0)
        error = describe_exception(exc)
        _finish(engine, run_id, now=clock(), error=error)
        return JobRunOutcome(run_id, ok=False, error=error)
    log.info("Job %s fertig in %.2f s: %s", spec.id, time.monotonic() - t0, summary or "–")
    _finish(engine, run_id, now=clock(), summary=summary)
    return JobRunOutcome(run_id, ok=True, summary=summary)


def describe_exception(exc: BaseException) -> str:
    """`Type: message` on the first line (what the dashboard shows), then the traceback;
    without database row values or addresses (core.platform.logs.scrub)."""
    head = f"{type(exc).__name__}: {exc}".strip()
    text = scrub(head + "\n\n" + "".join(traceback.format_exception(exc)))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS // 2] + "\n…\n" + text[-MAX_ERROR_CHARS // 2 :]


def _finish(engine: Engine, run_id: int, *, now: datetime, summary: Optional[str] = None, error: Optional[str] = None) -> None:
    with unit_of_work(engine) as session:
        finish_job_run(session, run_id, now=now, summary=summary, error=error)
