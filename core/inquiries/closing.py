"""Closing inquiries: expiry of unanswered ones and the confirmed success."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional
from sqlalchemy import select
from sqlalchemy.orm import Session
from core.platform import audit
from core.mail import templates as mt
from core.matching import rules
from core.platform.config import Settings
from core.platform.models import Inquiry, InquiryPatient, Patient, Therapist
from core.platform.permissions import SYSTEM, Actor, Permission
from core.platform.vocab import InquiryStatus, Outcome, ResponseType, SearchStatus
from core.inquiries.answers import _start_cooling
from core.inquiries.lifecycle import close_consequences
from core.inquiries.loading import InquiryError, _active_members, _flush, _fresh_searches, _load_inquiry, _local_day, _practice_ids, _settings
from core.platform.locks import lock_for_search_change, lock_rows
from core.mail import outbox
from core.mail import rules as mail_rules
from core.registry.searches import SearchAction, SearchError, change_search


# =========================================================================== expiry


def expire_inquiries(
    session: Session, *, now: datetime, settings: Optional[Settings] = None, actor: Actor = SYSTEM, limit: int = 200
) -> int:
    """Expire sent inquiries unanswered for INQUIRY_EXPIRY_DAYS: their waiting patients get
    'keine Antwort', the therapist (and practice) start cooling. One batch of at most
    `limit`; returns how many expired (call again until 0)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    cutoff = rules.expiry_cutoff(now, settings.INQUIRY_EXPIRY_DAYS)
    ids = list(
        session.scalars(
            select(Inquiry.id)
            .where(Inquiry.status == InquiryStatus.sent, Inquiry.answered_at.is_(None), Inquiry.sent_at <= cutoff)
            .order_by(Inquiry.sent_at, Inquiry.id)
            .limit(limit)
        )
    )
    today = _local_day(now)
    until = rules.cooling_until(today, settings.COOLING_WEEKS)
    done = 0
    # the whole batch's practices, then its inquiries: one lock call, in the global order
    practices = {i: _practice_ids(session, _load_inquiry(session, i).therapist) for i in ids}
    lock_rows(session, therapists=[t for p in practices.values() for t in p], inquiries=ids)
    for inquiry_id in ids:
        practice = practices[inquiry_id]
        inquiry = _load_inquiry(session, inquiry_id, lock=True)
        if inquiry.status != InquiryStatus.sent or not rules.is_expired(inquiry.sent_at, now, settings.INQUIRY_EXPIRY_DAYS):
            continue
        for m in _active_members(inquiry):
            if m.outcome == Outcome.pending:
                m.outcome = Outcome.no_response
                m.outcome_at = now
        inquiry.status = InquiryStatus.expired
        inquiry.expired_at = now
        inquiry.response_type = ResponseType.no_response
        inquiry.updated_at = now
        _start_cooling(session, practice, until, now)
        close_consequences(session, actor, inquiry, now=now, reason="Anfrage abgelaufen")
        _flush(session)
        audit.record(
            session, actor, "inquiry.expire", "inquiry", inquiry.id, {"sent_at": inquiry.sent_at, "cooling_until": until}, now=now
        )
        done += 1
    return done


# =========================================================================== success


@dataclass
class SuccessReport:
    search_id: int
    therapist_id: int
    email_id: Optional[int]
    message: str


def confirm_success(
    session: Session, actor: Actor, search_id: int, *, today: date, now: datetime, settings: Optional[Settings] = None
) -> SuccessReport:
    """After the first sessions: the search becomes successful, the patient 'in Therapie',
    the accepted membership 'in Sitzungen', and the patient's success e-mail is queued
    (when the patient has an e-mail address; otherwise the report says so)."""

    actor.require(Permission.edit)
    settings = _settings(settings)
    lock_for_search_change(session, [search_id])
    search = _fresh_searches(session, [search_id]).get(search_id)
    if search is None:
        raise InquiryError("Diese Platzsuche gibt es nicht (mehr).")
    if search.placed_therapist_id is None:
        raise InquiryError("Erfolg lässt sich erst bestätigen, wenn eine Therapeut:in zugesagt hat.")
    if search.status != SearchStatus.active:
        raise InquiryError(f"Die Platzsuche ist {search.status.label}; Erfolg lässt sich nur für aktive bestätigen.")
    therapist_id = search.placed_therapist_id
    try:
        change_search(session, actor, search_id, SearchAction.succeed, today=today, now=now, placed_therapist_id=therapist_id)
    except SearchError as exc:
        raise InquiryError(str(exc)) from None
    member = session.scalars(
        select(InquiryPatient)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .where(
            InquiryPatient.search_id == search_id,
            Inquiry.therapist_id == therapist_id,
            InquiryPatient.outcome == Outcome.accepted,
        )
        .order_by(InquiryPatient.id.desc())
    ).first()
    if member is not None:
        member.outcome = Outcome.in_sessions
        member.outcome_at = now
    patient = session.get(Patient, search.patient_id)
    therapist = session.get(Therapist, therapist_id)
    email_id = None
    if not (patient.email or "").strip():
        message = "Erfolg bestätigt. Die Patient:in hat keine E-Mail-Adresse – bitte telefonisch informieren."
    else:
        # The practice's contact details went out at the acceptance (core.mail.handlers);
        # this is its own message: the therapy has begun, the search is closed.
        try:
            email = outbox.queue_patient_email(
                session, actor, patient.id, mt.PATIENT_SUCCESS, now, therapist_id=therapist_id, approve=True, settings=settings
            )
            email_id = email.id
            message = "Erfolg bestätigt; die Abschlussnachricht an die Patient:in liegt im Postausgang."
        except mail_rules.OutboxError as exc:
            message = f"Erfolg bestätigt, aber die E-Mail an die Patient:in ließ sich nicht erstellen: {exc}"
    _flush(session)
    audit.record(
        session, actor, "search.success_confirmed", "search", search_id,
        {"therapist_id": therapist_id, "email_id": email_id}, now=now,
    )
    return SuccessReport(search_id=search_id, therapist_id=therapist_id, email_id=email_id, message=message)


