"""The canonical weekly time-window format (DESIGN §13): parser, formatter, round trip."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.platform import timewindows as tw
from core.platform.timewindows import TimeWindow, TimeWindowError

NORMAL = "Mo 09:00-12:00, 14:00-15:30; Mi 08:00-09:00; Fr 13:00-14:00"


def test_normal_form_parses_and_formats_unchanged():
    windows = tw.parse(NORMAL)
    assert windows == [
        TimeWindow(0, time(9), time(12)),
        TimeWindow(0, time(14), time(15, 30)),
        TimeWindow(2, time(8), time(9)),
        TimeWindow(4, time(13), time(14)),
    ]
    assert tw.format(windows) == NORMAL


@pytest.mark.parametrize(
    "text",
    [
        "Mo 9:00-12:00, 14:00-15:30; Mi 8:00-9:00; Fr 13:00-14:00",  # unpadded hours
        "Mo 09:00–12:00, 14:00–15:30; Mi 08:00–09:00; Fr 13:00–14:00",  # en dash
        "Mo 09:00 - 12:00 ,14:00 -15:30 ;Mi 08:00- 09:00; Fr 13:00 – 14:00",  # spaces around dash
        "Fr 13:00-14:00; Mi 08:00-09:00; Mo 14:00-15:30, 09:00-12:00",  # any order
        "mo 9-12, 14-15.30\nMittwoch 8-9\nFR 13:00-14:00",  # lower case, full names, hours only, lines
        "Mo 09:00-12:00; Mo 14:00-15:30; Mi 08:00-09:00; Fr 13:00-14:00;",  # day twice, trailing ;
    ],
)
def test_forgiving_input_gives_the_normal_form(text):
    assert tw.format(tw.parse(text)) == NORMAL


def test_day_span():
    assert tw.format(tw.parse("Mo-Mi 9-10")) == "Mo 09:00-10:00; Di 09:00-10:00; Mi 09:00-10:00"


def test_empty_text_means_no_windows():
    assert tw.parse("") == []
    assert tw.parse("  ;  ") == []
    assert tw.parse(None) == []
    assert tw.format([]) == ""
    assert tw.normalise("  ") is None


def test_adjacent_ranges_do_not_overlap():
    # end is exclusive: 10:00 belongs to the second range only
    assert tw.format(tw.parse("Di 09:00-10:00, 10:00-11:00")) == "Di 09:00-10:00, 10:00-11:00"


@pytest.mark.parametrize(
    "text, words",
    [
        ("Mx 09:00-12:00", ["Unbekannter Wochentag", "Mx"]),
        ("Montagmorgen 09:00-12:00", ["Unbekannter Wochentag", "Montagmorgen"]),
        ("Mo 12:00-09:00", ["Mo", "Ende muss nach dem Beginn"]),
        ("Mo 09:00-09:00", ["Mo", "Ende muss nach dem Beginn"]),
        ("Mo 09:00-12:00, 11:00-13:00", ["überschneiden sich", "09:00-12:00", "11:00-13:00"]),
        ("Mo 09:00-12:00; Mo 11:30-12:30", ["überschneiden sich", "Mo"]),
        ("Mo 25:00-26:00", ["Ungültige Uhrzeit", "25:00"]),
        ("Mo 09:60-10:00", ["Ungültige Uhrzeit", "09:60"]),
        ("Mo 22:00-24:00", ["24:00", "23:59"]),
        ("Mo 09:00", ["nicht erkannt", "HH:MM-HH:MM"]),
        ("Mo", ["fehlt ein Zeitraum"]),
        ("09:00-12:00", ["Wochentag fehlt"]),
        ("Fr-Mo 09:00-10:00", ["erste Tag muss vor dem letzten"]),
        ("Di ab 9", ["nicht erkannt"]),
    ],
)
def test_bad_input_is_rejected_with_a_german_message(text, words):
    with pytest.raises(TimeWindowError) as info:
        tw.parse(text)
    assert isinstance(info.value, ValueError)
    for w in words:
        assert w in str(info.value)


def test_format_rejects_overlaps_and_empty_ranges():
    with pytest.raises(TimeWindowError):
        tw.format([TimeWindow(0, time(9), time(12)), TimeWindow(0, time(10), time(11))])
    with pytest.raises(TimeWindowError):
        tw.format([(1, time(12), time(12))])


def test_format_accepts_plain_tuples_and_day_keys():
    assert tw.format([("Mi", time(8), time(9)), (0, time(9), time(10))]) == "Mo 09:00-10:00; Mi 08:00-09:00"


def test_day_rows_round_trip_and_name_the_day():
    rows = tw.to_day_rows(tw.parse(NORMAL))
    assert rows == {
        "Mo": "09:00-12:00, 14:00-15:30", "Di": "", "Mi": "08:00-09:00", "Do": "", "Fr": "13:00-14:00",
        "Sa": "", "So": "",
    }
    assert tw.format(tw.from_day_rows(rows)) == NORMAL
    with pytest.raises(TimeWindowError) as info:
        tw.from_day_rows({"Mo": "", "Do": "14-12"})
    assert info.value.day == "Do"


def test_small_queries():
    windows = tw.parse(NORMAL)
    assert tw.total_minutes(windows) == 180 + 90 + 60 + 60
    monday_ten = datetime(2026, 11, 23, 10, 0)  # a Monday
    assert tw.contains(windows, monday_ten)
    assert not tw.contains(windows, monday_ten.replace(hour=12))  # end exclusive
    assert tw.describe(windows).startswith("Montag 09:00-12:00, 14:00-15:30; Mittwoch")


# --------------------------------------------------------------------------- properties


@st.composite
def window_lists(draw):
    windows = []
    for day in draw(st.sets(st.integers(0, 6), max_size=7)):
        cuts = sorted(draw(st.sets(st.integers(0, 23 * 60 + 59), min_size=2, max_size=8)))
        # consecutive pairs of cut points: sorted, non-overlapping, each end > start
        for i in range(0, len(cuts) - 1, 2):
            s, e = cuts[i], cuts[i + 1]
            windows.append(TimeWindow(day, time(s // 60, s % 60), time(e // 60, e % 60)))
    return sorted(windows)


@given(window_lists())
def test_round_trip_format_then_parse(windows):
    assert tw.parse(tw.format(windows)) == windows


@given(window_lists())
def test_format_is_a_fixed_point(windows):
    text = tw.format(windows)
    assert tw.format(tw.parse(text)) == text


@given(window_lists(), st.sampled_from(["-", "–", " - ", " – "]))
def test_dash_variants_and_unpadded_hours_parse_the_same(windows, dash):
    def loose(w: TimeWindow) -> str:
        return f"{w.start.hour}:{w.start.minute:02d}{dash}{w.end.hour}:{w.end.minute:02d}"

    text = "; ".join(
        f"{tw.DAY_KEYS[d]} " + ", ".join(loose(w) for w in reversed(windows) if w.day == d)
        for d in sorted({w.day for w in windows}, reverse=True)
    )
    assert tw.parse(text) == windows


@given(window_lists())
def test_day_rows_round_trip(windows):
    assert tw.from_day_rows(tw.to_day_rows(windows)) == windows
