"""PLZ table from the GeoNames file, lookups, patient placement, the bounding-box filter,
the download and the `python -m core.geo` command; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.geo import distance as geo
from core.geo import plz as geo_plz
from core.platform.models import Patient, PlzCentroid, Therapist
from core.platform.vocab import CoordinatesSource
from tests.support.databases import IN_CI
from tests.support.geonames import geonames_path

GEONAMES_DE = geonames_path()

SMALL = """\
DE\t10115\tBerlin\tBerlin\tBE\t\t00\tBerlin, Stadt\t11000\t52.5323\t13.3846\t
DE\t80331\tMünchen\tBayern\tBY\tUpper Bavaria\t091\tKreisfreie Stadt München\t09162\t48.1345\t11.571\t
DE\t20095\tHamburg Altstadt\tHamburg\tHH\t\t00\tHamburg, Freie und Hansestadt\t02000\t53.5453\t9.9953\t
DE\t20095\tHamburg\tHamburg\tHH\t\t00\tHamburg, Freie und Hansestadt\t02000\t53.5521\t10.0004\t
DE\t50667\tKöln\tNordrhein-Westfalen\t07\tRegierungsbezirk Köln\t053\tKreisfreie Stadt Köln\t05315\t50.9384\t6.9584\t
"""


def geonames_file() -> Path:
    if not GEONAMES_DE.is_file():
        msg = f"GeoNames test file {GEONAMES_DE} not found (set TEST_GEONAMES_PATH)"
        if IN_CI:
            pytest.fail(msg + " - mandatory with CI=true", pytrace=False)
        pytest.skip(msg)
    return GEONAMES_DE


@pytest.fixture
def small_file(tmp_path) -> Path:
    path = tmp_path / "DE.txt"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _count(session) -> int:
    return session.execute(select(func.count()).select_from(PlzCentroid)).scalar_one()


# --------------------------------------------------------------------------- the real file


def test_load_whole_geonames_file(db_session, backend):
    path = geonames_file()
    first = geo_plz.load_plz_centroids(db_session, path)
    print(f"\n[{backend}] DE.txt load: {first.plz_count} PLZ from {first.rows_read} rows in {first.seconds:.2f} s")
    assert first.plz_count >= 8000
    assert _count(db_session) == first.plz_count
    assert first.seconds < 10

    berlin = geo_plz.plz_centroid(db_session, "10115")
    munich = geo_plz.plz_centroid(db_session, "80331")
    assert 500 <= geo.distance_km(berlin, munich) <= 510
    assert geo_plz.plz_state(db_session, "10115") == "BE"
    assert geo_plz.plz_state(db_session, "80331") == "BY"
    assert geo_plz.plz_info(db_session, "80331").city == "München"
    states = set(db_session.scalars(select(PlzCentroid.state_code).distinct()))
    assert states - {None} == geo.STATE_CODES
    assert first.without_state <= 1

    second = geo_plz.load_plz_centroids(db_session, path)
    print(f"[{backend}] DE.txt reload: {second.seconds:.2f} s")
    assert second.plz_count == first.plz_count == _count(db_session)
    assert geo_plz.plz_centroid(db_session, "10115") == berlin


# --------------------------------------------------------------------------- small synthetic files


def test_reload_replaces_rows(db_session, small_file, tmp_path):
    geo_plz.load_plz_centroids(db_session, small_file)
    assert _count(db_session) == 4
    assert geo_plz.plz_state(db_session, "50667") == "NW"  # numeric admin code 07
    hamburg = geo_plz.plz_info(db_session, "20095")
    assert hamburg.city == "Hamburg"
    assert hamburg.lat == pytest.approx((53.5453 + 53.5521) / 2)

    changed = tmp_path / "DE2.txt"
    changed.write_text(
        "\n".join(line for line in SMALL.splitlines() if "50667" not in line).replace("52.5323", "52.6000") + "\n",
        encoding="utf-8",
    )
    summary = geo_plz.load_plz_centroids(db_session, changed)
    assert summary.plz_count == 3 == _count(db_session)
    assert geo_plz.plz_centroid(db_session, "50667") is None  # gone from the file, gone from the table
    assert geo_plz.plz_centroid(db_session, "10115") == (52.6, 13.3846)


def test_missing_file_message(db_session, tmp_path):
    with pytest.raises(FileNotFoundError, match="GeoNames-Datei nicht gefunden"):
        geo_plz.load_plz_centroids(db_session, tmp_path / "nope.txt")


def test_lookups_reject_malformed_plz(db_session, small_file):
    geo_plz.load_plz_centroids(db_session, small_file)
    for bad in ("", "1011", "10115a", None, "99999"):
        assert geo_plz.plz_centroid(db_session, bad) is None
        assert geo_plz.plz_state(db_session, bad) is None
    assert geo_plz.plz_centroids(db_session, ["10115", " 80331", "bad", None, "99999"]) == {
        "10115": (52.5323, 13.3846),
        "80331": (48.1345, 11.571),
    }


def test_place_patient_uses_centroid_only(db_session, small_file):
    geo_plz.load_plz_centroids(db_session, small_file)
    p = Patient(first_name="Ada", last_name="Placed", street="Irgendwo 1", plz="80331", city="München")
    q = Patient(first_name="Bea", last_name="Unknown", street="Irgendwo 2", plz="99999", city="Nirgends", lat=1.0, lon=2.0)
    db_session.add_all([p, q])
    assert geo_plz.place_patient(db_session, p) is True
    assert (p.lat, p.lon) == (48.1345, 11.571)
    assert geo_plz.place_patient(db_session, q) is False
    assert (q.lat, q.lon) == (None, None)
    db_session.flush()


def test_refresh_centroid_coordinates_after_load(db_session, small_file):
    p = Patient(first_name="Cem", last_name="Early", plz="10115")
    t_missing = Therapist(first_name="T", last_name="Missing", plz="20095", coordinates_source=CoordinatesSource.missing)
    t_arzt = Therapist(first_name="T", last_name="Arzt", plz="20095", lat=53.0, lon=10.0, coordinates_source=CoordinatesSource.arztsuche)
    db_session.add_all([p, t_missing, t_arzt])
    db_session.flush()
    stamp = db_session.get(Patient, p.id).updated_at

    geo_plz.load_plz_centroids(db_session, small_file)
    moved = geo_plz.refresh_centroid_coordinates(db_session)
    assert moved == {"patients": 1, "therapists": 1}
    p, t_missing, t_arzt = (db_session.get(type(o), o.id) for o in (p, t_missing, t_arzt))
    assert (p.lat, p.lon) == (52.5323, 13.3846)
    assert p.updated_at == stamp
    assert t_missing.coordinates_source == CoordinatesSource.plz_centroid
    assert (t_arzt.lat, t_arzt.lon, t_arzt.coordinates_source) == (53.0, 10.0, CoordinatesSource.arztsuche)
    assert geo_plz.refresh_centroid_coordinates(db_session) == {"patients": 0, "therapists": 0}


# --------------------------------------------------------------------------- bounding-box pre-filter


def test_bbox_prefilter_on_therapists(db_session):
    rng = np.random.default_rng(7)
    center = (51.0, 10.0)
    lat = rng.uniform(49.5, 52.5, 300)
    lon = rng.uniform(7.5, 12.5, 300)
    db_session.add_all(
        Therapist(first_name="T", last_name=f"Box{i}", lat=float(a), lon=float(b)) for i, (a, b) in enumerate(zip(lat, lon))
    )
    db_session.add(Therapist(first_name="T", last_name="Box-none", lat=None, lon=None))
    db_session.flush()

    radius = 80.0
    stmt = geo.where_within_bbox(
        select(Therapist.last_name, Therapist.lat, Therapist.lon).where(Therapist.last_name.like("Box%")), center, radius
    )
    rows = db_session.execute(stmt).all()
    names = {r.last_name for r in rows}
    inside = {f"Box{i}" for i in range(300) if geo.distance_km(center, (lat[i], lon[i])) <= radius}
    assert inside and inside <= names  # nothing within the radius is lost
    assert len(names) < 300 and "Box-none" not in names
    d = geo.distances_km(center, [r.lat for r in rows], [r.lon for r in rows])
    assert {r.last_name for r, km in zip(rows, d) if km <= radius} == inside


# --------------------------------------------------------------------------- download and CLI


class _ZipServer:
    def __init__(self, body: bytes):
        outer = self
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append(self.headers.get("User-Agent", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/export/zip/DE.zip"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_download_unpacks_de_txt(tmp_path):
    dest = tmp_path / "geonames" / "DE.txt"
    with _ZipServer(_zip({"readme.txt": "GeoNames", "DE.txt": SMALL})) as srv:
        assert geo_plz.download_geonames(dest, url=srv.url, timeout_s=5, user_agent="tp-test/1.0") == dest
    assert dest.read_text(encoding="utf-8") == SMALL
    assert srv.requests == ["tp-test/1.0"]
    assert [p.name for p in dest.parent.iterdir()] == ["DE.txt"]  # no temp files left


@pytest.mark.parametrize("body, message", [(b"<html>not a zip</html>", "kein ZIP"), (_zip({"AT.txt": "x"}), "keine DE.txt")])
def test_download_rejects_bad_archives(tmp_path, body, message):
    dest = tmp_path / "DE.txt"
    dest.write_text("old", encoding="utf-8")
    with _ZipServer(body) as srv, pytest.raises(ValueError, match=message):
        geo_plz.download_geonames(dest, url=srv.url, timeout_s=5)
    assert dest.read_text(encoding="utf-8") == "old"  # the old file survives


def test_cli_data_loads_existing_file(fresh_db_url, small_file, monkeypatch, capsys):
    from core.platform import config
    from core.platform import db

    settings = config.load_settings(
        environ={"DATABASE_URL": fresh_db_url, "GEONAMES_PATH": str(small_file)}, env_file=small_file.parent / "no.env"
    )
    monkeypatch.setattr(config, "load_or_exit", lambda: settings)
    try:
        started = time.perf_counter()
        assert geo_plz.main(["data"]) == 0  # file exists: no download, just the load
        assert time.perf_counter() - started < 10
        out = capsys.readouterr().out
        assert "4 Postleitzahlen geladen" in out and "Lade" not in out
        with db.read_session(db.get_engine(fresh_db_url)) as s:
            assert geo_plz.plz_count(s) == 4
        assert geo_plz.main(["load", "--path", str(small_file.parent / "missing.txt")]) == 1
        assert "GeoNames-Datei nicht gefunden" in capsys.readouterr().err
    finally:
        db.get_engine(fresh_db_url).dispose()  # the CLI's cached engine; the database is the test's own


# --------------------------------------------------------------------------- the shipped table (issue 12 point 18)


def test_point18_shipped_table_knows_every_german_plz(db_session):
    """The repository ships every German PLZ (derived from GeoNames), so 10117 Berlin works
    offline from the first start; an empty table is filled once, a filled one left alone."""
    assert geo_plz.SHIPPED_PLZ_TABLE.is_file()
    assert geo_plz.SHIPPED_PLZ_TABLE.stat().st_size < 1_000_000  # compact, not the raw DE.txt
    db_session.execute(PlzCentroid.__table__.delete())
    summary = geo_plz.ensure_plz_table(db_session)
    assert summary is not None and summary.plz_count >= 10_000
    assert geo_plz.plz_state(db_session, "10117") == "BE"
    assert geo_plz.plz_info(db_session, "10117").city == "Berlin"
    assert geo_plz.plz_info(db_session, "01067").city == "Dresden"
    states = set(db_session.scalars(select(PlzCentroid.state_code).distinct()))
    assert states - {None} == geo.STATE_CODES
    assert geo_plz.ensure_plz_table(db_session) is None  # already filled: untouched


def test_point18_patient_with_berlin_10117_is_accepted(db_session, now):
    from core.platform.permissions import SYSTEM
    from core.registry import patients

    db_session.execute(PlzCentroid.__table__.delete())
    geo_plz.ensure_plz_table(db_session)
    p = patients.create_patient(
        db_session, SYSTEM,
        {"first_name": "Erika", "last_name": "Muster", "plz": "10117", "city": "Berlin", "email": "erika@example.org"},
        now=now, today=now.date(),
    )
    assert p.lat is not None and 52.4 < p.lat < 52.6


def test_point18_shipped_table_is_derived_reproducibly_from_geonames(tmp_path):
    """`python -m core.geo.plz build` turns DE.txt into exactly the committed file."""
    out = tmp_path / "plz.csv.gz"
    n = geo_plz.write_compact_table(geonames_file(), out)
    assert n == len(geo_plz.read_compact_table())
    assert out.read_bytes() == geo_plz.SHIPPED_PLZ_TABLE.read_bytes()


def test_point18_cli_seed_fills_an_empty_database(fresh_db_url, monkeypatch, capsys, tmp_path):
    from core.platform import config
    from core.platform import db

    settings = config.load_settings(environ={"DATABASE_URL": fresh_db_url}, env_file=tmp_path / "no.env")
    monkeypatch.setattr(config, "load_or_exit", lambda: settings)
    try:
        assert geo_plz.main(["seed"]) == 0
        assert "aus der mitgelieferten Tabelle geladen" in capsys.readouterr().out
        with db.read_session(db.get_engine(fresh_db_url)) as s:
            assert geo_plz.plz_centroid(s, "10117") is not None
        assert geo_plz.main(["seed"]) == 0
        assert "schon gefüllt" in capsys.readouterr().out
    finally:
        db.get_engine(fresh_db_url).dispose()
