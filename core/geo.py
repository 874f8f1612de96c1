"""Geography: PLZ centroids from GeoNames, great-circle distances, bounding boxes,
placing patients at their PLZ centroid.

Distances are great-circle kilometres ("Luftlinie") on a sphere with the mean Earth
radius. Patients are only ever placed at the centroid of their PLZ; nothing in this
module talks to the network except `download_geonames`, which fetches the public
GeoNames file and sends nothing about anybody.

Command line (the `make data` target):
    python -m core.geo data       download DE.zip if GEONAMES_PATH is missing, load the PLZ table
    python -m core.geo download   (re)download DE.zip and unpack DE.txt to GEONAMES_PATH
    python -m core.geo load       load GEONAMES_PATH into the database
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
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
from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from core.models import Patient, PlzCentroid, Therapist
from core.vocab import CoordinatesSource

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
BBOX_MARGIN_KM = 0.001  # 1 m, so float rounding never drops a point on the circle

GEONAMES_DE_URL = "https://download.geonames.org/export/zip/DE.zip"
GEONAMES_MAX_BYTES = 100_000_000

# The two-letter Bundesland codes (as the `holidays` package uses them).
STATE_CODES = frozenset(
    {"BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH"}
)
# GeoNames' numeric admin1 codes, which part of the DE file uses instead of the letters.
GEONAMES_ADMIN1_TO_STATE = {
    "01": "BW",
    "02": "BY",
    "03": "HB",
    "04": "HH",
    "05": "HE",
    "06": "NI",
    "07": "NW",
    "08": "RP",
    "09": "SL",
    "10": "SH",
    "11": "BB",
    "12": "MV",
    "13": "SN",
    "14": "ST",
    "15": "TH",
    "16": "BE",
}

_PLZ_RE = re.compile(r"^\d{5}$")

LatLon = tuple[float, float]


# --------------------------------------------------------------------------- distances


def distance_km(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees (haversine)."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2.0) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2.0) ** 2
    if h > 1.0:  # rounding near antipodes; NaN passes through untouched
        h = 1.0
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def distances_km(origin: LatLon, lats, lons) -> np.ndarray:
    """Great-circle km from one point to N points, vectorised.

    `lats`/`lons` are array-likes of degrees (None becomes NaN); the result has NaN exactly
    where a coordinate is unknown (or the origin is), so an unknown distance never
    compares as "near" (`nan <= 25` is False).
    """
    lat2 = np.radians(np.asarray(lats, dtype=np.float64))
    lon2 = np.radians(np.asarray(lons, dtype=np.float64))
    lat1 = math.radians(origin[0])
    lon1 = math.radians(origin[1])
    h = np.sin((lat2 - lat1) * 0.5) ** 2 + math.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) * 0.5) ** 2
    np.minimum(h, 1.0, out=h)  # NaN stays NaN
    np.sqrt(h, out=h)
    np.arcsin(h, out=h)
    h *= 2.0 * EARTH_RADIUS_KM
    return h


# --------------------------------------------------------------------------- bounding box


@dataclass(frozen=True)
class BoundingBox:
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    @property
    def spans_all_longitudes(self) -> bool:
        return self.min_lon <= -180.0 and self.max_lon >= 180.0

    def contains(self, point: LatLon) -> bool:
        lat, lon = point
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


def bounding_box(center: LatLon, radius_km: float) -> BoundingBox:
    """The smallest lat/lon box holding every point within `radius_km` of `center`.

    Exact on the sphere (the longitude extent is taken at the latitude where the circle
    is widest, not at the centre's latitude), widened by 1 m against rounding. A circle
    that reaches a pole or crosses the antimeridian gets the full longitude range.
    """
    if radius_km < 0 or math.isnan(radius_km):
        raise ValueError("radius_km must be >= 0")
    lat, lon = center
    ang = (radius_km + BBOX_MARGIN_KM) / EARTH_RADIUS_KM
    lat_r = math.radians(lat)
    min_lat_r = lat_r - ang
    max_lat_r = lat_r + ang
    if ang >= math.pi or min_lat_r <= -math.pi / 2 or max_lat_r >= math.pi / 2:
        return BoundingBox(max(math.degrees(min_lat_r), -90.0), min(math.degrees(max_lat_r), 90.0), -180.0, 180.0)
    dlon = math.degrees(math.asin(min(1.0, math.sin(ang) / math.cos(lat_r))))
    min_lon, max_lon = lon - dlon, lon + dlon
    if min_lon < -180.0 or max_lon > 180.0:
        min_lon, max_lon = -180.0, 180.0
    return BoundingBox(math.degrees(min_lat_r), math.degrees(max_lat_r), min_lon, max_lon)


def where_within_bbox(stmt: Select, center: LatLon, radius_km: float, *, lat=None, lon=None) -> Select:
    """Add the bounding-box pre-filter to a select (on Therapist unless other columns are given).

    Rows without coordinates never pass. The box is a superset of the circle: compute the
    exact distance afterwards (`distances_km`)."""
    lat_col = Therapist.lat if lat is None else lat
    lon_col = Therapist.lon if lon is None else lon
    box = bounding_box(center, radius_km)
    return stmt.where(lat_col.between(box.min_lat, box.max_lat), lon_col.between(box.min_lon, box.max_lon))


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
        from core.config import get_settings

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
    return PlzLoadSummary(
        rows_read=len(rows) + skipped,
        rows_skipped=skipped,
        plz_count=len(records),
        without_state=sum(1 for r in records if r.state_code is None),
        seconds=time.perf_counter() - started,
    )


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
        from core.config import get_settings

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
    args = parser.parse_args(argv)

    from core.config import load_or_exit

    settings = load_or_exit()
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

    from core.db import get_engine, unit_of_work

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
