"""The job runner: JobRun records, housekeeping, leader lock, status for the dashboard, and
real `python -m jobs` processes (leader, standby, takeover after SIGKILL, SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.platform.config import Settings
from core.platform.db import make_engine, read_session
from core.platform.models import JobRun, LoginSession, RunnerHeartbeat, User
from core.platform.runner import ORPHANED_RUN_ERROR, FileLeaderLock, PostgresAdvisoryLock, RunnerStatus, claim_leadership, make_leader_lock, new_runner_identity, runner_status
from core.platform.vocab import JobResult, Role
from jobs import housekeeping
from jobs.execution import run_job
from jobs.process import JobRunner
from jobs.spec import JobContext, JobSpec, every
from tests.support.databases import PG_ADMIN_URL
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers




@contextmanager
def savepoint_scope(session: Session) -> Iterator[Session]:
    """A job's unit of work inside the test's rolled-back transaction."""
    yield session
    session.commit()


def heartbeat(session: Session, runner_id: str, *, beat_at: datetime, is_leader: bool = False, stopped_at=None) -> None:
    session.add(
        RunnerHeartbeat(
            runner_id=runner_id,
            hostname="host",
            pid=1,
            is_leader=is_leader,
            started_at=beat_at - timedelta(hours=1),
            beat_at=beat_at,
            stopped_at=stopped_at,
        )
    )
    session.flush()


def job_run(session: Session, name: str, *, started_at: datetime, result=JobResult.ok, runner_id="r1", error=None) -> JobRun:
    run = JobRun(job_name=name, runner_id=runner_id, started_at=started_at, result=result, error=error)
    session.add(run)
    session.flush()
    return run


# --------------------------------------------------------------------------- status label (pure)


def _status(now: datetime, **kwargs) -> RunnerStatus:
    defaults = dict(alive=False, leader_id=None, last_beat_at=None, standby_count=0)
    return RunnerStatus(now=now, **{**defaults, **kwargs})


def test_label_never_started(now):
    assert _status(now).label == "Hintergrunddienst noch nie gestartet"


def test_label_alive_shows_berlin_time(now):
    # 09:30 UTC in November is 10:30 in Berlin (CET).
    assert _status(now, alive=True, leader_id="a", last_beat_at=now).label == "Hintergrunddienst aktiv, zuletzt 10:30"
    summer = datetime(2026, 7, 1, 12, 5, tzinfo=timezone.utc)
    assert _status(summer, alive=True, last_beat_at=summer).label == "Hintergrunddienst aktiv, zuletzt 14:05"


def test_label_dead_shows_time_today_and_date_otherwise(now):
    assert _status(now, last_beat_at=now - timedelta(minutes=25)).label == "Hintergrunddienst nicht erreichbar (zuletzt 10:05)"
    yesterday = now - timedelta(days=1)
    assert _status(now, last_beat_at=yesterday).label == "Hintergrunddienst nicht erreichbar (zuletzt 22.11.2026 10:30)"


# --------------------------------------------------------------------------- status from the database


def test_runner_status_without_any_runner(db_session, now):
    status = runner_status(db_session, now, heartbeat_seconds=30)
    assert (status.alive, status.leader_id, status.last_beat_at, status.standby_count, status.last_runs) == (
        False,
        None,
        None,
        0,
        (),
    )
    assert status.label == "Hintergrunddienst noch nie gestartet"


def test_runner_status_alive_leader_and_standbys(db_session, now):
    limit = timedelta(seconds=2 * 30 + 10)
    heartbeat(db_session, "leader", beat_at=now - limit, is_leader=True)  # exactly at the limit: alive
    heartbeat(db_session, "standby", beat_at=now - timedelta(seconds=5))
    heartbeat(db_session, "stale-standby", beat_at=now - limit - timedelta(seconds=1))
    heartbeat(db_session, "stopped", beat_at=now, stopped_at=now)
    status = runner_status(db_session, now, heartbeat_seconds=30)
    assert status.alive and status.leader_id == "leader"
    assert status.standby_count == 1
    assert status.last_beat_at == now - limit
    assert status.label == "Hintergrunddienst aktiv, zuletzt 10:28"


def test_runner_status_dead_leader(db_session, now):
    heartbeat(db_session, "leader", beat_at=now - timedelta(seconds=71), is_leader=True)
    status = runner_status(db_session, now, heartbeat_seconds=30)
    assert not status.alive and status.leader_id is None
    assert status.label == "Hintergrunddienst nicht erreichbar (zuletzt 10:28)"


def test_runner_status_stopped_leader_is_not_alive(db_session, now):
    heartbeat(db_session, "leader", beat_at=now, is_leader=True, stopped_at=now)
    assert runner_status(db_session, now, heartbeat_seconds=30).label == "Hintergrunddienst nicht erreichbar (zuletzt 10:30)"


def test_runner_status_last_run_per_job(db_session, now):
    job_run(db_session, "housekeeping", started_at=now - timedelta(minutes=30), result=JobResult.error, error="X: y")
    job_run(db_session, "housekeeping", started_at=now - timedelta(minutes=15))
    job_run(db_session, "outbox", started_at=now - timedelta(minutes=40), result=JobResult.error, error="SMTPError: 421 busy\n\nTraceback …")
    runs = runner_status(db_session, now, heartbeat_seconds=30).last_runs
    assert [(r.job_name, r.result, r.started_at) for r in runs] == [
        ("housekeeping", JobResult.ok, now - timedelta(minutes=15)),
        ("outbox", JobResult.error, now - timedelta(minutes=40)),
    ]
    assert runs[0].title == "Aufräumen (abgelaufene Anmeldungen)"
    assert runs[1].title == "outbox"  # unknown ids fall back to the id
    assert runs[1].error_line == "SMTPError: 421 busy"
    assert runner_status(db_session, now, heartbeat_seconds=30, include_runs=False).last_runs == ()


def test_claim_leadership_demotes_others_and_closes_orphaned_runs(db_session, now):
    heartbeat(db_session, "old", beat_at=now - timedelta(seconds=3), is_leader=True)
    heartbeat(db_session, "new", beat_at=now - timedelta(seconds=1))
    orphan = job_run(db_session, "housekeeping", started_at=now - timedelta(seconds=2), result=JobResult.running, runner_id="old")
    done = job_run(db_session, "housekeeping", started_at=now - timedelta(minutes=15), runner_id="old")
    assert claim_leadership(db_session, "new", now=now) == 1
    db_session.expire_all()
    assert db_session.get(RunnerHeartbeat, "old").is_leader is False
    new = db_session.get(RunnerHeartbeat, "new")
    assert new.is_leader is True and new.beat_at == now
    orphan = db_session.get(JobRun, orphan.id)
    assert (orphan.result, orphan.finished_at, orphan.error) == (JobResult.error, now, ORPHANED_RUN_ERROR)
    assert db_session.get(JobRun, done.id).result == JobResult.ok


# --------------------------------------------------------------------------- jobs and their JobRun rows


def test_housekeeping_expires_sessions(db_session, now):
    user = User(username=f"hk-{uuid.uuid4().hex[:8]}", display_name="Haus Halt", role=Role.coordinator)
    db_session.add(user)
    db_session.flush()

    def login(**fields) -> LoginSession:
        row = LoginSession(user_id=user.id, created_at=now - timedelta(hours=1), last_seen_at=now, **fields)
        db_session.add(row)
        return row

    expired = login(token_hash=uuid.uuid4().hex, expires_at=now - timedelta(minutes=1))
    valid = login(token_hash=uuid.uuid4().hex, expires_at=now + timedelta(hours=1))
    unused = login(handoff_hash=uuid.uuid4().hex, handoff_expires_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=11))
    ancient = login(token_hash=uuid.uuid4().hex, expires_at=now - timedelta(days=40), revoked_at=now - timedelta(days=40))
    heartbeat(db_session, "gone-for-a-week", beat_at=now - timedelta(days=8), stopped_at=now - timedelta(days=8))
    heartbeat(db_session, "recent", beat_at=now - timedelta(days=1), stopped_at=now - timedelta(days=1))

    def finished_run(days_ago: int, result: JobResult) -> JobRun:
        at = now - timedelta(days=days_ago)
        row = JobRun(job_name="outbox_delivery", runner_id="r", started_at=at, finished_at=at, result=result)
        db_session.add(row)
        return row

    old_ok, kept_ok = finished_run(31, JobResult.ok), finished_run(29, JobResult.ok)
    old_error, kept_error = finished_run(91, JobResult.error), finished_run(60, JobResult.error)
    db_session.flush()

    ctx = JobContext(now=now, runner_id="test", settings=Settings(), session_scope=lambda: savepoint_scope(db_session))
    summary = housekeeping.run(ctx)

    assert summary == (
        "Anmeldungen: 1 abgelaufen, 1 ungenutzte Anmeldecodes verworfen, 1 alte gelöscht; "
        "1 alte Einträge des Hintergrunddienstes gelöscht, 2 alte Jobläufe gelöscht"
    )
    db_session.expire_all()
    assert (db_session.get(LoginSession, expired.id).revoked_at, db_session.get(LoginSession, expired.id).revoke_reason) == (now, "expired")
    assert db_session.get(LoginSession, valid.id).revoked_at is None
    assert db_session.get(LoginSession, unused.id).revoke_reason == "handoff_unused"
    assert db_session.get(LoginSession, ancient.id) is None
    assert db_session.get(RunnerHeartbeat, "gone-for-a-week") is None
    assert db_session.get(RunnerHeartbeat, "recent") is not None
    assert [db_session.get(JobRun, r.id) is not None for r in (old_ok, kept_ok, old_error, kept_error)] == [False, True, False, True]


def test_job_runs_recorded_for_ok_failing_and_housekeeping(fresh_db_url, now):
    engine = make_engine(fresh_db_url)
    ticks = iter(now + timedelta(seconds=s) for s in range(100))

    def failing(ctx: JobContext) -> str:
        with ctx.session_scope() as session:
            heartbeat(session, "written-by-failing-job", beat_at=ctx.now)
            raise RuntimeError("SMTP-Server antwortet nicht")

    ok_spec = JobSpec("demo_ok", lambda ctx: f"erledigt um {ctx.now:%H:%M:%S}", every(minutes=1))
    bad_spec = JobSpec("demo_failing", failing, every(minutes=1))
    hk_spec = JobSpec("housekeeping", housekeeping.run, every(minutes=15))
    try:
        run = lambda spec: run_job(spec, engine=engine, settings=Settings(), runner_id="runner-x", clock=lambda: next(ticks))  # noqa: E731
        ok, bad, hk = run(ok_spec), run(bad_spec), run(hk_spec)
        assert ok.ok and not bad.ok and hk.ok

        with read_session(engine) as session:
            rows = {r.job_name: r for r in session.scalars(select(JobRun))}
            assert session.get(RunnerHeartbeat, "written-by-failing-job") is None  # the job's writes rolled back
            status = runner_status(session, now + timedelta(minutes=1), heartbeat_seconds=30)
            session.expunge_all()
        good = rows["demo_ok"]
        assert (good.runner_id, good.started_at, good.finished_at, good.result) == ("runner-x", now, now + timedelta(seconds=1), JobResult.ok)
        assert good.summary == "erledigt um 09:30:00" and good.error is None
        failed = rows["demo_failing"]
        assert failed.result == JobResult.error and failed.finished_at == now + timedelta(seconds=3)
        assert failed.error.startswith("RuntimeError: SMTP-Server antwortet nicht\n")
        assert "Traceback" in failed.error and "in failing" in failed.error
        assert rows["housekeeping"].summary.startswith("Anmeldungen: 0 abgelaufen")
        assert {r.job_name: r.result for r in status.last_runs} == {
            "demo_failing": JobResult.error,
            "demo_ok": JobResult.ok,
            "housekeeping": JobResult.ok,
        }
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- leader lock


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_leader_lock_is_exclusive_until_released(backend, db_engine, tmp_path):
    settings = Settings(DATABASE_URL=_url(db_engine), JOB_LOCK_PATH=str(tmp_path / "jobs.lock"))
    first, second = make_leader_lock(settings), make_leader_lock(settings)
    try:
        assert isinstance(first, FileLeaderLock if backend == "sqlite" else PostgresAdvisoryLock)
        assert first.try_acquire()
        assert first.try_acquire()  # asking again while holding it changes nothing
        assert first.still_held()
        assert not second.try_acquire()
        assert not second.still_held()
        first.release()
        assert not first.still_held()
        assert second.try_acquire() and second.still_held()
        assert not first.try_acquire()
        second.release()
        assert first.try_acquire()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_advisory_lock_dies_with_its_connection(db_engine):
    first, second = PostgresAdvisoryLock(_url(db_engine)), PostgresAdvisoryLock(_url(db_engine))
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        assert first.try_acquire()
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first.backend_pid()})
        wait_for(second.try_acquire, timeout=5, what="the lock of a terminated connection to be free")
        assert not first.still_held()
    finally:
        first.close()
        second.close()
        admin.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_advisory_lock_is_per_database(db_engine, fresh_db_url):
    here, elsewhere = PostgresAdvisoryLock(_url(db_engine)), PostgresAdvisoryLock(fresh_db_url)
    try:
        assert here.try_acquire() and elsewhere.try_acquire()
    finally:
        here.close()
        elsewhere.close()


# --------------------------------------------------------------------------- the runner in-process


def test_stop_waits_for_the_running_job(backend, fresh_db_url, tmp_path):
    """request_stop() (what SIGTERM triggers) lets a running job finish before the runner ends."""
    started, release = threading.Event(), threading.Event()

    def slow(ctx: JobContext) -> str:
        started.set()
        assert release.wait(10)
        return "langsam, aber fertig"

    settings = Settings(DATABASE_URL=fresh_db_url, JOB_LOCK_PATH=str(tmp_path / "jobs.lock"), HEARTBEAT_SECONDS=1)
    engine = make_engine(fresh_db_url)
    lock = make_leader_lock(settings)
    runner = JobRunner(
        settings=settings,
        engine=engine,
        lock=lock,
        identity=new_runner_identity(now=datetime.now(timezone.utc)),
        specs=[JobSpec("slow", slow, lambda tz: DateTrigger(run_date=datetime.now(tz), timezone=tz))],
    )
    exit_codes: list[int] = []
    main = threading.Thread(target=lambda: exit_codes.append(runner.run()))
    try:
        main.start()
        assert started.wait(10), "the job did not start"
        stopper = threading.Thread(target=runner.request_stop, args=("Test",))
        stopper.start()
        assert main.is_alive()
        release.set()
        main.join(15)
        stopper.join(15)
        assert exit_codes == [0]
        with read_session(engine) as session:
            run = session.scalars(select(JobRun)).one()
            beat = session.get(RunnerHeartbeat, runner.runner_id)
            assert (run.result, run.summary) == (JobResult.ok, "langsam, aber fertig")
            assert beat.stopped_at is not None and beat.stopped_at >= run.finished_at
        assert not lock.still_held()
    finally:
        release.set()
        main.join(15)
        lock.close()
        engine.dispose()


# --------------------------------------------------------------------------- the real process


def _jobs_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JOBS_INTERVAL_SECONDS"}
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


def _run_jobs_until_exit(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def test_core_runner_imports_neither_apscheduler_nor_streamlit():
    code = "import sys, core.platform.runner; print(sorted(m for m in ('apscheduler', 'streamlit') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "value"),
    [("HEARTBEAT_SECONDS", "abc"), ("JOBS_INTERVAL_SECONDS", "0")],
)
def test_bad_setting_exits_2_with_one_line(name, value):
    result = _run_jobs_until_exit(_jobs_env(DATABASE_URL="sqlite:///var/test-never-used.db", **{name: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Konfigurationsfehler: ") and name in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("problem", ["unmigrated database", "lock path under a file"])
def test_startup_failure_exits_1_with_one_clear_error(problem, db_factories, tmp_path):
    lock_path = tmp_path / "jobs.lock"
    if problem == "unmigrated database":
        url, expected = db_factories["sqlite"].new_url(migrated=False), "Datenbankfehler"
    else:
        url, expected = db_factories["sqlite"].new_url(), "Dateifehler"
        (tmp_path / "a-file").write_text("")
        lock_path = tmp_path / "a-file" / "jobs.lock"
    result = _run_jobs_until_exit(_jobs_env(DATABASE_URL=url, JOB_LOCK_PATH=str(lock_path)))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


class Runners:
    """`python -m jobs` processes against one database, and what they wrote there."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.engine = make_engine(url)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = _jobs_env(
            DATABASE_URL=url,
            HEARTBEAT_SECONDS="1",
            JOBS_INTERVAL_SECONDS="1",
            JOB_LOCK_PATH=str(tmp_path / "jobs.lock"),
        )

    def spawn(self, name: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "jobs"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        self.procs[name] = proc
        return proc

    def by_pid(self, pid: int) -> subprocess.Popen:
        return next(p for p in self.procs.values() if p.pid == pid)

    def rows(self) -> tuple[dict[str, RunnerHeartbeat], list[JobRun]]:
        with read_session(self.engine) as session:
            beats = {b.runner_id: b for b in session.scalars(select(RunnerHeartbeat))}
            runs = list(session.scalars(select(JobRun).order_by(JobRun.id)))
            session.expunge_all()  # plain snapshots: read_session's rollback must not expire them
        return beats, runs

    def status(self) -> RunnerStatus:
        with read_session(self.engine) as session:
            return runner_status(session, datetime.now(timezone.utc), heartbeat_seconds=1)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp_path.glob("*.log")))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self.engine.dispose()


@pytest.fixture
def runners(fresh_db_url, tmp_path):
    r = Runners(fresh_db_url, tmp_path)
    yield r
    r.close()


def _one_leader_with_runs(runners: Runners, live_runners: int):
    beats, runs = runners.rows()
    live = [b for b in beats.values() if b.stopped_at is None]
    leaders = [b for b in live if b.is_leader]
    if len(live) != live_runners or len(leaders) != 1:
        return None
    leader = leaders[0]
    if sum(1 for r in runs if r.runner_id == leader.runner_id and r.result == JobResult.ok) < 2:
        return None
    return leader, [b for b in live if not b.is_leader]


@pytest.mark.slow
def test_runners_one_leader_takeover_after_sigkill_and_clean_sigterm(backend, runners, capsys):
    details = runners.logs
    for name in ("a", "b", "c"):
        runners.spawn(name)

    # Exactly one leader runs the jobs; the others wait.
    leader, (standby, spare) = wait_for(
        lambda: _one_leader_with_runs(runners, 3), timeout=30, what="one leader running jobs", details=details
    )
    beats, runs = runners.rows()
    assert {r.runner_id for r in runs} == {leader.runner_id}, "only the leader may run jobs"
    status = runners.status()
    assert status.alive and status.leader_id == leader.runner_id and status.standby_count == 2
    assert status.label.startswith("Hintergrunddienst aktiv, zuletzt ")
    # the latest run of a job may still be running (every job runs every few seconds here):
    # wait for a finished housekeeping run, and no run of any job may have failed
    runs = wait_for(
        lambda: (lambda rs: rs if any(r.job_name == "housekeeping" and r.result == JobResult.ok for r in rs) else None)(
            runners.rows()[1]
        ),
        timeout=30, what="a finished housekeeping run", details=details,
    )
    assert not [(r.job_name, r.error) for r in runs if r.result == JobResult.error]

    # SIGTERM a standby: exit 0 at once, stopped_at set.
    spare_proc = runners.by_pid(spare.pid)
    spare_proc.send_signal(signal.SIGTERM)
    assert spare_proc.wait(timeout=15) == 0, details()
    assert runners.rows()[0][spare.runner_id].stopped_at is not None

    # SIGKILL the leader: the remaining standby takes over and runs jobs.
    killed_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    runners.by_pid(leader.pid).kill()

    def taken_over():
        beats, runs = runners.rows()
        mine = [r for r in runs if r.runner_id == standby.runner_id and r.result == JobResult.ok]
        return beats[standby.runner_id].is_leader and mine

    wait_for(taken_over, timeout=30, what="the standby to take over", details=details)
    takeover = time.monotonic() - t0
    with capsys.disabled():
        print(f"\n[{backend}] takeover after SIGKILL of the leader: {takeover:.2f} s")
    assert takeover < 30
    beats, runs = runners.rows()
    assert beats[leader.runner_id].is_leader is False
    assert all(r.started_at >= killed_at for r in runs if r.runner_id == standby.runner_id)
    assert not [r for r in runs if r.runner_id == leader.runner_id and r.result == JobResult.running]
    assert runners.status().leader_id == standby.runner_id

    # SIGTERM the leader: exit 0, stopped_at set, and the dashboard says so.
    survivor = runners.by_pid(standby.pid)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=15) == 0, details()
    beats, runs = runners.rows()
    assert beats[standby.runner_id].stopped_at is not None
    assert beats[leader.runner_id].stopped_at is None  # killed: no chance to say goodbye
    assert not [r for r in runs if r.result == JobResult.running]
    assert runners.status().label.startswith("Hintergrunddienst nicht erreichbar (zuletzt ")
    assert "Traceback" not in details()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_leader_that_loses_its_lock_connection_steps_down_and_leads_again(runners):
    details = runners.logs
    runners.spawn("a")

    def leading_with_runs():
        beats, runs = runners.rows()
        return len(beats) == 1 and next(iter(beats.values())).is_leader and [r for r in runs if r.result == JobResult.ok]

    wait_for(leading_with_runs, timeout=30, what="the runner to lead", details=details)
    dbname = runners.url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND application_name = 'tp-jobs-leader-lock'"
                ),
                {"db": dbname},
            ).scalars().all()
    finally:
        admin.dispose()
    assert killed == [True]
    lost_at = datetime.now(timezone.utc)

    def leads_again():
        log = (runners.tmp_path / "a.log").read_text()
        _beats, runs = runners.rows()
        return log.count("Leitung übernommen") == 2 and [r for r in runs if r.started_at > lost_at and r.result == JobResult.ok]

    wait_for(leads_again, timeout=30, what="the runner to step down and lead again", details=details)
    assert "Leitung abgegeben" in (runners.tmp_path / "a.log").read_text()
    assert runners.procs["a"].poll() is None
    assert runners.status().alive
