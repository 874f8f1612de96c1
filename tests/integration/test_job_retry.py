"""A job whose unit of work lost a race (deadlock or serialization failure) runs again after
a short pause; one that loses every time is recorded as an error with the German message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.platform.config import Settings
from core.platform.db import CONCURRENT_CHANGE_MESSAGE, RETRY_ATTEMPTS, ConcurrentChange, make_engine, read_session
from core.platform.models import JobRun, RunnerHeartbeat
from core.platform.vocab import JobResult
from jobs.execution import run_job
from jobs.spec import JobContext, JobSpec, every


def heartbeat(session, runner_id: str, *, beat_at) -> None:
    session.add(RunnerHeartbeat(runner_id=runner_id, hostname="host", pid=1, is_leader=False,
                                started_at=beat_at, beat_at=beat_at))


@pytest.fixture
def engine(db_factories):
    eng = make_engine(db_factories["sqlite"].new_url())
    yield eng
    eng.dispose()


def test_a_job_that_lost_a_race_runs_again_and_succeeds(engine, now):
    tries: list[int] = []

    def job(ctx: JobContext) -> str:
        tries.append(1)
        with ctx.session_scope() as session:
            heartbeat(session, f"try-{len(tries)}", beat_at=ctx.now)
            if len(tries) == 1:
                raise ConcurrentChange()
        return f"{len(tries)} Versuche"

    ticks = iter(now + timedelta(seconds=s) for s in range(10))
    outcome = run_job(JobSpec("demo_retry", job, every(minutes=1)), engine=engine, settings=Settings(),
                      runner_id="runner-x", clock=lambda: next(ticks))
    assert outcome.ok and outcome.summary == "2 Versuche"
    with read_session(engine) as s:
        assert s.get(RunnerHeartbeat, "try-1") is None and s.get(RunnerHeartbeat, "try-2") is not None
        assert [r.result for r in s.scalars(select(JobRun))] == [JobResult.ok]


def test_a_job_that_always_loses_is_recorded_with_the_german_message(engine, now):
    tries: list[int] = []

    def job(ctx: JobContext) -> str:
        tries.append(1)
        raise ConcurrentChange()

    ticks = iter(now + timedelta(seconds=s) for s in range(10))
    outcome = run_job(JobSpec("demo_retry", job, every(minutes=1)), engine=engine, settings=Settings(),
                      runner_id="runner-x", clock=lambda: next(ticks))
    assert not outcome.ok and len(tries) == RETRY_ATTEMPTS
    assert outcome.error.startswith(f"ConcurrentChange: {CONCURRENT_CHANGE_MESSAGE}\n")
