"""Great-circle distances and bounding boxes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
import numpy as np
from sqlalchemy import Select
from core.platform.models import Therapist


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


def pair_distances_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle km between point pairs (lat1[i], lon1[i]) and (lat2[i], lon2[i]), arrays of
    degrees (broadcast together), vectorised; the haversine of `distances_km` with the
    origin as an array too. NaN wherever a coordinate is unknown."""
    lat1 = np.radians(np.asarray(lat1, dtype=np.float64))
    lon1 = np.radians(np.asarray(lon1, dtype=np.float64))
    lat2 = np.radians(np.asarray(lat2, dtype=np.float64))
    lon2 = np.radians(np.asarray(lon2, dtype=np.float64))
    h = np.sin((lat2 - lat1) * 0.5) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) * 0.5) ** 2
    np.minimum(h, 1.0, out=h)
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


def bounding_boxes(lat, lon, radius_km) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`bounding_box` for many centres at once: arrays (min_lat, max_lat, min_lon, max_lon).
    The same formula, element by element (tested against it); a box reaching a pole or the
    antimeridian spans every longitude. NaN centres give NaN boxes (they contain nothing)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    ang = (np.asarray(radius_km, dtype=np.float64) + BBOX_MARGIN_KM) / EARTH_RADIUS_KM
    lat_r = np.radians(lat)
    min_lat_r = lat_r - ang
    max_lat_r = lat_r + ang
    with np.errstate(invalid="ignore", divide="ignore"):
        polar = (ang >= math.pi) | (min_lat_r <= -math.pi / 2) | (max_lat_r >= math.pi / 2)
        dlon = np.degrees(np.arcsin(np.minimum(1.0, np.sin(ang) / np.cos(lat_r))))
    min_lon, max_lon = lon - dlon, lon + dlon
    wide = polar | (min_lon < -180.0) | (max_lon > 180.0)
    min_lon = np.where(wide, -180.0, min_lon)
    max_lon = np.where(wide, 180.0, max_lon)
    min_lat = np.where(polar, np.maximum(np.degrees(min_lat_r), -90.0), np.degrees(min_lat_r))
    max_lat = np.where(polar, np.minimum(np.degrees(max_lat_r), 90.0), np.degrees(max_lat_r))
    return min_lat, max_lat, min_lon, max_lon


def where_within_bbox(stmt: Select, center: LatLon, radius_km: float, *, lat=None, lon=None) -> Select:
    """Add the bounding-box pre-filter to a select (on Therapist unless other columns are given).

    Rows without coordinates never pass. The box is a superset of the circle: compute the
    exact distance afterwards (`distances_km`)."""
    lat_col = Therapist.lat if lat is None else lat
    lon_col = Therapist.lon if lon is None else lon
    box = bounding_box(center, radius_km)
    return stmt.where(lat_col.between(box.min_lat, box.max_lat), lon_col.between(box.min_lon, box.max_lon))


