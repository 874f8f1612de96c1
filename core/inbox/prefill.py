"""Pre-filling "Antwort erfassen" from a reply (pure): only when the text is obvious.

Obvious means a plain refusal for lack of capacity ("leider keine freien Plätze",
"Aufnahmestopp", "Warteliste ist geschlossen") with no sign of an offer ("gerne",
"Erstgespräch", "Termin", "Platz frei"). Then every patient gets `rejected_capacity`; in every
other case nothing is pre-filled and the coordinator chooses.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from core.platform.vocab import Outcome

_CAPACITY = re.compile(
    r"keine\s+(?:freien\s+|neuen\s+)?(?:therapie)?pl(?:ä|ae)tze|keinen\s+(?:freien\s+)?(?:therapie)?platz|"
    r"keine\s+(?:freie[n]?\s+)?kapazit(?:ä|ae)t|keine\s+neuen\s+patient|aufnahmestopp|ausgebucht|voll\s+belegt|"
    r"warteliste\s+(?:ist\s+)?(?:geschlossen|voll)|no\s+(?:free\s+)?(?:places|capacity|availability)|fully\s+booked",
    re.IGNORECASE,
)
_OFFER = re.compile(
    r"\bgerne?\b|erstgespr(?:ä|ae)ch|\btermin|platz\s+frei|freien\s+platz\s+f(?:ü|ue)r|kann\s+\S+(?:\s+\S+){0,3}\s+aufnehmen|"
    r"zusage|\bja\b|sprechstunde\s+am|melden\s+sie\s+sich|rufen\s+sie\s+mich|happy\s+to|can\s+offer",
    re.IGNORECASE,
)


def suggested_outcome(text: str) -> Optional[Outcome]:
    if not text:
        return None
    head = text[:3000]
    if _CAPACITY.search(head) and not _OFFER.search(head):
        return Outcome.rejected_capacity
    return None


def suggested_outcomes(text: str, search_ids: Sequence[int]) -> dict[int, Outcome]:
    outcome = suggested_outcome(text)
    return {sid: outcome for sid in search_ids} if outcome is not None else {}
