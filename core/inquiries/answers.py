"""Answers: recording per-patient outcomes in one transaction, withdrawal from other inquiries, conflicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping, Optional, Sequence
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from core.platform import audit, events
from core.mail import outbox
from core.mail import rules as mail_rules
from core.matching import regions
from core.matching import rules
from core.platform.config import Settings
from core.platform.formatting import count_of, format_date, plural
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, Search, SearchExclusion, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import InquiryChannel, InquiryOrigin, InquiryStatus, Outcome, ResponseType, SearchStatus
from core.inquiries.lifecycle import _cancel, _mail_in_flight, close_consequences
from core.inquiries.loading import InquiryError, _active_members, _flush, _fresh_searches, _load_inquiry, _practice_ids, _renumber, _settings, reference
from core.platform.locks import lock_rows, open_inquiries_holding


# =========================================================================== withdrawal


@dataclass
class Withdrawal:
    inquiry_id: int
    how: str  # "dropped" (unsent), "withdrawn" (sent, now reduced), "cancelled" (nobody left)


def withdraw_search(
    session: Session, actor: Actor, search_id: int, *, now: datetime, reason: str,
    keep_inquiry_id: Optional[int] = None, settings: Optional[Settings] = None,
) -> list[Withdrawal]:
    """Take a search out of every open inquiry (except `keep_inquiry_id`): unsent ones drop
    it (a queued e-mail is rendered again without it), sent ones mark it withdrawn and
    become 'reduziert'. An inquiry left without anyone is cancelled with its pending calls
    and mails (a sent one is flagged so the practice is told). Also for the registry when
    a search is paused or cancelled."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    rows = session.execute(
        select(InquiryPatient.id, Inquiry.id)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .where(
            InquiryPatient.search_id == search_id,
            regions.open_member_clause(),
            Inquiry.status.in_(regions.OPEN_STATUSES),
        )
        .order_by(Inquiry.id)
    ).all()
    out: list[Withdrawal] = []
    for member_id, inquiry_id in rows:
        if inquiry_id == keep_inquiry_id:
            continue
        inquiry = _load_inquiry(session, inquiry_id, lock=True)
        member = next((m for m in inquiry.patients if m.id == member_id), None)
        if member is None or member.withdrawn_at is not None:
            continue
        in_flight = inquiry.status == InquiryStatus.queued and _mail_in_flight(session, inquiry.id)
        if inquiry.status == InquiryStatus.sent or in_flight:
            member.withdrawn_at = now
            member.withdrawn_reason = reason
            inquiry.reduced = True
            inquiry.updated_at = now
            how = "withdrawn"
            if not any(m.withdrawn_at is None and m.outcome == Outcome.pending for m in inquiry.patients):
                inquiry.needs_attention = True
                inquiry.attention_reason = (
                    "Alle Patient:innen dieser Anfrage haben inzwischen einen Platz – bitte der Praxis Bescheid geben."
                )
                _cancel(session, actor, inquiry, now=now, reason="Alle Patient:innen anderweitig vermittelt")
                how = "cancelled"
        else:
            was_queued = inquiry.status == InquiryStatus.queued
            # a rendered mail (draft or queued) names the patient: cancel it, render again below
            cancelled_mails = outbox.cancel_pending_for_inquiry(session, actor, inquiry.id, now, reason=reason)
            inquiry.patients.remove(member)
            _renumber(inquiry)
            inquiry.updated_at = now
            how = "dropped"
            if not inquiry.patients:
                if (
                    inquiry.origin == InquiryOrigin.nightly and inquiry.status == InquiryStatus.draft
                    and not _has_mails(session, inquiry.id)
                ):
                    session.delete(inquiry)  # an untouched suggestion of the night leaves no trace
                else:
                    _cancel(session, actor, inquiry, now=now, reason="Keine Patient:in mehr in der Anfrage")
                how = "cancelled"
            else:
                inquiry.size = len(inquiry.patients)
                _flush(session)
                if cancelled_mails and inquiry.channel == InquiryChannel.email:
                    try:
                        outbox.queue_inquiry_email(session, actor, inquiry.id, now, approve=was_queued, settings=settings)
                    except mail_rules.OutboxError as exc:
                        inquiry.needs_attention = True
                        inquiry.attention_reason = f"E-Mail konnte nicht neu erstellt werden: {exc}"
        _flush(session)
        audit.record(
            session, actor, "inquiry.withdraw", "inquiry", inquiry_id,
            {"search_id": search_id, "how": how, "reason": reason}, now=now,
        )
        out.append(Withdrawal(inquiry_id, how))
    return out


def _has_mails(session: Session, inquiry_id: int) -> bool:
    """A rendered mail (even a cancelled draft) keeps its inquiry: it is cancelled, not deleted."""
    return session.scalar(select(OutboxEmail.id).where(OutboxEmail.inquiry_id == inquiry_id).limit(1)) is not None


# =========================================================================== answers


@dataclass
class AnswerReport:
    inquiry_id: int
    response_type: ResponseType
    placed: list[int] = field(default_factory=list)  # search ids placed with this therapist
    conflicts: list[int] = field(default_factory=list)  # search ids accepted but placed elsewhere
    excluded: list[int] = field(default_factory=list)  # search ids now excluding this therapist
    withdrawals: dict[int, list[Withdrawal]] = field(default_factory=dict)
    cooling_until: Optional[date] = None
    patient_mail_ids: list[int] = field(default_factory=list)  # drafts with the practice's contact details
    patient_mails_missing: int = 0  # placed patients without an e-mail address: tell them by phone

    def summary(self) -> str:
        parts = [f"Antwort gespeichert ({self.response_type.label})."]
        if self.placed:
            parts.append(f"{count_of(len(self.placed), 'patient')} vermittelt.")
        if self.conflicts:
            parts.append(f"{count_of(len(self.conflicts), 'conflict')}: bereits anderweitig vermittelt – bitte klären.")
        n = sum(len(w) for w in self.withdrawals.values())
        if n:
            parts.append(f"Aus {plural(n, 'anderen Anfrage', 'anderen Anfragen')} zurückgezogen.")
        if self.patient_mail_ids:
            parts.append(
                f"Die Nachricht mit den Kontaktdaten der Praxis an {count_of(len(self.patient_mail_ids), 'patient')} "
                "liegt im Postausgang unter „Entwürfe“ zur Freigabe."
            )
        if self.patient_mails_missing:
            parts.append(f"{count_of(self.patient_mails_missing, 'patient')} ohne E-Mail-Adresse: bitte telefonisch die Praxisdaten nennen.")
        if self.cooling_until:
            parts.append(f"Nächster Kontakt ab {format_date(self.cooling_until)}.")
        return " ".join(parts)


def _start_cooling(session: Session, member_ids: Sequence[int], until: date, now: datetime) -> None:
    for t in session.scalars(select(Therapist).where(Therapist.id.in_(list(member_ids)))).all():
        new = rules.later_cooling(t.next_contact_at, until)
        if new != t.next_contact_at:
            t.next_contact_at = new
            t.updated_at = now


def _accepted_ids(outcomes: Mapping[int, Outcome | str]) -> list[int]:
    """Search ids answered with an acceptance (values not yet validated: others are ignored)."""
    return [int(k) for k, v in outcomes.items() if v == Outcome.accepted or v == Outcome.accepted.value]


def lock_for_answer(session: Session, inquiry_id: int, outcomes: Mapping[int, Outcome | str]) -> list[int]:
    """Lock everything an answer to the inquiry may change, up front in the global order
    (therapists, inquiries, searches: core.platform.locks): the practice (cooling), this
    inquiry, the other open inquiries an acceptance withdraws its patient from, and the
    searches. A caller that changes rows further down first (a call) locks through this.
    Returns the practice's therapist ids."""
    inquiry = _load_inquiry(session, inquiry_id)
    practice = _practice_ids(session, inquiry.therapist)
    lock_rows(
        session, therapists=practice,
        inquiries=[inquiry.id, *open_inquiries_holding(session, _accepted_ids(outcomes))],
        searches=[m.search_id for m in inquiry.patients],
    )
    return practice


def record_answer(
    session: Session,
    actor: Actor,
    inquiry_id: int,
    outcomes: Mapping[int, Outcome | str],
    *,
    today: date,
    now: datetime,
    notes: Optional[Mapping[int, str]] = None,
    settings: Optional[Settings] = None,
    waitlist_until: Optional[Mapping[int, Optional[date]]] = None,
) -> AnswerReport:
    """Record the therapist's answer: `outcomes` maps each (not withdrawn) member's search id
    to accepted / rejected_capacity / rejected_unsuitable / rejected_other / waitlisted /
    no_response; `waitlist_until` gives the expected date of a waiting-list place (optional).
    A waiting-list answer counts as an answer (cooling) but places nobody: the search goes on.

    One transaction: the outcomes, the response type from them, cooling of the therapist and
    its practice (answer date + COOLING_WEEKS), placement on the first acceptance (a later
    acceptance of a placed patient becomes a conflict and never overwrites), withdrawal of a
    placed patient from every other open inquiry, the exclusion after 'nicht geeignet', and
    the cancellation of this inquiry's pending calls and reminder mails."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    practice = lock_for_answer(session, inquiry_id, outcomes)
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    therapist = inquiry.therapist
    phone_pending = inquiry.channel == InquiryChannel.phone and inquiry.status == InquiryStatus.queued
    if inquiry.status == InquiryStatus.answered:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits beantwortet.")
    # late answers: after expiry, or after a sent inquiry was cancelled because every patient
    # in it was placed elsewhere (the therapist saw them; acceptances become conflicts)
    late = inquiry.status == InquiryStatus.expired or (
        inquiry.status == InquiryStatus.cancelled and inquiry.sent_at is not None
    )
    if inquiry.status == InquiryStatus.cancelled and not late:
        # e.g. a phone inquiry whose patients were placed elsewhere a moment before the call
        pending_call = " (der Anruf stand noch aus)" if inquiry.channel == InquiryChannel.phone else ""
        raise InquiryError(
            f"Die Anfrage {reference(inquiry.id)} wurde storniert, bevor sie gesendet war{pending_call}; eine "
            "Antwort lässt sich nicht mehr erfassen – bitte neu laden."
        )
    if inquiry.status != InquiryStatus.sent and not late and not phone_pending:
        raise InquiryError(
            f"Die Anfrage {reference(inquiry.id)} ist {inquiry.status.label}; eine Antwort lässt sich erst "
            "nach dem Versand erfassen."
        )
    required = _active_members(inquiry)
    # patients withdrawn after the therapist saw them may be answered too (→ conflict on acceptance)
    withdrawn = [m for m in inquiry.patients if m.withdrawn_at is not None and m.outcome == Outcome.pending]
    clean = {int(k): Outcome(v) for k, v in outcomes.items()}
    problems = rules.validate_answer(
        [m.search_id for m in required], clean, optional=[m.search_id for m in withdrawn]
    )
    if problems:
        raise InquiryError(" ".join(problems))
    members = sorted((m for m in inquiry.patients if m.search_id in clean), key=lambda m: m.position)
    for m in members:
        m.outcome = clean[m.search_id]
        m.outcome_at = now
        if notes and notes.get(m.search_id):
            m.outcome_notes = notes[m.search_id].strip()
        m.waitlist_until = (waitlist_until or {}).get(m.search_id) if m.outcome == Outcome.waitlisted else None
    kind = rules.response_type(m.outcome for m in members)
    was = inquiry.status
    inquiry.status = InquiryStatus.answered
    inquiry.answered_at = now
    inquiry.sent_at = inquiry.sent_at or now  # a phone inquiry answered in the call
    inquiry.response_type = kind
    inquiry.updated_at = now
    until = rules.cooling_until(today, settings.COOLING_WEEKS)
    _start_cooling(session, practice, until, now)
    report = AnswerReport(inquiry_id=inquiry.id, response_type=kind, cooling_until=until)

    searches = _fresh_searches(session, [m.search_id for m in members])
    for m in members:
        search = searches[m.search_id]
        if m.outcome == Outcome.accepted:
            if search.placed_therapist_id == therapist.id:
                continue
            if search.placed_therapist_id is None and search.status == SearchStatus.active:
                search.placed_therapist_id = therapist.id
                search.placed_on = today
                search.updated_at = now
                report.placed.append(search.id)
                audit.record(
                    session, actor, "search.placed", "search", search.id,
                    {"therapist_id": therapist.id, "inquiry_id": inquiry.id}, now=now,
                )
                for result in events.publish(session, events.SearchPlaced(
                    actor=actor, now=now, search_id=search.id, inquiry_id=inquiry.id, therapist_id=therapist.id,
                )):
                    if isinstance(result, dict):
                        report.patient_mail_ids += result.get("patient_mail_ids", [])
                        report.patient_mails_missing += result.get("patient_mails_missing", 0)
            else:
                m.conflict = True
                inquiry.needs_attention = True
                why = (
                    "bereits bei einer anderen Therapeut:in vermittelt"
                    if search.placed_therapist_id is not None
                    else f"Platzsuche ist {search.status.label}"
                )
                inquiry.attention_reason = f"Konflikt: Zusage für eine Patient:in, die {why} ist."
                report.conflicts.append(search.id)
                audit.record(
                    session, actor, "inquiry.conflict", "inquiry", inquiry.id,
                    {"search_id": search.id, "placed_therapist_id": search.placed_therapist_id}, now=now,
                )
        elif m.outcome == Outcome.rejected_unsuitable:
            if _add_exclusion(session, actor, search.id, therapist.id, inquiry.id, today=today, now=now):
                report.excluded.append(search.id)
    close_consequences(session, actor, inquiry, now=now, reason="Anfrage beantwortet")
    _flush(session)
    audit.record(
        session, actor, "inquiry.answer", "inquiry", inquiry.id,
        {
            "previous_status": was,
            "response_type": kind,
            "outcomes": {str(m.search_id): m.outcome for m in members},
            "cooling_until": until,
        },
        now=now,
    )
    for sid in report.placed:
        report.withdrawals[sid] = withdraw_search(
            session, actor, sid, now=now, keep_inquiry_id=inquiry.id, settings=settings,
            reason=f"Platz gefunden (Zusage in {reference(inquiry.id)})",
        )
    _flush(session)
    return report


def _add_exclusion(
    session: Session, actor: Actor, search_id: int, therapist_id: int, inquiry_id: int, *, today: date, now: datetime
) -> bool:
    exists_ = session.scalar(
        select(func.count()).select_from(SearchExclusion).where(
            SearchExclusion.search_id == search_id, SearchExclusion.therapist_id == therapist_id
        )
    )
    if exists_:
        return False
    session.add(
        SearchExclusion(
            search_id=search_id, therapist_id=therapist_id, excluded_on=today, created_by=actor.user_id,
            reason=f"Abgelehnt: nicht geeignet (Anfrage {reference(inquiry_id)})",
        )
    )
    audit.record(
        session, actor, "search.exclude", "search", search_id, {"therapist_id": therapist_id, "inquiry_id": inquiry_id}, now=now
    )
    return True


def record_later_outcome(
    session: Session, actor: Actor, inquiry_id: int, search_id: int, outcome: Outcome | str, *,
    today: date, now: datetime, note: Optional[str] = None,
) -> InquiryPatient:
    """After an acceptance: the patient did not come (no_show) or is in sessions. A no-show
    with the placing therapist releases the placement (the search continues; that therapist
    is never asked for this search again)."""
    actor.require(Permission.edit)
    outcome = Outcome(outcome)
    if outcome not in rules.LATER_OUTCOMES:
        raise InquiryError("Später lässt sich nur „nicht erschienen“ oder „in Sitzungen“ erfassen.")
    lock_rows(session, inquiries=[inquiry_id], searches=[search_id])
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    member = next((m for m in inquiry.patients if m.search_id == search_id), None)
    if member is None:
        raise InquiryError("Diese Patient:in gehört nicht zu der Anfrage.")
    if member.outcome != Outcome.accepted:
        raise InquiryError(
            f"„{outcome.label}“ lässt sich nur nach einer Zusage erfassen (jetzt: {member.outcome.label})."
        )
    member.outcome = outcome
    member.outcome_at = now
    if note and note.strip():
        member.outcome_notes = ((member.outcome_notes + "\n") if member.outcome_notes else "") + note.strip()
    changes: dict = {"search_id": search_id, "outcome": outcome}
    if outcome == Outcome.no_show:
        search = _fresh_searches(session, [search_id])[search_id]
        if search.placed_therapist_id == inquiry.therapist_id and search.status == SearchStatus.active:
            search.placed_therapist_id = None
            search.placed_on = None
            search.updated_at = now
            changes["placement_released"] = True
    inquiry.updated_at = now
    _flush(session)
    audit.record(session, actor, "inquiry.later_outcome", "inquiry", inquiry.id, changes, now=now)
    return member


# =========================================================================== conflicts


@dataclass(frozen=True)
class ConflictRow:
    member_id: int
    inquiry_id: int
    reference: str
    therapist_id: int
    therapist_name: str
    search_id: int
    patient_name: str
    answered_at: Optional[datetime]
    placed_therapist_id: Optional[int]
    placed_therapist_name: Optional[str]


def list_conflicts(session: Session, actor: Actor, *, limit: int = 200) -> list[ConflictRow]:
    """Acceptances of patients placed elsewhere that nobody has resolved yet, oldest first."""
    actor.require(Permission.view)
    placed = Therapist.__table__.alias("placed")
    rows = session.execute(
        select(
            InquiryPatient.id, Inquiry.id, Inquiry.answered_at, Therapist.id, Therapist.title, Therapist.first_name,
            Therapist.last_name, Search.id, Patient.first_name, Patient.last_name, Search.placed_therapist_id,
            placed.c.title, placed.c.first_name, placed.c.last_name,
        )
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .join(Therapist, Therapist.id == Inquiry.therapist_id)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Patient, Patient.id == Search.patient_id)
        .outerjoin(placed, placed.c.id == Search.placed_therapist_id)
        .where(InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None))
        .order_by(Inquiry.answered_at, InquiryPatient.id)
        .limit(limit)
    ).all()
    out = []
    for r in rows:
        placed_name = " ".join(p for p in (r[11], r[12], r[13]) if p) or None
        out.append(
            ConflictRow(
                member_id=r[0], inquiry_id=r[1], reference=reference(r[1]), answered_at=r[2], therapist_id=r[3],
                therapist_name=" ".join(p for p in (r[4], r[5], r[6]) if p), search_id=r[7],
                patient_name=f"{r[8]} {r[9]}", placed_therapist_id=r[10], placed_therapist_name=placed_name,
            )
        )
    return out


def resolve_conflict(session: Session, actor: Actor, member_id: int, note: str, *, now: datetime) -> InquiryPatient:
    """Release a conflicting acceptance with a note (e.g. "Praxis am 24.11. informiert, Platz
    wird anderweitig vergeben"). The first placement stays."""
    actor.require(Permission.edit)
    if not note or not note.strip():
        raise InquiryError("Bitte eine Notiz angeben, wie der Konflikt gelöst wurde (z. B. „Praxis informiert“).")
    member = session.get(InquiryPatient, member_id)
    if member is None or not member.conflict:
        raise InquiryError("Diesen Konflikt gibt es nicht (mehr).")
    if member.conflict_resolved_at is not None:
        raise InquiryError("Dieser Konflikt ist bereits gelöst.")
    inquiry = _load_inquiry(session, member.inquiry_id, lock=True)
    member.conflict_resolved_at = now
    member.conflict_note = note.strip()
    open_conflicts = [m for m in inquiry.patients if m.conflict and m.conflict_resolved_at is None]
    if not open_conflicts and inquiry.needs_attention and (inquiry.attention_reason or "").startswith("Konflikt"):
        inquiry.needs_attention = False
        inquiry.attention_reason = None
    inquiry.updated_at = now
    _flush(session)
    audit.record(
        session, actor, "inquiry.resolve_conflict", "inquiry", inquiry.id,
        {"search_id": member.search_id, "note": note.strip()}, now=now,
    )
    return member


