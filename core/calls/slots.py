"""Call slots: when a therapist can be phoned (pure rules, no database).

A *slot* is ``slot_minutes`` real minutes (default 5, Settings ``CALL_SLOT_MINUTES``). A slot
may start at a local (Europe/Berlin) wall-clock time whose minute of the hour is divisible by
``slot_minutes`` (for slots longer than an hour: on the full hour only), with zero seconds.

A slot *fits* a therapist on a local date when

- the date is not a public holiday of the therapist's Bundesland (``holidays`` package,
  ``country_holidays("DE", subdiv=state)``; no state → only the nationwide holidays);
- every moment of the slot has a local wall-clock time on that date inside ONE window of the
  phone hours for that weekday. Adjacent windows are not merged: with
  ``Mo 09:00-09:03, 09:03-10:00`` the first slot is 09:05 (09:00-09:05 would span two
  windows), and a window shorter than a slot holds no slot at all;
- it overlaps no busy interval ``(start, end)`` (half-open, aware datetimes in any zone).

Daylight saving time: windows are local wall-clock times, slots are real minutes.

- On the spring-forward day (last Sunday of March) local times 02:00-02:59 do not exist, so no
  slot starts there; a slot at 01:55 CET lasts until 03:00 CEST (5 real minutes).
- On the fall-back day (last Sunday of October) local times 02:00-02:59 occur twice; both
  occurrences belong to a window covering them, so "So 02:00-03:00" holds 24 slots that day.

An end of ``24:00`` means midnight (DESIGN §13). The parser asks people to write ``23:59`` for
midnight, so a window end of 23:59, of ``time.max`` or of 00:00 all mean the end of the day.

Internally every instant is an integer count of UTC minutes since the epoch ("epoch minutes"),
which makes slots cheap to compare and to use as dictionary keys (see `schedule.py`); results
leave the module as aware Europe/Berlin datetimes.
"""

from __future__ import annotations

import bisect
import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Optional, Sequence, Union
from zoneinfo import ZoneInfo

import holidays

from core.platform import timewindows
from core.platform.config import Settings

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
DAY_MINUTES = 24 * 60

#: Used for therapists without known phone hours: the default of Settings.CALL_FALLBACK_HOURS
#: (one home for the fact: core/platform/config.py).
DEFAULT_FALLBACK_PHONE_HOURS: str = Settings.CALL_FALLBACK_HOURS
#: The mark of a call planned in the fallback window (shown on the call list).
FALLBACK_LABEL = "keine Telefonzeiten bekannt"

PhoneHours = Union[str, Sequence[timewindows.TimeWindow], None]
Busy = Iterable[tuple[datetime, datetime]]

# One weekday's windows as (start, end) minutes of the day, end exclusive, end ≤ 1440.
DayRanges = tuple[tuple[int, int], ...]
# All seven weekdays, Monday first.
WeekRanges = tuple[DayRanges, ...]

_END_24 = re.compile(r"([-\u2013\u2014]\s*)24(?:[:.]00)?(?=\s*(?:uhr\b)?\s*(?:$|[,;\n]))", re.I)


# --------------------------------------------------------------------------- phone hours


def parse_phone_hours(text: Optional[str]) -> timewindows.Windows:
    """`timewindows.parse`, additionally accepting ``24:00`` as an end (read as 23:59 = midnight).

    Raises `timewindows.TimeWindowError` for text that is not valid phone hours.
    """
    if text is None or not text.strip():
        return []
    try:
        return timewindows.parse(text)
    except timewindows.TimeWindowError:
        patched = _END_24.sub(r"\g<1>23:59", text)
        if patched == text:
            raise
        return timewindows.parse(patched)


def _end_minute(t: time) -> int:
    if t == time(0, 0) or t >= time(23, 59):
        return DAY_MINUTES
    return t.hour * 60 + t.minute + (1 if (t.second or t.microsecond) else 0)


def _start_minute(t: time) -> int:
    return t.hour * 60 + t.minute + (1 if (t.second or t.microsecond) else 0)


def week_ranges(phone_hours: PhoneHours) -> WeekRanges:
    """The windows per weekday as minute ranges; text is parsed with `parse_phone_hours`."""
    windows = parse_phone_hours(phone_hours) if isinstance(phone_hours, str) or phone_hours is None else phone_hours
    by_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for w in windows:
        day, start, end = w
        s, e = _start_minute(start), _end_minute(end)
        if e > s:
            by_day[int(day)].append((s, e))
    return tuple(tuple(sorted(r)) for r in by_day)


@lru_cache(maxsize=4096)
def _compiled_text(text: str) -> WeekRanges:
    return week_ranges(text)


def compile_phone_hours(phone_hours: PhoneHours) -> WeekRanges:
    """Like `week_ranges`, cached for text (many therapists share the same phone hours)."""
    if isinstance(phone_hours, str):
        return _compiled_text(phone_hours)
    return week_ranges(phone_hours)


def has_windows(ranges: WeekRanges) -> bool:
    return any(ranges)


# --------------------------------------------------------------------------- holidays


@lru_cache(maxsize=None)
def _holiday_table(state: str, year: int) -> dict[date, str]:
    try:
        table = holidays.country_holidays("DE", subdiv=state or None, years=year, language="de")
    except NotImplementedError:
        raise ValueError(
            f"Unbekanntes Bundesland „{state}“ – erwartet ein Kürzel wie BE, BY, NW, SN."
        ) from None
    return dict(table.items())


def normalise_state(state: Optional[str]) -> str:
    """Upper-case two-letter code, or "" for unknown (then only nationwide holidays count)."""
    code = (state or "").strip().upper()
    if code:
        _holiday_table(code, 2026)  # validates the code
    return code


def holiday_name(day: date, state: Optional[str]) -> Optional[str]:
    """The German name of the public holiday on `day` in `state`, or None for a working day."""
    return _holiday_table(normalise_state(state), day.year).get(day)


def is_holiday(day: date, state: Optional[str]) -> bool:
    return day in _holiday_table(normalise_state(state), day.year)


# --------------------------------------------------------------------------- time conversion


def epoch_minutes(moment: datetime) -> int:
    """Whole UTC minutes since the epoch, rounded down; `moment` must be aware."""
    require_aware(moment, "moment")
    return int(moment.timestamp() // 60)


def epoch_minutes_ceil(moment: datetime) -> int:
    require_aware(moment, "moment")
    return -int(-moment.timestamp() // 60)


def from_epoch_minutes(minutes: int) -> datetime:
    """The aware Europe/Berlin datetime of an epoch minute (fold set on the fall-back day)."""
    return datetime.fromtimestamp(minutes * 60, tz=BERLIN)


def require_aware(moment: datetime, name: str = "after") -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(
            f"{name} must be timezone-aware (e.g. tzinfo=ZoneInfo('Europe/Berlin')), got naive {moment.isoformat()}"
        )


@lru_cache(maxsize=8192)
def _local_midnight_minutes(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=BERLIN).timestamp() // 60)


# --------------------------------------------------------------------------- slots of one day


@lru_cache(maxsize=4096)
def _grid_offsets(ranges: DayRanges, slot: int) -> tuple[int, ...]:
    """Minutes of the day at which a slot starts and ends inside one of `ranges`."""
    out: list[int] = []
    for start, end in ranges:
        for t in range(start, end - slot + 1):
            if (t % 60) % slot == 0:
                out.append(t)
    return tuple(out)


def _window_index(ranges: DayRanges, minute_of_day: int) -> int:
    for i, (start, end) in enumerate(ranges):
        if start <= minute_of_day < end:
            return i
    return -1


@lru_cache(maxsize=256)
def _transition_day_slots(ranges: DayRanges, day: date, slot: int) -> tuple[int, ...]:
    """Slot starts on a day with a UTC-offset change: walk the real minutes of the local day."""
    first = _local_midnight_minutes(day)
    last = _local_midnight_minutes(day + timedelta(days=1))
    local = [from_epoch_minutes(m) for m in range(first, last)]
    minute_of_day = [(lt.hour * 60 + lt.minute) if lt.date() == day else -1 for lt in local]
    out: list[int] = []
    for i in range(0, last - first - slot + 1):
        if local[i].minute % slot:
            continue
        w = _window_index(ranges, minute_of_day[i])
        if w < 0:
            continue
        if all(_window_index(ranges, minute_of_day[i + k]) == w for k in range(1, slot)):
            out.append(first + i)
    return tuple(out)


def day_slots(ranges: WeekRanges, day: date, slot_minutes: int) -> tuple[int, ...]:
    """Epoch minutes of all slot starts on local `day` inside the phone hours (holidays ignored)."""
    today = ranges[day.weekday()]
    if not today:
        return ()
    midnight = _local_midnight_minutes(day)
    if _local_midnight_minutes(day + timedelta(days=1)) - midnight == DAY_MINUTES:
        return tuple(midnight + t for t in _grid_offsets(today, slot_minutes))
    return _transition_day_slots(today, day, slot_minutes)


def iter_slots(
    ranges: WeekRanges,
    start_minute: int,
    end_minute: int,
    *,
    state: Optional[str],
    slot_minutes: int,
) -> Iterator[int]:
    """Epoch minutes of every fitting slot start in ``[start_minute, end_minute)``, in time order.

    Holidays of `state` are skipped; busy intervals are the caller's business.
    """
    if end_minute <= start_minute or not has_windows(ranges):
        return
    code = normalise_state(state)
    day = from_epoch_minutes(start_minute).date()
    last_day = from_epoch_minutes(end_minute).date()
    while day <= last_day:
        if day not in _holiday_table(code, day.year):
            for m in day_slots(ranges, day, slot_minutes):
                if m >= end_minute:
                    return
                if m >= start_minute:
                    yield m
        day += timedelta(days=1)


# --------------------------------------------------------------------------- busy intervals


class BusyIntervals:
    """Merged, sorted busy intervals in epoch seconds; `overlaps` is a binary search."""

    def __init__(self, busy: Busy = ()):
        spans = []
        for pair in busy:
            start, end = pair
            require_aware(start, "busy start")
            require_aware(end, "busy end")
            s, e = start.timestamp(), end.timestamp()
            if e > s:
                spans.append((s, e))
        spans.sort()
        merged: list[list[float]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]

    def overlaps(self, start_s: float, end_s: float) -> bool:
        """Whether ``[start_s, end_s)`` meets any busy interval."""
        i = bisect.bisect_left(self._starts, end_s) - 1
        return i >= 0 and self._ends[i] > start_s


# --------------------------------------------------------------------------- the contract


def _check_parameters(slot_minutes: int, horizon_days: float) -> None:
    if not isinstance(slot_minutes, int) or slot_minutes < 1:
        raise ValueError(f"slot_minutes must be a positive whole number, got {slot_minutes!r}")
    if horizon_days < 0:
        raise ValueError(f"horizon_days must not be negative, got {horizon_days!r}")


def next_call_slot(
    phone_hours: PhoneHours,
    after: datetime,
    *,
    state: Optional[str],
    busy: Busy = (),
    slot_minutes: int = 5,
    horizon_days: float = 14,
) -> Optional[datetime]:
    """The earliest slot start at or after `after` that fits (see the module doc), or None.

    The result is an aware Europe/Berlin datetime. Slots must start before
    ``after + horizon_days`` (real days of 24 hours). `after` must be aware (ValueError
    otherwise); so must the busy intervals. Empty phone hours have no slot (the fallback
    window is the scheduler's decision, not this function's).
    """
    require_aware(after, "after")
    _check_parameters(slot_minutes, horizon_days)
    ranges = compile_phone_hours(phone_hours)
    blocked = BusyIntervals(busy)
    start = epoch_minutes_ceil(after)
    end = epoch_minutes_ceil(after + timedelta(days=horizon_days))
    for m in iter_slots(ranges, start, end, state=state, slot_minutes=slot_minutes):
        if not blocked.overlaps(m * 60, (m + slot_minutes) * 60):
            return from_epoch_minutes(m)
    return None


# --------------------------------------------------------------------------- "Jetzt erreichbar"


def window_end_at(phone_hours: PhoneHours, moment: datetime, *, state: Optional[str] = None) -> Optional[datetime]:
    """When the phone window containing `moment` closes (aware Berlin), or None outside windows.

    Holidays count as closed. Used to sort "Jetzt erreichbar" by how soon the window closes.
    """
    require_aware(moment, "moment")
    ranges = compile_phone_hours(phone_hours)
    local = moment.astimezone(BERLIN)
    if state is not None and is_holiday(local.date(), state):
        return None
    minute = local.hour * 60 + local.minute
    for start, end in ranges[local.weekday()]:
        if start <= minute < end:
            naive_end = datetime.combine(local.date(), time(0)) + timedelta(minutes=end)
            return naive_end.replace(tzinfo=BERLIN) if end < DAY_MINUTES else datetime.combine(
                local.date() + timedelta(days=1), time(0), tzinfo=BERLIN
            )
    return None
