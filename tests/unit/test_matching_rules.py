"""Pure matching rules: each rule on both sides of its boundary, the vectorised profile rules
equal to the scalar ones (hypothesis), the proposal and plan properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.matching import rules as matching_rules
from core.planning import rules as plan_rules
from core.platform.vocab import Gender, GenderPreference, Outcome, ResponseType, SearchStatus, TherapistStatus

TODAY = date(2026, 11, 23)


# --------------------------------------------------------------------------- therapist level


def test_active_therapist_passes_blocked_and_inactive_fail():
    assert matching_rules.rule_therapist_active(TherapistStatus.active) is None
    assert "gesperrt" in matching_rules.rule_therapist_active(TherapistStatus.blocked)
    assert "inaktiv" in matching_rules.rule_therapist_active(TherapistStatus.inactive)


@pytest.mark.parametrize(
    "next_contact, ok",
    [(None, True), (TODAY - timedelta(days=1), True), (TODAY, True), (TODAY + timedelta(days=1), False)],
)
def test_cooling_boundary(next_contact, ok):
    reason = matching_rules.rule_cooling(next_contact, TODAY)
    assert (reason is None) == ok
    if not ok:
        assert "24.11.2026" in reason and "Abkühlungsphase" in reason


def test_open_inquiry_and_practice_rules():
    assert matching_rules.rule_no_open_inquiry(None) is None
    assert "A17" in matching_rules.rule_no_open_inquiry(17)
    assert matching_rules.rule_practice(matching_rules.TherapistState(), TODAY) is None
    assert "A5" in matching_rules.rule_practice(matching_rules.TherapistState(practice_open_inquiry_id=5), TODAY)
    assert matching_rules.rule_practice(matching_rules.TherapistState(practice_cooling_until=TODAY), TODAY) is None
    assert "Abkühlungsphase" in matching_rules.rule_practice(matching_rules.TherapistState(practice_cooling_until=TODAY + timedelta(days=1)), TODAY)


def test_therapist_reasons_collects_all():
    t = matching_rules.TherapistProfile(id=1, status=TherapistStatus.blocked, next_contact_at=TODAY + timedelta(days=3))
    reasons = matching_rules.therapist_reasons(t, matching_rules.TherapistState(open_inquiry_id=2), today=TODAY)
    assert len(reasons) == 3


# --------------------------------------------------------------------------- pair rules


@pytest.mark.parametrize("d, ok", [(0.0, True), (24.999, True), (25.0, True), (25.001, False), (None, False), (float("nan"), False)])
def test_distance_boundary_and_unknown(d, ok):
    reason = matching_rules.rule_distance(d, 25)
    assert (reason is None) == ok
    if d is None or (isinstance(d, float) and d != d):
        assert "Entfernung unbekannt" in reason
    elif not ok:
        assert "25,0 km (Luftlinie)" in reason


def test_search_status_and_placement():
    assert matching_rules.rule_search_active(SearchStatus.active) is None
    for s in (SearchStatus.paused, SearchStatus.cancelled, SearchStatus.successful):
        assert matching_rules.rule_search_active(s)
    assert matching_rules.rule_not_placed(None, 1) is None
    assert "anderen" in matching_rules.rule_not_placed(2, 1)
    assert "bereits zugesagt" in matching_rules.rule_not_placed(1, 1)


def test_exclusions_and_history():
    assert matching_rules.rule_patient_exclusion(False) is None and matching_rules.rule_patient_exclusion(True)
    assert matching_rules.rule_search_exclusion(False) is None and matching_rules.rule_search_exclusion(True)
    assert matching_rules.rule_history(None) is None
    assert "nicht geeignet" in matching_rules.rule_history(Outcome.rejected_unsuitable)
    assert "nicht erschienen" in matching_rules.rule_history(Outcome.no_show)


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
    assert (matching_rules.rule_patient_gender_preference(pref, gender) is None) == ok
    assert (matching_rules.rule_therapist_gender_preference(pref, gender) is None) == ok


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
    reason = matching_rules.rule_methods(wanted, offered)
    assert (reason is None) == ok
    if not ok:
        assert "gewünscht" in reason


@pytest.mark.parametrize(
    "open_to_group, individual, ok",
    [(True, False, True), (True, True, True), (False, True, True), (False, False, False), (None, False, False), (None, True, True)],
)
def test_group_needs_individual_when_not_open(open_to_group, individual, ok):
    assert (matching_rules.rule_group(open_to_group, individual) is None) == ok


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
    assert (matching_rules.rule_age(age, lo, hi) is None) == ok


def test_age_on_birthday_boundary():
    assert matching_rules.age_on(date(2008, 11, 23), TODAY) == 18
    assert matching_rules.age_on(date(2008, 11, 24), TODAY) == 17
    assert matching_rules.age_on(None, TODAY) is None
    assert matching_rules.age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert matching_rules.age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


@pytest.mark.parametrize("count, ok", [(0, True), (3, True), (4, False), (5, False)])
def test_open_cap_boundary(count, ok):
    assert (matching_rules.rule_open_cap(count, 4) is None) == ok


def test_open_with_same_therapist():
    assert matching_rules.rule_not_in_open_inquiry_to(False) is None
    assert matching_rules.rule_not_in_open_inquiry_to(True)


def test_pair_reasons_lists_every_failure_in_german():
    t = matching_rules.TherapistProfile(id=1, gender=Gender.male, methods=frozenset({"AP"}), offers_individual=False, age_min=18)
    s = matching_rules.SearchProfile(
        search_id=9, max_km=10, preferred_therapist_gender=GenderPreference.female, preferred_methods=frozenset({"VT"}),
        open_to_group=False, birth_date=date(2010, 1, 1),
    )
    reasons = matching_rules.pair_reasons(t, s, matching_rules.PairFacts(excluded_by_patient=True, open_inquiries=4), distance_km=12.5, today=TODAY, cap=4)
    assert len(reasons) == 7
    assert any("12,5 km (Luftlinie)" in x for x in reasons)
    eligible = matching_rules.pair_reasons(
        matching_rules.TherapistProfile(id=1), matching_rules.SearchProfile(search_id=9, max_km=10), matching_rules.PairFacts(), distance_km=10.0, today=TODAY, cap=4
    )
    assert eligible == []


# --------------------------------------------------------------------------- vectorised = scalar

genders = st.sampled_from(list(Gender))
prefs = st.sampled_from(list(GenderPreference))
methods = st.frozensets(st.sampled_from(matching_rules.METHOD_CODES), max_size=4)
ages = st.one_of(st.none(), st.integers(0, 99))
bounds = st.one_of(st.none(), st.integers(0, 99))


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
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
            matching_rules.rule_distance(d, max_km),
            matching_rules.rule_patient_gender_preference(pp, tg),
            matching_rules.rule_therapist_gender_preference(tp, pg),
            matching_rules.rule_methods(pm, tm),
            matching_rules.rule_group(og, ind),
            matching_rules.rule_age(age, lo, hi),
        ]
    )
    mask = matching_rules.profile_mask(
        distance=np.array([np.nan if d is None else d]), max_km=np.array([float(max_km)]),
        patient_gender=np.array([matching_rules.GENDER_CODES[pg]]), patient_preference=np.array([matching_rules.PREFERENCE_CODES[pp]]),
        patient_methods=np.array([matching_rules.method_mask(pm)]), open_to_group=np.array([bool(og)]),
        age=np.array([np.nan if age is None else float(age)]), therapist_gender=matching_rules.GENDER_CODES[tg],
        therapist_preference=matching_rules.PREFERENCE_CODES[tp], therapist_methods=matching_rules.method_mask(tm), offers_individual=ind,
        age_min=np.nan if lo is None else float(lo), age_max=np.nan if hi is None else float(hi),
    )
    assert bool(mask[0]) == scalar_ok


# --------------------------------------------------------------------------- proposal


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
@given(ids=st.lists(st.integers(1, 50), max_size=40), size=st.integers(1, 10))
def test_take_proposal_never_exceeds_size_nor_duplicates(ids, size):
    out = matching_rules.take_proposal(ids, size)
    assert len(out) <= size
    assert len(set(out)) == len(out)
    assert set(out) <= set(ids)
    # order kept: the first distinct ids
    assert out == list(dict.fromkeys(ids))[:size]


def test_validate_inquiry_size():
    assert matching_rules.validate_inquiry_size([1, 2], 6) == []
    assert matching_rules.validate_inquiry_size([], 6)
    assert matching_rules.validate_inquiry_size(list(range(7)), 6)
    assert matching_rules.validate_inquiry_size(list(range(6)), 6) == []
    assert matching_rules.validate_inquiry_size([1, 1], 6)


# --------------------------------------------------------------------------- practices and order


def test_fold_and_surname_in_address():
    assert matching_rules.fold_name("Müller-Lüdenscheidt") == "muellerluedenscheidt"
    assert matching_rules.fold_name("Weiß") == "weiss"
    assert matching_rules.surname_in_address("Müller", "praxis.mueller@example.org")
    assert matching_rules.surname_in_address("Schmidt-Weiß", "weiss@example.org")
    assert not matching_rules.surname_in_address("Ott", "praxis@example.org")


@pytest.mark.parametrize(
    "name, folded",
    [
        ("Yılmaz", "yilmaz"),  # Turkish dotless ı (NFKD alone dropped it: "ylmaz")
        ("İnce", "ince"),
        ("Çelik", "celik"),
        ("Şahin", "sahin"),
        ("Doğan", "dogan"),
        ("Öztürk", "oeztuerk"),
        ("Wałęsa", "walesa"),
        ("Søndergaard", "sondergaard"),
        ("ØRSTED", "orsted"),
        ("Strauß", "strauss"),
        ("STRAUẞ", "strauss"),
        ("Đorđević", "djordjevic"),
        ("Þórsdóttir", "thorsdottir"),
        ("Lætitia", "laetitia"),
        ("Nguyễn", "nguyen"),
        ("Mu\u0308ller", "mueller"),  # decomposed ü
    ],
)
def test_fold_name_transliterates_letters_without_decomposition(name, folded):
    assert matching_rules.fold_name(name) == folded


def test_practice_address_with_a_transliterated_surname_is_the_members_own():
    assert matching_rules.surname_in_address("Yılmaz", "praxis.yilmaz@example.org")
    assert matching_rules.surname_in_address("Öztürk", "info@praxis-ozturk.de")  # umlaut as plain vowel
    assert matching_rules.surname_in_address("Öztürk", "oeztuerk@example.org")
    assert matching_rules.surname_in_address("Kowalska-Łęcka", "lecka@example.org")
    assert matching_rules.surname_in_address("Đorđević", "dordevic@example.org")
    members = [
        matching_rules.PracticeMember(1, "Prof. Dr.", "Schmidt"),
        matching_rules.PracticeMember(2, None, "Yılmaz"),
    ]
    assert matching_rules.practice_owner(members, "praxis.yilmaz@example.org") == 2


def test_practice_owner_order():
    m = matching_rules.PracticeMember
    members = [m(3, None, "Schulz"), m(1, "Dr.", "Meier"), m(2, "Prof. Dr.", "Kraus")]
    assert matching_rules.practice_owner(members, "schulz@example.org") == 3  # surname in address wins
    assert matching_rules.practice_owner(members, "praxis@example.org") == 2  # else Prof. before Dr.
    assert matching_rules.practice_owner([m(5, None, "A"), m(4, None, "B")], "x@example.org") == 4  # else lowest id
    assert matching_rules.practice_owner([m(7, None, "Meier"), m(6, "Dr.", "Meier")], "meier@x.de") == 6


def test_contact_order():
    rows = [
        dict(potentially_available=False, knows_us=False, has_email=True, last_name="A", first_name="A", therapist_id=1),
        dict(potentially_available=True, knows_us=True, has_email=False, last_name="Z", first_name="Z", therapist_id=2),
        dict(potentially_available=True, knows_us=False, has_email=True, last_name="B", first_name="B", therapist_id=3),
        dict(potentially_available=False, knows_us=True, has_email=True, last_name="C", first_name="C", therapist_id=4),
        dict(potentially_available=True, knows_us=True, has_email=True, last_name="Ö", first_name="B", therapist_id=5),
        dict(potentially_available=True, knows_us=True, has_email=True, last_name="Oe", first_name="A", therapist_id=6),
    ]
    order = [x["therapist_id"] for x in sorted(rows, key=lambda x: matching_rules.contactable_sort_key(**x))]
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
    assert matching_rules.response_type(outcomes) == expected


def test_cooling_and_expiry():
    assert matching_rules.cooling_until(TODAY, 4) == date(2026, 12, 21)
    assert matching_rules.later_cooling(None, TODAY) == TODAY
    assert matching_rules.later_cooling(TODAY + timedelta(days=40), TODAY) == TODAY + timedelta(days=40)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    assert matching_rules.is_expired(now - timedelta(days=21), now, 21)
    assert not matching_rules.is_expired(now - timedelta(days=21) + timedelta(seconds=1), now, 21)
    assert not matching_rules.is_expired(None, now, 21)
    assert matching_rules.follow_up_due(now - timedelta(days=7), now, 7)
    assert not matching_rules.follow_up_due(now - timedelta(days=6, hours=23), now, 7)
    assert matching_rules.days_since(datetime(2026, 11, 20, 23, 30, tzinfo=timezone.utc), now) == 2  # 00:30 Berlin on the 21st


def test_validate_answer():
    assert matching_rules.validate_answer([1, 2], {1: Outcome.accepted, 2: Outcome.no_response}) == []
    assert matching_rules.validate_answer([1, 2], {1: Outcome.accepted})
    assert matching_rules.validate_answer([1], {1: Outcome.accepted, 3: Outcome.accepted})
    assert matching_rules.validate_answer([1], {1: Outcome.no_show})
    assert matching_rules.validate_answer([1], {1: Outcome.pending})


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


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
@given(plan_inputs())
def test_plan_respects_caps_and_candidates(data):
    searches, candidates, max_size = data
    result = plan_rules.plan_greedy(searches, candidates, max_size=max_size)
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
    result = plan_rules.plan_greedy([(1, 1), (2, 1)], {1: [10, 20], 2: [10, 20]}, max_size=1)
    assert result.by_therapist == {10: [1], 20: [2]}
    result = plan_rules.plan_greedy([(1, 2), (2, 4)], {1: [10, 20, 30], 2: [30]}, max_size=6)
    assert result.by_search == {1: [10, 20], 2: [30]}
