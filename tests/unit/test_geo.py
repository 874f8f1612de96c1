"""Pure geography rules: distances, bounding boxes, the GeoNames parser, the rate limiter."""

from __future__ import annotations

import math
import threading
from datetime import datetime, timezone

import holidays
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.geo import distance as geo
from core.geo import plz as geo_plz
from core.adapters.geocoder import (
    GeocoderConfigError,
    GeocoderError,
    NominatimGeocoder,
    PracticeAddress,
    RateLimiter,
    parse_retry_after,
    parse_search_response,
)
from core.geo.geocoding import cache_key, practice_address
from core.platform.models import Patient, Therapist

BERLIN_10115 = (52.5323, 13.3846)
MUENCHEN_80331 = (48.1345, 11.571)

lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
points = st.tuples(lats, lons)


# --------------------------------------------------------------------------- distance_km


def test_distance_zero_for_same_point():
    assert geo.distance_km(BERLIN_10115, BERLIN_10115) == 0.0


def test_known_pairs():
    assert 500 <= geo.distance_km(BERLIN_10115, MUENCHEN_80331) <= 510
    # one degree of longitude on the equator, and pole to pole, on the mean sphere
    assert geo.distance_km((0, 0), (0, 1)) == pytest.approx(2 * math.pi * 6371.0088 / 360, rel=1e-12)
    assert geo.distance_km((90, 0), (-90, 0)) == pytest.approx(math.pi * 6371.0088, rel=1e-12)
    # Hamburg Rathaus - Köln Dom, about 357 km Luftlinie
    assert geo.distance_km((53.5503, 9.9927), (50.9413, 6.9583)) == pytest.approx(357, abs=3)


@given(points, points)
def test_distance_symmetric_and_bounded(a, b):
    d = geo.distance_km(a, b)
    assert d == pytest.approx(geo.distance_km(b, a), abs=1e-9)
    assert 0.0 <= d <= math.pi * geo.EARTH_RADIUS_KM + 1e-6


def test_distance_nan_stays_nan():
    assert math.isnan(geo.distance_km((math.nan, 10.0), BERLIN_10115))


# --------------------------------------------------------------------------- one-to-many


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
@given(points, st.lists(points, min_size=0, max_size=40))
def test_vectorised_equals_scalar(origin, others):
    lat = [p[0] for p in others]
    lon = [p[1] for p in others]
    got = geo.distances_km(origin, lat, lon)
    assert got.shape == (len(others),)
    for value, p in zip(got, others):
        assert value == pytest.approx(geo.distance_km(origin, p), rel=1e-9, abs=1e-6)


def test_vectorised_keeps_unknown_as_nan():
    got = geo.distances_km(BERLIN_10115, [MUENCHEN_80331[0], None, np.nan, 52.5323], [MUENCHEN_80331[1], 13.0, 13.0, None])
    assert got[0] == pytest.approx(geo.distance_km(BERLIN_10115, MUENCHEN_80331))
    assert np.isnan(got[1:]).all()
    assert not (got[1:] <= 25).any()  # an unknown distance never passes a distance check


def test_vectorised_accepts_numpy_and_empty():
    assert geo.distances_km(BERLIN_10115, np.array([]), np.array([])).shape == (0,)
    arr = np.array([52.5323, 48.1345])
    out = geo.distances_km(BERLIN_10115, arr, np.array([13.3846, 11.571]))
    assert out[0] == 0.0 and 500 < out[1] < 510
    assert arr[0] == 52.5323  # inputs untouched


# --------------------------------------------------------------------------- bounding box


def _destination(origin, distance_km, bearing_deg):
    lat1, lon1 = math.radians(origin[0]), math.radians(origin[1])
    d = distance_km / geo.EARTH_RADIUS_KM
    brg = math.radians(bearing_deg)
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(brg))
    lon2 = lon1 + math.atan2(math.sin(brg) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2))
    lon2 = (math.degrees(lon2) + 540.0) % 360.0 - 180.0
    return math.degrees(lat2), lon2


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
@given(
    st.tuples(st.floats(min_value=-89.9, max_value=89.9), lons),
    st.floats(min_value=0, max_value=3000),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=360),
)
def test_bbox_contains_every_point_within_radius(center, radius, fraction, bearing):
    box = geo.bounding_box(center, radius)
    point = _destination(center, radius * fraction, bearing)
    assert geo.distance_km(center, point) <= radius + 1e-6
    assert box.contains(point), (box, point)


@settings(deadline=None)  # examples per the hypothesis profile (tests/conftest.py)
@given(st.tuples(st.floats(min_value=47, max_value=55.1), st.floats(min_value=5.8, max_value=15.1)), st.floats(1, 200))
def test_bbox_is_tight_in_germany(center, radius):
    box = geo.bounding_box(center, radius)
    assert not box.spans_all_longitudes
    north = _destination(center, radius, 0)
    assert box.max_lat - north[0] < 1e-4
    # the box is not much wider than the circle: its corners are outside
    assert geo.distance_km(center, (box.max_lat, box.max_lon)) > radius


def test_bbox_pole_and_antimeridian_take_all_longitudes():
    assert geo.bounding_box((89.5, 10), 100).spans_all_longitudes
    assert geo.bounding_box((0, 179.9), 50).spans_all_longitudes
    with pytest.raises(ValueError):
        geo.bounding_box(BERLIN_10115, -1)


# --------------------------------------------------------------------------- GeoNames parsing

SAMPLE = """\
DE\t20095\tHamburg Altstadt\tHamburg\tHH\t\t00\tHamburg, Freie und Hansestadt\t02000\t53.5453\t9.9953\t
DE\t20095\tHamburg Klostertor\tHamburg\tHH\t\t00\tHamburg, Freie und Hansestadt\t02000\t53.5439\t10.0133\t
DE\t20095\tHamburg\tHamburg\tHH\t\t00\tHamburg, Freie und Hansestadt\t02000\t53.5521\t10.0004\t
DE\t14461\tStadtverwaltung Potsdam\tBrandenburg\t11\t\t\tKreisfreie Stadt Potsdam\t12054\t52.40\t13.06\t
DE\t14461\tPotsdam\tBrandenburg\tBB\t\t00\tKreisfreie Stadt Potsdam\t12054\t52.3989\t13.0657\t
DE\t10875\tFirma Nord\tLand Berlin\t16\t\t\tBerlin, Stadt\t11000\t52.5064\t13.3731\t
DE\t10875\tFirma Nord 2\tLand Berlin\t16\t\t\tBerlin, Stadt\t11000\t52.5078\t13.3751\t
DE\t10875\tFirma Süd\tBaden-Württemberg\t01\tRegierungsbezirk Stuttgart\t081\tStadtkreis Stuttgart\t08111\t48.78\t9.18\t
DE\t10115\tBerlin\tBerlin\tBE\t\t00\tBerlin, Stadt\t11000\t52.5323\t13.3846\t
DE\t10997\tBerlin Kreuzberg\tBerlin\tBE\t\t00\tBerlin, Stadt\t11000\t52.50\t13.43\t
DE\t87491\tJungholz\t\t\t\t\t\t\t47.5741\t10.4472\t
DE\t1234\tKaputt\tBayern\tBY\t\t\t\t\t48\t11\t
DE\t80331\tMünchen\tBayern\tBY\tUpper Bavaria\t091\tKreisfreie Stadt München\t09162\tnot-a-number\t11.571\t
"""


def test_parse_and_aggregate_sample():
    rows, skipped = geo_plz.parse_geonames_lines(SAMPLE.splitlines(keepends=True))
    assert skipped == 2  # four-digit PLZ, broken latitude
    records = {r.plz: r for r in geo_plz.aggregate_plz(rows)}
    assert sorted(records) == ["10115", "10875", "10997", "14461", "20095", "87491"]

    hamburg = records["20095"]
    assert hamburg.city == "Hamburg"  # the name covering the others, not the first row
    assert hamburg.state_code == "HH"
    assert hamburg.lat == pytest.approx((53.5453 + 53.5439 + 53.5521) / 3)
    assert hamburg.lon == pytest.approx((9.9953 + 10.0133 + 10.0004) / 3)

    potsdam = records["14461"]  # the large recipient row does not move the real place
    assert (potsdam.city, potsdam.state_code, potsdam.lat, potsdam.lon) == ("Potsdam", "BB", 52.3989, 13.0657)

    firms = records["10875"]  # large recipients only: the dominant district, named after a real place
    assert firms.state_code == "BE"
    assert firms.city == "Berlin"
    assert firms.lat == pytest.approx((52.5064 + 52.5078) / 2)
    assert geo.distance_km((firms.lat, firms.lon), BERLIN_10115) < 10

    assert records["87491"].state_code is None  # the one row without a state


@pytest.mark.parametrize("numeric, letters", sorted(geo.GEONAMES_ADMIN1_TO_STATE.items()))
def test_numeric_state_codes_normalised(numeric, letters):
    assert geo_plz.normalise_state_code(numeric) == letters
    assert geo_plz.normalise_state_code(letters) == letters
    assert letters in holidays.Germany.subdivisions  # the codes the holidays package knows


def test_state_code_set_matches_holidays():
    assert geo.STATE_CODES == set(holidays.Germany.subdivisions) - {"Augsburg"}
    assert set(geo.GEONAMES_ADMIN1_TO_STATE.values()) == geo.STATE_CODES
    assert geo_plz.normalise_state_code("") is None
    assert geo_plz.normalise_state_code("99") is None


@pytest.mark.parametrize("raw, expected", [("10115", "10115"), (" 01067 ", "01067"), ("1067", None), ("1011a", None), (None, None), ("", None)])
def test_normalise_plz(raw, expected):
    assert geo_plz.normalise_plz(raw) == expected


# --------------------------------------------------------------------------- rate limiter


class FakeClock:
    def __init__(self):
        self.t = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds


def test_limiter_spaces_requests_from_end_of_previous():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    starts = []
    for duration in (0.0, 0.3, 2.5, 0.0):
        with limiter.slot():
            starts.append(clock())
            clock.t += duration
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0])
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([1.0, 1.3, 3.5])


def test_limiter_no_wait_when_enough_time_passed():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    with limiter.slot():
        pass
    clock.t += 5
    with limiter.slot():
        pass
    assert clock.sleeps == []


def test_limiter_is_thread_safe():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    spans: list[tuple[float, float]] = []

    def worker():
        for _ in range(5):
            with limiter.slot():
                start = clock()
                clock.t += 0.01
                spans.append((start, clock()))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 30
    for (_, prev_end), (start, _) in zip(spans, spans[1:]):
        assert start - prev_end >= 1.0 - 1e-9  # never overlapping, always a second apart


# --------------------------------------------------------------------------- geocoder pieces

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def test_parse_retry_after():
    assert parse_retry_after("7", now=NOW) == 7.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:30:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


def test_parse_search_response():
    assert parse_search_response([]) is None
    hit = parse_search_response([{"lat": "52.52", "lon": "13.405", "display_name": "Berlin"}])
    assert (hit.lat, hit.lon, hit.display_name) == (52.52, 13.405, "Berlin")
    for bad in ({"error": "x"}, [{"lat": "x", "lon": "1"}], [{"lat": "99", "lon": "1"}], ["x"]):
        with pytest.raises(GeocoderError):
            parse_search_response(bad)


def test_geocoder_configuration():
    g = NominatimGeocoder("https://geo.example.de/", user_agent="tp-dashboard/1.0", contact="it@agentur.de")
    assert g.search_url == "https://geo.example.de/search"
    assert g.user_agent == "tp-dashboard/1.0 (it@agentur.de)"
    params = g.structured_params(PracticeAddress("Hauptstraße 1", "10115", "Berlin"))
    assert params == {
        "format": "jsonv2",
        "street": "Hauptstraße 1",
        "postalcode": "10115",
        "city": "Berlin",
        "country": "de",
        "limit": "1",
        "email": "it@agentur.de",
    }
    assert g.free_form_params(PracticeAddress("Hauptstraße 1", "10115", "Berlin"))["q"] == "Hauptstraße 1, 10115 Berlin"
    with pytest.raises(GeocoderConfigError, match="GEOCODER_CONTACT"):
        NominatimGeocoder("https://nominatim.openstreetmap.org", user_agent="x")
    with pytest.raises(GeocoderConfigError, match="GEOCODER_URL"):
        NominatimGeocoder("ftp://geo.example.de", user_agent="x")


def test_from_settings(tmp_path):
    from core.platform.config import load_settings

    no_env = tmp_path / "missing.env"
    assert NominatimGeocoder.from_settings(load_settings(environ={}, env_file=no_env)) is None  # offline default
    g = NominatimGeocoder.from_settings(
        load_settings(
            environ={"GEOCODER_URL": "http://127.0.0.1:9/", "GEOCODER_CONTACT": "it@agentur.de", "GEOCODER_TIMEOUT_S": "3"},
            env_file=no_env,
        )
    )
    assert (g.search_url, g.timeout_s, g.email) == ("http://127.0.0.1:9/search", 3, "it@agentur.de")
    assert "it@agentur.de" in g.user_agent


def test_only_therapists_can_be_geocoded():
    patient = Patient(first_name="Pia", last_name="Geheim", street="Heimweg 1", plz="10115", city="Berlin")
    with pytest.raises(TypeError):
        practice_address(patient)  # type: ignore[arg-type]
    t = Therapist(first_name="A", last_name="B", street="  Hauptstraße   1 ", plz="10115", city="Berlin")
    assert practice_address(t) == PracticeAddress("Hauptstraße 1", "10115", "Berlin")
    assert practice_address(Therapist(first_name="A", last_name="B", street=None, plz="10115", city="Berlin")) is None


def test_cache_key_ignores_case_and_spacing():
    a = cache_key(PracticeAddress("Hauptstraße  1", "10115", "Berlin"))
    b = cache_key(PracticeAddress("hauptstraße 1", "10115", "BERLIN"))
    assert a == b
    assert a != cache_key(PracticeAddress("Hauptstraße 2", "10115", "Berlin"))
