"""Registry benchmark: therapist and patient lists at Germany scale on PostgreSQL.

Run from the repository root:  python bench/registry.py [--scale germany|<factor>]
Writes bench/results/registry.json and prints a table.

Data: `demo.data.load_demo_data` at the germany preset (40,000 therapists, 100,000
patients, 20,000 active searches with history) into a fresh bench_<random> PostgreSQL
database with the GeoNames PLZ table, then ANALYZE (as autovacuum would).

- therapist_page_ms_p50 / _p95: `core.therapists.list_therapists` for one filtered, sorted
  page (50 rows) – PLZ prefix (rotating over the 2-digit regions with most therapists) +
  method (rotating VT, TP, AP, ST, VT|TP), sorted by name, count included. Target ≤ 150 ms.
- therapist_deep_page_ms_p50: the same on page 40 (offset 1,950) of an unfiltered list.
- patient_page_ms_p50: `core.patients.list_patients`, PLZ prefix + search state active,
  sorted by waiting time (the join with each patient's current search included).
- therapists_page_render_s: median full run of pages/therapists.py in AppTest (login done,
  filter PLZ prefix + method set, a therapist's detail open). Target ≤ 2 s.
- therapists_page_first_render_s / patients_page_render_s: the first run after switching
  to the page, and the patients page with a patient's detail open.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, fail, print_table, summarise_ms, write_results  # noqa: E402
from demo import data as demo_data
from core.registry import patients
from core.registry import therapists
from core.platform import users  # noqa: E402
from core.platform.config import get_settings  # noqa: E402
from core.platform.db import make_engine  # noqa: E402
from core.registry.patients import PatientFilter  # noqa: E402
from core.platform.permissions import SYSTEM, Actor  # noqa: E402
from core.registry.therapists import TherapistFilter  # noqa: E402
from core.platform.vocab import Role  # noqa: E402

TODAY = date(2026, 11, 23)
QUERY_RUNS = 60
RENDER_RUNS = 7
TARGET_PAGE_MS = 150.0
TARGET_RENDER_S = 2.0
BENCH_USER = ("bench.registry", "Bench-Passwort-1")
METHOD_SETS = [("VT",), ("TP",), ("AP",), ("ST",), ("VT", "TP")]


def load(url: str, scale: demo_data.Scale) -> float:
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with Session(engine) as session:
            demo_data.load_demo_data(session, scale=scale, today=TODAY, geonames_path=GEONAMES_PATH)
            users.create_user(
                session, SYSTEM, username=BENCH_USER[0], display_name="Bench", role=Role.coordinator,
                password=BENCH_USER[1], now=datetime.now(timezone.utc),
            )
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def top_prefixes(session: Session, n: int = 8) -> list[str]:
    rows = session.execute(
        sa.text("SELECT substr(plz, 1, 2) AS p, count(*) AS c FROM therapists WHERE plz IS NOT NULL GROUP BY p ORDER BY c DESC LIMIT :n"),
        {"n": n},
    ).all()
    return [r.p for r in rows]


def query_figures(url: str) -> dict[str, float]:
    engine = make_engine(url)
    actor = Actor(None, "bench", Role.coordinator)
    figures: dict[str, float] = {}
    try:
        with Session(engine) as s:
            prefixes = top_prefixes(s)
            sizes = []
            samples = []
            for i in range(QUERY_RUNS + 5):
                flt = TherapistFilter(plz_prefix=prefixes[i % len(prefixes)], methods=METHOD_SETS[i % len(METHOD_SETS)], sort="name")
                t0 = time.perf_counter()
                rows, total = therapists.list_therapists(s, actor, flt, today=TODAY, limit=50)
                elapsed = (time.perf_counter() - t0) * 1000
                if i >= 5:  # warm-up
                    samples.append(elapsed)
                    sizes.append(total)
                assert len(rows) == min(50, total)
            t = summarise_ms(samples)
            figures["therapist_page_ms_p50"] = t["p50"]
            figures["therapist_page_ms_p95"] = t["p95"]
            figures["therapist_filter_rows_median"] = float(statistics.median(sizes))

            deep = []
            for i in range(25):
                t0 = time.perf_counter()
                therapists.list_therapists(s, actor, TherapistFilter(sort="plz"), today=TODAY, offset=1950, limit=50)
                deep.append((time.perf_counter() - t0) * 1000)
            figures["therapist_deep_page_ms_p50"] = summarise_ms(deep[3:])["p50"]

            pat = []
            for i in range(QUERY_RUNS + 5):
                flt = PatientFilter(plz_prefix=prefixes[i % len(prefixes)], search_states=("active",), sort="waiting")
                t0 = time.perf_counter()
                rows, total = patients.list_patients(s, actor, flt, today=TODAY, limit=50)
                if i >= 5:
                    pat.append((time.perf_counter() - t0) * 1000)
            figures["patient_page_ms_p50"] = summarise_ms(pat)["p50"]
            figures["patient_page_ms_p95"] = summarise_ms(pat)["p95"]
            figures["therapists_total"] = float(s.scalar(sa.text("SELECT count(*) FROM therapists")))
            figures["patients_total"] = float(s.scalar(sa.text("SELECT count(*) FROM patients")))
            figures["_prefix"] = prefixes[0]  # type: ignore[assignment]
    finally:
        engine.dispose()
    return figures


def render_figures(url: str, prefix: str) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="login_username").input(BENCH_USER[0])
    at.text_input(key="login_password").input(BENCH_USER[1])
    at.button[0].click()
    at.run()
    if at.exception:
        fail(f"Anmeldung fehlgeschlagen: {at.exception}")

    t0 = time.perf_counter()
    at.switch_page("pages/therapists.py").run()
    first = time.perf_counter() - t0
    at.text_input(key="th_plz").input(prefix)
    at.multiselect(key="th_methods").select("VT")
    at.run()
    at.session_state["therapists_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    runs = []
    for _ in range(RENDER_RUNS):
        t0 = time.perf_counter()
        at.run()
        runs.append(time.perf_counter() - t0)
        if at.exception:
            fail(f"Seite Therapeut:innen: {at.exception}")
    if not at.subheader:
        fail("Detailansicht wurde nicht gezeigt")

    at.switch_page("pages/patients.py").run()
    at.text_input(key="pat_plz").input(prefix)
    at.run()
    at.session_state["patients_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    pruns = []
    for _ in range(RENDER_RUNS):
        t0 = time.perf_counter()
        at.run()
        pruns.append(time.perf_counter() - t0)
        if at.exception:
            fail(f"Seite Patient:innen: {at.exception}")
    return {
        "therapists_page_render_s": statistics.median(runs),
        "therapists_page_first_render_s": first,
        "patients_page_render_s": statistics.median(pruns),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/registry.py")
    parser.add_argument("--scale", default="germany")
    args = parser.parse_args(argv)
    scale = demo_data.parse_scale(args.scale)
    if not GEONAMES_PATH.is_file():
        fail(f"GeoNames-Datei fehlt: {GEONAMES_PATH} (BENCH_GEONAMES_PATH setzen)")
    with bench_database() as url:
        load_s = load(url, scale)
        figures = query_figures(url)
        prefix = str(figures.pop("_prefix"))
        figures.update(render_figures(url, prefix))
    figures["data_load_s"] = load_s
    ok_page = figures["therapist_page_ms_p50"] <= TARGET_PAGE_MS
    ok_render = figures["therapists_page_render_s"] <= TARGET_RENDER_S
    print_table(
        f"Register (PostgreSQL, {int(figures['therapists_total']):,} Therapeut:innen, {int(figures['patients_total']):,} Patient:innen)",
        [
            ("Therapeut:innen-Seite (PLZ + Verfahren), p50", f"{figures['therapist_page_ms_p50']:.1f} ms (Ziel ≤ {TARGET_PAGE_MS:.0f} ms)"),
            ("  p95", f"{figures['therapist_page_ms_p95']:.1f} ms"),
            ("  Treffer je Filter (Median)", int(figures["therapist_filter_rows_median"])),
            ("Therapeut:innen Seite 40 ohne Filter, p50", f"{figures['therapist_deep_page_ms_p50']:.1f} ms"),
            ("Patient:innen-Seite (PLZ + aktiv, nach Wartezeit), p50", f"{figures['patient_page_ms_p50']:.1f} ms"),
            ("Seite Therapeut:innen in AppTest, Median", f"{figures['therapists_page_render_s']:.3f} s (Ziel ≤ {TARGET_RENDER_S:.0f} s)"),
            ("  erster Aufruf", f"{figures['therapists_page_first_render_s']:.3f} s"),
            ("Seite Patient:innen in AppTest, Median", f"{figures['patients_page_render_s']:.3f} s"),
            ("Daten laden (germany) + ANALYZE", f"{load_s:.1f} s"),
        ],
    )
    write_results("registry", figures)
    if not (ok_page and ok_render):
        print("FEHLER: Ziel verfehlt", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
