"""Eligibility of searches for one therapist: proposals, reasons, the re-check before an inquiry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Optional, Sequence
import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from core.geo import distance as geo
from core.matching import rules
from core.platform.config import Settings, get_settings
from core.platform.models import Inquiry, Patient, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.matching.candidates import (
    SearchFrame, _SEARCH_COLS, largest_radius_km, load_relations, load_searches_reaching, search_profile,
)
from core.matching.contactable import _THERAPIST_COLS, profile_of
from core.matching.regions import open_inquiry_clause
from core.platform.addresses import normalise_email, therapists_with_email


# =========================================================================== one therapist


def _therapist_row(session: Session, therapist_id: int):
    return session.execute(select(*_THERAPIST_COLS).where(Therapist.id == therapist_id)).one_or_none()


def therapist_state(
    session: Session, therapist_id: int, email: Optional[str], *, exclude_inquiry_id: Optional[int] = None
) -> rules.TherapistState:
    """Open inquiry of the therapist, and of / cooling in the rest of the practice: one query
    for the therapist and everyone sharing its normalised e-mail (ix_therapists_email_key),
    each with its open inquiry."""
    key = normalise_email(email)
    open_col = (
        select(func.min(Inquiry.id))
        .where(Inquiry.therapist_id == Therapist.id, open_inquiry_clause(exclude_inquiry_id))
        .correlate(Therapist)
        .scalar_subquery()
    )
    who = Therapist.id == therapist_id
    if key:
        who = or_(who, therapists_with_email(key))
    own = practice_open = practice_cooling = None
    for member in session.execute(select(Therapist.id, Therapist.next_contact_at, open_col.label("open_id")).where(who)):
        if member.id == therapist_id:
            own = member.open_id
            continue
        if member.open_id is not None:
            practice_open = member.open_id if practice_open is None else min(practice_open, member.open_id)
        if member.next_contact_at is not None:
            practice_cooling = member.next_contact_at if practice_cooling is None else max(practice_cooling, member.next_contact_at)
    return rules.TherapistState(
        open_inquiry_id=own, practice_open_inquiry_id=practice_open, practice_cooling_until=practice_cooling
    )


def practice_member_ids(session: Session, therapist_id: int, email: Optional[str]) -> list[int]:
    """The therapist and everyone sharing the normalised e-mail, in id order."""
    key = normalise_email(email)
    if not key:
        return [therapist_id]
    ids = set(session.scalars(select(Therapist.id).where(therapists_with_email(key))))
    ids.add(therapist_id)
    return sorted(ids)


def _profile_mask_for_therapist(t: rules.TherapistProfile, frame: SearchFrame, distances: np.ndarray) -> np.ndarray:
    return rules.profile_mask(
        distance=distances,
        max_km=frame.max_km,
        patient_gender=frame.gender,
        patient_preference=frame.preference,
        patient_methods=frame.methods,
        open_to_group=frame.open_to_group,
        age=frame.age,
        therapist_gender=rules.GENDER_CODES[t.gender],
        therapist_preference=rules.PREFERENCE_CODES[t.patient_gender_preference],
        therapist_methods=rules.method_mask(t.methods),
        offers_individual=t.offers_individual,
        age_min=np.nan if t.age_min is None else float(t.age_min),
        age_max=np.nan if t.age_max is None else float(t.age_max),
    )


@dataclass(frozen=True)
class Candidate:
    """An eligible search for a therapist, in waiting order."""

    search_id: int
    patient_id: int
    distance_km: float
    row: object = field(compare=False, repr=False)


def eligible_candidates(
    session: Session, profile: rules.TherapistProfile, *, today: date, settings: Settings,
    exclude_inquiry_id: Optional[int] = None, largest_km: Optional[int] = None,
) -> list[Candidate]:
    """Every search that passes every pair rule for this therapist, longest waiting first
    (therapist-level rules are not checked here)."""
    if profile.lat is None or profile.lon is None:
        return []
    frame = load_searches_reaching(
        session, (profile.lat, profile.lon), today=today, default_km=settings.DEFAULT_MAX_DISTANCE_KM,
        largest_km=largest_km,
    )
    if not len(frame):
        return []
    distances = geo.distances_km((profile.lat, profile.lon), frame.lat, frame.lon)
    mask = _profile_mask_for_therapist(profile, frame, distances)
    idx = np.nonzero(mask)[0]
    if not len(idx):
        return []
    rel = load_relations(session, therapist_ids=[profile.id], search_ids=[int(frame.ids[i]) for i in idx])
    cap = settings.MAX_OPEN_INQUIRIES_PER_SEARCH
    out: list[Candidate] = []
    for i in idx:
        sid, pid = int(frame.ids[i]), int(frame.patient_ids[i])
        if rel.blocked(sid, pid, profile.id) or rel.open_counts.get(sid, 0) >= cap:
            continue
        out.append(Candidate(sid, pid, float(distances[i]), frame.rows[i]))
    return out


def propose_inquiry(
    session: Session, therapist_id: int, *, today: date, settings: Optional[Settings] = None,
    actor: Optional[Actor] = None,
) -> list[int]:
    """Search ids for an inquiry to this therapist, in inquiry order (longest waiting first,
    at most MAX_INQUIRY_SIZE). Empty when the therapist may not be asked now (blocked,
    cooling, open inquiry, practice pending or cooling) or nobody qualifies."""
    if actor is not None:
        actor.require(Permission.view)
    settings = settings or get_settings()
    row = session.execute(
        select(*_THERAPIST_COLS, largest_radius_km().label("largest_km")).where(Therapist.id == therapist_id)
    ).one_or_none()
    if row is None:
        return []
    profile = profile_of(row)
    if rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today):
        return []
    candidates = eligible_candidates(session, profile, today=today, settings=settings, largest_km=row.largest_km or 0)
    return rules.take_proposal([c.search_id for c in candidates], settings.MAX_INQUIRY_SIZE)


def _search_row(session: Session, search_id: int):
    return session.execute(
        select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id).where(Search.id == search_id)
    ).one_or_none()


def pair_distance(t_lat, t_lon, s_lat, s_lon) -> Optional[float]:
    """The same vectorised formula as the proposal (so boundaries agree to the last bit)."""
    if None in (t_lat, t_lon, s_lat, s_lon):
        return None
    d = float(geo.distances_km((t_lat, t_lon), [s_lat], [s_lon])[0])
    return None if np.isnan(d) else d


def ineligibility_reasons(
    session: Session, therapist_id: int, search_id: int, *, today: date, settings: Optional[Settings] = None,
    actor: Optional[Actor] = None,
) -> list[str]:
    """Why this search cannot go into an inquiry to this therapist now: one German sentence
    per failed rule (therapist-level rules first); empty when it can."""
    if actor is not None:
        actor.require(Permission.view)
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    if row is None:
        return ["Diese Therapeut:in gibt es nicht (mehr)."]
    srow = _search_row(session, search_id)
    if srow is None:
        return ["Diese Platzsuche gibt es nicht (mehr)."]
    profile = profile_of(row)
    reasons = rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today)
    rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[search_id])
    sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
    reasons += rules.pair_reasons(
        profile, sp, rel.facts(search_id, srow.patient_id, therapist_id),
        distance_km=pair_distance(row.lat, row.lon, srow.lat, srow.lon), today=today,
        cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
    )
    return reasons


@dataclass
class CheckResult:
    """The re-check of a planned inquiry: therapist-level reasons and, per search, the pair
    reasons (empty lists: fine)."""

    therapist_reasons: list[str]
    search_reasons: dict[int, list[str]]

    @property
    def ok(self) -> bool:
        return not self.therapist_reasons and not any(self.search_reasons.values())

    def valid_ids(self) -> list[int]:
        return [sid for sid, reasons in self.search_reasons.items() if not reasons]


def check_inquiry(
    session: Session, therapist_id: int, search_ids: Sequence[int], *, today: date, settings: Settings,
    exclude_inquiry_id: Optional[int] = None,
) -> CheckResult:
    """Every rule for an inquiry to `therapist_id` with `search_ids`, from fresh queries
    (call it after taking the row locks). `exclude_inquiry_id`: an existing inquiry that is
    being re-checked does not count against itself."""
    row = _therapist_row(session, therapist_id)
    if row is None:
        return CheckResult(["Diese Therapeut:in gibt es nicht (mehr)."], {sid: [] for sid in search_ids})
    profile = profile_of(row)
    t_reasons = rules.therapist_reasons(
        profile, therapist_state(session, therapist_id, row.email, exclude_inquiry_id=exclude_inquiry_id), today=today
    )
    srows = {
        r.search_id: r
        for r in session.execute(
            select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id).where(Search.id.in_(list(search_ids)))
        )
    }
    rel = load_relations(
        session, therapist_ids=[therapist_id], search_ids=list(search_ids), exclude_inquiry_id=exclude_inquiry_id
    )
    per_search: dict[int, list[str]] = {}
    for sid in search_ids:
        srow = srows.get(sid)
        if srow is None:
            per_search[sid] = ["Diese Platzsuche gibt es nicht (mehr)."]
            continue
        sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
        per_search[sid] = rules.pair_reasons(
            profile, sp, rel.facts(sid, srow.patient_id, therapist_id),
            distance_km=pair_distance(row.lat, row.lon, srow.lat, srow.lon), today=today,
            cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
        )
    return CheckResult(t_reasons, per_search)


