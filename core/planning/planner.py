"""Regional planner and the nightly suggestions.

`plan(...)` proposes inquiries for every contactable therapist of a region at once: the
searches are taken longest-waiting first, each goes to its nearest eligible therapists that
still have room, at most as many as its remaining open-inquiry capacity
(MAX_OPEN_INQUIRIES_PER_SEARCH minus its open inquiries), a therapist gets at most
MAX_INQUIRY_SIZE. Eligibility uses the same rules as a single proposal
(core.matching_rules); the candidates per search come from a latitude-sorted therapist
index, vectorised distances and the vectorised profile rules.

Coordinators review a plan and create the chosen inquiries in one go
(`create_from_plan`, every inquiry re-checked under locks by core.inquiries). The nightly
job stores a plan for all of Germany as draft inquiries (origin "nightly", grouped by the
therapist's PLZ region); they are suggestions that block nobody until approved
(`approve_nightly` sends them after the same re-check) and are replaced the next night.
"""

from __future__ import annotations

import time
from core.platform.formatting import count_of
from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.batch import paused_gc
from core.geo import distance as geo
from core.inquiries import lifecycle as inquiries_lifecycle
from core.inquiries import loading as inquiry_loading
from core.matching import candidates as matching_candidates
from core.matching import contactable as matching_contactable
from core.matching import eligibility
from core.matching import regions as matching_regions
from core.matching import rules
from core.planning import rules as plan_rules
from core.platform.config import Settings, get_settings
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.platform.permissions import SYSTEM, Actor, Permission
from core.platform.vocab import InquiryChannel, InquiryOrigin, InquiryStatus

SessionScope = Callable[[], AbstractContextManager[Session]]


# =========================================================================== the plan


@dataclass(frozen=True)
class PlannedPatient:
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    waiting_days: int
    distance_km: float


@dataclass(frozen=True)
class PlanItem:
    therapist_id: int
    therapist_name: str
    plz: Optional[str]
    city: Optional[str]
    lat: Optional[float]
    lon: Optional[float]
    channel: InquiryChannel
    patients: tuple[PlannedPatient, ...]

    @property
    def search_ids(self) -> list[int]:
        return [p.search_id for p in self.patients]


@dataclass
class Plan:
    region: Optional[matching_regions.Region]
    items: list[PlanItem]
    therapists_considered: int
    searches_considered: int
    searches_planned: int
    seconds: float

    @property
    def inquiries(self) -> int:
        return len(self.items)

    @property
    def placements(self) -> int:
        return sum(len(i.patients) for i in self.items)


@dataclass
class _TherapistIndex:
    """Contactable therapists as numpy arrays sorted by latitude."""

    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    gender: np.ndarray
    preference: np.ndarray
    methods: np.ndarray
    individual: np.ndarray
    age_min: np.ndarray
    age_max: np.ndarray

    @classmethod
    def build(cls, rows: Sequence[matching_contactable.ContactableRow]) -> "_TherapistIndex":
        located = [r for r in rows if r.lat is not None and r.lon is not None]
        located.sort(key=lambda r: (r.lat, r.id))
        ps = [r.profile for r in located]
        return cls(
            ids=np.array([p.id for p in ps], dtype=np.int64),
            lat=np.array([p.lat for p in ps], dtype=np.float64),
            lon=np.array([p.lon for p in ps], dtype=np.float64),
            gender=np.array([rules.GENDER_CODES[p.gender] for p in ps], dtype=np.int8),
            preference=np.array([rules.PREFERENCE_CODES[p.patient_gender_preference] for p in ps], dtype=np.int8),
            methods=np.array([rules.method_mask(p.methods) for p in ps], dtype=np.int16),
            individual=np.array([p.offers_individual for p in ps], dtype=bool),
            age_min=np.array([np.nan if p.age_min is None else p.age_min for p in ps], dtype=np.float64),
            age_max=np.array([np.nan if p.age_max is None else p.age_max for p in ps], dtype=np.float64),
        )

    def candidate_lists(
        self, frame: matching_candidates.SearchFrame, *, batch: int = 512
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For every search row i: (therapist ids, distances) passing the profile rules,
        nearest first (ties by id). Vectorised over batches of searches: every (search,
        therapist) pair inside the search's bounding box at once, instead of one small
        numpy round per search."""
        empty = (np.empty(0, dtype=np.int64), np.empty(0))
        out: list[tuple[np.ndarray, np.ndarray]] = [empty] * len(frame)
        if not len(self.ids):
            return out
        for start in range(0, len(frame), batch):
            rows = np.arange(start, min(len(frame), start + batch))
            min_lat, max_lat, min_lon, max_lon = geo.bounding_boxes(frame.lat[rows], frame.lon[rows], frame.max_km[rows])
            lo = np.searchsorted(self.lat, min_lat, side="left")
            hi = np.searchsorted(self.lat, max_lat, side="right")
            known = ~(np.isnan(min_lat) | np.isnan(max_lat))
            counts = np.where(known & (hi > lo), hi - lo, 0)
            if not counts.sum():
                continue
            # pairs (search k of the batch, therapist t) for every therapist in k's latitude band
            k = np.repeat(np.arange(len(rows)), counts)
            offsets = np.repeat(np.cumsum(counts) - counts, counts)
            t = np.arange(len(k)) - offsets + np.repeat(lo, counts)
            in_box = (self.lon[t] >= min_lon[k]) & (self.lon[t] <= max_lon[k])
            k, t = k[in_box], t[in_box]
            r = rows[k]
            d = geo.pair_distances_km(frame.lat[r], frame.lon[r], self.lat[t], self.lon[t])
            ok = rules.profile_mask(
                distance=d, max_km=frame.max_km[r], patient_gender=frame.gender[r], patient_preference=frame.preference[r],
                patient_methods=frame.methods[r], open_to_group=frame.open_to_group[r], age=frame.age[r],
                therapist_gender=self.gender[t], therapist_preference=self.preference[t],
                therapist_methods=self.methods[t], offers_individual=self.individual[t],
                age_min=self.age_min[t], age_max=self.age_max[t],
            )
            k, t, d = k[ok], t[ok], d[ok]
            ids = self.ids[t]
            order = np.lexsort((ids, d, k))
            k, ids, d = k[order], ids[order], d[order]
            bounds = np.searchsorted(k, np.arange(len(rows) + 1), side="left")
            for j in np.nonzero(np.diff(bounds))[0].tolist():
                a, b = bounds[j], bounds[j + 1]
                out[start + j] = (ids[a:b], d[a:b])
        return out


def _plan_core(
    therapists: Sequence[matching_contactable.ContactableRow],
    frame: matching_candidates.SearchFrame,
    rel: matching_candidates.Relations,
    *,
    today: date,
    settings: Settings,
) -> tuple[list[PlanItem], int]:
    # every member of a practice with its own profile; one inquiry per practice (plan_greedy)
    by_id: dict[int, matching_contactable.ContactableRow] = {}
    practice_of: dict[int, int] = {}
    for t in therapists:
        for m in t.practice_members:
            if m.has_email or m.has_phone:
                by_id[m.id] = m
                practice_of[m.id] = t.id
    index = _TherapistIndex.build(list(by_id.values()))
    cap = settings.MAX_OPEN_INQUIRIES_PER_SEARCH
    order: list[tuple[int, int]] = []
    candidates: dict[int, Iterable[int]] = {}
    dist: dict[tuple[int, int], float] = {}
    row_of: dict[int, int] = {}

    lists = index.candidate_lists(frame)

    def eligible(i: int, sid: int, pid: int) -> Iterator[int]:
        # Lazy: the greedy rule stops after the few therapists a search goes to, so the
        # relation checks run only for the nearest candidates, not for every pair in reach.
        tids, ds = lists[i]
        for tid, d in zip(tids.tolist(), ds.tolist()):
            if not rel.blocked(sid, pid, tid):
                dist[(sid, tid)] = d
                yield tid

    for i in range(len(frame)):
        sid, pid = int(frame.ids[i]), int(frame.patient_ids[i])
        remaining = cap - rel.open_counts.get(sid, 0)
        if remaining <= 0:
            continue
        order.append((sid, remaining))
        candidates[sid] = eligible(i, sid, pid)
        row_of[sid] = i
    result = plan_rules.plan_greedy(order, candidates, max_size=settings.MAX_INQUIRY_SIZE, practice_of=practice_of)
    items = []
    for tid, sids in result.by_therapist.items():
        t = by_id[tid]
        patients = []
        for sid in sids:
            r = frame.rows[row_of[sid]]
            patients.append(
                PlannedPatient(
                    search_id=sid, patient_id=r.patient_id, patient_name=f"{r.first_name} {r.last_name}", plz=r.plz,
                    waiting_days=(today - r.started_on).days, distance_km=dist[(sid, tid)],
                )
            )
        items.append(
            PlanItem(
                therapist_id=tid, therapist_name=t.name, plz=t.plz, city=t.city, lat=t.lat, lon=t.lon,
                channel=InquiryChannel.email if t.has_email else InquiryChannel.phone, patients=tuple(patients),
            )
        )
    # the inquiries of the longest-waiting patients first
    items.sort(key=lambda it: (min((-p.waiting_days, p.search_id) for p in it.patients), it.therapist_id))
    return items, len(result.by_search)


def plan(
    session: Session, actor: Actor, region: Optional[matching_regions.Region], *, today: date, settings: Optional[Settings] = None
) -> Plan:
    """A plan for every contactable therapist of `region` (None: all of Germany)."""
    actor.require(Permission.view)
    settings = settings or get_settings()
    with paused_gc():
        return _plan(session, region, today=today, settings=settings)


def _plan(session: Session, region: Optional[matching_regions.Region], *, today: date, settings: Settings) -> Plan:
    started = time.perf_counter()
    therapists, _, _ = matching_contactable.contactable_all(session, region, today=today)
    default_km = settings.DEFAULT_MAX_DISTANCE_KM
    if region is None:
        frame = matching_candidates.load_all_searches(session, today=today, default_km=default_km)
    else:
        points = [(m.lat, m.lon) for t in therapists for m in t.practice_members if m.lat is not None and m.lon is not None]
        if not points:
            return Plan(region, [], len(therapists), 0, 0, time.perf_counter() - started)
        reach = matching_candidates.max_reach_km(session, default_km)
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        corners = [(min(lats), min(lons)), (max(lats), max(lons))]
        frame = matching_candidates.load_searches_near(session, corners, reach, today=today, default_km=default_km)
    rel = matching_candidates.load_relations(
        session,
        therapist_ids=None if region is None else [m.id for t in therapists for m in t.practice_members],
        search_ids=None if region is None else [int(s) for s in frame.ids],
    )
    items, planned = _plan_core(therapists, frame, rel, today=today, settings=settings)
    return Plan(region, items, len(therapists), len(frame), planned, time.perf_counter() - started)


def map_link(item: PlanItem, digits: int) -> str:
    """Relative link to the map page showing the therapist's PLZ region."""
    prefix = (item.plz or "")[:digits]
    return f"karte?map_region={prefix}" if prefix else "karte"


# =========================================================================== creating from a plan


@dataclass
class BatchReport:
    created: list[int] = field(default_factory=list)  # inquiry ids
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # therapist id (or inquiry id) → German reason
    dropped: int = 0  # patients taken out by the re-check

    def summary(self) -> str:
        text = f"{count_of(len(self.created), 'inquiry')} erstellt"
        if self.sent:
            text += f", {len(self.sent)} gesendet"
        if self.dropped:
            text += f", {count_of(self.dropped, 'patient')} {'passte' if self.dropped == 1 else 'passten'} nicht mehr"
        if self.failed:
            text += f", {len(self.failed)} nicht möglich"
        return text + "."


def create_from_plan(
    session_scope: SessionScope,
    actor: Actor,
    items: Iterable[tuple[int, Sequence[int]]],
    *,
    today: date,
    now: datetime,
    origin: InquiryOrigin = InquiryOrigin.planner,
    plan_region: Optional[str] = None,
    send: bool = False,
    settings: Optional[Settings] = None,
) -> BatchReport:
    """Create the chosen inquiries in one go: each (therapist id, search ids) in its own
    short transaction, re-checked under locks; searches that no longer qualify are left out
    (the rest is created), an impossible therapist is reported. With `send`, each is sent
    right away."""
    actor.require(Permission.edit)
    settings = settings or get_settings()
    report = BatchReport()
    for therapist_id, search_ids in items:
        try:
            with session_scope() as session:
                check = eligibility.check_inquiry(session, therapist_id, list(search_ids), today=today, settings=settings)
                if check.therapist_reasons:
                    raise inquiry_loading.InquiryError(" ".join(check.therapist_reasons))
                valid = check.valid_ids()
                report.dropped += len(search_ids) - len(valid)
                if not valid:
                    raise inquiry_loading.InquiryError("Keine der geplanten Patient:innen passt mehr.")
                inquiry = inquiries_lifecycle.create_inquiry(
                    session, actor, therapist_id, valid, today=today, now=now, origin=origin,
                    plan_region=plan_region, settings=settings,
                )
                inquiry_id = inquiry.id
                sent = False
                if send:
                    sent = inquiries_lifecycle.send_inquiry(session, actor, inquiry_id, today=today, now=now, settings=settings).sent
            report.created.append(inquiry_id)
            if sent:
                report.sent.append(inquiry_id)
        except inquiry_loading.InquiryError as exc:
            report.failed[therapist_id] = str(exc)
    return report


# =========================================================================== nightly suggestions


def _unapproved_nightly():
    return (Inquiry.origin == InquiryOrigin.nightly) & (Inquiry.status == InquiryStatus.draft)


@dataclass
class NightlyReport:
    removed: int
    inquiries: int
    patients: int
    regions: int
    seconds: float

    def summary(self) -> str:
        return (
            f"Vorschläge der Nacht: {self.inquiries} Anfragen mit {self.patients} Patient:innen in "
            f"{self.regions} Regionen vorbereitet ({self.removed} alte Vorschläge ersetzt)."
        )


def prepare_nightly_drafts(
    session: Session, *, today: date, now: datetime, settings: Optional[Settings] = None, actor: Actor = SYSTEM
) -> NightlyReport:
    """Replace yesterday's unapproved suggestions by tonight's plan for all of Germany,
    stored as draft inquiries (origin nightly, plan_region = the therapist's PLZ prefix).
    Nothing is sent; the searches' caps hold across regions because one plan covers all."""
    actor.require(Permission.edit)
    settings = settings or get_settings()
    started = time.perf_counter()
    stale = select(Inquiry.id).where(
        _unapproved_nightly(),
        ~exists().where(OutboxEmail.inquiry_id == Inquiry.id),
        ~exists().where(PhoneCall.inquiry_id == Inquiry.id),
    )
    # Lock the stale suggestions first, by id (docs/architecture.md, "Concurrency": inquiries
    # before their members), FOR UPDATE as they are deleted. A coordinator approving or
    # changing one meanwhile is waited for; a suggestion approved meanwhile no longer
    # qualifies when its row is re-checked after the wait, and is kept.
    stale_ids = list(session.scalars(stale.order_by(Inquiry.id).with_for_update()))
    for chunk in matching_regions._chunks(stale_ids):
        session.execute(delete(InquiryPatient).where(InquiryPatient.inquiry_id.in_(chunk)).execution_options(synchronize_session=False))
        session.execute(delete(Inquiry).where(Inquiry.id.in_(chunk)).execution_options(synchronize_session=False))
    the_plan = plan(session, actor, None, today=today, settings=settings)
    digits = settings.PLZ_PREFIX_DIGITS
    rows = [
        {
            "therapist_id": it.therapist_id, "channel": it.channel, "status": InquiryStatus.draft,
            "origin": InquiryOrigin.nightly, "plan_region": (it.plz or "")[:digits] or None, "size": len(it.patients),
            "created_by": None, "created_at": now, "updated_at": now, "reduced": False, "needs_attention": False,
            "version": 1,
        }
        for it in the_plan.items
    ]
    members = []
    if rows:
        ids = []
        for start in range(0, len(rows), 2000):
            chunk = rows[start : start + 2000]
            ids.extend(
                session.scalars(insert(Inquiry).returning(Inquiry.id, sort_by_parameter_order=True), chunk).all()
            )
        for inquiry_id, it in zip(ids, the_plan.items):
            for pos, p in enumerate(it.patients, start=1):
                members.append({"inquiry_id": inquiry_id, "search_id": p.search_id, "position": pos, "outcome": "pending", "conflict": False})
        for start in range(0, len(members), 10000):
            session.execute(insert(InquiryPatient), members[start : start + 10000])
    regions = {r["plan_region"] for r in rows}
    report = NightlyReport(
        removed=len(stale_ids), inquiries=len(rows), patients=len(members), regions=len(regions),
        seconds=time.perf_counter() - started,
    )
    audit.record(
        session, actor, "plan.nightly", "inquiry", None,
        {"removed": report.removed, "inquiries": report.inquiries, "patients": report.patients, "regions": report.regions},
        now=now,
    )
    session.flush()
    return report


@dataclass(frozen=True)
class NightlyRegion:
    region: str
    inquiries: int
    patients: int
    prepared_at: Optional[datetime]


def nightly_overview(session: Session, actor: Actor) -> list[NightlyRegion]:
    """Per PLZ region: how many unapproved nightly suggestions wait."""
    actor.require(Permission.view)
    rows = session.execute(
        select(Inquiry.plan_region, func.count(func.distinct(Inquiry.id)), func.count(InquiryPatient.id), func.max(Inquiry.created_at))
        .join(InquiryPatient, InquiryPatient.inquiry_id == Inquiry.id)
        .where(_unapproved_nightly())
        .group_by(Inquiry.plan_region)
        .order_by(Inquiry.plan_region)
    ).all()
    return [NightlyRegion(r[0] or "–", r[1], r[2], r[3]) for r in rows]


def nightly_items(session: Session, actor: Actor, region: str, *, today: date) -> list[tuple[int, PlanItem]]:
    """The unapproved suggestions of one region as (inquiry id, item)."""
    actor.require(Permission.view)
    cond = _unapproved_nightly() & (
        Inquiry.plan_region.is_(None) if region in ("", "–") else Inquiry.plan_region == region
    )
    data = session.execute(
        select(Inquiry.id, Inquiry.channel, Therapist, InquiryPatient.search_id, InquiryPatient.position, Search.started_on,
               Search.patient_id, Patient.first_name, Patient.last_name, Patient.plz, Patient.lat, Patient.lon)
        .join(Therapist, Therapist.id == Inquiry.therapist_id)
        .join(InquiryPatient, InquiryPatient.inquiry_id == Inquiry.id)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Patient, Patient.id == Search.patient_id)
        .where(cond)
        .order_by(Inquiry.id, InquiryPatient.position)
    ).all()
    grouped: dict[int, list] = defaultdict(list)
    for row in data:
        grouped[row[0]].append(row)
    out = []
    for inquiry_id, group in grouped.items():
        t = group[0][2]
        patients = tuple(
            PlannedPatient(
                search_id=r[3], patient_id=r[6], patient_name=f"{r[7]} {r[8]}", plz=r[9],
                waiting_days=(today - r[5]).days,
                distance_km=eligibility.pair_distance(t.lat, t.lon, r[10], r[11]) or float("nan"),
            )
            for r in group
        )
        out.append(
            (inquiry_id, PlanItem(t.id, t.full_name, t.plz, t.city, t.lat, t.lon, group[0][1], patients))
        )
    return out


def approve_nightly(
    session_scope: SessionScope, actor: Actor, region: str, *, today: date, now: datetime,
    inquiry_ids: Optional[Sequence[int]] = None, settings: Optional[Settings] = None,
) -> BatchReport:
    """Approve a region's suggestions in one click: each one re-checked and sent in its own
    transaction (patients that no longer qualify are left out); suggestions that cannot go
    any more (therapist pending, cooling ...) are discarded and reported."""
    actor.require(Permission.edit)
    settings = settings or get_settings()
    with session_scope() as session:
        ids = [i for i, _ in nightly_items(session, actor, region, today=today)]
    if inquiry_ids is not None:
        wanted = set(inquiry_ids)
        ids = [i for i in ids if i in wanted]
    report = BatchReport()
    for inquiry_id in ids:
        try:
            with session_scope() as session:
                result = inquiries_lifecycle.send_inquiry(session, actor, inquiry_id, today=today, now=now, settings=settings)
                audit.record(session, actor, "plan.approve", "inquiry", inquiry_id, {"region": region}, now=now)
            report.dropped += len(result.dropped)
            if result.sent:
                report.created.append(inquiry_id)
                report.sent.append(inquiry_id)
            else:
                report.failed[inquiry_id] = result.message
        except inquiry_loading.InquiryError as exc:
            report.failed[inquiry_id] = str(exc)
            with session_scope() as session:
                _discard(session, actor, [inquiry_id], now=now)
    return report


def _discard(session: Session, actor: Actor, inquiry_ids: Sequence[int], *, now: datetime) -> int:
    ids = list(
        session.scalars(
            select(Inquiry.id).where(
                Inquiry.id.in_(list(inquiry_ids)), _unapproved_nightly(),
                ~exists().where(OutboxEmail.inquiry_id == Inquiry.id),
                ~exists().where(PhoneCall.inquiry_id == Inquiry.id),
            )
        )
    )
    if ids:
        session.execute(delete(InquiryPatient).where(InquiryPatient.inquiry_id.in_(ids)).execution_options(synchronize_session=False))
        session.execute(delete(Inquiry).where(Inquiry.id.in_(ids)).execution_options(synchronize_session=False))
        audit.record(session, actor, "plan.discard", "inquiry", None, {"inquiry_ids": ids}, now=now)
    return len(ids)


def discard_nightly(session: Session, actor: Actor, region: str, *, today: date, now: datetime) -> int:
    """Throw away a region's unapproved suggestions."""
    actor.require(Permission.edit)
    ids = [i for i, _ in nightly_items(session, actor, region, today=today)]
    return _discard(session, actor, ids, now=now)
