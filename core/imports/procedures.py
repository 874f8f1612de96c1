"""Procedures (psy) of an entry: method codes and age groups."""

from __future__ import annotations

from typing import Any
from core.imports.records import KJP_SPECIALTY, METHOD_KEYWORDS, TherapistRecord, _WS_RE
from core.imports.values import _kind_de, _short


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


