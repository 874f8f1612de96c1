"""A patient's detail view: the record with its searches and exclusions, and its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Optional, Sequence
from sqlalchemy import select
from sqlalchemy.orm import Session
from core.platform import audit
from core.platform import validation as v
from core.platform.formatting import BERLIN
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Therapist
from core.platform.permissions import Actor, Permission
from core.registry.searches import OPEN_STATES, SearchInfo, missing_for_search, searches_for_patient
from core.platform.vocab import HISTORY_ACTIONS, Labeled, SearchStatus
from core.registry import records
from core.registry.patients import FIELDS, KIND
from core.registry.exclusions import ExclusionRow, exclusions_for_patient


# --------------------------------------------------------------------------- detail


@dataclass(frozen=True)
class PatientDetail:
    id: int
    sensitive_visible: bool
    values: dict[str, Any]  # every field of FIELDS; sensitive ones absent for viewers
    age: Optional[int]
    has_coordinates: bool
    created_at: datetime
    updated_at: datetime
    consent_at: Optional[datetime]
    searches: list[SearchInfo]
    missing_for_search: list[str]
    exclusions: list[ExclusionRow]

    @property
    def name(self) -> str:
        return f"{self.values['first_name']} {self.values['last_name']}"

    @property
    def open_search(self) -> Optional[SearchInfo]:
        return next((s for s in self.searches if s.status in OPEN_STATES), None)

    @property
    def current_search(self) -> Optional[SearchInfo]:
        return self.searches[0] if self.searches else None

    @property
    def can_start_search(self) -> bool:
        """A new search may start only while none is open (one open search per patient)."""
        return self.open_search is None

    @property
    def missing_to_start(self) -> list[str]:
        """What is still missing, while it matters: before a start or a resume."""
        search = self.open_search
        return self.missing_for_search if search is None or search.status == SearchStatus.paused else []


def get_patient(session: Session, actor: Actor, patient_id: int, *, today: date) -> PatientDetail:
    actor.require(Permission.view)
    p = KIND.load(session, patient_id)
    show, values = records.visible_values(KIND, actor, p)
    return PatientDetail(
        id=p.id,
        sensitive_visible=show,
        values=values,
        age=v.age_on(p.birth_date, today) if show and p.birth_date else None,
        has_coordinates=p.lat is not None and p.lon is not None,
        created_at=p.created_at,
        updated_at=p.updated_at,
        consent_at=p.consent_at,
        searches=searches_for_patient(session, actor, p.id, today=today),
        missing_for_search=missing_for_search(p),
        exclusions=exclusions_for_patient(session, actor, p.id),
    )



# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    kind: str  # German: Platzsuche, Anfrage, E-Mail, Telefonat, Protokoll
    title: str
    detail: str = ""
    state: Optional[Labeled] = None


def day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=BERLIN)




def action_label(action: str) -> str:
    return HISTORY_ACTIONS.get(action) or audit.action_label(action)


def audit_items(session: Session, entity: str, ids: Sequence[int], *, show: bool) -> list[HistoryItem]:
    if not ids:
        return []
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == entity, AuditEntry.entity_id.in_(list(ids)))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(300)
    )
    items = []
    for e in rows:
        fields_changed = ", ".join(v.label(k) for k in (e.changes or {}) if k in v.FIELD_LABELS)
        detail = f"von {e.actor_name}" + (f" – {fields_changed}" if fields_changed and show else "")
        items.append(HistoryItem(e.at, "Protokoll", action_label(e.action), detail))
    return items


def patient_history(session: Session, actor: Actor, patient_id: int, *, today: date) -> list[HistoryItem]:
    """Searches, inquiries with outcomes, e-mails, calls and audit entries, newest first."""
    actor.require(Permission.view)
    show = actor.can(Permission.view_sensitive)
    items: list[HistoryItem] = []
    searches = searches_for_patient(session, actor, patient_id, today=today)
    for s in searches:
        end = f" bis {s.ended_on:%d.%m.%Y}" if s.ended_on else ""
        items.append(HistoryItem(day_start(s.started_on), "Platzsuche", f"Platzsuche ab {s.started_on:%d.%m.%Y}{end}", "", s.status))
    search_ids = [s.id for s in searches]
    if search_ids:
        rows = session.execute(
            select(InquiryPatient, Inquiry, Therapist)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .join(Therapist, Therapist.id == Inquiry.therapist_id)
            .where(InquiryPatient.search_id.in_(search_ids))
        ).all()
        for ip, inq, t in rows:
            at = inq.answered_at or inq.sent_at or inq.queued_at or inq.created_at
            detail = f"{inq.status.label} · Ergebnis: {ip.outcome.label}"
            if ip.waitlist_until:
                detail += f" (voraussichtlich ab {ip.waitlist_until:%d.%m.%Y})"
            if ip.withdrawn_reason:
                detail += f" · zurückgezogen: {ip.withdrawn_reason}"
            items.append(HistoryItem(at, "Anfrage", f"Anfrage A{inq.id} an {t.full_name} ({inq.channel.label})", detail, ip.outcome))
    for m in session.scalars(select(OutboxEmail).where(OutboxEmail.patient_id == patient_id)):
        title = m.subject if show else "E-Mail"
        items.append(HistoryItem(m.sent_at or m.queued_at or m.created_at, "E-Mail", title, f"an {m.to_address}" if show else "", m.state))
    for c in session.scalars(select(PhoneCall).where(PhoneCall.patient_id == patient_id)):
        detail = (c.outcome or "") if show else ""
        items.append(HistoryItem(c.scheduled_start, "Telefonat", f"Telefonat ({c.purpose.label})", detail, c.state))
    items += audit_items(session, "patient", [patient_id], show=show)
    items += audit_items(session, "search", search_ids, show=show)
    items.sort(key=lambda i: i.at, reverse=True)
    return items


def field_names() -> dict[str, str]:
    return {f: v.label(f) for f in FIELDS}

