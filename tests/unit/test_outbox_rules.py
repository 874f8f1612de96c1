"""Pure rules of the outbox: backoff, temporary vs permanent, weekly limit, call time."""

from __future__ import annotations

import smtplib
import socket
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.adapters.smtp import SendError, classify_smtp_error, is_temporary_code
from core.mail.rules import backoff_delay, decide_after_failure, earliest_send_time, next_weekday_at, split_signature, waiting_text, weekly_limit_wait
from core.platform.vocab import EmailState

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def test_backoff_doubles_from_five_minutes_and_is_capped():
    assert [backoff_delay(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert backoff_delay(0) == timedelta(0)
    assert backoff_delay(30) == timedelta(hours=6)
    assert backoff_delay(10_000) == timedelta(hours=6)


def test_temporary_failure_retries_until_attempts_are_used_up():
    d = decide_after_failure(attempts_before=0, temporary=True, now=NOW, max_attempts=5)
    assert (d.state, d.attempts, d.next_attempt_at) == (EmailState.queued, 1, NOW + timedelta(minutes=5))
    d = decide_after_failure(attempts_before=3, temporary=True, now=NOW, max_attempts=5)
    assert (d.state, d.attempts) == (EmailState.queued, 4)
    d = decide_after_failure(attempts_before=4, temporary=True, now=NOW, max_attempts=5)
    assert (d.state, d.attempts, d.next_attempt_at) == (EmailState.failed, 5, None)


def test_permanent_failure_fails_at_once():
    d = decide_after_failure(attempts_before=0, temporary=False, now=NOW, max_attempts=5)
    assert (d.state, d.attempts) == (EmailState.failed, 1)


@pytest.mark.parametrize("code,temporary", [(421, True), (450, True), (451, True), (452, True), (500, False),
                                            (550, False), (552, False), (554, False), (None, True)])
def test_reply_code_classes(code, temporary):
    assert is_temporary_code(code) is temporary


def test_classify_smtplib_errors():
    e = classify_smtp_error(smtplib.SMTPDataError(451, b"4.3.0 Try again later"))
    assert (e.temporary, e.code, e.text, e.connection_lost) == (True, 451, "451 4.3.0 Try again later", False)
    e = classify_smtp_error(smtplib.SMTPRecipientsRefused({"x@y.de": (550, b"5.1.1 User unknown")}))
    assert (e.temporary, e.code, e.text) == (False, 550, "550 5.1.1 User unknown")
    e = classify_smtp_error(smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "a@b.de"))
    assert not e.temporary and e.code == 553
    assert classify_smtp_error(ConnectionRefusedError(111, "Connection refused")).temporary
    e = classify_smtp_error(socket.timeout("timed out"))
    assert e.temporary and e.connection_lost
    e = classify_smtp_error(smtplib.SMTPServerDisconnected("gone"))
    assert e.temporary and e.connection_lost
    # a failed login is the set-up's problem, not the mail's: retried, connection unusable
    e = classify_smtp_error(smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication failed"))
    assert e.temporary and e.connection_lost and "535" in e.text
    assert classify_smtp_error(SendError("x", temporary=False)).temporary is False


def test_weekly_limit_wait():
    last = NOW - timedelta(days=3)
    assert weekly_limit_wait(NOW, last, 7) == last + timedelta(days=7)
    assert weekly_limit_wait(NOW, NOW - timedelta(days=7), 7) is None  # exactly 7 days: allowed
    assert weekly_limit_wait(NOW, None, 7) is None
    assert weekly_limit_wait(NOW, NOW, 0) is None


def test_earliest_send_time_fits_gaps_and_skips_conflicts():
    day = timedelta(days=1)
    assert earliest_send_time(NOW, [], 7) == NOW
    assert earliest_send_time(NOW, [NOW - 3 * day], 7) == NOW + 4 * day
    # planned mail in 4 days: the new one must come 7 days after it
    assert earliest_send_time(NOW, [NOW + 4 * day], 7) == NOW + 11 * day
    # a chain of planned mails
    assert earliest_send_time(NOW, [NOW - day, NOW + 6 * day, NOW + 13 * day], 7) == NOW + 20 * day
    # a wide enough gap before a far planned mail is used
    assert earliest_send_time(NOW, [NOW + 20 * day], 7) == NOW


@given(
    offsets=st.lists(st.integers(min_value=-7 * 24, max_value=60 * 24), max_size=8),
    interval=st.integers(min_value=1, max_value=14),
)
@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
def test_earliest_send_time_keeps_the_interval_to_every_other_mail(offsets, interval):
    occupied = [NOW + timedelta(hours=h) for h in offsets]
    t = earliest_send_time(NOW, occupied, interval)
    assert t >= NOW
    assert all(abs(t - o) >= timedelta(days=interval) for o in occupied)


def test_next_weekday_ten_oclock_berlin():
    fri_evening = datetime(2026, 11, 27, 18, 0, tzinfo=BERLIN)
    assert next_weekday_at(fri_evening) == datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)  # Monday
    mon_morning = datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN)
    assert next_weekday_at(mon_morning) == datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
    at_ten = datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
    assert next_weekday_at(at_ten) == datetime(2026, 12, 1, 10, 0, tzinfo=BERLIN)
    # summer time is handled by zoneinfo (10:00 local, 08:00 UTC)
    assert next_weekday_at(datetime(2026, 7, 1, 5, 0, tzinfo=UTC)).astimezone(UTC).hour == 8


def test_split_signature():
    body, sig = split_signature("Hallo\n\nText\n\n-- \nFirma\nAdresse\n")
    assert body == "Hallo\n\nText" and sig == "\n-- \nFirma\nAdresse\n"
    assert split_signature("ohne\n") == ("ohne", "")


def test_waiting_text_says_why_and_when():
    later = NOW + timedelta(days=2)
    assert "Wochengrenze" in waiting_text(EmailState.queued, attempts=0, next_attempt_at=later, lease_expires_at=None,
                                          is_therapist=True, now=NOW, interval_days=7)
    assert "25.11.2026" in waiting_text(EmailState.queued, attempts=0, next_attempt_at=later, lease_expires_at=None,
                                        is_therapist=True, now=NOW, interval_days=7)
    assert waiting_text(EmailState.queued, attempts=2, next_attempt_at=later, lease_expires_at=None,
                        is_therapist=True, now=NOW, interval_days=7).startswith("Neuer Versuch am 25.11.2026")
    assert "nächsten Lauf" in waiting_text(EmailState.queued, attempts=0, next_attempt_at=NOW, lease_expires_at=None,
                                           is_therapist=False, now=NOW, interval_days=7)
    assert "unterbrochen" in waiting_text(EmailState.sending, attempts=0, next_attempt_at=None,
                                          lease_expires_at=NOW - timedelta(seconds=1), is_therapist=False, now=NOW,
                                          interval_days=7)
