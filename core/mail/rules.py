"""Pure rules of the outbox: backoff, failure decisions, the weekly limit, signatures."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Iterable, Optional
from core.mail import templates as mt
from core.platform.formatting import BERLIN, format_datetime
from core.platform.vocab import EmailState, InquiryStatus


log = logging.getLogger(__name__)

# Backoff after a temporary failure: 5, 10, 20, 40 minutes, ... at most 6 hours.
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=6)
# A claimed mail belongs to its runner this long; after a crash it returns to the queue then.
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_BATCH_SIZE = 100  # mails per claim (one runner delivers: the leader; 100 × a few ms stays far inside the lease)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
FOLLOW_UP_CALL_HOUR = 10
SIGNATURE_SEPARATOR = "\n-- \n"

THERAPIST_TEMPLATES = frozenset({mt.THERAPIST_INQUIRY, mt.THERAPIST_REMINDER, mt.THERAPIST_THANKS})
PATIENT_TEMPLATES = frozenset(
    {mt.PATIENT_SEARCH_STARTED, mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE, mt.PATIENT_STATUS_UPDATE,
     mt.PATIENT_SUCCESS}
)
# Inquiry states in which its mails may still go out (an inquiry mail, a reminder).
_INQUIRY_OPEN_FOR = {
    mt.THERAPIST_INQUIRY: {InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent},
    mt.THERAPIST_REMINDER: {InquiryStatus.sent},
}


class OutboxError(ValueError):
    """An outbox action that is not possible now; the message is German and says why."""


# =========================================================================== pure rules


def backoff_delay(attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP) -> timedelta:
    """Wait after the `attempts`-th failed attempt: base · 2^(attempts-1), at most `cap`."""
    if attempts < 1:
        return timedelta(0)
    return min(base * (2 ** min(attempts - 1, 30)), cap)


@dataclass(frozen=True)
class FailureDecision:
    state: EmailState  # queued (retry) or failed
    next_attempt_at: Optional[datetime]
    attempts: int


def decide_after_failure(*, attempts_before: int, temporary: bool, now: datetime, max_attempts: int) -> FailureDecision:
    """A temporary failure retries with backoff until `max_attempts` attempts were made;
    a permanent one (5xx) fails at once."""
    attempts = attempts_before + 1
    if temporary and attempts < max_attempts:
        return FailureDecision(EmailState.queued, now + backoff_delay(attempts), attempts)
    return FailureDecision(EmailState.failed, None, attempts)


def weekly_limit_wait(now: datetime, last_sent_at: Optional[datetime], interval_days: int) -> Optional[datetime]:
    """When the next e-mail to a therapist may go, or None if it may go now."""
    if last_sent_at is None or interval_days <= 0:
        return None
    allowed = last_sent_at + timedelta(days=interval_days)
    return allowed if allowed > now else None


def earliest_send_time(now: datetime, occupied: Iterable[datetime], interval_days: int) -> datetime:
    """The earliest moment ≥ now at least `interval_days` away from every occupied moment
    (other mails to the same therapist: delivered ones, planned ones)."""
    if interval_days <= 0:
        return now
    gap = timedelta(days=interval_days)
    t = now
    for moment in sorted(occupied):
        if moment - gap < t < moment + gap:
            t = moment + gap
    return t


def next_weekday_at(after: datetime, hour: int = FOLLOW_UP_CALL_HOUR) -> datetime:
    """The first Monday–Friday `hour`:00 Europe/Berlin strictly after `after` (aware result)."""
    local = after.astimezone(BERLIN)
    day = local.date()
    for offset in range(0, 8):
        d = day + timedelta(days=offset)
        candidate = datetime.combine(d, time(hour), tzinfo=BERLIN)
        if d.weekday() < 5 and candidate > local:
            return candidate
    raise AssertionError("unreachable: a weekday lies within 8 days")  # pragma: no cover


def split_signature(text: str) -> tuple[str, str]:
    """(body, signature incl. separator) of a rendered text; the legal footer is the signature."""
    idx = text.find(SIGNATURE_SEPARATOR)
    if idx < 0:
        return text.rstrip("\n"), ""
    return text[:idx].rstrip("\n"), text[idx:]


def waiting_text(
    state: EmailState, *, attempts: int, next_attempt_at: Optional[datetime], lease_expires_at: Optional[datetime],
    is_therapist: bool, now: datetime, interval_days: int,
) -> str:
    """One German line: why a mail is where it is and when it goes."""
    if state == EmailState.queued:
        if next_attempt_at is not None and next_attempt_at > now:
            when = format_datetime(next_attempt_at)
            if attempts > 0:
                return f"Neuer Versuch am {when}"
            if is_therapist:
                return f"Wartet auf die Wochengrenze (höchstens eine E-Mail in {interval_days} Tagen), geht am {when}"
            return f"Geplant für {when}"
        return "Geht mit dem nächsten Lauf des Hintergrunddienstes"
    if state == EmailState.sending:
        if lease_expires_at is not None and lease_expires_at < now:
            return "Versand unterbrochen, wird erneut versucht"
        return "Wird gerade gesendet"
    return ""


