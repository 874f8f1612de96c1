"""Auto-replies (out of office) and the return date they name."""

from __future__ import annotations

import re
from datetime import date, timedelta
from email.message import Message
from typing import Optional


# --------------------------------------------------------------------------- auto-replies


_AUTO_SUBJECT = re.compile(
    r"abwesenheits?(?:notiz|nachricht|meldung|benachrichtigung)|automatische\s+antwort|automatische\s+r[üu]ckantwort|"
    r"auto(?:matic)?[\s_-]?(?:reply|response|antwort)|autoreply|out\s+of\s+(?:the\s+)?office|"
    r"\babwesend\b|nicht\s+im\s+b[üu]ro|\bim\s+urlaub\b|\burlaubsbedingt\b|vacation\s+(?:reply|notice|message)|"
    r"\bon\s+vacation\b|\bout\s+of\s+office\b|\booo\b",
    re.IGNORECASE,
)


def auto_reply_reason(msg: Message, subject: str) -> str:
    """Why this mail is an automatic answer ("" when it is not)."""
    auto_submitted = str(msg.get("Auto-Submitted", "") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted[:40]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        value = str(msg.get(name, "") or "").strip().lower()
        if value and value not in ("no", "false", "0"):
            return f"{name}: {value[:40]}"
    precedence = str(msg.get("Precedence", "") or "").strip().lower()
    if precedence == "auto_reply":
        return "Precedence: auto_reply"
    if _AUTO_SUBJECT.search(subject or ""):
        return "Betreff"
    if str(msg.get("X-MS-Exchange-Generated-Message-Source", "") or ""):
        return "Exchange-Regel"
    return ""


_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "january": 1,
    "februar": 2, "feb": 2, "february": 2,
    "märz": 3, "maerz": 3, "mär": 3, "mrz": 3, "march": 3, "mar": 3,
    "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "juni": 6, "jun": 6, "june": 6,
    "juli": 7, "jul": 7, "july": 7,
    "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "october": 10, "oct": 10,
    "november": 11, "nov": 11,
    "dezember": 12, "dez": 12, "december": 12, "dec": 12,
}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = [
    # 14.12.2026, 14.12.26, 14.12., 7.1.
    re.compile(r"(?<![\d.])(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.(?:\s?(?P<y>\d{4}|\d{2})(?!\d|\.\d))?"),
    # 7. Januar 2027, 7 January, 7th of January
    re.compile(r"(?<!\d)(?P<d>\d{1,2})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?(?P<mn>" + _MONTH_NAMES + r")\.?(?:\s*,?\s*(?P<y>\d{4}))?(?![a-zäöü])",
               re.IGNORECASE),
    # January 7, 2027 / Jan 7th
    re.compile(r"(?<![a-zäöü])(?P<mn>" + _MONTH_NAMES + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?!\d)(?:\s*,?\s*(?P<y>\d{4}))?",
               re.IGNORECASE),
    # 2027-01-07
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?!\d)"),
]
_UNTIL = re.compile(r"(?:\bbis\b|\buntil\b|\btill\b|\bthrough\b|\bthru\b)[^.\n!?]{0,40}$", re.IGNORECASE)
_BACK_BEFORE = re.compile(
    r"(?:wieder|zurück|zurueck|\bback\b|\breturn\w*|erreichbar|\bab\b|\bfrom\b|\bam\b|\bon\b)[^.\n!?]{0,40}$", re.IGNORECASE)
_BACK_WORD = re.compile(r"wieder|zurück|zurueck|\bback\b|\breturn|erreichbar|im\s+büro|in\s+the\s+office|available|für\s+sie\s+da",
                        re.IGNORECASE)


def _found_dates(text: str, anchor: date) -> list[tuple[int, int, date]]:
    found: list[tuple[int, int, date]] = []
    taken: list[tuple[int, int]] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(s < end and start < e for s, e in taken):
                continue
            try:
                day = int(m.group("d"))
                month = _MONTHS[m.group("mn").lower()] if "mn" in m.groupdict() and m.group("mn") else int(m.group("m"))
                year_text = m.group("y")
                if year_text:
                    year = int(year_text)
                    year = year + 2000 if year < 100 else year
                    when = date(year, month, day)
                else:
                    when = date(anchor.year, month, day)
                    if when < anchor - timedelta(days=60):
                        when = date(anchor.year + 1, month, day)
            except (ValueError, KeyError, TypeError, OverflowError):
                continue
            taken.append((start, end))
            found.append((start, end, when))
    found.sort()
    return found


def return_date(text: str, anchor: Optional[date]) -> Optional[date]:
    """The first day the sender is back, read from an out-of-office text: "bis zum
    14.12.2026" (absent through the 14th → back on the 15th), "ab 7. Januar wieder",
    "back on January 7". Dates without a year are taken in the year of `anchor` (the mail's
    date), or the next one when that would lie in the past. None when no such date is found or
    it is not between a week before and a year after the anchor."""
    if not text or anchor is None:
        return None
    text = text[:5000]
    dates = _found_dates(text, anchor)
    back: Optional[date] = None
    until: Optional[date] = None
    previous_end = 0
    for start, end, when in dates:
        before = text[max(previous_end, start - 60):start]
        after_match = re.match(r"[^.\n!?]{0,50}", text[end:])
        after = after_match.group(0) if after_match else ""
        previous_end = end
        if not anchor - timedelta(days=7) <= when <= anchor + timedelta(days=366):
            continue
        if _UNTIL.search(before):
            until = until or when + timedelta(days=1)
        elif _BACK_WORD.search(after) or (_BACK_BEFORE.search(before) and _BACK_WORD.search(before)):
            back = back or when
    return back or until


