"""Issue 12 point 9: no personal data in logs (both databases, logs captured at DEBUG).

The suite-wide acceptance check (no log line of the whole run names a test patient) lives in
tests/conftest.py with tests/support/log_privacy.py; the last test here shows it catches a leak.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from core.adapters.smtp import make_sender
from core.mail import delivery, outbox
from core.mail import templates as mt
from core.platform import users
from core.platform.lengths import FieldTooLong
from core.platform.logs import scrub
from core.platform.models import Patient, User
from core.platform.permissions import SYSTEM, Actor
from core.platform.vocab import Role
from tests.support.outbox_fixtures import make_patient, settings_for
from tests.support.log_privacy import LogPrivacyCollector
from tests.support.scopes import scope_for

COORD = Actor(user_id=None, username="k.koch", role=Role.coordinator)
log = logging.getLogger("core.test_log_privacy")


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements are logged: parameters must not be
    yield caplog
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def _all_text(caplog) -> str:
    return "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records)


def test_p9_log_mode_writes_only_the_message_id(db_session, now, debug_logs):
    settings = settings_for(SMTP_MODE="log")
    patient = make_patient(db_session, first_name="Lieselotte", last_name="Protokollfrei", email="lieselotte@example.org")
    email = outbox.queue_patient_email(db_session, COORD, patient.id, mt.PATIENT_SEARCH_STARTED, now, approve=True,
                                       settings=settings)
    report = delivery.deliver_due(scope_for(db_session), make_sender(settings), lambda: now, owner="t", settings=settings)
    assert report.sent == 1
    text = _all_text(debug_logs)
    assert "nur protokolliert" in text
    for secret in ("Lieselotte", "Protokollfrei", "lieselotte@example.org", email.subject):
        assert secret not in text


def test_p9_a_failed_insert_logs_no_values(db_session, now, debug_logs):
    users.create_user(db_session, SYSTEM, username="k.koch", display_name="Karla Geheimname", role=Role.viewer,
                      password="richtig-geheim-1", now=now)
    duplicate = User(username="k.koch", display_name="Karla Geheimname", role=Role.viewer,
                     password_hash="$argon2id$v=19$m=65536,t=3,p=4$GEHEIMERHASH", email="karla.geheim@example.org")
    with pytest.raises(IntegrityError) as err:
        with db_session.begin_nested():
            db_session.add(duplicate)
            db_session.flush()
    message = str(err.value)
    assert "GEHEIMERHASH" not in message and "karla.geheim@example.org" not in message  # hide_parameters=True
    log.error("Speichern fehlgeschlagen", exc_info=err.value)
    text = _all_text(debug_logs)
    assert "Speichern fehlgeschlagen" in text
    for secret in ("GEHEIMERHASH", "Geheimname", "karla.geheim@example.org"):
        assert secret not in text
    # PostgreSQL's DETAIL repeats the values; the log keeps the constraint, not the row
    assert "k.koch" not in scrub("DETAIL:  Key (username)=(k.koch) already exists.")
    assert "Maria" not in scrub('new row violates check constraint "x"\nDETAIL:  Failing row contains (1, Maria, Muster).')


def test_p9_overlong_texts_are_validation_errors(db_session, now):
    with pytest.raises(users.UserError) as err:
        users.create_user(db_session, SYSTEM, username="lang.name", display_name="L" * 121, role=Role.viewer,
                          password="richtig-geheim-1", now=now)
    assert err.value.field == "display_name" and "120" in str(err.value)
    with pytest.raises(users.UserError) as err:
        users.create_user(db_session, SYSTEM, username="lang.mail", display_name="L", role=Role.viewer,
                          password="richtig-geheim-1", email="keine-adresse", now=now)
    assert err.value.field == "email"
    # any model, any service: a String(n) overflow never reaches the database
    db_session.add(Patient(first_name="V" * 101, last_name="Muster"))
    with pytest.raises(FieldTooLong) as too_long:
        db_session.flush()
    assert too_long.value.errors == {"first_name": "Vorname ist zu lang (höchstens 100 Zeichen, jetzt 101)."}
    db_session.rollback()


def test_p9_the_suite_wide_check_catches_a_leak():
    collector = LogPrivacyCollector()
    collector.note_patient("Erika", "Leckage", "erika.leckage@example.org")
    lines = [("core.x", "Outbox 12 versendet"), ("core.y", "Fehler bei Leckage, Erika"),
             ("core.z", "an <erika.leckage@example.org>")]
    found = collector.violations(lines=lines)
    assert len(found) == 2 and "core.y" in found[0] and "core.z" in found[1]
    assert not collector.violations(lines=[("core.x", "Patient:in P152 angelegt")])
