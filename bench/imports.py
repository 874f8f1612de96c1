"""Import benchmark at Germany scale on PostgreSQL.

Run from the repository root:  python bench/imports.py [--therapists 40000] [--per-file 50]
Writes bench/results/imports.json and prints a table.

Data: 40,000 invented psychotherapists in the current 116117 response format (a week of
dated hours with several types, procedures as {heading, values}, languages, coordinates)
on real PLZ from GeoNames, cut into response files of 50 entries (the site's result cap),
grouped by PLZ like searches around neighbouring centres. A fresh bench_<random> database.

- import_40k_s: all files uploaded together (`core.imports.sources.import_uploads`: hash,
  parse, identity, diff, one run per file) and every proposal accepted
  (`core.imports.review.accept_all`), so that 40,000 therapists exist. Target ≤ 60 s.
  propose_40k_s and accept_40k_s are its two parts.
- reimport_40k_s: the same data saved again (other bytes, so no file-hash shortcut) imported
  once more. Target ≤ 15 s, and it changes nothing: reimport_changes (new + changed +
  delisted proposals) must be 0 and no therapist row may change (checked). Entries equal to
  the ones applied are recognised by their digest and not parsed again.
- *_cpu_s and load_average_1min: the machine may be shared; the CPU seconds of this process
  say what the wall times cost without waiting for a core.

Measured 2026-12-01 on the 2-core development machine shared with other work (load ~4):
import_40k_s 58.4 (cpu 29.4), reimport_40k_s 7.5 (cpu 6.8), reimport_changes 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, fail, print_table, write_results  # noqa: E402
from core.imports import review, sources  # noqa: E402
from core.platform.db import make_engine, session_factory  # noqa: E402
from core.platform.models import Therapist  # noqa: E402
from core.platform.permissions import Actor  # noqa: E402
from core.platform.vocab import Role  # noqa: E402

ACTOR = Actor(user_id=None, username="bench.imports", role=Role.coordinator)
NOW = datetime(2026, 3, 11, 9, 0, tzinfo=timezone.utc)
TARGETS = {"import_40k_s": 60.0, "reimport_40k_s": 15.0}

FIRST = ["Anna", "Jonas", "Lena", "Paul", "Marie", "Felix", "Sophie", "Lukas", "Emma", "Jan", "Mia", "Tim", "Hanna",
         "Ben", "Lea", "Jürgen", "Sören", "Ümit", "Zoë", "Björn", "Katrin", "Stefan", "Ingrid", "Ole", "Greta", "Noah"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
        "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann", "Öztürk"]
STREETS = ["Hauptstraße", "Schulstraße", "Gartenweg", "Bahnhofstraße", "Ringstraße", "Lindenallee", "Am Markt",
           "Kirchplatz", "Bergstraße", "Waldweg", "Königsallee", "Mühlenstraße", "Parkstraße", "Rosenweg"]
PROCEDURES = ["Verhaltenstherapie", "Tiefenpsychologisch fundierte Psychotherapie", "Analytische Psychotherapie", "Systemische Therapie"]


def load_plz(limit: int = 8000) -> list[tuple[str, float, float, str]]:
    seen: dict[str, tuple[str, float, float, str]] = {}
    with open(GEONAMES_PATH, encoding="utf-8") as fh:
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) > 10 and cols[1] not in seen and cols[9] and cols[10]:
                seen[cols[1]] = (cols[1], float(cols[9]), float(cols[10]), cols[2])
    items = sorted(seen.values())
    return items[:: max(1, len(items) // limit)]


def entry(i: int, rng: random.Random, plz: tuple[str, float, float, str], start: date) -> dict:
    code, lat, lon, city = plz
    days = []
    for d in range(7):
        day = start + timedelta(days=d)
        if day.weekday() >= 5:
            days.append({"d": day.isoformat()})
            continue
        h = 7 + (i + d) % 6
        types = [{"typ": "07", "sprechzeiten": [{"z": f"{h:02d}:00 - {h:02d}:50"}]}]
        if (i + d) % 3 == 0:
            types[0]["sprechzeiten"].append({"z": f"{h + 5:02d}:00 - {h + 5:02d}:25"})
        types.append({"typ": "01", "sprechzeiten": [{"z": "09:00 - 13:00"}]})
        days.append({"d": day.isoformat(), "typTsz": types})
    proc = PROCEDURES[i % 4]
    psy = [{"heading": proc, "values": ["Einzeltherapie"] + (["Gruppentherapie"] if i % 5 == 0 else [])}]
    if i % 7 == 0:
        psy.append({"heading": PROCEDURES[(i + 1) % 4], "values": ["Einzeltherapie"]})
    woman = i % 3 != 0
    return {
        "arzt": True, "id": str(i % 50 + 1), "titel": "Dipl.-Psych." if i % 4 == 0 else ("Dr. med." if i % 9 == 0 else ""),
        "vorname": FIRST[i % len(FIRST)], "name": f"{LAST[(i // len(FIRST)) % len(LAST)]}-{i // (len(FIRST) * len(LAST))}",
        "anrede": "Frau" if woman else "Herr", "geschlecht": "F" if woman else "M",
        "strasse": STREETS[i % len(STREETS)], "hausnummer": str(i % 120 + 1) + ("a" if i % 11 == 0 else ""),
        "plz": code, "ort": city, "lat": round(lat + rng.uniform(-0.01, 0.01), 6), "lon": round(lon + rng.uniform(-0.01, 0.01), 6),
        "distance": rng.randint(100, 20000), "tel": f"030 {20000000 + i}", "handy": "",
        "fax": f"030 {30000000 + i}" if i % 2 else "", "email": f"praxis{i}@beispiel.example" if i % 3 else "",
        "web": f"www.praxis{i}.example" if i % 4 else "", "kv": "Berlin", "geoeffnet": "CLOSED", "keineSprechzeiten": False,
        "ag": [{"key": "12", "value": "Psychotherapie"}], "fg": ["Psychologische Psychotherapie"], "psy": psy, "kvg": [],
        "zb": [], "zm": [], "fs": ["Englisch"] if i % 6 == 0 else [], "bf": [], "nteStart": "", "nteEnde": "", "tsz": days,
    }


def make_files(n: int, per_file: int) -> list[dict]:
    rng = random.Random(11)
    plzs = load_plz()
    entries = [entry(i, rng, plzs[i % len(plzs)], date(2026, 3, 11)) for i in range(n)]
    entries.sort(key=lambda e: e["plz"])
    return [{"arztPraxisDatas": entries[i : i + per_file], "moreResults": False} for i in range(0, n, per_file)]


def as_uploads(files: list[dict], *, variant: int) -> list[sources.UploadedFile]:
    # variant 1 is the same data saved again: other indentation, so other bytes and hashes
    return [
        sources.UploadedFile(f"suche-{i:04d}.json", json.dumps(f, ensure_ascii=False, indent=variant or None).encode("utf-8"))
        for i, f in enumerate(files)
    ]


def therapist_fingerprint(session) -> tuple:
    return tuple(session.execute(sa.select(sa.func.count(Therapist.id), sa.func.max(Therapist.updated_at))).one())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--therapists", type=int, default=40_000)
    parser.add_argument("--per-file", type=int, default=50)
    args = parser.parse_args()
    if not GEONAMES_PATH.is_file():
        fail(f"GeoNames file not found: {GEONAMES_PATH}")
    started = time.perf_counter()
    files = make_files(args.therapists, args.per_file)
    first, second = as_uploads(files, variant=0), as_uploads(files, variant=1)
    generate_s = time.perf_counter() - started
    with bench_database() as url:
        engine = make_engine(url)
        make = session_factory(engine)
        try:
            c0 = time.process_time()
            t0 = time.perf_counter()
            with make() as s:
                outcomes, problems = sources.import_uploads(s, ACTOR, first, now=NOW)
                s.commit()
            t1 = time.perf_counter()
            with make() as s:
                summary = review.accept_all(s, ACTOR, now=NOW)
                s.commit()
            t2 = time.perf_counter()
            c2 = time.process_time()
            with make() as s:
                count_after_import, _ = therapist_fingerprint(s)
                s.execute(sa.text("ANALYZE"))
                s.commit()
                before = therapist_fingerprint(s)
            c3 = time.process_time()
            t3 = time.perf_counter()
            with make() as s:
                again, _ = sources.import_uploads(s, ACTOR, second, now=NOW + timedelta(days=7))
                s.commit()
            t4 = time.perf_counter()
            c4 = time.process_time()
            with make() as s:
                after = therapist_fingerprint(s)
        finally:
            engine.dispose()
    failed = [o for o in outcomes + again if o.failed]
    if failed or problems:
        fail(f"unexpected failed runs: {[o.message for o in failed][:3]} {problems[:3]}")
    reimport_changes = sum(o.counts.get("new", 0) + o.counts.get("changed", 0) + o.counts.get("delisted", 0) for o in again)
    figures = {
        "therapists": count_after_import,
        "files": len(files),
        "generate_s": generate_s,
        "propose_40k_s": t1 - t0,
        "accept_40k_s": t2 - t1,
        "import_40k_s": t2 - t0,
        "reimport_40k_s": t4 - t3,
        # CPU seconds of this process (the machine may be shared; wall time includes waiting for a core)
        "import_40k_cpu_s": c2 - c0,
        "reimport_40k_cpu_s": c4 - c3,
        "load_average_1min": os.getloadavg()[0],
        "reimport_changes": reimport_changes,
        "reimport_unchanged": sum(o.counts.get("unchanged", 0) for o in again),
        "reimport_rows_changed": int(before != after),
        "created": summary.created,
    }
    write_results("imports", figures)
    print_table("Importe (116117, PostgreSQL)", [(k, v) for k, v in figures.items()])
    if count_after_import != args.therapists:
        fail(f"{count_after_import} therapists after the import, expected {args.therapists}")
    if reimport_changes or before != after:
        fail("re-importing the same data changed something")
    for name, target in TARGETS.items():
        if args.therapists == 40_000 and figures[name] > target:
            print(f"ZIEL VERFEHLT: {name} = {figures[name]:.1f} s > {target:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
