"""Portable SQL pieces for the reports: day arithmetic, Berlin calendar days, weeks, medians.

The figures of Übersicht are computed in the database on SQLite and PostgreSQL alike. The
two dialects differ in date arithmetic and time zones, so each construct here compiles to
the right SQL per dialect (SQLAlchemy `@compiles`):

- `days_between(later, earlier)`: whole days between two DATE values.
- `berlin_date(ts)`: the Europe/Berlin calendar day of a stored UTC timestamp. PostgreSQL
  converts with its time-zone database; SQLite has none, so the EU summer-time rule
  (since 1996: from the last Sunday of March 01:00 UTC to the last Sunday of October
  01:00 UTC, +2 h, otherwise +1 h) is written out in SQL.
- `week_start(day)`: the Monday of a DATE's ISO week.
- `plus_days(ts, n)`: a timestamp n days later.
- `median(x)`: the median aggregate (NULLs ignored, so `median(CASE WHEN cond THEN v END)`
  gives the median of a subset, and several medians come from one scan). PostgreSQL:
  `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)`; SQLite has no ordered-set aggregates,
  so every SQLite connection gets the aggregate function `tp_median` (core.platform.db
  registers it on connect: a few lines of Python that SQLite runs inside the query).
"""

from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class days_between(FunctionElement):
    """later - earlier in whole days (both DATE)."""

    type = sa.Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "postgresql")
def _days_between_pg(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"(CAST({compiler.process(later, **kw)} AS DATE) - CAST({compiler.process(earlier, **kw)} AS DATE))"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return (
        f"CAST(ROUND(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)})) AS INTEGER)"
    )


class berlin_date(FunctionElement):
    """The Europe/Berlin calendar day of a UTC timestamp, as DATE (text 'YYYY-MM-DD' on SQLite)."""

    type = sa.Date()
    inherit_cache = True
    name = "berlin_date"


@compiles(berlin_date, "postgresql")
def _berlin_date_pg(element, compiler, **kw):
    (ts,) = list(element.clauses)
    return f"CAST(({compiler.process(ts, **kw)} AT TIME ZONE 'Europe/Berlin') AS DATE)"


def _sqlite_berlin_offset(ts_sql: str) -> str:
    year = f"strftime('%Y', {ts_sql})"
    start = f"datetime(date({year} || '-03-25', 'weekday 0'), '+1 hours')"
    end = f"datetime(date({year} || '-10-25', 'weekday 0'), '+1 hours')"
    return f"(CASE WHEN {ts_sql} >= {start} AND {ts_sql} < {end} THEN '+2 hours' ELSE '+1 hours' END)"


@compiles(berlin_date, "sqlite")
def _berlin_date_sqlite(element, compiler, **kw):
    (ts,) = list(element.clauses)
    ts_sql = compiler.process(ts, **kw)
    return f"date({ts_sql}, {_sqlite_berlin_offset(ts_sql)})"


class week_start(FunctionElement):
    """The Monday of the week of a DATE."""

    type = sa.Date()
    inherit_cache = True
    name = "week_start"


@compiles(week_start, "postgresql")
def _week_start_pg(element, compiler, **kw):
    (day,) = list(element.clauses)
    return f"CAST(date_trunc('week', CAST({compiler.process(day, **kw)} AS DATE)) AS DATE)"


@compiles(week_start, "sqlite")
def _week_start_sqlite(element, compiler, **kw):
    (day,) = list(element.clauses)
    return f"date({compiler.process(day, **kw)}, 'weekday 0', '-6 days')"


class plus_days(FunctionElement):
    """A timestamp plus n days (n a Python int)."""

    type = sa.DateTime()
    inherit_cache = True
    name = "plus_days"


@compiles(plus_days, "postgresql")
def _plus_days_pg(element, compiler, **kw):
    ts, n = list(element.clauses)
    return f"({compiler.process(ts, **kw)} + make_interval(days => CAST({compiler.process(n, **kw)} AS INTEGER)))"


@compiles(plus_days, "sqlite")
def _plus_days_sqlite(element, compiler, **kw):
    ts, n = list(element.clauses)
    # same text form as stored timestamps ('YYYY-MM-DD HH:MM:SS.SSS'), so comparisons stay textual
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(ts, **kw)}, '+' || {compiler.process(n, **kw)} || ' days')"


def date_param(value, name: Optional[str] = None) -> ColumnElement:
    """A DATE literal that both dialects compare and subtract correctly."""
    return sa.literal(value, sa.Date())


class median(FunctionElement):
    """Median aggregate of a numeric expression (NULLs ignored); NULL when there is none."""

    type = sa.Float()
    inherit_cache = True
    name = "median"


@compiles(median, "postgresql")
def _median_pg(element, compiler, **kw):
    (x,) = list(element.clauses)
    return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {compiler.process(x, **kw)})"


@compiles(median, "sqlite")
def _median_sqlite(element, compiler, **kw):
    (x,) = list(element.clauses)
    return f"tp_median({compiler.process(x, **kw)})"


def no_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation for this transaction's report queries.

    Their cost estimates (scans with subplans over the history) cross jit_above_cost, and
    compiling then takes longer than the query itself (measured: 0.3 s of 0.7 s). SET LOCAL
    ends with the transaction, so it is safe behind a transaction-pooling PgBouncer too."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL jit = off"))
