"""Reading therapist data from the KBV doctor search (arztsuche.116117.de) and from the
predecessor's per-PLZ snapshot files. Pure: plain values in, `TherapistRecord`s out.

Three inputs are accepted (docs/architecture.md, "Imports"):

- the **current** 116117 response (observed since about December 2025): ``arztPraxisDatas[]``
  with ``titel``/``vorname``/``name``, ``psy`` as ``{heading, values}`` objects and hours in
  ``tsz[].typTsz[].sprechzeiten[].z`` with two-digit type codes (``"07"`` = telephone) and
  ISO dates;
- the **legacy** 116117 response (2024 to late 2025): the full display name in ``name``,
  ``psy`` as plain strings, hours in ``tsz[].tszDesTyps[].sprechzeiten[].zeit`` with German
  type labels, ``d`` as ``DD.MM.`` (no year) and a weekday abbreviation ``t``;
- the predecessor's **snapshot** file: ``{metadata, therapists[]}`` with ``basic_info``,
  ``location``, ``contact``, ``languages``, ``therapy_methods`` and ``telephone_hours``
  (weekday keys → ``"H:MM-HH:MM"`` lists).

The generation is detected per entry (a file saved by a browser may mix nothing, but the
parser does not rely on that). Phone hours (type 07 / "Telefonische Erreichbarkeit") become
a weekly pattern in the canonical text of `core.timewindows`: every dated range is put on
its weekday, several dates of one weekday are merged, overlapping or touching ranges are
merged. Other hour types are kept as raw data. Unknown keys, hour types and odd values are
tolerated and reported in the entry's `warnings`; only a file whose top level is not one
of the three shapes raises `ImportFormatError` (with a German message).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, time
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Optional

from core.platform import timewindows

# --------------------------------------------------------------------------- constants

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


# --------------------------------------------------------------------------- public entry points


def parse_response(data: Any, *, reference_date: Optional[date] = None) -> list[TherapistRecord]:
    """The contract (DESIGN §14): the records of one 116117 response (either generation) or
    snapshot file. Raises ImportFormatError for a wrong top-level shape."""
    return parse_document(data, reference_date=reference_date).records


def parse_document(
    data: Any,
    *,
    reference_date: Optional[date] = None,
    progress: Optional[ProgressCallback] = None,
    progress_every: int = 500,
    reuse: Optional[Callable[[str], bool]] = None,
) -> ParseResult:
    """Parse a decoded JSON document. `reference_date` (the day the response was saved)
    lets legacy ``DD.MM.`` dates get their year; without it the weekday abbreviation is used.
    `progress(done, total)` is called every `progress_every` entries and at the end.
    `reuse(digest)` true means an entry with that digest (`entry_digest`) was applied before
    and is not read again (its digest goes to `reused`)."""
    if not isinstance(data, dict):
        raise ImportFormatError(
            f"Die Datei enthält {_kind_de(data)} statt eines JSON-Objekts. Erwartet wird eine gespeicherte "
            "Antwort der Arztsuche 116117 (mit dem Feld „arztPraxisDatas“) oder eine Stichtagsdatei "
            "(mit dem Feld „therapists“).",
            code="wrong_shape",
        )
    if "arztPraxisDatas" in data:
        return _parse_arztsuche(data, reference_date, progress, progress_every, reuse)
    if "therapists" in data:
        return _parse_snapshot(data, progress, progress_every, reuse)
    keys = ", ".join(f"„{k}“" for k in list(data)[:8]) or "keine"
    raise ImportFormatError(
        "Die Datei ist keine Antwort der Arztsuche 116117: das Feld „arztPraxisDatas“ fehlt "
        f"(gefundene Felder: {keys}). Speichern Sie in den Entwicklerwerkzeugen des Browsers die "
        "Antwort der Anfrage „api/data“.",
        code="wrong_shape",
    )


def load_json(raw: bytes | str) -> Any:
    """Decode a file's bytes as JSON; ImportFormatError with a German reason otherwise
    (empty, not UTF-8, invalid JSON, truncated)."""
    if isinstance(raw, bytes):
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(
                f"Die Datei ist nicht UTF-8-kodiert (ungültiges Byte an Stelle {exc.start + 1}). "
                "Bitte die Antwort direkt aus dem Browser speichern, ohne sie in einem anderen Programm zu öffnen.",
                code="encoding",
            ) from None
    else:
        text = raw.lstrip("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise ImportFormatError("Die Datei ist leer.", code="empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string"):
            raise ImportFormatError(
                f"Die Datei endet mitten im Inhalt (nach {_thousands(len(stripped))} Zeichen, Zeile {exc.lineno}) – "
                "sie wurde vermutlich nicht vollständig gespeichert oder übertragen.",
                code="truncated",
            ) from None
        raise ImportFormatError(
            f"Die Datei ist kein gültiges JSON: {_json_msg_de(exc.msg)} in Zeile {exc.lineno}, Spalte {exc.colno}.",
            code="invalid_json",
        ) from None


def parse_bytes(
    raw: bytes | str,
    *,
    reference_date: Optional[date] = None,
    progress: Optional[ProgressCallback] = None,
    reuse: Optional[Callable[[str], bool]] = None,
) -> ParseResult:
    """`load_json` then `parse_document`."""
    return parse_document(load_json(raw), reference_date=reference_date, progress=progress, reuse=reuse)


VOLATILE_ENTRY_KEYS = frozenset({"id", "distance", "geoeffnet", "nteStart", "nteEnde", "status", "last_modified"})


def entry_digest(entry: Mapping[str, Any]) -> str:
    """Digest of a source entry without what changes from search to search (rank, distance,
    open-now badge, next window; a snapshot's status flags): the same entry saved again,
    or found by two overlapping searches, has the same digest."""
    stable = {k: v for k, v in entry.items() if k not in VOLATILE_ENTRY_KEYS}
    raw = json.dumps(stable, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- 116117 responses


def _parse_arztsuche(
    data: dict, reference_date: Optional[date], progress: Optional[ProgressCallback], every: int,
    reuse: Optional[Callable[[str], bool]] = None,
) -> ParseResult:
    entries = data.get("arztPraxisDatas")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ImportFormatError(
            f"Das Feld „arztPraxisDatas“ enthält {_kind_de(entries)} statt einer Liste von Einträgen.",
            code="wrong_shape",
        )
    result = ParseResult(format=FORMAT_ARZTSUCHE, records=[], entries_total=len(entries))
    unknown = sorted(k for k in data if k not in TOP_KEYS and k != "therapists")
    if unknown:
        result.warnings.append(f"Unbekannte Felder auf oberster Ebene ignoriert: {', '.join(unknown)}.")
    more = data.get("moreResults")
    if isinstance(more, bool):
        result.more_results = more
        if more:
            result.warnings.append(
                "Die Arztsuche hat die Trefferliste gekürzt („moreResults“): nicht alle Praxen des Gebiets "
                "sind enthalten, daher werden aus dieser Datei keine Austragungen abgeleitet."
            )
    elif more is not None:
        result.warnings.append(f"„moreResults“ hat den unerwarteten Wert {_short(more)}; ignoriert.")
    total = len(entries)
    for i, entry in enumerate(entries):
        position = i + 1
        if not isinstance(entry, dict):
            result.skipped.append(SkippedEntry(position, f"Eintrag {position} ist {_kind_de(entry, nominative=True)} statt eines Objekts."))
        else:
            digest = entry_digest(entry)
            if reuse is not None and reuse(digest):
                result.reused.append(digest)
            else:
                record = _parse_entry(entry, position, reference_date)
                if isinstance(record, SkippedEntry):
                    result.skipped.append(record)
                else:
                    record.entry_hash = digest
                    result.records.append(record)
        if progress is not None and position % every == 0:
            progress(position, total)
    if progress is not None:
        progress(total, total)
    return result


def _entry_generation(entry: Mapping[str, Any]) -> str:
    tsz = entry.get("tsz")
    if isinstance(tsz, list):
        for day in tsz:
            if isinstance(day, dict):
                if "typTsz" in day:
                    return GENERATION_CURRENT
                if "tszDesTyps" in day or "t" in day:
                    return GENERATION_LEGACY
                d = day.get("d")
                if isinstance(d, str):
                    if _ISO_DATE_RE.match(d):
                        return GENERATION_CURRENT
                    if _LEGACY_DATE_RE.match(d.strip()):
                        return GENERATION_LEGACY
    psy = entry.get("psy")
    if isinstance(psy, list) and psy:
        if any(isinstance(p, dict) for p in psy):
            return GENERATION_CURRENT
        if all(isinstance(p, str) for p in psy):
            return GENERATION_LEGACY
    if "vorname" in entry or "titel" in entry:
        return GENERATION_CURRENT
    return GENERATION_LEGACY


def _parse_entry(entry: Mapping[str, Any], position: int, reference_date: Optional[date]) -> TherapistRecord | SkippedEntry:
    warnings: list[str] = []
    generation = _entry_generation(entry)

    if not entry.keys() <= ENTRY_KEYS:
        warnings.append(f"Unbekannte Felder ignoriert: {', '.join(sorted(entry.keys() - ENTRY_KEYS))}.")

    # ---- names
    title = _text(entry.get("titel"), "titel", warnings)
    first = _text(entry.get("vorname"), "vorname", warnings)
    name = _text(entry.get("name"), "name", warnings)
    if first is None and name is not None:
        # Legacy entries (and odd current ones) carry the whole display name in `name`.
        t2, first2, last = split_display_name(name)
        title = title or t2
        first = first2 or None
    else:
        last = _clean_name(name) if name else None
        first = _clean_name(first) if first else None
    if not last:
        return SkippedEntry(position, f"Eintrag {position}: Name fehlt – übersprungen.")
    _check_placeholder_name(last, first, warnings)

    gender = _gender(entry.get("geschlecht"), warnings)
    salutation = _salutation(entry.get("anrede"), warnings)
    if gender == "unspecified":
        gender = {"herr": "male", "frau": "female"}.get(salutation, "unspecified")
    if salutation == "none":
        salutation = {"male": "herr", "female": "frau"}.get(gender, "none")

    # ---- address and contact
    street_name = _text(entry.get("strasse"), "strasse", warnings)
    house_number = _text(entry.get("hausnummer"), "hausnummer", warnings, allow_number=True)
    street = join_street(street_name, house_number)
    plz = _plz(entry.get("plz"), warnings)
    city = _text(entry.get("ort"), "ort", warnings)
    lat, lon = _coordinates(entry.get("lat"), entry.get("lon"), warnings)
    phone = _text(entry.get("tel"), "tel", warnings)
    mobile = _text(entry.get("handy"), "handy", warnings)
    fax = _text(entry.get("fax"), "fax", warnings)
    email = _email(entry.get("email"), warnings)
    website = _text(entry.get("web"), "web", warnings)

    # ---- categories, specialties, procedures
    categories = _key_values(entry.get("ag"), "ag", warnings)
    specialties = _string_list(entry.get("fg"), "fg", warnings)
    procedures, proc_texts = _procedures(entry.get("psy"), warnings)
    languages = _string_list(entry.get("fs"), "fs", warnings)
    accessibility = _value_list(entry.get("bf"), "bf", warnings)

    record = TherapistRecord(
        last_name=last,
        first_name=first or "",
        title=title,
        salutation=salutation,
        gender=gender,
        street=street,
        street_name=street_name,
        house_number=house_number,
        plz=plz,
        city=city,
        lat=lat,
        lon=lon,
        phone=phone or mobile,
        mobile=mobile,
        fax=fax,
        email=email,
        website=website,
        languages=_dedupe(languages),
        procedures=procedures,
        specialties=specialties,
        categories=categories,
        accessibility=accessibility,
        kv=_text(entry.get("kv"), "kv", warnings),
        is_person=entry.get("arzt") is not False,
        rank=_text(entry.get("id"), "id", [], allow_number=True),
        distance_m=_number(entry.get("distance"), "distance", warnings),
        generation=generation,
        index=position,
        warnings=warnings,
    )
    _apply_procedures(record, proc_texts, specialties, warnings)

    # ---- hours
    no_hours = entry.get("keineSprechzeiten")
    if no_hours is not None and not isinstance(no_hours, bool):
        warnings.append(f"„keineSprechzeiten“ hat den unerwarteten Wert {_short(no_hours)}; als „nein“ gewertet.")
        no_hours = False
    record.no_hours = bool(no_hours)
    dated = _hours_from_tsz(entry.get("tsz"), reference_date, record, warnings)
    _set_phone_hours(record, dated, warnings)
    if record.no_hours and record.phone_windows:
        warnings.append("„keineSprechzeiten“ ist gesetzt, trotzdem sind Zeiten angegeben; die Zeiten wurden übernommen.")
    nte_start, nte_end = entry.get("nteStart"), entry.get("nteEnde")
    if isinstance(nte_start, str) and nte_start.strip():
        record.next_window = (nte_start.strip(), nte_end.strip() if isinstance(nte_end, str) else "")
    return record


def _hours_from_tsz(
    tsz: Any, reference_date: Optional[date], record: TherapistRecord, warnings: list[str]
) -> list[tuple[int, str, int, int]]:
    """(weekday, date text, start minute, end minute) of the phone ranges; other types go to
    `record.other_hours`."""
    phone: list[tuple[int, str, int, int]] = []
    if tsz is None:
        return phone
    if not isinstance(tsz, list):
        warnings.append(f"„tsz“ ist {_kind_de(tsz, nominative=True)} statt einer Liste; Zeiten ignoriert.")
        return phone
    unknown_types: set[str] = set()
    for n, day in enumerate(tsz, start=1):
        if not isinstance(day, dict):
            warnings.append(f"Tag {n} in „tsz“ ist {_kind_de(day, nominative=True)}; ignoriert.")
            continue
        extra = sorted(day.keys() - DAY_KEYS_ALL) if not day.keys() <= DAY_KEYS_ALL else ()
        if extra:
            warnings.append(f"Unbekannte Felder an Tag {n} ignoriert: {', '.join(extra)}.")
        types = day.get("typTsz") if "typTsz" in day else day.get("tszDesTyps")
        if types is None or types == []:
            continue
        if not isinstance(types, list):
            warnings.append(f"Zeitangaben an Tag {n} sind {_kind_de(types, nominative=True)} statt einer Liste; ignoriert.")
            continue
        weekday, date_text = _day_of(day, n, reference_date, warnings)
        for block in types:
            if not isinstance(block, dict):
                warnings.append(f"Zeitart an Tag {n} ist {_kind_de(block, nominative=True)}; ignoriert.")
                continue
            code, label, known = _hour_type(block.get("typ"))
            if not known and code not in unknown_types:
                unknown_types.add(code)
                warnings.append(f"Unbekannte Zeitart „{code}“ – als Rohdaten behalten.")
            ranges, problems = _ranges_of(block.get("sprechzeiten"))
            for p in problems:
                warnings.append(f"{date_text or f'Tag {n}'}: {p}")
            if code == PHONE_TYPE:
                if weekday is None:
                    if ranges:
                        warnings.append(f"Telefonzeiten an Tag {n} ohne erkennbaren Wochentag ignoriert.")
                    continue
                phone.extend((weekday, date_text, s, e) for s, e in ranges)
            else:
                record.other_hours.append(
                    {
                        "type": code,
                        "label": label,
                        "date": date_text,
                        "weekday": timewindows.DAY_KEYS[weekday] if weekday is not None else None,
                        "ranges": _fmt_ranges(tuple(ranges)),
                    }
                )
    return phone


def _day_of(day: Mapping[str, Any], n: int, reference_date: Optional[date], warnings: list[str]) -> tuple[Optional[int], str]:
    """Weekday index and a date text (ISO when the date is known) of one `tsz` day."""
    d = day.get("d")
    t = day.get("t")
    t_index = _weekday_word(t) if isinstance(t, str) else None
    if t is not None and t_index is None:
        warnings.append(f"Unbekannter Wochentag „{_short(t)}“ an Tag {n}.")
    if not isinstance(d, str) or not d.strip():
        if t_index is None:
            warnings.append(f"Tag {n} hat kein Datum.")
        return t_index, ""
    d = d.strip()
    if len(d) == 10 and t is None:
        try:
            return _iso_weekday(d)
        except ValueError:
            pass
    m = _ISO_DATE_RE.match(d)
    if m:
        try:
            when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            warnings.append(f"Ungültiges Datum „{d}“.")
            return t_index, d
        if t_index is not None and t_index != when.weekday():
            warnings.append(f"Datum {when.isoformat()} ist kein {timewindows.DAY_KEYS[t_index]}; Wochentag aus dem Datum.")
        return when.weekday(), when.isoformat()
    m = _LEGACY_DATE_RE.match(d)
    if m:
        dd, mm = int(m.group(1)), int(m.group(2))
        year = m.group(3)
        when: Optional[date] = None
        if year:
            y = int(year)
            y = y + 2000 if y < 100 else y
            when = _safe_date(y, mm, dd)
        elif reference_date is not None:
            when = _closest_date(dd, mm, reference_date)
        if when is None and t_index is None and (year or reference_date is not None):
            warnings.append(f"Ungültiges Datum „{d}“.")
        if when is not None:
            if t_index is not None and t_index != when.weekday():
                warnings.append(
                    f"Datum {when.strftime('%d.%m.%Y')} ist kein {timewindows.DAY_KEYS[t_index]}; Wochentag aus dem Datum."
                )
            return when.weekday(), when.isoformat()
        if t_index is None:
            warnings.append(f"Tag „{d}“ ohne Wochentag und ohne Jahr – Wochentag nicht bestimmbar.")
        return t_index, d
    warnings.append(f"Unbekanntes Datumsformat „{_short(d)}“ an Tag {n}.")
    return t_index, d


@lru_cache(maxsize=4096)
def _iso_weekday(d: str) -> tuple[int, str]:
    when = date.fromisoformat(d)
    return when.weekday(), when.isoformat()


def _safe_date(y: int, m: int, d: int) -> Optional[date]:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _closest_date(day: int, month: int, reference: date) -> Optional[date]:
    """The date with this day and month nearest to `reference` (a December fetch may
    contain January days)."""
    options = [c for y in (reference.year - 1, reference.year, reference.year + 1) if (c := _safe_date(y, month, day))]
    if not options:
        return None
    return min(options, key=lambda c: abs((c - reference).days))


def _hour_type(raw: Any) -> tuple[str, str, bool]:
    """(code, label, known). Codes are two digits; legacy labels map to codes."""
    if isinstance(raw, str):
        return _hour_type_text(raw)
    return _hour_type_any(raw)


@lru_cache(maxsize=256)
def _hour_type_text(raw: str) -> tuple[str, str, bool]:
    return _hour_type_any(raw)


def _hour_type_any(raw: Any) -> tuple[str, str, bool]:
    if isinstance(raw, bool) or raw is None:
        return (_short(raw), "unbekannt", False)
    if isinstance(raw, int):
        raw = f"{raw:02d}"
    if not isinstance(raw, str):
        return (_short(raw), "unbekannt", False)
    text = _WS_RE.sub(" ", raw).strip()
    if text.isdigit():
        code = text.zfill(2)
        return (code, HOUR_TYPES.get(code, "unbekannt"), code in HOUR_TYPES)
    code = LEGACY_HOUR_LABELS.get(text.lower())
    if code is not None:
        return (code, text, True)
    if "telefon" in text.lower():
        return (PHONE_TYPE, text, True)
    return (text, text, False)


def _ranges_of(items: Any) -> tuple[list[tuple[int, int]], list[str]] | tuple[tuple, tuple]:
    """Minute ranges from a `sprechzeiten` list (``{z}``/``{zeit}`` objects or strings)."""
    if type(items) is list:
        texts = []
        for item in items:
            if type(item) is dict and len(item) == 1:
                text = item.get("z") if "z" in item else item.get("zeit")
                if type(text) is str:
                    texts.append(text)
                    continue
            break
        else:
            # the usual shape: only texts; the same few texts repeat across thousands of entries
            return _ranges_of_texts(tuple(texts))
    return _ranges_of_slow(items)


@lru_cache(maxsize=8192)
def _ranges_of_texts(texts: tuple[str, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for text in texts:
        r, p = _parse_time_ranges_cached(text)
        ranges.extend(r)
        problems.extend(p)
    return tuple(ranges), tuple(problems)


def _ranges_of_slow(items: Any) -> tuple[list[tuple[int, int]], list[str]]:
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    if items is None:
        return ranges, problems
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        return ranges, [f"Zeitangaben sind {_kind_de(items, nominative=True)}; ignoriert."]
    for item in items:
        if isinstance(item, dict):
            text = item.get("z", item.get("zeit"))
            extra = sorted(k for k in item if k not in ("z", "zeit"))
            if extra:
                problems.append(f"unbekannte Felder in Zeitangabe ignoriert: {', '.join(extra)}.")
        else:
            text = item
        if not isinstance(text, str):
            problems.append(f"Zeitangabe {_short(text)} ist kein Text; ignoriert.")
            continue
        r, p = parse_time_ranges(text)
        ranges.extend(r)
        problems.extend(p)
    return ranges, problems


def parse_time_ranges(text: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Ranges in minutes since midnight from e.g. ``"9:10-10:00"``, ``"08:00 - 12:00"``,
    ``"8-12, 14:00 bis 16:00"``; problems in German for parts that are not ranges."""
    ranges, problems = _parse_time_ranges_cached(text)
    return list(ranges), list(problems)


@lru_cache(maxsize=8192)
def _parse_time_ranges_cached(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    # the same few range texts repeat across thousands of entries
    fast = _FAST_RANGE_RE.fullmatch(text)
    if fast:
        sh, sm, eh, em = (int(g) for g in fast.groups())
        start, end = sh * 60 + sm, eh * 60 + em
        if sh <= 23 and sm <= 59 and em <= 59 and eh <= 23 and start < end:
            return ((start, end),), ()
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for part in _RANGE_SPLIT_RE.split(text):
        part = part.strip()
        if not part:
            continue
        m = _RANGE_RE.match(part)
        if not m:
            problems.append(f"Zeitraum „{_short(part)}“ nicht erkannt; ignoriert.")
            continue
        sh, sm = int(m.group("sh")), int(m.group("sm") or 0)
        eh, em = int(m.group("eh")), int(m.group("em") or 0)
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em > 0):
            problems.append(f"Zeitraum „{part}“ enthält eine ungültige Uhrzeit; ignoriert.")
            continue
        start, end = sh * 60 + sm, eh * 60 + em
        if end == 0 and start > 0:
            end = MINUTES_PER_DAY  # "22:00-0:00" means until midnight
        if end <= start:
            problems.append(f"Zeitraum „{part}“: das Ende liegt nicht nach dem Beginn; ignoriert.")
            continue
        ranges.append((start, end))
    return tuple(ranges), tuple(problems)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of minute ranges; overlapping and touching ranges become one."""
    merged: list[list[int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def weekly_windows(dated: Iterable[tuple[int, int, int]]) -> list[timewindows.TimeWindow]:
    """(weekday, start minute, end minute) triples → merged weekly `TimeWindow`s."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for day, s, e in dated:
        by_day.setdefault(day, []).append((s, e))
    windows = []
    for day in sorted(by_day):
        for s, e in merge_ranges(by_day[day]):
            windows.append(timewindows.TimeWindow(day, _minute_time(s), _minute_time(e)))
    return windows


def _set_phone_hours(record: TherapistRecord, dated: list[tuple[int, str, int, int]], warnings: list[str]) -> None:
    if not dated:
        return
    if not END_OF_DAY_EXACT and any(e == MINUTES_PER_DAY for _, _, _, e in dated):
        warnings.append("Telefonzeit bis 24:00 als bis 23:59 übernommen.")
    record.phone_dates = sorted({(d, _fmt_minutes(s), _fmt_minutes(e)) for _, d, s, e in dated})
    windows, text = _weekly(tuple(sorted({(day, s, e) for day, _, s, e in dated})))
    record.phone_windows = list(windows)
    record.phone_hours = text


@lru_cache(maxsize=8192)
def _weekly(triples: tuple[tuple[int, int, int], ...]) -> tuple[tuple[timewindows.TimeWindow, ...], str]:
    """Merged windows and their canonical text (`timewindows.format`, the one formatter);
    weekly patterns repeat across entries, so this is cached."""
    windows = tuple(weekly_windows(triples))
    return windows, timewindows.format(windows)


@lru_cache(maxsize=2048)
def _minute_time(minutes: int) -> time:
    if minutes >= MINUTES_PER_DAY:
        return END_OF_DAY
    return time(minutes // 60, minutes % 60)


@lru_cache(maxsize=2048)
def _fmt_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=4096)
def _fmt_ranges_cached(ranges: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    return tuple(_fmt_minutes_range(s, e) for s, e in ranges)


def _fmt_ranges(ranges: tuple[tuple[int, int], ...]) -> list[str]:
    return list(_fmt_ranges_cached(ranges))


def _fmt_minutes_range(s: int, e: int) -> str:
    return f"{_fmt_minutes(s)}-{_fmt_minutes(e)}"


# --------------------------------------------------------------------------- procedures (psy) → methods


def _procedures(psy: Any, warnings: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Readable procedure texts, and (heading, values) pairs for classification."""
    readable: list[str] = []
    pairs: list[tuple[str, list[str]]] = []
    if psy is None:
        return readable, pairs
    if not isinstance(psy, list):
        warnings.append(f"„psy“ ist {_kind_de(psy, nominative=True)} statt einer Liste; Verfahren ignoriert.")
        return readable, pairs
    for item in psy:
        if isinstance(item, str):
            text = _WS_RE.sub(" ", item).strip()
            if text:
                readable.append(text)
                pairs.append((text, []))
        elif isinstance(item, dict):
            heading = item.get("heading")
            values = item.get("values")
            if not isinstance(heading, str) or not heading.strip():
                warnings.append(f"Verfahren ohne Überschrift ignoriert: {_short(item)}.")
                continue
            vals = [_WS_RE.sub(" ", v).strip() for v in values if isinstance(v, str) and v.strip()] if isinstance(values, list) else []
            if values is not None and not isinstance(values, list):
                warnings.append(f"Werte des Verfahrens „{heading.strip()}“ sind keine Liste; ignoriert.")
            heading = _WS_RE.sub(" ", heading).strip()
            readable.append(f"{heading} ({', '.join(vals)})" if vals else heading)
            pairs.append((heading, vals))
        else:
            warnings.append(f"Verfahren {_short(item)} ist weder Text noch Objekt; ignoriert.")
    return readable, pairs


def classify_procedure(text: str) -> set[str]:
    """Method codes named in one procedure text."""
    low = text.lower()
    return {code for word, code in METHOD_KEYWORDS if word in low}


def _age_mentions(text: str) -> tuple[bool, bool]:
    low = text.lower()
    adults = "erwachsen" in low
    children = "kinder" in low or "jugendlich" in low
    return adults, children


def _apply_procedures(
    record: TherapistRecord, pairs: list[tuple[str, list[str]]], specialties: list[str], warnings: list[str]
) -> None:
    """Methods, settings and age groups from the procedures, age fallback from the specialties."""
    methods: set[str] = set()
    settings: dict[str, set[str]] = {}
    any_individual = any_group = False
    psy_adults = psy_children = False
    for heading, values in pairs:
        codes = classify_procedure(heading)
        whole = " ".join([heading, *values])
        if not codes:
            warnings.append(f"Verfahren „{_short(heading)}“ nicht erkannt.")
        low = whole.lower()
        individual = "einzel" in low
        group = "gruppe" in low
        any_individual |= individual
        any_group |= group
        a, c = _age_mentions(whole)
        psy_adults |= a
        psy_children |= c
        methods |= codes
        for code in codes:
            s = settings.setdefault(code, set())
            if individual:
                s.add("Einzel")
            if group:
                s.add("Gruppe")
    record.methods = methods
    record.method_settings = {code: sorted(s) for code, s in sorted(settings.items())}
    if any_individual or any_group:
        record.setting_known = True
        record.individual = any_individual
        record.group = any_group
    if psy_adults or psy_children:
        record.age_group_known = True
        record.adults = psy_adults
        record.children = psy_children
        return
    spec = [s.lower() for s in specialties]
    kjp = any(KJP_SPECIALTY in s or ("kinder" in s and "jugend" in s) for s in spec)
    other = any(not (KJP_SPECIALTY in s or ("kinder" in s and "jugend" in s)) for s in spec)
    if spec:
        record.age_group_known = True
        record.children = kjp
        record.adults = other or not kjp
    else:
        record.adults, record.children = True, False


# --------------------------------------------------------------------------- snapshot files (predecessor)


def _parse_snapshot(
    data: dict, progress: Optional[ProgressCallback], every: int, reuse: Optional[Callable[[str], bool]] = None
) -> ParseResult:
    therapists = data.get("therapists")
    if not isinstance(therapists, list):
        raise ImportFormatError(
            f"Das Feld „therapists“ der Stichtagsdatei enthält {_kind_de(therapists)} statt einer Liste.",
            code="wrong_shape",
        )
    result = ParseResult(format=FORMAT_SNAPSHOT, records=[], entries_total=len(therapists))
    unknown = sorted(k for k in data if k not in SNAPSHOT_TOP_KEYS)
    if unknown:
        result.warnings.append(f"Unbekannte Felder auf oberster Ebene ignoriert: {', '.join(unknown)}.")
    meta = data.get("metadata")
    if isinstance(meta, dict):
        result.metadata = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool)) or v is None}
        area = meta.get("postcode_area")
        if isinstance(area, (str, int)) and _PLZ_RE.match(str(area).zfill(5) if isinstance(area, int) else area.strip()):
            result.area_plz = str(area).zfill(5) if isinstance(area, int) else area.strip()
    elif meta is not None:
        result.warnings.append(f"„metadata“ ist {_kind_de(meta, nominative=True)}; ignoriert.")
    total = len(therapists)
    for i, item in enumerate(therapists):
        position = i + 1
        if not isinstance(item, dict):
            result.skipped.append(SkippedEntry(position, f"Eintrag {position} ist {_kind_de(item, nominative=True)} statt eines Objekts."))
        else:
            digest = entry_digest(item)
            if reuse is not None and reuse(digest):
                result.reused.append(digest)
            else:
                record = _parse_snapshot_entry(item, position)
                if isinstance(record, SkippedEntry):
                    result.skipped.append(record)
                else:
                    record.entry_hash = digest
                    result.records.append(record)
        if progress is not None and position % every == 0:
            progress(position, total)
    if progress is not None:
        progress(total, total)
    return result


def _section(item: Mapping[str, Any], key: str, warnings: list[str]) -> Mapping[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        warnings.append(f"„{key}“ ist {_kind_de(value, nominative=True)} statt eines Objekts; ignoriert.")
        return {}
    extra = sorted(k for k in value if k not in SNAPSHOT_SECTIONS[key])
    if extra:
        warnings.append(f"Unbekannte Felder in „{key}“ ignoriert: {', '.join(extra)}.")
    return value


def _parse_snapshot_entry(item: Mapping[str, Any], position: int) -> TherapistRecord | SkippedEntry:
    warnings: list[str] = []
    unknown = sorted(k for k in item if k not in SNAPSHOT_KEYS)
    if unknown:
        warnings.append(f"Unbekannte Felder ignoriert: {', '.join(unknown)}.")
    status = item.get("status")
    if isinstance(status, str) and status.strip().lower() == "deleted":
        return SkippedEntry(position, f"Eintrag {position} ist in der Stichtagsdatei als gelöscht markiert – übersprungen.")
    basic = _section(item, "basic_info", warnings)
    location = _section(item, "location", warnings)
    contact = _section(item, "contact", warnings)

    title = _text(basic.get("title"), "title", warnings)
    first = _text(basic.get("first_name"), "first_name", warnings)
    last = _text(basic.get("last_name"), "last_name", warnings)
    if not last:
        full = _text(basic.get("full_name"), "full_name", warnings)
        if full:
            t2, first2, last = split_display_name(full)
            title = title or t2
            first = first or first2 or None
    else:
        last = _clean_name(last)
        first = _clean_name(first) if first else None
    if not last:
        return SkippedEntry(position, f"Eintrag {position}: Name fehlt – übersprungen.")
    _check_placeholder_name(last, first, warnings)
    salutation = _salutation(basic.get("salutation"), warnings)
    gender = {"herr": "male", "frau": "female"}.get(salutation, "unspecified")

    street_name = _text(location.get("street"), "street", warnings)
    house_number = _text(location.get("house_number"), "house_number", warnings, allow_number=True)
    classification = _text(basic.get("classification"), "classification", warnings)
    specialties = [classification.split(":", 1)[-1].strip()] if classification else []

    record = TherapistRecord(
        last_name=last,
        first_name=first or "",
        title=title,
        salutation=salutation,
        gender=gender,
        street=join_street(street_name, house_number),
        street_name=street_name,
        house_number=house_number,
        plz=_plz(location.get("postal_code"), warnings),
        city=_text(location.get("city"), "city", warnings),
        phone=_text(contact.get("phone"), "phone", warnings),
        fax=_text(contact.get("fax"), "fax", warnings),
        email=_email(contact.get("email"), warnings),
        languages=_dedupe(_string_list(item.get("languages"), "languages", warnings)),
        specialties=specialties,
        rank=_text(item.get("id"), "id", [], allow_number=True),
        generation=GENERATION_SNAPSHOT,
        index=position,
        warnings=warnings,
    )
    procedures, pairs = _procedures(item.get("therapy_methods"), warnings)
    record.procedures = procedures
    _apply_procedures(record, pairs, specialties, warnings)
    dated = _snapshot_hours(item.get("telephone_hours"), warnings)
    _set_phone_hours(record, [(d, "", s, e) for d, s, e in dated], warnings)
    return record


def _snapshot_hours(hours: Any, warnings: list[str]) -> list[tuple[int, int, int]]:
    """``{"Mo": ["8:00-9:00"], ...}`` (also full or English day names, a single string, or
    ``[{start, end}]``) → (weekday, start minute, end minute)."""
    out: list[tuple[int, int, int]] = []
    if hours is None or hours == {} or hours == []:
        return out
    if not isinstance(hours, dict):
        warnings.append(f"„telephone_hours“ ist {_kind_de(hours, nominative=True)} statt eines Objekts; ignoriert.")
        return out
    for key, value in hours.items():
        day = _weekday_word(key) if isinstance(key, str) else None
        if day is None:
            warnings.append(f"Unbekannter Wochentag „{_short(key)}“ in den Telefonzeiten; ignoriert.")
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and ("start" in item or "end" in item):
                text = f"{item.get('start')}-{item.get('end')}"
            elif isinstance(item, str):
                text = item
            elif item is None:
                continue
            else:
                warnings.append(f"Telefonzeit {_short(item)} am {timewindows.DAY_KEYS[day]} ist kein Text; ignoriert.")
                continue
            ranges, problems = parse_time_ranges(text)
            warnings.extend(f"{timewindows.DAY_KEYS[day]}: {p}" for p in problems)
            out.extend((day, s, e) for s, e in ranges)
    return out


# --------------------------------------------------------------------------- names


def _clean_name(text: str) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return _SPACED_HYPHEN_RE.sub("-", text)


def _is_title_token(token: str) -> bool:
    low = token.lower().rstrip(",")
    if "." in low:
        return True
    return low.replace("-", "") in _TITLE_WORDS


def split_display_name(full: str) -> tuple[Optional[str], str, str]:
    """``"Dipl.-Psych. Lena Probe"`` → (``"Dipl.-Psych."``, ``"Lena"``, ``"Probe"``).

    Leading title tokens (with a dot, or Dr/Prof/PD …) form the title; surname particles
    (von, van, de, zu …) stay with the surname; ``"Probe, Lena"`` is understood; a stray
    space around a hyphen (``"Meier -Lüdenscheid"``) is removed."""
    text = _clean_name(full)
    trailing_title: list[str] = []
    if "," in text:
        head, _, tail = text.partition(",")
        tail_tokens = tail.split()
        if tail_tokens and all(_is_title_token(t) for t in tail_tokens):
            trailing_title = tail_tokens
            text = head.strip()
        elif tail_tokens:
            # "Probe, Dr. Lena" or "Probe, Lena"
            text = f"{tail.strip()} {head.strip()}"
    tokens = text.split()
    titles: list[str] = []
    while len(tokens) > 1 and _is_title_token(tokens[0]):
        titles.append(tokens.pop(0))
    titles.extend(trailing_title)
    title = " ".join(titles) or None
    if not tokens:
        return title, "", ""
    if len(tokens) == 1:
        return title, "", tokens[0]
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1].lower() in _SURNAME_PARTICLES:
        start -= 1
    return title, " ".join(tokens[:start]), " ".join(tokens[start:])


def _check_placeholder_name(last: str, first: Optional[str], warnings: list[str]) -> None:
    for label, value in (("Nachname", last), ("Vorname", first)):
        if value and value.strip().lower() in _PLACEHOLDER_NAMES:
            warnings.append(f"{label} „{value}“ sieht wie ein Platzhalter aus – bitte prüfen.")


def join_street(street: Optional[str], number: Optional[str]) -> Optional[str]:
    """Street with house number, without doubling a number that is already there."""
    if not street:
        return number or None
    if not number:
        return street
    if street.replace(" ", "").lower().endswith(number.replace(" ", "").lower()):
        return street
    return f"{street} {number}"


# --------------------------------------------------------------------------- values


def _kind_de(value: Any, *, nominative: bool = False) -> str:
    """What a JSON value is, for messages: "enthält eine Liste" / "ist eine Liste"."""
    if value is None:
        return "leer (null)" if nominative else "nichts (null)"
    if isinstance(value, bool):
        kind = "Wahrheitswert"
    elif isinstance(value, (int, float)):
        return "eine Zahl"
    elif isinstance(value, str):
        kind = "Text"
    elif isinstance(value, list):
        return "eine Liste"
    elif isinstance(value, dict):
        return "ein Objekt"
    else:
        return "ein unbekannter Wert" if nominative else "einen unbekannten Wert"
    return f"ein {kind}" if nominative else f"einen {kind}"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _json_msg_de(msg: str) -> str:
    table = {
        "Expecting value": "Wert erwartet",
        "Expecting ',' delimiter": "Komma erwartet",
        "Expecting ':' delimiter": "Doppelpunkt erwartet",
        "Expecting property name enclosed in double quotes": "Feldname in doppelten Anführungszeichen erwartet",
        "Extra data": "zusätzliche Zeichen nach dem Ende des Inhalts",
        "Invalid control character at": "unzulässiges Steuerzeichen",
        "Invalid \\escape": "ungültige Escape-Sequenz",
        "Illegal trailing comma before end of object": "überzähliges Komma vor „}“",
        "Illegal trailing comma before end of array": "überzähliges Komma vor „]“",
    }
    for en, de in table.items():
        if msg.startswith(en):
            return de
    return "Syntaxfehler"


def _text(value: Any, name: str, warnings: list[str], *, allow_number: bool = False) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        text = _WS_RE.sub(" ", value).strip()
        return text or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not allow_number:
            warnings.append(f"„{name}“ ist eine Zahl statt Text; übernommen.")
        return str(value)
    warnings.append(f"„{name}“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
    return None


def _number(value: Any, name: str, warnings: list[str]) -> Optional[float]:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            pass
        else:
            warnings.append(f"„{name}“ ist Text statt Zahl; übernommen.")
            return number
    warnings.append(f"„{name}“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
    return None


def _coordinates(lat_raw: Any, lon_raw: Any, warnings: list[str]) -> tuple[Optional[float], Optional[float]]:
    lat = _number(lat_raw, "lat", warnings)
    lon = _number(lon_raw, "lon", warnings)
    if lat is None and lon is None:
        return None, None
    if lat is None or lon is None:
        warnings.append("Nur eine der beiden Koordinaten angegeben; die Adresse wird geokodiert.")
        return None, None
    if lat == 0 and lon == 0:
        warnings.append("Koordinaten 0/0 sind ein Platzhalter; die Adresse wird geokodiert.")
        return None, None
    if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
        warnings.append(f"Koordinaten {lat}/{lon} liegen außerhalb Deutschlands; die Adresse wird geokodiert.")
        return None, None
    return lat, lon


def _plz(value: Any, warnings: list[str]) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value).zfill(5)
        if _PLZ_RE.match(text):
            warnings.append(f"PLZ als Zahl angegeben; als „{text}“ übernommen.")
            return text
    elif isinstance(value, str):
        text = value.strip()
        if _PLZ_RE.match(text):
            return text
        if text.isdigit() and len(text) == 4:
            warnings.append(f"PLZ „{text}“ hat nur vier Stellen; als „0{text}“ übernommen.")
            return "0" + text
    warnings.append(f"PLZ {_short(value)} ist keine fünfstellige Postleitzahl; ignoriert.")
    return None


def _email(value: Any, warnings: list[str]) -> Optional[str]:
    text = _text(value, "email", warnings)
    if text is None:
        return None
    text = text.replace(" ", "")
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not _EMAIL_RE.match(text):
        warnings.append(f"E-Mail-Adresse „{_short(text)}“ ist ungültig; ignoriert.")
        return None
    return text


def _gender(value: Any, warnings: list[str]) -> str:
    if value is None:
        return "unspecified"
    if not isinstance(value, str):
        warnings.append(f"„geschlecht“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
        return "unspecified"
    low = value.strip().lower()
    if not low:
        return "unspecified"
    table = {
        "f": "female", "w": "female", "weiblich": "female", "female": "female", "frau": "female",
        "m": "male", "männlich": "male", "maennlich": "male", "male": "male", "mann": "male",
        "d": "diverse", "x": "diverse", "divers": "diverse", "diverse": "diverse",
        "u": "unspecified", "unbekannt": "unspecified", "keine angabe": "unspecified",
    }
    if low in table:
        return table[low]
    warnings.append(f"Unbekanntes Geschlecht „{_short(value)}“; als „keine Angabe“ übernommen.")
    return "unspecified"


def _salutation(value: Any, warnings: list[str]) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str):
        warnings.append(f"„anrede“ hat den unerwarteten Wert {_short(value)}; ignoriert.")
        return "none"
    words = value.strip().lower().split()
    if not words:
        return "none"
    first = words[0].rstrip(".")
    if first in ("frau", "fr"):
        return "frau"
    if first in ("herr", "hr", "herrn"):
        return "herr"
    warnings.append(f"Unbekannte Anrede „{_short(value)}“; ohne Anrede übernommen.")
    return "none"


def _string_list(value: Any, name: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        warnings.append(f"„{name}“ ist {_kind_de(value, nominative=True)} statt einer Liste; ignoriert.")
        return []
    out = []
    for item in value:
        if isinstance(item, str):
            text = _WS_RE.sub(" ", item).strip()
            if text:
                out.append(text)
        elif isinstance(item, dict) and isinstance(item.get("value"), str):
            out.append(item["value"].strip())
        else:
            warnings.append(f"Wert {_short(item)} in „{name}“ ist kein Text; ignoriert.")
    return out


def _value_list(value: Any, name: str, warnings: list[str]) -> list[str]:
    """``[{"value": "…"}]`` (extra keys allowed) or plain strings."""
    return _string_list(value, name, warnings)


def _key_values(value: Any, name: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"„{name}“ ist {_kind_de(value, nominative=True)} statt einer Liste; ignoriert.")
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            label = item.get("value") or item.get("key")
            if isinstance(label, (str, int)):
                out.append(str(label))
        elif isinstance(item, str):
            out.append(item)
    return out


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _weekday_word(token: Any) -> Optional[int]:
    if not isinstance(token, str):
        return None
    low = unicodedata.normalize("NFC", token).strip().rstrip(".").lower()
    if low in _WEEKDAY_WORDS:
        return _WEEKDAY_WORDS[low]
    return _WEEKDAY_WORDS.get(low[:2]) if len(low) == 3 else None
