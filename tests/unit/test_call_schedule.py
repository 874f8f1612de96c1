"""Planning many calls under the phone capacity (issue 10, points 2 and 3)."""

from __future__ import annotations

import time as wallclock
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import timewindows
from core.calls import (
    DEFAULT_FALLBACK_PHONE_HOURS,
    FALLBACK_LABEL,
    BookedCall,
    CallBoard,
    CallRequest,
    next_call_slot,
    schedule_calls,
    slots,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)


def at(h, mi, day=MONDAY):
    return day.replace(hour=h, minute=mi)


def req(key, therapist, hours="Mo 09:00-09:10", *, state="BE", earliest=MONDAY, **kw):
    return CallRequest(key, therapist, hours, state, earliest, **kw)


def starts(plan):
    return [p.start for p in plan]


# --------------------------------------------------------------------------- capacity


def test_one_caller_calls_one_after_the_other():
    plan = schedule_calls([req(i, i) for i in range(3)], callers=1)
    assert starts(plan) == [at(9, 0), at(9, 5), at(9, 0, MONDAY + timedelta(days=7))]


def test_two_callers_call_two_at_a_time():
    plan = schedule_calls([req(i, i) for i in range(5)], callers=2)
    assert starts(plan) == [at(9, 0), at(9, 0), at(9, 5), at(9, 5), at(9, 0, MONDAY + timedelta(days=7))]


def test_one_therapist_is_never_called_twice_at_once():
    plan = schedule_calls([req("a", 7), req("b", 7), req("c", 8)], callers=3)
    assert starts(plan) == [at(9, 0), at(9, 5), at(9, 0)]


def test_booked_calls_take_capacity_and_the_therapist():
    booked = [BookedCall(at(9, 0), 5, therapist_id=99), BookedCall(at(9, 5), 5, therapist_id=1)]
    plan = schedule_calls([req("x", 1), req("y", 2)], booked=booked, callers=2)
    # two lines; at 09:00 the booked call and therapist 1 fill them, so therapist 2 goes at 09:05
    # (therapist 1 could not: the booked 09:05 call is theirs)
    assert starts(plan) == [at(9, 0), at(9, 5)]
    plan = schedule_calls([req("x", 1)], booked=booked, callers=1)
    assert starts(plan) == [at(9, 0, MONDAY + timedelta(days=7))]


def test_a_booked_call_off_the_grid_blocks_every_slot_it_touches():
    # an agreed callback at 09:03 for 5 minutes occupies 09:00-09:05 and 09:05-09:10
    booked = [BookedCall(at(9, 3), 5, therapist_id=50)]
    plan = schedule_calls([req("x", 1, "Mo 09:00-09:15")], booked=booked, callers=1)
    assert starts(plan) == [at(9, 10)]


def test_coordinator_makes_one_call_at_a_time():
    plan = schedule_calls([req("a", 1, assignee=5), req("b", 2, assignee=5), req("c", 3)], callers=3)
    assert starts(plan) == [at(9, 0), at(9, 5), at(9, 0)]
    assert [p.assignee for p in plan] == [5, 5, None]


def test_no_slot_in_the_horizon_gives_none_and_a_reason():
    plan = schedule_calls([req(i, i) for i in range(3)], callers=1, horizon_days=7)
    assert plan[2].start is None and plan[2].end is None
    assert plan[2].reason == "Kein freier Termin in den Telefonzeiten innerhalb von 7 Tagen."
    # a request's own horizon wins
    plan = schedule_calls([req(0, 0), req(1, 1), req(2, 2, horizon_days=8)], callers=1, horizon_days=7)
    assert plan[2].start == at(9, 0, MONDAY + timedelta(days=7))


def test_earliest_and_holidays_per_request():
    # 31.10.2026 (Saturday) is Reformationstag in Saxony, not in Bavaria
    sat = datetime(2026, 10, 31, 0, 0, tzinfo=BERLIN)
    plan = schedule_calls([req("sn", 1, "Sa 09:00-10:00", state="SN", earliest=sat),
                           req("by", 2, "Sa 09:00-10:00", state="BY", earliest=sat)], callers=1)
    assert plan[0].start == datetime(2026, 11, 7, 9, 0, tzinfo=BERLIN)
    assert plan[1].start == datetime(2026, 10, 31, 9, 0, tzinfo=BERLIN)


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("hours", [None, "", "   ", "kaputt 9 bis 12"])
def test_without_phone_hours_the_fallback_window_is_used_and_marked(hours):
    (p,) = schedule_calls([req("a", 1, hours, earliest=at(12, 30))], callers=1)
    assert p.uses_fallback and p.note == FALLBACK_LABEL == "keine Telefonzeiten bekannt"
    assert p.start == at(9, 0, MONDAY + timedelta(days=1))  # Tuesday 09:00, Mo–Fr 09:00–12:00


def test_known_phone_hours_are_not_marked():
    (p,) = schedule_calls([req("a", 1)], callers=1)
    assert not p.uses_fallback and p.note is None and p.end == at(9, 5)


def test_fallback_window_is_configurable():
    (p,) = schedule_calls([req("a", 1, None)], callers=1, fallback_hours="Mi 14:00-15:00")
    assert p.start == at(14, 0, MONDAY + timedelta(days=2)) and p.uses_fallback


def test_default_fallback_is_weekday_mornings():
    assert timewindows.format(timewindows.parse(DEFAULT_FALLBACK_PHONE_HOURS)) == DEFAULT_FALLBACK_PHONE_HOURS
    assert [w.day for w in timewindows.parse(DEFAULT_FALLBACK_PHONE_HOURS)] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- agreement and validation


def test_a_single_request_gets_what_next_call_slot_finds():
    for hours, state, earliest in [("Sa 09:00-10:00", "SN", datetime(2026, 10, 30, tzinfo=BERLIN)),
                                   ("So 01:00-03:30", "BE", datetime(2026, 3, 29, 1, 56, tzinfo=BERLIN)),
                                   ("Mo 09:02-09:13", "BE", MONDAY)]:
        (p,) = schedule_calls([req("a", 1, hours, state=state, earliest=earliest)], callers=1)
        assert p.start == next_call_slot(hours, earliest, state=state)


def test_naive_earliest_is_rejected():
    with pytest.raises(ValueError, match="earliest must be timezone-aware"):
        schedule_calls([req("a", 1, earliest=datetime(2026, 11, 23, 9))], callers=1)


def test_callers_must_be_positive():
    with pytest.raises(ValueError):
        schedule_calls([], callers=0)


def test_board_counts_calls_at_a_moment():
    board = CallBoard(callers=2)
    board.book(at(9, 0), 5, therapist_id=1)
    board.place(req("a", 2))
    assert board.calls_at(at(9, 2)) == 2 and board.calls_at(at(9, 5)) == 0


def test_longer_slots_and_booked_calls_of_other_lengths():
    # 15-minute slots: a booked 09:10-09:20 call occupies the 09:00 and the 09:15 slot
    plan = schedule_calls([req(i, i, "Mo 09:00-10:00") for i in range(3)],
                          booked=[BookedCall(at(9, 10), 10, therapist_id=50)], callers=1, slot_minutes=15)
    assert starts(plan) == [at(9, 30), at(9, 45), at(9, 0, MONDAY + timedelta(days=7))]


def test_slots_that_do_not_tile_the_hour_never_overlap():
    # 45-minute slots start at :00 and :45; 09:45-10:30 and 10:00-10:45 would overlap
    plan = schedule_calls([req(i, i, "Mo 09:00-11:00") for i in range(3)], callers=1, slot_minutes=45)
    assert starts(plan) == [at(9, 0), at(9, 45), at(9, 0, MONDAY + timedelta(days=7))]


# --------------------------------------------------------------------------- speed


def test_five_thousand_calls_with_three_callers_are_fast():
    hours = ["Mo 09:00-09:50", "Di 12:00-12:25; Do 08:00-08:50", "Mi 13:00-14:00", None, "Fr 10:00-11:00"]
    states = ["BE", "BY", "NW", "SN", "HH"]
    requests = [CallRequest(i, i, hours[i % 5], states[i % 5], MONDAY + timedelta(minutes=i % 600))
                for i in range(5000)]
    t0 = wallclock.perf_counter()
    plan = schedule_calls(requests, callers=3, horizon_days=14)
    elapsed = wallclock.perf_counter() - t0
    assert elapsed < 2.0, elapsed
    assert sum(p.start is not None for p in plan) > 500


# --------------------------------------------------------------------------- property


STATES = ["BE", "BY", "SN", "NW", None]


def end_minute(w):
    return 24 * 60 if w.end >= time(23, 59) else w.end.hour * 60 + w.end.minute


def inside_one_window(windows, start, minutes):
    """Every real minute of the call has a local time on the start's date inside one window."""
    local_day = start.astimezone(BERLIN).date()
    found = set()
    for k in range(minutes):
        local = (start + timedelta(minutes=k)).astimezone(BERLIN)
        if local.date() != local_day:
            return False
        mod = local.hour * 60 + local.minute
        hits = [i for i, w in enumerate(windows)
                if w.day == local.weekday() and w.start.hour * 60 + w.start.minute <= mod < end_minute(w)]
        if not hits:
            return False
        found.add(hits[0])
    return len(found) == 1


@st.composite
def phone_hours_or_none(draw):
    if draw(st.integers(0, 4)) == 0:
        return None
    windows = []
    for day in draw(st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True)):
        a = draw(st.integers(0, 23 * 60))
        b = draw(st.integers(a + 1, min(a + 90, 24 * 60 - 1)))
        windows.append(timewindows.TimeWindow(day, time(a // 60, a % 60), time(b // 60, b % 60)))
    return timewindows.format(windows)


ANCHORS = [datetime(2026, 3, 27, tzinfo=BERLIN), datetime(2026, 10, 23, tzinfo=BERLIN),
           datetime(2026, 10, 29, tzinfo=BERLIN), datetime(2026, 6, 1, tzinfo=BERLIN)]


@st.composite
def schedules(draw):
    therapists = draw(st.integers(1, 6))
    hours = [draw(phone_hours_or_none()) for _ in range(therapists)]
    states = [draw(st.sampled_from(STATES)) for _ in range(therapists)]
    anchor = draw(st.sampled_from(ANCHORS)).astimezone(UTC)
    requests = []
    for i in range(draw(st.integers(1, 25))):
        t = draw(st.integers(0, therapists - 1))
        earliest = (anchor + timedelta(minutes=draw(st.integers(0, 3 * 1440)))).astimezone(BERLIN)
        requests.append(CallRequest(i, t, hours[t], states[t], earliest,
                                    assignee=draw(st.sampled_from([None, None, 1, 2]))))
    booked = [BookedCall((anchor + timedelta(minutes=draw(st.integers(0, 5 * 1440)))),
                         draw(st.integers(1, 30)), therapist_id=draw(st.sampled_from([None, 0, 1, 2])))
              for _ in range(draw(st.integers(0, 6)))]
    return requests, booked, draw(st.integers(1, 3)), draw(st.sampled_from([5, 5, 10]))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile (tests/conftest.py)
@given(schedules())
def test_generated_schedules_keep_every_rule(case):
    requests, booked, callers, slot = case
    plan = schedule_calls(requests, booked=booked, callers=callers, slot_minutes=slot, horizon_days=4)
    assert [p.key for p in plan] == [r.key for r in requests]
    fallback_windows = timewindows.parse(DEFAULT_FALLBACK_PHONE_HOURS)
    intervals = [(b.start.timestamp(), b.start.timestamp() + b.minutes * 60, b.therapist_id, None) for b in booked]
    for r, p in zip(requests, plan):
        assert p.uses_fallback == (r.phone_hours is None)
        if p.start is None:
            continue
        assert p.start.tzinfo is BERLIN and p.start.minute % slot == 0 and p.start.second == 0
        assert r.earliest.timestamp() <= p.start.timestamp() < (r.earliest + timedelta(days=4)).timestamp()
        local_day = p.start.astimezone(BERLIN).date()
        assert local_day not in holidays.country_holidays("DE", subdiv=r.state)
        windows = fallback_windows if p.uses_fallback else slots.parse_phone_hours(r.phone_hours)
        assert inside_one_window(windows, p.start, slot)
        intervals.append((p.start.timestamp(), p.start.timestamp() + slot * 60, r.therapist_id, r.assignee))
    new = intervals[len(booked):]
    for s, e, therapist, assignee in new:
        # never two calls to one therapist (or by one coordinator) at once
        same = [o for o in intervals if o[0] < e and s < o[1]]
        assert sum(1 for o in same if o[2] == therapist) == 1
        if assignee is not None:
            assert sum(1 for o in same if o[3] == assignee) == 1
        # never more than `callers` calls at any moment of a new call
        for minute in range(int(s), int(e), 60):
            assert sum(1 for o in intervals if o[0] <= minute < o[1]) <= callers
