"""Read auditing cost (issue 15.2): what recording "wer hat was gesehen" adds to opening a
patient's detail, on PostgreSQL with a large audit log.

Run from the repository root:  python bench/privacy.py
- record_read_new_ms_p50/p95: a read not seen in the last 10 minutes (one indexed look-up, one
  INSERT, commit) – the cost of the first open of a patient.
- record_read_repeat_ms_p50/p95: the same person opening the same patient again (look-up only).
- who_saw_ms_p50: the admin's view for one patient.
Target: a few milliseconds, well below a page render.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench._common import bench_database, print_table, summarise_ms, write_results  # noqa: E402
from core.platform.db import make_engine, unit_of_work  # noqa: E402
from core.platform.models import Patient, User  # noqa: E402
from core.platform.permissions import Actor  # noqa: E402
from core.platform.vocab import Role  # noqa: E402
from core.privacy import reads  # noqa: E402

AUDIT_ROWS = 500_000
PATIENTS = 20_000
RUNS = 300


def main() -> int:
    now = datetime.now(timezone.utc)
    with bench_database() as url:
        engine = make_engine(url)
        with unit_of_work(engine) as s:
            u = User(username="bench.admin", display_name="Bench", role=Role.admin, password_hash="x", active=True,
                     created_at=now, updated_at=now)
            s.add(u)
            s.flush()
            admin = Actor(u.id, u.username, Role.admin)
            s.execute(sa.insert(Patient), [{"first_name": "P", "last_name": str(i)} for i in range(PATIENTS)])
        with engine.begin() as c:
            c.execute(sa.text(
                "INSERT INTO audit_entries (at, user_id, actor_name, action, entity, entity_id) "
                "SELECT now() - (g % 10000) * interval '1 minute', :uid, 'bench.admin', "
                "CASE WHEN g % 3 = 0 THEN 'read.patient' ELSE 'patient.update' END, 'patient', 1 + g % :n "
                "FROM generate_series(1, :rows) g"), {"uid": admin.user_id, "n": PATIENTS, "rows": AUDIT_ROWS})
            c.execute(sa.text("ANALYZE"))
        rng = random.Random(7)
        new, repeat, seen = [], [], []
        for i in range(RUNS):
            pid = rng.randrange(1, PATIENTS)
            at = now + timedelta(hours=1, minutes=20 * i)  # always outside the dedup window: a new read
            t = time.perf_counter()
            with unit_of_work(engine) as s:
                assert reads.record_read(s, admin, "patient", pid, now=at)
            new.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            with unit_of_work(engine) as s:
                assert not reads.record_read(s, admin, "patient", pid, now=at + timedelta(minutes=1))
            repeat.append((time.perf_counter() - t) * 1000)
            if i % 10 == 0:
                t = time.perf_counter()
                with unit_of_work(engine) as s:
                    reads.who_saw(s, admin, pid)
                seen.append((time.perf_counter() - t) * 1000)
        engine.dispose()
    figures = {}
    for name, samples in (("record_read_new", new), ("record_read_repeat", repeat), ("who_saw", seen)):
        summary = summarise_ms(samples)
        figures[f"{name}_ms_p50"] = summary["p50"]
        figures[f"{name}_ms_p95"] = summary["p95"]
    figures["audit_rows"] = AUDIT_ROWS
    write_results("privacy", figures)
    print_table("Read auditing on PostgreSQL", list(figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
