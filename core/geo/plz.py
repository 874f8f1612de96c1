"""The PLZ table from GeoNames: loading, look-ups, placing people at centroids."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence
import numpy as np
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session
from core.platform.models import Patient, PlzCentroid, Therapist
from core.platform.vocab import CoordinatesSource
from core.geo.distance import GEONAMES_ADMIN1_TO_STATE, GEONAMES_DE_URL, GEONAMES_MAX_BYTES, LatLon, STATE_CODES, _PLZ_RE, distances_km
from core.platform.config import get_settings
from core.platform import config
from core.platform.db import get_engine, unit_of_work

# The compact PLZ table shipped with the project (derived from GeoNames' DE.txt by
# scripts/build_plz_table.py; CC BY 4.0, attribution in data/geonames/README.md and the UI).
SHIPPED_PLZ_TABLE = Path(__file__).resolve().parents[2] / "data" / "geonames" / "plz_de.csv.gz"
SHIPPED_COLUMNS = ("plz", "lat", "lon", "state", "city", "places")
GEONAMES_ATTRIBUTION = "PLZ-Daten: GeoNames (geonames.org), CC BY 4.0"


# --------------------------------------------------------------------------- PLZ file


def normalise_plz(value: Optional[str]) -> Optional[str]:
    """A five-digit PLZ string, or None when the value is not one."""
    if value is None:
        return None
    text = str(value).strip()
    return text if _PLZ_RE.match(text) else None


def normalise_state_code(code: str) -> Optional[str]:
    """GeoNames' state column (two letters or numeric admin1 code) as a two-letter code."""
    code = (code or "").strip()
    if code.upper() in STATE_CODES:
        return code.upper()
    return GEONAMES_ADMIN1_TO_STATE.get(code.zfill(2) if code.isdigit() else code)


@dataclass(frozen=True)
class GeoNamesRow:
    plz: str
    place: str
    state_code: Optional[str]
    large_recipient: bool  # numeric admin codes mark single large recipients (firms, authorities)
    district_code: str
    lat: float
    lon: float


@dataclass(frozen=True)
class PlzRecord:
    plz: str
    city: str
    state_code: Optional[str]
    lat: float
    lon: float


def parse_geonames_lines(lines: Iterable[str]) -> tuple[list[GeoNamesRow], int]:
    """Rows of the GeoNames postal-code format (tab-separated, no header); returns (rows, skipped)."""
    rows: list[GeoNamesRow] = []
    skipped = 0
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 11:
            skipped += 1
            continue
        plz = normalise_plz(cols[1])
        try:
            lat, lon = float(cols[9]), float(cols[10])
        except ValueError:
            skipped += 1
            continue
        if plz is None or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            skipped += 1
            continue
        raw_state = cols[4].strip()
        rows.append(
            GeoNamesRow(
                plz=plz,
                place=cols[2].strip(),
                state_code=normalise_state_code(raw_state),
                large_recipient=raw_state.isdigit(),
                district_code=cols[8].strip(),
                lat=lat,
                lon=lon,
            )
        )
    return rows, skipped


def _most_common_first(values: Sequence) -> object:
    """The most frequent value; ties go to the one seen first (Counter keeps insertion
    order and most_common sorts stably)."""
    return Counter(values).most_common(1)[0][0]


def _city_name(places: Sequence[str]) -> str:
    """The place name covering most rows: 'Hamburg' covers 'Hamburg Altstadt' too."""
    counts = Counter(p for p in places if p)
    if not counts:
        return ""
    if len(counts) == 1:
        return next(iter(counts))
    covered = {
        name: sum(c for other, c in counts.items() if other == name or other.startswith(name + " "))
        for name in counts
    }
    return max(covered, key=covered.__getitem__)  # max keeps the first of equals


def aggregate_plz(rows: Sequence[GeoNamesRow]) -> list[PlzRecord]:
    """One record per PLZ.

    - Centroid: mean of the PLZ's places. Rows of single large recipients are ignored when
      the PLZ has real places; a PLZ of large recipients only uses the rows of its most
      common district (such codes can list branches hundreds of km apart).
    - City: the real place name covering most rows (first one on ties). For a large-
      recipient PLZ it is the nearest real place in the same district, since the file
      gives the recipient's name instead of a place.
    - State: the most common two-letter code among the rows used (None when unknown).
    """
    by_plz: dict[str, list[GeoNamesRow]] = {}
    places_by_district: dict[str, list[GeoNamesRow]] = {}
    for row in rows:
        by_plz.setdefault(row.plz, []).append(row)
        if not row.large_recipient and row.district_code:
            places_by_district.setdefault(row.district_code, []).append(row)
    district_arrays: dict[str, tuple[np.ndarray, np.ndarray, set[str]]] = {}

    def nearest_place(district: str, point: LatLon) -> Optional[str]:
        candidates = places_by_district.get(district)
        if not candidates:
            return None
        if district not in district_arrays:
            district_arrays[district] = (
                np.array([r.lat for r in candidates]),
                np.array([r.lon for r in candidates]),
                {r.place for r in candidates},
            )
        lats, lons, names = district_arrays[district]
        name = candidates[int(np.argmin(distances_km(point, lats, lons)))].place
        words = name.split(" ")
        for k in range(1, len(words)):  # "Berlin Kreuzberg" -> "Berlin" when that is a place too
            if " ".join(words[:k]) in names:
                return " ".join(words[:k])
        return name

    records: list[PlzRecord] = []
    for plz, group in by_plz.items():
        places = [r for r in group if not r.large_recipient]
        if places:
            used = places
        else:
            district = _most_common_first([r.district_code for r in group])
            used = [r for r in group if r.district_code == district]
        lat = sum(r.lat for r in used) / len(used)
        lon = sum(r.lon for r in used) / len(used)
        states = [r.state_code for r in used if r.state_code]
        state = _most_common_first(states) if states else None
        if places:
            city = _city_name([r.place for r in places])
        else:
            city = nearest_place(used[0].district_code, (lat, lon)) or used[0].place
        records.append(PlzRecord(plz=plz, city=city[:255] or plz, state_code=state, lat=lat, lon=lon))
    records.sort(key=lambda r: r.plz)
    return records


@dataclass(frozen=True)
class PlzLoadSummary:
    rows_read: int
    rows_skipped: int
    plz_count: int
    without_state: int
    seconds: float


def load_plz_centroids(session: Session, path: Optional[Path | str] = None) -> PlzLoadSummary:
    """Replace the PLZ table with the centroids of a GeoNames postal-code file.

    Idempotent: the table afterwards holds exactly the file's PLZ, however often it runs.
    Bulk delete + bulk insert in the caller's transaction (flushes, does not commit).
    `path` defaults to the GEONAMES_PATH setting.
    """
    started = time.perf_counter()
    if path is None:

        settings = get_settings()
        path = settings.path(settings.GEONAMES_PATH)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"GeoNames-Datei nicht gefunden: {path}. Mit `python -m core.geo download` herunterladen "
            "oder GEONAMES_PATH setzen."
        )
    with path.open(encoding="utf-8") as fh:
        rows, skipped = parse_geonames_lines(fh)
    records = aggregate_plz(rows)
    if not records:
        raise ValueError(f"GeoNames-Datei enthält keine gültigen Postleitzahlen: {path}")
    _replace_table(session, records)
    return PlzLoadSummary(
        rows_read=len(rows) + skipped,
        rows_skipped=skipped,
        plz_count=len(records),
        without_state=sum(1 for r in records if r.state_code is None),
        seconds=time.perf_counter() - started,
    )


def _replace_table(session: Session, records: Sequence[PlzRecord]) -> None:
    """Bulk delete + bulk insert in the caller's transaction (flushes, does not commit)."""
    session.execute(delete(PlzCentroid).execution_options(synchronize_session=False))
    session.execute(
        insert(PlzCentroid),
        [
            {"plz": r.plz, "city": r.city, "state_code": r.state_code, "lat": r.lat, "lon": r.lon}
            for r in records
        ],
    )
    session.flush()
    session.expire_all()  # PlzCentroid objects loaded before the swap are stale


def place_names(rows: Sequence[GeoNamesRow]) -> dict[str, list[str]]:
    """Every real place name of each PLZ (large recipients left out), in file order."""
    names: dict[str, list[str]] = {}
    for row in rows:
        if row.large_recipient or not row.place:
            continue
        seen = names.setdefault(row.plz, [])
        if row.place not in seen:
            seen.append(row.place)
    return names


def write_compact_table(geonames_txt: Path | str, dest: Path | str = SHIPPED_PLZ_TABLE) -> int:
    """Derive the shipped table from GeoNames' DE.txt: one row per PLZ (centroid, state,
    main place, all place names joined by '|'), gzip without a timestamp so the same input
    gives the same bytes. Returns the number of PLZ."""
    with Path(geonames_txt).open(encoding="utf-8") as fh:
        rows, _ = parse_geonames_lines(fh)
    records = aggregate_plz(rows)
    names = place_names(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(SHIPPED_COLUMNS)
    for r in records:
        writer.writerow([r.plz, f"{r.lat:.5f}", f"{r.lon:.5f}", r.state_code or "", r.city, "|".join(names.get(r.plz, []))])
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    return len(records)


def read_compact_table(path: Path | str = SHIPPED_PLZ_TABLE) -> list[PlzRecord]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        return [
            PlzRecord(plz=row["plz"], city=row["city"], state_code=row["state"] or None,
                      lat=float(row["lat"]), lon=float(row["lon"]))
            for row in reader
        ]


def load_shipped_table(session: Session, path: Path | str = SHIPPED_PLZ_TABLE) -> PlzLoadSummary:
    """Replace the PLZ table with the shipped compact table (every German PLZ, offline)."""
    started = time.perf_counter()
    records = read_compact_table(path)
    _replace_table(session, records)
    return PlzLoadSummary(
        rows_read=len(records), rows_skipped=0, plz_count=len(records),
        without_state=sum(1 for r in records if r.state_code is None), seconds=time.perf_counter() - started,
    )


def ensure_plz_table(session: Session) -> Optional[PlzLoadSummary]:
    """First start: fill an empty PLZ table from the shipped file; leaves a filled one alone."""
    if plz_count(session):
        return None
    return load_shipped_table(session)


def download_geonames(
    dest: Optional[Path | str] = None,
    *,
    url: str = GEONAMES_DE_URL,
    timeout_s: float = 120,
    user_agent: str = "therapieplatz-dashboard/1.0",
) -> Path:
    """Download GeoNames' DE.zip and unpack its DE.txt to `dest` (default GEONAMES_PATH).

    The file is replaced atomically, so a failed download never leaves half a file.
    Raises OSError (urllib.error.URLError offline) or ValueError for a broken archive."""
    if dest is None:

        settings = get_settings()
        dest = settings.path(settings.GEONAMES_PATH)
    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        data = response.read(GEONAMES_MAX_BYTES + 1)
    if len(data) > GEONAMES_MAX_BYTES:
        raise ValueError(f"Download von {url} ist größer als erwartet.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ValueError(f"Download von {url} ist kein ZIP-Archiv.") from None
    with archive:
        member = next((n for n in archive.namelist() if Path(n).name == "DE.txt"), None)
        if member is None:
            raise ValueError(f"Das Archiv von {url} enthält keine DE.txt.")
        if archive.getinfo(member).file_size > GEONAMES_MAX_BYTES:
            raise ValueError("DE.txt im Archiv ist größer als erwartet.")
        content = archive.read(member)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".DE.txt.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


# --------------------------------------------------------------------------- lookups


@dataclass(frozen=True)
class PlzInfo:
    plz: str
    city: str
    state_code: Optional[str]
    lat: float
    lon: float


def plz_info(session: Session, plz: Optional[str]) -> Optional[PlzInfo]:
    key = normalise_plz(plz)
    if key is None:
        return None
    row = session.execute(
        select(PlzCentroid.plz, PlzCentroid.city, PlzCentroid.state_code, PlzCentroid.lat, PlzCentroid.lon).where(
            PlzCentroid.plz == key
        )
    ).first()
    return PlzInfo(*row) if row is not None else None


def plz_centroid(session: Session, plz: str) -> Optional[LatLon]:
    """(lat, lon) of the PLZ's centroid, or None for an unknown or malformed PLZ."""
    info = plz_info(session, plz)
    return (info.lat, info.lon) if info is not None else None


def plz_state(session: Session, plz: str) -> Optional[str]:
    """Two-letter Bundesland code of the PLZ (for public holidays), or None when unknown."""
    info = plz_info(session, plz)
    return info.state_code if info is not None else None


def plz_centroids(session: Session, plzs: Iterable[Optional[str]]) -> dict[str, LatLon]:
    """Centroids of many PLZ in one query; unknown or malformed PLZ are absent from the dict."""
    keys = sorted({k for k in (normalise_plz(p) for p in plzs) if k is not None})
    result: dict[str, LatLon] = {}
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        for plz, lat, lon in session.execute(
            select(PlzCentroid.plz, PlzCentroid.lat, PlzCentroid.lon).where(PlzCentroid.plz.in_(chunk))
        ):
            result[plz] = (lat, lon)
    return result


def plz_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(PlzCentroid)).scalar_one()


@dataclass(frozen=True)
class MapBackdrop:
    """Our own offline map base layer: PLZ centroids as faint points (thinned to a grid) and
    the names of places with many postal codes as labels."""

    points: list[tuple[float, float]]  # (lat, lon)
    cities: list[tuple[str, float, float]]  # (name, lat, lon), biggest first


def map_backdrop(session: Session, *, grid_deg: float = 0.06, min_codes: int = 6) -> MapBackdrop:
    rows = session.execute(select(PlzCentroid.lat, PlzCentroid.lon, PlzCentroid.city)).all()
    seen: set[tuple[int, int]] = set()
    points: list[tuple[float, float]] = []
    by_city: dict[str, list[tuple[float, float]]] = {}
    for lat, lon, city in rows:
        cell = (round(lat / grid_deg), round(lon / grid_deg))
        if cell not in seen:
            seen.add(cell)
            points.append((round(lat, 4), round(lon, 4)))
        if city:
            by_city.setdefault(city, []).append((lat, lon))
    cities = [
        (name, sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts), len(pts))
        for name, pts in by_city.items() if len(pts) >= min_codes
    ]
    cities.sort(key=lambda c: (-c[3], c[0]))
    return MapBackdrop(points=points, cities=[(n, round(a, 4), round(o, 4)) for n, a, o, _ in cities])


# --------------------------------------------------------------------------- placing people


def place_patient(session: Session, patient: Patient) -> bool:
    """Set the patient's coordinates to their PLZ centroid (None when the PLZ is unknown).

    Patients are never geocoded by street: their address does not leave the database.
    Returns True when coordinates were found."""
    centroid = plz_centroid(session, patient.plz) if patient.plz else None
    patient.lat, patient.lon = centroid if centroid is not None else (None, None)
    return centroid is not None


def refresh_centroid_coordinates(session: Session) -> dict[str, int]:
    """After (re)loading the PLZ table: re-place every patient, and every therapist that sits
    at a PLZ centroid (or has no coordinates), at the current centroid. Set-based SQL; rows
    whose coordinates already match are left alone (their updated_at does not move)."""
    lat_of = lambda col: select(PlzCentroid.lat).where(PlzCentroid.plz == col).scalar_subquery()  # noqa: E731
    lon_of = lambda col: select(PlzCentroid.lon).where(PlzCentroid.plz == col).scalar_subquery()  # noqa: E731
    opts = {"synchronize_session": False}
    patients = session.execute(
        update(Patient)
        .where(
            or_(
                Patient.lat.is_distinct_from(lat_of(Patient.plz)),
                Patient.lon.is_distinct_from(lon_of(Patient.plz)),
            )
        )
        .values(lat=lat_of(Patient.plz), lon=lon_of(Patient.plz), updated_at=Patient.updated_at)
        .execution_options(**opts)
    ).rowcount
    known = select(PlzCentroid.plz).where(PlzCentroid.plz == Therapist.plz).exists()
    centroid_like = Therapist.coordinates_source.in_([CoordinatesSource.plz_centroid, CoordinatesSource.missing])
    therapists_placed = session.execute(
        update(Therapist)
        .where(centroid_like, known)
        .where(
            or_(
                Therapist.coordinates_source != CoordinatesSource.plz_centroid,
                Therapist.lat.is_distinct_from(lat_of(Therapist.plz)),
                Therapist.lon.is_distinct_from(lon_of(Therapist.plz)),
            )
        )
        .values(
            lat=lat_of(Therapist.plz),
            lon=lon_of(Therapist.plz),
            coordinates_source=CoordinatesSource.plz_centroid,
            updated_at=Therapist.updated_at,
        )
        .execution_options(**opts)
    ).rowcount
    therapists_lost = session.execute(
        update(Therapist)
        .where(Therapist.coordinates_source == CoordinatesSource.plz_centroid, ~known)
        .values(lat=None, lon=None, coordinates_source=CoordinatesSource.missing, updated_at=Therapist.updated_at)
        .execution_options(**opts)
    ).rowcount
    session.expire_all()
    return {"patients": patients, "therapists": therapists_placed + therapists_lost}


# --------------------------------------------------------------------------- command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.geo", description="PLZ-Daten (GeoNames) verwalten")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("download", help="DE.zip von GeoNames laden und DE.txt nach GEONAMES_PATH entpacken")
    load_p = sub.add_parser("load", help="GEONAMES_PATH in die Datenbank laden")
    load_p.add_argument("--path", help="andere DE.txt statt GEONAMES_PATH")
    data_p = sub.add_parser("data", help="herunterladen, falls nötig, und laden")
    data_p.add_argument("--force", action="store_true", help="auch herunterladen, wenn die Datei schon da ist")
    sub.add_parser("seed", help="leere PLZ-Tabelle aus der mitgelieferten Tabelle füllen (offline, beim ersten Start)")
    build_p = sub.add_parser("build", help="mitgelieferte Tabelle aus einer GeoNames-DE.txt neu erzeugen")
    build_p.add_argument("--path", required=True, help="GeoNames-Datei DE.txt")
    args = parser.parse_args(argv)
    if args.command == "build":
        n = write_compact_table(Path(args.path))
        print(f"{n} Postleitzahlen nach {SHIPPED_PLZ_TABLE} geschrieben ({GEONAMES_ATTRIBUTION}).")
        return 0


    settings = config.load_or_exit()
    target = settings.path(settings.GEONAMES_PATH)
    if args.command in {"download", "data"} and (
        args.command == "download" or getattr(args, "force", False) or not target.is_file()
    ):
        print(f"Lade {GEONAMES_DE_URL} …")
        try:
            download_geonames(target, user_agent=settings.GEOCODER_USER_AGENT)
        except (OSError, ValueError) as exc:
            print(f"Download fehlgeschlagen: {exc}", file=sys.stderr)
            return 1
        print(f"Gespeichert: {target} (Daten: GeoNames, CC BY 4.0)")
    if args.command == "download":
        return 0
    if args.command == "seed":
        with unit_of_work(get_engine(settings.DATABASE_URL)) as session:
            seeded = ensure_plz_table(session)
            if seeded is not None:
                refresh_centroid_coordinates(session)
        if seeded is None:
            print("PLZ-Tabelle ist schon gefüllt.")
        else:
            print(f"{seeded.plz_count} Postleitzahlen aus der mitgelieferten Tabelle geladen ({GEONAMES_ATTRIBUTION}).")
        return 0


    path = Path(args.path) if getattr(args, "path", None) else target
    try:
        with unit_of_work(get_engine(settings.DATABASE_URL)) as session:
            summary = load_plz_centroids(session, path)
            moved = refresh_centroid_coordinates(session)
    except (OSError, ValueError) as exc:
        print(f"Laden fehlgeschlagen: {exc}", file=sys.stderr)
        return 1
    print(
        f"{summary.plz_count} Postleitzahlen geladen aus {summary.rows_read} Zeilen "
        f"({summary.rows_skipped} übersprungen, {summary.without_state} ohne Bundesland) "
        f"in {summary.seconds:.2f} s; neu verortet: {moved['patients']} Patient/innen, "
        f"{moved['therapists']} Therapeut/innen."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
