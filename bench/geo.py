"""Geography benchmark: one-to-many distances at national scale and the PLZ table load.

Run from the repository root:  python bench/geo.py
Writes bench/results/geo.json ({"figure_name": number}) and prints a table.

- one_to_many_40k_ms_p50: one patient to 40,000 therapists (random, seeded, inside
  Germany's bounding box), `core.geo.distances_km`, median of 200 runs (target <= 10 ms).
- plz_load_pg_s: the GeoNames DE.txt file loaded into a fresh PostgreSQL database that
  the benchmark creates (bench_<random>), migrates and drops (target <= 10 s).
- plz_load_sqlite_s: the same into a temporary SQLite file.

DE.txt is read from BENCH_GEONAMES_PATH, else ../shared/data/geonames/DE.txt.
PostgreSQL is reached through BENCH_PG_ADMIN_URL (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core.geo import distance as geo
from core.geo import plz  # noqa: E402
from core.platform.db import make_engine  # noqa: E402
from bench._common import GEONAMES_PATH  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "geo.json"
GEONAMES = GEONAMES_PATH
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

N_THERAPISTS = 40_000
RUNS = 200
GERMANY_BBOX = {"lat": (47.27, 55.06), "lon": (5.87, 15.04)}


def bench_one_to_many() -> dict[str, float]:
    rng = np.random.default_rng(20261123)
    lats = rng.uniform(*GERMANY_BBOX["lat"], N_THERAPISTS)
    lons = rng.uniform(*GERMANY_BBOX["lon"], N_THERAPISTS)
    lats[rng.choice(N_THERAPISTS, 400, replace=False)] = np.nan  # some therapists without coordinates
    origins = list(zip(rng.uniform(*GERMANY_BBOX["lat"], RUNS), rng.uniform(*GERMANY_BBOX["lon"], RUNS)))
    for origin in origins[:5]:  # warm-up
        geo.distances_km(origin, lats, lons)
    times = []
    for origin in origins:
        started = time.perf_counter()
        d = geo.distances_km(origin, lats, lons)
        times.append((time.perf_counter() - started) * 1000.0)
    assert d.shape == (N_THERAPISTS,) and np.isnan(d).sum() == 400
    return {
        "one_to_many_40k_ms_p50": round(float(np.percentile(times, 50)), 3),
        "one_to_many_40k_ms_p95": round(float(np.percentile(times, 95)), 3),
    }


def _migrate(url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def _timed_load(url: str) -> float:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            started = time.perf_counter()
            summary = plz.load_plz_centroids(session, GEONAMES)
            session.commit()
            seconds = time.perf_counter() - started
        assert summary.plz_count >= 8000, summary
        return round(seconds, 3)
    finally:
        engine.dispose()


def bench_load_sqlite() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench_geo_") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        _migrate(url)
        return {"plz_load_sqlite_s": _timed_load(url)}


def bench_load_pg() -> dict[str, float]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server: report and go on
        print(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}; plz_load_pg_s skipped")
        admin.dispose()
        return {}
    try:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        _migrate(url)
        return {"plz_load_pg_s": _timed_load(url)}
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


TARGETS = {"one_to_many_40k_ms_p50": 10.0, "plz_load_pg_s": 10.0, "plz_load_sqlite_s": 10.0}


def main() -> int:
    figures: dict[str, float] = {}
    figures.update(bench_one_to_many())
    if GEONAMES.is_file():
        figures.update(bench_load_sqlite())
        figures.update(bench_load_pg())
    else:
        print(f"{GEONAMES} not found: PLZ load figures skipped (set BENCH_GEONAMES_PATH)")

    print(f"\n{'figure':<28}{'value':>12}{'target':>10}  ok")
    for name, value in figures.items():
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if value <= target else "NO")
        print(f"{name:<28}{value:>12.3f}{'' if target is None else f'{target:>10.1f}':>10}  {ok}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0 if all(figures[n] <= t for n, t in TARGETS.items() if n in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
