"""Regional planner and nightly suggestions on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.matching import candidates
from core.matching import contactable as matching_contactable
from core.matching import eligibility
from core.matching import regions
from core.planning import planner
from core.platform.db import make_engine, unit_of_work
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail
from core.platform.permissions import SYSTEM
from core.platform.vocab import EmailState, InquiryOrigin, InquiryStatus
from jobs import matching_jobs
from jobs.spec import JobContext
from tests.support.matching_fixtures import (
    COORD,
    NOW,
    SETTINGS,
    TODAY,
    make_search,
    make_therapist,
    north,
    open_inquiry,
)


def region10():
    return regions.region_by_prefix("10", digits=2)


def _check_plan(s, the_plan):
    seen: dict[int, int] = {}
    for item in the_plan.items:
        assert 1 <= len(item.patients) <= SETTINGS.MAX_INQUIRY_SIZE
        assert len(set(item.search_ids)) == len(item.search_ids)
        waits = [p.waiting_days for p in item.patients]
        assert waits == sorted(waits, reverse=True)  # longest waiting first
        for sid in item.search_ids:
            assert eligibility.ineligibility_reasons(s, item.therapist_id, sid, today=TODAY, settings=SETTINGS) == []
            seen[sid] = seen.get(sid, 0) + 1
    rel = candidates.load_relations(s, search_ids=list(seen))
    for sid, n in seen.items():
        assert n + rel.open_counts.get(sid, 0) <= SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH


def test_plan_caps_searches_prefers_near_and_oldest(db_session):
    s = db_session
    therapists = [make_therapist(s, at=north(2 * k)) for k in range(6)]  # 0, 2, … 10 km north
    old = make_search(s, started_on=date(2025, 1, 1))
    young = [make_search(s, started_on=date(2026, 6, 1) + timedelta(days=k)) for k in range(8)]
    busy = make_search(s, started_on=date(2025, 2, 1))
    for _ in range(3):
        open_inquiry(s, make_therapist(s, plz="80331").id, [busy.id])
    the_plan = planner.plan(s, COORD, region10(), today=TODAY, settings=SETTINGS)
    _check_plan(s, the_plan)
    by_search: dict[int, list[int]] = {}
    for item in the_plan.items:
        for sid in item.search_ids:
            by_search.setdefault(sid, []).append(item.therapist_id)
    # the oldest search goes to the 4 nearest therapists, the busy one to one more only
    assert sorted(by_search[old.id]) == sorted(t.id for t in therapists[:4])
    assert len(by_search[busy.id]) == 1
    assert all(len(by_search.get(y.id, [])) <= 4 for y in young)
    assert the_plan.items[0].patients[0].search_id == old.id
    assert planner.map_link(the_plan.items[0], 2) == "karte?map_region=10"


def test_plan_skips_pending_cooling_and_unreachable_therapists(db_session):
    s = db_session
    pending = make_therapist(s)
    open_inquiry(s, pending.id, [make_search(s, at=north(150)).id])
    make_therapist(s, next_contact_at=TODAY + timedelta(days=2))
    make_therapist(s, email=None, phone=None)  # no way to contact
    ok = make_therapist(s)
    make_search(s)
    the_plan = planner.plan(s, COORD, region10(), today=TODAY, settings=SETTINGS)
    assert [i.therapist_id for i in the_plan.items] == [ok.id]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    ts=st.lists(st.floats(0, 30), min_size=1, max_size=8),
    ss=st.lists(st.tuples(st.floats(0, 30), st.sampled_from([None, 10, 25]), st.integers(0, 4), st.integers(0, 300)), max_size=15),
)
def test_property_plan_never_exceeds_caps(db_session, ts, ss):
    s = db_session
    sp = s.begin_nested()
    try:
        for km in ts:
            make_therapist(s, at=north(km))
        helpers = [make_therapist(s, plz="80331", at=north(300)) for _ in range(4)]
        for km, max_km, n_open, days in ss:
            x = make_search(s, at=north(km), max_distance_km=max_km, started_on=TODAY - timedelta(days=days))
            for h in helpers[:n_open]:
                open_inquiry(s, h.id, [x.id])
        _check_plan(s, planner.plan(s, COORD, region10(), today=TODAY, settings=SETTINGS))
    finally:
        sp.rollback()


def test_germany_plan_matches_region_plans_caps(db_session):
    s = db_session
    make_therapist(s)
    make_therapist(s, plz="20095", at=(53.55, 10.0))
    make_search(s)
    make_search(s, at=(53.56, 10.01), plz="20095")
    the_plan = planner.plan(s, COORD, None, today=TODAY, settings=SETTINGS)
    assert the_plan.inquiries == 2 and the_plan.placements == 2
    _check_plan(s, the_plan)


# =========================================================================== creating, nightly (real commits)


@pytest.fixture
def engine(fresh_db_url):
    eng = make_engine(fresh_db_url)
    yield eng
    eng.dispose()


def test_create_from_plan_in_one_go(engine):
    scope = partial(unit_of_work, engine)
    with scope() as s:
        t1, t2 = make_therapist(s), make_therapist(s, at=north(1))
        xs = [make_search(s, started_on=date(2026, 1, k + 1)) for k in range(3)]
        the_plan = planner.plan(s, COORD, region10(), today=TODAY, settings=SETTINGS)
        items = [(i.therapist_id, i.search_ids) for i in the_plan.items]
        # meanwhile a search is paused: it is left out, the rest is created
        s.get(type(xs[0]), xs[0].id).status = "paused"
    report = planner.create_from_plan(scope, COORD, items, today=TODAY, now=NOW, send=True, plan_region="10", settings=SETTINGS)
    assert len(report.created) == 2 and len(report.sent) == 2 and report.dropped == 2
    with scope() as s:
        rows = s.scalars(select(Inquiry).order_by(Inquiry.id)).all()
        assert {r.origin for r in rows} == {InquiryOrigin.planner} and {r.plan_region for r in rows} == {"10"}
        assert {r.status for r in rows} == {InquiryStatus.queued}
        assert all(xs[0].id not in [m.search_id for m in r.patients] for r in rows)
    again = planner.create_from_plan(scope, COORD, items, today=TODAY, now=NOW, settings=SETTINGS)
    assert again.created == [] and set(again.failed) == {t1.id, t2.id}


def test_nightly_drafts_block_nobody_are_replaced_and_approved(engine):
    scope = partial(unit_of_work, engine)
    with scope() as s:
        t = make_therapist(s)
        hh = make_therapist(s, plz="20095", at=(53.55, 10.0))
        x = make_search(s)
        make_search(s, at=(53.56, 10.01), plz="20095")
    ctx = JobContext(now=NOW, runner_id="test", settings=SETTINGS, session_scope=scope)
    summary = matching_jobs.nightly_plan(ctx)
    assert "2 Anfragen" in summary
    with scope() as s:
        overview = planner.nightly_overview(s, COORD)
        assert [(r.region, r.inquiries, r.patients) for r in overview] == [("10", 1, 1), ("20", 1, 1)]
        # suggestions block nobody: still contactable, the search's cap untouched
        assert t.id in [r.id for r in matching_contactable.contactable_therapists(s, COORD, region10(), today=TODAY).rows]
        assert eligibility.propose_inquiry(s, t.id, today=TODAY, settings=SETTINGS) == [x.id]
    # the next night replaces them
    matching_jobs.nightly_plan(JobContext(now=NOW + timedelta(days=1), runner_id="test", settings=SETTINGS, session_scope=scope))
    with scope() as s:
        assert s.scalar(select(func.count()).select_from(Inquiry)) == 2
        assert s.scalar(select(func.count()).select_from(InquiryPatient)) == 2
    # approval in one click: re-checked and sent
    report = planner.approve_nightly(scope, COORD, "10", today=TODAY, now=NOW, settings=SETTINGS)
    assert len(report.sent) == 1 and not report.failed
    with scope() as s:
        i = s.get(Inquiry, report.sent[0])
        assert i.status == InquiryStatus.queued and i.origin == InquiryOrigin.nightly
        assert s.scalar(select(OutboxEmail.state).where(OutboxEmail.inquiry_id == i.id)) == EmailState.queued
        assert [r.region for r in planner.nightly_overview(s, COORD)] == ["20"]
        # approved ones survive the next night; the rest is replaced
        assert planner.prepare_nightly_drafts(s, today=TODAY, now=NOW, settings=SETTINGS, actor=SYSTEM).inquiries == 1
        assert planner.discard_nightly(s, COORD, "20", today=TODAY, now=NOW) == 1
        assert s.get(Inquiry, i.id).status == InquiryStatus.queued


def test_expiry_job(engine):
    scope = partial(unit_of_work, engine)
    with scope() as s:
        t = make_therapist(s)
        open_inquiry(s, t.id, [make_search(s).id])
    ctx = JobContext(now=NOW + timedelta(days=SETTINGS.INQUIRY_EXPIRY_DAYS), runner_id="t", settings=SETTINGS, session_scope=scope)
    assert matching_jobs.expire(ctx) == "Abgelaufene Anfragen: 1"
    assert matching_jobs.expire(ctx) == "Abgelaufene Anfragen: 0"
    from jobs.registry import JOBS

    assert {"inquiry_expiry", "nightly_plan"} <= {spec.id for spec in JOBS}


def test_point24_plan_asks_the_practice_member_whose_profile_fits(db_session):
    """Two therapists share a practice e-mail: the owner offers VT, the colleague AP; a patient
    wants AP. propose_inquiry offers her for the colleague; the regional plan must too (it
    used to consider only the owner's profile). Still one inquiry per practice."""
    from core.matching import propose_inquiry

    s = db_session
    owner = make_therapist(s, last_name="Albrecht", title="Dr.", email="praxis.gemeinsam@example.org",
                           offers_vt=True, offers_ap=False)
    colleague = make_therapist(s, last_name="Zeller", email="praxis.gemeinsam@example.org",
                               offers_vt=False, offers_ap=True)
    wants_ap = make_search(s, preferred_methods=["AP"], started_on=date(2025, 3, 1))
    wants_vt = make_search(s, preferred_methods=["VT"], started_on=date(2025, 4, 1))
    rows, _, _ = matching_contactable.contactable_all(s, region10(), today=TODAY)
    [row] = [r for r in rows if r.id in (owner.id, colleague.id)]
    assert row.practice_size == 2 and {m.id for m in row.practice_members} == {owner.id, colleague.id}
    assert wants_ap.id in propose_inquiry(s, colleague.id, today=TODAY)

    the_plan = planner.plan(s, COORD, region10(), today=TODAY, settings=SETTINGS)
    items = [it for it in the_plan.items if it.therapist_id in (owner.id, colleague.id)]
    assert len(items) == 1  # one inquiry per practice at a time
    [item] = items
    assert item.therapist_id == colleague.id and item.search_ids == [wants_ap.id]  # the longest waiting, AP
    _check_plan(s, the_plan)
    assert wants_vt.id not in item.search_ids  # the owner would fit her, but the practice is already asked
