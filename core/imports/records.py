"""The parsed record of one therapist entry, skipped entries, the parse result and the format error."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any, Callable, Mapping, Optional
from core.platform import timewindows


GENERATION_CURRENT = "current"
GENERATION_LEGACY = "legacy"
GENERATION_SNAPSHOT = "snapshot"

FORMAT_ARZTSUCHE = "arztsuche"
FORMAT_SNAPSHOT = "snapshot"

PHONE_TYPE = "07"

# Hour types of the current format (two-digit codes) and their German labels.
HOUR_TYPES: dict[str, str] = {
    "01": "Sprechstunde",
    "02": "Offene Sprechstunde (ohne Termin)",
    "05": "Psychotherapeutische Sprechstunde",
    "06": "Psychotherapeutische Sprechstunde (ohne Termin)",
    "07": "Telefonische Erreichbarkeit",
}

# Labels of the legacy format → code. Compared case-insensitively, whitespace collapsed.
LEGACY_HOUR_LABELS: dict[str, str] = {
    "telefonische erreichbarkeit": "07",
    "telefonisch erreichbar": "07",
    "sprechstunde": "01",
    "sprechstunde mit termin": "01",
    "sprechzeiten": "01",
    "sprechstunde ohne termin": "02",
    "offene sprechstunde": "02",
    "psychotherapeutische sprechstunde": "05",
    "psychotherapeutische sprechstunde mit termin": "05",
    "psychotherapeutische sprechstunde ohne termin": "06",
}

METHOD_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("verhaltenstherap", "VT"),
    ("tiefenpsycholog", "TP"),
    ("analytisch", "AP"),
    ("psychoanalyse", "AP"),
    ("psychoanalytisch", "AP"),
    ("systemisch", "ST"),
)

KJP_SPECIALTY = "kinder- und jugendlichenpsychotherapie"

ENTRY_KEYS = frozenset(
    {
        "arzt", "id", "titel", "vorname", "name", "anrede", "geschlecht", "strasse", "hausnummer",
        "plz", "ort", "lat", "lon", "distance", "tel", "handy", "fax", "email", "web", "kv",
        "geoeffnet", "keineSprechzeiten", "ag", "fg", "psy", "kvg", "fs", "bf", "zb", "zm", "erm",
        "nteStart", "nteEnde", "tsz",
    }
)
TOP_KEYS = frozenset({"arztPraxisDatas", "moreResults"})
DAY_KEYS_CURRENT = frozenset({"d", "typTsz"})
DAY_KEYS_LEGACY = frozenset({"d", "t", "tszDesTyps"})
DAY_KEYS_ALL = DAY_KEYS_CURRENT | DAY_KEYS_LEGACY
SNAPSHOT_KEYS = frozenset(
    {"id", "status", "last_modified", "basic_info", "location", "contact", "languages", "therapy_methods", "telephone_hours"}
)
SNAPSHOT_SECTIONS: dict[str, frozenset[str]] = {
    "basic_info": frozenset({"salutation", "title", "first_name", "last_name", "full_name", "classification"}),
    "location": frozenset({"street", "house_number", "postal_code", "city"}),
    "contact": frozenset({"phone", "email", "fax"}),
}
SNAPSHOT_TOP_KEYS = frozenset({"metadata", "therapists", "statistics"})

# Germany's bounding box with a margin: coordinates outside are treated as missing.
LAT_RANGE = (47.0, 55.3)
LON_RANGE = (5.5, 15.5)

_WEEKDAY_WORDS: dict[str, int] = {}
for _i, (_key, _name, _en) in enumerate(
    zip(timewindows.DAY_KEYS, timewindows.DAY_NAMES, ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
):
    _WEEKDAY_WORDS[_key.lower()] = _i
    _WEEKDAY_WORDS[_name.lower()] = _i
    _WEEKDAY_WORDS[_en] = _i
    _WEEKDAY_WORDS[_en[:3]] = _i

_RANGE_RE = re.compile(
    r"^\s*(?P<sh>\d{1,2})(?:[:.](?P<sm>\d{2}))?\s*(?:uhr)?\s*(?:-|\u2013|\u2014|bis)\s*"
    r"(?P<eh>\d{1,2})(?:[:.](?P<em>\d{2}))?\s*(?:uhr)?\s*$",
    re.I,
)
_FAST_RANGE_RE = re.compile(r"(\d\d):(\d\d) - (\d\d):(\d\d)")
_RANGE_SPLIT_RE = re.compile(r"[,;/]|\bund\b", re.I)
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_LEGACY_DATE_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.?(\d{2,4})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PLZ_RE = re.compile(r"^\d{5}$")
_WS_RE = re.compile(r"\s+")
_SPACED_HYPHEN_RE = re.compile(r"(?<=\w)\s*-\s+(?=\w)|(?<=\w)\s+-\s*(?=\w)")
_PLACEHOLDER_NAMES = frozenset({"null", "none", "undefined", "nan", "true", "false", "n/a"})
_SURNAME_PARTICLES = frozenset(
    {"von", "vom", "van", "de", "der", "den", "del", "della", "di", "da", "dos", "du", "la", "le", "zu", "zum", "zur", "ten", "ter", "el", "al"}
)
_TITLE_WORDS = frozenset(
    {"dr", "prof", "pd", "dipl", "msc", "m.sc", "bsc", "b.sc", "ma", "m.a", "mag", "med", "phil", "rer", "nat", "habil", "univ"}
)


def _probe_end_of_day() -> tuple[time, bool]:
    """How `core.timewindows` spells an end of 24:00 (midnight); (time, exact)."""
    try:
        windows = timewindows.parse("Mo 23:00-24:00")
        return windows[0].end, True
    except (timewindows.TimeWindowError, IndexError):
        return time(23, 59), False


END_OF_DAY, END_OF_DAY_EXACT = _probe_end_of_day()
MINUTES_PER_DAY = 24 * 60


# --------------------------------------------------------------------------- errors and results


class ImportFormatError(ValueError):
    """A file that cannot be read as one of the accepted formats. `message` is German and
    names the problem; `code` is one of: empty, encoding, invalid_json, truncated, wrong_shape."""

    def __init__(self, message: str, *, code: str = "wrong_shape"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class TherapistRecord:
    """One practitioner at one practice location, as the source describes them.

    Text fields are stripped; empty means None. `salutation` and `gender` use the values of
    `core.platform.vocab` (``herr``/``frau``/``none``; ``male``/``female``/``diverse``/
    ``unspecified``). `street` includes the house number. `phone_hours` is canonical
    section-13 text (empty when none are published). `warnings` lists, in German, what the
    parser tolerated in this entry.
    """

    last_name: str
    first_name: str = ""
    title: Optional[str] = None
    salutation: str = "none"
    gender: str = "unspecified"
    street: Optional[str] = None
    street_name: Optional[str] = None
    house_number: Optional[str] = None
    plz: Optional[str] = None
    city: Optional[str] = None
    lat: Optional[float] = None
    lon: Optional[float] = None
    phone: Optional[str] = None
    mobile: Optional[str] = None
    fax: Optional[str] = None
    email: Optional[str] = None
    website: Optional[str] = None
    languages: list[str] = field(default_factory=list)
    methods: set[str] = field(default_factory=set)
    method_settings: dict[str, list[str]] = field(default_factory=dict)
    adults: bool = True
    children: bool = False
    age_group_known: bool = False
    group: bool = False
    individual: bool = True
    setting_known: bool = False
    phone_hours: str = ""
    phone_windows: list[timewindows.TimeWindow] = field(default_factory=list)
    phone_dates: list[tuple[str, str, str]] = field(default_factory=list)
    other_hours: list[dict[str, Any]] = field(default_factory=list)
    no_hours: bool = False
    next_window: Optional[tuple[str, str]] = None
    procedures: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    accessibility: list[str] = field(default_factory=list)
    kv: Optional[str] = None
    is_person: bool = True
    rank: Optional[str] = None
    distance_m: Optional[float] = None
    generation: str = GENERATION_CURRENT
    index: int = 0
    warnings: list[str] = field(default_factory=list)
    entry_hash: Optional[str] = None  # digest of the source entry without its volatile keys

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.title, self.first_name, self.last_name) if p)

    @property
    def children_only(self) -> bool:
        return self.children and not self.adults

    @property
    def group_only(self) -> bool:
        return self.group and not self.individual

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (sets sorted, windows as canonical text)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "methods":
                value = sorted(value)
            elif name == "phone_windows":
                continue
            elif name in ("phone_dates",):
                value = [list(v) for v in value]
            elif name == "next_window" and value is not None:
                value = list(value)
            out[name] = value
        return out


@dataclass
class SkippedEntry:
    index: int
    reason: str


@dataclass
class ParseResult:
    """Everything read from one document: the records plus what could not be used."""

    format: str
    records: list[TherapistRecord]
    skipped: list[SkippedEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    more_results: Optional[bool] = None
    entries_total: int = 0
    area_plz: Optional[str] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # digests of entries not read again (`reuse`)

    @property
    def generations(self) -> set[str]:
        return {r.generation for r in self.records}

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + sum(len(r.warnings) for r in self.records)


ProgressCallback = Callable[[int, int], None]


# keys of a 116117 entry that change from search to search (not part of its identity)
VOLATILE_ENTRY_KEYS = frozenset({"id", "distance", "geoeffnet", "nteStart", "nteEnde", "status", "last_modified"})


def entry_digest(entry: Mapping[str, Any]) -> str:
    """Digest of a source entry without what changes from search to search (rank, distance,
    open-now badge, next window; a snapshot's status flags): the same entry saved again,
    or found by two overlapping searches, has the same digest."""
    stable = {k: v for k, v in entry.items() if k not in VOLATILE_ENTRY_KEYS}
    raw = json.dumps(stable, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- 116117 responses
