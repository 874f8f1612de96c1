"""The slot finder `core.calls.next_call_slot` (issue 10, point 1; DESIGN §14).

Decisions pinned here (documented in core/calls/slots.py):
- a slot lies inside ONE window: adjacent windows are not merged;
- `after` is rounded up to the next grid point (minute of the hour divisible by the slot length);
- horizon = real days after `after`; windows are local wall-clock, a slot is real minutes;
- on the fall-back day both occurrences of 02:00-02:59 belong to a window covering them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import timewindows
from core.calls import next_call_slot, slots, window_end_at

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


def berlin(y, mo, d, h=0, mi=0, s=0, fold=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN, fold=fold)


def utc(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def instant(moment):
    """Seconds since the epoch: compares correctly even in the repeated hour (PEP 495 makes an
    inter-zone `==` with a datetime in the repeated hour always False)."""
    return None if moment is None else moment.timestamp()


# --------------------------------------------------------------------------- basics


def test_result_is_aware_berlin_on_the_grid():
    got = next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 8, 0), state="BE")
    assert got == berlin(2026, 11, 23, 9, 0)
    assert got.tzinfo is BERLIN and got.utcoffset() == timedelta(hours=1)


def test_after_inside_a_window_is_rounded_up_to_the_grid():
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9, 2), state="BE") == berlin(2026, 11, 23, 9, 5)
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9, 5, 1), state="BE") == berlin(2026, 11, 23, 9, 10)
    # exactly on the grid: that slot itself
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9, 5), state="BE") == berlin(2026, 11, 23, 9, 5)
    # after given in UTC, result in Berlin
    assert next_call_slot("Mo 09:00-12:00", utc(2026, 11, 23, 8, 31), state="BE") == berlin(2026, 11, 23, 9, 35)


def test_after_late_in_the_window_goes_to_next_week():
    # 11:56 – the last slot 11:55-12:00 has begun, so the next Monday
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 11, 56), state="BE") == berlin(2026, 11, 30, 9, 0)


def test_window_not_on_the_grid():
    # window 09:02-09:13: only 09:05-09:10 lies inside (09:10-09:15 would pass its end)
    assert next_call_slot("Mo 09:02-09:13", berlin(2026, 11, 23), state="BE") == berlin(2026, 11, 23, 9, 5)


def test_window_shorter_than_a_slot_never_fits():
    assert next_call_slot("Mo 09:00-09:04", berlin(2026, 11, 23), state="BE") is None
    # ... but the longer window on another day does
    assert next_call_slot("Mo 09:00-09:04; Mi 10:00-10:05", berlin(2026, 11, 23), state="BE") == berlin(2026, 11, 25, 10, 0)


def test_back_to_back_windows_are_not_merged():
    # 09:00-09:05 would span two windows; the first slot inside one window is 09:05
    assert next_call_slot("Mo 09:00-09:03, 09:03-10:00", berlin(2026, 11, 23), state="BE") == berlin(2026, 11, 23, 9, 5)
    # and 09:55-10:00 is the last slot of the day
    assert next_call_slot("Mo 09:00-09:03, 09:03-10:00", berlin(2026, 11, 23, 9, 51), state="BE") == berlin(2026, 11, 23, 9, 55)


def test_window_ending_at_24_00():
    # the text form with 24:00 (DESIGN §13) and the parser's advised 23:59 both mean midnight
    for text in ("Mo 23:50-24:00", "Mo 23:50-23:59", "Mo 23:50 – 24:00", "Mo 23:50-24"):
        assert next_call_slot(text, berlin(2026, 11, 23, 23, 52), state="BE") == berlin(2026, 11, 23, 23, 55), text
    # parsed windows with an end of 00:00 (midnight) work too
    windows = [timewindows.TimeWindow(0, time(23, 50), time(0, 0))]
    assert next_call_slot(windows, berlin(2026, 11, 23, 23, 52), state="BE") == berlin(2026, 11, 23, 23, 55)
    # a slot never runs into the next day
    assert next_call_slot("Mo 23:50-24:00; Di 00:00-01:00", berlin(2026, 11, 23, 23, 56), state="BE") == berlin(2026, 11, 24, 0, 0)


def test_other_slot_lengths():
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9, 1), state="BE", slot_minutes=15) == berlin(2026, 11, 23, 9, 15)
    assert next_call_slot("Mo 09:00-09:10", berlin(2026, 11, 23), state="BE", slot_minutes=15) is None
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9, 1), state="BE", slot_minutes=90) == berlin(2026, 11, 23, 10, 0)


def test_empty_phone_hours_have_no_slot():
    assert next_call_slot("", berlin(2026, 11, 23), state="BE") is None


def test_invalid_phone_hours_raise_the_parser_error():
    with pytest.raises(timewindows.TimeWindowError):
        next_call_slot("Xy 09:00-10:00", berlin(2026, 11, 23), state="BE")


# --------------------------------------------------------------------------- validation


def test_naive_after_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next_call_slot("Mo 09:00-12:00", datetime(2026, 11, 23, 9, 0), state="BE")


def test_naive_busy_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23), state="BE",
                       busy=[(datetime(2026, 11, 23, 9), datetime(2026, 11, 23, 10))])


def test_unknown_state_is_rejected():
    with pytest.raises(ValueError, match="Unbekanntes Bundesland"):
        next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23), state="XX")


def test_state_code_case_and_missing_state():
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23), state="be") == berlin(2026, 11, 23, 9)
    # no state: nationwide holidays only (Tag der Deutschen Einheit, but not Reformationstag)
    assert next_call_slot("Sa 09:00-10:00", berlin(2026, 10, 3), state=None) == berlin(2026, 10, 10, 9)
    assert next_call_slot("Sa 09:00-10:00", berlin(2026, 10, 31), state=None) == berlin(2026, 10, 31, 9)


def test_bad_parameters():
    with pytest.raises(ValueError):
        next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23), state="BE", slot_minutes=0)
    with pytest.raises(ValueError):
        next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23), state="BE", horizon_days=-1)


# --------------------------------------------------------------------------- holidays


def test_reformationstag_in_saxony_but_not_in_bavaria():
    # 31.10.2026 is a Saturday
    hours = "Sa 09:00-10:00"
    after = berlin(2026, 10, 30, 12)
    assert next_call_slot(hours, after, state="SN") == berlin(2026, 11, 7, 9)
    assert next_call_slot(hours, after, state="BY") == berlin(2026, 10, 31, 9)


def test_fronleichnam_in_nrw_but_not_in_berlin():
    # 04.06.2026 is a Thursday
    hours = "Do 10:00-10:30"
    after = berlin(2026, 6, 1)
    assert next_call_slot(hours, after, state="NW") == berlin(2026, 6, 11, 10)
    assert next_call_slot(hours, after, state="BE") == berlin(2026, 6, 4, 10)


def test_holiday_name_in_german():
    assert slots.holiday_name(date(2026, 10, 31), "SN") == "Reformationstag"
    assert slots.holiday_name(date(2026, 10, 31), "BY") is None


# --------------------------------------------------------------------------- busy


def test_busy_intervals_are_skipped():
    after = berlin(2026, 11, 23, 9)
    busy = [(berlin(2026, 11, 23, 9, 0), berlin(2026, 11, 23, 9, 5))]
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy) == berlin(2026, 11, 23, 9, 5)
    # a busy interval off the grid blocks every slot it touches
    busy = [(berlin(2026, 11, 23, 9, 3), berlin(2026, 11, 23, 9, 6))]
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy) == berlin(2026, 11, 23, 9, 10)
    # touching is not overlapping (half-open intervals); busy in UTC works too
    busy = [(utc(2026, 11, 23, 7, 0), utc(2026, 11, 23, 8, 0))]
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy) == berlin(2026, 11, 23, 9, 0)
    # several, unsorted and overlapping each other
    busy = [(berlin(2026, 11, 23, 9, 20), berlin(2026, 11, 23, 12)), (berlin(2026, 11, 23, 9), berlin(2026, 11, 23, 9, 25))]
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy) == berlin(2026, 11, 30, 9)


def test_fully_busy_window_moves_to_the_next_window():
    after = berlin(2026, 11, 23, 9)
    busy = [(berlin(2026, 11, 23, 9), berlin(2026, 11, 23, 10))]
    assert next_call_slot("Mo 09:00-10:00, 14:00-15:00", after, state="BE", busy=busy) == berlin(2026, 11, 23, 14)


# --------------------------------------------------------------------------- horizon


def test_horizon_exhausted_returns_none():
    after = berlin(2026, 11, 24)  # Tuesday
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", horizon_days=6) is None
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", horizon_days=7) == berlin(2026, 11, 30, 9)
    assert next_call_slot("Mo 09:00-12:00", berlin(2026, 11, 23, 9), state="BE", horizon_days=0) is None


def test_horizon_is_a_bound_on_the_slot_start():
    after = berlin(2026, 11, 23, 9, 30)
    busy = [(berlin(2026, 11, 23, 9, 30), berlin(2026, 11, 30, 9, 30))]
    # the next free slot 30.11. 09:30 starts exactly at after + 7 days: outside, one minute more: inside
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy, horizon_days=7) is None
    assert next_call_slot("Mo 09:00-12:00", after, state="BE", busy=busy, horizon_days=7 + 1 / 1440) == berlin(2026, 11, 30, 9, 30)


def test_everything_on_holidays_within_horizon():
    # 25./26.12.2026 are Fri/Sat; only those days have windows
    assert next_call_slot("Fr 09:00-10:00; Sa 09:00-10:00", berlin(2026, 12, 24, 12), state="BE", horizon_days=6) is None


# --------------------------------------------------------------------------- daylight saving time


def test_spring_forward_nonexistent_hour_holds_no_slot():
    # 29.03.2026, Sunday: 02:00 CET jumps to 03:00 CEST
    assert next_call_slot("So 02:00-03:00", berlin(2026, 3, 29), state="BE") == berlin(2026, 4, 5, 2)


def test_spring_forward_slot_is_five_real_minutes():
    # 01:55 CET + 5 real minutes = 03:00 CEST: inside a window 01:00-02:00 wall clock
    got = next_call_slot("So 01:00-02:00", berlin(2026, 3, 29, 1, 55), state="BE")
    assert got == utc(2026, 3, 29, 0, 55)
    # window 01:00-03:30: after 01:56 the next slot is 03:00 CEST, five real minutes after 01:55 CET
    got = next_call_slot("So 01:00-03:30", berlin(2026, 3, 29, 1, 56), state="BE")
    assert got == utc(2026, 3, 29, 1, 0) and (got.hour, got.minute, got.utcoffset()) == (3, 0, timedelta(hours=2))
    # a window 01:00-02:30 is 01:00 CET-03:00 CEST in real time that day (02:00-02:30 does not exist):
    # 01:55 CET fits, 03:00 CEST (wall clock 03:00) does not
    assert next_call_slot("So 01:00-02:30", berlin(2026, 3, 29, 1, 55), state="BE") == utc(2026, 3, 29, 0, 55)
    assert next_call_slot("So 01:00-02:30", berlin(2026, 3, 29, 1, 56), state="BE") == berlin(2026, 4, 5, 1)


def test_spring_forward_day_normal_hours_use_summer_time():
    got = next_call_slot("So 09:00-12:00", berlin(2026, 3, 29), state="BE")
    assert got == utc(2026, 3, 29, 7, 0) and got.utcoffset() == timedelta(hours=2)
    got = next_call_slot("Sa 09:00-12:00", berlin(2026, 3, 28), state="BE")
    assert got == utc(2026, 3, 28, 8, 0) and got.utcoffset() == timedelta(hours=1)


def test_fall_back_repeated_hour_is_used_twice():
    # 25.10.2026, Sunday: 03:00 CEST falls back to 02:00 CET; 02:00-02:59 occurs twice
    first = next_call_slot("So 02:00-03:00", berlin(2026, 10, 25), state="BE")
    assert instant(first) == instant(utc(2026, 10, 25, 0, 0)) and first.utcoffset() == timedelta(hours=2) and first.fold == 0
    busy = [(utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0))]  # the whole CEST occurrence
    second = next_call_slot("So 02:00-03:00", berlin(2026, 10, 25), state="BE", busy=busy)
    assert instant(second) == instant(utc(2026, 10, 25, 1, 0)) and second.utcoffset() == timedelta(hours=1) and second.fold == 1
    assert (second.hour, second.minute) == (2, 0)
    ranges = slots.compile_phone_hours("So 02:00-03:00")
    assert len(slots.day_slots(ranges, date(2026, 10, 25), 5)) == 24


def test_fall_back_slot_spanning_the_change_is_five_real_minutes():
    # 02:55 CEST (00:55 UTC) runs to 02:00 CET (01:00 UTC)
    busy = [(utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 55))]
    got = next_call_slot("So 02:00-04:00", berlin(2026, 10, 25), state="BE", busy=busy)
    assert instant(got) == instant(utc(2026, 10, 25, 0, 55))
    ranges = slots.compile_phone_hours("So 02:00-04:00")
    starts = slots.day_slots(ranges, date(2026, 10, 25), 5)
    assert len(starts) == 36  # three real hours
    assert all(b - a == 5 for a, b in zip(starts, starts[1:]))


def test_fall_back_after_given_in_the_second_occurrence():
    after = berlin(2026, 10, 25, 2, 30, fold=1)  # 02:30 CET = 01:30 UTC
    got = next_call_slot("So 02:00-03:00", after, state="BE")
    assert instant(got) == instant(utc(2026, 10, 25, 1, 30)) and got.fold == 1


def test_transition_walk_agrees_with_the_fast_path_on_a_normal_day():
    ranges = slots.compile_phone_hours("Mo 00:00-00:07, 08:03-09:00, 23:50-24:00")[0]
    day = date(2026, 11, 23)
    fast = slots.day_slots(slots.compile_phone_hours("Mo 00:00-00:07, 08:03-09:00, 23:50-24:00"), day, 5)
    assert slots._transition_day_slots(ranges, day, 5) == fast
    assert len(fast) == 1 + 11 + 2


# --------------------------------------------------------------------------- "Jetzt erreichbar"


def test_window_end_at():
    assert window_end_at("Mo 09:00-10:00", berlin(2026, 11, 23, 9, 30)) == berlin(2026, 11, 23, 10)
    assert window_end_at("Mo 09:00-10:00", berlin(2026, 11, 23, 10, 0)) is None
    assert window_end_at("Mo 23:00-24:00", berlin(2026, 11, 23, 23, 30)) == berlin(2026, 11, 24, 0)
    assert window_end_at("Sa 09:00-10:00", berlin(2026, 10, 31, 9, 30), state="SN") is None


# --------------------------------------------------------------------------- against a brute force


def brute_force(text, after, state, busy, slot, horizon_days):
    """Walk every real minute and test the definition literally, with astimezone."""
    windows = slots.parse_phone_hours(text)
    hol = holidays.country_holidays("DE", subdiv=state)

    def end_of(w):
        return 24 * 60 if w.end >= time(23, 59) else w.end.hour * 60 + w.end.minute

    def window_of(moment):
        local = moment.astimezone(BERLIN)
        mod = local.hour * 60 + local.minute
        for i, w in enumerate(windows):
            if w.day == local.weekday() and w.start.hour * 60 + w.start.minute <= mod < end_of(w):
                return (local.date(), i)
        return None

    start = after.astimezone(UTC)
    if start.second or start.microsecond:
        start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    deadline = after + timedelta(days=horizon_days)
    m = start
    while m < deadline:
        local = m.astimezone(BERLIN)
        if local.minute % slot == 0 and local.date() not in hol:
            w = window_of(m)
            if w is not None and all(window_of(m + timedelta(minutes=k)) == w for k in range(1, slot)):
                end = m + timedelta(minutes=slot)
                if not any(bs < end and m < be for bs, be in busy):
                    return m
        m += timedelta(minutes=1)
    return None


minute_of_day = st.integers(0, 24 * 60 - 1)


@st.composite
def phone_hours_text(draw):
    windows = []
    for day in draw(st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True)):
        points = sorted(draw(st.lists(minute_of_day, min_size=2, max_size=4, unique=True)))
        if len(points) % 2:
            points = points[:-1]
        for a, b in zip(points[::2], points[1::2]):
            windows.append(timewindows.TimeWindow(day, time(a // 60, a % 60), time(b // 60, b % 60)))
    return timewindows.format(windows)


ANCHORS = [berlin(2026, 3, 27), berlin(2026, 10, 23), berlin(2026, 10, 29), berlin(2026, 6, 2), berlin(2026, 12, 23)]


@st.composite
def moments(draw):
    base = draw(st.sampled_from(ANCHORS)).astimezone(UTC)
    return (base + timedelta(minutes=draw(st.integers(0, 4 * 1440)), seconds=draw(st.sampled_from([0, 0, 17])))).astimezone(BERLIN)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile (tests/conftest.py)
@given(
    text=phone_hours_text(),
    after=moments(),
    state=st.sampled_from(["BE", "BY", "SN", "NW"]),
    busy_starts=st.lists(st.integers(0, 3 * 1440), max_size=6),
    busy_len=st.integers(1, 180),
    slot=st.sampled_from([5, 5, 10, 15]),
)
def test_matches_a_brute_force_walk(text, after, state, busy_starts, busy_len, slot):
    base = after.astimezone(UTC)
    busy = [(base + timedelta(minutes=s), base + timedelta(minutes=s + busy_len)) for s in busy_starts]
    got = next_call_slot(text, after, state=state, busy=busy, slot_minutes=slot, horizon_days=3)
    want = brute_force(text, after, state, busy, slot, 3)
    assert instant(got) == instant(want)
    if got is not None:
        assert got.tzinfo is BERLIN and got.minute % slot == 0 and instant(got) >= instant(after)
