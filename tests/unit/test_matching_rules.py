"""Pure matching rules: each rule on both sides of its boundary, the vectorised profile rules
equal to the scalar ones (hypothesis), the proposal and plan properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import matching_rules as r
from core.vocab import Gender, GenderPreference, Outcome, ResponseType, SearchStatus, TherapistStatus

TODAY = date(2026, 11, 23)


# --------------------------------------------------------------------------- therapist level


def test_active_therapist_passes_blocked_and_inactive_fail():
    assert r.rule_therapist_active(TherapistStatus.active) is None
    assert "gesperrt" in r.rule_therapist_active(TherapistStatus.blocked)
    assert "inaktiv" in r.rule_therapist_active(TherapistStatus.inactive)


@pytest.mark.parametrize(
    "next_contact, ok",
    [(None, True), (TODAY - timedelta(days=1), True), (TODAY, True), (TODAY + timedelta(days=1), False)],
)
def test_cooling_boundary(next_contact, ok):
    reason = r.rule_cooling(next_contact, TODAY)
    assert (reason is None) == ok
    if not ok:
        assert "24.11.2026" in reason and "Abkühlungsphase" in reason


def test_open_inquiry_and_practice_rules():
    assert r.rule_no_open_inquiry(None) is None
    assert "A17" in r.rule_no_open_inquiry(17)
    assert r.rule_practice(r.TherapistState(), TODAY) is None
    assert "A5" in r.rule_practice(r.TherapistState(practice_open_inquiry_id=5), TODAY)
    assert r.rule_practice(r.TherapistState(practice_cooling_until=TODAY), TODAY) is None
    assert "Abkühlungsphase" in r.rule_practice(r.TherapistState(practice_cooling_until=TODAY + timedelta(days=1)), TODAY)


def test_therapist_reasons_collects_all():
    t = r.TherapistProfile(id=1, status=TherapistStatus.blocked, next_contact_at=TODAY + timedelta(days=3))
    reasons = r.therapist_reasons(t, r.TherapistState(open_inquiry_id=2), today=TODAY)
    assert len(reasons) == 3


# --------------------------------------------------------------------------- pair rules


@pytest.mark.parametrize("d, ok", [(0.0, True), (24.999, True), (25.0, True), (25.001, False), (None, False), (float("nan"), False)])
def test_distance_boundary_and_unknown(d, ok):
    reason = r.rule_distance(d, 25)
    assert (reason is None) == ok
    if d is None or (isinstance(d, float) and d != d):
        assert "Entfernung unbekannt" in reason
    elif not ok:
        assert "25,0 km (Luftlinie)" in reason


def test_search_status_and_placement():
    assert r.rule_search_active(SearchStatus.active) is None
    for s in (SearchStatus.paused, SearchStatus.cancelled, SearchStatus.successful):
        assert r.rule_search_active(s)
    assert r.rule_not_placed(None, 1) is None
    assert "anderen" in r.rule_not_placed(2, 1)
    assert "bereits zugesagt" in r.rule_not_placed(1, 1)


def test_exclusions_and_history():
    assert r.rule_patient_exclusion(False) is None and r.rule_patient_exclusion(True)
    assert r.rule_search_exclusion(False) is None and r.rule_search_exclusion(True)
    assert r.rule_history(None) is None
    assert "nicht geeignet" in r.rule_history(Outcome.rejected_unsuitable)
    assert "nicht erschienen" in r.rule_history(Outcome.no_show)


@pytest.mark.parametrize(
    "pref, gender, ok",
    [
        (GenderPreference.any, Gender.diverse, True),
        (GenderPreference.female, Gender.female, True),
        (GenderPreference.female, Gender.male, False),
        (GenderPreference.male, Gender.male, True),
        (GenderPreference.male, Gender.diverse, False),
        (GenderPreference.female, Gender.unspecified, False),
    ],
)
def test_gender_preferences_both_sides(pref, gender, ok):
    assert (r.rule_patient_gender_preference(pref, gender) is None) == ok
    assert (r.rule_therapist_gender_preference(pref, gender) is None) == ok


@pytest.mark.parametrize(
    "wanted, offered, ok",
    [
        ([], [], True),
        ([], ["VT"], True),
        (["VT"], ["VT", "TP"], True),  # several methods offered: any one matches (upstream bug 9)
        (["VT", "TP"], ["TP"], True),
        (["AP"], ["VT", "TP"], False),
        (["ST"], [], False),
    ],
)
def test_methods_share_one(wanted, offered, ok):
    reason = r.rule_methods(wanted, offered)
    assert (reason is None) == ok
    if not ok:
        assert "gewünscht" in reason


@pytest.mark.parametrize(
    "open_to_group, individual, ok",
    [(True, False, True), (True, True, True), (False, True, True), (False, False, False), (None, False, False), (None, True, True)],
)
def test_group_needs_individual_when_not_open(open_to_group, individual, ok):
    assert (r.rule_group(open_to_group, individual) is None) == ok


@pytest.mark.parametrize(
    "age, lo, hi, ok",
    [
        (30, None, None, True),
        (None, None, None, True),
        (None, 18, None, False),
        (17, 18, None, False),
        (18, 18, None, True),
        (65, None, 65, True),
        (66, None, 65, False),
        (18, 18, 65, True),
        (65, 18, 65, True),
        (17, 18, 65, False),
        (66, 18, 65, False),
    ],
)
def test_age_range_inclusive_unset_open(age, lo, hi, ok):
    assert (r.rule_age(age, lo, hi) is None) == ok


def test_age_on_birthday_boundary():
    assert r.age_on(date(2008, 11, 23), TODAY) == 18
    assert r.age_on(date(2008, 11, 24), TODAY) == 17
    assert r.age_on(None, TODAY) is None
    assert r.age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert r.age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


@pytest.mark.parametrize("count, ok", [(0, True), (3, True), (4, False), (5, False)])
def test_open_cap_boundary(count, ok):
    assert (r.rule_open_cap(count, 4) is None) == ok


def test_open_with_same_therapist():
    assert r.rule_not_in_open_inquiry_to(False) is None
    assert r.rule_not_in_open_inquiry_to(True)


def test_pair_reasons_lists_every_failure_in_german():
    t = r.TherapistProfile(id=1, gender=Gender.male, methods=frozenset({"AP"}), offers_individual=False, age_min=18)
    s = r.SearchProfile(
        search_id=9, max_km=10, preferred_therapist_gender=GenderPreference.female, preferred_methods=frozenset({"VT"}),
        open_to_group=False, birth_date=date(2010, 1, 1),
    )
    reasons = r.pair_reasons(t, s, r.PairFacts(excluded_by_patient=True, open_inquiries=4), distance_km=12.5, today=TODAY, cap=4)
    assert len(reasons) == 7
    assert any("12,5 km (Luftlinie)" in x for x in reasons)
    eligible = r.pair_reasons(
        r.TherapistProfile(id=1), r.SearchProfile(search_id=9, max_km=10), r.PairFacts(), distance_km=10.0, today=TODAY, cap=4
    )
    assert eligible == []


# --------------------------------------------------------------------------- vectorised = scalar

genders = st.sampled_from(list(Gender))
prefs = st.sampled_from(list(GenderPreference))
methods = st.frozensets(st.sampled_from(r.METHOD_CODES), max_size=4)
ages = st.one_of(st.none(), st.integers(0, 99))
bounds = st.one_of(st.none(), st.integers(0, 99))


@settings(max_examples=400, deadline=None)
@given(
    d=st.one_of(st.none(), st.floats(0, 60)), max_km=st.integers(1, 50), pg=genders, pp=prefs, pm=methods,
    og=st.one_of(st.none(), st.booleans()), age=ages, tg=genders, tp=prefs, tm=methods, ind=st.booleans(),
    lo=bounds, hi=bounds,
)
def test_profile_mask_equals_scalar_rules(d, max_km, pg, pp, pm, og, age, tg, tp, tm, ind, lo, hi):
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    scalar_ok = not any(
        [
            r.rule_distance(d, max_km),
            r.rule_patient_gender_preference(pp, tg),
            r.rule_therapist_gender_preference(tp, pg),
            r.rule_methods(pm, tm),
            r.rule_group(og, ind),
            r.rule_age(age, lo, hi),
        ]
    )
    mask = r.profile_mask(
        distance=np.array([np.nan if d is None else d]), max_km=np.array([float(max_km)]),
        patient_gender=np.array([r.GENDER_CODES[pg]]), patient_preference=np.array([r.PREFERENCE_CODES[pp]]),
        patient_methods=np.array([r.method_mask(pm)]), open_to_group=np.array([bool(og)]),
        age=np.array([np.nan if age is None else float(age)]), therapist_gender=r.GENDER_CODES[tg],
        therapist_preference=r.PREFERENCE_CODES[tp], therapist_methods=r.method_mask(tm), offers_individual=ind,
        age_min=np.nan if lo is None else float(lo), age_max=np.nan if hi is None else float(hi),
    )
    assert bool(mask[0]) == scalar_ok


# --------------------------------------------------------------------------- proposal


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.integers(1, 50), max_size=40), size=st.integers(1, 10))
def test_take_proposal_never_exceeds_size_nor_duplicates(ids, size):
    out = r.take_proposal(ids, size)
    assert len(out) <= size
    assert len(set(out)) == len(out)
    assert set(out) <= set(ids)
    # order kept: the first distinct ids
    assert out == list(dict.fromkeys(ids))[:size]


def test_validate_inquiry_size():
    assert r.validate_inquiry_size([1, 2], 6) == []
    assert r.validate_inquiry_size([], 6)
    assert r.validate_inquiry_size(list(range(7)), 6)
    assert r.validate_inquiry_size(list(range(6)), 6) == []
    assert r.validate_inquiry_size([1, 1], 6)


# --------------------------------------------------------------------------- practices and order


def test_fold_and_surname_in_address():
    assert r.fold_name("Müller-Lüdenscheidt") == "muellerluedenscheidt"
    assert r.fold_name("Weiß") == "weiss"
    assert r.surname_in_address("Müller", "praxis.mueller@example.org")
    assert r.surname_in_address("Schmidt-Weiß", "weiss@example.org")
    assert not r.surname_in_address("Ott", "praxis@example.org")


def test_practice_owner_order():
    m = r.PracticeMember
    members = [m(3, None, "Schulz"), m(1, "Dr.", "Meier"), m(2, "Prof. Dr.", "Kraus")]
    assert r.practice_owner(members, "schulz@example.org") == 3  # surname in address wins
    assert r.practice_owner(members, "praxis@example.org") == 2  # else Prof. before Dr.
    assert r.practice_owner([m(5, None, "A"), m(4, None, "B")], "x@example.org") == 4  # else lowest id
    assert r.practice_owner([m(7, None, "Meier"), m(6, "Dr.", "Meier")], "meier@x.de") == 6


def test_contact_order():
    rows = [
        dict(potentially_available=False, knows_us=False, has_email=True, last_name="A", first_name="A", therapist_id=1),
        dict(potentially_available=True, knows_us=True, has_email=False, last_name="Z", first_name="Z", therapist_id=2),
        dict(potentially_available=True, knows_us=False, has_email=True, last_name="B", first_name="B", therapist_id=3),
        dict(potentially_available=False, knows_us=True, has_email=True, last_name="C", first_name="C", therapist_id=4),
        dict(potentially_available=True, knows_us=True, has_email=True, last_name="Ö", first_name="B", therapist_id=5),
        dict(potentially_available=True, knows_us=True, has_email=True, last_name="Oe", first_name="A", therapist_id=6),
    ]
    order = [x["therapist_id"] for x in sorted(rows, key=lambda x: r.contactable_sort_key(**x))]
    assert order == [6, 5, 2, 3, 4, 1]


# --------------------------------------------------------------------------- answers, cooling, expiry


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        ([Outcome.accepted, Outcome.accepted], ResponseType.all_accepted),
        ([Outcome.accepted, Outcome.rejected_capacity], ResponseType.partly_accepted),
        ([Outcome.accepted, Outcome.no_response], ResponseType.partly_accepted),
        ([Outcome.rejected_other, Outcome.rejected_unsuitable], ResponseType.all_rejected),
        ([Outcome.rejected_capacity, Outcome.no_response], ResponseType.all_rejected),
        ([Outcome.no_response], ResponseType.no_response),
        ([], ResponseType.no_response),
    ],
)
def test_response_type_from_outcomes(outcomes, expected):
    assert r.response_type(outcomes) == expected


def test_cooling_and_expiry():
    assert r.cooling_until(TODAY, 4) == date(2026, 12, 21)
    assert r.later_cooling(None, TODAY) == TODAY
    assert r.later_cooling(TODAY + timedelta(days=40), TODAY) == TODAY + timedelta(days=40)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    assert r.is_expired(now - timedelta(days=21), now, 21)
    assert not r.is_expired(now - timedelta(days=21) + timedelta(seconds=1), now, 21)
    assert not r.is_expired(None, now, 21)
    assert r.follow_up_due(now - timedelta(days=7), now, 7)
    assert not r.follow_up_due(now - timedelta(days=6, hours=23), now, 7)
    assert r.days_since(datetime(2026, 11, 20, 23, 30, tzinfo=timezone.utc), now) == 2  # 00:30 Berlin on the 21st


def test_validate_answer():
    assert r.validate_answer([1, 2], {1: Outcome.accepted, 2: Outcome.no_response}) == []
    assert r.validate_answer([1, 2], {1: Outcome.accepted})
    assert r.validate_answer([1], {1: Outcome.accepted, 3: Outcome.accepted})
    assert r.validate_answer([1], {1: Outcome.no_show})
    assert r.validate_answer([1], {1: Outcome.pending})


# --------------------------------------------------------------------------- planner


@st.composite
def plan_inputs(draw):
    n_searches = draw(st.integers(0, 30))
    therapists = list(range(100, 100 + draw(st.integers(0, 15))))
    searches = [(sid, draw(st.integers(-1, 5))) for sid in range(1, n_searches + 1)]
    candidates = {
        sid: draw(st.lists(st.sampled_from(therapists), unique=True)) if therapists else [] for sid, _ in searches
    }
    return searches, candidates, draw(st.integers(1, 6))


@settings(max_examples=300, deadline=None)
@given(plan_inputs())
def test_plan_respects_caps_and_candidates(data):
    searches, candidates, max_size = data
    result = r.plan_greedy(searches, candidates, max_size=max_size)
    remaining = dict(searches)
    appearances: dict[int, int] = {}
    for tid, sids in result.by_therapist.items():
        assert 1 <= len(sids) <= max_size
        assert len(set(sids)) == len(sids)
        for sid in sids:
            assert tid in candidates[sid]  # only eligible pairs
            appearances[sid] = appearances.get(sid, 0) + 1
        order = [next(i for i, (s, _) in enumerate(searches) if s == sid) for sid in sids]
        assert order == sorted(order)  # longest waiting first inside an inquiry
    for sid, n in appearances.items():
        assert n <= max(remaining[sid], 0)


def test_plan_prefers_oldest_and_nearest():
    # two therapists with room for one each; the older search takes the nearest
    result = r.plan_greedy([(1, 1), (2, 1)], {1: [10, 20], 2: [10, 20]}, max_size=1)
    assert result.by_therapist == {10: [1], 20: [2]}
    result = r.plan_greedy([(1, 2), (2, 4)], {1: [10, 20, 30], 2: [30]}, max_size=6)
    assert result.by_search == {1: [10, 20], 2: [30]}
