"""Parser of 116117 responses (both generations) and the predecessor's per-PLZ snapshots: the entry points and the entries."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Callable, Mapping, Optional
from core.imports.hours import _hours_from_tsz, _set_phone_hours
from core.imports.procedures import _apply_procedures, _procedures
from core.imports.entries import collect_entries
from core.imports.records import ENTRY_KEYS, FORMAT_ARZTSUCHE, GENERATION_CURRENT, GENERATION_LEGACY, ImportFormatError, ParseResult, ProgressCallback, SkippedEntry, TOP_KEYS, TherapistRecord, _ISO_DATE_RE, _LEGACY_DATE_RE
from core.imports.snapshot import _parse_snapshot
from core.imports.values import _check_placeholder_name, _clean_name, _coordinates, _dedupe, _email, _gender, _json_msg_de, _key_values, _kind_de, _number, _plz, _salutation, _short, _string_list, _text, _thousands, _value_list, join_street, split_display_name


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
    return collect_entries(result, entries, lambda entry, position: _parse_entry(entry, position, reference_date), reuse=reuse, progress=progress, every=every)


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


