"""Issue 12 point 2: every time shown is Europe/Berlin through core.platform.formatting.
Pages and ui never format datetimes themselves (strftime, isoformat, f-string date specs,
astimezone) and never hand Streamlit a zone-aware value for a date/time column."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from core.platform.formatting import format_datetime, table_datetime

ROOT = Path(__file__).resolve().parents[2]
# the one ui module that builds datetime columns (values converted by frame(dates=...)),
# and the clock module that turns the wall clock into today's Berlin date
ALLOWED = {
    ("ui/registry_view.py", "DatetimeColumn"),
    ("ui/context.py", "astimezone"),
}
PATTERNS = {
    "strftime": re.compile(r"\.strftime\("),
    "isoformat": re.compile(r"\.isoformat\("),
    "astimezone": re.compile(r"\.astimezone\("),
    "f-string date spec": re.compile(r"\{[^{}]*:%[a-zA-Z]"),
    "DatetimeColumn": re.compile(r"\b(?:DatetimeColumn|TimeColumn)\("),
    "pandas tz": re.compile(r"\.tz_(?:convert|localize)\("),
}


def _sources():
    for folder in ("pages", "ui"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "app.py"


def test_point2_pages_and_ui_format_times_only_through_the_shared_formatter():
    found = []
    for f in _sources():
        rel = str(f.relative_to(ROOT))
        for no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for name, pattern in PATTERNS.items():
                if pattern.search(code) and (rel, name) not in ALLOWED:
                    found.append(f"{rel}:{no} ({name}): {line.strip()}")
    assert not found, "datetimes formatted outside core.platform.formatting:\n" + "\n".join(found)


def test_point2_table_values_are_berlin_wall_time():
    utc = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)  # summer: UTC+2
    assert table_datetime(utc) == datetime(2026, 7, 1, 12, 0)
    assert table_datetime(datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc)) == datetime(2026, 1, 15, 11, 0)
    assert format_datetime(utc) == "01.07.2026 12:00"


def test_point13_md_escapes_markup_in_free_text():
    from ui.text import md

    assert md("![x](http://t/p.png)") == "!\\[x\\](http://t/p.png)"  # no image, no link
    assert md("<img src=x>") == "\\<img src=x\\>"
    assert md("**a** _b_ `c` $x$ :red[y] ~~d~~") == "\\*\\*a\\*\\* \\_b\\_ \\`c\\` \\$x\\$ :red\\[y\\] \\~\\~d\\~\\~"
    assert md("# Titel\n- Punkt\n1. Liste") == "\\# Titel  \n\\- Punkt  \n1\\. Liste"
    assert md("F32.1, Müller-Lüdenscheidt, a@b.de") == "F32.1, Müller-Lüdenscheidt, a@b.de"  # plain text unchanged
    assert md(None) == ""
