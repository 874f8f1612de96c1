"""Faults (issue 15.5): the SMTP server is down for an hour of simulated time. Mails wait
(queued, with the real error stored, retried with backoff, never marked failed within the
hour) and all go out once the server is back; none is lost or sent twice."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select

from core.adapters.smtp import make_sender
from core.mail import delivery, outbox
from core.mail import templates as mt
from core.platform.models import OutboxEmail
from core.platform.permissions import Actor
from core.platform.vocab import EmailState, Role
from tests.support.outbox_fixtures import SinkHandler, SmtpSink, make_patient, settings_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
MAILS = 20


def test_an_hour_without_smtp_then_everything_goes_out(db_session, now):
    handler = SinkHandler()
    sink = SmtpSink(handler)  # its port is reserved, but nobody listens yet
    settings = settings_for(SMTP_MODE="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port, SMTP_SECURITY="plain",
                            SMTP_TIMEOUT_S=2)
    ids = []
    for i in range(MAILS):
        p = make_patient(db_session, first_name=f"Person{i}", email=f"p{i}@example.org")
        ids.append(outbox.queue_patient_email(db_session, COORD, p.id, mt.PATIENT_STATUS_UPDATE, now, approve=True,
                                              settings=settings).id)

    @contextmanager
    def scope():
        with db_session.begin_nested():
            yield db_session

    clock = {"now": now}
    # the delivery job runs every minute for an hour while the server is down
    for _ in range(60):
        delivery.deliver_due(scope, make_sender(settings), lambda: clock["now"], owner="runner", settings=settings)
        clock["now"] += timedelta(minutes=1)
    mails = db_session.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(ids))).all()
    assert {m.state for m in mails} == {EmailState.queued}, "nothing fails within the hour"
    assert all(m.last_error and "nicht erreichbar" in m.last_error for m in mails), "the real reason is stored"
    attempts = {m.attempts for m in mails}
    assert max(attempts) < settings.EMAIL_MAX_ATTEMPTS and min(attempts) >= 3, attempts  # backoff, not a retry storm

    with sink:  # the server is back
        for _ in range(20):  # the next runs within the longest backoff step (capped)
            delivery.deliver_due(scope, make_sender(settings), lambda: clock["now"], owner="runner", settings=settings)
            clock["now"] += timedelta(minutes=5)
        db_session.expire_all()
        mails = db_session.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(ids))).all()
        assert {m.state for m in mails} == {EmailState.sent}
        counts = handler.message_id_counts()
    assert len(counts) == MAILS and max(counts.values()) == 1, "every mail once"
