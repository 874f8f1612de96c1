"""Planning many calls at once under the agency's phone capacity (pure, no database).

Rules (issue 10, points 2 and 3):

- at most ``callers`` calls at the same moment across the agency (Settings ``CALLERS``:
  coordinators on the phone), counting calls already booked;
- never two calls to one therapist at once, and never two calls of one coordinator at once
  (a call may be assigned to a coordinator; unassigned calls are shared);
- every planned call lies in a slot that `slots` accepts: the therapist's phone hours, not on a
  holiday of the therapist's Bundesland, within the horizon;
- a therapist without (readable) phone hours is called in the fallback window (default
  Mo–Fr 09:00–12:00) and the call is marked "keine Telefonzeiten bekannt".

Requests are served one after the other in the order given (the caller decides priority, e.g.
oldest inquiry first); each gets the earliest slot still free. Greedy, and deliberately so:
nobody's call moves because a later request came in.

Speed: capacity is kept in counters keyed by *tick* (``gcd(slot_minutes, 60)`` real minutes;
with 5-minute slots a tick is a slot), so testing a slot is a few dictionary look-ups and
planning n calls costs O(n × candidate slots in the horizon), never O(n²) over booked calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Hashable, Iterable, Optional

from core.platform import timewindows
from core.calls import slots

NO_SLOT_REASON = "Kein freier Termin in den Telefonzeiten innerhalb von {days} Tagen."


@dataclass(frozen=True)
class CallRequest:
    """One call to plan. `key` is the caller's handle (an inquiry or call id)."""

    key: Hashable
    therapist_id: int
    phone_hours: Optional[str]
    state: Optional[str]
    earliest: datetime
    horizon_days: Optional[float] = None
    assignee: Optional[int] = None


@dataclass(frozen=True)
class BookedCall:
    """A call that already occupies the phone (any start, any length, e.g. an agreed callback)."""

    start: datetime
    minutes: int
    therapist_id: Optional[int] = None
    assignee: Optional[int] = None


@dataclass(frozen=True)
class PlannedCall:
    key: Hashable
    therapist_id: int
    start: Optional[datetime]  # aware Europe/Berlin; None when nothing fits in the horizon
    minutes: int
    uses_fallback: bool
    assignee: Optional[int] = None
    reason: Optional[str] = None  # German, why there is no start

    @property
    def end(self) -> Optional[datetime]:
        return None if self.start is None else self.start + timedelta(minutes=self.minutes)

    @property
    def note(self) -> Optional[str]:
        return slots.FALLBACK_LABEL if self.uses_fallback else None


@dataclass
class CallBoard:
    """The phone capacity of a planning run: book existing calls, then `place` requests."""

    callers: int
    slot_minutes: int = 5
    fallback_hours: str = slots.DEFAULT_FALLBACK_PHONE_HOURS
    horizon_days: float = 14
    _tick: int = field(init=False)
    _load: dict[int, int] = field(init=False, default_factory=dict)
    _therapist: dict[int, set[int]] = field(init=False, default_factory=dict)
    _assignee: dict[int, set[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.callers, int) or self.callers < 1:
            raise ValueError(f"callers must be at least 1, got {self.callers!r}")
        slots._check_parameters(self.slot_minutes, self.horizon_days)
        self._tick = math.gcd(self.slot_minutes, 60)
        self._fallback = slots.compile_phone_hours(self.fallback_hours)

    # ------------------------------------------------------------------ booking

    def _ticks_of(self, start_s: float, end_s: float) -> range:
        size = self._tick * 60
        return range(int(start_s // size), -int(-end_s // size))

    def book(self, start: datetime, minutes: int, *, therapist_id: Optional[int] = None,
             assignee: Optional[int] = None) -> None:
        """Occupy ``[start, start + minutes)`` (capacity, therapist and coordinator)."""
        slots.require_aware(start, "start")
        s = start.timestamp()
        self._book_ticks(self._ticks_of(s, s + minutes * 60), therapist_id, assignee)

    def _book_ticks(self, ticks: Iterable[int], therapist_id: Optional[int], assignee: Optional[int]) -> None:
        load = self._load
        ther = self._therapist.setdefault(therapist_id, set()) if therapist_id is not None else None
        mine = self._assignee.setdefault(assignee, set()) if assignee is not None else None
        for t in ticks:
            load[t] = load.get(t, 0) + 1
            if ther is not None:
                ther.add(t)
            if mine is not None:
                mine.add(t)

    def load_calls(self, calls: Iterable[BookedCall]) -> None:
        for c in calls:
            self.book(c.start, c.minutes, therapist_id=c.therapist_id, assignee=c.assignee)

    def calls_at(self, moment: datetime) -> int:
        """How many booked calls occupy the tick containing `moment` (for checks and tests)."""
        return self._load.get(int(moment.timestamp() // (self._tick * 60)), 0)

    # ------------------------------------------------------------------ planning

    def ranges_for(self, phone_hours: Optional[str]) -> tuple[slots.WeekRanges, bool]:
        """The week ranges to plan in and whether they are the fallback."""
        if phone_hours and phone_hours.strip():
            try:
                ranges = slots.compile_phone_hours(phone_hours)
            except timewindows.TimeWindowError:
                return self._fallback, True
            if slots.has_windows(ranges):
                return ranges, False
        return self._fallback, True

    def place(self, request: CallRequest) -> PlannedCall:
        """Book the earliest free slot for `request` and return it (start None if none fits)."""
        slots.require_aware(request.earliest, "earliest")
        ranges, fallback = self.ranges_for(request.phone_hours)
        horizon = self.horizon_days if request.horizon_days is None else request.horizon_days
        start = slots.epoch_minutes_ceil(request.earliest)
        end = slots.epoch_minutes_ceil(request.earliest + timedelta(days=horizon))
        slot, tick, callers, load = self.slot_minutes, self._tick, self.callers, self._load
        ther = self._therapist.get(request.therapist_id, ())
        mine = self._assignee.get(request.assignee, ()) if request.assignee is not None else ()
        per_slot = slot // tick
        for m in slots.iter_slots(ranges, start, end, state=request.state, slot_minutes=slot):
            first = m // tick
            if per_slot == 1:
                if load.get(first, 0) >= callers or first in ther or first in mine:
                    continue
                ticks: Iterable[int] = (first,)
            else:
                ticks = range(first, first + per_slot)
                if any(load.get(t, 0) >= callers or t in ther or t in mine for t in ticks):
                    continue
            self._book_ticks(ticks, request.therapist_id, request.assignee)
            return PlannedCall(request.key, request.therapist_id, slots.from_epoch_minutes(m), slot,
                               fallback, request.assignee)
        return PlannedCall(request.key, request.therapist_id, None, slot, fallback, request.assignee,
                           reason=NO_SLOT_REASON.format(days=_days_text(horizon)))


def _days_text(days: float) -> str:
    return str(int(days)) if float(days).is_integer() else f"{days:g}".replace(".", ",")


def schedule_calls(
    requests: Iterable[CallRequest],
    *,
    booked: Iterable[BookedCall] = (),
    callers: int,
    slot_minutes: int = 5,
    fallback_hours: str = slots.DEFAULT_FALLBACK_PHONE_HOURS,
    horizon_days: float = 14,
) -> list[PlannedCall]:
    """Plan `requests` in order around the `booked` calls; one PlannedCall per request."""
    board = CallBoard(callers=callers, slot_minutes=slot_minutes, fallback_hours=fallback_hours,
                      horizon_days=horizon_days)
    board.load_calls(booked)
    return [board.place(r) for r in requests]
