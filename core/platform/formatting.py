"""German display formats (dates 23.11.2026, times 14:05, numbers 1.234,5) via Babel.

Stored times are UTC; everything shown is Europe/Berlin.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.dates import format_timedelta as _babel_timedelta
from babel.numbers import format_decimal as _babel_decimal

from core.platform.vocab import NOUNS

BERLIN = ZoneInfo("Europe/Berlin")
LOCALE = "de_DE"


def to_local(dt: datetime) -> datetime:
    return dt.astimezone(BERLIN)


def format_date(value: Optional[date | datetime]) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = to_local(value).date()
    return _babel_date(value, "dd.MM.yyyy", locale=LOCALE)


def format_day_month(value: Optional[date | datetime]) -> str:
    """"23.11." for compact places (week views)."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = to_local(value).date()
    return _babel_date(value, "dd.MM.", locale=LOCALE)


def format_time(value: Optional[datetime]) -> str:
    if value is None:
        return "–"
    return to_local(value).strftime("%H:%M")


def format_datetime(value: Optional[datetime]) -> str:
    if value is None:
        return "–"
    return f"{format_date(value)} {format_time(value)}"


def table_datetime(value: Optional[date | datetime]) -> Optional[date | datetime]:
    """A value for a table's date/time column: aware datetimes become Europe/Berlin wall
    time without a zone (a zone-aware UTC value would be shown in UTC); dates stay dates."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return to_local(value).replace(tzinfo=None)
    return value


def format_number(value: Optional[float | int], decimals: int = 0) -> str:
    if value is None:
        return "–"
    if not decimals and type(value) is int and 0 <= value < 1000:
        return str(value)  # what Babel gives for these (no grouping), without its 0.1 ms per call
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return _babel_decimal(value, pattern, locale=LOCALE)


def plural(n: Optional[int], singular: str, plural_form: str) -> str:
    """The one plural helper: "1 Zeile", "3 Zeilen", "1.200 Patient:innen", "0 Anfragen".
    Never "Zeile(n)" or "Patient:in(nen)"."""
    count = n or 0
    return f"{format_number(count)} {noun(count, singular, plural_form)}"


def count_of(n: Optional[int], kind: str) -> str:
    """plural() with the nouns of core.platform.vocab.NOUNS: count_of(1, "row") → "1 Zeile"."""
    return plural(n, *NOUNS[kind])


def noun(n: int, singular: str, plural_form: str) -> str:
    """Only the noun for a count (1 → singular, 0 and 2+ → plural), for sentences that put
    the number elsewhere."""
    return singular if n == 1 else plural_form


def file_name(title: str, day: Optional[date] = None, *, ext: str = "csv") -> str:
    """A German download file name: file_name("Therapeut:innen", 2026-07-01) →
    "Therapeut-innen_2026-07-01.csv" (no colons or spaces; sorts by date)."""
    stem = "-".join(title.replace(":", "-").replace("/", "-").split())
    return f"{stem}_{day.isoformat()}.{ext}" if day is not None else f"{stem}.{ext}"


def format_km(value: Optional[float]) -> str:
    if value is None:
        return "unbekannt"
    return f"{format_number(value, 1)} km (Luftlinie)"


def format_ago(value: Optional[datetime], now: datetime) -> str:
    """'vor 3 Tagen', 'vor 5 Minuten', 'gerade eben'."""
    if value is None:
        return "nie"
    delta: timedelta = now - value
    if delta.total_seconds() < 60:
        return "gerade eben"
    return _babel_timedelta(-delta, locale=LOCALE, format="long", threshold=1.0, add_direction=True)
