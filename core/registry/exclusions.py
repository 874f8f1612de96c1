"""Patient-level exclusions of therapists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from datetime import datetime
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from core.platform import audit
from core.platform import validation as v
from core.platform.models import Patient, PatientExclusion, Therapist
from core.platform.permissions import Actor, Permission
from core.registry.patients import PatientError


@dataclass(frozen=True)
class ExclusionRow:
    id: int
    patient_id: int
    patient_name: str
    therapist_id: int
    therapist_name: str
    reason: Optional[str]  # None for viewers
    created_at: datetime



# --------------------------------------------------------------------------- exclusions


def _exclusion_rows(session: Session, actor: Actor, where) -> list[ExclusionRow]:
    show = actor.can(Permission.view_sensitive)
    rows = session.execute(
        select(PatientExclusion, Patient.first_name, Patient.last_name, Therapist)
        .join(Patient, Patient.id == PatientExclusion.patient_id)
        .join(Therapist, Therapist.id == PatientExclusion.therapist_id)
        .where(where)
        .order_by(PatientExclusion.created_at.desc(), PatientExclusion.id.desc())
    ).all()
    return [
        ExclusionRow(
            id=e.id,
            patient_id=e.patient_id,
            patient_name=f"{fn} {ln}",
            therapist_id=e.therapist_id,
            therapist_name=t.full_name,
            reason=e.reason if show else None,
            created_at=e.created_at,
        )
        for e, fn, ln, t in rows
    ]


def exclusions_for_patient(session: Session, actor: Actor, patient_id: int) -> list[ExclusionRow]:
    actor.require(Permission.view)
    return _exclusion_rows(session, actor, PatientExclusion.patient_id == patient_id)


def exclusions_for_therapist(session: Session, actor: Actor, therapist_id: int) -> list[ExclusionRow]:
    actor.require(Permission.view)
    return _exclusion_rows(session, actor, PatientExclusion.therapist_id == therapist_id)


def add_exclusion(
    session: Session, actor: Actor, patient_id: int, therapist_id: int, reason: str, *, now: datetime
) -> PatientExclusion:
    """The patient is never again proposed to this therapist (reason required)."""
    actor.require(Permission.edit)
    try:
        reason = v.validate_reason(reason, what="Grund des Ausschlusses")
    except v.FieldError as exc:
        raise v.ValidationErrors({"reason": exc.message}) from None
    if session.get(Patient, patient_id) is None:
        raise PatientError("Diese Patientin / dieser Patient existiert nicht (mehr).")
    therapist = session.get(Therapist, therapist_id)
    if therapist is None:
        raise PatientError("Diese Therapeut:in existiert nicht (mehr).")
    exists = session.scalar(
        select(PatientExclusion.id).where(
            PatientExclusion.patient_id == patient_id, PatientExclusion.therapist_id == therapist_id
        )
    )
    if exists:
        raise PatientError(f"{therapist.full_name} ist für diese Person bereits ausgeschlossen.")
    exclusion = PatientExclusion(
        patient_id=patient_id, therapist_id=therapist_id, reason=reason, created_at=now, created_by=actor.user_id
    )
    session.add(exclusion)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise PatientError(f"{therapist.full_name} ist für diese Person bereits ausgeschlossen.") from None
    audit.record(
        session, actor, "patient.exclusion_add", "patient", patient_id,
        {"therapist_id": therapist_id, "reason": "(angegeben)"}, now=now,
    )
    return exclusion


def remove_exclusion(session: Session, actor: Actor, exclusion_id: int, *, now: datetime) -> None:
    actor.require(Permission.edit)
    exclusion = session.get(PatientExclusion, exclusion_id)
    if exclusion is None:
        raise PatientError("Dieser Ausschluss existiert nicht (mehr).")
    audit.record(
        session, actor, "patient.exclusion_remove", "patient", exclusion.patient_id,
        {"therapist_id": exclusion.therapist_id}, now=now,
    )
    session.delete(exclusion)
    session.flush()


