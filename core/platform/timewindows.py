"""Canonical weekly time windows (docs/architecture.md, "Weekly time windows"): phone hours and patient availability.

Normal form: ``Mo 09:00-12:00, 14:00-15:30; Mi 08:00-09:00; Fr 13:00-14:00``

- day keys Mo Di Mi Do Fr Sa So, days separated by ``; ``, ranges of a day by ``, ``;
- ranges ``HH:MM-HH:MM``, start inclusive, end exclusive, local time Europe/Berlin.

`parse` is forgiving about how people type (unpadded hours ``8:00``, hours without minutes
``9-12``, ``9.30``, en/em dashes, spaces around the dash, lower-case or full day names,
day spans ``Mo-Fr``, line breaks instead of ``;``, a day named twice); it rejects
unknown days, malformed times, end ≤ start and overlapping ranges with a German message
naming the problem. `format` always writes the normal form (days in week order, ranges
sorted), so ``format(parse(text))`` is the canonical spelling of any accepted text.

Contract (docs/architecture.md, "Contracts"): ``parse(text) -> list[TimeWindow]``, ``format(windows) -> str``.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Iterable, Mapping, NamedTuple, Optional

DAY_KEYS: tuple[str, ...] = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
DAY_NAMES: tuple[str, ...] = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")

_DAY_LOOKUP: dict[str, int] = {}
for _i, (_key, _name) in enumerate(zip(DAY_KEYS, DAY_NAMES)):
    _DAY_LOOKUP[_key.lower()] = _i
    _DAY_LOOKUP[_name.lower()] = _i

_DASH = r"\s*[-\u2013\u2014]\s*"
_DAY_PART = re.compile(r"^(?P<first>[^\W\d_]+)\.?(?:" + _DASH + r"(?P<last>[^\W\d_]+)\.?)?(?:\s+|:\s*|$)(?P<rest>.*)$", re.S)
_RANGE = re.compile(r"^(?P<start>[^\s\-\u2013\u2014]+)" + _DASH + r"(?P<end>[^\s\-\u2013\u2014]+)$")
_TIME = re.compile(r"^(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?(?:\s*uhr)?$", re.I)

EXAMPLE = "Mo 09:00-12:00, 14:00-15:30; Mi 08:00-09:00"


class TimeWindowError(ValueError):
    """Text that is not a valid list of weekly windows; the message is German and names the problem."""

    def __init__(self, message: str, *, day: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.day = day


class TimeWindow(NamedTuple):
    """One weekly range: day 0 = Monday … 6 = Sunday; start inclusive, end exclusive."""

    day: int
    start: time
    end: time

    @property
    def day_key(self) -> str:
        return DAY_KEYS[self.day]

    @property
    def minutes(self) -> int:
        return _minutes(self.end) - _minutes(self.start)

    def __str__(self) -> str:
        return f"{self.day_key} {_fmt_range(self.start, self.end)}"


Windows = list[TimeWindow]


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _fmt_time(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _fmt_range(start: time, end: time) -> str:
    return f"{_fmt_time(start)}-{_fmt_time(end)}"


def day_index(token: str) -> int:
    """0..6 for a day key or full German day name (any case); TimeWindowError otherwise."""
    idx = _DAY_LOOKUP.get(token.strip().rstrip(".").lower())
    if idx is None:
        raise TimeWindowError(
            f"Unbekannter Wochentag „{token.strip()}“ – erlaubt sind {', '.join(DAY_KEYS)}."
        )
    return idx


def _parse_time(token: str, day_key: str, range_text: str) -> time:
    m = _TIME.match(token.strip())
    if not m:
        raise TimeWindowError(
            f"Ungültige Uhrzeit „{token.strip()}“ in „{range_text}“ am {day_key} – erwartet HH:MM, z. B. 09:00.",
            day=day_key,
        )
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    if hour > 23 or minute > 59:
        hint = " (für Mitternacht 23:59 verwenden)" if hour == 24 and minute == 0 else ""
        raise TimeWindowError(
            f"Ungültige Uhrzeit „{token.strip()}“ am {day_key}: Stunden 0–23, Minuten 0–59{hint}.",
            day=day_key,
        )
    return time(hour, minute)


def parse_ranges(text: str, day: int) -> list[tuple[time, time]]:
    """The ranges of one day (``09:00-12:00, 14:00-15:30``), sorted and checked for overlaps."""
    day_key = DAY_KEYS[day]
    ranges: list[tuple[time, time]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        m = _RANGE.match(part)
        if not m:
            raise TimeWindowError(
                f"Zeitraum „{part}“ am {day_key} nicht erkannt – erwartet HH:MM-HH:MM, z. B. 09:00-12:00.",
                day=day_key,
            )
        start = _parse_time(m.group("start"), day_key, part)
        end = _parse_time(m.group("end"), day_key, part)
        if end <= start:
            raise TimeWindowError(
                f"Zeitraum {_fmt_range(start, end)} am {day_key}: das Ende muss nach dem Beginn liegen.",
                day=day_key,
            )
        ranges.append((start, end))
    if not ranges:
        raise TimeWindowError(f"Für {day_key} fehlt ein Zeitraum, z. B. „{day_key} 09:00-12:00“.", day=day_key)
    return _check_overlaps(ranges, day)


def _check_overlaps(ranges: list[tuple[time, time]], day: int) -> list[tuple[time, time]]:
    ranges = sorted(ranges)
    for (s1, e1), (s2, e2) in zip(ranges, ranges[1:]):
        if s2 < e1:
            raise TimeWindowError(
                f"Zeiträume am {DAY_KEYS[day]} überschneiden sich: {_fmt_range(s1, e1)} und {_fmt_range(s2, e2)}.",
                day=DAY_KEYS[day],
            )
    return ranges


def parse(text: Optional[str]) -> Windows:
    """Parse section-13 text into sorted windows. Empty text means no windows (``[]``)."""
    if text is None:
        return []
    by_day: dict[int, list[tuple[time, time]]] = {}
    for raw in re.split(r"[;\n]", text):
        chunk = raw.strip()
        if not chunk:
            continue
        m = _DAY_PART.match(chunk)
        if not m:
            token = chunk.split()[0]
            raise TimeWindowError(
                f"„{chunk}“: Wochentag fehlt oder ist unbekannt („{token}“) – erwartet z. B. „{EXAMPLE}“."
            )
        first = day_index(m.group("first"))
        last = day_index(m.group("last")) if m.group("last") else first
        if last < first:
            raise TimeWindowError(
                f"Tagesbereich {DAY_KEYS[first]}-{DAY_KEYS[last]}: der erste Tag muss vor dem letzten liegen."
            )
        for day in range(first, last + 1):
            ranges = parse_ranges(m.group("rest"), day)
            by_day.setdefault(day, []).extend(ranges)
    windows: Windows = []
    for day in sorted(by_day):
        for start, end in _check_overlaps(by_day[day], day):
            windows.append(TimeWindow(day, start, end))
    return windows


def _coerce(windows: Iterable) -> Windows:
    result = []
    for w in windows:
        day, start, end = w
        if isinstance(day, str):
            day = day_index(day)
        result.append(TimeWindow(int(day), start, end))
    return result


def validate(windows: Iterable) -> Windows:
    """Sorted windows; TimeWindowError for end ≤ start or overlaps."""
    by_day: dict[int, list[tuple[time, time]]] = {}
    for w in _coerce(windows):
        if not 0 <= w.day <= 6:
            raise TimeWindowError(f"Unbekannter Wochentag {w.day} – erlaubt sind 0 (Mo) bis 6 (So).")
        if w.end <= w.start:
            raise TimeWindowError(
                f"Zeitraum {_fmt_range(w.start, w.end)} am {w.day_key}: das Ende muss nach dem Beginn liegen.",
                day=w.day_key,
            )
        by_day.setdefault(w.day, []).append((w.start, w.end))
    return [TimeWindow(d, s, e) for d in sorted(by_day) for s, e in _check_overlaps(by_day[d], d)]


def format(windows: Iterable) -> str:  # noqa: A001 - the contract name (docs/architecture.md)
    """The normal form: days in week order, ranges sorted, ``; `` and ``, `` separators."""
    by_day: dict[int, list[str]] = {}
    for w in validate(windows):
        by_day.setdefault(w.day, []).append(_fmt_range(w.start, w.end))
    return "; ".join(f"{DAY_KEYS[d]} {', '.join(by_day[d])}" for d in sorted(by_day))


def normalise(text: Optional[str]) -> Optional[str]:
    """Canonical spelling of the text, or None when it holds no window."""
    result = format(parse(text))
    return result or None


# --------------------------------------------------------------------------- per-day rows (editor)


def to_day_rows(windows: Iterable) -> dict[str, str]:
    """{day key: "09:00-12:00, 14:00-15:30"} for all seven days ("" for a free day)."""
    rows = {key: [] for key in DAY_KEYS}
    for w in validate(windows):
        rows[w.day_key].append(_fmt_range(w.start, w.end))
    return {key: ", ".join(v) for key, v in rows.items()}


def from_day_rows(rows: Mapping[str, str]) -> Windows:
    """The inverse of `to_day_rows`: one text of ranges per day key; empty days are free."""
    windows: Windows = []
    for key, text in rows.items():
        day = day_index(key)
        if text and text.strip():
            windows.extend(TimeWindow(day, s, e) for s, e in parse_ranges(text, day))
    return validate(windows)


# --------------------------------------------------------------------------- small queries


def total_minutes(windows: Iterable) -> int:
    return sum(w.minutes for w in _coerce(windows))


def contains(windows: Iterable, moment: datetime) -> bool:
    """Whether the (local, Europe/Berlin) moment lies inside one of the windows."""
    day, t = moment.weekday(), moment.time().replace(second=0, microsecond=0, tzinfo=None)
    return any(w.day == day and w.start <= t < w.end for w in _coerce(windows))


def describe(windows: Iterable) -> str:
    """For sentences: 'Montag 09:00-12:00; Mittwoch 08:00-09:00' (full day names)."""
    by_day: dict[int, list[str]] = {}
    for w in validate(windows):
        by_day.setdefault(w.day, []).append(_fmt_range(w.start, w.end))
    return "; ".join(f"{DAY_NAMES[d]} {', '.join(by_day[d])}" for d in sorted(by_day)) or "keine Zeiten angegeben"
