"""Who is who across imports. Pure.

The 116117 response's ``id`` is only the rank in one result list, so a therapist is
recognised by stable keys built from normalised values (docs/architecture.md, "Imports"):

1. **address key**: first given name + surname + PLZ + street + house number. The same
   person at two practice addresses has two address keys and stays two therapists;
2. **name + PLZ key**: for a move within the PLZ or a changed street spelling;
3. **e-mail key**: for a changed surname (marriage) at the same address.

Normalisation folds case, umlauts (ä → ae, ß → ss), accents, punctuation and spacing, and
spells every "Straße/Strasse/Str." the same, so "Musterstr. 12 a" and "Musterstraße 12a"
give one key. Titles are not part of any key (a title acquired later is a change, not a
new person). Matching tries the keys in that order; when one key points at more than one
known therapist, or two records of one run claim the same therapist, the result is
"ambiguous" and goes to review instead of guessing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Optional

from core.platform import addresses

MATCH_ADDRESS = "address"
MATCH_NAME_PLZ = "name_plz"
MATCH_EMAIL = "email"
MATCH_NONE = "none"
MATCH_AMBIGUOUS = "ambiguous"

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe", "œ": "oe", "ł": "l", "đ": "d"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_STREET_WORD = re.compile(r"strasse|str(?=$|[^a-z])")
_HOUSE_NUMBER_TAIL = re.compile(
    r"^(?P<street>.*?\D)\s*(?P<number>\d+\s*[a-zA-Z]?(?:\s*[-/–]\s*\d+\s*[a-zA-Z]?)?)\s*$"
)


def fold(text: Optional[str]) -> str:
    """Lower case ASCII letters and digits separated by single spaces."""
    if not text:
        return ""
    return _fold(text)


@lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    # names and streets repeat across tens of thousands of entries
    low = unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLIT)
    decomposed = unicodedata.normalize("NFKD", low)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", ascii_only).strip()


def normalise_first_name(first: Optional[str]) -> str:
    """The first given name, folded: "Anna-Lena Maria" → "annalena". A hyphenated name stays
    whole; further given names are dropped, because sources add and drop middle names."""
    if not first:
        return ""
    token = first.strip().split()[0] if first.strip() else ""
    return fold(token).replace(" ", "")


def normalise_last_name(last: Optional[str]) -> str:
    return fold(last).replace(" ", "")


def normalise_street(street: Optional[str]) -> str:
    """Street name without the house number, spaces and the spelling of "Straße"."""
    folded = fold(street)
    folded = _STREET_WORD.sub("str", folded)
    return folded.replace(" ", "")


def normalise_house_number(number: Optional[str]) -> str:
    if not number:
        return ""
    text = unicodedata.normalize("NFKC", number).casefold().replace("–", "-")
    return re.sub(r"\s+", "", text)


def split_street(street: Optional[str]) -> tuple[str, str]:
    """("Musterstraße", "12a") from "Musterstraße 12a"; ("Am Markt", "") without a number."""
    if not street:
        return "", ""
    m = _HOUSE_NUMBER_TAIL.match(street.strip())
    if not m:
        return street.strip(), ""
    return m.group("street").strip(), m.group("number").strip()


def normalise_email(email: Optional[str]) -> str:
    """The house's one e-mail key (core.platform.addresses), "" for none."""
    return addresses.normalise_email(email) or ""


def _digest(prefix: str, *parts: str) -> str:
    raw = "\x1f".join(parts).encode("utf-8")
    return f"{prefix}:{hashlib.blake2b(raw, digest_size=16).hexdigest()}"


@dataclass(frozen=True)
class IdentityKeys:
    address: Optional[str]
    name_plz: Optional[str]
    email: Optional[str]

    def all(self) -> tuple[str, ...]:
        return tuple(k for k in (self.address, self.name_plz, self.email) if k)


def keys_for(
    *,
    first_name: Optional[str],
    last_name: Optional[str],
    plz: Optional[str],
    street: Optional[str],
    email: Optional[str],
    house_number: Optional[str] = None,
) -> IdentityKeys:
    """The keys of one therapist or record. `street` may include the house number; pass
    `house_number` separately when the source has it separately."""
    first = normalise_first_name(first_name)
    last = normalise_last_name(last_name)
    plz_n = (plz or "").strip()
    if house_number:
        name_part, number = street or "", house_number
    else:
        name_part, number = split_street(street)
    street_n = normalise_street(name_part)
    number_n = normalise_house_number(number)
    address = _digest("a", first, last, plz_n, street_n, number_n) if last and plz_n and street_n else None
    name_plz = _digest("n", first, last, plz_n) if last and plz_n else None
    mail = normalise_email(email)
    return IdentityKeys(address=address, name_plz=name_plz, email=f"e:{mail}" if mail else None)


def record_keys(record) -> IdentityKeys:
    """Keys of a `TherapistRecord` (uses its separate street name and house number); computed
    once per record."""
    cached = record.__dict__.get("_identity_keys")
    if cached is None:
        cached = record.__dict__["_identity_keys"] = _record_keys(record)
    return cached


def _record_keys(record) -> IdentityKeys:
    if record.street_name and record.house_number:
        return keys_for(
            first_name=record.first_name, last_name=record.last_name, plz=record.plz,
            street=record.street_name, house_number=record.house_number, email=record.email,
        )
    return keys_for(
        first_name=record.first_name, last_name=record.last_name, plz=record.plz, street=record.street, email=record.email
    )


@dataclass(frozen=True)
class Match:
    """How a record relates to the known therapists."""

    kind: str
    therapist_id: Optional[int] = None
    candidates: tuple[int, ...] = ()
    reason: str = ""

    @property
    def is_match(self) -> bool:
        return self.therapist_id is not None


@dataclass
class IdentityIndex:
    """Known therapists by key. `match` answers in key order; `claim` makes sure two records
    of one run do not silently land on the same therapist."""

    by_address: dict[str, list[int]] = field(default_factory=dict)
    by_name_plz: dict[str, list[int]] = field(default_factory=dict)
    by_email: dict[str, list[int]] = field(default_factory=dict)
    claimed: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, known: Iterable[tuple[int, IdentityKeys]]) -> "IdentityIndex":
        index = cls()
        for therapist_id, keys in known:
            index.add(therapist_id, keys)
        return index

    def add(self, therapist_id: int, keys: IdentityKeys) -> None:
        for key, table in ((keys.address, self.by_address), (keys.name_plz, self.by_name_plz), (keys.email, self.by_email)):
            if key:
                ids = table.setdefault(key, [])
                if therapist_id not in ids:
                    ids.append(therapist_id)

    def match(self, keys: IdentityKeys) -> Match:
        for kind, key, table, label in (
            (MATCH_ADDRESS, keys.address, self.by_address, "Name und Praxisadresse"),
            (MATCH_NAME_PLZ, keys.name_plz, self.by_name_plz, "Name und PLZ"),
            (MATCH_EMAIL, keys.email, self.by_email, "E-Mail-Adresse"),
        ):
            if not key:
                continue
            ids = table.get(key)
            if not ids:
                continue
            if len(ids) == 1:
                return Match(kind, ids[0], (ids[0],))
            return Match(
                MATCH_AMBIGUOUS,
                None,
                tuple(sorted(ids)),
                f"{label} passen zu {len(ids)} bekannten Therapeut:innen – bitte zuordnen.",
            )
        return Match(MATCH_NONE)

    def claim(self, keys: IdentityKeys, record_label: str = "") -> Match:
        """`match`, then reserve the therapist for this run. A second record that lands on an
        already claimed therapist becomes ambiguous (both point at one person) unless it is
        the same address (a duplicate entry; reported as such)."""
        found = self.match(keys)
        if found.therapist_id is None:
            return found
        previous = self.claimed.get(found.therapist_id)
        if previous is None:
            self.claimed[found.therapist_id] = keys.address or keys.name_plz or keys.email or ""
            return found
        if keys.address and previous == keys.address:
            return Match("duplicate", found.therapist_id, found.candidates, "Derselbe Eintrag kommt mehrfach vor.")
        return Match(
            MATCH_AMBIGUOUS,
            None,
            found.candidates,
            "Ein anderer Eintrag dieser Datei wurde bereits dieser Therapeut:in zugeordnet – bitte zuordnen.",
        )


def dedupe(records: Iterable, key=record_keys) -> tuple[list, list]:
    """Records in order with repeated entries removed: the same person at the same address
    (same address key, or same name + PLZ when the address is unknown) seen twice, e.g. in
    two overlapping searches of one upload. Returns (unique, duplicates)."""
    seen: set[str] = set()
    unique, duplicates = [], []
    for record in records:
        keys = key(record)
        k = keys.address or (None if record_has_street(record) else keys.name_plz)
        if k is not None and k in seen:
            duplicates.append(record)
            continue
        if k is not None:
            seen.add(k)
        unique.append(record)
    return unique, duplicates


def record_has_street(record) -> bool:
    return bool(getattr(record, "street", None))
