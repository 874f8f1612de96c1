"""Build the APScheduler 3 scheduler from the job specs (without starting it)."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Optional, Sequence
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.registry import JOBS
from jobs.spec import JobSpec

BERLIN = ZoneInfo("Europe/Berlin")


def build_scheduler(
    execute: Callable[[JobSpec], object],
    *,
    specs: Sequence[JobSpec] = JOBS,
    interval_seconds: Optional[int] = None,
) -> BlockingScheduler:
    """A BlockingScheduler in Europe/Berlin with one job per spec, calling `execute(spec)`.

    Schedules live in code (MemoryJobStore): nothing to migrate or unpickle, and a new
    leader simply builds its own. `interval_seconds` replaces every trigger by a short
    interval (JOBS_INTERVAL_SECONDS, for tests and development).
    """
    _reject_duplicate_ids(specs)
    scheduler = BlockingScheduler(
        timezone=BERLIN,
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=max(2, len(specs)))},
    )
    for spec in specs:
        scheduler.add_job(
            execute,
            trigger=_trigger(spec, interval_seconds),
            args=(spec,),
            id=spec.id,
            name=spec.id,
            misfire_grace_time=spec.misfire_grace_time,
            coalesce=spec.coalesce,
            max_instances=spec.max_instances,
        )
    return scheduler


def _trigger(spec: JobSpec, interval_seconds: Optional[int]) -> BaseTrigger:
    if interval_seconds is not None:
        return IntervalTrigger(seconds=interval_seconds, timezone=BERLIN)
    return spec.trigger(BERLIN)


def _reject_duplicate_ids(specs: Sequence[JobSpec]) -> None:
    duplicates = sorted(job_id for job_id, n in Counter(spec.id for spec in specs).items() if n > 1)
    if duplicates:
        raise ValueError(f"job ids must be unique: {', '.join(duplicates)}")
