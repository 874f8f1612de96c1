"""Matching services on SQLite and PostgreSQL: the contactable list, one proposal, the
reasons ("Warum nicht?") – every rule on both sides of its boundary – and hypothesis
properties of proposals against the reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.matching import candidates
from core.matching import contactable as matching_contactable
from core.matching import eligibility
from core.matching import proposal_view as matching_proposal_view
from core.matching import regions
from core.platform.models import PatientExclusion, SearchExclusion
from core.platform.permissions import PermissionDenied
from core.platform.vocab import Outcome
from tests.support.matching_fixtures import (
    BASE,
    COORD,
    SETTINGS,
    TODAY,
    VIEWER,
    make_search,
    make_therapist,
    north,
    open_inquiry,
)


def propose(s, tid):
    return eligibility.propose_inquiry(s, tid, today=TODAY, settings=SETTINGS)


def reasons(s, tid, sid):
    return eligibility.ineligibility_reasons(s, tid, sid, today=TODAY, settings=SETTINGS)


def region10():
    return regions.region_by_prefix("10", digits=2)


def contactable_ids(s, region=None, actor=COORD):
    page = matching_contactable.contactable_therapists(s, actor, region or region10(), today=TODAY, limit=500)
    return [r.id for r in page.rows]


# =========================================================================== contactable list


def test_contactable_filters_status_cooling_and_open_inquiries(db_session):
    s = db_session
    ok = make_therapist(s)
    cooling_today = make_therapist(s, next_contact_at=TODAY)  # cooling ends today: contactable
    cooling = make_therapist(s, next_contact_at=TODAY + timedelta(days=1))
    blocked = make_therapist(s, status="blocked")
    pending = make_therapist(s)
    open_inquiry(s, pending.id, [make_search(s).id], status="queued")
    unsent = make_therapist(s)
    open_inquiry(s, unsent.id, [make_search(s).id], status="draft")
    answered = make_therapist(s)
    open_inquiry(s, answered.id, [make_search(s).id], status="answered")
    nightly = make_therapist(s)  # an unapproved nightly suggestion blocks nobody
    open_inquiry(s, nightly.id, [make_search(s).id], status="draft", origin="nightly")
    other_region = make_therapist(s, plz="20095")
    ids = contactable_ids(s)
    assert set(ids) == {ok.id, cooling_today.id, answered.id, nightly.id}
    for hidden in (cooling, blocked, pending, unsent, other_region):
        assert hidden.id not in ids
    page = matching_contactable.contactable_therapists(s, COORD, region10(), today=TODAY)
    assert page.hidden_pending == 2 and page.hidden_cooling == 1


def test_contactable_order_and_paging_without_truncation(db_session):
    s = db_session
    rest = make_therapist(s, last_name="Adler")
    knows = make_therapist(s, last_name="Berg", knows_us=True)
    avail = make_therapist(s, last_name="Zander", potentially_available=True)
    both_no_mail = make_therapist(s, last_name="Arndt", potentially_available=True, knows_us=True, email=None)
    both = make_therapist(s, last_name="Ziegler", potentially_available=True, knows_us=True)
    ids = contactable_ids(s)
    assert ids == [both.id, both_no_mail.id, avail.id, knows.id, rest.id]
    page1 = matching_contactable.contactable_therapists(s, COORD, region10(), today=TODAY, offset=0, limit=2)
    page3 = matching_contactable.contactable_therapists(s, COORD, region10(), today=TODAY, offset=4, limit=2)
    assert page1.total == page3.total == 5
    assert [r.id for r in page1.rows] == ids[:2] and [r.id for r in page3.rows] == ids[4:]


def test_practice_shown_once_and_hidden_while_a_member_is_pending_or_cooling(db_session):
    s = db_session
    owner = make_therapist(s, last_name="Müller", email="Praxis.Mueller@Example.org")
    dr = make_therapist(s, last_name="Schmidt", title="Dr.", email="praxis.mueller@example.org ")
    alone = make_therapist(s, last_name="Solo")
    ids = contactable_ids(s)
    assert owner.id in ids and dr.id not in ids and alone.id in ids
    row = next(r for r in matching_contactable.contactable_therapists(s, COORD, region10(), today=TODAY).rows if r.id == owner.id)
    assert row.practice_size == 2
    # a practice member outside the region with an open inquiry hides the whole practice
    far = make_therapist(s, last_name="Weit", plz="80331", email="praxis.mueller@example.org")
    open_inquiry(s, far.id, [make_search(s).id])
    assert owner.id not in contactable_ids(s)
    # … as does cooling of a member
    far2 = make_therapist(s, last_name="Kühl", email="kuehl@example.org")
    make_therapist(s, last_name="Partner", email="KUEHL@example.org", next_contact_at=TODAY + timedelta(days=3))
    assert far2.id not in contactable_ids(s)


def test_radius_region_and_viewer_sees_no_contact_data(db_session):
    s = db_session
    near = make_therapist(s, at=north(4.9), plz="99999")
    far = make_therapist(s, at=north(5.2))
    region = regions.region_by_radius(BASE, 5)
    page = matching_contactable.contactable_therapists(s, COORD, region, today=TODAY)
    assert [r.id for r in page.rows] == [near.id]
    assert page.rows[0].distance_km == pytest.approx(4.9, abs=1e-3)
    assert page.rows[0].email
    viewer_page = matching_contactable.contactable_therapists(s, VIEWER, region, today=TODAY)
    assert viewer_page.rows[0].email is None and viewer_page.rows[0].phone is None
    assert far.id not in [r.id for r in viewer_page.rows]


def test_bad_region_gives_german_message():
    with pytest.raises(regions.MatchingError, match="PLZ-Region"):
        regions.region_by_prefix("1a")


# =========================================================================== proposal and reasons


def test_proposal_longest_waiting_first_and_size_cap(db_session):
    s = db_session
    t = make_therapist(s)
    searches = [make_search(s, started_on=date(2026, 1, 1) + timedelta(days=10 * i)) for i in range(8)]
    newest_first = list(reversed(searches))
    assert propose(s, t.id) == [x.id for x in searches[:6]]
    assert all(reasons(s, t.id, x.id) == [] for x in newest_first)


@pytest.mark.parametrize("km, ok", [(24.99, True), (25.01, False)])
def test_distance_rule_both_sides(db_session, km, ok):
    s = db_session
    t = make_therapist(s, at=north(km))
    x = make_search(s, max_distance_km=25)
    assert (x.id in propose(s, t.id)) == ok
    assert (reasons(s, t.id, x.id) == []) == ok


def test_default_max_distance_when_patient_gave_none(db_session):
    s = db_session
    t = make_therapist(s, at=north(24.0))
    inside = make_search(s, max_distance_km=None)
    t2 = make_therapist(s, at=north(26.0))
    assert inside.id in propose(s, t.id)
    assert inside.id not in propose(s, t2.id)
    assert any("höchstens 25 km" in r for r in reasons(s, t2.id, inside.id))


def test_unknown_distance_is_ineligible_with_its_own_reason(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s, at=None)
    assert propose(s, t.id) == []
    assert any("Entfernung unbekannt" in r for r in reasons(s, t.id, x.id))
    t2 = make_therapist(s, at=None)
    y = make_search(s)
    assert propose(s, t2.id) == []
    assert any("Entfernung unbekannt" in r for r in reasons(s, t2.id, y.id))


def test_exclusions_and_bad_history(db_session):
    s = db_session
    t = make_therapist(s)
    by_patient = make_search(s)
    by_search = make_search(s)
    unsuitable = make_search(s)
    no_show = make_search(s)
    capacity = make_search(s)
    s.add(PatientExclusion(patient_id=by_patient.patient_id, therapist_id=t.id, reason="Wunsch"))
    s.add(SearchExclusion(search_id=by_search.id, therapist_id=t.id, reason="x", excluded_on=TODAY))
    inq = open_inquiry(s, t.id, [unsuitable.id, no_show.id, capacity.id], status="answered")
    outcomes = {unsuitable.id: Outcome.rejected_unsuitable, no_show.id: Outcome.no_show, capacity.id: Outcome.rejected_capacity}
    for m in inq.patients:
        m.outcome = outcomes[m.search_id]
    s.flush()
    assert propose(s, t.id) == [capacity.id]
    assert any("ausgeschlossen" in r for r in reasons(s, t.id, by_patient.id))
    assert any("Platzsuche ausgeschlossen" in r for r in reasons(s, t.id, by_search.id))
    assert any("nicht geeignet" in r for r in reasons(s, t.id, unsuitable.id))
    assert any("nicht erschienen" in r for r in reasons(s, t.id, no_show.id))
    assert reasons(s, t.id, capacity.id) == []


def test_preferences_both_sides(db_session):
    s = db_session
    t = make_therapist(s, gender="male", patient_gender_preference="female", offers_vt=True, offers_tp=True,
                       offers_individual=False, age_min=18, age_max=65)
    fits = make_search(s, gender="female", preferred_therapist_gender="male", preferred_methods=["TP", "AP"],
                       open_to_group=True, birth_date=date(2008, 11, 23))  # 18 today
    wants_woman = make_search(s, gender="female", preferred_therapist_gender="female", open_to_group=True)
    male_patient = make_search(s, gender="male", open_to_group=True)
    wants_ap = make_search(s, gender="female", preferred_methods=["AP"], open_to_group=True)
    no_group = make_search(s, gender="female", open_to_group=False)
    too_young = make_search(s, gender="female", open_to_group=True, birth_date=date(2008, 11, 24))  # 17
    too_old = make_search(s, gender="female", open_to_group=True, birth_date=date(1960, 11, 22))  # 66
    oldest_ok = make_search(s, gender="female", open_to_group=True, birth_date=date(1961, 11, 24))  # 64→65? 65 on 24.11.
    assert set(propose(s, t.id)) == {fits.id, oldest_ok.id}
    expect = {
        wants_woman.id: "wünscht eine weibliche",
        male_patient.id: "nur weibliche Patient:innen",
        wants_ap.id: "Keine gewünschte Methode",
        no_group.id: "keine Einzeltherapie",
        too_young.id: "Alter 17 Jahre",
        too_old.id: "Alter 66 Jahre",
    }
    for sid, text in expect.items():
        rs = reasons(s, t.id, sid)
        assert len(rs) == 1 and text in rs[0], rs


def test_per_search_cap_and_same_therapist(db_session):
    s = db_session
    t = make_therapist(s)
    at_cap = make_search(s)
    below = make_search(s)
    others = [make_therapist(s) for _ in range(4)]
    for o in others:
        open_inquiry(s, o.id, [at_cap.id])
    for o in others[:3]:
        open_inquiry(s, o.id, [below.id])
    # withdrawn / answered memberships and nightly drafts do not count
    extra = make_therapist(s)
    inq = open_inquiry(s, extra.id, [below.id])
    inq.patients[0].withdrawn_at = inq.created_at
    open_inquiry(s, make_therapist(s).id, [below.id], status="draft", origin="nightly")
    s.flush()
    assert propose(s, t.id) == [below.id]
    assert any("4 unbeantworteten" in r for r in reasons(s, t.id, at_cap.id))
    # the therapist's own open inquiry: pending (therapist level) and "schon in einer offenen Anfrage"
    open_inquiry(s, t.id, [below.id])
    assert propose(s, t.id) == []
    rs = reasons(s, t.id, below.id)
    assert any("offene Anfrage" in r for r in rs) and any("an diese Therapeut:in" in r for r in rs)


def test_therapist_level_rules_empty_proposal(db_session):
    s = db_session
    x = make_search(s)
    cooling = make_therapist(s, next_contact_at=TODAY + timedelta(days=1))
    blocked = make_therapist(s, status="blocked")
    assert propose(s, cooling.id) == [] and propose(s, blocked.id) == []
    assert any("Abkühlungsphase" in r for r in reasons(s, cooling.id, x.id))
    assert any("gesperrt" in r for r in reasons(s, blocked.id, x.id))
    cooled = make_therapist(s, next_contact_at=TODAY)
    assert propose(s, cooled.id) == [x.id]


def test_placed_and_inactive_searches_never_proposed(db_session):
    s = db_session
    t = make_therapist(s)
    other = make_therapist(s)
    placed = make_search(s)
    placed.placed_therapist_id = other.id
    paused = make_search(s, status="paused")
    s.flush()
    assert propose(s, t.id) == []
    assert any("Zusage einer anderen" in r for r in reasons(s, t.id, placed.id))
    assert any("pausiert" in r for r in reasons(s, t.id, paused.id))


def test_proposal_view_for_the_page(db_session):
    s = db_session
    t = make_therapist(s)
    good = make_search(s)
    far = make_search(s, at=north(30), max_distance_km=25)  # within 1.5 × limit: explained
    view = matching_proposal_view.proposal_view(s, COORD, t.id, today=TODAY, settings=SETTINGS)
    assert [c.search_id for c in view.eligible if c.proposed] == [good.id]
    assert [c.search_id for c in view.rejected] == [far.id]
    assert "Zu weit" in view.rejected[0].reasons[0]
    assert view.eligible[0].age is not None
    assert matching_proposal_view.proposal_view(s, VIEWER, t.id, today=TODAY, settings=SETTINGS).eligible[0].age is None


def test_reads_need_view_permission(db_session):
    from core.platform.permissions import Actor
    from core.platform.vocab import Role

    class Nobody(Actor):
        def can(self, permission):
            return False

    with pytest.raises(PermissionDenied):
        matching_contactable.contactable_therapists(db_session, Nobody(None, "x", Role.viewer), region10(), today=TODAY)


# =========================================================================== properties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.floats(0, 40),  # km north of the practice
            st.sampled_from([None, 10, 25, 30]),  # max km
            st.sampled_from(["any", "female", "male"]),
            st.sampled_from(["female", "male", "diverse"]),
            st.lists(st.sampled_from(["VT", "TP", "AP", "ST"]), max_size=2, unique=True),
            st.integers(0, 5),  # open inquiries elsewhere
            st.integers(0, 400),  # days waiting
        ),
        min_size=0,
        max_size=12,
    )
)
def test_property_proposal_valid_capped_unique(db_session, data):
    s = db_session
    sp = s.begin_nested()
    try:
        t = make_therapist(s, gender="female", offers_vt=True, offers_tp=True)
        helpers = [make_therapist(s, plz="80331") for _ in range(5)]
        ids = []
        for km, max_km, pref, gender, methods, n_open, days in data:
            x = make_search(s, at=north(km), max_distance_km=max_km, preferred_therapist_gender=pref, gender=gender,
                            preferred_methods=methods, started_on=TODAY - timedelta(days=days))
            for h in helpers[:n_open]:
                open_inquiry(s, h.id, [x.id])
            ids.append(x)
        proposal = propose(s, t.id)
        assert len(proposal) <= SETTINGS.MAX_INQUIRY_SIZE
        assert len(set(proposal)) == len(proposal)
        eligible = [x for x in ids if reasons(s, t.id, x.id) == []]
        for sid in proposal:
            assert reasons(s, t.id, sid) == []
        eligible.sort(key=lambda x: (x.started_on, x.id))
        assert proposal == [x.id for x in eligible[: SETTINGS.MAX_INQUIRY_SIZE]]
        for sid in proposal:
            assert candidates.load_relations(s, search_ids=[sid]).open_counts.get(sid, 0) < SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH
    finally:
        sp.rollback()


def test_coordinate_index_path_gives_the_same_proposals(db_factories):
    """With the index on patients(lat, lon) (migration 0002), PostgreSQL reads a band around
    the practice first; without it every active search is scanned. Both give the same
    proposals. (PostgreSQL only: SQLite has no such path.)"""
    import sqlalchemy as sa

    from core.platform.db import make_engine, unit_of_work

    engine = make_engine(db_factories["postgresql"].new_url())
    try:
        with unit_of_work(engine) as s:
            t = make_therapist(s)
            for k, (km, max_km) in enumerate([(5, 10), (11, 10), (24, None), (26, None), (60, 80), (90, 80), (2, 30)]):
                make_search(s, at=north(km), max_distance_km=max_km, started_on=date(2026, 1, 1) + timedelta(days=k))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("DROP INDEX ix_patients_lat_lon"))
        candidates._COORD_INDEX.clear()
        with unit_of_work(engine) as s:
            assert not candidates._patient_coordinate_index(s)
            before = propose(s, t.id)
            view_before = [c.search_id for c in matching_proposal_view.proposal_view(s, COORD, t.id, today=TODAY, settings=SETTINGS).rejected]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CREATE INDEX ix_patients_lat_lon ON patients (lat, lon)"))
        candidates._COORD_INDEX.clear()
        with unit_of_work(engine) as s:
            assert candidates._patient_coordinate_index(s)
            assert propose(s, t.id) == before and len(before) == 4
            assert [c.search_id for c in matching_proposal_view.proposal_view(s, COORD, t.id, today=TODAY, settings=SETTINGS).rejected] == view_before
    finally:
        candidates._COORD_INDEX.clear()
        engine.dispose()
