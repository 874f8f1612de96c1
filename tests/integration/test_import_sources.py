"""Import sources on a real database: several files and ZIP archives uploaded together, the
watched folder, and the live refresh against the 116117 fixture server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.adapters.arztsuche_client import ArztsucheClient, Pacer
from core.imports import review, sources
from core.imports.sources import UploadedFile
from core.platform.config import load_settings
from core.platform.models import ImportChange, ImportRun, PlzCentroid, Therapist
from core.platform.permissions import SYSTEM, Actor
from core.platform.vocab import Role
from jobs import import_jobs
from jobs.spec import JobContext
from tests.integration.test_arztsuche_client import AUTH, Arztsuche, FakeTime, make_handler

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche"
COORD = Actor(user_id=None, username="koordination", role=Role.coordinator)
NOW = datetime(2026, 3, 11, 9, 0, tzinfo=timezone.utc)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    return buf.getvalue()


def split_fixture() -> tuple[bytes, bytes]:
    data = json.loads(fixture("current_2026.json"))
    entries = data["arztPraxisDatas"]
    first = {"arztPraxisDatas": entries[:1], "moreResults": False}
    rest = {"arztPraxisDatas": entries[1:], "moreResults": False}
    return json.dumps(first).encode(), json.dumps(rest).encode()


def test_a_zip_of_many_files_gives_one_run_per_file(db_session):
    raw = zipped({
        "koeln/antwort.json": fixture("current_2026.json"),
        "leipzig.json": fixture("legacy_2025.json"),
        "liesmich.txt": b"hallo",
        "kaputt.json": fixture("truncated.json"),
    })
    outcomes, problems = sources.import_uploads(db_session, COORD, [UploadedFile("paket.zip", raw)], now=NOW)
    assert [o.filename for o in outcomes] == ["paket.zip/kaputt.json", "paket.zip/koeln/antwort.json", "paket.zip/leipzig.json"]
    assert [o.status for o in outcomes] == ["failed", "done", "done"]
    assert "endet mitten im Inhalt" in outcomes[0].message
    assert problems == ["„paket.zip/liesmich.txt“ ist keine JSON-Datei und wurde übergangen."]


def test_a_broken_zip_is_reported(db_session):
    outcomes, problems = sources.import_uploads(db_session, COORD, [UploadedFile("x.zip", b"PK\x03\x04kaputt")], now=NOW)
    assert outcomes == [] and "kein lesbares ZIP-Archiv" in problems[0]


def test_files_uploaded_together_do_not_delist_each_other(db_session):
    outcomes, _ = sources.import_uploads(db_session, COORD, [UploadedFile("alle.json", fixture("current_2026.json"))], now=NOW)
    review.accept_all(db_session, COORD, now=NOW)
    a, b = split_fixture()
    progress = []
    outcomes, _ = sources.import_uploads(
        db_session, COORD, [UploadedFile("a.json", a), UploadedFile("b.json", b)], now=NOW + timedelta(days=1),
        progress=lambda fraction, text: progress.append(fraction),
    )
    assert [o.counts["delisted"] for o in outcomes] == [0, 0]
    assert sum(o.counts["changed"] + o.counts["new"] for o in outcomes) == 0
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_the_watched_folder(db_session, tmp_path):
    (tmp_path / "koeln.json").write_bytes(fixture("current_2026.json"))
    (tmp_path / "kaputt.json").write_bytes(fixture("invalid.json"))
    (tmp_path / "notiz.txt").write_text("bleibt liegen")
    summary = sources.process_folder(lambda: nullcontext(db_session), SYSTEM, tmp_path, now=NOW)
    assert summary.files == 2
    assert "1 gelesen" in summary.message() and "1 fehlerhaft" in summary.message()
    assert (tmp_path / "done" / "koeln.json").exists()
    assert (tmp_path / "failed" / "kaputt.json").exists()
    assert (tmp_path / "notiz.txt").exists()
    # the same file dropped again: recognised by its hash
    (tmp_path / "koeln-nochmal.json").write_bytes(fixture("current_2026.json"))
    again = sources.process_folder(lambda: nullcontext(db_session), SYSTEM, tmp_path, now=NOW)
    assert "1 bereits importiert" in again.message()
    assert db_session.execute(select(func.count(ImportRun.id)).where(ImportRun.source == "folder")).scalar_one() == 3


def test_live_is_off_by_default_and_says_why(db_session):
    settings = load_settings({})
    status = sources.live_status(db_session, COORD, settings)
    assert not status.enabled and "ARZTSUCHE_LIVE" in status.explanation
    summary = sources.refresh_live(lambda: nullcontext(db_session), SYSTEM, settings, now=NOW)
    assert "ausgeschaltet" in summary.message()


def test_live_on_but_incomplete_says_what_is_missing(db_session):
    settings = load_settings({"ARZTSUCHE_LIVE": "1", "ARZTSUCHE_AREAS": "5066:25"})
    status = sources.live_status(db_session, COORD, settings)
    assert not status.enabled
    for word in ("ARZTSUCHE_CONTACT", "ARZTSUCHE_AUTHORIZATION", "„5066“ ist keine fünfstellige PLZ"):
        assert word in status.explanation


@pytest.fixture
def live_server():
    state = Arztsuche(default_body=fixture("current_2026.json"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/api/data"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_live_refresh_imports_due_areas_and_stops_on_500(db_session, live_server):
    db_session.add_all([
        PlzCentroid(plz="50667", city="Köln", state_code="NW", lat=50.9375, lon=6.9603),
        PlzCentroid(plz="04109", city="Leipzig", state_code="SN", lat=51.3397, lon=12.3731),
    ])
    db_session.flush()
    settings = load_settings({
        "ARZTSUCHE_LIVE": "true", "ARZTSUCHE_AREAS": "50667:25, 04109:10, 10115:5, 20095:5, 80331:5, 01067:5, 60311:5, 70173:5",
        "ARZTSUCHE_CONTACT": "it@agentur.example", "ARZTSUCHE_AUTHORIZATION": AUTH, "ARZTSUCHE_URL": live_server.url,
    })
    fake = FakeTime()
    client = ArztsucheClient(authorization=AUTH, contact="it@agentur.example", url=live_server.url,
                             pacer=Pacer(clock=fake.clock, sleep=fake.sleep))
    scope = lambda: nullcontext(db_session)  # noqa: E731
    # 8 areas → at most 2 per run (spread over the week); only 2 PLZ have a known centre
    first = sources.refresh_live(scope, SYSTEM, settings, now=NOW, client=client)
    assert first.fetched == 2 and not first.stopped
    assert fake.sleeps == [60.0]
    assert first.outcomes[0].counts["new"] == 6
    assert len(live_server.log) == 2
    # not due again within the week
    again = sources.refresh_live(scope, SYSTEM, settings, now=NOW + timedelta(days=1), client=client)
    assert again.fetched == 0 and len(live_server.log) == 2
    # a week later the site answers 500: the run stops with the message, nothing retried
    live_server.answers = [(500, {}, b"")]
    later = sources.refresh_live(scope, SYSTEM, settings, now=NOW + timedelta(days=8), client=client)
    assert "HTTP 500" in later.message() and later.fetched == 0
    assert len(live_server.log) == 3
    status = sources.live_status(db_session, COORD, settings)
    assert status.enabled and "gestoppt" in status.last_message and "HTTP 500" in status.last_message
    assert db_session.execute(select(func.count(Therapist.id))).scalar_one() == 0  # live results wait for review too
    assert db_session.execute(select(func.count(ImportChange.id))).scalar_one() >= 6


def test_the_import_jobs_are_thin_calls(db_session, tmp_path):
    (tmp_path / "koeln.json").write_bytes(fixture("current_2026.json"))
    settings = replace(load_settings({}), IMPORT_FOLDER=str(tmp_path))
    ctx = JobContext(now=NOW, runner_id="test", settings=settings, session_scope=lambda: nullcontext(db_session))
    assert "1 gelesen" in import_jobs.import_folder(ctx)
    assert "ausgeschaltet" in import_jobs.live_refresh(ctx)
