"""Shared helpers for benchmarks: timing, results files, a throw-away PostgreSQL database.

Conventions (every bench/<name>.py):
- runs from the repository root (`python bench/<name>.py` or `python -m bench.<name>`),
- prints a readable table,
- writes bench/results/<name>.json: {"figure_name": number, ...}, units in the names
  (`_s`, `_ms`, `_rows` ...), via `write_results`.

PostgreSQL: `bench_database()` creates a database named bench_<random> on the server of
BENCH_PG_ADMIN_URL (default postgres@127.0.0.1:5432, trust), migrates it with Alembic and
drops it afterwards. It never touches any other database.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from core.bootstrap import bootstrap  # noqa: E402

bootstrap()

RESULTS_DIR = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
def _geonames_path() -> Path:
    """BENCH_GEONAMES_PATH, else the shared data folder next to the checkout (or /work/shared)."""
    if os.environ.get("BENCH_GEONAMES_PATH"):
        return Path(os.environ["BENCH_GEONAMES_PATH"])
    candidates = [ROOT.parent / "shared" / "data" / "geonames" / "DE.txt", Path("/work/shared/data/geonames/DE.txt")]
    return next((c for c in candidates if c.is_file()), candidates[0])


GEONAMES_PATH = _geonames_path()
DB_PREFIX = "bench_"


# --------------------------------------------------------------------------- timing


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise_ms(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples_ms, 50),
        "p95": percentile(samples_ms, 95),
        "mean": statistics.fmean(samples_ms),
        "max": max(samples_ms),
    }


def time_ms(fn: Callable[[], object], *, runs: int, warmup: int = 1) -> dict[str, float]:
    """Call `fn` warmup + runs times; p50/p95/mean/max of the timed runs in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000.0)
    return summarise_ms(samples)


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """with stopwatch() as t: ...  then t["s"] is the elapsed seconds."""
    result: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield result
    finally:
        result["s"] = time.perf_counter() - started


# --------------------------------------------------------------------------- results


def write_results(name: str, figures: Mapping[str, float | int]) -> Path:
    """Write bench/results/<name>.json; values must be numbers (units in the names)."""
    clean: dict[str, float | int] = {}
    for key, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"figure {key!r} is not a number: {value!r}")
        clean[key] = round(value, 4) if isinstance(value, float) else value
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def print_table(title: str, rows: Sequence[tuple[str, object]]) -> None:
    width = max((len(k) for k, _ in rows), default=10)
    print(title)
    print("-" * max(len(title), width + 16))
    for key, value in rows:
        if isinstance(value, float):
            shown = f"{value:,.3f}"
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        print(f"  {key:<{width}}  {shown:>12}")
    sys.stdout.flush()


# --------------------------------------------------------------------------- PostgreSQL


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def create_database() -> str:
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    eng = _admin_engine()
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        eng.dispose()
    return name


def drop_database(name: str) -> None:
    if not name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: benchmarks only drop their own bench_* databases")
    eng = _admin_engine()
    try:
        with eng.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        eng.dispose()


@contextmanager
def bench_database(migrated: bool = True) -> Iterator[str]:
    """A fresh bench_<random> PostgreSQL database (URL), migrated, dropped at the end."""
    from core.platform.db import dispose_engines

    name = create_database()
    try:
        url = pg_url(name)
        if migrated:
            migrate(url)
        yield url
    finally:
        dispose_engines()
        drop_database(name)


def fail(message: str, code: int = 1) -> None:
    print(f"FEHLER: {message}", file=sys.stderr)
    raise SystemExit(code)
