"""Übersicht's key figures and chart data on a small data set whose every value is computed
by hand below (both databases), including the previous period and the Berlin calendar.

Today is Monday 23.11.2026. The 4-week period is 27.10.–23.11.2026, the previous one
29.09.–26.10.2026 (its end instant: 27.10. 00:00 Berlin = 26.10. 23:00 UTC).
Region 10 holds everything except one patient and one practice in region 20.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from core.platform.models import Inquiry, InquiryPatient, Search
from core.reports import cache as report_cache
from core.reports.figures import Filters, charts, key_figures
from core.reports.overview import cached_home_view, home_view
from core.reports.periods import Period, PeriodError, period_for
from core.reports.sql import berlin_date, days_between, week_start, date_param
from core.reports.todos import todos
from tests.support.matching_fixtures import COORD, SETTINGS, VIEWER, make_search, make_therapist

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def utc(y, m, d, hh=9, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=timezone.utc)


def _search(session, started_on, *, status="active", plz="10115", **fields) -> Search:
    s = make_search(session, started_on=started_on, status="active" if status == "successful" else status, plz=plz)
    for k, v in {**fields, "status": status}.items():
        setattr(s, k, v)
    session.flush()
    return s


def _inquiry(session, therapist, members, *, status, sent_at, answered_at=None, expired_at=None, response_type=None,
             channel="email"):
    inq = Inquiry(therapist_id=therapist.id, channel=channel, status=status, origin="manual", size=len(members),
                  sent_at=sent_at, answered_at=answered_at, expired_at=expired_at, response_type=response_type)
    inq.patients = [
        InquiryPatient(search_id=s.id, position=i, outcome=outcome, outcome_at=at)
        for i, (s, outcome, at) in enumerate(members, start=1)
    ]
    session.add(inq)
    session.flush()
    return inq


@pytest.fixture
def world(db_session):
    s = db_session
    tA = make_therapist(s)  # answered/expired inquiries only: contactable
    tB = make_therapist(s, next_contact_at=date(2026, 12, 10))  # cooling
    tC = make_therapist(s)  # has an open inquiry
    tD = make_therapist(s, next_contact_at=date(2026, 11, 17))  # cooling is over
    make_therapist(s, status="blocked")
    make_therapist(s, email=None, phone=None)  # no way to reach
    tHH = make_therapist(s, plz="20095")

    s1 = _search(s, date(2026, 11, 13))
    s2 = _search(s, date(2026, 10, 4))
    s3 = _search(s, date(2026, 8, 15))
    s4 = _search(s, date(2026, 9, 1), status="paused", paused_on=date(2026, 11, 1))
    s5 = _search(s, date(2026, 9, 10), status="successful", placed_therapist_id=tB.id, placed_on=date(2026, 11, 12),
                 success_on=date(2026, 11, 20), ended_on=date(2026, 11, 20))
    _search(s, date(2026, 7, 1), status="cancelled", ended_on=date(2026, 10, 10))
    s7 = _search(s, date(2026, 8, 1), status="successful", placed_therapist_id=tD.id, placed_on=date(2026, 10, 20),
                 success_on=date(2026, 10, 25), ended_on=date(2026, 10, 25))
    s8 = _search(s, date(2026, 11, 20), placed_therapist_id=tC.id, placed_on=date(2026, 11, 22))
    s9 = _search(s, date(2026, 11, 1), plz="20095")

    # i1: answered 3 days after sending, at 00:30 Berlin on Monday 02.11. (still Sunday in UTC)
    _inquiry(s, tA, [(s2, "rejected_capacity", utc(2026, 11, 1, 23, 30))], status="answered",
             sent_at=utc(2026, 10, 29, 10), answered_at=utc(2026, 11, 1, 23, 30), response_type="all_rejected")
    # i2: answered after 9 days; s5 accepted (and later placed there), s3 unsuitable
    _inquiry(s, tB, [(s5, "accepted", utc(2026, 11, 12)), (s3, "rejected_unsuitable", utc(2026, 11, 12))],
             status="answered", sent_at=utc(2026, 11, 3, 8), answered_at=utc(2026, 11, 12), response_type="partly_accepted")
    # i3: awaiting (sent 3 days ago: its 7 days are not over)
    _inquiry(s, tC, [(s1, "pending", None)], status="sent", sent_at=utc(2026, 11, 20))
    # i4: previous period, expired in this one
    _inquiry(s, tA, [(s3, "no_response", utc(2026, 10, 31))], status="expired", sent_at=utc(2026, 10, 10),
             expired_at=utc(2026, 10, 31), response_type="no_response")
    # i5: previous period, accepted within 5 days
    _inquiry(s, tD, [(s7, "accepted", utc(2026, 10, 20))], status="answered", sent_at=utc(2026, 10, 15),
             answered_at=utc(2026, 10, 20), response_type="all_accepted")
    # i6: sent in the previous period, answered in this one after 10 days
    _inquiry(s, tA, [(s4, "rejected_other", utc(2026, 10, 30))], status="answered", sent_at=utc(2026, 10, 20),
             answered_at=utc(2026, 10, 30), response_type="all_rejected")
    # i7: region 20, unanswered for 13 days
    _inquiry(s, tHH, [(s9, "pending", None)], status="sent", sent_at=utc(2026, 11, 10))
    # a draft (an open inquiry of tC, with s2)
    _inquiry(s, tC, [(s2, "pending", None)], status="draft", sent_at=None)
    return {"s2": s2, "s3": s3}


def region10():
    return Filters(period_for("4w", today=TODAY), "10")


def test_period_rules():
    p = period_for("4w", today=TODAY)
    assert (p.start, p.end) == (date(2026, 10, 27), TODAY)
    assert p.previous() == Period(date(2026, 9, 29), date(2026, 10, 26))
    assert p.weeks() == [date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]
    assert p.previous().bounds_utc()[1] == utc(2026, 10, 26, 23, 0)  # after the switch to CET
    assert period_for("quarter", today=TODAY).days == 91
    assert period_for("custom", today=TODAY, start=date(2026, 1, 1), end=date(2026, 3, 31)).days == 90
    with pytest.raises(PeriodError, match="vor dem Beginn"):
        period_for("custom", today=TODAY, start=date(2026, 3, 1), end=date(2026, 2, 1))


def test_key_figures_with_previous_period(db_session, world):
    figs = {f.key: f for f in key_figures(db_session, region10(), today=TODAY, now=NOW)}
    # active today: s1 (10 days), s2 (50), s3 (100), s8 (3); on 26.10.: s2 (22), s3 (72), s4 (55, paused later), s5 (46)
    assert (figs["active_searches"].value, figs["active_searches"].previous) == (4, 4)
    assert figs["active_searches"].change == 0
    assert (figs["median_wait_days"].value, figs["median_wait_days"].previous) == (30, 50.5)
    assert figs["median_wait_days"].change == -20.5
    # placements: s5 (63 days) and s8 (2 days) now; s7 (80 days) before
    assert (figs["placements"].value, figs["placements"].previous) == (2, 1)
    assert (figs["median_days_to_placement"].value, figs["median_days_to_placement"].previous) == (32.5, 80)
    # awaiting: i3 now; i4 and i6 at 27.10. 00:00 Berlin
    assert (figs["inquiries_awaiting"].value, figs["inquiries_awaiting"].previous) == (1, 2)
    # 7-day answers: i1 yes, i2 no (i3 too young) -> 1/2; before: i5 yes, i4 and i6 no -> 1/3
    assert figs["answer_rate_7d"].value == pytest.approx(0.5)
    assert figs["answer_rate_7d"].previous == pytest.approx(1 / 3)
    # per-patient answers: s2 rej, s5 acc, s3 rej, s4 rej (no_response doesn't count) -> 1/4; before: s7 acc -> 1/1
    assert (figs["acceptance_rate"].value, figs["acceptance_rate"].previous) == (0.25, 1.0)
    # contactable: tA (nothing open) and tD (cooling over); not tB (cooling), tC (open), blocked, unreachable
    assert figs["contactable_now"].value == 2
    assert figs["contactable_now"].change is None and not figs["contactable_now"].comparable


def test_region_filter_and_all_of_germany(db_session, world):
    everywhere = Filters(period_for("4w", today=TODAY), None)
    figs = {f.key: f for f in key_figures(db_session, everywhere, today=TODAY, now=NOW)}
    assert figs["active_searches"].value == 5  # + s9 (22 days)
    assert figs["median_wait_days"].value == 22
    assert figs["inquiries_awaiting"].value == 2  # + i7
    assert figs["answer_rate_7d"].value == pytest.approx(1 / 3)  # + i7 (sent 10.11., unanswered)
    assert figs["contactable_now"].value == 2  # tHH has an open inquiry
    regions = charts(db_session, everywhere).regions
    assert [(r.region, r.placements, r.active, r.median_wait_days) for r in regions] == [
        ("10", 2, 4, 30.0), ("20", 0, 1, 22.0),
    ]
    only_20 = Filters(period_for("4w", today=TODAY), "20")
    assert [(r.region, r.active) for r in charts(db_session, only_20).regions] == [("20", 1)]


def test_chart_data(db_session, world):
    c = charts(db_session, region10())
    assert [(b.label, b.value) for b in c.wait] == [
        ("unter 4 Wochen", 2), ("4–8 Wochen", 1), ("8–13 Wochen", 0), ("3–6 Monate", 1), ("6–12 Monate", 0), ("über 1 Jahr", 0),
    ]
    assert [(w.week, w.value) for w in c.placements] == [
        (date(2026, 10, 26), 0), (date(2026, 11, 2), 0), (date(2026, 11, 9), 1), (date(2026, 11, 16), 1), (date(2026, 11, 23), 0),
    ]
    answers = {(w.week, w.series): w.value for w in c.answers if w.value}
    assert answers == {
        (date(2026, 10, 26), "no_response"): 1,  # i4 expired 31.10.
        (date(2026, 10, 26), "all_rejected"): 1,  # i6 30.10.
        (date(2026, 11, 2), "all_rejected"): 1,  # i1: Monday in Berlin, Sunday in UTC
        (date(2026, 11, 9), "partly_accepted"): 1,  # i2
    }
    assert len(c.answers) == 5 * 4  # every week and type present, zeros included
    assert c.funnel == {"sent": 3, "answered": 2, "accepted": 1, "successful": 1}  # i1, i2, i3; i2 led to s5's success


def test_previous_period_chart_data(db_session, world):
    previous = Filters(period_for("4w", today=TODAY).previous(), "10")
    c = charts(db_session, previous)
    assert sum(w.value for w in c.placements) == 1  # s7
    assert c.funnel == {"sent": 3, "answered": 2, "accepted": 1, "successful": 1}  # i4, i5, i6; i5 led to s7


def test_todos(db_session, world):
    items = {t.key: t for t in todos(db_session, COORD, today=TODAY, now=NOW, settings=SETTINGS)}
    assert items["follow_up_due"].count == 1  # i7, sent 13 days ago
    assert items["follow_up_due"].target.params["mt_filter"] == "follow_up"
    assert items["inquiry_drafts"].count == 1
    waiting = items["searches_without_inquiry"]
    # s2 and s3 have no pending place in an open inquiry (s2's draft is not sent, but a draft is open)
    assert [w.search_id for w in waiting.searches] == [world["s3"].id]
    assert waiting.searches[0].wait_days == 100
    assert "conflicts" not in items and "emails_failed" not in items  # nothing to do: left out, not zero
    assert all(t.count > 0 for t in items.values())


def test_home_view_and_cache(db_session, world):
    report_cache.REPORTS.clear()
    flt = region10()
    first = cached_home_view(db_session, COORD, flt, today=TODAY, now=NOW, settings=SETTINGS)
    hits = report_cache.REPORTS.hits
    again = cached_home_view(db_session, COORD, flt, today=TODAY, now=NOW, settings=SETTINGS)
    assert again is first and report_cache.REPORTS.hits == hits + 1
    make_search(db_session, started_on=date(2026, 11, 22))  # new data: a new version, recomputed
    fresh = cached_home_view(db_session, COORD, flt, today=TODAY, now=NOW, settings=SETTINGS)
    assert fresh is not first
    assert {f.key: f.value for f in fresh.figures}["active_searches"] == 5
    assert home_view(db_session, VIEWER, flt, today=TODAY, now=NOW, settings=SETTINGS).figures == fresh.figures
    report_cache.REPORTS.clear()


def test_cache_ttl():
    clock = [0.0]
    c = report_cache.TTLCache(ttl=60, clock=lambda: clock[0])
    c.put("k", 1)
    assert c.get("k") == (True, 1)
    clock[0] = 61
    assert c.get("k") == (False, None)


def test_sql_helpers_on_berlin_calendar(db_session):
    from sqlalchemy import select, literal, DateTime

    def one(expr):
        return db_session.execute(select(expr)).scalar_one()

    def as_date(v):
        return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])

    ts = lambda v: literal(v, DateTime(timezone=True)) if db_session.get_bind().dialect.name == "postgresql" else literal(
        v.replace(tzinfo=None).isoformat(sep=" "))
    assert as_date(one(berlin_date(ts(utc(2026, 3, 29, 0, 30))))) == date(2026, 3, 29)  # CET +1
    assert as_date(one(berlin_date(ts(utc(2026, 3, 29, 22, 30))))) == date(2026, 3, 30)  # CEST +2
    assert as_date(one(berlin_date(ts(utc(2026, 10, 25, 22, 30))))) == date(2026, 10, 25)  # CET again
    assert as_date(one(berlin_date(ts(utc(2026, 7, 1, 21, 59))))) == date(2026, 7, 1)
    assert as_date(one(berlin_date(ts(utc(2026, 7, 1, 22, 0))))) == date(2026, 7, 2)
    assert as_date(one(week_start(date_param(date(2026, 11, 22))))) == date(2026, 11, 16)
    assert as_date(one(week_start(date_param(date(2026, 11, 23))))) == date(2026, 11, 23)
    assert one(days_between(date_param(date(2026, 11, 23)), date_param(date(2026, 3, 1)))) == 267


def test_demo_data_fills_every_chart_and_figure(db_session):
    from demo.data import DEMO, load_demo_data

    load_demo_data(db_session, scale=DEMO, today=TODAY, geonames_path=None)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    flt = Filters(period_for("4w", today=TODAY), None)
    figs = key_figures(db_session, flt, today=TODAY, now=now)
    assert all(f.value is not None and (f.previous is not None or not f.comparable) for f in figs), figs
    c = charts(db_session, flt)
    assert sum(b.value for b in c.wait) > 0
    assert sum(w.value for w in c.placements) >= 3 and sum(1 for w in c.placements if w.value) >= 2  # spread over weeks
    assert len({w.series for w in c.answers if w.value}) >= 3  # several kinds of answers
    assert c.funnel["sent"] > c.funnel["answered"] > 0
    assert len(c.regions) >= 3
    quarter = charts(db_session, Filters(period_for("quarter", today=TODAY), None))
    assert quarter.funnel["successful"] > 0
    assert sum(1 for w in quarter.placements if w.value) >= 6


def test_inbox_todos(db_session, world):
    from core.platform.models import InboxMessage

    i3 = db_session.query(Inquiry).filter(Inquiry.status == "sent").order_by(Inquiry.sent_at.desc()).first()
    db_session.add_all([
        InboxMessage(sha256="a" * 64, received_at=NOW, kind="reply", state="assigned", match="subject",
                     inquiry_id=i3.id, subject="Re: Anfrage"),
        InboxMessage(sha256="b" * 64, received_at=NOW, kind="other", state="new", match="none", subject="Hallo"),
    ])
    db_session.flush()
    items = {t.key: t for t in todos(db_session, COORD, today=TODAY, now=NOW, settings=SETTINGS)}
    assert items["answers_to_record"].count == 1 and items["answers_to_record"].target.page == "inbox"
    assert items["answers_to_record"].urgent
    assert items["inbox_unassigned"].count == 1


def test_data_version_ignores_reads_and_logins(db_session):
    from core.platform import audit

    before = report_cache.data_version(db_session)
    audit.record(db_session, COORD, "read.patient", "patient", 1, None, now=NOW)
    audit.record(db_session, COORD, "login.ok", "user", 1, None, now=NOW)
    db_session.flush()
    assert report_cache.data_version(db_session) == before
    audit.record(db_session, COORD, "search.pause", "search", 1, None, now=NOW)
    db_session.flush()
    assert report_cache.data_version(db_session) != before


def test_call_todos(db_session, world):
    from core.platform.models import PhoneCall

    t = make_therapist(db_session)
    for start, state in ((utc(2026, 11, 20, 9), "scheduled"),  # overdue (Friday)
                         (utc(2026, 11, 23, 7, 0), "scheduled"),  # 08:00 Berlin today, before now: today's, not overdue
                         (utc(2026, 11, 23, 14, 0), "scheduled"),  # later today
                         (utc(2026, 11, 23, 8, 0), "done"),  # made
                         (utc(2026, 11, 23, 23, 30), "scheduled")):  # 00:30 Berlin tomorrow
        db_session.add(PhoneCall(therapist_id=t.id, purpose="follow_up", scheduled_start=start, state=state))
    db_session.flush()
    items = {x.key: x for x in todos(db_session, COORD, today=TODAY, now=NOW, settings=SETTINGS)}
    assert items["calls_overdue"].count == 1 and items["calls_overdue"].urgent
    assert items["calls_today"].count == 2
    assert items["calls_today"].target.page == "calls"
    assert [x.key for x in todos(db_session, COORD, today=TODAY, now=NOW, settings=SETTINGS)][0] == "calls_overdue"


def test_runner_health_warnings_and_error_visibility(db_session):
    from core.platform.models import JobRun, RunnerHeartbeat
    from core.platform.permissions import Actor
    from core.platform.vocab import Role
    from core.reports.overview import runner_health

    admin = Actor(None, "a", Role.admin)
    never = runner_health(db_session, COORD, now=NOW)
    assert not never.alive and any("noch nie gelaufen" in w for w in never.warnings)
    assert {j.summary for j in never.jobs} == {"noch nie gelaufen"}  # every job listed, none ran
    db_session.add(RunnerHeartbeat(runner_id="r", hostname="h", pid=1, is_leader=True, started_at=NOW,
                                   beat_at=NOW - timedelta(seconds=20)))
    db_session.add(JobRun(job_name="outbox_delivery", runner_id="r", started_at=NOW - timedelta(minutes=1),
                          finished_at=NOW - timedelta(minutes=1), result="error", error="SMTPError: 421 später\nTraceback"))
    db_session.flush()
    ok = runner_health(db_session, COORD, now=NOW)
    assert ok.alive and ok.warnings == ["Letzter Lauf fehlgeschlagen: E-Mail-Versand (Postausgang). Die Administration sieht die Fehlermeldung."]
    assert all(j.error is None for j in ok.jobs)
    assert [j.error for j in runner_health(db_session, admin, now=NOW).jobs if j.error] == ["SMTPError: 421 später"]
    stale = runner_health(db_session, COORD, now=NOW + timedelta(minutes=3))
    assert not stale.alive and any("Letztes Lebenszeichen" in w for w in stale.warnings)


def test_import_review_todo_for_editors_only(db_session, world):
    from core.platform.models import ImportChange, ImportRun

    run = ImportRun(source="arztsuche", content_hash="c" * 64, status="done", started_at=NOW)
    db_session.add(run)
    db_session.flush()
    db_session.add_all([
        ImportChange(run_id=run.id, kind="new", review_state="pending", fields={}),
        ImportChange(run_id=run.id, kind="changed", review_state="pending", fields={}),
        ImportChange(run_id=run.id, kind="changed", review_state="applied", fields={}),
    ])
    db_session.flush()
    items = {t.key: t for t in todos(db_session, COORD, today=TODAY, now=NOW, settings=SETTINGS)}
    assert items["import_changes"].count == 2 and items["import_changes"].target.page == "imports"
    assert "import_changes" not in {t.key for t in todos(db_session, VIEWER, today=TODAY, now=NOW, settings=SETTINGS)}
