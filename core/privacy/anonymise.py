"""Anonymising a patient: on request (Art. 17) or automatically once the retention period
after the end of their search has passed. Names, contact data, the insurance number, health
fields, free text and mail bodies are removed; what statistics need stays (PLZ region,
gender, search dates and outcomes, inquiry counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.platform import audit
from core.platform.models import (
    AuditEntry,
    InboxMessage,
    InquiryPatient,
    OutboxEmail,
    Patient,
    PatientExclusion,
    PhoneCall,
    Search,
    SearchExclusion,
)
from core.platform.permissions import Actor, Permission
from core.platform.vocab import GenderPreference, Salutation, SearchStatus
from core.privacy.export import PrivacyError

ANONYMOUS_NAME = "Anonymisiert"
REMOVED = "[anonymisiert]"
REMOVED_ADDRESS = "anonymisiert@invalid"
OPEN_SEARCH_STATES = (SearchStatus.active, SearchStatus.paused)


@dataclass(frozen=True)
class AnonymiseReport:
    patient_id: int
    mails_cleared: int
    audit_entries_cleared: int


def anonymise_patient(
    session: Session, actor: Actor, patient_id: int, *, now: datetime, reason: str = "Auf Antrag (Art. 17 DSGVO)",
) -> AnonymiseReport:
    """Remove every personal detail of one patient in one transaction (admins only). Refused
    while a search is active or paused: end it first, so no inquiry still needs the data."""
    actor.require(Permission.admin)
    p = session.get(Patient, patient_id, with_for_update=True)
    if p is None:
        raise PrivacyError("Diese Patientin / diesen Patienten gibt es nicht (mehr).")
    if p.anonymised_at is not None:
        raise PrivacyError(f"P{p.id} ist bereits anonymisiert.")
    open_search = session.scalar(
        select(Search.id).where(Search.patient_id == p.id, Search.status.in_(OPEN_SEARCH_STATES)).limit(1)
    )
    if open_search is not None:
        raise PrivacyError(
            f"P{p.id} hat noch eine laufende oder pausierte Platzsuche (S{open_search}) – bitte zuerst beenden."
        )
    p.first_name, p.last_name = ANONYMOUS_NAME, f"P{p.id}"
    p.salutation = Salutation.none
    for field in (
        "birth_date", "street", "email", "phone", "gp_name", "insurance_number", "diagnosis", "prior_therapy",
        "prior_therapy_end", "availability", "notes", "referral_source", "last_contact_on",
    ):
        setattr(p, field, None)
    p.symptoms, p.preferred_methods = [], []
    p.preferred_therapist_gender = GenderPreference.any
    p.anonymised_at = now
    p.updated_at = now

    search_ids = select(Search.id).where(Search.patient_id == p.id)
    inquiry_ids = select(InquiryPatient.inquiry_id).where(InquiryPatient.search_id.in_(search_ids))
    session.execute(update(Search).where(Search.patient_id == p.id).values(notes=None))
    session.execute(update(SearchExclusion).where(SearchExclusion.search_id.in_(search_ids)).values(reason=REMOVED))
    session.execute(update(PatientExclusion).where(PatientExclusion.patient_id == p.id).values(reason=REMOVED))
    session.execute(
        update(InquiryPatient).where(InquiryPatient.search_id.in_(search_ids))
        .values(outcome_notes=None, withdrawn_reason=None, conflict_note=None)
    )
    mails = session.execute(
        update(OutboxEmail)
        .where(or_(OutboxEmail.patient_id == p.id, OutboxEmail.inquiry_id.in_(inquiry_ids)))
        .values(body_text=REMOVED, body_html=REMOVED, subject=REMOVED, last_error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(
        update(OutboxEmail).where(OutboxEmail.patient_id == p.id)
        .values(to_address=REMOVED_ADDRESS, to_name="").execution_options(synchronize_session=False)
    )
    session.execute(update(PhoneCall).where(PhoneCall.patient_id == p.id).values(notes=None).execution_options(synchronize_session=False))
    # replies: the patient's own, and the therapists' replies about their inquiries
    session.execute(
        update(InboxMessage)
        .where(or_(InboxMessage.patient_id == p.id, InboxMessage.inquiry_id.in_(inquiry_ids)))
        .values(body_text=REMOVED, quoted_text="", body_html="", subject=REMOVED, attachments=[])
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(InboxMessage).where(InboxMessage.patient_id == p.id)
        .values(from_address=REMOVED_ADDRESS, from_name="").execution_options(synchronize_session=False)
    )
    cleared = session.execute(
        update(AuditEntry)
        .where(or_(
            (AuditEntry.entity == "patient") & (AuditEntry.entity_id == p.id),
            (AuditEntry.entity == "search") & AuditEntry.entity_id.in_(search_ids),
        ))
        .values(changes=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    audit.record(session, actor, "patient.anonymise", "patient", p.id, {"reason": reason}, now=now)
    return AnonymiseReport(patient_id=p.id, mails_cleared=int(mails or 0), audit_entries_cleared=int(cleared or 0))


def _last_activity_day():
    """SQL: the day a patient's last search ended (or the record was created without one)."""
    ended = select(func.max(func.coalesce(Search.success_on, Search.ended_on, Search.placed_on, Search.started_on))).where(
        Search.patient_id == Patient.id
    ).scalar_subquery()
    return ended


def due_for_anonymisation(session: Session, *, today: date, retention_days: int, limit: int = 200) -> list[int]:
    """Patients without an open search whose last search ended more than `retention_days`
    ago (or, without any search, whose record is that old); not yet anonymised."""
    cutoff = today - timedelta(days=retention_days)
    open_search = exists().where(Search.patient_id == Patient.id, Search.status.in_(OPEN_SEARCH_STATES))
    any_search = exists().where(Search.patient_id == Patient.id)
    last = _last_activity_day()
    rows = session.scalars(
        select(Patient.id).where(
            Patient.anonymised_at.is_(None),
            ~open_search,
            or_(
                any_search & (last < cutoff),
                ~any_search & (Patient.created_at < datetime.combine(cutoff, time.min, tzinfo=timezone.utc)),
            ),
        ).order_by(Patient.id).limit(limit)
    ).all()
    return list(rows)


def anonymise_expired(
    session: Session, actor: Actor, *, today: date, now: datetime, retention_days: Optional[int], limit: int = 200,
) -> int:
    """The retention job: anonymise every patient past the retention period (None or 0: off)."""
    if not retention_days:
        return 0
    done = 0
    for patient_id in due_for_anonymisation(session, today=today, retention_days=retention_days, limit=limit):
        anonymise_patient(session, actor, patient_id, now=now, reason=f"Aufbewahrungsfrist ({retention_days} Tage) abgelaufen")
        done += 1
    return done
