"""Altair charts of Übersicht from core.reports.figures' chart data (no SQL, no rules here).

German everywhere: axis and legend titles from core.platform.vocab.REPORT_CHARTS, week labels
formatted by core.platform.formatting ("02.11."), and a German number/time locale for the
Vega renderer (decimal comma, thousands dot) so tooltips and axes read "1.234,5".
"""

from __future__ import annotations

from typing import Sequence

import altair as alt
import pandas as pd

from core.platform.formatting import format_date, format_number
from core.platform.vocab import REPORT_CHARTS as C
from core.platform.vocab import REPORT_FUNNEL_STEPS, ResponseType
from core.reports.figures import Bar, WeekValue

# Vega's d3-format/d3-time-format locale for German.
GERMAN_LOCALE = {
    "number": {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " €"]},
    "time": {
        "dateTime": "%A, der %e. %B %Y, %X", "date": "%d.%m.%Y", "time": "%H:%M:%S",
        "periods": ["AM", "PM"],
        "days": ["Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"],
        "shortDays": ["So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"],
        "months": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                   "November", "Dezember"],
        "shortMonths": ["Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"],
    },
}
# The vocabulary's colour names as hex for Vega.
HEX = {"green": "#2e9e5b", "blue": "#3b7ddd", "red": "#d9534f", "orange": "#f0a030", "violet": "#8e6bd6",
       "gray": "#9aa0a6", "primary": "#ff4b4b"}
HEIGHT = 240


def _finish(chart: alt.Chart, title: str) -> alt.Chart:
    return chart.properties(title=title, height=HEIGHT).configure(locale=GERMAN_LOCALE).configure_axis(
        labelFontSize=11, titleFontSize=12
    )


def week_label(day) -> str:
    return format_date(day)[:6]  # "02.11."


def wait_chart(bars: Sequence[Bar]) -> alt.Chart:
    df = pd.DataFrame({"bin": [b.label for b in bars], "n": [int(b.value) for b in bars],
                       "n_text": [format_number(b.value) for b in bars]})
    chart = alt.Chart(df).mark_bar(color=HEX["blue"]).encode(
        x=alt.X("bin:N", sort=list(df["bin"]), title=C["wait_x"], axis=alt.Axis(labelAngle=0)),
        y=alt.Y("n:Q", title=C["wait_y"], axis=alt.Axis(format=",d", tickMinStep=1)),
        tooltip=[alt.Tooltip("bin:N", title=C["wait_x"]), alt.Tooltip("n_text:N", title=C["wait_y"])],
    )
    return _finish(chart, C["wait_title"])


def placements_chart(weeks: Sequence[WeekValue]) -> alt.Chart:
    df = pd.DataFrame({"week": [week_label(w.week) for w in weeks], "n": [w.value for w in weeks],
                       "n_text": [format_number(w.value) for w in weeks]})
    chart = alt.Chart(df).mark_bar(color=HEX["green"]).encode(
        x=alt.X("week:N", sort=list(df["week"]), title=C["week"], axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("n:Q", title=C["placements_y"], axis=alt.Axis(format=",d", tickMinStep=1)),
        tooltip=[alt.Tooltip("week:N", title=C["week"]), alt.Tooltip("n_text:N", title=C["placements_y"])],
    )
    return _finish(chart, C["placements_title"])


def answers_chart(weeks: Sequence[WeekValue]) -> alt.Chart:
    types = [t for t in ResponseType]
    df = pd.DataFrame({
        "week": [week_label(w.week) for w in weeks],
        "type": [ResponseType(w.series).label for w in weeks],
        "n": [w.value for w in weeks],
        "n_text": [format_number(w.value) for w in weeks],
    })
    order = list(dict.fromkeys(df["week"]))
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("week:N", sort=order, title=C["week"], axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("sum(n):Q", title=C["answers_y"], axis=alt.Axis(format=",d", tickMinStep=1)),
        color=alt.Color("type:N", title=C["answer_type"],
                        scale=alt.Scale(domain=[t.label for t in types], range=[HEX[t.color] for t in types]),
                        legend=alt.Legend(orient="right", labelLimit=200)),
        tooltip=[alt.Tooltip("week:N", title=C["week"]), alt.Tooltip("type:N", title=C["answer_type"]),
                 alt.Tooltip("n_text:N", title=C["answers_y"])],
    )
    return _finish(chart, C["answers_title"])


def funnel_chart(funnel: dict[str, int]) -> alt.Chart:
    steps = list(REPORT_FUNNEL_STEPS)
    top = funnel.get("sent", 0) or 0
    df = pd.DataFrame({
        "step": [REPORT_FUNNEL_STEPS[s] for s in steps],
        "n": [funnel.get(s, 0) for s in steps],
        "label": [
            format_number(funnel.get(s, 0)) + (f" ({format_number(100 * funnel.get(s, 0) / top, 0)} %)" if top else "")
            for s in steps
        ],
    })
    base = alt.Chart(df).encode(
        y=alt.Y("step:N", sort=list(df["step"]), title=C["funnel_step"]),
        x=alt.X("n:Q", title=C["funnel_x"], axis=alt.Axis(format=",d", tickMinStep=1)),
        tooltip=[alt.Tooltip("step:N", title=C["funnel_step"]), alt.Tooltip("label:N", title=C["funnel_x"])],
    )
    chart = base.mark_bar(color=HEX["violet"]) + base.mark_text(align="left", dx=4).encode(text="label:N")
    return chart.properties(title=C["funnel_title"], height=HEIGHT).configure(locale=GERMAN_LOCALE).configure_axis(
        labelFontSize=11, titleFontSize=12
    )
