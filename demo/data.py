"""Seeded, deterministic generator of realistic (fictitious) German demo data.

    python -m demo.data --scale demo|germany|<factor> [--seed N] [--today YYYY-MM-DD]
                             [--geonames PATH]

- `demo`: about 300 therapists and 150 patients (the `make demo` data set);
- `germany`: the target scale (docs/architecture.md, "Scale"): 40,000 therapists, 100,000 patients of whom
  20,000 have an active search, the rest history (successful, cancelled, paused, open);
- a number: the germany preset multiplied by it (0.1 = 4,000 therapists ...).

Same seed + scale + `today` + PLZ table give the same rows (random.Random(seed), no wall
clock: `today` is a parameter; the command line defaults to today's date in Europe/Berlin).
Loading is idempotent: a `demo_data.load` audit entry marks a database that has demo
data, and a second run only says so. Demo data is only loaded into a database without
patients, therapists or searches.

PLZ universe: the rows of plz_centroids. When that table is empty, the GeoNames file
(GEONAMES_PATH or --geonames) is loaded through core.geo; without the file the PLZ table
shipped with the project (data/geonames/plz_de.csv.gz, every German PLZ); only if that is
missing too, a built-in list of ~90 cities (demo.cities).

Every e-mail address is at example.org / example.de, every subject is marked "[Demo]";
names, streets and phone numbers are made up from small lists.

Rows are written in bulk: COPY on PostgreSQL, Core executemany on SQLite; the generator
assigns the primary keys of rows that others reference (PostgreSQL sequences are moved
past them afterwards). Germany scale takes well under a minute on PostgreSQL
(bench/datagen.py measures it).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import sys
import time
from bisect import bisect_right
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any, Callable, NamedTuple, Optional, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.bootstrap import bootstrap
from core.geo import plz as geo_plz
from core.platform.formatting import count_of
from core.platform.references import inquiry_ref
from core.platform import audit
from core.mail import templates as mt
from demo.cities import AREA_CODE_BY_PLZ, DEMO_CITIES, WEIGHT_BY_PLZ
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, Patient, PatientExclusion, PhoneCall, PlzCentroid, Search, SearchExclusion, Therapist, User, UTCDateTime
from core.platform.permissions import SYSTEM
from core.platform.validation import kvnr_check_digit
from core.platform.vocab import SYMPTOM_GROUPS, SYMPTOMS, CallPurpose, CallResult, CallState, CoordinatesSource, EmailState, Gender, GenderPreference, InquiryChannel, InquiryOrigin, InquiryStatus, Outcome, PatientStatus, ResponseType, Role, Salutation, SearchStatus, TherapistStatus, Transport

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
DEFAULT_SEED = 20260
MARKER_ACTION = "demo_data.load"
MARKER_ENTITY = "demo_data"
COOLING_DAYS = 28  # COOLING_WEEKS default (docs/architecture.md, "Parameters")
EXPIRY_DAYS = 21  # INQUIRY_EXPIRY_DAYS default
FOLLOW_UP_DAYS = 7  # FOLLOW_UP_DAYS default
MAX_OPEN_PER_SEARCH = 4  # MAX_OPEN_INQUIRIES_PER_SEARCH default
MAX_SIZE = 6  # MAX_INQUIRY_SIZE default
REGION_DIGITS = 2  # PLZ_PREFIX_DIGITS default
BATCH_WINDOW_DAYS = 30  # historic inquiries bundle searches asked within this many days
RECENTLY_PLACED_SHARE = 0.08  # active searches with an acceptance in the last 3 weeks, not yet confirmed
RECENT_SUCCESS_SHARE = 0.4  # successful searches that started in the last 200 days


class DemoLogin(NamedTuple):
    username: str
    password: str
    role: Role
    display_name: str


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("admin", "Demo-Admin-2026", Role.admin, "Demo Administration"),
    DemoLogin("koordination", "Demo-Koordination-2026", Role.coordinator, "Demo Koordination"),
    DemoLogin("lesen", "Demo-Lesen-2026", Role.viewer, "Demo Lesezugriff"),
)


def format_logins() -> str:
    """The demo logins as German lines, e.g. for the Makefile or the run script."""
    return "\n".join(f"  {l.username} / {l.password}   ({l.role.label})" for l in DEMO_LOGINS)


class DemoDataError(Exception):
    """Demo data cannot be loaded here; the message is German."""


# --------------------------------------------------------------------------- KVNR
# kvnr_check_digit (imported from core.validation, the one implementation): letter ->
# alphabet position 01..26, with the next 8 digits 10 digits weighted 1,2,1,2,..., digit
# sums of the products, sum mod 10. A12345678 -> 0, so A123456780 is valid.


def kvnr_is_valid(kvnr: str) -> bool:
    """A letter, 9 digits, and the last digit is the check digit of the first 9 characters."""
    value = (kvnr or "").strip().upper()
    if len(value) != 10 or not value[9].isdigit():
        return False
    try:
        return kvnr_check_digit(value[:9]) == int(value[9])
    except ValueError:
        return False


# --------------------------------------------------------------------------- scale


@dataclass(frozen=True)
class Scale:
    name: str
    therapists: int
    patients: int
    active_searches: int
    # Shares of the patients without an active search (must sum to 1).
    share_open: float
    share_paused: float
    share_successful: float
    share_cancelled: float
    # Patients live in this many regions (PLZ prefixes) with the most therapists; None: all.
    # A small agency works a few regions, which also gives the demo realistic bundles.
    patient_regions: Optional[int] = None


DEMO = Scale("demo", 300, 150, 90, 0.10, 0.10, 0.50, 0.30, patient_regions=6)
GERMANY = Scale("germany", 40_000, 100_000, 20_000, 0.04, 0.04, 0.60, 0.32)
MAX_FACTOR = 5.0


def parse_scale(value: str) -> Scale:
    """`demo`, `germany` or a positive factor of the germany preset; ValueError (German) otherwise."""
    text_value = (value or "").strip().lower()
    if text_value == "demo":
        return DEMO
    if text_value == "germany":
        return GERMANY
    try:
        factor = float(text_value.replace(",", "."))
    except ValueError:
        raise ValueError(
            f"Unbekannte Größe {value!r}: erlaubt sind demo, germany oder ein Faktor wie 0.1"
        ) from None
    if not (0 < factor <= MAX_FACTOR):
        raise ValueError(f"Faktor {value!r} muss größer als 0 und höchstens {MAX_FACTOR:g} sein")
    g = GERMANY
    return Scale(
        f"{factor:g}",
        max(1, round(g.therapists * factor)),
        max(1, round(g.patients * factor)),
        max(1, round(g.active_searches * factor)),
        g.share_open,
        g.share_paused,
        g.share_successful,
        g.share_cancelled,
    )


# --------------------------------------------------------------------------- word lists

FEMALE_FIRST = (
    "Anna Maria Julia Laura Sarah Lisa Katharina Christina Sabine Petra Claudia Andrea Susanne "
    "Stefanie Nicole Melanie Sandra Birgit Monika Ursula Karin Heike Anja Kerstin Barbara Christine "
    "Elisabeth Johanna Lena Sophie Hannah Lea Marie Charlotte Clara Emma Mia Leonie Miriam Franziska "
    "Jana Nadine Silke Tanja Ulrike Gabriele Renate Ingrid Antje Carolin Theresa Vanessa Simone "
    "Daniela Eva Helena Jasmin Kathrin Annika Friederike Ayşe Elif Natalia Olga Agnieszka"
).split()
MALE_FIRST = (
    "Thomas Michael Andreas Stefan Christian Markus Frank Peter Jürgen Klaus Wolfgang Matthias "
    "Alexander Daniel Martin Tobias Sebastian Jan Florian Jonas Lukas Felix Maximilian Paul Leon "
    "Niklas Tim Philipp Simon David Johannes Benjamin Dirk Uwe Ralf Bernd Holger Sven Oliver Jens "
    "Torsten Georg Hans Heinrich Karl Moritz Julian Fabian Dominik Kai Mehmet Emre Piotr Dmitri Luca"
).split()
LAST_NAMES = (
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
    "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange "
    "Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter "
    "Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert Vogel Friedrich "
    "Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann Franke Albrecht Schuster Simon "
    "Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein Jäger Otto Sommer Groß Seidel "
    "Heinrich Brandt Haas Schreiber Graf Schulte Dietrich Ziegler Kuhn Kühn Pohl Engel Horn Busch "
    "Bergmann Thomas Voigt Sauer Arnold Wolff Pfeiffer Lindner Ebert Kessler Brinkmann Hesse "
    "Yılmaz Kaya Demir Nowak Kowalski Popović Rossi Nguyen Petrović Şahin Kovač Papadopoulos"
).split()
STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Schulstraße", "Gartenstraße", "Bergstraße", "Lindenstraße",
    "Kirchstraße", "Waldstraße", "Ringstraße", "Wiesenstraße", "Friedrichstraße", "Goethestraße",
    "Schillerstraße", "Mozartstraße", "Beethovenstraße", "Kantstraße", "Luisenstraße", "Am Markt",
    "Poststraße", "Parkstraße", "Rosenweg", "Birkenweg", "Ahornweg", "Eichenweg", "Mühlenweg",
    "Feldstraße", "Sonnenstraße", "Blumenstraße", "Uhlandstraße", "Lessingstraße", "Herderstraße",
    "Kaiserstraße", "Königstraße", "Wilhelmstraße", "Karlstraße", "Ludwigstraße", "Rathausstraße",
    "Moltkestraße", "Bismarckstraße", "Humboldtstraße", "Am Stadtpark", "Lutherstraße",
    "Kastanienallee", "Friedensstraße", "Brunnenstraße", "Heinrich-Heine-Straße",
    "Theodor-Heuss-Straße", "Konrad-Adenauer-Straße", "Hölderlinweg", "Marktplatz", "Domplatz",
    "Lindenallee", "Steinweg", "Neue Straße", "Talstraße", "Burgstraße",
)
LANGUAGES = (
    ("Englisch", 60), ("Französisch", 9), ("Spanisch", 7), ("Türkisch", 6), ("Russisch", 6),
    ("Italienisch", 4), ("Polnisch", 4), ("Arabisch", 3), ("Persisch", 2), ("Griechisch", 2),
    ("Kroatisch", 1), ("Gebärdensprache", 1),
)
AOK_BY_STATE = {
    "BW": ("AOK Baden-Württemberg",), "BY": ("AOK Bayern",), "BE": ("AOK Nordost",),
    "BB": ("AOK Nordost",), "MV": ("AOK Nordost",), "HB": ("AOK Bremen/Bremerhaven",),
    "HH": ("AOK Rheinland/Hamburg",), "NW": ("AOK Rheinland/Hamburg", "AOK NordWest"),
    "SH": ("AOK NordWest",), "HE": ("AOK Hessen",), "NI": ("AOK Niedersachsen",),
    "SN": ("AOK PLUS",), "TH": ("AOK PLUS",), "ST": ("AOK Sachsen-Anhalt",),
    "RP": ("AOK Rheinland-Pfalz/Saarland",), "SL": ("AOK Rheinland-Pfalz/Saarland",),
}
INSURERS = (
    ("AOK", 32), ("Techniker Krankenkasse (TK)", 20), ("BARMER", 12), ("DAK-Gesundheit", 8),
    ("IKK classic", 4), ("KKH Kaufmännische Krankenkasse", 2), ("hkk Krankenkasse", 2),
    ("Mobil Krankenkasse", 2), ("SBK", 1), ("BIG direkt gesund", 1), ("HEK", 1), ("BKK firmus", 1),
)
DIAGNOSES = (
    "F32.1", "F32.2", "F33.1", "F33.2", "F34.1", "F40.1", "F41.0", "F41.1", "F41.2", "F42.2",
    "F43.1", "F43.2", "F45.0", "F45.41", "F50.2", "F60.3", "F10.2",
)
REFERRALS = (
    ("Hausarztpraxis", 30), ("Internetsuche", 25), ("Freunde oder Bekannte", 15),
    ("Krankenkasse", 10), ("Psychotherapeutische Sprechstunde", 8), ("Beratungsstelle", 4),
    (None, 8),
)
BLOCK_REASONS = (
    "Wünscht keine Anfragen mehr",
    "Hat sich über zu viele Anfragen beschwert",
    "Behandelt nur Privatversicherte",
    "Praxis nur für Kinder und Jugendliche",
)
INACTIVE_REASONS = (
    "Praxis aufgegeben", "Ruhestand", "Elternzeit", "Nicht mehr bei 116117 gelistet",
    "Längere Krankheit",
)
POTENTIAL_NOTES = (
    "Hat am Telefon freie Plätze ab dem nächsten Quartal erwähnt.",
    "Baut gerade eine Gruppe auf, Einzelplätze ab Herbst.",
    "Kolleg:in aus der Praxisgemeinschaft hat Kapazität angekündigt.",
    "Sucht vor allem Patient:innen mit Angststörungen.",
)
OUTCOME_NOTES = (
    "Warteliste ca. 6 Monate.", "Keine Kapazität bis Jahresende.", "Passt nicht zum Schwerpunkt.",
    "Bitte in drei Monaten erneut anfragen.", "Erstgespräch angeboten.",
)
SMTP_ERRORS = (
    "550 5.1.1 Empfängeradresse unbekannt (Demo)",
    "421 4.7.0 Try again later (Demo)",
    "554 5.7.1 Nachricht abgelehnt (Demo)",
)
DAYS = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
MOBILE_PREFIXES = ("151", "152", "157", "160", "162", "170", "171", "172", "173", "176", "177", "179")
ALL_FIRST = FEMALE_FIRST + MALE_FIRST
ALL_SYMPTOMS_WEIGHTS = [4 if s in SYMPTOM_GROUPS["Häufig"] else 1 for s in SYMPTOMS]

class _Weighted:
    """A weighted choice with precomputed cumulative weights (one random() per draw)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, pairs: Sequence[tuple[Any, float]]):
        self.items = tuple(item for item, _ in pairs)
        self.cum = list(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: Random) -> Any:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


W_INSURER = _Weighted(INSURERS)
W_REFERRAL = _Weighted(REFERRALS)
W_SYMPTOM = _Weighted(list(zip(SYMPTOMS, ALL_SYMPTOMS_WEIGHTS)))
W_SYMPTOM_COUNT = _Weighted(((1, 15), (2, 30), (3, 25), (4, 15), (5, 10), (6, 5)))
W_MAX_KM = _Weighted(((10, 20), (20, 35), (25, 20), (30, 20), (None, 5)))
W_THERAPIST_GENDER_PREF = _Weighted(((GenderPreference.any, 96), (GenderPreference.female, 3), (GenderPreference.male, 1)))
W_PATIENT_GENDER_PREF = _Weighted(((GenderPreference.any, 68), (GenderPreference.female, 27), (GenderPreference.male, 5)))
W_INQUIRY_SIZE = _Weighted(((1, 5), (2, 10), (3, 20), (4, 25), (5, 20), (6, 20)))
W_OPEN_COUNT = _Weighted(((0, 25), (1, 30), (2, 25), (3, 12), (4, 8)))
W_ORIGIN = _Weighted(((InquiryOrigin.manual, 60), (InquiryOrigin.planner, 30), (InquiryOrigin.nightly, 10)))
W_CLOSED_STATUS = _Weighted(((InquiryStatus.answered, 55), (InquiryStatus.expired, 38), (InquiryStatus.cancelled, 7)))
W_OPEN_STATUS = _Weighted(((InquiryStatus.sent, 78), (InquiryStatus.queued, 12), (InquiryStatus.draft, 10)))
W_REJECTION = _Weighted(((Outcome.rejected_capacity, 75), (Outcome.rejected_unsuitable, 12), (Outcome.rejected_other, 13)))
W_LANGUAGE = _Weighted(LANGUAGES)

_TRANSLIT = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "ş": "s", "ć": "c", "č": "c", "é": "e", "ğ": "g"}
)


@lru_cache(maxsize=4096)
def _slug(value: str) -> str:
    out = value.lower().translate(_TRANSLIT)
    return "".join(ch if ("a" <= ch <= "z" or "0" <= ch <= "9") else "-" for ch in out).strip("-")


# --------------------------------------------------------------------------- time windows


Windows = dict[int, list[tuple[int, int]]]  # weekday (0 = Monday) -> sorted (start, end) minutes


def format_windows(windows: Windows) -> str:
    """The canonical text (docs/architecture.md, "Weekly time windows") (days in week order, ranges sorted, HH:MM)."""

    def hm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return "; ".join(
        f"{DAYS[d]} " + ", ".join(f"{hm(s)}-{hm(e)}" for s, e in sorted(windows[d]))
        for d in sorted(windows)
        if windows[d]
    )


def _phone_hours(rng: Random) -> Windows:
    """Typical 116117 phone hours: 1-5 weekdays, short slots (25-60 min), sometimes two a day."""
    n_days = rng.choices((1, 2, 3, 4, 5), (10, 35, 30, 15, 10))[0]
    windows: Windows = {}
    for d in sorted(rng.sample(range(5), n_days)):
        start = rng.choice((8, 8, 9, 9, 10, 11, 12, 12, 13, 14, 15, 16, 17)) * 60 + rng.choice((0, 0, 0, 30))
        length = rng.choice((25, 30, 50, 50, 60, 60, 90))
        ranges = [(start, start + length)]
        if rng.random() < 0.15 and start + length + 60 <= 18 * 60:
            s2 = start + length + rng.choice((60, 120, 180))
            s2 = min(s2 // 30 * 30, 18 * 60)
            if s2 >= start + length:
                ranges.append((s2, s2 + rng.choice((25, 50))))
        windows[d] = ranges
    return windows


def _availability(rng: Random) -> Windows:
    """A patient's weekly availability: mostly weekdays, morning and/or afternoon blocks."""
    if rng.random() < 0.15:
        return {d: [(8 * 60, 20 * 60)] for d in range(5)}
    n_days = rng.choices((2, 3, 4, 5), (10, 30, 30, 30))[0]
    days = sorted(rng.sample(range(5), n_days))
    if rng.random() < 0.1:
        days.append(5)
    windows: Windows = {}
    for d in days:
        kind = rng.random()
        if kind < 0.35:
            windows[d] = [(rng.choice((7, 8, 9)) * 60, rng.choice((12, 13)) * 60)]
        elif kind < 0.7:
            windows[d] = [(rng.choice((14, 15, 16)) * 60, rng.choice((18, 19, 20)) * 60)]
        else:
            windows[d] = [(8 * 60, 12 * 60), (rng.choice((14, 15, 16)) * 60, rng.choice((18, 20)) * 60)]
    return windows


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class PlzRow:
    plz: str
    city: str
    state_code: Optional[str]
    lat: float
    lon: float


@lru_cache(maxsize=8192)
def _berlin_offset(day: date) -> timedelta:
    """Europe/Berlin's UTC offset on `day` between 03:00 and 24:00 (DST switches at 02:00-03:00)."""
    offset = datetime.combine(day, dtime(12, 0), tzinfo=BERLIN).utcoffset()
    assert offset is not None
    return offset


def _at(day: date, minutes: int) -> datetime:
    """Local (Europe/Berlin) wall time on `day` as an aware UTC datetime (times from 03:00 on)."""
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=UTC) - _berlin_offset(day)


def _count_from_rate(rng: Random, rate: float) -> int:
    whole = int(rate)
    return whole + (1 if rng.random() < rate - whole else 0)


def _area_code_lookup() -> Callable[[str], str]:
    """Area code for any PLZ: the built-in city's, else the nearest built-in city by PLZ number."""
    cities = sorted((int(c.plz), c.area_code) for c in DEMO_CITIES)

    def lookup(plz: str) -> str:
        known = AREA_CODE_BY_PLZ.get(plz)
        if known:
            return known
        n = int(plz)
        return min(cities, key=lambda c: abs(c[0] - n))[1]

    cache: dict[str, str] = {}

    def cached(plz: str) -> str:
        if plz not in cache:
            cache[plz] = lookup(plz)
        return cache[plz]

    return cached


# --------------------------------------------------------------------------- generated data


TABLE_ORDER = (
    ("therapists", Therapist),
    ("patients", Patient),
    ("searches", Search),
    ("patient_exclusions", PatientExclusion),
    ("search_exclusions", SearchExclusion),
    ("inquiries", Inquiry),
    ("inquiry_patients", InquiryPatient),
    ("outbox_emails", OutboxEmail),
    ("phone_calls", PhoneCall),
    ("audit_entries", AuditEntry),
)
TABLE_LABELS = {
    "plz_centroids": "PLZ-Mittelpunkte",
    "therapists": "Therapeut:innen",
    "patients": "Patient:innen",
    "searches": "Platzsuchen",
    "patient_exclusions": "Ausschlüsse (Patient:in)",
    "search_exclusions": "Ausschlüsse (Platzsuche)",
    "inquiries": "Anfragen",
    "inquiry_patients": "Patient:innen in Anfragen",
    "outbox_emails": "E-Mails im Postausgang",
    "phone_calls": "Telefonate",
    "audit_entries": "Protokolleinträge",
    "users": "Demo-Konten",
}
# Tables whose primary keys the generator assigns (PostgreSQL sequences move past them).
EXPLICIT_ID_TABLES = ("therapists", "patients", "searches", "inquiries", "phone_calls")


@dataclass
class DemoData:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(self.rows.get(name, [])) for name, _ in TABLE_ORDER}


class _Generator:
    def __init__(
        self,
        plz_rows: Sequence[PlzRow],
        scale: Scale,
        *,
        seed: int,
        today: date,
        coordinator_id: Optional[int],
    ):
        if not plz_rows:
            raise DemoDataError("Keine Postleitzahlen vorhanden; Demodaten brauchen die PLZ-Tabelle.")
        self.plz_rows = sorted(plz_rows, key=lambda r: r.plz)
        self.scale = scale
        self.rng = Random(seed)
        # Recent placements (Übersicht's weekly charts) drawn from their own stream, so the
        # rest of the data set stays what it was for a seed.
        self.recent_rng = Random(seed * 7919 + 1)
        self.today = today
        self.now = _at(today, 8 * 60)  # data is generated "this morning"
        self.coordinator_id = coordinator_id
        self.area_code = _area_code_lookup()
        self.data = DemoData()
        self._message_counter = 0
        # Pools of weekly patterns (drawing from a pool is much faster than building each)
        self.phone_hours_pool = [(w, format_windows(w)) for w in (_phone_hours(self.rng) for _ in range(2000))]
        self.availability_pool = [format_windows(_availability(self.rng)) for _ in range(600)]

    # fast, deterministic draws (random.Random's randrange/choices are slow in bulk)

    def _int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def _pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def _digits(self, n: int) -> str:
        return f"{int(self.rng.random() * 10**n):0{n}d}"

    # ----------------------------------------------------------------- small helpers

    def _day_time(self, day: date) -> datetime:
        """A random office-hours moment on `day`, never after `now`."""
        if day >= self.today:
            return _at(self.today, self._int(6 * 60, 8 * 60 - 1))
        return _at(day, self._int(8 * 60, 18 * 60 - 1))

    def _phone(self, plz: str) -> str:
        area = self.area_code(plz)
        length = max(5, 10 - len(area)) - (1 if self.rng.random() < 0.67 else 0)
        return f"+49{area}{self._int(2, 9)}{self._digits(length - 1)}"

    def _mobile(self) -> str:
        return f"+49{self._pick(MOBILE_PREFIXES)}{self._digits(8)}"

    def _street(self) -> str:
        return f"{self._pick(STREETS)} {self._int(1, 140)}"

    # ----------------------------------------------------------------- therapists

    def therapists(self) -> None:
        rng = self.rng
        rows = self.plz_rows
        if all(r.plz in WEIGHT_BY_PLZ for r in rows):
            weights = [WEIGHT_BY_PLZ[r.plz] for r in rows]
        else:
            weights = [1] * len(rows)
        cum = []
        total = 0
        for w in weights:
            total += w
            cum.append(total)
        n = self.scale.therapists
        plz_index = rng.choices(range(len(rows)), cum_weights=cum, k=n)
        used_emails: set[str] = set()
        out: list[dict[str, Any]] = []
        self.therapist_windows: list[Optional[Windows]] = []
        practice: Optional[dict[str, Any]] = None
        practice_left = 0
        for i in range(n):
            tid = i + 1
            r = rng.random()
            if r < 0.74:
                gender, salutation, first = Gender.female, Salutation.frau, self._pick(FEMALE_FIRST)
            elif r < 0.995:
                gender, salutation, first = Gender.male, Salutation.herr, self._pick(MALE_FIRST)
            else:
                gender, salutation = Gender.diverse, Salutation.none
                first = self._pick(ALL_FIRST)
            last = self._pick(LAST_NAMES)
            if rng.random() < 0.07:
                last = f"{last}-{self._pick(LAST_NAMES)}"
            t = rng.random()
            title = "Dr." if t < 0.17 else "Prof. Dr." if t < 0.18 else "Dipl.-Psych." if t < 0.22 else None

            if practice_left <= 0:
                # a new practice: solo (most) or a group practice of 2-3 colleagues
                row = rows[plz_index[i]]
                size = self._pick((2, 2, 3)) if rng.random() < 0.08 else 1
                shared_email = None
                if size > 1 and rng.random() < 0.85:
                    shared_email = f"praxis.{_slug(last)}.{tid}@example.org"
                practice = {
                    "row": row,
                    "street": self._street(),
                    "phone": self._phone(row.plz) if rng.random() < 0.97 else None,
                    "fax": None,
                    "email": shared_email,
                    "group": size > 1,
                    "website": f"https://www.example.de/praxis-{_slug(last)}-{tid}" if rng.random() < 0.25 else None,
                    "coords": None,
                }
                if practice["phone"] and rng.random() < 0.4:
                    practice["fax"] = practice["phone"][:-2] + f"{int(rng.random() * 100):02d}"
                c = rng.random()
                if c < 0.70:
                    practice["coords"] = (
                        round(row.lat + rng.gauss(0, 0.01), 6),
                        round(row.lon + rng.gauss(0, 0.015), 6),
                        CoordinatesSource.arztsuche,
                    )
                elif c < 0.99:
                    practice["coords"] = (row.lat, row.lon, CoordinatesSource.plz_centroid)
                else:
                    practice["coords"] = (None, None, CoordinatesSource.missing)
                practice_left = size
            practice_left -= 1
            assert practice is not None
            row = practice["row"]
            email = practice["email"]  # a group practice's shared address, if it has one
            if email is None and rng.random() < 0.82:
                base = self._pick(
                    (f"{_slug(first)}.{_slug(last)}", f"praxis-{_slug(last)}", f"{_slug(first)[0]}.{_slug(last)}")
                )
                candidate = f"{base}@{self._pick(('example.de', 'example.org'))}"
                k = 2
                while candidate in used_emails:
                    candidate = f"{base}{k}@{candidate.split('@')[1]}"
                    k += 1
                email = candidate
            if email:
                used_emails.add(email)
            lat, lon, source = practice["coords"]

            m = rng.random()
            vt = m < 0.62
            tp = rng.random() < (0.22 if vt else 0.75)
            ap = rng.random() < (0.35 if tp else 0.02)
            st = rng.random() < 0.06
            if not (vt or tp or ap or st):
                vt = True
            offers_group = rng.random() < 0.14
            langs: list[str] = []
            if rng.random() < 0.45:
                for lang in [W_LANGUAGE.pick(rng) for _ in range(1 if rng.random() < 0.75 else 2)]:
                    if lang not in langs:
                        langs.append(lang)
            windows, hours_text = self._pick(self.phone_hours_pool) if rng.random() < 0.92 else (None, None)
            self.therapist_windows.append(windows)
            a = rng.random()
            if a < 0.03:
                age_min, age_max = None, 21
            elif a < 0.13:
                age_min, age_max = self._pick(((18, 65), (18, 99), (21, 70), (25, 80), (18, 50), (30, 99)))
            else:
                age_min = age_max = None
            s = rng.random()
            created = self.today - timedelta(days=self._int(30, 900))
            status, reason, changed = TherapistStatus.active, None, None
            if s < 0.03:
                status, reason = TherapistStatus.blocked, self._pick(BLOCK_REASONS)
                changed = self.today - timedelta(days=self._int(1, 400))
            elif s < 0.09:
                status, reason = TherapistStatus.inactive, self._pick(INACTIVE_REASONS)
                changed = self.today - timedelta(days=self._int(1, 400))
            changed = max(changed, created) if changed else None
            potentially = rng.random() < 0.12
            created_at = _at(created, self._int(7 * 60, 18 * 60 - 1))
            out.append(
                {
                    "id": tid,
                    "salutation": salutation,
                    "title": title,
                    "first_name": first,
                    "last_name": last,
                    "gender": gender,
                    "street": practice["street"],
                    "plz": row.plz,
                    "city": row.city,
                    "lat": lat,
                    "lon": lon,
                    "coordinates_source": source,
                    "geocode_pending": source == CoordinatesSource.missing,
                    "phone": practice["phone"],
                    "fax": practice["fax"],
                    "email": email,
                    "website": practice["website"],
                    "statutory_licence": rng.random() < 0.96,
                    "phone_hours": hours_text,
                    "languages": langs,
                    "offers_vt": vt,
                    "offers_tp": tp,
                    "offers_ap": ap,
                    "offers_st": st,
                    "offers_individual": not (offers_group and rng.random() < 0.05),
                    "offers_group": offers_group,
                    "prefers_group": offers_group and rng.random() < 0.2,
                    "age_min": age_min,
                    "age_max": age_max,
                    "patient_gender_preference": W_THERAPIST_GENDER_PREF.pick(rng),
                    "potentially_available": potentially,
                    "potentially_available_notes": self._pick(POTENTIAL_NOTES) if potentially and rng.random() < 0.5 else None,
                    "knows_us": rng.random() < 0.18,
                    "next_contact_at": None,
                    "status": status,
                    "status_reason": reason,
                    "status_changed_on": changed,
                    "last_contact_email_on": None,
                    "last_contact_phone_on": None,
                    "last_contact_in_person_on": (
                        self.today - timedelta(days=self._int(10, 600)) if rng.random() < 0.02 else None
                    ),
                    "external_id": f"demo-{tid:06d}" if source == CoordinatesSource.arztsuche else None,
                    "source_hash": None,
                    "hand_edited_fields": ["email"] if email and rng.random() < 0.02 else [],
                    "delisted_on": changed if reason == "Nicht mehr bei 116117 gelistet" else None,
                    "notes": "Demo: bevorzugt Kontakt per E-Mail." if rng.random() < 0.03 else None,
                    "created_at": created_at,
                    "updated_at": created_at,
                }
            )
        self.data.rows["therapists"] = out
        # regions and PLZ neighbourhoods for patients and inquiries
        self.region_therapists: dict[str, list[int]] = defaultdict(list)
        self.region_contactable: dict[str, list[int]] = defaultdict(list)  # with e-mail or phone
        for t in out:
            self.region_therapists[t["plz"][:REGION_DIGITS]].append(t["id"])
            if t["email"] or t["phone"]:
                self.region_contactable[t["plz"][:REGION_DIGITS]].append(t["id"])
        self.plz_by_prefix3: dict[str, list[PlzRow]] = defaultdict(list)
        for r in rows:
            self.plz_by_prefix3[r.plz[:3]].append(r)

    # ----------------------------------------------------------------- patients and searches

    def patients_and_searches(self) -> None:
        rng = self.rng
        sc = self.scale
        today = self.today
        therapists = self.data.rows["therapists"]
        n = sc.patients
        n_active = min(sc.active_searches, n)
        rest = n - n_active
        n_paused = round(rest * sc.share_paused)
        n_success = round(rest * sc.share_successful)
        n_cancel = round(rest * sc.share_cancelled)
        n_open = max(0, rest - n_paused - n_success - n_cancel)
        kinds = (
            ["active"] * n_active
            + ["paused"] * n_paused
            + ["successful"] * n_success
            + ["cancelled"] * n_cancel
            + ["open"] * n_open
        )[:n]
        rng.shuffle(kinds)
        anchors = [t["id"] for t in therapists]  # patients live near a random therapist ...
        if sc.patient_regions:  # ... of the busiest regions only
            busiest = sorted(self.region_therapists, key=lambda r: (-len(self.region_therapists[r]), r))
            anchors = [tid for r in sorted(busiest[: sc.patient_regions]) for tid in self.region_therapists[r]]
        used_kvnr: set[str] = set()
        patients: list[dict[str, Any]] = []
        searches: list[dict[str, Any]] = []
        pick, rint = self._pick, self._int
        for i in range(n):
            pid = i + 1
            kind = kinds[i]
            r = rng.random()
            if r < 0.68:
                gender, salutation, first = Gender.female, Salutation.frau, pick(FEMALE_FIRST)
            elif r < 0.98:
                gender, salutation, first = Gender.male, Salutation.herr, pick(MALE_FIRST)
            else:
                gender, salutation = Gender.diverse, Salutation.none
                first = pick(ALL_FIRST)
            last = pick(LAST_NAMES)
            anchor = therapists[pick(anchors) - 1]
            row = pick(self.plz_by_prefix3[anchor["plz"][:3]])
            age_years = rng.triangular(18.05, 79.95, 32)
            birth = today - timedelta(days=int(age_years * 365.2425))
            insurer = W_INSURER.pick(rng)
            if insurer == "AOK":
                insurer = pick(AOK_BY_STATE.get(row.state_code or "", ("AOK",)))
            kvnr = None
            if kind != "open" or rng.random() < 0.8:
                while kvnr is None or kvnr in used_kvnr:
                    first9 = chr(65 + int(rng.random() * 26)) + self._digits(8)
                    kvnr = first9 + str(kvnr_check_digit(first9))
                used_kvnr.add(kvnr)
            k = W_SYMPTOM_COUNT.pick(rng)
            symptoms: list[str] = []
            while len(symptoms) < k:
                s = W_SYMPTOM.pick(rng)
                if s not in symptoms:
                    symptoms.append(s)
            prior = rng.random() < 0.4
            pm = rng.random()
            preferred_methods = (
                [] if pm < 0.65 else ["VT"] if pm < 0.83 else ["TP"] if pm < 0.93 else ["VT", "TP"] if pm < 0.98 else ["ST"]
            )
            email = f"{_slug(first)}.{_slug(last)}.p{pid}@example.org" if rng.random() < 0.9 else None

            # the search plan for this patient
            plan: list[dict[str, Any]] = []
            if kind == "active":
                wait = min(int(rng.expovariate(1 / 90)), 540)  # most wait weeks, some many months
                entry = {"status": SearchStatus.active, "started_on": today - timedelta(days=wait)}
                if wait >= 10 and self.recent_rng.random() < RECENTLY_PLACED_SHARE:
                    # a therapist accepted in the last three weeks; the first session is not confirmed yet
                    entry["placed_on"] = today - timedelta(days=self.recent_rng.randint(1, min(21, wait - 7)))
                plan.append(entry)
            elif kind == "paused":
                start = today - timedelta(days=rint(40, 400))
                paused = start + timedelta(days=rint(10, (today - start).days - 1))
                plan.append({"status": SearchStatus.paused, "started_on": start, "paused_on": paused})
            elif kind == "successful":
                start = today - timedelta(days=rint(50, 720))
                if self.recent_rng.random() < RECENT_SUCCESS_SHARE:  # spread over the last months, not two years
                    start = today - timedelta(days=self.recent_rng.randint(50, 200))
                span = (today - start).days
                placed = start + timedelta(days=rint(21, min(150, span - 21)))
                success = placed + timedelta(days=rint(14, min(35, (today - placed).days)))
                plan.append(
                    {"status": SearchStatus.successful, "started_on": start, "placed_on": placed, "success_on": success, "ended_on": success}
                )
            elif kind == "cancelled":
                start = today - timedelta(days=rint(20, 720))
                end = start + timedelta(days=rint(7, min(200, (today - start).days)))
                plan.append({"status": SearchStatus.cancelled, "started_on": start, "ended_on": end})
            if plan and kind in ("active", "paused") and rng.random() < 0.08:
                cur = plan[0]["started_on"]
                s0 = cur - timedelta(days=rint(60, 400))
                e0 = s0 + timedelta(days=rint(7, (cur - s0).days - 1))
                plan.insert(0, {"status": SearchStatus.cancelled, "started_on": s0, "ended_on": e0})
            registered = (plan[0]["started_on"] if plan else today - timedelta(days=rint(0, 60))) - timedelta(
                days=rint(0, 5)
            )
            registered_at = self._day_time(registered)
            if kind == "successful":
                success_on = plan[-1]["success_on"]
                status = (
                    PatientStatus.therapy_finished
                    if (today - success_on).days > 240 and rng.random() < 0.5
                    else PatientStatus.therapy_cancelled
                    if rng.random() < 0.04
                    else PatientStatus.in_therapy
                )
            else:
                status = {
                    "active": PatientStatus.searching,
                    "paused": PatientStatus.searching,
                    "cancelled": PatientStatus.search_cancelled,
                    "open": PatientStatus.open,
                }[kind]
            signed = bool(plan) or rng.random() < 0.5
            if plan:
                last_event = plan[-1].get("ended_on") or plan[-1].get("paused_on") or today
            else:
                last_event = registered
            last_contact = min(today, max(registered, last_event - timedelta(days=rint(0, 20))))
            patients.append(
                {
                    "id": pid,
                    "salutation": salutation,
                    "gender": gender,
                    "first_name": first,
                    "last_name": last,
                    "birth_date": birth,
                    "street": self._street(),
                    "plz": row.plz,
                    "city": row.city,
                    "lat": row.lat,
                    "lon": row.lon,
                    "email": email,
                    "phone": self._mobile() if rng.random() < 0.95 else None,
                    "gp_name": (
                        f"Dr. med. {pick(ALL_FIRST)} {pick(LAST_NAMES)}"
                        if rng.random() < 0.6
                        else None
                    ),
                    "insurer": insurer,
                    "insurance_number": kvnr,
                    "symptoms": symptoms,
                    "diagnosis": pick(DIAGNOSES) if rng.random() < 0.35 else None,
                    "prior_therapy": prior,
                    "prior_therapy_end": (
                        max(registered - timedelta(days=rint(400, 3650)), min(birth + timedelta(days=18 * 366), registered - timedelta(days=60)))
                        if prior
                        else None
                    ),
                    "availability": pick(self.availability_pool),
                    "max_distance_km": W_MAX_KM.pick(rng),
                    "transport": Transport.public_transport if rng.random() < 0.55 else Transport.car,
                    "open_to_group": rng.random() < 0.35,
                    "preferred_therapist_gender": W_PATIENT_GENDER_PREF.pick(rng),
                    "preferred_methods": preferred_methods,
                    "status": status,
                    "referral_source": W_REFERRAL.pick(rng),
                    "contracts_signed": signed,
                    "consent_given": signed,
                    "consent_at": registered_at if signed else None,
                    "last_contact_on": last_contact,
                    "notes": "Demo: bitte nur nachmittags anrufen." if rng.random() < 0.04 else None,
                    "created_at": registered_at,
                    "updated_at": registered_at,
                }
            )
            for p in plan:
                started_at = self._day_time(p["started_on"])
                searches.append(
                    {
                        "id": len(searches) + 1,
                        "patient_id": pid,
                        "status": p["status"],
                        "started_on": p["started_on"],
                        "paused_on": p.get("paused_on"),
                        "ended_on": p.get("ended_on"),
                        "placed_therapist_id": None,
                        "placed_on": p.get("placed_on"),
                        "success_on": p.get("success_on"),
                        "notes": None,
                        "version": 1,
                        "created_at": started_at,
                        "updated_at": started_at,
                    }
                )
        self.data.rows["patients"] = patients
        self.data.rows["searches"] = searches

    # ----------------------------------------------------------------- inquiries

    def inquiries(self) -> None:
        """Inquiry memberships per search over its life, batched per region into inquiries."""
        rng = self.rng
        today = self.today
        patients = self.data.rows["patients"]
        searches = self.data.rows["searches"]
        therapists = self.data.rows["therapists"]
        region_of_search = {s["id"]: patients[s["patient_id"] - 1]["plz"][:REGION_DIGITS] for s in searches}

        # region -> (earliest day, latest sent day, search) as day ordinals
        closed: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        accepts: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # (sent ord, search, placed ord)
        open_: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for s in searches:
            region = region_of_search[s["id"]]
            start = s["started_on"]
            if s["status"] == SearchStatus.successful or s.get("placed_on"):
                end = s["placed_on"]
            elif s["status"] == SearchStatus.paused:
                end = s["paused_on"]
            elif s["status"] == SearchStatus.cancelled:
                end = s["ended_on"]
            else:
                end = today
            last_closed = end - timedelta(days=COOLING_DAYS)
            window = (last_closed - start).days
            if window > 0:
                latest = (end - timedelta(days=EXPIRY_DAYS)).toordinal()  # answered/expired before the end
                for _ in range(_count_from_rate(rng, min(10.0, window / 21 * 0.9))):
                    day = (start + timedelta(days=self._int(0, window))).toordinal()
                    closed[region].append((day, latest, s["id"]))
            if s["status"] == SearchStatus.successful or s.get("placed_on"):
                delay = self._int(2, 18)
                sent = max(start, s["placed_on"] - timedelta(days=delay))
                accepts[region].append((sent.toordinal(), s["id"], s["placed_on"].toordinal()))
            if s["status"] == SearchStatus.active and not s.get("placed_on"):
                k = min(W_OPEN_COUNT.pick(rng), MAX_OPEN_PER_SEARCH)
                lo = max(start, today - timedelta(days=EXPIRY_DAYS - 1))
                span = (today - lo).days
                for _ in range(k):
                    open_[region].append(((lo + timedelta(days=self._int(0, span))).toordinal(), s["id"]))

        self.inq_rows: list[dict[str, Any]] = []
        self.member_rows: list[dict[str, Any]] = []
        self.last_answered: dict[int, int] = {}  # therapist -> answered day ordinal
        self.open_therapists: set[int] = set()
        self.last_email_sent: dict[int, int] = {}
        self.members_by_inquiry: dict[int, list[dict[str, Any]]] = {}

        def pick_size() -> int:
            return W_INQUIRY_SIZE.pick(rng)

        regions = sorted(set(closed) | set(accepts) | set(open_))
        for region in regions:
            # (a patient's region always has therapists: patients live near a therapist's PLZ)
            candidates = self.region_contactable.get(region) or [t["id"] for t in therapists if t["email"] or t["phone"]]
            # closed memberships, bucketed by day for the acceptance anchors
            by_day: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for day, latest, sid in sorted(closed.get(region, [])):
                by_day[day].append((latest, sid))
            for sent, sid, placed in sorted(accepts.get(region, [])):
                # an acceptance: the inquiry also carries other searches asked at that time
                members = [sid]
                want = pick_size()
                for day in range(sent, sent - BATCH_WINDOW_DAYS - 1, -1):
                    lst = by_day.get(day)
                    if not lst:
                        continue
                    keep = []
                    for latest, other in lst:
                        if len(members) < want and latest >= sent and other not in members:
                            members.append(other)
                        else:
                            keep.append((latest, other))
                    by_day[day] = keep
                    if len(members) >= want:
                        break
                therapist = candidates[int(rng.random() * len(candidates))]
                self._closed_inquiry(therapist, members, date.fromordinal(sent), accept=(sid, date.fromordinal(placed)))
            # the remaining closed memberships in greedy batches: sent on the latest member's
            # day, which must leave every member's search time to be answered or to expire
            rest = sorted((day, latest, sid) for day, lst in by_day.items() for latest, sid in lst)
            i = 0
            while i < len(rest):
                first_day, min_latest, sid = rest[i]
                members = [sid]
                last_day = first_day
                i += 1
                want = pick_size()
                while i < len(rest) and len(members) < want:
                    day, latest, sid = rest[i]
                    if day - first_day > BATCH_WINDOW_DAYS or day > min_latest or sid in members:
                        break
                    members.append(sid)
                    last_day, min_latest = day, min(min_latest, latest)
                    i += 1
                therapist = candidates[int(rng.random() * len(candidates))]
                self._closed_inquiry(therapist, members, date.fromordinal(last_day), accept=None)

        # open inquiries after the closed ones (cooling and e-mail spacing known per therapist)
        for region in regions:
            candidates = [
                t for t in self.region_contactable.get(region, []) if therapists[t - 1]["status"] == TherapistStatus.active
            ]
            rest = sorted(open_.get(region, []))
            i = 0
            while i < len(rest):
                first_day = rest[i][0]
                want = pick_size()
                members = []
                last_day = first_day
                while i < len(rest) and len(members) < want and rest[i][0] - first_day <= 10:
                    if rest[i][1] in members:
                        break
                    members.append(rest[i][1])
                    last_day = rest[i][0]
                    i += 1
                if not members:
                    members.append(rest[i][1])
                    i += 1
                therapist = None
                for _ in range(30 if candidates else 0):
                    t = candidates[int(rng.random() * len(candidates))]
                    if t in self.open_therapists:
                        continue
                    if self.last_answered.get(t, 0) + COOLING_DAYS > last_day:
                        continue
                    if self.last_email_sent.get(t, 0) + 7 > last_day:
                        continue
                    therapist = t
                    break
                if therapist is None:
                    continue  # nobody free in the region: these memberships simply do not exist
                self._open_inquiry(therapist, members, date.fromordinal(last_day))

        self._withdrawn_members()
        self.data.rows["inquiries"] = self.inq_rows
        self.data.rows["inquiry_patients"] = self.member_rows

    def _new_inquiry(self, therapist_id: int, size: int, created_at: datetime) -> dict[str, Any]:
        rng = self.rng
        t = self.data.rows["therapists"][therapist_id - 1]
        if t["email"] and (not t["phone"] or rng.random() < 0.88):
            channel = InquiryChannel.email
        else:
            channel = InquiryChannel.phone  # candidates always have an e-mail address or a phone
        origin = W_ORIGIN.pick(rng)
        row = {
            "id": len(self.inq_rows) + 1,
            "therapist_id": therapist_id,
            "channel": channel,
            "status": InquiryStatus.draft,
            "origin": origin,
            "plan_region": t["plz"][:REGION_DIGITS] if origin == InquiryOrigin.planner else None,
            "size": size,
            "created_by": self.coordinator_id if origin == InquiryOrigin.manual else None,
            "queued_at": None,
            "sent_at": None,
            "answered_at": None,
            "expired_at": None,
            "cancelled_at": None,
            "response_type": None,
            "reduced": False,
            "needs_attention": False,
            "attention_reason": None,
            "notes": None,
            "version": 1,
            "created_at": created_at,
            "updated_at": created_at,
        }
        self.inq_rows.append(row)
        return row

    def _members(self, inquiry: dict[str, Any], search_ids: list[int]) -> list[dict[str, Any]]:
        rows = []
        for pos, sid in enumerate(search_ids, start=1):
            rows.append(
                {
                    "inquiry_id": inquiry["id"],
                    "search_id": sid,
                    "position": pos,
                    "outcome": Outcome.pending,
                    "outcome_at": None,
                    "outcome_notes": None,
                    "withdrawn_at": None,
                    "withdrawn_reason": None,
                    "conflict": False,
                    "conflict_resolved_at": None,
                    "conflict_note": None,
                }
            )
        self.member_rows.extend(rows)
        self.members_by_inquiry[inquiry["id"]] = rows
        return rows

    def _closed_inquiry(
        self, therapist_id: int, search_ids: list[int], sent_day: date, *, accept: Optional[tuple[int, date]]
    ) -> None:
        rng = self.rng
        sent_at = self._day_time(sent_day)
        queued_at = sent_at - timedelta(minutes=self._int(1, 30))
        created_at = queued_at - timedelta(minutes=self._int(5, 2 * 24 * 60))
        inq = self._new_inquiry(therapist_id, len(search_ids), created_at)
        members = self._members(inq, search_ids)
        if accept is not None:
            status = InquiryStatus.answered
        else:
            status = W_CLOSED_STATUS.pick(rng)
        inq["status"] = status
        if status == InquiryStatus.cancelled:
            inq["cancelled_at"] = created_at + timedelta(minutes=self._int(30, 3 * 24 * 60))
            inq["cancelled_at"] = min(inq["cancelled_at"], self.now)
            inq["notes"] = "Vor dem Versand storniert."
            inq["updated_at"] = inq["cancelled_at"]
            return
        inq["queued_at"], inq["sent_at"] = queued_at, sent_at
        if inq["channel"] == InquiryChannel.email:
            self.last_email_sent[therapist_id] = max(self.last_email_sent.get(therapist_id, 0), sent_day.toordinal())
        if status == InquiryStatus.expired:
            inq["expired_at"] = sent_at + timedelta(days=EXPIRY_DAYS)
            inq["response_type"] = ResponseType.no_response
            for m in members:
                m["outcome"], m["outcome_at"] = Outcome.no_response, inq["expired_at"]
            inq["updated_at"] = inq["expired_at"]
            return
        if accept is not None:
            answered_at = self._day_time(accept[1])
            if answered_at <= sent_at:
                answered_at = sent_at + timedelta(hours=self._int(2, 8))
        else:
            answered_at = sent_at + timedelta(days=self._int(1, 20), minutes=self._int(0, 240))
        answered_at = min(answered_at, self.now - timedelta(hours=1))
        inq["answered_at"] = answered_at
        inq["updated_at"] = answered_at
        accepted = 0
        for m in members:
            if accept is not None and m["search_id"] == accept[0]:
                m["outcome"] = Outcome.accepted
                accepted += 1
            else:
                m["outcome"] = W_REJECTION.pick(rng)
                if rng.random() < 0.15:
                    m["outcome_notes"] = self._pick(OUTCOME_NOTES)
            m["outcome_at"] = answered_at
        if accepted == len(members):
            inq["response_type"] = ResponseType.all_accepted
        elif accepted:
            inq["response_type"] = ResponseType.partly_accepted
        else:
            inq["response_type"] = ResponseType.all_rejected
        if accept is not None:
            search = self.data.rows["searches"][accept[0] - 1]
            search["placed_therapist_id"] = therapist_id
            search["placed_on"] = answered_at.astimezone(BERLIN).date()
        day = answered_at.astimezone(BERLIN).date().toordinal()
        self.last_answered[therapist_id] = max(self.last_answered.get(therapist_id, 0), day)

    def _open_inquiry(self, therapist_id: int, search_ids: list[int], sent_day: date) -> None:
        rng = self.rng
        status = W_OPEN_STATUS.pick(rng)
        if status == InquiryStatus.sent:
            sent_at = self._day_time(sent_day)
            queued_at = sent_at - timedelta(minutes=self._int(1, 30))
            created_at = queued_at - timedelta(minutes=self._int(5, 24 * 60))
        else:
            created_at = self.now - timedelta(minutes=self._int(10, 36 * 60))
            queued_at = self.now - timedelta(minutes=self._int(1, 9)) if status == InquiryStatus.queued else None
            sent_at = None
        inq = self._new_inquiry(therapist_id, len(search_ids), created_at)
        self._members(inq, search_ids)
        inq["status"], inq["queued_at"], inq["sent_at"] = status, queued_at, sent_at
        inq["updated_at"] = sent_at or queued_at or created_at
        self.open_therapists.add(therapist_id)
        if status == InquiryStatus.sent and inq["channel"] == InquiryChannel.email:
            self.last_email_sent[therapist_id] = max(self.last_email_sent.get(therapist_id, 0), sent_day.toordinal())

    def _withdrawn_members(self) -> None:
        """Paused or cancelled searches that were in a still-open (sent) inquiry: withdrawn."""
        rng = self.rng
        patients = self.data.rows["patients"]
        open_sent_by_region: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for inq in self.inq_rows:
            if inq["status"] == InquiryStatus.sent:
                t = self.data.rows["therapists"][inq["therapist_id"] - 1]
                open_sent_by_region[t["plz"][:REGION_DIGITS]].append(inq)
        for s in self.data.rows["searches"]:
            if s["status"] == SearchStatus.paused:
                ended = s["paused_on"]
            elif s["status"] == SearchStatus.cancelled:
                ended = s["ended_on"]
            else:
                continue
            if ended < self.today - timedelta(days=EXPIRY_DAYS - 2) or rng.random() > 0.5:
                continue
            region = patients[s["patient_id"] - 1]["plz"][:REGION_DIGITS]
            for inq in open_sent_by_region.get(region, []):
                sent_day = inq["sent_at"].astimezone(BERLIN).date()
                if not (s["started_on"] <= sent_day < ended) or inq["size"] >= MAX_SIZE:
                    continue
                members = self.members_by_inquiry[inq["id"]]
                withdrawn_at = max(_at(ended, self._int(9 * 60, 17 * 60 - 1)), inq["sent_at"] + timedelta(hours=1))
                m = {
                    "inquiry_id": inq["id"],
                    "search_id": s["id"],
                    "position": len(members) + 1,
                    "outcome": Outcome.pending,
                    "outcome_at": None,
                    "outcome_notes": None,
                    "withdrawn_at": min(withdrawn_at, self.now),
                    "withdrawn_reason": (
                        "Platzsuche pausiert" if s["status"] == SearchStatus.paused else "Platzsuche abgebrochen"
                    ),
                    "conflict": False,
                    "conflict_resolved_at": None,
                    "conflict_note": None,
                }
                members.append(m)
                self.member_rows.append(m)
                inq["size"] = len(members)
                inq["reduced"] = True
                inq["updated_at"] = max(inq["updated_at"], m["withdrawn_at"])
                break

    # ----------------------------------------------------------------- calls and e-mails

    def _slot(
        self, therapist_id: Optional[int], day: date, *, forward: bool, future: Optional[bool], used: Optional[set] = None
    ) -> datetime:
        """A 5-minute slot in the therapist's phone hours on or after (before) `day`.

        future=True: only slots after `now`; False: only before; None: any. With `used`,
        a slot already taken is skipped (so scheduled calls rarely collide)."""
        rng = self.rng
        windows = self.therapist_windows[therapist_id - 1] if therapist_id else None
        if not windows:
            windows = {d: [(10 * 60, 12 * 60)] for d in range(5)}
        step = 1 if forward else -1
        d = day
        for _ in range(60):
            ranges = windows.get(d.weekday())
            if ranges:
                s, e = ranges[int(rng.random() * len(ranges))]
                slots = max(1, (e - s) // 5)
                first = int(rng.random() * slots)
                for k in range(slots):
                    start = _at(d, s + ((first + k) % slots) * 5)
                    if future is True and start <= self.now:
                        continue
                    if future is False and start >= self.now:
                        continue
                    if used is None or start not in used:
                        if used is not None:
                            used.add(start)
                        return start
            d += timedelta(days=step)
        return _at(day, 10 * 60)

    def calls_and_emails(self) -> None:
        rng = self.rng
        today = self.today
        therapists = self.data.rows["therapists"]
        patients = self.data.rows["patients"]
        searches = self.data.rows["searches"]
        calls: list[dict[str, Any]] = []
        emails: list[dict[str, Any]] = []
        used_slots: set[datetime] = set()
        last_phone: dict[int, date] = {}

        def call(
            *,
            therapist_id: Optional[int] = None,
            patient_id: Optional[int] = None,
            inquiry_id: Optional[int] = None,
            purpose: CallPurpose,
            start: datetime,
            state: CallState,
            outcome: Optional[str] = None,
            attempt: int = 1,
            previous: Optional[int] = None,
            created_at: Optional[datetime] = None,
        ) -> dict[str, Any]:
            done = state in (CallState.done, CallState.failed)
            created = min(created_at or start - timedelta(days=1), self.now)
            row = {
                "id": len(calls) + 1,
                "therapist_id": therapist_id,
                "patient_id": patient_id,
                "inquiry_id": inquiry_id,
                "purpose": purpose,
                "scheduled_start": start,
                "duration_minutes": 5 if therapist_id else 10,
                "state": state,
                "outcome": outcome,
                "result": (None if not done else CallResult.voicemail if outcome == "Mailbox"
                           else CallResult.reached if state == CallState.done else CallResult.not_reached),
                "notes": None,
                "attempt": attempt,
                "previous_call_id": previous,
                "done_at": start + timedelta(minutes=self._int(1, 5)) if done else None,
                "done_by": self.coordinator_id if done else None,
                "created_at": created,
                "updated_at": start if done else created,
            }
            calls.append(row)
            if therapist_id and state == CallState.done:
                d = start.astimezone(BERLIN).date()
                if d > last_phone.get(therapist_id, date.min):
                    last_phone[therapist_id] = d
            return row

        def email(
            *,
            therapist: Optional[dict] = None,
            patient: Optional[dict] = None,
            inquiry_id: Optional[int] = None,
            subject: str,
            lines: list[str],
            template: str,
            state: EmailState,
            created_at: datetime,
            queued_at: Optional[datetime] = None,
            sent_at: Optional[datetime] = None,
        ) -> dict[str, Any]:
            person = therapist or patient
            assert person is not None
            name = " ".join(p for p in (person.get("title"), person["first_name"], person["last_name"]) if p)
            body = ["[DEMODATEN – Beispielnachricht, nicht echt]", ""] + lines + [
                "",
                "Mit freundlichen Grüßen",
                "Ihr Team der Therapieplatz-Vermittlung (Demo)",
            ]
            body_text = "\n".join(body)
            body_html = "<p>" + html.escape(body_text).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
            attempts = 1 if state == EmailState.sent else 0
            last_error = None
            next_attempt = None
            message_id = None
            if state == EmailState.sent:
                self._message_counter += 1
                message_id = f"<demo-{self._message_counter}@example.de>"
            elif state == EmailState.queued:
                next_attempt = queued_at
                if rng.random() < 0.05:
                    attempts = self._int(1, 2)
                    last_error = SMTP_ERRORS[1]
                    next_attempt = self.now + timedelta(minutes=self._pick((2, 4, 8, 16)))
            elif state == EmailState.failed:
                attempts = 5
                last_error = self._pick((SMTP_ERRORS[0], SMTP_ERRORS[2]))
            row = {
                "therapist_id": therapist["id"] if therapist else None,
                "patient_id": patient["id"] if patient else None,
                "inquiry_id": inquiry_id,
                "to_address": person["email"],
                "to_name": name,
                "subject": subject,
                "body_html": body_html,
                "body_text": body_text,
                "template": template,
                "attachment_document_ids": [],
                "state": state,
                "attempts": attempts,
                "next_attempt_at": next_attempt,
                "last_error": last_error,
                "message_id": message_id,
                "lease_owner": None,
                "lease_expires_at": None,
                "queued_at": queued_at,
                "sent_at": sent_at,
                "created_by": self.coordinator_id,
                "created_at": created_at,
                "updated_at": sent_at or queued_at or created_at,
            }
            emails.append(row)
            return row

        def greeting(t: dict) -> str:
            name = " ".join(p for p in (t["title"], t["last_name"]) if p)
            if t["salutation"] == Salutation.frau:
                return f"Sehr geehrte Frau {name},"
            if t["salutation"] == Salutation.herr:
                return f"Sehr geehrter Herr {name},"
            return f"Guten Tag {t['first_name']} {t['last_name']},"

        for inq in self.inq_rows:
            t = therapists[inq["therapist_id"] - 1]
            status = inq["status"]
            members = self.members_by_inquiry[inq["id"]]
            if inq["channel"] == InquiryChannel.email:
                lines = [greeting(t), "", f"wir suchen einen Therapieplatz für {count_of(len(members), 'person')} aus Ihrer Region (Anfrage {inquiry_ref(inq['id'])}):", ""]
                for m in members:
                    p = patients[searches[m["search_id"] - 1]["patient_id"] - 1]
                    age = (today - p["birth_date"]).days // 365
                    lines.append(f"{m['position']}. {p['first_name'][0]}. {p['last_name'][0]}., {age} Jahre: {', '.join(p['symptoms'][:3])}")
                lines += ["", "Bitte antworten Sie kurz, ob Sie eine oder mehrere Personen aufnehmen können."]
                subject = f"[Demo] Anfrage {inquiry_ref(inq['id'])}: Therapieplatz für {count_of(len(members), 'person')}"
                if status == InquiryStatus.draft:
                    email(therapist=t, inquiry_id=inq["id"], subject=subject, lines=lines, template=mt.THERAPIST_INQUIRY, state=EmailState.draft, created_at=inq["created_at"])
                elif status == InquiryStatus.queued:
                    if rng.random() < 0.04:
                        email(therapist=t, inquiry_id=inq["id"], subject=subject, lines=lines, template=mt.THERAPIST_INQUIRY, state=EmailState.failed, created_at=inq["created_at"], queued_at=inq["queued_at"])
                        inq["needs_attention"] = True
                        inq["attention_reason"] = "E-Mail konnte nicht zugestellt werden."
                    else:
                        email(therapist=t, inquiry_id=inq["id"], subject=subject, lines=lines, template=mt.THERAPIST_INQUIRY, state=EmailState.queued, created_at=inq["created_at"], queued_at=inq["queued_at"])
                elif status == InquiryStatus.cancelled:
                    email(therapist=t, inquiry_id=inq["id"], subject=subject, lines=lines, template=mt.THERAPIST_INQUIRY, state=EmailState.cancelled, created_at=inq["created_at"])
                else:
                    email(therapist=t, inquiry_id=inq["id"], subject=subject, lines=lines, template=mt.THERAPIST_INQUIRY, state=EmailState.sent, created_at=inq["created_at"], queued_at=inq["queued_at"], sent_at=inq["sent_at"])
                # follow-up: a call when the therapist has a phone number, else one reminder mail
                if status in (InquiryStatus.sent, InquiryStatus.expired, InquiryStatus.answered):
                    sent_day = inq["sent_at"].astimezone(BERLIN).date()
                    follow_day = sent_day + timedelta(days=FOLLOW_UP_DAYS)
                    due = status == InquiryStatus.sent and follow_day <= today
                    if not t["phone"]:
                        if due or status == InquiryStatus.expired:
                            at = min(_at(follow_day, 6 * 60 + self._int(0, 59)), self.now)
                            email(
                                therapist=t, inquiry_id=inq["id"], subject=f"[Demo] Erinnerung: Anfrage A{inq['id']}",
                                lines=[greeting(t), "", f"wir möchten freundlich an unsere Anfrage A{inq['id']} erinnern."],
                                template=mt.THERAPIST_REMINDER, state=EmailState.sent, created_at=at, queued_at=at,
                                sent_at=min(at + timedelta(minutes=1), self.now),
                            )
                    elif due:
                        r = rng.random()
                        follow = dict(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.follow_up)
                        first_start = self._slot(t["id"], follow_day, forward=True, future=None)
                        if r < 0.6 or first_start >= self.now:
                            start = self._slot(t["id"], today, forward=True, future=True, used=used_slots)
                            call(**follow, start=start, state=CallState.scheduled, created_at=_at(follow_day, 6 * 60))
                        else:
                            first = call(**follow, start=first_start, state=CallState.failed, outcome="Nicht erreicht", created_at=_at(follow_day, 6 * 60))
                            second_start = self._slot(t["id"], today - timedelta(days=1), forward=False, future=False)
                            if r < 0.97 or second_start <= first_start:
                                start = self._slot(t["id"], today, forward=True, future=True, used=used_slots)
                                call(**follow, start=start, state=CallState.scheduled, attempt=2, previous=first["id"], created_at=first["done_at"])
                            else:
                                second = call(**follow, start=second_start, state=CallState.failed, outcome="Mailbox", attempt=2, previous=first["id"])
                                third_start = second_start + timedelta(minutes=5)
                                if third_start < self.now:
                                    call(**follow, start=third_start, state=CallState.failed, outcome="Nicht erreicht", attempt=3, previous=second["id"])
                                    inq["needs_attention"] = True
                                    inq["attention_reason"] = "3 Anrufversuche ohne Erfolg."
                    elif status == InquiryStatus.expired and rng.random() < 0.7:
                        prev = None
                        for attempt in range(1, self._int(1, 3) + 1):
                            start = self._slot(t["id"], follow_day + timedelta(days=2 * (attempt - 1)), forward=True, future=None)
                            c = call(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.follow_up, start=start, state=CallState.failed, outcome="Nicht erreicht", attempt=attempt, previous=prev, created_at=_at(follow_day, 6 * 60))
                            prev = c["id"]
                    elif status == InquiryStatus.answered and (inq["answered_at"] - inq["sent_at"]).days >= FOLLOW_UP_DAYS and rng.random() < 0.5:
                        start = inq["answered_at"] - timedelta(minutes=5)
                        call(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.follow_up, start=start, state=CallState.done, outcome="Antwort telefonisch aufgenommen", created_at=_at(follow_day, 6 * 60))
            else:  # phone channel: the inquiry is the call
                if status == InquiryStatus.draft:
                    continue
                if status == InquiryStatus.queued:
                    call(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.inquiry, start=self._slot(t["id"], today, forward=True, future=True, used=used_slots), state=CallState.scheduled, created_at=inq["queued_at"])
                elif status == InquiryStatus.cancelled:
                    call(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.inquiry, start=inq["cancelled_at"] + timedelta(days=1), state=CallState.cancelled, created_at=inq["created_at"])
                else:
                    outcome = "Anfrage telefonisch vorgestellt, Antwort folgt"
                    if status == InquiryStatus.answered and (inq["answered_at"] - inq["sent_at"]).total_seconds() < 3600 * 3:
                        outcome = "Antwort direkt am Telefon"
                    call(therapist_id=t["id"], inquiry_id=inq["id"], purpose=CallPurpose.inquiry, start=inq["sent_at"] - timedelta(minutes=5), state=CallState.done, outcome=outcome, created_at=inq["queued_at"])

        # patients: welcome mails for new searches, success mails, a few calls
        for s in searches:
            p = patients[s["patient_id"] - 1]
            if s["status"] == SearchStatus.active and (today - s["started_on"]).days <= 14 and p["email"]:
                at = s["created_at"]
                state = EmailState.queued if s["started_on"] >= today - timedelta(days=1) and rng.random() < 0.3 else EmailState.sent
                email(
                    patient=p, subject="[Demo] Ihre Platzsuche hat begonnen", template=mt.PATIENT_SEARCH_STARTED,
                    lines=[f"Guten Tag {p['first_name']} {p['last_name']},", "", "wir haben Ihre Platzsuche gestartet und melden uns, sobald eine Praxis zusagt."],
                    state=state, created_at=at, queued_at=at, sent_at=min(at + timedelta(minutes=2), self.now) if state == EmailState.sent else None,
                )
            if s["status"] == SearchStatus.successful and (today - s["success_on"]).days <= 120 and p["email"]:
                t = therapists[s["placed_therapist_id"] - 1]
                at = self._day_time(s["success_on"])
                name = " ".join(x for x in (t["title"], t["first_name"], t["last_name"]) if x)
                email(
                    patient=p, subject=f"[Demo] Ihr Therapieplatz bei {name}", template=mt.PATIENT_PLACE_FOUND_EMAIL,
                    lines=[f"Guten Tag {p['first_name']} {p['last_name']},", "", f"{name} hat einen Therapieplatz für Sie. Praxis: {t['street']}, {t['plz']} {t['city']}."],
                    state=EmailState.sent, created_at=at, queued_at=at, sent_at=min(at + timedelta(minutes=3), self.now),
                )
            if s["status"] == SearchStatus.active and rng.random() < 0.04:
                start = self._slot(None, today + timedelta(days=self._int(0, 5)), forward=True, future=True, used=used_slots)
                call(patient_id=p["id"], purpose=CallPurpose.patient, start=start, state=CallState.scheduled, created_at=self.now - timedelta(days=1))
            elif s["status"] == SearchStatus.active and rng.random() < 0.05:
                start = self._slot(None, today - timedelta(days=self._int(1, 30)), forward=False, future=False)
                call(patient_id=p["id"], purpose=CallPurpose.patient, start=start, state=self._pick((CallState.done, CallState.done, CallState.failed)), outcome="Rückfrage zur Verfügbarkeit")
            elif s["status"] == SearchStatus.cancelled and rng.random() < 0.03:
                start = _at(s["ended_on"] + timedelta(days=1), 10 * 60)
                if start > self.now:
                    start = self.now + timedelta(days=1)
                call(patient_id=p["id"], purpose=CallPurpose.patient, start=start, state=CallState.cancelled, created_at=_at(s["ended_on"], 9 * 60))

        self.data.rows["phone_calls"] = calls
        self.data.rows["outbox_emails"] = emails
        self.last_phone = last_phone

    # ----------------------------------------------------------------- finishing touches

    def therapist_contacts(self) -> None:
        rng = self.rng
        today = self.today
        therapists = self.data.rows["therapists"]
        last_inquiry: dict[int, date] = {}
        for inq in self.inq_rows:
            when = inq["answered_at"] or inq["expired_at"] or inq["sent_at"]
            if when is not None:
                d = when.astimezone(BERLIN).date()
                if d > last_inquiry.get(inq["therapist_id"], date.min):
                    last_inquiry[inq["therapist_id"]] = d
        for t in therapists:
            tid = t["id"]
            if tid in self.last_answered:
                t["next_contact_at"] = date.fromordinal(self.last_answered[tid]) + timedelta(days=COOLING_DAYS)
            elif t["status"] == TherapistStatus.active and tid not in self.open_therapists and rng.random() < 0.05:
                t["next_contact_at"] = today + timedelta(days=self._int(1, COOLING_DAYS))
            if tid in self.last_email_sent:
                t["last_contact_email_on"] = date.fromordinal(self.last_email_sent[tid])
            if tid in self.last_phone:
                t["last_contact_phone_on"] = self.last_phone[tid]
            if t["status_changed_on"] is not None and tid in last_inquiry:
                t["status_changed_on"] = min(today, max(t["status_changed_on"], last_inquiry[tid] + timedelta(days=1)))
                if t["delisted_on"] is not None:
                    t["delisted_on"] = t["status_changed_on"]
            touched = max(
                (d for d in (t["last_contact_email_on"], t["last_contact_phone_on"], t["status_changed_on"]) if d),
                default=None,
            )
            if touched is not None:
                t["updated_at"] = min(self.now, max(t["created_at"], _at(touched, 17 * 60)))

    def exclusions(self) -> None:
        rng = self.rng
        today = self.today
        searches = self.data.rows["searches"]
        patients = self.data.rows["patients"]
        asked: dict[int, set[int]] = defaultdict(set)
        for inq in self.inq_rows:
            for m in self.members_by_inquiry[inq["id"]]:
                asked[m["search_id"]].add(inq["therapist_id"])
        search_ex: list[dict[str, Any]] = []
        patient_ex: list[dict[str, Any]] = []
        patient_seen: set[tuple[int, int]] = set()
        for s in searches:
            if s["status"] != SearchStatus.active or rng.random() > 0.06:
                continue
            p = patients[s["patient_id"] - 1]
            region = self.region_therapists.get(p["plz"][:REGION_DIGITS]) or []
            choices = [t for t in region if t not in asked[s["id"]]]
            if not choices:
                continue
            tid = choices[int(rng.random() * len(choices))]
            excluded_on = s["started_on"] + timedelta(days=self._int(0, (today - s["started_on"]).days))
            search_ex.append(
                {
                    "search_id": s["id"],
                    "therapist_id": tid,
                    "reason": self._pick(("War früher schon dort in Behandlung", "Kennt die Person privat", "Praxis ist schlecht erreichbar")),
                    "excluded_on": excluded_on,
                    "created_by": self.coordinator_id,
                }
            )
            if rng.random() < 0.3 and (p["id"], tid) not in patient_seen:
                patient_seen.add((p["id"], tid))
                patient_ex.append(
                    {
                        "patient_id": p["id"],
                        "therapist_id": tid,
                        "reason": "Möchte grundsätzlich nicht dorthin vermittelt werden",
                        "created_at": self._day_time(excluded_on),
                        "created_by": self.coordinator_id,
                    }
                )
        self.data.rows["search_exclusions"] = search_ex
        self.data.rows["patient_exclusions"] = patient_ex

    def audit_entries(self) -> None:
        today = self.today
        actor = "koordination"
        entries: list[dict[str, Any]] = []

        def add(at: datetime, action: str, entity: str, entity_id: int, changes: Optional[dict]) -> None:
            entries.append(
                {
                    "at": at,
                    "user_id": self.coordinator_id,
                    "actor_name": actor,
                    "action": action,
                    "entity": entity,
                    "entity_id": entity_id,
                    "changes": changes,
                }
            )

        for t in self.data.rows["therapists"]:
            if t["status"] == TherapistStatus.blocked:
                add(_at(t["status_changed_on"], 10 * 60), "therapist.block", "therapist", t["id"], {"status": ["active", "blocked"], "reason": t["status_reason"]})
        for s in self.data.rows["searches"]:
            if (today - s["started_on"]).days <= 30:
                add(s["created_at"], "search.start", "search", s["id"], {"patient_id": s["patient_id"]})
        for inq in self.inq_rows:
            if inq["answered_at"] is not None and (self.now - inq["answered_at"]).days <= 30:
                add(inq["answered_at"], "inquiry.answer", "inquiry", inq["id"], {"response_type": str(inq["response_type"])})
        entries.sort(key=lambda e: (e["at"], e["entity"], e["entity_id"]))
        self.data.rows["audit_entries"] = entries

    def run(self) -> DemoData:
        self.therapists()
        self.patients_and_searches()
        self.inquiries()
        self.calls_and_emails()
        self.therapist_contacts()
        self.exclusions()
        self.audit_entries()
        return self.data


def generate(
    plz_rows: Sequence[PlzRow],
    scale: Scale,
    *,
    seed: int = DEFAULT_SEED,
    today: date,
    coordinator_id: Optional[int] = None,
) -> DemoData:
    """All demo rows as plain dicts (no database access); deterministic in its arguments."""
    return _Generator(plz_rows, scale, seed=seed, today=today, coordinator_id=coordinator_id).run()


# --------------------------------------------------------------------------- database


@dataclass
class LoadResult:
    loaded: bool  # False: demo data was already there
    counts: dict[str, int]
    seconds: dict[str, float]
    plz_source: str
    users_created: list[str]
    message: str = ""


def find_marker(session: Session) -> Optional[AuditEntry]:
    return session.scalar(
        select(AuditEntry).where(AuditEntry.action == MARKER_ACTION).order_by(AuditEntry.id).limit(1)
    )


def ensure_demo_users(session: Session, *, now: datetime) -> tuple[dict[str, int], list[str]]:
    """Create the DEMO_LOGINS accounts that are missing; returns ({username: id}, created)."""
    from core.platform.users import create_user

    ids: dict[str, int] = {}
    created: list[str] = []
    for login in DEMO_LOGINS:
        uid = session.scalar(select(User.id).where(User.username == login.username))
        if uid is None:
            user = create_user(
                session, SYSTEM, username=login.username, display_name=login.display_name,
                role=login.role, password=login.password, now=now,
            )
            uid = user.id
            created.append(login.username)
        ids[login.username] = uid
    return ids, created


def ensure_plz_table(session: Session, geonames_path: Optional[Path]) -> str:
    """Fill plz_centroids when it is empty; returns a German description of the source."""
    count = session.scalar(select(func.count()).select_from(PlzCentroid)) or 0
    if count:
        return f"vorhandene PLZ-Tabelle ({count} PLZ)"
    if geonames_path is not None and Path(geonames_path).is_file():
        from core.geo.plz import load_plz_centroids

        summary = load_plz_centroids(session, geonames_path)
        return f"GeoNames-Datei {geonames_path} ({summary.plz_count} PLZ)"
    if geo_plz.SHIPPED_PLZ_TABLE.is_file():
        summary = geo_plz.load_shipped_table(session)
        return f"mitgelieferte PLZ-Tabelle ({summary.plz_count} PLZ, GeoNames, CC BY 4.0)"
    session.execute(
        PlzCentroid.__table__.insert(),
        [{"plz": c.plz, "city": c.city, "state_code": c.state_code, "lat": c.lat, "lon": c.lon} for c in DEMO_CITIES],
    )
    return f"eingebaute Städteliste ({len(DEMO_CITIES)} PLZ)"


def _copy_escape(text_value: str) -> str:
    if "\\" in text_value or "\t" in text_value or "\n" in text_value or "\r" in text_value:
        return text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text_value


def _copy_converter(column) -> Callable[[Any], str]:
    """A function turning one value of `column` into PostgreSQL's COPY text format."""
    python_type: Any
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    if isinstance(column.type, (sa.JSON,)) or python_type in (list, dict):
        return lambda v: "\\N" if v is None else _copy_escape(json.dumps(v, ensure_ascii=False))
    if python_type is bool:
        return lambda v: "\\N" if v is None else ("t" if v else "f")
    if python_type in (int, float):
        return lambda v: "\\N" if v is None else repr(v)
    if python_type in (date, datetime) or isinstance(column.type, UTCDateTime):
        return lambda v: "\\N" if v is None else v.isoformat()
    return lambda v: "\\N" if v is None else _copy_escape(str(v))


def _format_copy_chunk(rows: Sequence[dict[str, Any]], converters: list[tuple[str, Callable[[Any], str]]]) -> io.StringIO:
    buf = io.StringIO()
    write = buf.write
    for row in rows:
        write("\t".join([conv(row[c]) for c, conv in converters]))
        write("\n")
    buf.seek(0)
    return buf


def bulk_insert(session: Session, tables: Sequence[tuple[Any, list[dict[str, Any]]]], chunk: int = 20_000) -> None:
    """Insert plain rows into tables, in the given (foreign-key) order, in the session's transaction.

    PostgreSQL: COPY (about ten times faster than multi-row INSERTs); the next chunk is
    formatted in a worker thread while the server digests the current one. Elsewhere:
    Core executemany. All rows of a table have the same keys."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for model, rows in tables:
            for start in range(0, len(rows), chunk):
                session.execute(model.__table__.insert(), rows[start : start + chunk])
        return
    jobs = []
    for model, rows in tables:
        if not rows:
            continue
        table = model.__table__
        columns = list(rows[0])
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise ValueError(f"unknown columns for {table.name}: {sorted(unknown)}")
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        converters = [(c, _copy_converter(table.c[c])) for c in columns]
        jobs += [(sql, rows[start : start + chunk], converters) for start in range(0, len(rows), chunk)]
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Optional[tuple[str, Future]] = None
            for sql, rows, converters in jobs:
                future = pool.submit(_format_copy_chunk, rows, converters)
                if pending is not None:
                    cursor.copy_expert(pending[0], pending[1].result())
                pending = (sql, future)
            if pending is not None:
                cursor.copy_expert(pending[0], pending[1].result())
    finally:
        cursor.close()


def load_demo_data(
    session: Session,
    *,
    scale: Scale,
    today: date,
    seed: int = DEFAULT_SEED,
    geonames_path: Optional[Path] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> LoadResult:
    """Load demo data in the caller's transaction (flushes, does not commit).

    Returns loaded=False when the marker shows demo data is already there. Raises
    DemoDataError when the database holds other data (patients, therapists, searches)."""
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    marker = find_marker(session)
    if marker is not None:
        info = marker.changes or {}
        try:
            stichtag = date.fromisoformat(info["today"]).strftime("%d.%m.%Y")
        except (KeyError, TypeError, ValueError):
            stichtag = "?"
        return LoadResult(
            False, {}, {}, "", [],
            message=(
                f"Demodaten sind bereits geladen (Größe {info.get('scale', '?')}, Startwert {info.get('seed', '?')}, "
                f"Stichtag {stichtag}); nichts geändert."
            ),
        )
    existing = {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in (("therapists", Therapist), ("patients", Patient), ("searches", Search), ("inquiries", Inquiry))
    }
    if any(existing.values()):
        raise DemoDataError(
            "Die Datenbank enthält bereits Daten ("
            + ", ".join(f"{v} {TABLE_LABELS[k]}" for k, v in existing.items() if v)
            + "); Demodaten werden nur in eine leere Datenbank geladen."
        )
    now = _at(today, 8 * 60)
    plz_source = ensure_plz_table(session, geonames_path)
    timings["plz_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    user_ids, created = ensure_demo_users(session, now=now)
    timings["users_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    plz_rows = [
        PlzRow(*r)
        for r in session.execute(
            select(PlzCentroid.plz, PlzCentroid.city, PlzCentroid.state_code, PlzCentroid.lat, PlzCentroid.lon).order_by(
                PlzCentroid.plz
            )
        )
    ]
    if scale.name == DEMO.name and all(c.plz in {r.plz for r in plz_rows} for c in DEMO_CITIES):
        # The table knows every German PLZ; the small demo lives in its ~90 cities, so that
        # therapists and patients are close enough to match.
        plz_rows = [r for r in plz_rows if r.plz in WEIGHT_BY_PLZ]
    data = generate(
        plz_rows, scale, seed=seed, today=today,
        coordinator_id=user_ids.get("koordination"),
    )
    timings["generate_s"] = time.perf_counter() - t2
    say(f"Daten erzeugt in {timings['generate_s']:.1f} s, werden geschrieben …")

    t3 = time.perf_counter()
    bulk_insert(session, [(model, data.rows.get(name, [])) for name, model in TABLE_ORDER])
    counts = data.counts()
    audit.record(
        session, SYSTEM, MARKER_ACTION, MARKER_ENTITY, None,
        {"scale": scale.name, "seed": seed, "today": today.isoformat(), "counts": counts},
        now=now,
    )
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        for table in EXPLICIT_ID_TABLES:
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))")
            )
    timings["insert_s"] = time.perf_counter() - t3
    timings["total_s"] = time.perf_counter() - t0
    counts = {"plz_centroids": session.scalar(select(func.count()).select_from(PlzCentroid)) or 0, **counts, "audit_entries": counts["audit_entries"] + 1}
    counts["users"] = len(user_ids)
    return LoadResult(True, counts, timings, plz_source, created)


# --------------------------------------------------------------------------- command line


class _GermanParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        print(f"Fehler: ungültige Argumente ({message}). Aufruf: python -m demo.data --scale demo|germany|<Faktor>", file=sys.stderr)
        raise SystemExit(2)


def _parse_today(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"Datum {value!r} nicht im Format JJJJ-MM-TT") from None


def _parse_scale_arg(value: str) -> Scale:
    try:
        return parse_scale(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _GermanParser(prog="python -m demo.data", description="Demodaten laden (erfundene Daten)")
    parser.add_argument("--scale", type=_parse_scale_arg, default=DEMO, help="demo, germany oder ein Faktor (z. B. 0.1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Startwert des Zufallsgenerators")
    parser.add_argument("--today", type=_parse_today, default=None, help="Stichtag JJJJ-MM-TT (Standard: heute, Berlin)")
    parser.add_argument("--geonames", type=Path, default=None, help="GeoNames-Datei DE.txt (Standard: GEONAMES_PATH)")
    args = parser.parse_args(argv)
    bootstrap()

    from core.platform.config import load_or_exit
    from core.platform.db import get_engine, unit_of_work

    settings = load_or_exit()
    if args.geonames is not None and not args.geonames.is_file():
        print(f"Fehler: GeoNames-Datei nicht gefunden: {args.geonames}", file=sys.stderr)
        return 2
    geonames = args.geonames or settings.path(settings.GEONAMES_PATH)
    today = args.today or datetime.now(BERLIN).date()
    started = time.perf_counter()
    try:
        with unit_of_work(get_engine(settings.DATABASE_URL)) as session:
            result = load_demo_data(
                session, scale=args.scale, today=today, seed=args.seed, geonames_path=geonames,
                progress=lambda msg: print(msg, flush=True),
            )
    except DemoDataError as exc:
        print(f"Fehler: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one readable line instead of a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "no such table" in first or "does not exist" in first:
            print("Fehler: Die Datenbank ist nicht migriert (zuerst `alembic upgrade head`).", file=sys.stderr)
        else:
            print(f"Fehler beim Laden der Demodaten: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    if not result.loaded:
        print(result.message)
        _print_logins()
        return 0
    elapsed = time.perf_counter() - started
    print(f"Demodaten geladen (Größe {args.scale.name}, Startwert {args.seed}, Stichtag {today:%d.%m.%Y}) in {elapsed:.1f} s")
    print(f"PLZ-Quelle: {result.plz_source}")
    width = max(len(v) for v in TABLE_LABELS.values())
    for name, n in result.counts.items():
        print(f"  {TABLE_LABELS.get(name, name):<{width}}  {n:>9,}".replace(",", "."))
    _print_logins()
    return 0


def _print_logins() -> None:
    print("Anmeldung (Demo-Konten):")
    print(format_logins())


if __name__ == "__main__":
    raise SystemExit(main())
