"""Map benchmark: the Karte page for a region with 2,000 therapists, rendered in AppTest.

Run from the repository root:  python bench/map.py
- map_region_render_s: median time of the page run that draws region "10" with 2,000
  therapists and 300 active searches (target <= 1.5 s), on PostgreSQL (own bench_ database).
- map_patient_render_s: the same page in patient mode (rings + nearest-therapist table).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench._common import bench_database, print_table, write_results  # noqa: E402
from core.platform import users  # noqa: E402
from core.platform.config import get_settings  # noqa: E402
from core.platform.db import get_engine, unit_of_work  # noqa: E402
from core.platform.models import Patient, Search, Therapist  # noqa: E402
from core.platform.permissions import SYSTEM  # noqa: E402
from core.platform.vocab import Role  # noqa: E402

THERAPISTS = 2000
SEARCHES = 300
RUNS = 5


def seed(url: str) -> None:
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    with unit_of_work(get_engine(url)) as s:
        users.create_user(s, SYSTEM, username="bench", display_name="Bench", role=Role.coordinator, password="Bench-Passwort-1", now=now)
        s.execute(
            insert(Therapist),
            [
                dict(
                    first_name=f"Vorname{i}", last_name=f"Name{i}", salutation="frau", gender="female",
                    plz=f"10{rng.randint(100, 999)}", city="Berlin", lat=52.52 + rng.uniform(-0.15, 0.15),
                    lon=13.40 + rng.uniform(-0.25, 0.25), coordinates_source="arztsuche", offers_vt=rng.random() < 0.7,
                    offers_tp=rng.random() < 0.5, phone_hours="Mo 09:00-10:00; Mi 12:00-13:00",
                    status=rng.choice(["active"] * 8 + ["blocked", "inactive"]),
                    next_contact_at=date(2026, 12, 24) if rng.random() < 0.2 else None,
                    created_at=now, updated_at=now,
                )
                for i in range(THERAPISTS)
            ],
        )
        for i in range(SEARCHES):
            p = Patient(first_name="P", last_name=f"Bench{i}", plz=f"10{rng.randint(100, 999)}", lat=52.52 + rng.uniform(-0.15, 0.15),
                        lon=13.40 + rng.uniform(-0.25, 0.25), max_distance_km=20)
            s.add(p)
            s.flush()
            s.add(Search(patient_id=p.id, started_on=date(2026, 1, 1)))


def main() -> None:
    from streamlit.testing.v1 import AppTest

    with bench_database() as url:
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        seed(url)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.run()
        at.text_input(key="login_username").input("bench")
        at.text_input(key="login_password").input("Bench-Passwort-1")
        at.button[0].click()
        at.run()
        at.switch_page("pages/map.py").run()
        at.segmented_control(key="map_mode").set_value("Region").run()
        at.text_input(key="map_region").input("10")
        region = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            at.run()
            region.append(time.perf_counter() - t0)
            assert not at.exception, at.exception
        n_points = len(__import__("json").loads(at.get("deck_gl_json_chart")[0].proto.json)["layers"][0]["data"])
        at.segmented_control(key="map_mode").set_value("Patient:in").run()
        at.text_input(key="map_patient_query").input("Bench1")
        patient = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            at.run()
            patient.append(time.perf_counter() - t0)
            assert not at.exception, at.exception
    figures = {
        "map_region_render_s": statistics.median(region),
        "map_patient_render_s": statistics.median(patient),
        "map_region_points": n_points,
    }
    print_table(
        "Karte (AppTest, PostgreSQL)",
        [("Region 10: 2.000 Therapeut:innen, Median", f"{figures['map_region_render_s']:.3f} s (Ziel ≤ 1,5 s)"),
         ("Patient:in mit Ringen, Median", f"{figures['map_patient_render_s']:.3f} s"),
         ("Punkte in der Region-Ebene", n_points)],
    )
    write_results("map", figures)


if __name__ == "__main__":
    main()
