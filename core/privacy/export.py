"""Art. 15 GDPR: everything the agency holds about one patient, as JSON and as a readable
HTML summary (admins only, audited)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.mail import templates as mail_templates
from core.platform import audit
from core.platform import validation as v
from core.platform.formatting import format_date, format_datetime
from core.platform.models import (
    AuditEntry,
    Inquiry,
    InquiryPatient,
    OutboxEmail,
    Patient,
    PatientExclusion,
    PhoneCall,
    Search,
    SearchExclusion,
    Therapist,
)
from core.platform.permissions import Actor, Permission
from core.platform.vocab import AUDIT_ACTIONS

EXPORT_TEMPLATE = "documents/patient_export.html"

PATIENT_FIELDS = (
    "salutation", "gender", "first_name", "last_name", "birth_date", "street", "plz", "city", "email", "phone",
    "gp_name", "insurer", "insurance_number", "symptoms", "diagnosis", "prior_therapy", "prior_therapy_end",
    "availability", "max_distance_km", "transport", "open_to_group", "preferred_therapist_gender",
    "preferred_methods", "status", "referral_source", "contracts_signed", "consent_given", "consent_at",
    "last_contact_on", "notes", "created_at", "updated_at", "anonymised_at",
)


# Record fields the forms don't show, with their German names for the summary.
EXTRA_LABELS = {
    "consent_at": "Einwilligung am", "created_at": "Angelegt am", "updated_at": "Zuletzt geändert",
    "anonymised_at": "Anonymisiert am",
}


def field_label(field: str) -> str:
    return EXTRA_LABELS.get(field) or v.label(field)


class PrivacyError(ValueError):
    """A data-subject request that can't be carried out; the message is German."""


@dataclass(frozen=True)
class PatientExport:
    patient_id: int
    data: dict[str, Any]
    json_bytes: bytes
    html: str
    json_filename: str
    html_filename: str


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(x) for x in value]
    return value


def _shown(value: Any) -> str:
    """A value as a German reader sees it in the HTML summary."""
    if value is None or value == "" or value == []:
        return "–"
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Enum):
        return getattr(value, "label", value.value)
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(x) for x in value) or "–"
    return str(value)


def collect(session: Session, patient_id: int) -> dict[str, Any]:
    """Every record that names the patient, as plain values."""
    p = session.get(Patient, patient_id)
    if p is None:
        raise PrivacyError("Diese Patientin / diesen Patienten gibt es nicht (mehr).")
    searches = session.scalars(select(Search).where(Search.patient_id == p.id).order_by(Search.started_on, Search.id)).all()
    search_ids = [s.id for s in searches]
    out: dict[str, Any] = {
        "patient": {"id": f"P{p.id}", **{f: getattr(p, f) for f in PATIENT_FIELDS}},
        "searches": [],
        "exclusions": [],
        "inquiries": [],
        "emails": [],
        "calls": [],
        "audit": [],
    }
    for s in searches:
        excl = session.scalars(select(SearchExclusion).where(SearchExclusion.search_id == s.id)).all()
        out["searches"].append({
            "id": f"S{s.id}", "status": s.status, "started_on": s.started_on, "paused_on": s.paused_on,
            "ended_on": s.ended_on, "placed_therapist": s.placed_therapist_id and f"T{s.placed_therapist_id}",
            "placed_on": s.placed_on, "success_on": s.success_on, "notes": s.notes,
            "exclusions": [{"therapist": f"T{e.therapist_id}", "reason": e.reason, "on": e.excluded_on} for e in excl],
        })
    for e in session.scalars(select(PatientExclusion).where(PatientExclusion.patient_id == p.id)).all():
        out["exclusions"].append({"therapist": f"T{e.therapist_id}", "reason": e.reason, "created_at": e.created_at})
    if search_ids:
        rows = session.execute(
            select(InquiryPatient, Inquiry, Therapist)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .join(Therapist, Therapist.id == Inquiry.therapist_id)
            .where(InquiryPatient.search_id.in_(search_ids))
            .order_by(Inquiry.created_at, Inquiry.id)
        ).all()
        for m, i, t in rows:
            out["inquiries"].append({
                "id": f"A{i.id}", "search": f"S{m.search_id}", "therapist": f"T{t.id}", "therapist_name": t.full_name,
                "practice": " ".join(x for x in (t.street, t.plz, t.city) if x), "channel": i.channel, "status": i.status,
                "sent_at": i.sent_at, "answered_at": i.answered_at, "outcome": m.outcome, "outcome_at": m.outcome_at,
                "outcome_notes": m.outcome_notes, "withdrawn_at": m.withdrawn_at, "withdrawn_reason": m.withdrawn_reason,
            })
    inquiry_ids = sorted({int(r["id"][1:]) for r in out["inquiries"]})
    mail_filter = OutboxEmail.patient_id == p.id
    if inquiry_ids:
        mail_filter = or_(mail_filter, OutboxEmail.inquiry_id.in_(inquiry_ids))
    for mail in session.scalars(select(OutboxEmail).where(mail_filter).order_by(OutboxEmail.created_at, OutboxEmail.id)):
        out["emails"].append({
            "id": mail.id, "to": mail.to_address, "subject": mail.subject, "template": mail.template,
            "state": mail.state, "sent_at": mail.sent_at, "text": mail.body_text,
        })
    call_filter = PhoneCall.patient_id == p.id
    if inquiry_ids:
        call_filter = or_(call_filter, PhoneCall.inquiry_id.in_(inquiry_ids))
    for call in session.scalars(select(PhoneCall).where(call_filter).order_by(PhoneCall.scheduled_start, PhoneCall.id)):
        out["calls"].append({
            "id": call.id, "inquiry": call.inquiry_id and f"A{call.inquiry_id}", "scheduled_start": call.scheduled_start,
            "state": call.state, "outcome": call.outcome, "notes": call.notes, "attempt": call.attempt,
        })
    audit_filter = (AuditEntry.entity == "patient") & (AuditEntry.entity_id == p.id)
    if search_ids:
        audit_filter = or_(audit_filter, (AuditEntry.entity == "search") & AuditEntry.entity_id.in_(search_ids))
    for e in session.scalars(select(AuditEntry).where(audit_filter).order_by(AuditEntry.at, AuditEntry.id)):
        out["audit"].append({"at": e.at, "by": e.actor_name, "action": e.action, "label": AUDIT_ACTIONS.get(e.action, e.action)})
    return out


def _to_json(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _to_json(x) for k, x in data.items()}
    if isinstance(data, list):
        return [_to_json(x) for x in data]
    return _plain(data)


def export_patient(session: Session, actor: Actor, patient_id: int, *, now: datetime) -> PatientExport:
    """The Art. 15 export of one patient: JSON with every field, and the same as a readable
    HTML page. Admins only; the export itself is recorded in the audit log."""
    actor.require(Permission.admin)
    data = collect(session, patient_id)
    json_bytes = json.dumps(_to_json(data), ensure_ascii=False, indent=2).encode("utf-8")
    patient_rows = [(field_label(f), _shown(data["patient"][f])) for f in PATIENT_FIELDS]
    html = mail_templates.environment().get_template(EXPORT_TEMPLATE).render(
        ref=f"P{patient_id}", created=format_datetime(now), patient_rows=patient_rows,
        searches=[{k: _shown(x) for k, x in s.items() if k != "exclusions"} | {"exclusions": s["exclusions"]} for s in data["searches"]],
        inquiries=[{k: _shown(x) for k, x in i.items()} for i in data["inquiries"]],
        emails=[{k: _shown(x) for k, x in m.items()} for m in data["emails"]],
        calls=[{k: _shown(x) for k, x in c.items()} for c in data["calls"]],
        audit_rows=[{k: _shown(x) for k, x in a.items()} for a in data["audit"]],
    )
    stamp = now.strftime("%Y-%m-%d")
    audit.record(session, actor, "patient.export_art15", "patient", patient_id, None, now=now)
    return PatientExport(
        patient_id=patient_id, data=data, json_bytes=json_bytes, html=html,
        json_filename=f"auskunft_P{patient_id}_{stamp}.json", html_filename=f"auskunft_P{patient_id}_{stamp}.html",
    )
