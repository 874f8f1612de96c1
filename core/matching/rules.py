"""Pure matching rules: eligibility per rule, proposal order, practices, answers, cooling, expiry."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping, Optional, Sequence
import numpy as np
from core.platform.models import Search
from core.platform.dates import age_on  # noqa: F401 - one home, re-used by the rules
from core.registry.cooling import cooling_until, is_cooling, later_cooling  # noqa: F401 - one home
from core.platform.formatting import BERLIN, count_of, format_date, format_km, format_number
from core.platform.vocab import Gender, GenderPreference, Outcome, ResponseType, SearchStatus, TherapistStatus


ANSWER_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.accepted,
    Outcome.rejected_capacity,
    Outcome.rejected_unsuitable,
    Outcome.rejected_other,
    Outcome.no_response,
    Outcome.waitlisted,
)
LATER_OUTCOMES: tuple[Outcome, ...] = (Outcome.no_show, Outcome.in_sessions)
REJECTIONS = frozenset({Outcome.rejected_capacity, Outcome.rejected_unsuitable, Outcome.rejected_other})
# A therapist who answered one of these for a search is never asked again for it.
BAD_HISTORY = frozenset({Outcome.rejected_unsuitable, Outcome.no_show})

METHOD_CODES: tuple[str, ...] = ("VT", "TP", "AP", "ST")
METHOD_BITS: dict[str, int] = {code: 1 << i for i, code in enumerate(METHOD_CODES)}

GENDER_CODES: dict[str, int] = {Gender.unspecified: 0, Gender.male: 1, Gender.female: 2, Gender.diverse: 3}
PREFERENCE_CODES: dict[str, int] = {GenderPreference.any: 0, GenderPreference.male: 1, GenderPreference.female: 2}

_GENDER_WORD = {GenderPreference.male: "männliche", GenderPreference.female: "weibliche"}
_GENDER_PLURAL = {GenderPreference.male: "männliche", GenderPreference.female: "weibliche"}


def method_mask(codes: Iterable[str]) -> int:
    mask = 0
    for code in codes or ():
        mask |= METHOD_BITS.get(str(code), 0)
    return mask


def _methods_text(codes: Iterable[str]) -> str:
    ordered = [c for c in METHOD_CODES if c in set(codes or ())]
    return ", ".join(ordered) if ordered else "keine Angabe"


# --------------------------------------------------------------------------- plain facts


@dataclass(frozen=True)
class TherapistProfile:
    """What the rules need of a therapist."""

    id: int
    status: TherapistStatus = TherapistStatus.active
    next_contact_at: Optional[date] = None
    gender: Gender = Gender.unspecified
    patient_gender_preference: GenderPreference = GenderPreference.any
    methods: frozenset[str] = frozenset()
    offers_individual: bool = True
    age_min: Optional[int] = None
    age_max: Optional[int] = None
    lat: Optional[float] = None
    lon: Optional[float] = None


@dataclass(frozen=True)
class SearchProfile:
    """What the rules need of a search and its patient. `max_km` is the effective limit
    (the patient's own or DEFAULT_MAX_DISTANCE_KM)."""

    search_id: int
    max_km: float
    status: SearchStatus = SearchStatus.active
    started_on: date = date(2000, 1, 1)
    placed_therapist_id: Optional[int] = None
    patient_id: int = 0
    gender: Gender = Gender.unspecified
    birth_date: Optional[date] = None
    preferred_therapist_gender: GenderPreference = GenderPreference.any
    preferred_methods: frozenset[str] = frozenset()
    open_to_group: Optional[bool] = None
    lat: Optional[float] = None
    lon: Optional[float] = None


@dataclass(frozen=True)
class PairFacts:
    """Facts between one therapist and one search that come from other rows."""

    excluded_by_patient: bool = False
    excluded_by_search: bool = False
    bad_outcome: Optional[Outcome] = None  # rejected_unsuitable or no_show given before
    open_inquiries: int = 0  # unanswered inquiries the search is in now
    open_with_therapist: bool = False  # one of them goes to this therapist


@dataclass(frozen=True)
class TherapistState:
    """Therapist-level facts: open inquiries of the therapist and of the practice."""

    open_inquiry_id: Optional[int] = None
    practice_open_inquiry_id: Optional[int] = None  # another member's open inquiry
    practice_cooling_until: Optional[date] = None  # latest next_contact_at of the other members


# --------------------------------------------------------------------------- small helpers


def effective_max_km(max_distance_km: Optional[int], default_km: int) -> int:
    return int(max_distance_km) if max_distance_km else int(default_km)


def age_range_text(age_min: Optional[int], age_max: Optional[int]) -> str:
    if age_min is not None and age_max is not None:
        return f"{age_min}–{age_max} Jahre"
    if age_min is not None:
        return f"ab {age_min} Jahren"
    if age_max is not None:
        return f"bis {age_max} Jahre"
    return "alle Altersgruppen"


# --------------------------------------------------------------------------- therapist-level rules


def rule_therapist_active(status: TherapistStatus) -> Optional[str]:
    if status == TherapistStatus.active:
        return None
    return f"Die Therapeut:in ist {TherapistStatus(status).label} und wird nicht angefragt."


def rule_cooling(next_contact_at: Optional[date], today: date) -> Optional[str]:
    """Cooling: no new inquiry before next_contact_at (a date ≤ today has passed)."""
    if not is_cooling(next_contact_at, today):
        return None
    return f"Abkühlungsphase: Die Therapeut:in darf erst ab {format_date(next_contact_at)} wieder angefragt werden."


def rule_no_open_inquiry(open_inquiry_id: Optional[int]) -> Optional[str]:
    if open_inquiry_id is None:
        return None
    return f"Die Therapeut:in hat schon eine offene Anfrage (A{open_inquiry_id}); erst nach der Antwort folgt die nächste."


def rule_practice(state: TherapistState, today: date) -> Optional[str]:
    if state.practice_open_inquiry_id is not None:
        return (
            "Die Praxis (gleiche E-Mail-Adresse) hat schon eine offene Anfrage "
            f"(A{state.practice_open_inquiry_id}) an eine andere Therapeut:in."
        )
    if state.practice_cooling_until is not None and state.practice_cooling_until > today:
        return (
            "Die Praxis (gleiche E-Mail-Adresse) ist in der Abkühlungsphase bis "
            f"{format_date(state.practice_cooling_until)}."
        )
    return None


def therapist_reasons(therapist: TherapistProfile, state: TherapistState, *, today: date) -> list[str]:
    """Why this therapist cannot be asked at all today (empty: contactable)."""
    reasons = [
        rule_therapist_active(therapist.status),
        rule_cooling(therapist.next_contact_at, today),
        rule_no_open_inquiry(state.open_inquiry_id),
        rule_practice(state, today),
    ]
    return [r for r in reasons if r]


# --------------------------------------------------------------------------- pair rules


def rule_search_active(status: SearchStatus) -> Optional[str]:
    if status == SearchStatus.active:
        return None
    return f"Die Platzsuche ist {SearchStatus(status).label}, nicht aktiv."


def rule_not_placed(placed_therapist_id: Optional[int], therapist_id: int) -> Optional[str]:
    if placed_therapist_id is None:
        return None
    if placed_therapist_id == therapist_id:
        return "Diese Therapeut:in hat der Patient:in bereits zugesagt."
    return "Die Patient:in hat bereits eine Zusage einer anderen Therapeut:in."


def rule_distance(distance_km: Optional[float], max_km: float) -> Optional[str]:
    """Distance patient → practice ≤ the patient's limit; unknown never passes."""
    if distance_km is None or (isinstance(distance_km, float) and math.isnan(distance_km)):
        return (
            "Entfernung unbekannt: Für die Patient:in (PLZ) oder die Praxis (Adresse) fehlen "
            "Koordinaten – bitte die Angaben prüfen."
        )
    if distance_km <= max_km:
        return None
    return (
        f"Zu weit entfernt: {format_km(distance_km)}; die Patient:in fährt höchstens "
        f"{format_number(max_km)} km."
    )


def rule_patient_exclusion(excluded: bool) -> Optional[str]:
    return "Die Patient:in hat diese Therapeut:in ausgeschlossen." if excluded else None


def rule_search_exclusion(excluded: bool) -> Optional[str]:
    return "Die Therapeut:in ist für diese Platzsuche ausgeschlossen." if excluded else None


def rule_history(bad_outcome: Optional[Outcome]) -> Optional[str]:
    if bad_outcome is None:
        return None
    if bad_outcome == Outcome.no_show:
        return "Die Patient:in ist bei dieser Therapeut:in schon einmal nicht erschienen."
    return "Die Therapeut:in hat diese Patient:in schon als nicht geeignet abgelehnt."


def rule_patient_gender_preference(preference: GenderPreference, therapist_gender: Gender) -> Optional[str]:
    """The patient's wish for the therapist's gender; divers/keine Angabe match no wish."""
    if preference == GenderPreference.any:
        return None
    if GENDER_CODES[therapist_gender] == PREFERENCE_CODES[preference]:
        return None
    return (
        f"Die Patient:in wünscht eine {_GENDER_WORD[preference]} Therapeut:in; "
        f"Geschlecht der Therapeut:in: {Gender(therapist_gender).label}."
    )


def rule_therapist_gender_preference(preference: GenderPreference, patient_gender: Gender) -> Optional[str]:
    if preference == GenderPreference.any:
        return None
    if GENDER_CODES[patient_gender] == PREFERENCE_CODES[preference]:
        return None
    return (
        f"Die Therapeut:in nimmt nur {_GENDER_PLURAL[preference]} Patient:innen an; "
        f"Geschlecht der Patient:in: {Gender(patient_gender).label}."
    )


def rule_methods(preferred: Iterable[str], offered: Iterable[str]) -> Optional[str]:
    """A wish for methods is met when the therapist offers at least one of them."""
    wanted = method_mask(preferred)
    if wanted == 0 or wanted & method_mask(offered):
        return None
    return (
        f"Keine gewünschte Methode: gewünscht {_methods_text(preferred)}, "
        f"angeboten {_methods_text(offered)}."
    )


def rule_group(open_to_group: Optional[bool], offers_individual: bool) -> Optional[str]:
    """Not open to group therapy (or not said) → the therapist must offer individual therapy."""
    if open_to_group or offers_individual:
        return None
    return "Die Patient:in möchte keine Gruppentherapie; die Therapeut:in bietet keine Einzeltherapie an."


def rule_age(age: Optional[int], age_min: Optional[int], age_max: Optional[int]) -> Optional[str]:
    """Age inside the therapist's range, bounds inclusive; an unset bound is open."""
    if age_min is None and age_max is None:
        return None
    if age is None:
        return (
            "Alter unbekannt (kein Geburtsdatum); die Therapeut:in nimmt nur "
            f"{age_range_text(age_min, age_max)} an."
        )
    if (age_min is None or age >= age_min) and (age_max is None or age <= age_max):
        return None
    return (
        f"Alter {age} Jahre liegt außerhalb des Altersbereichs der Therapeut:in "
        f"({age_range_text(age_min, age_max)})."
    )


def rule_open_cap(open_inquiries: int, cap: int) -> Optional[str]:
    if open_inquiries < cap:
        return None
    return (
        f"Die Patient:in ist schon in {open_inquiries} unbeantworteten Anfragen "
        f"(höchstens {cap} gleichzeitig)."
    )


def rule_not_in_open_inquiry_to(open_with_therapist: bool) -> Optional[str]:
    if not open_with_therapist:
        return None
    return "Die Patient:in ist schon in einer offenen Anfrage an diese Therapeut:in."


def pair_reasons(
    therapist: TherapistProfile,
    search: SearchProfile,
    facts: PairFacts,
    *,
    distance_km: Optional[float],
    today: date,
    cap: int,
) -> list[str]:
    """Every failed pair rule as one German sentence (empty: the search may go into an
    inquiry to this therapist, as far as the pair is concerned)."""
    reasons = [
        rule_search_active(search.status),
        rule_not_placed(search.placed_therapist_id, therapist.id),
        rule_distance(distance_km, search.max_km),
        rule_patient_exclusion(facts.excluded_by_patient),
        rule_search_exclusion(facts.excluded_by_search),
        rule_history(facts.bad_outcome),
        rule_patient_gender_preference(search.preferred_therapist_gender, therapist.gender),
        rule_therapist_gender_preference(therapist.patient_gender_preference, search.gender),
        rule_methods(search.preferred_methods, therapist.methods),
        rule_group(search.open_to_group, therapist.offers_individual),
        rule_age(age_on(search.birth_date, today), therapist.age_min, therapist.age_max),
        rule_not_in_open_inquiry_to(facts.open_with_therapist),
        rule_open_cap(facts.open_inquiries, cap),
    ]
    return [r for r in reasons if r]


# --------------------------------------------------------------------------- vectorised profile rules


def profile_mask(
    *,
    distance,
    max_km,
    patient_gender,
    patient_preference,
    patient_methods,
    open_to_group,
    age,
    therapist_gender,
    therapist_preference,
    therapist_methods,
    offers_individual,
    age_min,
    age_max,
) -> np.ndarray:
    """The profile rules (distance, both gender preferences, methods, group, age) for many
    pairs at once. Every argument is a scalar or a numpy array (broadcast together):
    genders/preferences as GENDER_CODES/PREFERENCE_CODES, methods as METHOD_BITS masks,
    `age`/`age_min`/`age_max`/`distance` as floats with NaN for unknown/unset,
    `open_to_group` as bool (unknown = False). Equal to the scalar rules (tested)."""
    distance = np.asarray(distance, dtype=np.float64)
    age = np.asarray(age, dtype=np.float64)
    age_min = np.asarray(age_min, dtype=np.float64)
    age_max = np.asarray(age_max, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = distance <= max_km  # NaN compares False: unknown never passes
        ok = ok & ((patient_preference == 0) | (therapist_gender == patient_preference))
        ok = ok & ((therapist_preference == 0) | (patient_gender == therapist_preference))
        ok = ok & ((patient_methods == 0) | ((np.asarray(patient_methods) & therapist_methods) != 0))
        ok = ok & (np.asarray(open_to_group, dtype=bool) | np.asarray(offers_individual, dtype=bool))
        min_unset = np.isnan(age_min)
        max_unset = np.isnan(age_max)
        in_range = (min_unset | (age >= age_min)) & (max_unset | (age <= age_max))
        ok = ok & ((min_unset & max_unset) | (~np.isnan(age) & in_range))
    return ok


# --------------------------------------------------------------------------- proposal


def take_proposal(eligible_in_order: Sequence[int], max_size: int) -> list[int]:
    """The first `max_size` eligible searches (already longest-waiting first), no duplicates."""
    seen: set[int] = set()
    out: list[int] = []
    for sid in eligible_in_order:
        if sid in seen:
            continue
        seen.add(sid)
        out.append(sid)
        if len(out) >= max_size:
            break
    return out


def waiting_order_key(started_on: date, search_id: int) -> tuple[int, int]:
    """Longest waiting first: earliest search start, then the lower id."""
    return (started_on.toordinal(), search_id)


def waiting_order_sql() -> tuple:
    """SQL twin of `waiting_order_key`: the ORDER BY every query of waiting searches uses."""
    return (Search.started_on.asc(), Search.id.asc())


# --------------------------------------------------------------------------- contactable order and practices

# Letters that Unicode does not decompose into a base letter plus accents (so NFKD alone
# would drop them: "Yılmaz" → "ylmaz"), with their usual Latin spelling; ä/ö/ü the German way.
_TRANSLIT = {
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss",
    "ı": "i", "ł": "l", "ø": "o", "đ": "dj", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe",
    "ħ": "h", "ŧ": "t", "ŀ": "l", "ĸ": "k", "ŋ": "ng", "ſ": "s",
}
# the same with umlauts as plain vowels ("Müller" → "muller", as some addresses spell it)
_PLAIN = {**_TRANSLIT, "ä": "a", "ö": "o", "ü": "u", "đ": "d"}
_TABLES = {"german": str.maketrans(_TRANSLIT), "plain": str.maketrans(_PLAIN)}


def fold_name(text: Optional[str], *, umlauts: str = "german") -> str:
    """Lower case, letters a–z only: ä→ae, ö→oe, ü→ue (umlauts="plain": ä→a …), ß→ss,
    ı→i, ł→l, ø→o, đ→dj, æ→ae, œ→oe, þ→th …, other accents dropped (é→e, ş→s, ğ→g)."""
    text = unicodedata.normalize("NFC", (text or "").lower()).translate(_TABLES[umlauts])
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if "a" <= ch <= "z")


def surname_in_address(last_name: Optional[str], email: str) -> bool:
    """The member's surname (folded; also each part of a double name; at least 3 letters,
    so "Li" does not match every address) occurs in the e-mail address (folded alike).
    Umlauts count either way: "Müller" is found in "mueller@…" and in "muller@…"."""
    address = fold_name(email)
    parts = [last_name or ""] + re.split(r"[\s\-]+", last_name or "")
    return any(
        len(folded) >= 3 and folded in address
        for part in parts
        for folded in {fold_name(part), fold_name(part, umlauts="plain")}
    )


def title_rank(title: Optional[str]) -> int:
    """Prof. before Dr. before none."""
    t = (title or "").lower()
    if "prof" in t:
        return 0
    if "dr" in t:
        return 1
    return 2


@dataclass(frozen=True)
class PracticeMember:
    id: int
    title: Optional[str]
    last_name: str


def practice_owner(members: Sequence[PracticeMember], email: str) -> int:
    """The member shown for a practice sharing `email`: whose surname occurs in the address,
    else the best title (Prof. before Dr.), else the lowest id (ties broken the same way)."""
    if not members:
        raise ValueError("a practice has at least one member")
    named = [m for m in members if surname_in_address(m.last_name, email)]
    pool = named or list(members)
    return min(pool, key=lambda m: (title_rank(m.title), m.id)).id


def contact_tier(potentially_available: bool, knows_us: bool) -> int:
    """0 available and knows us, 1 available, 2 knows us, 3 the rest."""
    if potentially_available and knows_us:
        return 0
    if potentially_available:
        return 1
    if knows_us:
        return 2
    return 3


def contactable_sort_key(
    *, potentially_available: bool, knows_us: bool, has_email: bool, last_name: str, first_name: str, therapist_id: int
) -> tuple:
    """Order of the contactable list: tier, with e-mail before without, surname, first name."""
    return (
        contact_tier(potentially_available, knows_us),
        0 if has_email else 1,
        fold_name(last_name),
        fold_name(first_name),
        therapist_id,
    )


# --------------------------------------------------------------------------- answers, cooling, expiry


def response_type(outcomes: Iterable[Outcome]) -> ResponseType:
    """From the outcomes *after* they are set: all accepted / some accepted / none accepted
    but at least one waiting-list place / none accepted but at least one rejection / no
    answer at all (also for an empty list)."""
    values = list(outcomes)
    accepted = sum(1 for o in values if o == Outcome.accepted)
    if values and accepted == len(values):
        return ResponseType.all_accepted
    if accepted:
        return ResponseType.partly_accepted
    # a waiting-list place is an answer without a place (the search goes on)
    if any(o == Outcome.waitlisted for o in values):
        return ResponseType.waitlisted
    if any(o in REJECTIONS for o in values):
        return ResponseType.all_rejected
    return ResponseType.no_response


def expiry_cutoff(now: datetime, expiry_days: int) -> datetime:
    """Inquiries sent at or before this moment are expired."""
    return now - timedelta(days=expiry_days)


def is_expired(sent_at: Optional[datetime], now: datetime, expiry_days: int) -> bool:
    return sent_at is not None and sent_at <= expiry_cutoff(now, expiry_days)


def days_since(moment: Optional[datetime], now: datetime) -> Optional[int]:
    """Calendar days in Europe/Berlin between `moment` and `now`."""
    if moment is None:
        return None
    return (now.astimezone(BERLIN).date() - moment.astimezone(BERLIN).date()).days


def follow_up_due(sent_at: Optional[datetime], now: datetime, follow_up_days: int) -> bool:
    return sent_at is not None and sent_at <= now - timedelta(days=follow_up_days)


def validate_answer(
    members: Iterable[int], outcomes: Mapping[int, Outcome], *, optional: Iterable[int] = ()
) -> list[str]:
    """German problems of an answer: every member in `members` needs exactly one answer
    outcome; members in `optional` (withdrawn after the therapist saw them) may have one."""
    expected = set(members)
    allowed = expected | set(optional)
    given = set(outcomes)
    problems = []
    if expected - given:
        problems.append(f"Für {count_of(len(expected - given), 'patient')} fehlt das Ergebnis.")
    if given - allowed:
        problems.append("Das Ergebnis nennt Patient:innen, die nicht (mehr) in der Anfrage sind.")
    bad = [o for o in outcomes.values() if Outcome(o) not in ANSWER_OUTCOMES]
    if bad:
        problems.append(
            "Als Antwort sind nur angenommen, abgelehnt (Kapazität / nicht geeignet / sonstiges), "
            "auf Warteliste oder keine Antwort möglich."
        )
    return problems


def validate_inquiry_size(search_ids: Sequence[int], max_size: int) -> list[str]:
    problems = []
    if not search_ids:
        problems.append("Die Anfrage braucht mindestens eine Patient:in.")
    if len(search_ids) > max_size:
        problems.append(f"Eine Anfrage hat höchstens {max_size} Patient:innen (gewählt: {len(search_ids)}).")
    if len(set(search_ids)) != len(search_ids):
        problems.append("Eine Patient:in steht doppelt in der Anfrage.")
    return problems


