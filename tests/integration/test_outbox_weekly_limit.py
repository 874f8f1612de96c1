"""Property: over 8 simulated weeks of random inquiries, answers, thanks mails, reminders
and SMTP hiccups, no therapist receives two e-mails within EMAIL_MIN_INTERVAL_DAYS.

The clock is simulated (injected `now`), the database is real (SQLite; the services are the
same on PostgreSQL, which the other outbox tests cover), the sender records what it was
handed and when."""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.mail import delivery
from core.calls import follow_ups
from core.mail import outbox
from core.adapters.smtp import SendError
from core.platform.models import Inquiry, OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, InquiryStatus, Outcome, Role
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist, settings_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
START = datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc)
WEEKS = 8
TICK = timedelta(hours=12)
THERAPISTS = 4

EVENT = st.tuples(
    st.integers(min_value=0, max_value=WEEKS * 14 - 1),  # tick
    st.sampled_from(["inquiry", "inquiry", "inquiry", "answer", "cancel"]),
    st.integers(min_value=0, max_value=THERAPISTS - 1),
)


class FlakySender:
    description = "simulation"

    def __init__(self, clock, failures):
        self.clock = clock
        self.failures = failures
        self.calls = 0
        self.deliveries: list[tuple[str, datetime]] = []

    @contextmanager
    def connect(self):
        yield self

    def send(self, message):
        self.calls += 1
        if self.failures and self.failures[self.calls % len(self.failures)]:
            raise SendError("451 4.3.2 Bitte später erneut", temporary=True, code=451)
        self.deliveries.append((message["To"].addresses[0].addr_spec, self.clock()))


@pytest.fixture
def sqlite_engine(db_factories):
    from core.platform.db import make_engine

    engine = make_engine(db_factories["sqlite"].new_url())
    yield engine
    engine.dispose()


@pytest.mark.slow
@given(
    events=st.lists(EVENT, min_size=5, max_size=40),
    failures=st.lists(st.booleans(), max_size=6),
    interval=st.sampled_from([3, 7]),
    follow_up_days=st.sampled_from([4, 7]),
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_therapist_gets_two_mails_within_the_interval(sqlite_engine, events, failures, interval, follow_up_days):
    cfg = settings_for(EMAIL_MIN_INTERVAL_DAYS=interval, FOLLOW_UP_DAYS=follow_up_days, EMAIL_MAX_ATTEMPTS=3)
    conn = sqlite_engine.connect()
    trans = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)

    @contextmanager
    def scope():
        yield session
        session.commit()

    try:
        now = [START]
        therapists = [make_therapist(session, email=f"t{i}@praxis.example.org", phone=None, last_name=f"T{i}")
                      for i in range(THERAPISTS)]
        sender = FlakySender(lambda: now[0], failures)
        by_tick = defaultdict(list)
        for tick, action, t in events:
            by_tick[tick].append((action, t))
        for tick in range(WEEKS * 14):
            now[0] = START + tick * TICK
            for action, t in by_tick.get(tick, ()):
                therapist = therapists[t]
                if action == "inquiry":
                    inq = make_inquiry(session, therapist, [make_patient(session, email=None)])
                    outbox.queue_inquiry_email(session, COORD, inq.id, now[0], approve=True, settings=cfg)
                    continue
                open_inq = session.scalars(
                    select(Inquiry).where(Inquiry.therapist_id == therapist.id,
                                          Inquiry.status.in_([InquiryStatus.queued, InquiryStatus.sent]))
                    .order_by(Inquiry.id).limit(1).execution_options(populate_existing=True)
                ).first()
                if open_inq is None:
                    continue
                outbox.cancel_pending_for_inquiry(session, COORD, open_inq.id, now[0], reason="Simulation")
                if action == "answer" and open_inq.status == InquiryStatus.sent:
                    open_inq.status = InquiryStatus.answered
                    open_inq.answered_at = now[0]
                    open_inq.patients[0].outcome = Outcome.accepted
                    session.flush()
                    outbox.queue_thanks_email(session, COORD, open_inq.id, now[0], approve=True, settings=cfg)
                elif action == "cancel":
                    open_inq.status = InquiryStatus.cancelled
                    session.flush()
            session.commit()
            with scope() as s:
                follow_ups.schedule_follow_ups(s, now=now[0], settings=cfg)
            delivery.deliver_due(scope, sender, lambda: now[0], owner="sim", settings=cfg)

        per_therapist = defaultdict(list)
        for address, at in sender.deliveries:
            per_therapist[address].append(at)
        for address, times in per_therapist.items():
            times.sort()
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert all(g >= timedelta(days=interval) for g in gaps), (address, times)
        # the database agrees with what the server saw
        recorded = session.scalars(select(OutboxEmail.sent_at).where(OutboxEmail.state == EmailState.sent)).all()
        assert len(recorded) == len(sender.deliveries)
    finally:
        session.close()
        trans.rollback()
        conn.close()
