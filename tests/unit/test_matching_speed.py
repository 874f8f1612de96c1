"""Issue 15.7: the fast paths of matching compute exactly what the simple ones do.

- `bounding_boxes` (many centres at once) equals `bounding_box` element by element;
- `pair_distances_km` equals `distances_km`;
- the planner's batched candidate lists (every search's therapists in one vectorised pass)
  equal the per-search computation: box, distance, profile rules, nearest first, ties by id.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from core.geo import distance as geo
from core.matching import candidates, rules
from core.planning import planner
from core.platform.vocab import Gender, GenderPreference

lat_st = st.floats(min_value=-89.9, max_value=89.9, allow_nan=False)
lon_st = st.floats(min_value=-179.9, max_value=179.9, allow_nan=False)
km_st = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


@given(st.lists(st.tuples(lat_st, lon_st, km_st), min_size=1, max_size=30))
def test_bounding_boxes_equal_the_scalar_box(centres):
    lat, lon, km = (np.array(c) for c in zip(*centres))
    boxes = geo.bounding_boxes(lat, lon, km)
    for i, (a, b, r) in enumerate(centres):
        box = geo.bounding_box((a, b), r)
        got = [float(arr[i]) for arr in boxes]
        assert np.allclose(got, [box.min_lat, box.max_lat, box.min_lon, box.max_lon], rtol=0, atol=1e-9), (centres[i], got, box)


def test_bounding_boxes_of_unknown_centres_contain_nothing():
    min_lat, max_lat, _, _ = geo.bounding_boxes([np.nan, 52.5], [13.4, np.nan], [25, 25])
    assert math.isnan(min_lat[0]) and math.isnan(max_lat[0])


@given(st.lists(st.tuples(lat_st, lon_st, lat_st, lon_st), min_size=1, max_size=30))
def test_pair_distances_equal_distances_from_one_origin(pairs):
    a_lat, a_lon, b_lat, b_lon = (np.array(c) for c in zip(*pairs))
    got = geo.pair_distances_km(a_lat, a_lon, b_lat, b_lon)
    for i, (la, lo, lb, lob) in enumerate(pairs):
        want = geo.distances_km((la, lo), [lb], [lob])[0]
        assert math.isclose(got[i], want, rel_tol=1e-12, abs_tol=1e-9)


# --------------------------------------------------------------------------- planner candidates

GENDERS = [Gender.female, Gender.male, Gender.unspecified]
PREFS = [GenderPreference.any, GenderPreference.female, GenderPreference.male]


def _therapists(draw_seed: int, n: int):
    rng = np.random.default_rng(draw_seed)
    rows = []
    for i in range(n):
        # clusters so that several therapists share coordinates (distance ties)
        lat = 52.5 + float(rng.choice([0.0, 0.05, 0.3, rng.uniform(-0.6, 0.6)]))
        lon = 13.4 + float(rng.choice([0.0, 0.05, 0.4, rng.uniform(-0.9, 0.9)]))
        located = rng.random() > 0.1
        profile = rules.TherapistProfile(
            id=1000 + int(rng.integers(0, 10_000)) * 10 + i % 10,
            gender=GENDERS[int(rng.integers(0, 3))],
            patient_gender_preference=PREFS[int(rng.integers(0, 3))],
            methods=frozenset(c for c in rules.METHOD_CODES if rng.random() < 0.5),
            offers_individual=bool(rng.random() < 0.8),
            age_min=None if rng.random() < 0.6 else int(rng.integers(10, 30)),
            age_max=None if rng.random() < 0.6 else int(rng.integers(40, 90)),
            lat=lat if located else None, lon=lon if located else None,
        )
        rows.append(SimpleNamespace(id=profile.id, lat=profile.lat, lon=profile.lon, profile=profile))
    # unique ids (the index is keyed by them)
    seen, out = set(), []
    for r in rows:
        if r.id not in seen:
            seen.add(r.id)
            out.append(r)
    return out


def _frame(seed: int, n: int) -> candidates.SearchFrame:
    rng = np.random.default_rng(seed + 1)
    lat = 52.5 + rng.uniform(-0.7, 0.7, n)
    lon = 13.4 + rng.uniform(-1.0, 1.0, n)
    lat[rng.random(n) < 0.05] = np.nan
    return candidates.SearchFrame(
        rows=[None] * n,
        ids=np.arange(1, n + 1, dtype=np.int64),
        patient_ids=np.arange(101, 101 + n, dtype=np.int64),
        lat=lat,
        lon=lon,
        max_km=rng.choice([5.0, 10.0, 25.0, 40.0, 0.0], n),
        gender=rng.integers(0, 3, n).astype(np.int8),
        preference=rng.integers(0, 3, n).astype(np.int8),
        methods=rng.integers(0, 16, n).astype(np.int16),
        open_to_group=rng.random(n) < 0.3,
        age=np.where(rng.random(n) < 0.1, np.nan, rng.uniform(15, 80, n)),
    )


def _one_by_one(index, frame, i):
    """The per-search computation the batched one replaces."""
    lat, lon, max_km = frame.lat[i], frame.lon[i], frame.max_km[i]
    if np.isnan(lat) or np.isnan(lon):
        return []
    box = geo.bounding_box((float(lat), float(lon)), float(max_km))
    idx = np.nonzero((index.lat >= box.min_lat) & (index.lat <= box.max_lat)
                     & (index.lon >= box.min_lon) & (index.lon <= box.max_lon))[0]
    d = geo.distances_km((float(lat), float(lon)), index.lat[idx], index.lon[idx])
    ok = rules.profile_mask(
        distance=d, max_km=max_km, patient_gender=frame.gender[i], patient_preference=frame.preference[i],
        patient_methods=frame.methods[i], open_to_group=frame.open_to_group[i], age=frame.age[i],
        therapist_gender=index.gender[idx], therapist_preference=index.preference[idx],
        therapist_methods=index.methods[idx], offers_individual=index.individual[idx],
        age_min=index.age_min[idx], age_max=index.age_max[idx],
    )
    pairs = sorted(zip(d[ok].tolist(), index.ids[idx][ok].tolist()))
    return [(tid, dist) for dist, tid in pairs]


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=60),
       st.integers(min_value=1, max_value=80), st.sampled_from([1, 3, 7, 512]))
def test_batched_candidate_lists_equal_the_search_by_search_computation(seed, n_therapists, n_searches, batch):
    index = planner._TherapistIndex.build(_therapists(seed, n_therapists))
    frame = _frame(seed, n_searches)
    lists = index.candidate_lists(frame, batch=batch)
    assert len(lists) == n_searches
    for i, (ids, dists) in enumerate(lists):
        want = _one_by_one(index, frame, i)
        assert ids.tolist() == [t for t, _ in want], i
        assert np.allclose(dists, [d for _, d in want], rtol=1e-12, atol=1e-9)
