"""Read auditing: who opened which patient's health data, and the admin view of it.

Opening a patient's detail, a mail body naming a patient, a reply, and every export or
Kontaktprotokoll is recorded as an audit entry `read.<what>`. A Streamlit page runs again on
every click, so one person reading the same record is recorded once per READ_DEDUP_MINUTES;
the check and the insert are one indexed query and one row (bench/privacy.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.models import AuditEntry, InboxMessage, InquiryPatient, OutboxEmail, Patient, Search
from core.platform.permissions import Actor, Permission
from core.platform.vocab import AUDIT_ACTIONS, SearchStatus

READ_DEDUP_MINUTES = 10

# what was read → (audit entity, German label); the labels live in vocab.AUDIT_ACTIONS
READ_KINDS = {
    "patient": "patient",  # the patient's detail with contact and health fields
    "email": "outbox_email",  # a mail body that names a patient
    "reply": "inbox_message",  # a therapist's reply
    "export": "patient",  # an Art. 15 export or a CSV export naming the patient
    "contact_log": "patient",  # the Kontaktprotokoll
}


def record_read(
    session: Session, actor: Actor, what: str, entity_id: int, *, now: datetime,
    patient_id: Optional[int] = None, dedup: bool = True,
) -> bool:
    """Record that `actor` read `what` (a key of READ_KINDS) of `entity_id`; `patient_id` ties
    a mail or reply to the patient it names. Returns False when the same read was recorded
    within READ_DEDUP_MINUTES (nothing written). The system actor's reads are not recorded."""
    if what not in READ_KINDS:
        raise ValueError(f"unknown read kind {what!r}")
    if actor.user_id is None:
        return False
    entity = READ_KINDS[what]
    action = f"read.{what}"
    if dedup:
        recent = session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.entity == entity, AuditEntry.entity_id == entity_id, AuditEntry.action == action,
                AuditEntry.user_id == actor.user_id, AuditEntry.at >= now - timedelta(minutes=READ_DEDUP_MINUTES),
            ).limit(1)
        )
        if recent is not None:
            return False
    changes = {"patient_id": patient_id} if patient_id is not None and entity != "patient" else None
    audit.record(session, actor, action, entity, entity_id, changes, now=now)
    return True


@dataclass(frozen=True)
class AccessRow:
    at: datetime
    actor_name: str
    action: str
    label: str
    what: str  # P152, E-Mail 17, …


def who_saw(session: Session, actor: Actor, patient_id: int, *, limit: int = 500) -> list[AccessRow]:
    """Admins: every read, export and change of one patient's data, newest first – the
    patient record itself, its searches, and mails or replies that name the patient."""
    actor.require(Permission.admin)
    search_ids = select(Search.id).where(Search.patient_id == patient_id)
    mail_ids = select(OutboxEmail.id).where(
        or_(
            OutboxEmail.patient_id == patient_id,
            OutboxEmail.inquiry_id.in_(select(InquiryPatient.inquiry_id).where(InquiryPatient.search_id.in_(search_ids))),
        )
    )
    reply_ids = select(InboxMessage.id).where(
        or_(
            InboxMessage.patient_id == patient_id,
            InboxMessage.inquiry_id.in_(select(InquiryPatient.inquiry_id).where(InquiryPatient.search_id.in_(search_ids))),
        )
    )
    where = or_(
        and_(AuditEntry.entity == "inbox_message", AuditEntry.entity_id.in_(reply_ids), AuditEntry.action.startswith("read.")),
        and_(AuditEntry.entity == "patient", AuditEntry.entity_id == patient_id),
        and_(AuditEntry.entity == "search", AuditEntry.entity_id.in_(search_ids)),
        and_(AuditEntry.entity == "outbox_email", AuditEntry.entity_id.in_(mail_ids), AuditEntry.action.startswith("read.")),
    )
    rows = session.scalars(select(AuditEntry).where(where).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    out = []
    for e in rows:
        what = {"patient": f"P{e.entity_id}", "search": f"S{e.entity_id}", "outbox_email": f"E-Mail {e.entity_id}",
                "inbox_message": f"Antwort {e.entity_id}"}.get(
            e.entity, f"{e.entity} {e.entity_id}"
        )
        out.append(AccessRow(at=e.at, actor_name=e.actor_name, action=e.action, label=AUDIT_ACTIONS.get(e.action, e.action), what=what))
    return out


@dataclass(frozen=True)
class PatientBrief:
    id: int
    ref: str
    name: str
    anonymised_at: Optional[datetime]
    open_search: Optional[str]  # S… of an active or paused search

    @property
    def can_anonymise(self) -> bool:
        return self.anonymised_at is None and self.open_search is None


def parse_patient_ref(text: str) -> Optional[int]:
    """'P152', 'p 152' or '152' → 152; anything else → None."""
    value = (text or "").strip().upper().removeprefix("P").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def patient_brief(session: Session, actor: Actor, patient_id: int) -> Optional[PatientBrief]:
    """What the Datenschutz page shows before an export or anonymisation (admins only)."""
    actor.require(Permission.admin)
    p = session.get(Patient, patient_id)
    if p is None:
        return None
    open_search = session.scalar(
        select(Search.id).where(Search.patient_id == p.id, Search.status.in_((SearchStatus.active, SearchStatus.paused))).limit(1)
    )
    return PatientBrief(
        id=p.id, ref=f"P{p.id}", name=f"{p.first_name} {p.last_name}", anonymised_at=p.anonymised_at,
        open_search=f"S{open_search}" if open_search else None,
    )
