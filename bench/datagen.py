"""Data-generation benchmark: Germany-scale demo data on PostgreSQL with the real PLZ file.

Run from the repository root:  python bench/datagen.py [--scale germany|<factor>]
Writes bench/results/datagen.json and prints a table.

- datagen_germany_s: wall time of `demo.data.load_demo_data` + commit at the germany
  preset (40,000 therapists, 100,000 patients, 20,000 active searches and their history)
  into a fresh, migrated bench_<random> PostgreSQL database; the PLZ table is loaded from
  the GeoNames file first (timed separately as plz_load_s, included in the total).
- generate_s / insert_s: the pure-Python generation and the bulk inserts.
- second_load_s: a second load, which must find the marker and add nothing.
- <table>_rows: row counts after the load.

DE.txt comes from BENCH_GEONAMES_PATH, else ../shared/data/geonames/DE.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, fail, print_table, write_results  # noqa: E402
from demo import data as demo_data  # noqa: E402
from core.platform.db import make_engine  # noqa: E402

TODAY = date(2026, 11, 23)  # fixed: the benchmark's data does not depend on the calendar
TARGET_S = 120.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/datagen.py")
    parser.add_argument("--scale", default="germany")
    args = parser.parse_args(argv)
    scale = demo_data.parse_scale(args.scale)
    if not GEONAMES_PATH.is_file():
        fail(f"GeoNames-Datei fehlt: {GEONAMES_PATH} (BENCH_GEONAMES_PATH setzen)")

    with bench_database() as url:
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            with Session(engine) as session:
                result = demo_data.load_demo_data(session, scale=scale, today=TODAY, geonames_path=GEONAMES_PATH)
                t_commit = time.perf_counter()
                session.commit()
                commit_s = time.perf_counter() - t_commit
            total_s = time.perf_counter() - started
            assert result.loaded

            started = time.perf_counter()
            with Session(engine) as session:
                again = demo_data.load_demo_data(session, scale=scale, today=TODAY, geonames_path=GEONAMES_PATH)
                session.commit()
            second_s = time.perf_counter() - started
            if again.loaded:
                fail("zweites Laden hat erneut Daten eingefügt")

            counts: dict[str, int] = {}
            with engine.connect() as conn:
                for table in ["plz_centroids", *[name for name, _ in demo_data.TABLE_ORDER], "users"]:
                    counts[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                active = conn.execute(sa.text("SELECT count(*) FROM searches WHERE status = 'active'")).scalar_one()
                db_bytes = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        finally:
            engine.dispose()

    label = "germany" if scale.name == "germany" else f"scale_{scale.name.replace('.', '_')}"
    figures: dict[str, float | int] = {
        f"datagen_{label}_s": total_s,
        "plz_load_s": result.seconds.get("plz_s", 0.0),
        "generate_s": result.seconds["generate_s"],
        "insert_s": result.seconds["insert_s"],
        "commit_s": commit_s,
        "second_load_s": second_s,
        "active_searches_rows": active,
        "database_mb": db_bytes / 1e6,
        **{f"{table}_rows": n for table, n in counts.items()},
    }
    path = write_results("datagen", figures)
    print_table(
        f"Datengenerator: Größe {scale.name} auf PostgreSQL (Ziel: {f'datagen_{label}_s'} < {TARGET_S:.0f} s)",
        list(figures.items()),
    )
    print(f"-> {path.relative_to(ROOT)}")
    return 0 if total_s < TARGET_S or scale.name != "germany" else 1


if __name__ == "__main__":
    raise SystemExit(main())
