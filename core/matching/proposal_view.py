"""The proposal view-model for the Vermittlung page."""

from __future__ import annotations

from dataclasses import replace

from dataclasses import dataclass
from datetime import date
from typing import Optional
import numpy as np
from sqlalchemy.orm import Session
from core.geo import distance as geo
from core.matching import rules
from core.platform.config import Settings, get_settings
from core.platform.permissions import Actor, Permission
from core.matching.candidates import load_relations, load_searches_reaching, search_profile
from core.matching.contactable import _full_name, profile_of
from core.matching.eligibility import _therapist_row, therapist_state
from core.matching.regions import MatchingError
from core.platform.addresses import normalise_email


# =========================================================================== proposal view for the page


@dataclass(frozen=True)
class CandidateRow:
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    city: Optional[str]
    waiting_days: int
    started_on: date
    distance_km: Optional[float]
    max_km: int
    age: Optional[int]  # None for roles without view_sensitive
    eligible: bool
    proposed: bool
    reasons: tuple[str, ...] = ()


@dataclass
class ProposalView:
    therapist_id: int
    therapist_name: str
    therapist_place: str
    has_email: bool
    has_phone: bool
    therapist_reasons: list[str]
    eligible: list[CandidateRow]  # every eligible search, waiting order; the first ones proposed
    rejected: list[CandidateRow]  # nearby searches that fail, with reasons
    rejected_total: int
    max_size: int


def proposal_view(
    session: Session, actor: Actor, therapist_id: int, *, today: date, settings: Optional[Settings] = None,
    explain_limit: int = 30,
) -> ProposalView:
    """The proposal for one therapist with every eligible search and, for nearby searches
    that do not qualify, the reasons ("Warum nicht?")."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    if row is None:
        raise MatchingError("Diese Therapeut:in gibt es nicht (mehr).")
    profile = profile_of(row)
    t_reasons = rules.therapist_reasons(profile, therapist_state(session, therapist_id, row.email), today=today)
    show_age = actor.can(Permission.view_sensitive)
    eligible: list[CandidateRow] = []
    rejected: list[CandidateRow] = []
    rejected_total = 0
    if profile.lat is not None and profile.lon is not None:
        frame = load_searches_reaching(
            session, (profile.lat, profile.lon), today=today, default_km=settings.DEFAULT_MAX_DISTANCE_KM, factor=1.5
        )
        distances = geo.distances_km((profile.lat, profile.lon), frame.lat, frame.lon) if len(frame) else np.array([])
        # nearby = within the patient's limit plus 50 % (what a coordinator would ask about)
        near = [i for i in range(len(frame)) if not np.isnan(distances[i]) and distances[i] <= frame.max_km[i] * 1.5]
        rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[int(frame.ids[i]) for i in near])
        cap = settings.MAX_OPEN_INQUIRIES_PER_SEARCH
        for i in near:
            srow = frame.rows[i]
            sp = search_profile(srow, settings.DEFAULT_MAX_DISTANCE_KM)
            reasons = rules.pair_reasons(
                profile, sp, rel.facts(sp.search_id, sp.patient_id, therapist_id),
                distance_km=float(distances[i]), today=today, cap=cap,
            )
            cand = CandidateRow(
                search_id=sp.search_id, patient_id=sp.patient_id,
                patient_name=f"{srow.first_name} {srow.last_name}", plz=srow.plz, city=srow.city,
                waiting_days=(today - srow.started_on).days, started_on=srow.started_on,
                distance_km=float(distances[i]), max_km=int(sp.max_km),
                age=rules.age_on(srow.birth_date, today) if show_age else None,
                eligible=not reasons, proposed=False, reasons=tuple(reasons),
            )
            if reasons:
                rejected_total += 1
                if len(rejected) < explain_limit:
                    rejected.append(cand)
            else:
                eligible.append(cand)
    if not t_reasons:
        proposed = set(rules.take_proposal([c.search_id for c in eligible], settings.MAX_INQUIRY_SIZE))

        eligible = [replace(c, proposed=c.search_id in proposed) for c in eligible]
    return ProposalView(
        therapist_id=therapist_id,
        therapist_name=_full_name(row),
        therapist_place=" ".join(p for p in (row.plz, row.city) if p),
        has_email=bool(normalise_email(row.email)),
        has_phone=bool(row.phone),
        therapist_reasons=t_reasons,
        eligible=eligible,
        rejected=rejected,
        rejected_total=rejected_total,
        max_size=settings.MAX_INQUIRY_SIZE,
    )


