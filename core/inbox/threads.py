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

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.platform.models import Inquiry, OutboxEmail, Patient, Therapist
from core.platform.vocab import InboxMatch, InquiryStatus
from core.platform.addresses import email_key, normalise_email

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


def _chunks(values, size: int = 500):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i:i + size]


@dataclass
class Lookup:
    """Everything the rule needs for a batch of mails, loaded with a handful of queries."""

    mails: dict[str, tuple[int, Optional[int], Optional[int], Optional[int]]]  # message_id → (id, inquiry, therapist, patient)
    inquiries: dict[int, int]  # inquiry id → therapist id
    therapists_by_address: dict[str, list[int]]
    open_by_therapist: dict[int, list[int]]
    patients_by_address: dict[str, list[int]]

    @classmethod
    def load(cls, session: Session, *, thread_ids, refs, addresses) -> "Lookup":
        ids = {m for m in thread_ids if m}
        mails: dict[str, tuple[int, Optional[int], Optional[int], Optional[int]]] = {}
        for chunk in _chunks(ids):
            for e_id, mid, inq, ther, pat in session.execute(
                select(OutboxEmail.id, OutboxEmail.message_id, OutboxEmail.inquiry_id, OutboxEmail.therapist_id,
                       OutboxEmail.patient_id).where(OutboxEmail.message_id.in_(chunk))
            ):
                mails.setdefault(mid, (e_id, inq, ther, pat))
        wanted = {int(r[1:]) for r in refs if r[1:].isdigit()} | {v[1] for v in mails.values() if v[1] is not None}
        inquiries: dict[int, int] = {}
        for chunk in _chunks(wanted):
            inquiries.update(dict(session.execute(select(Inquiry.id, Inquiry.therapist_id).where(Inquiry.id.in_(chunk))).all()))
        lowered = {normalise_email(a) for a in addresses if normalise_email(a)}
        therapists: dict[str, list[int]] = {}
        patients: dict[str, list[int]] = {}
        for chunk in _chunks(lowered):
            for tid, email in session.execute(
                select(Therapist.id, email_key()).where(email_key().in_(chunk))
            ):
                therapists.setdefault(email, []).append(tid)
            for pid, email in session.execute(
                select(Patient.id, email_key(Patient.email)).where(email_key(Patient.email).in_(chunk))
            ):
                patients.setdefault(email, []).append(pid)
        single = {ids_[0] for ids_ in therapists.values() if len(ids_) == 1}
        open_by: dict[int, list[int]] = {}
        for chunk in _chunks(single):
            for iid, tid in session.execute(
                select(Inquiry.id, Inquiry.therapist_id)
                .where(Inquiry.therapist_id.in_(chunk), Inquiry.status.in_(OPEN_FOR_REPLIES))
            ):
                open_by.setdefault(tid, []).append(iid)
        return cls(mails, inquiries, therapists, open_by, patients)

    def match(self, *, thread_ids: Sequence[str], inquiry_refs: Sequence[str], from_address: str) -> Match:
        """The rule (see the module docstring) over the loaded values."""
        for mid in thread_ids:
            if mid in self.mails:
                e_id, inquiry_id, therapist_id, patient_id = self.mails[mid]
                if therapist_id is None and inquiry_id is not None:
                    therapist_id = self.inquiries.get(inquiry_id)
                method = InboxMatch.patient if patient_id is not None and inquiry_id is None else InboxMatch.header
                return Match(method, inquiry_id=inquiry_id, therapist_id=therapist_id, patient_id=patient_id,
                             outbox_email_id=e_id)
        for ref in inquiry_refs:
            number = int(ref[1:]) if ref[1:].isdigit() else None
            if number in self.inquiries:
                return Match(InboxMatch.subject, inquiry_id=number, therapist_id=self.inquiries[number])
        address = normalise_email(from_address) or ""
        therapists = self.therapists_by_address.get(address, [])
        if therapists:
            only = therapists[0] if len(therapists) == 1 else None
            inquiry_id = sender_rule(therapists, self.open_by_therapist.get(only, [])) if only is not None else None
            if inquiry_id is not None:
                return Match(InboxMatch.sender, inquiry_id=inquiry_id, therapist_id=only)
            return Match(InboxMatch.none, therapist_id=only)
        patients = self.patients_by_address.get(address, [])
        if len(patients) == 1:
            return Match(InboxMatch.patient, patient_id=patients[0])
        return NO_MATCH


def match_message(session: Session, *, thread_ids: Sequence[str], inquiry_refs: Sequence[str],
                  from_address: str) -> Match:
    lookup = Lookup.load(session, thread_ids=thread_ids, refs=inquiry_refs, addresses=[from_address])
    return lookup.match(thread_ids=thread_ids, inquiry_refs=inquiry_refs, from_address=from_address)
