"""Report periods and the comparison with the previous period (pure rules, no database).

A period is a range of Berlin calendar days, both ends included. The presets end today and
count whole weeks back, so the weekly charts have complete weeks: 4 weeks (28 days), a
quarter (13 weeks) and a year (52 weeks); a custom period has any start and end. The
previous period is the one of the same length that ends the day before the period starts.

Stored times are UTC; a period's instants are its first day 00:00 and the day after its
last day 00:00 in Europe/Berlin (`bounds_utc`), so summer time never moves a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional

from core.platform.formatting import BERLIN, format_date

PRESETS: dict[str, tuple[str, int]] = {
    "4w": ("Letzte 4 Wochen", 28),
    "quarter": ("Letztes Quartal (13 Wochen)", 91),
    "year": ("Letztes Jahr (52 Wochen)", 364),
}
CUSTOM = "custom"
PERIOD_CHOICES: dict[str, str] = {**{k: v[0] for k, v in PRESETS.items()}, CUSTOM: "Benutzerdefiniert"}
MAX_DAYS = 3 * 366


class PeriodError(ValueError):
    """A custom period cannot be used; the message is German."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def bounds_utc(self) -> tuple[datetime, datetime]:
        """[first day 00:00, day after the last day 00:00) in Berlin, as UTC instants."""
        return day_start_utc(self.start), day_start_utc(self.end + timedelta(days=1))

    def weeks(self) -> list[date]:
        """The Mondays of every week the period touches, in order."""
        first = self.start - timedelta(days=self.start.weekday())
        out = []
        while first <= self.end:
            out.append(first)
            first += timedelta(days=7)
        return out

    def label(self) -> str:
        return f"{format_date(self.start)} – {format_date(self.end)}"


def day_start_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BERLIN).astimezone(timezone.utc)


def period_for(key: str, *, today: date, start: Optional[date] = None, end: Optional[date] = None) -> Period:
    """The period of a preset key ending today, or the custom one (checked)."""
    if key in PRESETS:
        days = PRESETS[key][1]
        return Period(today - timedelta(days=days - 1), today)
    if key != CUSTOM:
        raise PeriodError(f"Unbekannter Zeitraum „{key}“.")
    if start is None or end is None:
        raise PeriodError("Bitte Beginn und Ende des Zeitraums wählen.")
    if end < start:
        raise PeriodError("Das Ende des Zeitraums liegt vor dem Beginn.")
    if end > today:
        raise PeriodError("Der Zeitraum darf nicht in der Zukunft enden.")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError("Der Zeitraum darf höchstens drei Jahre umfassen.")
    return Period(start, end)


def change(current: Optional[float], previous: Optional[float]) -> Optional[float]:
    """current - previous, None when either is unknown."""
    if current is None or previous is None:
        return None
    return current - previous


def normalise_region(value: Optional[str]) -> Optional[str]:
    """A PLZ prefix (1-5 digits) or None for all of Germany."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 5:
        raise PeriodError("Region: bitte 1 bis 5 Ziffern einer PLZ eingeben, z. B. 10 oder 101.")
    return text
