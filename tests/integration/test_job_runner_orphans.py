"""Issue 12 point 17: no job run stays "running" forever. Orphaned runs of any runner end as
failed – also those of the very runner that retakes leadership, and those whose end could not
be written while the database was away (the leader's next heartbeat writes or closes them)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from core.platform.config import Settings
from core.platform.db import make_engine, read_session, unit_of_work
from core.platform.models import JobRun
from core.platform.runner import (
    LATE_RESULT_NOTE, ORPHANED_OWN_RUN_ERROR, ORPHANED_RUN_ERROR, claim_leadership, new_runner_identity, register_runner,
)
from core.platform.vocab import JobResult
from jobs import execution
from jobs.process import JobRunner
from jobs.spec import JobSpec, every


class HeldLock:
    description = "test lock"

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_p17_retaking_leadership_closes_the_same_runners_orphans(db_session, now):
    own = JobRun(job_name="outbox_delivery", runner_id="same", started_at=now - timedelta(minutes=5), result=JobResult.running)
    other = JobRun(job_name="follow_ups", runner_id="other", started_at=now - timedelta(minutes=5), result=JobResult.running)
    db_session.add_all([own, other])
    db_session.flush()
    assert claim_leadership(db_session, "same", now=now) == 2
    db_session.expire_all()
    for run in (own, other):
        row = db_session.get(JobRun, run.id)
        assert (row.result, row.finished_at, row.error) == (JobResult.error, now, ORPHANED_RUN_ERROR)


@pytest.fixture
def runner_parts(fresh_db_url, now):
    engine = make_engine(fresh_db_url)
    clock_value = {"now": now}
    identity = new_runner_identity(now=now)
    with unit_of_work(engine) as s:
        register_runner(s, identity, now=now)
    runner = JobRunner(
        settings=Settings(HEARTBEAT_SECONDS=30), engine=engine, lock=HeldLock(), identity=identity,
        specs=(), clock=lambda: clock_value["now"],
    )
    runner._is_leader = True  # as after claiming in _lead()
    yield runner, engine, clock_value
    engine.dispose()


def _run(engine, run_id) -> JobRun:
    with read_session(engine) as s:
        return s.get(JobRun, run_id)


def test_p17_an_end_written_while_the_database_was_away_is_written_by_the_next_beat(runner_parts, now, monkeypatch):
    runner, engine, clock = runner_parts
    real_finish = execution._finish

    def database_away(*args, **kwargs):
        raise OperationalError("UPDATE job_runs …", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(execution, "_finish", database_away)
    outcome = runner._execute(JobSpec("demo", lambda ctx: "3 E-Mails versendet", every(minutes=1)))
    assert outcome.ok
    assert _run(engine, outcome.run_id).result == JobResult.running  # the database did not take the end

    monkeypatch.setattr(execution, "_finish", real_finish)  # the database is back
    clock["now"] = now + timedelta(seconds=30)
    runner.beat_now()
    row = _run(engine, outcome.run_id)
    assert row.result == JobResult.ok and row.finished_at == now and LATE_RESULT_NOTE in row.summary


def test_p17_own_runs_without_a_job_end_as_failed_at_the_next_beat(runner_parts, now):
    runner, engine, clock = runner_parts
    with unit_of_work(engine) as s:
        lost = JobRun(job_name="geocoding", runner_id=runner.runner_id, started_at=now - timedelta(minutes=10), result=JobResult.running)
        fresh = JobRun(job_name="geocoding", runner_id=runner.runner_id, started_at=now - timedelta(seconds=5), result=JobResult.running)
        busy = JobRun(job_name="nightly_plan", runner_id=runner.runner_id, started_at=now - timedelta(minutes=10), result=JobResult.running)
        s.add_all([lost, fresh, busy])
        s.flush()
        ids = lost.id, fresh.id, busy.id
    runner._runs.started(ids[2])  # a job of this runner is still at it
    runner.beat_now()
    lost_row, fresh_row, busy_row = (_run(engine, i) for i in ids)
    assert (lost_row.result, lost_row.error) == (JobResult.error, ORPHANED_OWN_RUN_ERROR)
    assert fresh_row.result == JobResult.running  # may be starting this very moment
    assert busy_row.result == JobResult.running
    runner._runs.finished(ids[2])
    clock["now"] = now + timedelta(minutes=1)
    runner.beat_now()
    assert _run(engine, ids[1]).result == JobResult.error and _run(engine, ids[2]).result == JobResult.error
