"""Therapist geocoding against a real HTTP server on 127.0.0.1 that speaks Nominatim's
`/search?format=jsonv2` protocol from a fixture file the test writes. Every request is
logged with its arrival time, so spacing, retries, cache hits and privacy are checked
from what the server actually received."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from core.adapters.geocoder import GeocoderError, NominatimGeocoder, PracticeAddress, RateLimiter
from core.geo.plz import place_patient
from core.geo.geocoding import geocode_pending_therapists, geocoding_counts, request_geocoding
from core.platform.models import GeocodeCacheEntry, Patient, PlzCentroid, Therapist
from core.platform.vocab import CoordinatesSource

CONTACT = "it@agentur.example"


def nominatim_hit(lat: float, lon: float, name: str) -> list[dict]:
    return [
        {
            "place_id": 1,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
            "osm_type": "way",
            "osm_id": 42,
            "lat": f"{lat}",
            "lon": f"{lon}",
            "category": "building",
            "type": "yes",
            "place_rank": 30,
            "importance": 0.1,
            "addresstype": "building",
            "name": "",
            "display_name": name,
            "boundingbox": [f"{lat - 0.001}", f"{lat + 0.001}", f"{lon - 0.001}", f"{lon + 0.001}"],
        }
    ]


@dataclass
class LoggedRequest:
    at: float
    requestline: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """Everything the server saw, raw and URL-decoded, for substring checks."""
        raw = self.requestline + "\n" + "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return raw + "\n" + urllib.parse.unquote_plus(raw) + "\n" + self.body.decode("utf-8", "replace")


class NominatimFixtureServer:
    """`/search` answering from a JSON fixture file: {"<street>" | "q:<query>": [response, ...]}.

    A response is {"status": 200, "headers": {...}, "json": [...], "delay": seconds}. A key's
    responses are served in order and the last one repeats; unknown keys get `200 []`."""

    def __init__(self, fixture_file: Path):
        self.fixtures: dict[str, list[dict]] = json.loads(fixture_file.read_text(encoding="utf-8"))
        self.served: dict[str, int] = {}
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                with outer._lock:
                    outer.log.append(LoggedRequest(arrived, self.requestline, params, dict(self.headers), body))
                    key = params["street"] if "street" in params else "q:" + params.get("q", "")
                    answers = outer.fixtures.get(key) or [{"status": 200, "json": []}]
                    n = outer.served.get(key, 0)
                    outer.served[key] = n + 1
                    answer = answers[min(n, len(answers) - 1)]
                if answer.get("delay"):
                    time.sleep(answer["delay"])
                if url.path != "/search":
                    answer = {"status": 404, "json": {"error": "not found"}}
                payload = json.dumps(answer.get("json", [])).encode("utf-8")
                try:
                    self.send_response(answer.get("status", 200))
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.get("headers", {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nominatim(tmp_path):
    servers: list[NominatimFixtureServer] = []

    def start(fixtures: dict[str, list[dict]]) -> NominatimFixtureServer:
        path = tmp_path / f"nominatim_{len(servers)}.json"
        path.write_text(json.dumps(fixtures, ensure_ascii=False), encoding="utf-8")
        servers.append(NominatimFixtureServer(path))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


class SleepRecorder:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_geocoder(server: NominatimFixtureServer, **kwargs) -> NominatimGeocoder:
    kwargs.setdefault("limiter", RateLimiter(0.0))  # spacing has its own test with the real interval
    kwargs.setdefault("sleep", SleepRecorder())
    kwargs.setdefault("timeout_s", 5)
    return NominatimGeocoder(server.url, user_agent="tp-dashboard-test/1.0", contact=CONTACT, **kwargs)


@pytest.fixture
def plz_rows(db_session):
    db_session.add_all(
        [
            PlzCentroid(plz="10115", city="Berlin", state_code="BE", lat=52.5323, lon=13.3846),
            PlzCentroid(plz="80331", city="München", state_code="BY", lat=48.1345, lon=11.571),
        ]
    )
    db_session.flush()


def therapist(db_session, last_name: str, street, plz="10115", city="Berlin", **kw) -> Therapist:
    kw.setdefault("geocode_pending", True)
    t = Therapist(first_name="Test", last_name=last_name, street=street, plz=plz, city=city, **kw)
    db_session.add(t)
    db_session.flush()
    return t


FOUND = {"Praxisweg 1": [{"json": nominatim_hit(52.52, 13.40, "Praxisweg 1, 10115 Berlin")}]}


# --------------------------------------------------------------------------- the adapter alone


def test_requests_at_least_one_second_apart(nominatim):
    server = nominatim(
        {
            f"Praxisweg {i}": [{"json": nominatim_hit(52.5 + i / 100, 13.4, f"Praxisweg {i}")}]
            for i in range(1, 4)
        }
    )
    geocoder = NominatimGeocoder(
        server.url + "/", user_agent="tp-dashboard-test/1.0", contact=CONTACT, timeout_s=5, limiter=RateLimiter(1.0)
    )
    results = [geocoder.geocode(PracticeAddress(f"Praxisweg {i}", "10115", "Berlin")) for i in range(1, 4)]
    assert [r.lat for r in results] == [52.51, 52.52, 52.53]
    times = [r.at for r in server.log]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"\nspacing at the server: {', '.join(f'{g:.3f} s' for g in gaps)}")
    assert len(server.log) == 3
    assert all(g >= 1.0 for g in gaps), gaps
    first = server.log[0]
    assert first.headers["User-Agent"] == f"tp-dashboard-test/1.0 ({CONTACT})"
    assert first.params == {
        "format": "jsonv2",
        "street": "Praxisweg 1",
        "postalcode": "10115",
        "city": "Berlin",
        "country": "de",
        "limit": "1",
        "email": CONTACT,
    }


def test_429_with_retry_after_then_200(nominatim):
    server = nominatim(
        {"Wartestraße 5": [{"status": 429, "headers": {"Retry-After": "3"}}, {"json": nominatim_hit(52.53, 13.38, "W")}]}
    )
    sleep = SleepRecorder()
    result = make_geocoder(server, sleep=sleep).geocode(PracticeAddress("Wartestraße 5", "10115", "Berlin"))
    assert (result.lat, result.lon) == (52.53, 13.38)
    assert len(server.log) == 2
    assert sleep.calls == [3.0]  # the server's Retry-After, not our own backoff


def test_retry_after_is_capped_and_5xx_backs_off_exponentially(nominatim):
    server = nominatim(
        {
            "Langsam 1": [{"status": 429, "headers": {"Retry-After": "86400"}}, {"json": nominatim_hit(52.5, 13.4, "L")}],
            "Kaputt 1": [{"status": 503}],
        }
    )
    sleep = SleepRecorder()
    g = make_geocoder(server, sleep=sleep, max_retries=3, backoff_base_s=2.0, max_backoff_s=60.0)
    assert g.geocode(PracticeAddress("Langsam 1", "10115", "Berlin")) is not None
    assert sleep.calls == [60.0]
    sleep.calls.clear()
    with pytest.raises(GeocoderError, match="503"):
        g.geocode(PracticeAddress("Kaputt 1", "10115", "Berlin"))
    assert sleep.calls == [2.0, 4.0, 8.0]
    assert len(server.log) == 2 + 4


def test_client_errors_are_not_retried(nominatim):
    server = nominatim({"Verboten 1": [{"status": 403, "json": {"error": "blocked"}}]})
    with pytest.raises(GeocoderError, match="403"):
        make_geocoder(server).geocode(PracticeAddress("Verboten 1", "10115", "Berlin"))
    assert len(server.log) == 1


def test_timeout_is_retried_then_reported(nominatim):
    server = nominatim({"Zäh 1": [{"delay": 1.0, "json": []}]})
    g = make_geocoder(server, timeout_s=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(GeocoderError, match="2 attempts"):
        g.geocode(PracticeAddress("Zäh 1", "10115", "Berlin"))
    assert time.monotonic() - started < 1.5
    assert len(server.log) == 2


# --------------------------------------------------------------------------- the service


def test_geocode_pending_therapists(db_session, plz_rows, nominatim, now):
    server = nominatim(
        {
            **FOUND,
            "Wartestraße 5": [{"status": 429, "headers": {"Retry-After": "1"}}, {"json": nominatim_hit(52.53, 13.38, "W")}],
            # "Gibtsnicht 99" and "Irgendwo 1" are unknown: structured and free-form both answer []
        }
    )
    found = therapist(db_session, "Found", "Praxisweg 1")
    busy = therapist(db_session, "Busy", "Wartestraße 5")
    unknown = therapist(db_session, "Unknown", "Gibtsnicht 99", plz="80331", city="München")
    no_street = therapist(db_session, "NoStreet", None, plz="80331", city="München")
    unknown_plz = therapist(db_session, "UnknownPlz", "Irgendwo 1", plz="99999", city="Nirgends")
    manual = therapist(db_session, "Manual", "Praxisweg 1", lat=50.0, lon=8.0, coordinates_source=CoordinatesSource.manual)
    done = therapist(db_session, "Done", "Praxisweg 1", geocode_pending=False, lat=51.0, lon=9.0, coordinates_source=CoordinatesSource.arztsuche)
    sleep = SleepRecorder()

    summary = geocode_pending_therapists(db_session, make_geocoder(server, sleep=sleep), limit=50, now=now)

    assert (summary.processed, summary.geocoded, summary.approximate, summary.missing, summary.kept_manual, summary.failed) == (6, 2, 2, 1, 1, 0)
    assert summary.lookups == 4 and summary.cache_hits == 0
    assert "6 verarbeitet" in summary.message()
    assert (found.lat, found.lon, found.coordinates_source) == (52.52, 13.40, CoordinatesSource.geocoded)
    assert (busy.lat, busy.lon, busy.coordinates_source) == (52.53, 13.38, CoordinatesSource.geocoded)
    assert (unknown.lat, unknown.lon, unknown.coordinates_source) == (48.1345, 11.571, CoordinatesSource.plz_centroid)
    assert (no_street.lat, no_street.lon, no_street.coordinates_source) == (48.1345, 11.571, CoordinatesSource.plz_centroid)
    assert (unknown_plz.lat, unknown_plz.lon, unknown_plz.coordinates_source) == (None, None, CoordinatesSource.missing)
    assert (manual.lat, manual.lon, manual.coordinates_source) == (50.0, 8.0, CoordinatesSource.manual)
    assert (done.lat, done.coordinates_source) == (51.0, CoordinatesSource.arztsuche)
    assert not any(t.geocode_pending for t in (found, busy, unknown, no_street, unknown_plz, manual))
    assert found.updated_at == now

    # requests: found 1, busy 429+200, unknown and unknown_plz structured + free-form each
    streets = [r.params.get("street") or r.params["q"] for r in server.log]
    assert streets == [
        "Praxisweg 1",
        "Wartestraße 5",
        "Wartestraße 5",
        "Gibtsnicht 99",
        "Gibtsnicht 99, 80331 München",
        "Irgendwo 1",
        "Irgendwo 1, 99999 Nirgends",
    ]
    assert sleep.calls == [1.0]

    cache = {e.query: e for e in db_session.scalars(select(GeocodeCacheEntry))}
    assert len(cache) == 4
    assert cache["de|10115|berlin|praxisweg 1"].found is True
    assert cache["de|10115|berlin|praxisweg 1"].display_name == "Praxisweg 1, 10115 Berlin"
    assert cache["de|80331|münchen|gibtsnicht 99"].found is False
    assert cache["de|80331|münchen|gibtsnicht 99"].created_at == now

    assert geocoding_counts(db_session) == {"pending": 0, "approximate": 2, "missing": 1}
    assert geocode_pending_therapists(db_session, make_geocoder(server), limit=50, now=now).processed == 0


def test_cache_hit_makes_no_call(db_session, plz_rows, nominatim, now):
    server = nominatim(FOUND)
    geocoder = make_geocoder(server)
    therapist(db_session, "First", "Praxisweg 1")
    therapist(db_session, "NotFound", "Gibtsnicht 99")
    geocode_pending_therapists(db_session, geocoder, limit=10, now=now)
    calls_before = len(server.log)
    assert calls_before == 3

    again = therapist(db_session, "SameAddress", "  praxisweg   1 ", city="BERLIN")
    again_unknown = therapist(db_session, "SameUnknown", "Gibtsnicht 99")
    summary = geocode_pending_therapists(db_session, geocoder, limit=10, now=now)

    assert len(server.log) == calls_before  # no HTTP call at all
    assert (summary.cache_hits, summary.lookups, summary.geocoded, summary.approximate) == (2, 0, 1, 1)
    assert (again.lat, again.lon, again.coordinates_source) == (52.52, 13.40, CoordinatesSource.geocoded)
    assert again_unknown.coordinates_source == CoordinatesSource.plz_centroid
    hits = dict(db_session.execute(select(GeocodeCacheEntry.query, GeocodeCacheEntry.hit_count)).all())
    assert hits == {"de|10115|berlin|praxisweg 1": 1, "de|10115|berlin|gibtsnicht 99": 1}


def test_patient_data_never_reaches_the_geocoder(db_session, plz_rows, nominatim, now):
    server = nominatim(FOUND)
    secrets = {
        "first_name": "Xaverine",
        "last_name": "Quellbrunnerova",
        "street": "Verschwiegenheitsgasse 77",
        "city": "Geheimhausen-Süd",
        "email": "xaverine.q@patient.example",
        "phone": "+49 30 99887766",
        "insurance_number": "Z123456789",
        "notes": "Angststörung vertraulich",
    }
    patients = [
        Patient(**secrets, plz="10115"),
        Patient(first_name="Yannick", last_name="Zwielichtberg", street="Diskretionsweg 3", plz="80331", city="Schweigestadt"),
    ]
    db_session.add_all(patients)
    db_session.flush()
    for p in patients:
        assert place_patient(db_session, p)
    therapist(db_session, "Nachbarin", "Praxisweg 1")  # same PLZ as the first patient
    therapist(db_session, "Fern", "Gibtsnicht 99", plz="80331", city="München")
    request_geocoding(db_session, therapist(db_session, "Umzug", "Praxisweg 1", geocode_pending=False), now=now)

    geocode_pending_therapists(db_session, make_geocoder(server), limit=50, now=now)

    assert server.log, "the therapists were geocoded"
    seen = "\n".join(r.text() for r in server.log).casefold()
    forbidden = list(secrets.values()) + ["Yannick", "Zwielichtberg", "Diskretionsweg", "Schweigestadt", "Verschwiegenheit", "Quellbrunner"]
    for value in forbidden:
        assert value.casefold() not in seen, value
        assert urllib.parse.quote_plus(value).casefold() not in seen, value
    assert (patients[0].lat, patients[0].lon) == (52.5323, 13.3846)  # placed at the centroid, offline


def test_geocoder_failure_keeps_therapist_pending_and_stops(db_session, plz_rows, nominatim, now):
    server = nominatim({"Kaputt 1": [{"status": 502}]})
    failing = therapist(db_session, "Failing", "Kaputt 1")
    waiting = therapist(db_session, "Waiting", "Praxisweg 1")
    sleep = SleepRecorder()

    summary = geocode_pending_therapists(db_session, make_geocoder(server, sleep=sleep, max_retries=2), limit=10, now=now)

    assert (summary.processed, summary.failed) == (1, 1)
    assert "502" in summary.error and "Geocoder-Fehler" in summary.message()
    assert len(server.log) == 3 and sleep.calls == [2.0, 4.0]
    assert failing.geocode_pending is True
    assert (failing.lat, failing.coordinates_source) == (52.5323, CoordinatesSource.plz_centroid)  # usable meanwhile
    assert failing.updated_at == now  # to the back of the queue
    assert waiting.geocode_pending is True and waiting.coordinates_source == CoordinatesSource.missing
    assert db_session.scalars(select(GeocodeCacheEntry)).all() == []  # errors are not cached
    assert geocoding_counts(db_session) == {"pending": 2, "approximate": 1, "missing": 1}


def test_offline_mode_places_at_centroid_and_keeps_pending(db_session, plz_rows, now):
    waiting = therapist(db_session, "Offline", "Praxisweg 1")
    unknown = therapist(db_session, "OfflineUnknown", "Weg 1", plz="99999", city="X")
    summary = geocode_pending_therapists(db_session, None, limit=10, now=now)
    assert (summary.processed, summary.approximate, summary.missing, summary.lookups) == (2, 1, 1, 0)
    assert (waiting.lat, waiting.coordinates_source, waiting.geocode_pending) == (52.5323, CoordinatesSource.plz_centroid, True)
    assert (unknown.lat, unknown.coordinates_source, unknown.geocode_pending) == (None, CoordinatesSource.missing, True)
    # the next offline run only looks at therapists without coordinates
    again = geocode_pending_therapists(db_session, None, limit=10, now=now)
    assert again.therapist_ids == [unknown.id]


def test_limit_bounds_the_batch(db_session, plz_rows, nominatim, now):
    server = nominatim(FOUND)
    for i in range(5):
        therapist(db_session, f"Batch{i}", "Praxisweg 1")
    summary = geocode_pending_therapists(db_session, make_geocoder(server), limit=3, now=now)
    assert summary.processed == 3 and len(server.log) == 1  # one lookup, then the cache
    assert geocoding_counts(db_session)["pending"] == 2


# --------------------------------------------------------------------------- the job


def test_geocoding_job_uses_configured_geocoder(fresh_db_url, nominatim, now):
    """The registered job reads GEOCODER_URL from the settings and commits what it found."""
    import dataclasses
    from functools import partial

    from core.platform.config import load_settings
    from core.platform.db import make_engine, unit_of_work
    from jobs import geo_jobs
    from jobs.registry import JOBS
    from jobs.spec import JobContext

    assert "geocoding" in {spec.id for spec in JOBS}
    server = nominatim(FOUND)
    engine = make_engine(fresh_db_url)
    try:
        scope = partial(unit_of_work, engine)
        with scope() as s:
            s.add(PlzCentroid(plz="10115", city="Berlin", state_code="BE", lat=52.5323, lon=13.3846))
            therapist(s, "Jobtest", "Praxisweg 1")
        settings = dataclasses.replace(load_settings({}), GEOCODER_URL=server.url, GEOCODER_CONTACT=CONTACT)
        ctx = JobContext(now=now, runner_id="t", settings=settings, session_scope=scope)
        assert geo_jobs.geocode(ctx).startswith("1 verarbeitet: 1 geokodiert")
        with scope() as s:
            t = s.scalars(select(Therapist)).one()
            assert (t.lat, t.lon, t.coordinates_source, t.geocode_pending) == (52.52, 13.40, CoordinatesSource.geocoded, False)
        assert len(server.log) == 1
        # offline (no GEOCODER_URL): nothing pending, nothing asked
        offline = dataclasses.replace(ctx, settings=dataclasses.replace(settings, GEOCODER_URL=""))
        assert geo_jobs.geocode(offline).startswith("0 verarbeitet")
    finally:
        engine.dispose()
