"""The polite live fetch against a small HTTP server on 127.0.0.1 that implements the request
protocol of the 116117 doctor search (``POST /api/data`` with Authorization, the computed
``req-val`` header and the JSON body) and answers from the test's own fixture. Every
request is logged, so correctness, spacing, stops and the absence of retries are checked
from what the server actually received. No other host is ever contacted."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import requests

from core.adapters.arztsuche_client import (
    ArztsucheBlocked,
    ArztsucheClient,
    ArztsucheConfigError,
    ArztsucheError,
    LiveArea,
    Pacer,
    req_val,
    request_body,
)
from core.arztsuche import parse_response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche"
AUTH = "Basic " + base64.b64encode(b"testuser:testpass").decode()  # the test's own value, not the site's
CONTACT = "it@agentur.example"
KOELN = LiveArea("50667", 50.9375, 6.9603, 25)
LEIPZIG = LiveArea("04109", 51.3397, 12.3731, 10)
BERLIN = LiveArea("10115", 52.52, 13.405, 10)


def expected_req_val_digits(lat: float, lon: float) -> tuple[str, str, str, str]:
    """(n, o, p, q) per the reference algorithm, computed independently of the client."""
    a, b = str(lat + 1.1), str(lon + 2.3)
    ai, af = a.split(".")
    bi, bf = b.split(".")
    return ai[-1], bi[-1], af[0], bf[0]


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: Optional[dict]
    problems: list[str]


@dataclass
class Arztsuche:
    """The fixture server's state: what it answers, what it received."""

    answers: list[tuple[int, dict, bytes]] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    default_body: bytes = b""

    def check(self, headers: dict[str, str], body: Optional[dict]) -> list[str]:
        problems = []
        if headers.get("authorization") != AUTH:
            problems.append("authorization")
        if headers.get("content-type") != "application/json":
            problems.append("content-type")
        if body is None:
            return problems + ["body"]
        for key, value in (("locType", "LATLON"), ("plz", None), ("osmId", None), ("osmType", None),
                           ("locOrigin", "USER_INPUT"), ("searchTrigger", "INITIAL"), ("viaDeeplink", False)):
            if body.get(key, "missing") != value:
                problems.append(f"body.{key}")
        if not isinstance(body.get("r"), (int, float)) or not isinstance(body.get("lat"), float) or not isinstance(body.get("lon"), float):
            problems.append("body.r/lat/lon")
            return problems
        fgg = [f for f in body.get("filterSelections", []) if f.get("fieldName") == "fgg"]
        if not fgg or fgg[0].get("selectedCodes") != ["12"]:
            problems.append("body.fgg")
        try:
            token = base64.b64decode(headers.get("req-val", ""), validate=True).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return problems + ["req-val"]
        if len(token) != 7 or not token.isdigit():
            return problems + ["req-val"]
        n, o, p, q = expected_req_val_digits(body["lat"], body["lon"])
        if (token[0], token[2], token[4], token[6]) != (n, o, p, q):
            problems.append("req-val")
        return problems


def make_handler(state: Arztsuche):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            state.log.append(Logged("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None, ["GET"]))
            self._send(405, {}, b"")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = None
            problems = [] if self.path == "/api/data" else ["path"]
            problems += state.check(headers, body)
            state.log.append(Logged("POST", self.path, headers, body, problems))
            if problems:
                self._send(400, {}, json.dumps({"problems": problems}).encode())
                return
            status, extra, payload = state.answers.pop(0) if state.answers else (200, {}, state.default_body)
            self._send(status, extra, payload)

        def _send(self, status: int, extra: dict, payload: bytes):
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if payload else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def server():
    state = Arztsuche(default_body=(FIXTURES / "current_2026.json").read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/api/data"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps (or the test says so)."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


def client_for(server, fake_time, **kw) -> ArztsucheClient:
    kw.setdefault("epoch_ms", lambda: 1767225600123)
    return ArztsucheClient(
        authorization=AUTH, contact=CONTACT, url=server.url, pacer=Pacer(clock=fake_time.clock, sleep=fake_time.sleep), **kw
    )


# --------------------------------------------------------------------------- a correct request


def test_the_request_follows_the_protocol_and_the_answer_parses(server, fake_time):
    result = client_for(server, fake_time).fetch(KOELN)
    (req,) = server.log
    assert req.problems == []
    assert (req.method, req.path) == ("POST", "/api/data")
    assert req.headers["req-val"] == req_val(KOELN.lat, KOELN.lon, 1767225600123) == "MjM5MjAxMg=="
    assert req.headers["accept"] == "application/json"
    assert req.body == request_body(KOELN.lat, KOELN.lon, 25)
    assert req.body["r"] == 25
    # honest: names the tool and the contact, does not pretend to be a browser
    ua = req.headers["user-agent"]
    assert CONTACT in ua and "therapieplatz" in ua and "Mozilla" not in ua and "Chrome" not in ua
    for header in ("cookie", "origin", "referer", "sec-ch-ua", "x-requested-with"):
        assert header not in req.headers
    assert [r.last_name for r in parse_response(result.data)][:2] == ["Beispiel", "Muster"]
    assert result.body == (FIXTURES / "current_2026.json").read_bytes()


def test_filters_are_sent_as_filter_selections(server, fake_time):
    client_for(server, fake_time).fetch(KOELN, methods=["VT"], age_groups=["E"], settings=["E"])
    body = server.log[0].body
    assert {f["fieldName"]: f["selectedCodes"] for f in body["filterSelections"]} == {
        "fgg": ["12"], "ptv": ["V"], "pta": ["E"], "pts": ["E"],
    }


def test_the_fixture_server_rejects_a_wrong_req_val(server):
    """The server really checks req-val (otherwise the test above proves nothing)."""
    body = request_body(KOELN.lat, KOELN.lon, 25)
    bad = base64.b64encode(b"0000000").decode()
    response = requests.post(server.url, json=body, headers={"Authorization": AUTH, "req-val": bad}, timeout=5)
    assert response.status_code == 400 and "req-val" in response.json()["problems"]


def test_reference_vectors_of_req_val():
    assert req_val(50.9375, 6.9603, 1767225600123) == "MjM5MjAxMg=="
    assert req_val(52.52, 13.405, 1767225600000) == "MzA1MDYwNw=="


# --------------------------------------------------------------------------- politeness


def test_the_minimum_interval_is_respected_between_requests(server, fake_time):
    client = client_for(server, fake_time)  # default 60 s
    report = client.fetch_all([KOELN, LEIPZIG, BERLIN])
    assert not report.stopped and len(report.results) == 3
    assert len(server.log) == 3 and all(r.problems == [] for r in server.log)
    assert fake_time.sleeps == [60.0, 60.0]


def test_time_already_passed_counts_towards_the_interval(server, fake_time):
    client = client_for(server, fake_time, min_interval_s=60)
    client.fetch(KOELN)
    fake_time.now += 45  # the caller did other work for 45 s
    client.fetch(LEIPZIG)
    assert fake_time.sleeps == [pytest.approx(15.0)]
    fake_time.now += 120
    client.fetch(BERLIN)
    assert len(fake_time.sleeps) == 1


def test_a_500_stops_the_run_with_a_message_and_nothing_is_retried(server, fake_time):
    server.answers = [(200, {}, server.default_body), (500, {}, b"")]
    report = client_for(server, fake_time).fetch_all([KOELN, LEIPZIG, BERLIN])
    assert report.stopped and isinstance(report.error, ArztsucheBlocked)
    assert report.error.status == 500
    assert "HTTP 500" in report.error.message and "gestoppt" in report.error.message
    assert "weder wiederholt noch mit veränderten Angaben" in report.error.message
    assert len(report.results) == 1
    assert [a.label for a in report.not_fetched] == ["04109", "10115"]
    # exactly one request per fetched area: no retry, no cookie warm-up GET, no second try
    assert [(r.method, r.body["lat"]) for r in server.log] == [("POST", KOELN.lat), ("POST", LEIPZIG.lat)]
    # the same header set every time (nothing altered after the failure)
    assert set(server.log[0].headers) == set(server.log[1].headers)
    assert server.log[0].headers["user-agent"] == server.log[1].headers["user-agent"]


@pytest.mark.parametrize(
    "status, extra, words",
    [
        (403, {}, ["HTTP 403", "abgelehnt", "nicht mit veränderten Angaben"]),
        (429, {"Retry-After": "3600"}, ["HTTP 429", "60 Minuten"]),
        (503, {}, ["HTTP 503", "gestoppt"]),
        (302, {"Location": "http://127.0.0.1:9/challenge"}, ["HTTP 302", "Umleitung wird nicht gefolgt"]),
    ],
)
def test_blocking_answers_stop_with_a_german_message(server, fake_time, status, extra, words):
    server.answers = [(status, extra, b"")]
    report = client_for(server, fake_time).fetch_all([KOELN, LEIPZIG])
    assert isinstance(report.error, ArztsucheBlocked) and report.error.status == status
    for w in words:
        assert w in report.error.message
    assert len(server.log) == 1  # nothing else was tried (no retry, redirect not followed)
    if status == 429:
        assert report.error.retry_after_s == 3600


def test_an_html_page_instead_of_json_stops_the_run(server, fake_time):
    server.answers = [(200, {}, b"<html>Bitte aktivieren Sie JavaScript</html>")]
    with pytest.raises(ArztsucheBlocked, match="kein JSON"):
        client_for(server, fake_time).fetch(KOELN)


def test_cookies_set_by_the_server_are_never_sent_back(server, fake_time):
    server.answers = [(200, {"Set-Cookie": "JSESSIONID=abc123; Path=/"}, server.default_body)]
    client = client_for(server, fake_time)
    client.fetch(KOELN)
    client.fetch(LEIPZIG)
    assert "cookie" not in server.log[1].headers
    assert len(client.session.cookies) == 0


def test_an_unreachable_server_stops_with_a_message(fake_time):
    client = ArztsucheClient(
        authorization=AUTH, contact=CONTACT, url="http://127.0.0.1:9/api/data",
        pacer=Pacer(clock=fake_time.clock, sleep=fake_time.sleep), timeout_s=2,
    )
    with pytest.raises(ArztsucheError, match="nicht erreichbar"):
        client.fetch(KOELN)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"contact": ""}, "ARZTSUCHE_CONTACT"),
        ({"authorization": " "}, "ARZTSUCHE_AUTHORIZATION"),
        ({"url": "ftp://x"}, "ARZTSUCHE_URL"),
        ({"min_interval_s": -1}, "ARZTSUCHE_MIN_INTERVAL_S"),
    ],
)
def test_unusable_settings_are_refused(kw, words):
    args = dict(authorization=AUTH, contact=CONTACT, url="http://127.0.0.1:9/api/data")
    args.update(kw)
    with pytest.raises(ArztsucheConfigError, match=words):
        ArztsucheClient(**args)
