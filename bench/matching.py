"""Matching benchmark at Germany scale on PostgreSQL.

Run from the repository root:  python bench/matching.py [--scale germany|<factor>] [--url URL]
Writes bench/results/matching.json and prints a table.

Data: `demo.data.load_demo_data` at the germany preset (40,000 therapists, 100,000
patients, 20,000 active searches on real PLZ from GeoNames, with history: open and answered
inquiries, exclusions, cooling) into a fresh bench_<random> database, then ANALYZE.
`--url` reuses an existing database with demo data instead (never dropped).

- select_region_ms_p50: `core.matching.contactable_therapists` for the 2-digit region with
  the most active therapists (first page, total counted; practices grouped). Target ≤ 50 ms
  (issue 15.7; it was ~150 ms).
- propose_ms_p50: `core.matching.propose_inquiry` for 60 contactable therapists spread over
  Germany. Target ≤ 20 ms (issue 15.7; it was 30–48 ms).
- plan_region_s: `core.planner.plan` for the largest region. Target ≤ 10 s.
- plan_germany_s: `core.planner.plan` for all of Germany. Target ≤ 15 s (issue 15.7; it was 18–42 s).
- naive_propose_ms_p50: the predecessor's way on the same data for 20 of those therapists
  (every active search checked one by one in Python, distance first, queries per
  candidate, no pre-filter), `core.matching.naive_propose`; speedup_naive_vs_propose is
  naive p50 / propose p50 over the same 20 therapists; naive_agrees_count says for how many
  of the 20 both gave the same proposal.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, fail, print_table, summarise_ms, write_results  # noqa: E402
from demo import data as demo_data
from bench import naive_matching
from core.matching import contactable as matching_contactable
from core.matching import eligibility
from core.matching import regions
from core.planning import planner  # noqa: E402
from core.platform.config import Settings  # noqa: E402
from core.platform.db import make_engine  # noqa: E402
from core.platform.permissions import Actor  # noqa: E402
from core.platform.vocab import Role  # noqa: E402

TODAY = date(2026, 11, 23)
ACTOR = Actor(user_id=None, username="bench.matching", role=Role.coordinator)
SETTINGS = Settings()
TARGETS = {"select_region_ms_p50": 50.0, "propose_ms_p50": 20.0, "plan_region_s": 10.0, "plan_germany_s": 15.0}
REGION_RUNS = 20
PROPOSE_THERAPISTS = 60
NAIVE_THERAPISTS = 20


def load(url: str, scale: demo_data.Scale) -> float:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with Session(engine) as session:
            demo_data.load_demo_data(session, scale=scale, today=TODAY, geonames_path=GEONAMES_PATH)
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def largest_region(session: Session) -> tuple[str, int]:
    row = session.execute(
        sa.text(
            "SELECT substr(plz, 1, 2) AS p, count(*) AS c FROM therapists WHERE status = 'active' AND plz IS NOT NULL "
            "GROUP BY p ORDER BY c DESC, p LIMIT 1"
        )
    ).one()
    return row.p, row.c


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return (time.perf_counter() - started) * 1000.0, value


def measure(url: str) -> dict[str, float | int]:
    engine = make_engine(url)
    figures: dict[str, float | int] = {}
    try:
        with Session(engine) as s:
            prefix, n_region = largest_region(s)
            region = regions.region_by_prefix(prefix, digits=2)
            figures["largest_region_therapists_rows"] = n_region
            figures["active_searches_rows"] = s.scalar(sa.text("SELECT count(*) FROM searches WHERE status = 'active'"))

            matching_contactable.contactable_therapists(s, ACTOR, region, today=TODAY)  # warm-up
            samples = []
            for _ in range(REGION_RUNS):
                ms, page = timed(lambda: matching_contactable.contactable_therapists(s, ACTOR, region, today=TODAY, limit=50))
                samples.append(ms)
            sel = summarise_ms(samples)
            figures["select_region_ms_p50"] = sel["p50"]
            figures["select_region_ms_p95"] = sel["p95"]
            figures["largest_region_contactable_rows"] = page.total

            all_contactable, _, _ = matching_contactable.contactable_all(s, None, today=TODAY)
            located = [c for c in all_contactable if c.lat is not None]
            figures["contactable_germany_rows"] = len(all_contactable)
            rng = random.Random(20261123)
            chosen = rng.sample(located, min(PROPOSE_THERAPISTS, len(located)))
            eligibility.propose_inquiry(s, chosen[0].id, today=TODAY, settings=SETTINGS)  # warm-up
            propose_ms: dict[int, float] = {}
            proposals: dict[int, list[int]] = {}
            for c in chosen:
                ms, value = timed(lambda: eligibility.propose_inquiry(s, c.id, today=TODAY, settings=SETTINGS))
                propose_ms[c.id] = ms
                proposals[c.id] = value
            prop = summarise_ms(list(propose_ms.values()))
            figures["propose_ms_p50"] = prop["p50"]
            figures["propose_ms_p95"] = prop["p95"]
            figures["propose_nonempty_count"] = sum(1 for v in proposals.values() if v)

            naive_ids = [c.id for c in chosen[:NAIVE_THERAPISTS]]
            naive_ms = []
            agree = 0
            for tid in naive_ids:
                s.expunge_all()
                ms, value = timed(lambda: naive_matching.naive_propose(s, tid, today=TODAY, settings=SETTINGS))
                naive_ms.append(ms)
                agree += value == proposals[tid]
            naive = summarise_ms(naive_ms)
            ours = summarise_ms([propose_ms[t] for t in naive_ids])
            figures["naive_propose_ms_p50"] = naive["p50"]
            figures["propose_same_20_ms_p50"] = ours["p50"]
            figures["speedup_naive_vs_propose"] = naive["p50"] / ours["p50"]
            figures["naive_agrees_count"] = agree

            started = time.perf_counter()
            region_plan = planner.plan(s, ACTOR, region, today=TODAY, settings=SETTINGS)
            figures["plan_region_s"] = time.perf_counter() - started
            figures["plan_region_inquiries"] = region_plan.inquiries
            figures["plan_region_placements"] = region_plan.placements

            started = time.perf_counter()
            germany = planner.plan(s, ACTOR, None, today=TODAY, settings=SETTINGS)
            figures["plan_germany_s"] = time.perf_counter() - started
            figures["plan_germany_inquiries"] = germany.inquiries
            figures["plan_germany_placements"] = germany.placements
            figures["plan_germany_searches_planned"] = germany.searches_planned
    finally:
        engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/matching.py")
    parser.add_argument("--scale", default="germany")
    parser.add_argument("--url", help="an existing database with demo data (not dropped)")
    args = parser.parse_args(argv)
    if args.url:
        figures = measure(args.url)
    else:
        if not GEONAMES_PATH.is_file():
            fail(f"GeoNames-Datei fehlt: {GEONAMES_PATH} (BENCH_GEONAMES_PATH setzen)")
        scale = demo_data.parse_scale(args.scale)
        with bench_database() as url:
            load_s = load(url, scale)
            figures = measure(url)
            figures["load_s"] = load_s
    path = write_results("matching", figures)
    print_table("Vermittlung an Deutschland-Größe (PostgreSQL)", list(figures.items()))
    print(f"-> {path.relative_to(ROOT)}")
    missed = [f"{k} = {figures[k]:.3f} (Ziel ≤ {v})" for k, v in TARGETS.items() if figures[k] > v]
    if missed:
        print("Ziel verfehlt: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
