"""The predecessor's per-PLZ snapshot format."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional
from core.platform import timewindows
from core.imports.hours import _set_phone_hours, parse_time_ranges
from core.imports.procedures import _apply_procedures, _procedures
from core.imports.entries import collect_entries
from core.imports.records import FORMAT_SNAPSHOT, GENERATION_SNAPSHOT, ImportFormatError, ParseResult, ProgressCallback, SNAPSHOT_KEYS, SNAPSHOT_SECTIONS, SNAPSHOT_TOP_KEYS, SkippedEntry, TherapistRecord, _PLZ_RE
from core.imports.values import _check_placeholder_name, _clean_name, _dedupe, _email, _kind_de, _plz, _salutation, _short, _string_list, _text, _weekday_word, join_street, split_display_name


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
    return collect_entries(result, therapists, _parse_snapshot_entry, reuse=reuse, progress=progress, every=every)


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


