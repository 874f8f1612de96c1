"""What a job is: an id, a thin function, a trigger; and what a job gets when it runs."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Callable, Optional

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session

from core.platform.config import Settings


@dataclass(frozen=True)
class JobContext:
    """Everything a job function needs; `now` is read once by the wrapper (jobs/execution.py)."""

    now: datetime
    runner_id: str
    settings: Settings
    # A unit of work: commits when the block succeeds. Jobs working in batches open one per batch.
    session_scope: Callable[[], AbstractContextManager[Session]]


# A job: thin call into core; returns a short German summary stored in JobRun.summary.
JobFunction = Callable[[JobContext], Optional[str]]
# Triggers are built when the scheduler is built (an IntervalTrigger fixes its start then).
TriggerFactory = Callable[[tzinfo], BaseTrigger]


@dataclass(frozen=True)
class JobSpec:
    id: str  # stable, explicit: JobRun.job_name and core.runner.JOB_TITLES use it
    func: JobFunction
    trigger: TriggerFactory
    # With a memory job store a run is "missed" only if the process was busy or suspended;
    # within this many seconds it still runs late, after that the run is skipped.
    misfire_grace_time: Optional[int] = 300
    coalesce: bool = True  # a backlog of missed runs becomes one run
    max_instances: int = 1  # never overlap with itself


def cron(**fields: str | int) -> TriggerFactory:
    """A wall-clock schedule in the scheduler's time zone, e.g. cron(minute="*/15")."""
    return lambda tz: CronTrigger(timezone=tz, **fields)


def every(*, seconds: int = 0, minutes: int = 0, hours: int = 0) -> TriggerFactory:
    """A fixed interval from the moment the scheduler is built."""
    return lambda tz: IntervalTrigger(seconds=seconds, minutes=minutes, hours=hours, timezone=tz)
