"""The schedule definition of `python -m jobs`, inspected without running anything."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.platform.runner import JOB_TITLES
from jobs.registry import JOBS
from jobs.scheduler import build_scheduler
from jobs.spec import JobSpec, cron, every

BERLIN = ZoneInfo("Europe/Berlin")


def _noop(_spec: JobSpec) -> None:
    return None


def _jobs_by_id(**kwargs):
    return {job.id: job for job in build_scheduler(_noop, **kwargs).get_jobs()}


def test_scheduler_runs_in_berlin_and_is_not_started():
    scheduler = build_scheduler(_noop)
    assert scheduler.timezone == BERLIN
    assert not scheduler.running


def test_job_ids_are_explicit_unique_and_titled():
    ids = [spec.id for spec in JOBS]
    assert "housekeeping" in ids
    assert len(ids) == len(set(ids))
    assert set(_jobs_by_id()) == set(ids)
    missing = [job_id for job_id in ids if job_id not in JOB_TITLES]
    assert not missing, f"add a German title to core.runner.JOB_TITLES for {missing}"


def test_every_job_has_sane_run_options():
    for job in _jobs_by_id().values():
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time is None or job.misfire_grace_time >= 60
        assert job.trigger.timezone == BERLIN
        assert job.args[0].id == job.id


def test_housekeeping_every_quarter_hour_berlin_time_across_dst():
    job = _jobs_by_id()["housekeeping"]
    assert isinstance(job.trigger, CronTrigger)
    assert job.misfire_grace_time == 600
    # Night of the switch to summer time: 02:00 CET jumps to 03:00 CEST.
    start = datetime(2026, 3, 29, 1, 50, tzinfo=BERLIN)
    fires = []
    previous = None
    now = start
    for _ in range(3):
        nxt = job.trigger.get_next_fire_time(previous, now)
        fires.append(nxt)
        previous, now = nxt, nxt
    assert [f.isoformat() for f in fires] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_interval_override_replaces_every_trigger():
    for job in _jobs_by_id(interval_seconds=1).values():
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval.total_seconds() == 1


def test_trigger_helpers():
    assert isinstance(cron(minute="*/5")(BERLIN), CronTrigger)
    trigger = every(minutes=2)(BERLIN)
    assert isinstance(trigger, IntervalTrigger) and trigger.interval.total_seconds() == 120


def test_duplicate_job_ids_are_rejected():
    spec = JobSpec("twice", lambda ctx: None, every(minutes=1))
    with pytest.raises(ValueError, match="twice"):
        build_scheduler(_noop, specs=[spec, spec])


def test_a_new_job_is_one_spec():
    extra = JobSpec("outbox", lambda ctx: "ok", every(seconds=30), misfire_grace_time=60)
    jobs = _jobs_by_id(specs=[*JOBS, extra])
    assert jobs["outbox"].trigger.interval.total_seconds() == 30
    assert jobs["outbox"].misfire_grace_time == 60
