"""A working day under load (issue 15.6): coordinators working at once through the core
services and the dashboard's pages (AppTest), with the real job runner beside them, on
PostgreSQL.

Run from the repository root:  python bench/load.py [--minutes 10] [--coordinators 10] [--scale 0.05]
Writes bench/results/load.json and prints a table.

- <service>_ms_p50 / _p95 / _count for every service call the simulated coordinators make;
- refused: actions the domain refused with a German message (a patient taken meanwhile, a
  practice already asked …) – normal when ten people share one region;
- errors: anything else (a deadlock, an unexpected exception, a broken invariant). Must be 0.
- After the run the invariants are checked: at most MAX_OPEN_INQUIRIES_PER_SEARCH open
  inquiries per search, one open inquiry per practice, no search placed twice.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench._common import GEONAMES_PATH, bench_database, print_table, summarise_ms, write_results  # noqa: E402
from core.inquiries import answers, lifecycle  # noqa: E402
from core.inquiries import views as inquiry_views  # noqa: E402
from core.mail import views as outbox_views  # noqa: E402
from core.matching import contactable, eligibility, regions  # noqa: E402
from core.platform import users  # noqa: E402
from core.platform.config import Settings  # noqa: E402
from core.platform.db import make_engine, read_session, unit_of_work  # noqa: E402
from core.platform.permissions import SYSTEM, Actor, PermissionDenied  # noqa: E402
from core.platform.vocab import Outcome, Role  # noqa: E402
from core.registry import patients, therapists  # noqa: E402
from demo import data as demo_data  # noqa: E402

SETTINGS = Settings()
DOMAIN_ERRORS: tuple[type[BaseException], ...] = (ValueError, PermissionDenied)  # German refusals
PASSWORD = "Last-Test-Passwort-2026"


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = collections.defaultdict(list)
        self.refused = 0
        self.errors: list[str] = []

    def timed(self, name: str, fn):
        started = time.perf_counter()
        try:
            return fn()
        except DOMAIN_ERRORS:
            with self.lock:
                self.refused += 1
            return None
        except Exception:  # noqa: BLE001 - every unexpected failure is a finding
            with self.lock:
                self.errors.append(f"{name}: {traceback.format_exc(limit=3)}")
            return None
        finally:
            with self.lock:
                self.samples[name].append((time.perf_counter() - started) * 1000.0)


def coordinator(engine, actor: Actor, region_prefixes: list[str], rec: Recorder, until: float, seed: int, apptest_every: int):
    rng = random.Random(seed)
    n = 0
    while time.monotonic() < until:
        n += 1
        now = datetime.now(timezone.utc)
        today = now.date()
        prefix = rng.choice(region_prefixes)
        region = regions.region_by_prefix(prefix, digits=2)
        with read_session(engine) as s:
            rec.timed("list_patients", lambda: patients.list_patients(s, actor, today=today, limit=50))
            rec.timed("list_therapists", lambda: therapists.list_therapists(s, actor, therapists.TherapistFilter(plz_prefix=prefix), today=today, limit=50))
            page = rec.timed("contactable", lambda: contactable.contactable_therapists(s, actor, region, today=today, limit=20))
        if page and page.rows:
            tid = rng.choice(page.rows).id
            with read_session(engine) as s:
                ids = rec.timed("propose", lambda: eligibility.propose_inquiry(s, tid, today=today, settings=SETTINGS)) or []
            if ids:
                def create_and_send():
                    with unit_of_work(engine) as s:
                        inq = lifecycle.create_inquiry(s, actor, tid, ids[:3], today=today, now=now, settings=SETTINGS)
                        lifecycle.send_inquiry(s, actor, inq.id, today=today, now=now, settings=SETTINGS)
                        return inq.id
                rec.timed("create_and_send", create_and_send)
        # answer one of the sent inquiries of this region
        with read_session(engine) as s:
            rows, _ = rec.timed("list_inquiries", lambda: inquiry_views.list_inquiries(s, actor, filter_key="awaiting", now=now, limit=20, settings=SETTINGS)) or ([], 0)
        if rows:
            target = rng.choice(rows)
            with read_session(engine) as s:
                detail = rec.timed("inquiry_detail", lambda: inquiry_views.inquiry_detail(s, actor, target.id, today=today, now=now, settings=SETTINGS))
            if detail is not None and detail.can_answer:
                outcomes = {m.search_id: rng.choice([Outcome.accepted, Outcome.rejected_capacity, Outcome.rejected_other])
                            for m in detail.members if m.withdrawn_at is None}

                def answer():
                    with unit_of_work(engine) as s:
                        return answers.record_answer(s, actor, target.id, outcomes, today=today, now=now, settings=SETTINGS)
                if outcomes:
                    rec.timed("record_answer", answer)
        with read_session(engine) as s:
            rec.timed("outbox_list", lambda: outbox_views.list_emails(s, actor, tab="queued", now=now, limit=50))
        if apptest_every and n % apptest_every == 0:
            rec.timed("page_home_apptest", lambda: _render_home(actor))


def _render_home(actor: Actor):
    from streamlit.testing.v1 import AppTest  # the page test harness, only for this call

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="login_username").input(actor.username)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    if at.exception:
        raise RuntimeError(f"Übersicht: {at.exception[0].value}")


def invariants(engine) -> list[str]:
    problems = []
    with engine.connect() as c:
        over = c.execute(sa.text(
            "SELECT ip.search_id, count(*) FROM inquiry_patients ip JOIN inquiries i ON i.id = ip.inquiry_id "
            "WHERE i.status IN ('draft','queued','sent') AND ip.withdrawn_at IS NULL AND ip.outcome = 'pending' "
            "GROUP BY ip.search_id HAVING count(*) > :cap"), {"cap": SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH}).all()
        if over:
            problems.append(f"{len(over)} searches over the open-inquiry cap")
        twice = c.execute(sa.text(
            "SELECT ip.search_id FROM inquiry_patients ip WHERE ip.outcome = 'accepted' AND ip.conflict = false "
            "GROUP BY ip.search_id HAVING count(*) > 1")).all()
        if twice:
            problems.append(f"{len(twice)} searches placed twice")
        practice = c.execute(sa.text(
            "SELECT lower(t.email), count(*) FROM inquiries i JOIN therapists t ON t.id = i.therapist_id "
            "WHERE i.status IN ('draft','queued','sent') AND NOT (i.origin = 'nightly' AND i.status = 'draft') "
            "AND t.email IS NOT NULL GROUP BY lower(t.email) HAVING count(*) > 1")).all()
        if practice:
            problems.append(f"{len(practice)} practices with two open inquiries")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--coordinators", type=int, default=10)
    ap.add_argument("--scale", default="0.05", help="demo data scale (factor of the germany preset)")
    ap.add_argument("--apptest-every", type=int, default=15, help="every n-th round renders Übersicht in AppTest (0: never)")
    args = ap.parse_args(argv)
    today = date.today()
    with bench_database() as url:
        engine = make_engine(url, pool_size=args.coordinators + 5, max_overflow=10)
        with Session(engine) as s:
            demo_data.load_demo_data(s, scale=demo_data.parse_scale(args.scale), today=today, geonames_path=GEONAMES_PATH)
            s.commit()
        actors = []
        with unit_of_work(engine) as s:
            for i in range(args.coordinators):
                u = users.create_user(s, SYSTEM, username=f"last.koord{i}", display_name=f"Koordination {i}",
                                      role=Role.coordinator, password=PASSWORD, now=datetime.now(timezone.utc))
                actors.append(Actor(u.id, u.username, Role.coordinator, u.display_name))
            prefixes = [r[0] for r in s.execute(sa.text(
                "SELECT substr(plz,1,2) p FROM therapists WHERE status='active' GROUP BY p ORDER BY count(*) DESC LIMIT 3"))]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("ANALYZE"))
        os.environ["DATABASE_URL"] = url  # for the AppTest pages
        tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
        env = dict(os.environ, DATABASE_URL=url, JOBS_INTERVAL_SECONDS="10", HEARTBEAT_SECONDS="5",
                   JOB_LOCK_PATH=str(tmp / "jobs.lock"), SMTP_MODE="folder", MAIL_FOLDER=str(tmp / "mail"))
        runner = subprocess.Popen([sys.executable, "-m", "jobs"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(tmp / "jobs.log", "w"))  # noqa: SIM115
        rec = Recorder()
        until = time.monotonic() + args.minutes * 60
        threads = [threading.Thread(target=coordinator, args=(engine, a, prefixes, rec, until, 1000 + i, args.apptest_every))
                   for i, a in enumerate(actors)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        runner.terminate()
        runner.wait(timeout=60)
        failed_jobs = 0
        with engine.connect() as c:
            failed_jobs = c.execute(sa.text("SELECT count(*) FROM job_runs WHERE result = 'error'")).scalar_one()
        problems = invariants(engine)
        engine.dispose()

    figures: dict[str, float | int] = {"wall_s": wall, "coordinators": args.coordinators, "refused": rec.refused,
                                       "failed_job_runs": failed_jobs}
    for name, samples in sorted(rec.samples.items()):
        summary = summarise_ms(samples)
        figures[f"{name}_ms_p50"] = summary["p50"]
        figures[f"{name}_ms_p95"] = summary["p95"]
        figures[f"{name}_count"] = len(samples)
    figures["errors"] = len(rec.errors) + len(problems) + failed_jobs
    write_results("load", figures)
    print_table(f"A working day under load ({args.coordinators} coordinators, {args.minutes:g} min, PostgreSQL)",
                list(figures.items()))
    for line in (rec.errors[:5] + problems):
        print("FEHLER:", line)
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
