"""The real job runner (`python -m jobs`) killed with SIGKILL in the middle of delivering 200
mails to a slow SMTP server: after a restart all 200 arrive, none is lost, and the mails
delivered twice are at most the ones that were in flight at the kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.mail import templates as mt
from core.mail import outbox
from core.platform.db import make_engine, read_session, unit_of_work
from core.platform.models import OutboxEmail, Patient
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, Role
from tests.support.outbox_fixtures import SinkHandler, SmtpSink, settings_for
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
MAILS = 200
LEASE_SECONDS = 4




def spawn_runner(env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "a")  # noqa: SIM115 - closed right after the child has it
    proc = subprocess.Popen([sys.executable, "-m", "jobs"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    return proc


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing(db_factories, tmp_path):
    url = db_factories["postgresql"].new_url()
    engine = make_engine(url)
    handler = SinkHandler(delay_s=0.02)  # slow enough to kill mid-batch
    procs: list[subprocess.Popen] = []
    try:
        with SmtpSink(handler) as sink:
            settings = settings_for(SMTP_MODE="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_SECURITY="plain")
            queued_at = datetime.now(timezone.utc) - timedelta(minutes=1)
            with unit_of_work(engine) as s:
                patients = [Patient(first_name=f"Person{i}", last_name="Test", email=f"p{i}@example.org") for i in range(MAILS)]
                s.add_all(patients)
                s.flush()
                for p in patients:
                    outbox.queue_patient_email(s, COORD, p.id, mt.PATIENT_STATUS_UPDATE, queued_at, approve=True, settings=settings)
            env = {k: v for k, v in os.environ.items() if k != "JOBS_INTERVAL_SECONDS"}
            env.update(
                PYTHONUNBUFFERED="1", DATABASE_URL=url, JOBS_INTERVAL_SECONDS="1", HEARTBEAT_SECONDS="1",
                JOB_LOCK_PATH=str(tmp_path / "jobs.lock"), OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
                SMTP_MODE="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(sink.port), SMTP_SECURITY="plain", SMTP_TIMEOUT_S="5",
            )
            log_path = tmp_path / "jobs.log"
            details = lambda: log_path.read_text()[-4000:] if log_path.exists() else ""  # noqa: E731

            procs.append(spawn_runner(env, log_path))
            wait_for(lambda: len(handler.messages) >= 70, timeout=30, what="70 mails delivered", details=details)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(timeout=10)
            received_at_kill = len(handler.messages)

            def count(state):
                with read_session(engine) as s:
                    return s.scalar(select(func.count()).select_from(OutboxEmail).where(OutboxEmail.state == state))

            in_flight = count(EmailState.sending)
            sent_at_kill = count(EmailState.sent)
            assert 0 < received_at_kill < MAILS and sent_at_kill < MAILS, "the kill must hit the middle of the run"

            procs.append(spawn_runner(env, log_path))
            wait_for(lambda: count(EmailState.sent) == MAILS, timeout=45, what="all mails sent after the restart",
                     details=details)
            # let the last SMTP transactions of the new runner settle before reading the sink
            wait_for(lambda: len(handler.messages) >= MAILS, timeout=10, what="all mails at the server")
            procs[1].send_signal(signal.SIGTERM)
            procs[1].wait(timeout=30)

        with read_session(engine) as s:
            stored = set(s.scalars(select(OutboxEmail.message_id)))
            states = set(s.scalars(select(OutboxEmail.state)))
        counts = handler.message_id_counts()
        delivered_twice = sum(n - 1 for n in counts.values() if n > 1)
        print(
            f"\nSIGKILL test: {MAILS} mails, {received_at_kill} received before the kill, "
            f"{sent_at_kill} recorded sent at the kill, in flight at the kill: {in_flight}, "
            f"delivered twice: {delivered_twice}"
        )
        assert states == {EmailState.sent}
        assert len(stored) == MAILS and set(counts) == stored, "every mail arrived, none lost"
        assert delivered_twice <= in_flight
        assert max(counts.values()) <= 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        engine.dispose()
