"""The predecessor's matching (one query per pair), kept for the benchmark's comparison only."""

from __future__ import annotations

from datetime import date
from typing import Optional
from sqlalchemy import select
from sqlalchemy.orm import Session
from core.geo import distance as geo
from core.matching import rules
from core.platform.config import Settings, get_settings
from core.platform.models import Patient, Search
from core.platform.vocab import SearchStatus
from core.matching.candidates import Relations, SearchFrame, _SEARCH_COLS, load_all_searches, load_relations, load_searches_near, load_searches_reaching, max_reach_km, search_profile
from core.matching.contactable import ContactablePage, ContactableRow, contactable_all, contactable_therapists, profile_of
from core.matching.eligibility import Candidate, CheckResult, _therapist_row, check_inquiry, eligible_candidates, ineligibility_reasons, practice_member_ids, propose_inquiry, therapist_state
from core.matching.proposal_view import CandidateRow, ProposalView, proposal_view
from core.matching.regions import MatchingError, Region, active_regions, open_inquiry_clause, open_member_clause, region_around_plz, region_by_prefix, region_by_radius


# =========================================================================== the predecessor's way (bench only)


def naive_propose(session: Session, therapist_id: int, *, today: date, settings: Optional[Settings] = None) -> list[int]:
    """The predecessor's way (one query per therapist–patient pair), for the benchmark only: every active
    search, one by one in Python, oldest first, the distance check first, then the other
    rules with their own queries per candidate; no pre-filter, no early stop, cut to
    MAX_INQUIRY_SIZE at the end."""
    settings = settings or get_settings()
    row = _therapist_row(session, therapist_id)
    profile = profile_of(row)
    default_km = settings.DEFAULT_MAX_DISTANCE_KM
    out = []
    rows = session.execute(
        select(*_SEARCH_COLS).join(Patient, Patient.id == Search.patient_id)
        .where(Search.status == SearchStatus.active).order_by(Search.started_on, Search.id)
    ).all()
    for srow in rows:
        d = None
        if None not in (srow.lat, srow.lon, row.lat, row.lon):
            d = geo.distance_km((srow.lat, srow.lon), (row.lat, row.lon))
        if rules.rule_distance(d, rules.effective_max_km(srow.max_distance_km, default_km)):
            continue
        rel = load_relations(session, therapist_ids=[therapist_id], search_ids=[srow.search_id])
        sp = search_profile(srow, default_km)
        if not rules.pair_reasons(
            profile, sp, rel.facts(srow.search_id, srow.patient_id, therapist_id), distance_km=d, today=today,
            cap=settings.MAX_OPEN_INQUIRIES_PER_SEARCH,
        ):
            out.append(srow.search_id)
    return out[: settings.MAX_INQUIRY_SIZE]


__all__ = [
    "Candidate",
    "CandidateRow",
    "CheckResult",
    "check_inquiry",
    "ContactablePage",
    "ContactableRow",
    "MatchingError",
    "ProposalView",
    "Region",
    "Relations",
    "SearchFrame",
    "active_regions",
    "contactable_all",
    "contactable_therapists",
    "eligible_candidates",
    "ineligibility_reasons",
    "load_all_searches",
    "load_relations",
    "load_searches_near",
    "load_searches_reaching",
    "max_reach_km",
    "naive_propose",
    "open_inquiry_clause",
    "open_member_clause",
    "practice_member_ids",
    "propose_inquiry",
    "proposal_view",
    "region_around_plz",
    "region_by_prefix",
    "region_by_radius",
    "therapist_state",
]
