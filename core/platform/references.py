"""The one visible identifier of each kind of record: P152 (patient), T81 (therapist),
S150 (search), A253 (inquiry). Pages, mails, links and search boxes use these forms; a
bare number is never shown, because "Nr. 150" could mean a patient or a search."""

from __future__ import annotations

import re
from typing import Optional

PREFIXES: dict[str, str] = {"patient": "P", "therapist": "T", "search": "S", "inquiry": "A"}
KIND_OF_PREFIX = {v: k for k, v in PREFIXES.items()}
# The German word for each kind, as headers and hints name the reference.
KIND_LABELS: dict[str, str] = {
    "patient": "Patient:in", "therapist": "Therapeut:in", "search": "Platzsuche", "inquiry": "Anfrage",
}
_REF_RE = re.compile(r"^\s*([PTSA])\s*-?\s*(\d{1,12})\s*$", re.IGNORECASE | re.ASCII)


def ref(kind: str, record_id: Optional[int]) -> str:
    """`ref("patient", 152)` → "P152"; "–" for no record."""
    if record_id is None:
        return "–"
    return f"{PREFIXES[kind]}{int(record_id)}"


def patient_ref(patient_id: Optional[int]) -> str:
    return ref("patient", patient_id)


def therapist_ref(therapist_id: Optional[int]) -> str:
    return ref("therapist", therapist_id)


def search_ref(search_id: Optional[int]) -> str:
    return ref("search", search_id)


def inquiry_ref(inquiry_id: Optional[int]) -> str:
    return ref("inquiry", inquiry_id)


def parse_ref(text: Optional[str], kind: Optional[str] = None) -> Optional[int]:
    """The id in "P152" / "p 152" (of `kind` when given); None when the text is no such
    reference. A bare number is accepted only when `kind` says what it means."""
    if text is None:
        return None
    value = str(text).strip()
    if kind is not None and value.isascii() and value.isdigit():
        return int(value)
    m = _REF_RE.match(value)
    if not m:
        return None
    found = KIND_OF_PREFIX[m.group(1).upper()]
    if kind is not None and found != kind:
        return None
    return int(m.group(2))


def ref_hint(kind: str) -> str:
    """"Patient:in (z. B. P152)" for input labels and placeholders."""
    example = {"patient": 152, "therapist": 81, "search": 150, "inquiry": 253}[kind]
    return f"{KIND_LABELS[kind]} (z. B. {ref(kind, example)})"
