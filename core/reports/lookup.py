"""The one search box: a name, a number (P152, T81, S150, A253), an e-mail or a phone number.

Results respect the role: everyone who may view finds people by number and name; only
roles that may see contact data (Permission.view_sensitive) find them by e-mail or phone,
and a viewer's contact query finds no one (`LookupResult.note` says why). Matching is in
SQL (case-insensitive LIKE), paged to a few hits per kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.inquiries.loading import reference as inquiry_reference
from core.platform.references import KIND_OF_PREFIX, parse_ref, patient_ref, ref, search_ref, therapist_ref
from core.platform.models import Inquiry, Patient, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import InquiryStatus

LIMIT_PER_KIND = 8
MIN_PHONE_DIGITS = 5
_PHONE = re.compile(r"^[\d\s()+/\-.]+$")


@dataclass(frozen=True)
class Hit:
    kind: str  # patient | therapist | search | inquiry (vocab.SEARCH_HIT_KINDS)
    id: int  # the record to open: the patient for a search hit
    reference: str  # P152, T81, S150, A253
    title: str
    detail: str = ""


@dataclass(frozen=True)
class LookupResult:
    query: str
    hits: list[Hit]
    note: Optional[str] = None  # German, e.g. why a contact query found nothing


def classify(text: str) -> tuple[str, str]:
    """(kind, normalised value): reference | email | phone | name | empty (pure)."""
    value = (text or "").strip()
    if not value:
        return "empty", ""
    record_id = parse_ref(value)
    if record_id is not None:  # P152, a 253 … (core.platform.references, the one parser)
        return "reference", ref(KIND_OF_PREFIX[value.lstrip()[0].upper()], record_id)
    if "@" in value:
        return "email", value.lower()
    if _PHONE.match(value):
        digits = re.sub(r"\D", "", value)
        if len(digits) >= MIN_PHONE_DIGITS:
            return "phone", national_digits(value)
        return "empty", ""
    return "name", value


def national_digits(value: str) -> str:
    """The digits of a German number without country code or trunk 0 (030 123 → 30123)."""
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+"):
        return digits[2:] if digits.startswith("49") else digits
    if digits.startswith("0049"):
        return digits[4:]
    if digits.startswith("0"):
        return digits[1:]
    return digits


def _name(first: str, last: str, title: Optional[str] = None) -> str:
    return " ".join(p for p in (title, first, last) if p)


def _patient_hit(p) -> Hit:
    return Hit("patient", p.id, patient_ref(p.id), _name(p.first_name, p.last_name), " ".join(x for x in (p.plz, p.city) if x))


def _therapist_hit(t) -> Hit:
    return Hit("therapist", t.id, therapist_ref(t.id), _name(t.first_name, t.last_name, t.title),
               " ".join(x for x in (t.plz, t.city) if x))


def _like(column, pattern: str):
    return func.lower(column).like(pattern.lower(), escape="\\")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find(session: Session, actor: Actor, text: str, *, limit: int = LIMIT_PER_KIND) -> LookupResult:
    actor.require(Permission.view)
    kind, value = classify(text)
    query = (text or "").strip()
    if kind == "empty":
        return LookupResult(query, [])
    if kind == "reference":
        return LookupResult(query, _by_reference(session, value))
    if kind in ("email", "phone") and not actor.can(Permission.view_sensitive):
        return LookupResult(query, [], note="Suche nach E-Mail-Adresse oder Telefonnummer ist für Ihre Rolle nicht freigegeben.")
    pcols = (Patient.id, Patient.first_name, Patient.last_name, Patient.plz, Patient.city)
    tcols = (Therapist.id, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.plz, Therapist.city)
    if kind == "email":
        pattern = f"%{_escape(value)}%"
        p_where, t_where = _like(Patient.email, pattern), _like(Therapist.email, pattern)
    elif kind == "phone":
        pattern = f"%{value}%"
        p_where, t_where = Patient.phone.like(pattern), or_(Therapist.phone.like(pattern), Therapist.fax.like(pattern))
    else:
        words = [w for w in re.split(r"[\s,]+", value) if w]
        p_where = and_(*[or_(_like(Patient.first_name, f"%{_escape(w)}%"), _like(Patient.last_name, f"%{_escape(w)}%"))
                         for w in words])
        t_where = and_(*[or_(_like(Therapist.first_name, f"%{_escape(w)}%"), _like(Therapist.last_name, f"%{_escape(w)}%"))
                         for w in words])
    patients = session.execute(
        select(*pcols).where(p_where).order_by(Patient.last_name, Patient.first_name, Patient.id).limit(limit)
    ).all()
    therapists = session.execute(
        select(*tcols).where(t_where).order_by(Therapist.last_name, Therapist.first_name, Therapist.id).limit(limit)
    ).all()
    return LookupResult(query, [_patient_hit(p) for p in patients] + [_therapist_hit(t) for t in therapists])


def _by_reference(session: Session, ref: str) -> list[Hit]:
    prefix, number = ref[0], int(ref[1:])
    if prefix == "P":
        row = session.execute(
            select(Patient.id, Patient.first_name, Patient.last_name, Patient.plz, Patient.city).where(Patient.id == number)
        ).first()
        return [_patient_hit(row)] if row else []
    if prefix == "T":
        row = session.execute(
            select(Therapist.id, Therapist.title, Therapist.first_name, Therapist.last_name, Therapist.plz, Therapist.city)
            .where(Therapist.id == number)
        ).first()
        return [_therapist_hit(row)] if row else []
    if prefix == "S":
        row = session.execute(
            select(Search.id, Search.status, Patient.id.label("patient_id"), Patient.first_name, Patient.last_name)
            .join(Patient, Patient.id == Search.patient_id)
            .where(Search.id == number)
        ).first()
        if not row:
            return []
        return [Hit("search", row.patient_id, search_ref(row.id), _name(row.first_name, row.last_name),
                    f"Platzsuche {row.status.label} · {patient_ref(row.patient_id)}")]
    row = session.execute(
        select(Inquiry.id, Inquiry.status, Inquiry.size, Therapist.title, Therapist.first_name, Therapist.last_name)
        .join(Therapist, Therapist.id == Inquiry.therapist_id)
        .where(Inquiry.id == number)
    ).first()
    if not row:
        return []
    status = InquiryStatus(row.status)
    return [Hit("inquiry", row.id, inquiry_reference(row.id), _name(row.first_name, row.last_name, row.title),
                f"{status.label} · {row.size} Patient:innen")]
