"""A working day under load (issue 15.6): coordinators working at once through the core
services and the dashboard's pages (AppTest), with the real job runner beside them, on
PostgreSQL.

Run from the repository root:  python bench/load.py [--minutes 10] [--coordinators 10] [--scale 0.05]
Writes bench/results/load.json and prints a table.

- <service>_ms_p50 / _p95 / _count for every service call the simulated coordinators make;
- refused: actions the domain refused with a German message (a patient taken meanwhile, a
  practice already asked …) – normal when ten people share one region;
- errors: anything else (a deadlock, an unexpected exception, a broken invariant). Must be 0.
- Actions per round: patient search (the search box and the patient list's name filter),
  registry lists, the region's contactable therapists, propose, create and send, record an
  answer, the Anrufliste (the day's calls, then a result: reached with the answer, not
  reached, busy, callback), now and then a 116117 upload with a few changed therapists and
  its review (accept all of the run), and every n-th round a page in AppTest (Übersicht,
  Anrufliste, Vermittlung, Importe in turn).
- Lost updates: every answer the bench saw succeed is remembered per inquiry; a second
  successful answer of the same inquiry (a last writer overwriting a newer answer) is an
  error, and the stored outcomes must be the ones of the one accepted answer.
- After the run the invariants are checked (for inquiries of the run; unapproved nightly drafts
  do not count, as in core.matching.regions.open_inquiry_clause): at most
  MAX_OPEN_INQUIRIES_PER_SEARCH open inquiries per search, one open inquiry per practice, no search placed twice, every
  acceptance of the run placed its search exactly once, every answered inquiry has all
  outcomes set, no call left scheduled for a closed inquiry, no therapist created twice by
  the imports, every import change decided at most once.
"""

from __future__ import annotations

import argparse
import collections
import json
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
from core.calls import services as call_services  # noqa: E402
from core.calls import views as call_views  # noqa: E402
from core.imports import review as import_review  # noqa: E402
from core.imports import sources as import_sources  # noqa: E402
from core.inquiries import answers, lifecycle  # noqa: E402
from core.inquiries import views as inquiry_views  # noqa: E402
from core.mail import views as outbox_views  # noqa: E402
from core.matching import contactable, eligibility, regions  # noqa: E402
from core.platform import users  # noqa: E402
from core.platform.config import Settings  # noqa: E402
from core.platform.db import make_engine, read_session, run_unit_of_work, unit_of_work  # noqa: E402
from core.platform.permissions import SYSTEM, Actor, PermissionDenied  # noqa: E402
from core.platform.vocab import Outcome, Role  # noqa: E402
from core.platform.vocab import CallResult  # noqa: E402
from core.registry import patients, therapists  # noqa: E402
from core.reports import lookup  # noqa: E402
from demo import data as demo_data  # noqa: E402

SETTINGS = Settings()
DOMAIN_ERRORS: tuple[type[BaseException], ...] = (ValueError, PermissionDenied)  # German refusals
PASSWORD = "Last-Test-Passwort-2026"
IMPORT_FIXTURE = ROOT / "tests" / "fixtures" / "arztsuche" / "current_2026.json"
# Pages rendered in AppTest, in turn (path relative to app.py; None: Übersicht after login).
APPTEST_PAGES = (None, "pages/calls.py", "pages/matching.py", "pages/imports.py")
NAMES = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann")


class Answers:
    """Answers the bench saw succeed, per inquiry: the lost-update check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_inquiry: dict[int, dict[int, str]] = {}
        self.twice: list[int] = []

    def saw(self, inquiry_id: int, outcomes: dict[int, Outcome]) -> None:
        with self.lock:
            if inquiry_id in self.by_inquiry:
                self.twice.append(inquiry_id)
            self.by_inquiry[inquiry_id] = {int(k): Outcome(v).value for k, v in outcomes.items()}


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


def coordinator(engine, actor: Actor, region_prefixes: list[str], rec: Recorder, until: float, seed: int, apptest_every: int,
                answered: Answers, import_every: int = 5):
    rng = random.Random(seed)
    n = 0
    while time.monotonic() < until:
        n += 1
        now = datetime.now(timezone.utc)
        today = now.date()
        prefix = rng.choice(region_prefixes)
        region = regions.region_by_prefix(prefix, digits=2)
        name = rng.choice(NAMES)
        with read_session(engine) as s:
            rec.timed("search_box", lambda: lookup.find(s, actor, name))
            rec.timed("list_patients_by_name", lambda: patients.list_patients(
                s, actor, patients.PatientFilter(name=name), today=today, limit=50))
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
                    # as the Vermittlung page saves it: a lost deadlock race is retried (core.platform.db)
                    report = run_unit_of_work(lambda s: answers.record_answer(
                        s, actor, target.id, outcomes, today=today, now=now, settings=SETTINGS), engine)
                    answered.saw(target.id, outcomes)  # committed
                    return report
                if outcomes:
                    rec.timed("record_answer", answer)
        calls_round(engine, actor, rec, rng, answered, now=now, today=today)
        if import_every and n % import_every == seed % import_every:
            import_round(engine, actor, rec, rng, now=now)
        with read_session(engine) as s:
            rec.timed("outbox_list", lambda: outbox_views.list_emails(s, actor, tab="queued", now=now, limit=50))
        if apptest_every and n % apptest_every == 0:
            page = APPTEST_PAGES[(n // apptest_every + seed) % len(APPTEST_PAGES)]
            label = "home" if page is None else Path(page).stem
            rec.timed(f"page_{label}_apptest", lambda: _render_page(actor, page))


def calls_round(engine, actor: Actor, rec: Recorder, rng: random.Random, answered: Answers, *, now: datetime, today: date):
    """The Anrufliste: the day's calls (and overdue ones), then one open call's result."""
    with read_session(engine) as s:
        day = rec.timed("calls_day", lambda: call_views.day_calls(s, actor, today, today=today, settings=SETTINGS))
        overdue = rec.timed("calls_overdue", lambda: call_views.overdue_calls(s, actor, now=now, today=today, settings=SETTINGS)) or []
        rec.timed("calls_reachable_now", lambda: call_views.reachable_now(s, actor, now=now, settings=SETTINGS))
    open_calls = [c for c in ((day.rows if day else []) + overdue) if c.is_open]
    if not open_calls:
        # nothing due today: the next days of the list, as a coordinator would page forward
        with read_session(engine) as s:
            for ahead in range(1, 8):
                later = rec.timed("calls_day", lambda: call_views.day_calls(
                    s, actor, today + timedelta(days=ahead), today=today, settings=SETTINGS))
                open_calls = [c for c in (later.rows if later else []) if c.is_open]
                if open_calls:
                    break
    if not open_calls:
        return
    call = rng.choice(open_calls)
    result = rng.choice([CallResult.reached, CallResult.reached, CallResult.not_reached, CallResult.busy, CallResult.callback])
    outcomes: dict[int, Outcome] = {}
    if result == CallResult.reached and call.inquiry_id is not None:
        with read_session(engine) as s:
            members = rec.timed("call_answer_members", lambda: call_views.answer_members(s, actor, call.id, today=today)) or []
        outcomes = {m.search_id: rng.choice([Outcome.accepted, Outcome.rejected_capacity, Outcome.rejected_other])
                    for m in members}
    callback_at = now + timedelta(days=1, hours=rng.randint(0, 6)) if result == CallResult.callback else None

    def record():
        # with the retry the Anrufliste's dialog uses
        report = run_unit_of_work(lambda s: call_services.record_call_result(
            s, actor, call.id, result, now=now, today=today, outcomes=outcomes or None, callback_at=callback_at,
            settings=SETTINGS, note="Lasttest",
        ), engine)
        if report.answer is not None:
            answered.saw(call.inquiry_id, outcomes)  # committed
        return report
    rec.timed(f"call_{result.value}", record)


def import_payload(rng: random.Random) -> bytes:
    """The 116117 response of the test fixtures (Köln) with a few therapists changed: new
    phone numbers, and now and then a new e-mail address."""
    data = json.loads(IMPORT_FIXTURE.read_text(encoding="utf-8"))
    entries = [e for e in data["arztPraxisDatas"] if isinstance(e, dict) and e.get("name")]
    for e in rng.sample(entries, k=min(2, len(entries))):
        e["tel"] = f"0221 {rng.randint(1000000, 9999999)}"
        if rng.random() < 0.3:
            e["email"] = f"praxis{rng.randint(1, 10**6)}@example.org"
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def import_round(engine, actor: Actor, rec: Recorder, rng: random.Random, *, now: datetime):
    """Upload a 116117 file, look at the review queue, accept all changes of the run."""
    raw = import_payload(rng)

    def upload():
        with unit_of_work(engine) as s:
            outcomes, _problems = import_sources.import_uploads(
                s, actor, [import_sources.UploadedFile("arztsuche_koeln.json", raw)], now=now)
        return outcomes

    outcomes = rec.timed("import_upload", upload) or []
    run_ids = [o.run_id for o in outcomes if o.status == "done"]
    if not run_ids:
        return
    with read_session(engine) as s:
        rec.timed("import_review_queue", lambda: import_review.review_queue(s, actor, run_id=run_ids[0]))

    def accept():
        with unit_of_work(engine) as s:
            return import_review.accept_all(s, actor, now=now, run_id=run_ids[0])
    rec.timed("import_accept_all", accept)


# AppTest sets up and tears down Streamlit's process-wide Runtime singleton on every run: two
# renders at once in one process break each other ("Runtime hasn't been created!"). Renders
# therefore take turns; the figure includes the wait (a real server would render them in parallel).
_APPTEST_TURN = threading.Lock()


def _render_page(actor: Actor, page: str | None):
    with _APPTEST_TURN:
        _render_page_alone(actor, page)


def _render_page_alone(actor: Actor, page: str | None):
    from streamlit.testing.v1 import AppTest  # the page test harness, only for this call

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="login_username").input(actor.username)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    if page is not None and not at.exception:
        at.switch_page(page).run()
    if at.exception:
        raise RuntimeError(f"{page or 'Übersicht'}: {at.exception[0].value}")


def invariants(engine, *, since: datetime, answered: Answers | None = None) -> list[str]:
    problems = []
    with engine.connect() as c:
        over = c.execute(sa.text(
            "SELECT ip.search_id, count(*) FROM inquiry_patients ip JOIN inquiries i ON i.id = ip.inquiry_id "
            "WHERE i.status IN ('draft','queued','sent') AND NOT (i.origin = 'nightly' AND i.status = 'draft') "
            "AND ip.withdrawn_at IS NULL AND ip.outcome = 'pending' "
            "GROUP BY ip.search_id HAVING count(*) > :cap AND max(i.created_at) >= :since"),
            {"cap": SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH, "since": since}).all()
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
            "AND t.email IS NOT NULL GROUP BY lower(t.email) HAVING count(*) > 1 AND max(i.created_at) >= :since"),
            {"since": since}).all()
        if practice:
            problems.append(f"{len(practice)} practices with two open inquiries")
        # every acceptance of the run placed its search with that therapist (or is a conflict)
        unplaced = c.execute(sa.text(
            "SELECT ip.search_id FROM inquiry_patients ip JOIN inquiries i ON i.id = ip.inquiry_id "
            "JOIN searches s ON s.id = ip.search_id WHERE ip.outcome = 'accepted' AND ip.conflict = false "
            "AND i.answered_at >= :since AND (s.placed_therapist_id IS NULL OR s.placed_therapist_id <> i.therapist_id)"),
            {"since": since}).all()
        if unplaced:
            problems.append(f"{len(unplaced)} acceptances without their placement")
        half = c.execute(sa.text(
            "SELECT DISTINCT i.id FROM inquiries i JOIN inquiry_patients ip ON ip.inquiry_id = i.id "
            "WHERE i.status = 'answered' AND i.answered_at >= :since AND ip.withdrawn_at IS NULL "
            "AND ip.outcome = 'pending'"), {"since": since}).all()
        if half:
            problems.append(f"{len(half)} answered inquiries with a patient still pending")
        stale_calls = c.execute(sa.text(
            "SELECT pc.id FROM phone_calls pc JOIN inquiries i ON i.id = pc.inquiry_id "
            "WHERE pc.state = 'scheduled' AND i.status IN ('answered','expired','cancelled')")).all()
        if stale_calls:
            problems.append(f"{len(stale_calls)} calls still scheduled for a closed inquiry")
        twin_therapists = c.execute(sa.text(
            "SELECT lower(first_name), lower(last_name), plz, count(*) FROM therapists WHERE external_id IS NOT NULL "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1 AND max(created_at) >= :since"), {"since": since}).all()
        if twin_therapists:
            problems.append(f"{len(twin_therapists)} therapists created twice by the imports")
        applied_twice = c.execute(sa.text(
            "SELECT therapist_id, run_id FROM import_changes WHERE review_state = 'applied' AND kind = 'new' "
            "AND therapist_id IS NOT NULL GROUP BY therapist_id, run_id HAVING count(*) > 1")).all()
        if applied_twice:
            problems.append(f"{len(applied_twice)} import changes applied twice")
        if answered is not None:
            if answered.twice:
                problems.append(f"{len(answered.twice)} inquiries answered twice (a lost update): {answered.twice[:5]}")
            lost = 0
            for inquiry_id, outcomes in answered.by_inquiry.items():
                stored = dict(c.execute(sa.text(
                    "SELECT search_id, outcome FROM inquiry_patients WHERE inquiry_id = :i"), {"i": inquiry_id}).all())
                if any(stored.get(sid) != value for sid, value in outcomes.items()):
                    lost += 1
            if lost:
                problems.append(f"{lost} answers not stored as recorded (lost update)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--coordinators", type=int, default=10)
    ap.add_argument("--scale", default="0.05", help="demo data scale (factor of the germany preset)")
    ap.add_argument("--apptest-every", type=int, default=15, help="every n-th round renders a page in AppTest (0: never)")
    ap.add_argument("--import-every", type=int, default=5, help="every n-th round uploads a 116117 file (0: never)")
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
        answered = Answers()
        run_started = datetime.now(timezone.utc)
        until = time.monotonic() + args.minutes * 60
        threads = [threading.Thread(target=coordinator, args=(engine, a, prefixes, rec, until, 1000 + i, args.apptest_every,
                                                              answered, args.import_every))
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
        problems = invariants(engine, since=run_started, answered=answered)
        job_errors = []
        with engine.connect() as c:
            job_errors = [f"job {name}: {(error or '').splitlines()[0] if error else ''}" for name, error in c.execute(sa.text(
                "SELECT job_name, error FROM job_runs WHERE result = 'error' ORDER BY id LIMIT 5"))]
        engine.dispose()

    figures: dict[str, float | int] = {"wall_s": wall, "coordinators": args.coordinators, "refused": rec.refused,
                                       "failed_job_runs": failed_jobs, "answers_seen": len(answered.by_inquiry)}
    for name, samples in sorted(rec.samples.items()):
        summary = summarise_ms(samples)
        figures[f"{name}_ms_p50"] = summary["p50"]
        figures[f"{name}_ms_p95"] = summary["p95"]
        figures[f"{name}_count"] = len(samples)
    figures["errors"] = len(rec.errors) + len(problems) + failed_jobs
    write_results("load", figures)
    print_table(f"A working day under load ({args.coordinators} coordinators, {args.minutes:g} min, PostgreSQL)",
                list(figures.items()))
    for line in (rec.errors[:5] + problems + job_errors):
        print("FEHLER:", line)
    if rec.errors:  # all of them, for the analysis (bench/results is not in git)
        errors_path = ROOT / "bench" / "results" / "load_errors.txt"
        errors_path.write_text("\n\n".join(rec.errors), encoding="utf-8")
        kinds = collections.Counter(e.strip().splitlines()[-1][:160] for e in rec.errors)
        for kind, count in kinds.most_common(10):
            print(f"  {count} x {kind}")
    return 0 if figures["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
