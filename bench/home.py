"""Übersicht benchmark: every figure and all chart data at Germany scale on PostgreSQL.

Run from the repository root:  python bench/home.py [--scale germany|<factor>]
Writes bench/results/home.json and prints a table.

- home_cold_s: what the page computes on its first load – to-dos, the eight key figures with
  the previous period, the five chart series (core.reports.overview.cached_home_view with an
  empty cache) plus the job runner's live status – for the default filter (last 4 weeks,
  all of Germany). Target <= 1.5 s. Median of 3 runs, each with the report cache cleared.
- home_warm_s: the same call again (a rerun, another user): the data-version probe, a cache
  hit and the live job-runner status. Target <= 0.3 s. Median of 10 runs.
- home_cold_<filter>_s: cold figures for a quarter, a year and a region filter (not targets).
- home_part_<name>_ms: the parts of a cold run, for finding the slow one.

`--database-url URL` measures an existing database that already holds the data (a second
load finds the demo marker and adds nothing; nothing is dropped).

The data: demo.data at the germany preset (40,000 therapists, 100,000 patients, 20,000
active searches with their history) in a fresh bench_<random> database, with the real
GeoNames PLZ file when present (else the built-in city list).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import Session  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, print_table, write_results  # noqa: E402
from core.platform.config import Settings  # noqa: E402
from core.platform.db import make_engine  # noqa: E402
from core.platform.permissions import Actor  # noqa: E402
from core.platform.vocab import Role  # noqa: E402
from core.reports import cache as report_cache  # noqa: E402
from core.reports import figures, todos  # noqa: E402
from core.reports.overview import cached_home_view, runner_health  # noqa: E402
from core.reports.periods import period_for  # noqa: E402
from core.reports.sql import no_jit  # noqa: E402
from demo import data as demo_data  # noqa: E402

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
COLD_TARGET_S = 1.5
WARM_TARGET_S = 0.3
COORD = Actor(user_id=None, username="bench", role=Role.coordinator)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/home.py")
    parser.add_argument("--scale", default="germany")
    parser.add_argument("--database-url", default=None,
                        help="an existing database that already holds the data (not loaded, not dropped)")
    args = parser.parse_args(argv)
    scale = demo_data.parse_scale(args.scale)
    settings = Settings()
    geonames = GEONAMES_PATH if GEONAMES_PATH.is_file() else None

    with (nullcontext(args.database_url) if args.database_url else bench_database()) as url:
        engine = make_engine(url)
        try:
            t0 = time.perf_counter()
            with Session(engine) as s:
                loaded = demo_data.load_demo_data(s, scale=scale, today=TODAY, geonames_path=geonames)
                s.commit()
            load_s = time.perf_counter() - t0
            with engine.connect() as conn:
                counts = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                          for t in ("searches", "inquiries", "inquiry_patients")}
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()

            default = figures.Filters(period_for("4w", today=TODAY), None)

            def page_load(flt: figures.Filters) -> None:
                with Session(engine) as s:
                    cached_home_view(s, COORD, flt, today=TODAY, now=NOW, settings=settings)
                    runner_health(s, COORD, now=NOW)

            def cold(flt: figures.Filters) -> float:
                report_cache.REPORTS.clear()
                return _timed(lambda: page_load(flt))

            cold(default)  # first contact: connection pool, statement compilation
            cold_runs = [cold(default) for _ in range(3)]
            warm_runs = [_timed(lambda: page_load(default)) for _ in range(10)]
            others = {
                "quarter": figures.Filters(period_for("quarter", today=TODAY), None),
                "year": figures.Filters(period_for("year", today=TODAY), None),
                "region_10": figures.Filters(period_for("4w", today=TODAY), "10"),
            }
            other_s = {name: cold(flt) for name, flt in others.items()}

            parts: dict[str, float] = {}
            with Session(engine) as s:
                no_jit(s)  # as home_view does
                p = default.period
                parts["todos"] = _timed(lambda: todos.todos(s, COORD, today=TODAY, now=NOW, settings=settings))
                parts["key_figures"] = _timed(lambda: figures.key_figures(s, default, today=TODAY, now=NOW))
                parts["wait"] = _timed(lambda: figures.wait_distribution(s, p.end))
                parts["placements"] = _timed(lambda: figures.placements_per_week(s, p))
                parts["answers"] = _timed(lambda: figures.answers_per_week(s, p))
                parts["funnel"] = _timed(lambda: figures.funnel(s, p))
                parts["regions"] = _timed(lambda: figures.per_region(s, p))
                parts["runner"] = _timed(lambda: runner_health(s, COORD, now=NOW))
                parts["data_version"] = _timed(lambda: report_cache.data_version(s))
        finally:
            engine.dispose()

    results: dict[str, float | int] = {
        "home_cold_s": statistics.median(cold_runs),
        "home_warm_s": statistics.median(warm_runs),
        **{f"home_cold_{k}_s": v for k, v in other_s.items()},
        **{f"home_part_{k}_ms": v * 1000 for k, v in parts.items()},
        "data_load_s": load_s,
        **{f"{t}_rows": n for t, n in counts.items()},
    }
    print_table(f"Übersicht (Größe {scale.name}, PostgreSQL)", list(results.items()))
    write_results("home", results)
    ok = results["home_cold_s"] <= COLD_TARGET_S and results["home_warm_s"] <= WARM_TARGET_S
    print(("OK" if ok else "ZIEL VERFEHLT") + f": kalt ≤ {COLD_TARGET_S} s, warm ≤ {WARM_TARGET_S} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
