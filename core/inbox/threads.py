"""Which inquiry (or patient) a received mail belongs to. The rule and its SQL stand together.

In this order (`match_message`):
1. `header`: In-Reply-To / References (for a bounce: the bounced mail's Message-ID) name a
   Message-ID the outbox stored → that mail's inquiry, therapist or patient;
2. `subject`: an inquiry reference in the subject ("A253") that exists;
3. `sender`: the sender's address belongs to exactly one therapist who has exactly one open
   (sent, unanswered) inquiry;
4. `patient`: the sender's address belongs to exactly one patient;
5. otherwise `none` ("Nicht zugeordnet"); a known therapist is still named so a coordinator
   can assign quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.platform.models import Inquiry, OutboxEmail, Patient, Therapist
from core.platform.vocab import InboxMatch, InquiryStatus

# Sent and not answered yet: what a reply can be the answer to.
OPEN_FOR_REPLIES = (InquiryStatus.sent,)


@dataclass(frozen=True)
class Match:
    method: InboxMatch
    inquiry_id: Optional[int] = None
    therapist_id: Optional[int] = None
    patient_id: Optional[int] = None
    outbox_email_id: Optional[int] = None

    @property
    def assigned(self) -> bool:
        return self.inquiry_id is not None or self.patient_id is not None


NO_MATCH = Match(InboxMatch.none)


def sender_rule(therapist_ids: Sequence[int], open_inquiries: Sequence[int]) -> Optional[int]:
    """Pure: the inquiry a sender's mail belongs to, when the address names exactly one
    therapist with exactly one open inquiry."""
    if len(set(therapist_ids)) == 1 and len(set(open_inquiries)) == 1:
        return open_inquiries[0]
    return None


def outbox_mail_for(session: Session, message_ids: Sequence[str]) -> Optional[OutboxEmail]:
    """The outbox mail the ids name (the first id that matches wins: In-Reply-To first)."""
    ids = [m for m in message_ids if m][:100]
    if not ids:
        return None
    found = {e.message_id: e for e in session.scalars(select(OutboxEmail).where(OutboxEmail.message_id.in_(ids)))}
    for mid in ids:
        if mid in found:
            return found[mid]
    return None


def inquiry_for_refs(session: Session, refs: Sequence[str]) -> Optional[Inquiry]:
    ids = [int(r[1:]) for r in refs if r[1:].isdigit()][:20]
    if not ids:
        return None
    found = {i.id: i for i in session.scalars(select(Inquiry).where(Inquiry.id.in_(ids)))}
    return next((found[i] for i in ids if i in found), None)


def therapists_with_address(session: Session, address: str) -> list[int]:
    if not address:
        return []
    return list(session.scalars(select(Therapist.id).where(func.lower(Therapist.email) == address.lower()).limit(5)))


def patients_with_address(session: Session, address: str) -> list[int]:
    if not address:
        return []
    return list(session.scalars(select(Patient.id).where(func.lower(Patient.email) == address.lower()).limit(5)))


def open_inquiries_of(session: Session, therapist_id: int) -> list[int]:
    return list(session.scalars(
        select(Inquiry.id).where(Inquiry.therapist_id == therapist_id, Inquiry.status.in_(OPEN_FOR_REPLIES)).limit(5)
    ))


def match_message(session: Session, *, thread_ids: Sequence[str], inquiry_refs: Sequence[str],
                  from_address: str) -> Match:
    mail = outbox_mail_for(session, thread_ids)
    if mail is not None:
        therapist_id = mail.therapist_id
        if therapist_id is None and mail.inquiry_id is not None:
            therapist_id = session.scalar(select(Inquiry.therapist_id).where(Inquiry.id == mail.inquiry_id))
        method = InboxMatch.patient if mail.patient_id is not None and mail.inquiry_id is None else InboxMatch.header
        return Match(method, inquiry_id=mail.inquiry_id, therapist_id=therapist_id, patient_id=mail.patient_id,
                     outbox_email_id=mail.id)
    inquiry = inquiry_for_refs(session, inquiry_refs)
    if inquiry is not None:
        return Match(InboxMatch.subject, inquiry_id=inquiry.id, therapist_id=inquiry.therapist_id)
    therapists = therapists_with_address(session, from_address)
    if therapists:
        only = therapists[0] if len(therapists) == 1 else None
        inquiry_id = sender_rule(therapists, open_inquiries_of(session, only)) if only is not None else None
        if inquiry_id is not None:
            return Match(InboxMatch.sender, inquiry_id=inquiry_id, therapist_id=only)
        return Match(InboxMatch.none, therapist_id=only)
    patients = patients_with_address(session, from_address)
    if len(patients) == 1:
        return Match(InboxMatch.patient, patient_id=patients[0])
    return NO_MATCH
