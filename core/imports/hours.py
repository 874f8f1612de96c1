"""Opening hours of an entry: dated lists and time ranges to canonical weekly phone hours."""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional
from core.platform import timewindows
from core.imports.records import DAY_KEYS_ALL, END_OF_DAY, END_OF_DAY_EXACT, HOUR_TYPES, LEGACY_HOUR_LABELS, MINUTES_PER_DAY, PHONE_TYPE, TherapistRecord, _FAST_RANGE_RE, _ISO_DATE_RE, _LEGACY_DATE_RE, _RANGE_RE, _RANGE_SPLIT_RE, _WS_RE
from core.imports.values import _kind_de, _short, _weekday_word


def _hours_from_tsz(
    tsz: Any, reference_date: Optional[date], record: TherapistRecord, warnings: list[str]
) -> list[tuple[int, str, int, int]]:
    """(weekday, date text, start minute, end minute) of the phone ranges; other types go to
    `record.other_hours`."""
    phone: list[tuple[int, str, int, int]] = []
    if tsz is None:
        return phone
    if not isinstance(tsz, list):
        warnings.append(f"„tsz“ ist {_kind_de(tsz, nominative=True)} statt einer Liste; Zeiten ignoriert.")
        return phone
    unknown_types: set[str] = set()
    for n, day in enumerate(tsz, start=1):
        if not isinstance(day, dict):
            warnings.append(f"Tag {n} in „tsz“ ist {_kind_de(day, nominative=True)}; ignoriert.")
            continue
        extra = sorted(day.keys() - DAY_KEYS_ALL) if not day.keys() <= DAY_KEYS_ALL else ()
        if extra:
            warnings.append(f"Unbekannte Felder an Tag {n} ignoriert: {', '.join(extra)}.")
        types = day.get("typTsz") if "typTsz" in day else day.get("tszDesTyps")
        if types is None or types == []:
            continue
        if not isinstance(types, list):
            warnings.append(f"Zeitangaben an Tag {n} sind {_kind_de(types, nominative=True)} statt einer Liste; ignoriert.")
            continue
        weekday, date_text = _day_of(day, n, reference_date, warnings)
        for block in types:
            if not isinstance(block, dict):
                warnings.append(f"Zeitart an Tag {n} ist {_kind_de(block, nominative=True)}; ignoriert.")
                continue
            code, label, known = _hour_type(block.get("typ"))
            if not known and code not in unknown_types:
                unknown_types.add(code)
                warnings.append(f"Unbekannte Zeitart „{code}“ – als Rohdaten behalten.")
            ranges, problems = _ranges_of(block.get("sprechzeiten"))
            for p in problems:
                warnings.append(f"{date_text or f'Tag {n}'}: {p}")
            if code == PHONE_TYPE:
                if weekday is None:
                    if ranges:
                        warnings.append(f"Telefonzeiten an Tag {n} ohne erkennbaren Wochentag ignoriert.")
                    continue
                phone.extend((weekday, date_text, s, e) for s, e in ranges)
            else:
                record.other_hours.append(
                    {
                        "type": code,
                        "label": label,
                        "date": date_text,
                        "weekday": timewindows.DAY_KEYS[weekday] if weekday is not None else None,
                        "ranges": _fmt_ranges(tuple(ranges)),
                    }
                )
    return phone


def _day_of(day: Mapping[str, Any], n: int, reference_date: Optional[date], warnings: list[str]) -> tuple[Optional[int], str]:
    """Weekday index and a date text (ISO when the date is known) of one `tsz` day."""
    d = day.get("d")
    t = day.get("t")
    t_index = _weekday_word(t) if isinstance(t, str) else None
    if t is not None and t_index is None:
        warnings.append(f"Unbekannter Wochentag „{_short(t)}“ an Tag {n}.")
    if not isinstance(d, str) or not d.strip():
        if t_index is None:
            warnings.append(f"Tag {n} hat kein Datum.")
        return t_index, ""
    d = d.strip()
    if len(d) == 10 and t is None:
        try:
            return _iso_weekday(d)
        except ValueError:
            pass
    m = _ISO_DATE_RE.match(d)
    if m:
        try:
            when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            warnings.append(f"Ungültiges Datum „{d}“.")
            return t_index, d
        if t_index is not None and t_index != when.weekday():
            warnings.append(f"Datum {when.isoformat()} ist kein {timewindows.DAY_KEYS[t_index]}; Wochentag aus dem Datum.")
        return when.weekday(), when.isoformat()
    m = _LEGACY_DATE_RE.match(d)
    if m:
        dd, mm = int(m.group(1)), int(m.group(2))
        year = m.group(3)
        when: Optional[date] = None
        if year:
            y = int(year)
            y = y + 2000 if y < 100 else y
            when = _safe_date(y, mm, dd)
        elif reference_date is not None:
            when = _closest_date(dd, mm, reference_date)
        if when is None and t_index is None and (year or reference_date is not None):
            warnings.append(f"Ungültiges Datum „{d}“.")
        if when is not None:
            if t_index is not None and t_index != when.weekday():
                warnings.append(
                    f"Datum {when.strftime('%d.%m.%Y')} ist kein {timewindows.DAY_KEYS[t_index]}; Wochentag aus dem Datum."
                )
            return when.weekday(), when.isoformat()
        if t_index is None:
            warnings.append(f"Tag „{d}“ ohne Wochentag und ohne Jahr – Wochentag nicht bestimmbar.")
        return t_index, d
    warnings.append(f"Unbekanntes Datumsformat „{_short(d)}“ an Tag {n}.")
    return t_index, d


@lru_cache(maxsize=4096)
def _iso_weekday(d: str) -> tuple[int, str]:
    when = date.fromisoformat(d)
    return when.weekday(), when.isoformat()


def _safe_date(y: int, m: int, d: int) -> Optional[date]:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _closest_date(day: int, month: int, reference: date) -> Optional[date]:
    """The date with this day and month nearest to `reference` (a December fetch may
    contain January days)."""
    options = [c for y in (reference.year - 1, reference.year, reference.year + 1) if (c := _safe_date(y, month, day))]
    if not options:
        return None
    return min(options, key=lambda c: abs((c - reference).days))


def _hour_type(raw: Any) -> tuple[str, str, bool]:
    """(code, label, known). Codes are two digits; legacy labels map to codes."""
    if isinstance(raw, str):
        return _hour_type_text(raw)
    return _hour_type_any(raw)


@lru_cache(maxsize=256)
def _hour_type_text(raw: str) -> tuple[str, str, bool]:
    return _hour_type_any(raw)


def _hour_type_any(raw: Any) -> tuple[str, str, bool]:
    if isinstance(raw, bool) or raw is None:
        return (_short(raw), "unbekannt", False)
    if isinstance(raw, int):
        raw = f"{raw:02d}"
    if not isinstance(raw, str):
        return (_short(raw), "unbekannt", False)
    text = _WS_RE.sub(" ", raw).strip()
    if text.isdigit():
        code = text.zfill(2)
        return (code, HOUR_TYPES.get(code, "unbekannt"), code in HOUR_TYPES)
    code = LEGACY_HOUR_LABELS.get(text.lower())
    if code is not None:
        return (code, text, True)
    if "telefon" in text.lower():
        return (PHONE_TYPE, text, True)
    return (text, text, False)


def _ranges_of(items: Any) -> tuple[list[tuple[int, int]], list[str]] | tuple[tuple, tuple]:
    """Minute ranges from a `sprechzeiten` list (``{z}``/``{zeit}`` objects or strings)."""
    if type(items) is list:
        texts = []
        for item in items:
            if type(item) is dict and len(item) == 1:
                text = item.get("z") if "z" in item else item.get("zeit")
                if type(text) is str:
                    texts.append(text)
                    continue
            break
        else:
            # the usual shape: only texts; the same few texts repeat across thousands of entries
            return _ranges_of_texts(tuple(texts))
    return _ranges_of_slow(items)


@lru_cache(maxsize=8192)
def _ranges_of_texts(texts: tuple[str, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for text in texts:
        r, p = _parse_time_ranges_cached(text)
        ranges.extend(r)
        problems.extend(p)
    return tuple(ranges), tuple(problems)


def _ranges_of_slow(items: Any) -> tuple[list[tuple[int, int]], list[str]]:
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    if items is None:
        return ranges, problems
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        return ranges, [f"Zeitangaben sind {_kind_de(items, nominative=True)}; ignoriert."]
    for item in items:
        if isinstance(item, dict):
            text = item.get("z", item.get("zeit"))
            extra = sorted(k for k in item if k not in ("z", "zeit"))
            if extra:
                problems.append(f"unbekannte Felder in Zeitangabe ignoriert: {', '.join(extra)}.")
        else:
            text = item
        if not isinstance(text, str):
            problems.append(f"Zeitangabe {_short(text)} ist kein Text; ignoriert.")
            continue
        r, p = parse_time_ranges(text)
        ranges.extend(r)
        problems.extend(p)
    return ranges, problems


def parse_time_ranges(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Ranges in minutes since midnight from e.g. ``"9:10-10:00"``, ``"08:00 - 12:00"``,
    ``"8-12, 14:00 bis 16:00"``; problems in German for parts that are not ranges."""
    ranges, problems = _parse_time_ranges_cached(text)
    return list(ranges), list(problems)


@lru_cache(maxsize=8192)
def _parse_time_ranges_cached(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    # the same few range texts repeat across thousands of entries
    fast = _FAST_RANGE_RE.fullmatch(text)
    if fast:
        sh, sm, eh, em = (int(g) for g in fast.groups())
        start, end = sh * 60 + sm, eh * 60 + em
        if sh <= 23 and sm <= 59 and em <= 59 and eh <= 23 and start < end:
            return ((start, end),), ()
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for part in _RANGE_SPLIT_RE.split(text):
        part = part.strip()
        if not part:
            continue
        m = _RANGE_RE.match(part)
        if not m:
            problems.append(f"Zeitraum „{_short(part)}“ nicht erkannt; ignoriert.")
            continue
        sh, sm = int(m.group("sh")), int(m.group("sm") or 0)
        eh, em = int(m.group("eh")), int(m.group("em") or 0)
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em > 0):
            problems.append(f"Zeitraum „{part}“ enthält eine ungültige Uhrzeit; ignoriert.")
            continue
        start, end = sh * 60 + sm, eh * 60 + em
        if end == 0 and start > 0:
            end = MINUTES_PER_DAY  # "22:00-0:00" means until midnight
        if end <= start:
            problems.append(f"Zeitraum „{part}“: das Ende liegt nicht nach dem Beginn; ignoriert.")
            continue
        ranges.append((start, end))
    return tuple(ranges), tuple(problems)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of minute ranges; overlapping and touching ranges become one."""
    merged: list[list[int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def weekly_windows(dated: Iterable[tuple[int, int, int]]) -> list[timewindows.TimeWindow]:
    """(weekday, start minute, end minute) triples → merged weekly `TimeWindow`s."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for day, s, e in dated:
        by_day.setdefault(day, []).append((s, e))
    windows = []
    for day in sorted(by_day):
        for s, e in merge_ranges(by_day[day]):
            windows.append(timewindows.TimeWindow(day, _minute_time(s), _minute_time(e)))
    return windows


def _set_phone_hours(record: TherapistRecord, dated: list[tuple[int, str, int, int]], warnings: list[str]) -> None:
    if not dated:
        return
    if not END_OF_DAY_EXACT and any(e == MINUTES_PER_DAY for _, _, _, e in dated):
        warnings.append("Telefonzeit bis 24:00 als bis 23:59 übernommen.")
    record.phone_dates = sorted({(d, _fmt_minutes(s), _fmt_minutes(e)) for _, d, s, e in dated})
    windows, text = _weekly(tuple(sorted({(day, s, e) for day, _, s, e in dated})))
    record.phone_windows = list(windows)
    record.phone_hours = text


@lru_cache(maxsize=8192)
def _weekly(triples: tuple[tuple[int, int, int], ...]) -> tuple[tuple[timewindows.TimeWindow, ...], str]:
    """Merged windows and their canonical text (`timewindows.format`, the one formatter);
    weekly patterns repeat across entries, so this is cached."""
    windows = tuple(weekly_windows(triples))
    return windows, timewindows.format(windows)


@lru_cache(maxsize=2048)
def _minute_time(minutes: int) -> time:
    if minutes >= MINUTES_PER_DAY:
        return END_OF_DAY
    return time(minutes // 60, minutes % 60)


@lru_cache(maxsize=2048)
def _fmt_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=4096)
def _fmt_ranges_cached(ranges: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    return tuple(_fmt_minutes_range(s, e) for s, e in ranges)


def _fmt_ranges(ranges: tuple[tuple[int, int], ...]) -> list[str]:
    return list(_fmt_ranges_cached(ranges))


def _fmt_minutes_range(s: int, e: int) -> str:
    return f"{_fmt_minutes(s)}-{_fmt_minutes(e)}"


