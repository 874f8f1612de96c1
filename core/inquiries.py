"""Inquiry life cycle (Anfrage): create with a full re-check under row locks, send (outbox
or call), record the answer in one transaction, withdraw placed patients from other
inquiries, conflicts, later outcomes, expiry and the confirmed success.

Concurrency: creating and answering lock the rows they decide on, always in the same
order – the therapist and the other members of its practice (id order), then the searches
(id order), then inquiries – with SELECT … FOR UPDATE on PostgreSQL; the re-check runs
after the locks with fresh queries, so two coordinators can never push a search over
MAX_OPEN_INQUIRIES_PER_SEARCH or give one practice two open inquiries. On SQLite every
write transaction starts with BEGIN IMMEDIATE (core.db), which serialises writers. The
version columns of Search and Inquiry catch anything else (StaleDataError → InquiryError).

Every service takes the acting user, requires Permission.edit, writes audit entries in the
same transaction and leaves commit to the caller's unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Mapping, Optional, Sequence

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core import mail_templates as mt
from core import matching
from core import matching_rules as rules
from core.config import Settings, get_settings
from core.formatting import BERLIN, format_date
from core.models import (
    Inquiry,
    InquiryPatient,
    OutboxEmail,
    Patient,
    PhoneCall,
    Search,
    SearchExclusion,
    Therapist,
)
from core.permissions import SYSTEM, Actor, Permission
from core.vocab import (
    CallPurpose,
    CallState,
    EmailState,
    InquiryChannel,
    InquiryMark,
    InquiryOrigin,
    InquiryStatus,
    Outcome,
    ResponseType,
    SearchStatus,
    TherapistStatus,
)

CALL_HOUR = 10  # until calls are planned in phone hours: the next weekday at 10:00


class InquiryError(ValueError):
    """An inquiry action that is not possible; German message, optionally with the reasons
    per search id (and for the therapist) that made a re-check fail."""

    def __init__(
        self, message: str, *, reasons: Optional[Mapping[int, list[str]]] = None,
        therapist_reasons: Sequence[str] = (),
    ):
        super().__init__(message)
        self.reasons = dict(reasons or {})
        self.therapist_reasons = list(therapist_reasons)


def reference(inquiry_id: int) -> str:
    """How an inquiry is named to people (A123), the same as in the e-mails."""
    return mt.inquiry_reference(inquiry_id)


def _settings(settings: Optional[Settings]) -> Settings:
    return settings if settings is not None else get_settings()


def _local_day(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


# =========================================================================== locks and loading


def _lock_ids(session: Session, model, ids: Sequence[int]) -> None:
    """SELECT … FOR UPDATE in id order (PostgreSQL); a no-op on SQLite, where the
    transaction already holds the write lock (BEGIN IMMEDIATE)."""
    ids = sorted(set(ids))
    if ids:
        session.execute(select(model.id).where(model.id.in_(ids)).order_by(model.id).with_for_update()).all()


def _lock_practice(session: Session, therapist: Therapist) -> list[int]:
    members = matching.practice_member_ids(session, therapist.id, therapist.email)
    _lock_ids(session, Therapist, members)
    return members


def _fresh_searches(session: Session, ids: Sequence[int]) -> dict[int, Search]:
    """Search rows locked and re-read (not from the identity map)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(Search).where(Search.id.in_(ids)).order_by(Search.id).with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {s.id: s for s in rows}


def _load_inquiry(session: Session, inquiry_id: int, *, lock: bool = False) -> Inquiry:
    stmt = select(Inquiry).where(Inquiry.id == inquiry_id).options(selectinload(Inquiry.patients))
    if lock:
        stmt = stmt.with_for_update(of=Inquiry).execution_options(populate_existing=True)
    inquiry = session.scalars(stmt).one_or_none()
    if inquiry is None:
        raise InquiryError("Diese Anfrage gibt es nicht (mehr).")
    return inquiry


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise InquiryError(
            "Die Anfrage oder eine Platzsuche wurde inzwischen von jemand anderem geändert – bitte neu laden."
        ) from None


def _active_members(inquiry: Inquiry) -> list[InquiryPatient]:
    return sorted((m for m in inquiry.patients if m.withdrawn_at is None), key=lambda m: m.position)


def _renumber(inquiry: Inquiry) -> None:
    for pos, m in enumerate(sorted(inquiry.patients, key=lambda m: m.position), start=1):
        m.position = pos


def _reasons_message(check: matching.CheckResult) -> str:
    parts = list(check.therapist_reasons)
    bad = {sid: r for sid, r in check.search_reasons.items() if r}
    if bad:
        parts.append(f"{len(bad)} Patient:in(nen) passen nicht (mehr): " + " ".join(r[0] for r in bad.values()))
    return "Die Anfrage lässt sich so nicht erstellen. " + " ".join(parts)


# =========================================================================== create


def create_inquiry(
    session: Session,
    actor: Actor,
    therapist_id: int,
    search_ids: Sequence[int],
    *,
    today: date,
    now: datetime,
    origin: InquiryOrigin = InquiryOrigin.manual,
    plan_region: Optional[str] = None,
    settings: Optional[Settings] = None,
) -> Inquiry:
    """A draft inquiry to `therapist_id` with `search_ids` in this order, after re-checking
    every rule under row locks (therapist and practice, then the searches). Raises
    InquiryError with the reasons when any rule fails; nothing is written then."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    ids = [int(s) for s in search_ids]
    problems = rules.validate_inquiry_size(ids, settings.MAX_INQUIRY_SIZE)
    if problems:
        raise InquiryError(" ".join(problems))
    therapist = session.get(Therapist, therapist_id)
    if therapist is None:
        raise InquiryError("Diese Therapeut:in gibt es nicht (mehr).")
    _lock_practice(session, therapist)
    _lock_ids(session, Search, ids)
    check = matching.check_inquiry(session, therapist_id, ids, today=today, settings=settings)
    if not check.ok:
        raise InquiryError(_reasons_message(check), reasons=check.search_reasons, therapist_reasons=check.therapist_reasons)
    session.refresh(therapist)
    channel = _channel_for(therapist)
    inquiry = Inquiry(
        therapist_id=therapist_id,
        channel=channel,
        status=InquiryStatus.draft,
        origin=origin,
        plan_region=(plan_region or None) and plan_region[:5],
        size=len(ids),
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    inquiry.patients = [InquiryPatient(search_id=sid, position=pos) for pos, sid in enumerate(ids, start=1)]
    session.add(inquiry)
    _flush(session)
    audit.record(
        session, actor, "inquiry.create", "inquiry", inquiry.id,
        {"therapist_id": therapist_id, "search_ids": ids, "origin": origin, "channel": channel}, now=now,
    )
    return inquiry


def _channel_for(therapist: Therapist) -> InquiryChannel:
    if rules.normalise_email(therapist.email):
        return InquiryChannel.email
    if therapist.phone:
        return InquiryChannel.phone
    raise InquiryError(
        f"{therapist.full_name} hat weder E-Mail-Adresse noch Telefonnummer – bitte zuerst die Kontaktdaten ergänzen."
    )


# =========================================================================== send


@dataclass
class SendReport:
    inquiry_id: int
    sent: bool  # handed to the outbox / call scheduled
    channel: Optional[InquiryChannel] = None
    email_id: Optional[int] = None
    call_id: Optional[int] = None
    call_at: Optional[datetime] = None
    dropped: dict[int, list[str]] = field(default_factory=dict)  # search id → reasons
    message: str = ""


def first_call_time(now: datetime) -> datetime:
    """When an inquiry call is put on the list: the next weekday 10:00 (Europe/Berlin)
    until the call planner schedules inside phone hours."""
    from core.outbox import next_weekday_at

    return next_weekday_at(now, CALL_HOUR)


def send_inquiry(
    session: Session, actor: Actor, inquiry_id: int, *, today: date, now: datetime, settings: Optional[Settings] = None
) -> SendReport:
    """Send a draft: re-check its members (ones that no longer qualify are taken out and
    named in the report), then with an e-mail address render the inquiry e-mail into the
    outbox (queued; the inquiry is 'sent' when the mail is delivered), without one put a
    call on the list (the inquiry is 'sent' when the call is made)."""
    from core import outbox

    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    if inquiry.status != InquiryStatus.draft:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits {inquiry.status.label}.")
    therapist = inquiry.therapist
    _lock_practice(session, therapist)
    members = _active_members(inquiry)
    _lock_ids(session, Search, [m.search_id for m in members])
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    if inquiry.status != InquiryStatus.draft:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits {inquiry.status.label}.")
    members = _active_members(inquiry)
    check = matching.check_inquiry(
        session, therapist.id, [m.search_id for m in members], today=today, settings=settings, exclude_inquiry_id=inquiry.id
    )
    if check.therapist_reasons:
        raise InquiryError(
            f"Die Anfrage {reference(inquiry.id)} kann nicht gesendet werden. " + " ".join(check.therapist_reasons),
            therapist_reasons=check.therapist_reasons,
        )
    report = SendReport(inquiry_id=inquiry.id, sent=False)
    for m in members:
        if check.search_reasons.get(m.search_id):
            report.dropped[m.search_id] = check.search_reasons[m.search_id]
            inquiry.patients.remove(m)
    if report.dropped:
        _renumber(inquiry)
        inquiry.size = max(len(inquiry.patients), 1)
        audit.record(
            session, actor, "inquiry.drop_members", "inquiry", inquiry.id,
            {"search_ids": sorted(report.dropped), "why": "re-check before sending"}, now=now,
        )
    if not inquiry.patients:
        _cancel(session, actor, inquiry, now=now, reason="Keine Patient:in passt mehr.")
        report.message = "Keine Patient:in dieser Anfrage passt mehr; die Anfrage wurde storniert."
        _flush(session)
        return report
    session.refresh(therapist)
    channel = _channel_for(therapist)
    inquiry.channel = channel
    inquiry.updated_at = now
    _flush(session)
    if channel == InquiryChannel.email:
        try:
            email = outbox.queue_inquiry_email(session, actor, inquiry.id, now, approve=True, settings=settings)
        except outbox.OutboxError as exc:
            raise InquiryError(str(exc)) from None
        report.email_id = email.id
        report.message = f"Die Anfrage {reference(inquiry.id)} liegt im Postausgang; sie gilt als gesendet, sobald die E-Mail zugestellt ist."
    else:
        call = PhoneCall(
            therapist_id=therapist.id, inquiry_id=inquiry.id, purpose=CallPurpose.inquiry,
            scheduled_start=first_call_time(now), duration_minutes=settings.CALL_SLOT_MINUTES,
            state=CallState.scheduled, attempt=1, created_at=now, updated_at=now,
        )
        session.add(call)
        inquiry.status = InquiryStatus.queued
        inquiry.queued_at = now
        _flush(session)
        audit.record(session, actor, "call.inquiry", "phone_call", call.id, {"inquiry_id": inquiry.id}, now=now)
        report.call_id = call.id
        report.call_at = call.scheduled_start
        report.message = (
            f"Für die Anfrage {reference(inquiry.id)} steht ein Anruf auf der Anrufliste; sie gilt als gesendet, "
            "sobald das Telefonat geführt ist."
        )
    report.sent = True
    report.channel = channel
    audit.record(session, actor, "inquiry.send", "inquiry", inquiry.id, {"channel": channel, "size": inquiry.size}, now=now)
    _flush(session)
    return report


def mark_call_made(session: Session, actor: Actor, inquiry_id: int, *, now: datetime) -> Inquiry:
    """For the call list: the inquiry call was made, so a phone inquiry counts as sent now."""
    actor.require(Permission.edit)
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    if inquiry.channel != InquiryChannel.phone or inquiry.status != InquiryStatus.queued:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} wartet nicht auf einen Anruf.")
    inquiry.status = InquiryStatus.sent
    inquiry.sent_at = now
    inquiry.updated_at = now
    _flush(session)
    audit.record(session, actor, "inquiry.sent", "inquiry", inquiry.id, {"by": "phone"}, now=now)
    return inquiry


# =========================================================================== cancelling


def _cancel_calls(session: Session, inquiry_id: int, *, now: datetime, reason: str) -> int:
    calls = session.scalars(
        select(PhoneCall).where(PhoneCall.inquiry_id == inquiry_id, PhoneCall.state == CallState.scheduled)
    ).all()
    for call in calls:
        call.state = CallState.cancelled
        call.outcome = reason
        call.updated_at = now
    return len(calls)


def _cancel_mails(session: Session, actor: Actor, inquiry_id: int, *, now: datetime, reason: str) -> int:
    from core import outbox

    return outbox.cancel_pending_for_inquiry(session, actor, inquiry_id, now, reason=reason)


def _cancel(session: Session, actor: Actor, inquiry: Inquiry, *, now: datetime, reason: str) -> None:
    mails = _cancel_mails(session, actor, inquiry.id, now=now, reason=reason)
    calls = _cancel_calls(session, inquiry.id, now=now, reason=reason)
    inquiry.status = InquiryStatus.cancelled
    inquiry.cancelled_at = now
    inquiry.updated_at = now
    audit.record(
        session, actor, "inquiry.cancel", "inquiry", inquiry.id,
        {"reason": reason, "mails_cancelled": mails, "calls_cancelled": calls}, now=now,
    )


def cancel_inquiry(session: Session, actor: Actor, inquiry_id: int, *, now: datetime, reason: str = "") -> Inquiry:
    """Cancel an unsent or unanswered inquiry (no cooling; the patients count again)."""
    actor.require(Permission.edit)
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    if inquiry.status not in matching.OPEN_STATUSES:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist {inquiry.status.label} und lässt sich nicht stornieren.")
    if _mail_in_flight(session, inquiry.id):
        raise InquiryError("Die E-Mail dieser Anfrage wird gerade gesendet; bitte gleich noch einmal versuchen.")
    _cancel(session, actor, inquiry, now=now, reason=(reason or "von Hand storniert").strip())
    _flush(session)
    return inquiry


def _mail_in_flight(session: Session, inquiry_id: int) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(OutboxEmail).where(
                OutboxEmail.inquiry_id == inquiry_id,
                OutboxEmail.template == mt.THERAPIST_INQUIRY,
                OutboxEmail.state.in_([EmailState.sending, EmailState.sent]),
            )
        )
    )


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
    from core import outbox

    actor.require(Permission.edit)
    settings = _settings(settings)
    rows = session.execute(
        select(InquiryPatient.id, Inquiry.id)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .where(
            InquiryPatient.search_id == search_id,
            matching.open_member_clause(),
            Inquiry.status.in_(matching.OPEN_STATUSES),
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
            cancelled_mails = _cancel_mails(session, actor, inquiry.id, now=now, reason=reason)
            inquiry.patients.remove(member)
            _renumber(inquiry)
            inquiry.updated_at = now
            how = "dropped"
            if not inquiry.patients:
                if inquiry.origin == InquiryOrigin.nightly and inquiry.status == InquiryStatus.draft:
                    session.delete(inquiry)
                else:
                    _cancel(session, actor, inquiry, now=now, reason="Keine Patient:in mehr in der Anfrage")
                how = "cancelled"
            else:
                inquiry.size = len(inquiry.patients)
                _flush(session)
                if cancelled_mails and inquiry.channel == InquiryChannel.email:
                    try:
                        outbox.queue_inquiry_email(session, actor, inquiry.id, now, approve=was_queued, settings=settings)
                    except outbox.OutboxError as exc:
                        inquiry.needs_attention = True
                        inquiry.attention_reason = f"E-Mail konnte nicht neu erstellt werden: {exc}"
        _flush(session)
        audit.record(
            session, actor, "inquiry.withdraw", "inquiry", inquiry_id,
            {"search_id": search_id, "how": how, "reason": reason}, now=now,
        )
        out.append(Withdrawal(inquiry_id, how))
    return out


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

    def summary(self) -> str:
        parts = [f"Antwort gespeichert ({self.response_type.label})."]
        if self.placed:
            parts.append(f"{len(self.placed)} Patient:in(nen) vermittelt.")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} Konflikt(e): bereits anderweitig vermittelt – bitte klären.")
        n = sum(len(w) for w in self.withdrawals.values())
        if n:
            parts.append(f"Aus {n} anderen Anfrage(n) zurückgezogen.")
        if self.cooling_until:
            parts.append(f"Nächster Kontakt ab {format_date(self.cooling_until)}.")
        return " ".join(parts)


def _start_cooling(session: Session, member_ids: Sequence[int], until: date, now: datetime) -> None:
    for t in session.scalars(select(Therapist).where(Therapist.id.in_(list(member_ids)))).all():
        new = rules.later_cooling(t.next_contact_at, until)
        if new != t.next_contact_at:
            t.next_contact_at = new
            t.updated_at = now


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
) -> AnswerReport:
    """Record the therapist's answer: `outcomes` maps each (not withdrawn) member's search id
    to accepted / rejected_capacity / rejected_unsuitable / rejected_other / no_response.

    One transaction: the outcomes, the response type from them, cooling of the therapist and
    its practice (answer date + COOLING_WEEKS), placement on the first acceptance (a later
    acceptance of a placed patient becomes a conflict and never overwrites), withdrawal of a
    placed patient from every other open inquiry, the exclusion after 'nicht geeignet', and
    the cancellation of this inquiry's pending calls and reminder mails."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    therapist = inquiry.therapist
    practice = _lock_practice(session, therapist)
    _lock_ids(session, Search, [m.search_id for m in inquiry.patients])
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    phone_pending = inquiry.channel == InquiryChannel.phone and inquiry.status == InquiryStatus.queued
    if inquiry.status == InquiryStatus.answered:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits beantwortet.")
    # late answers: after expiry, or after a sent inquiry was cancelled because every patient
    # in it was placed elsewhere (the therapist saw them; acceptances become conflicts)
    late = inquiry.status == InquiryStatus.expired or (
        inquiry.status == InquiryStatus.cancelled and inquiry.sent_at is not None
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
    _cancel_mails(session, actor, inquiry.id, now=now, reason="Anfrage beantwortet")
    _cancel_calls(session, inquiry.id, now=now, reason="Anfrage beantwortet")
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
    inquiry = _load_inquiry(session, inquiry_id)
    _lock_ids(session, Search, [search_id])
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
    for inquiry_id in ids:
        inquiry = _load_inquiry(session, inquiry_id)
        practice = _lock_practice(session, inquiry.therapist)
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
        _cancel_mails(session, actor, inquiry.id, now=now, reason="Anfrage abgelaufen")
        _cancel_calls(session, inquiry.id, now=now, reason="Anfrage abgelaufen")
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
    from core import outbox
    from core.searches import SearchAction, SearchError, change_search

    actor.require(Permission.edit)
    settings = _settings(settings)
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
        template = mt.PATIENT_PLACE_FOUND_EMAIL if rules.normalise_email(therapist.email) else mt.PATIENT_PLACE_FOUND_PHONE
        try:
            email = outbox.queue_patient_email(
                session, actor, patient.id, template, now, therapist_id=therapist_id, approve=True, settings=settings
            )
            email_id = email.id
            message = "Erfolg bestätigt; die E-Mail an die Patient:in liegt im Postausgang."
        except outbox.OutboxError as exc:
            message = f"Erfolg bestätigt, aber die E-Mail an die Patient:in ließ sich nicht erstellen: {exc}"
    _flush(session)
    audit.record(
        session, actor, "search.success_confirmed", "search", search_id,
        {"therapist_id": therapist_id, "email_id": email_id}, now=now,
    )
    return SuccessReport(search_id=search_id, therapist_id=therapist_id, email_id=email_id, message=message)


# =========================================================================== queries for the page

INQUIRY_FILTERS: dict[str, str] = {
    "open": "Offen (alle)",
    "unsent": "Ungesendet",
    "awaiting": "Warten auf Antwort",
    "follow_up": InquiryMark.follow_up_due.label,
    "answered": InquiryStatus.answered.label,
    "expired": InquiryStatus.expired.label,
    "reduced": InquiryMark.reduced.label,
    "conflicts": "Konflikte",
    "attention": InquiryMark.needs_attention.label,
    "all": "Alle",
}


def _filter_clause(key: str, *, now: datetime, settings: Settings):
    not_nightly_draft = ~and_(Inquiry.status == InquiryStatus.draft, Inquiry.origin == InquiryOrigin.nightly)
    open_conflict = exists().where(
        InquiryPatient.inquiry_id == Inquiry.id, InquiryPatient.conflict.is_(True), InquiryPatient.conflict_resolved_at.is_(None)
    )
    return {
        "open": matching.open_inquiry_clause(),
        "unsent": and_(Inquiry.status.in_([InquiryStatus.draft, InquiryStatus.queued]), not_nightly_draft),
        "awaiting": Inquiry.status == InquiryStatus.sent,
        "follow_up": and_(
            Inquiry.status == InquiryStatus.sent, Inquiry.sent_at <= now - timedelta(days=settings.FOLLOW_UP_DAYS)
        ),
        "answered": Inquiry.status == InquiryStatus.answered,
        "expired": Inquiry.status == InquiryStatus.expired,
        "reduced": Inquiry.reduced.is_(True),
        "conflicts": open_conflict,
        "attention": Inquiry.needs_attention.is_(True),
        "all": not_nightly_draft,
    }[key]


@dataclass(frozen=True)
class InquiryRow:
    id: int
    reference: str
    therapist_id: int
    therapist_name: str
    therapist_plz: Optional[str]
    channel: InquiryChannel
    status: InquiryStatus
    origin: InquiryOrigin
    size: int
    created_at: datetime
    sent_at: Optional[datetime]
    days_since_sent: Optional[int]
    answered_at: Optional[datetime]
    response_type: Optional[ResponseType]
    reduced: bool
    needs_attention: bool
    follow_up_due: bool
    members_text: str  # "2 ausstehend, 1 angenommen"


def inquiry_counts(session: Session, actor: Actor, *, now: datetime, settings: Optional[Settings] = None) -> dict[str, int]:
    actor.require(Permission.view)
    settings = _settings(settings)
    return {
        key: session.scalar(select(func.count()).select_from(Inquiry).where(_filter_clause(key, now=now, settings=settings))) or 0
        for key in INQUIRY_FILTERS
    }


def list_inquiries(
    session: Session, actor: Actor, *, filter_key: str = "open", now: datetime, therapist_id: Optional[int] = None,
    offset: int = 0, limit: int = 50, settings: Optional[Settings] = None,
) -> tuple[list[InquiryRow], int]:
    """One page of inquiries (newest activity first) and the filter's total."""
    actor.require(Permission.view)
    settings = _settings(settings)
    if filter_key not in INQUIRY_FILTERS:
        filter_key = "open"
    stmt = select(Inquiry, Therapist).join(Therapist, Therapist.id == Inquiry.therapist_id).where(
        _filter_clause(filter_key, now=now, settings=settings)
    )
    if therapist_id is not None:
        stmt = stmt.where(Inquiry.therapist_id == therapist_id)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Inquiry.id).subquery())) or 0
    order = func.coalesce(Inquiry.answered_at, Inquiry.sent_at, Inquiry.queued_at, Inquiry.created_at)
    page = session.execute(
        stmt.order_by(order.desc(), Inquiry.id.desc()).offset(max(0, offset)).limit(max(1, min(limit, 500)))
    ).all()
    ids = [i.id for i, _ in page]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for inquiry_id, outcome, withdrawn, conflict, n in session.execute(
            select(
                InquiryPatient.inquiry_id, InquiryPatient.outcome, InquiryPatient.withdrawn_at.is_not(None),
                InquiryPatient.conflict, func.count(),
            )
            .where(InquiryPatient.inquiry_id.in_(ids))
            .group_by(
                InquiryPatient.inquiry_id, InquiryPatient.outcome, InquiryPatient.withdrawn_at.is_not(None),
                InquiryPatient.conflict,
            )
        ):
            label = InquiryMark.withdrawn.label if withdrawn else Outcome(outcome).label
            counts[inquiry_id][label] = counts[inquiry_id].get(label, 0) + n
            if conflict:
                counts[inquiry_id][InquiryMark.conflict.label] = counts[inquiry_id].get(InquiryMark.conflict.label, 0) + n
    rows = []
    for inquiry, t in page:
        rows.append(
            InquiryRow(
                id=inquiry.id,
                reference=reference(inquiry.id),
                therapist_id=t.id,
                therapist_name=t.full_name,
                therapist_plz=t.plz,
                channel=inquiry.channel,
                status=inquiry.status,
                origin=inquiry.origin,
                size=inquiry.size,
                created_at=inquiry.created_at,
                sent_at=inquiry.sent_at,
                days_since_sent=rules.days_since(inquiry.sent_at, now) if inquiry.status == InquiryStatus.sent else None,
                answered_at=inquiry.answered_at,
                response_type=inquiry.response_type,
                reduced=inquiry.reduced,
                needs_attention=inquiry.needs_attention,
                follow_up_due=inquiry.status == InquiryStatus.sent
                and rules.follow_up_due(inquiry.sent_at, now, settings.FOLLOW_UP_DAYS),
                members_text=", ".join(f"{n} {label}" for label, n in sorted(counts[inquiry.id].items())),
            )
        )
    return rows, total


@dataclass(frozen=True)
class MemberRow:
    member_id: int
    position: int
    search_id: int
    patient_id: int
    patient_name: str
    plz: Optional[str]
    age: Optional[int]  # None for roles without view_sensitive
    waiting_days: Optional[int]
    outcome: Outcome
    withdrawn_at: Optional[datetime]
    withdrawn_reason: Optional[str]
    conflict: bool
    conflict_resolved_at: Optional[datetime]
    conflict_note: Optional[str]
    placed_here: bool
    search_status: SearchStatus
    placed_elsewhere: bool

    @property
    def status_text(self) -> str:
        if self.withdrawn_at is not None:
            return InquiryMark.withdrawn.label
        text = self.outcome.label
        if self.conflict:
            mark = InquiryMark.conflict_resolved if self.conflict_resolved_at else InquiryMark.conflict
            text += f" – {mark.label}"
        elif self.placed_here:
            text += f" – {InquiryMark.placed.label}"
        return text


@dataclass
class InquiryDetail:
    row: InquiryRow
    therapist_email: Optional[str]
    therapist_phone: Optional[str]
    members: list[MemberRow]
    attention_reason: Optional[str]
    calls: list[tuple[datetime, CallState, CallPurpose]]
    email_state: Optional[EmailState]
    can_send: bool
    can_answer: bool
    can_cancel: bool


def inquiry_detail(
    session: Session, actor: Actor, inquiry_id: int, *, today: date, now: datetime, settings: Optional[Settings] = None
) -> InquiryDetail:
    actor.require(Permission.view)
    settings = _settings(settings)
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise InquiryError("Diese Anfrage gibt es nicht (mehr).")
    rows, _ = list_inquiries(session, actor, filter_key="all", now=now, therapist_id=inquiry.therapist_id, limit=500, settings=settings)
    row = next((r for r in rows if r.id == inquiry_id), None)
    if row is None:  # an unapproved nightly draft
        t = inquiry.therapist
        row = InquiryRow(
            id=inquiry.id, reference=reference(inquiry.id), therapist_id=t.id, therapist_name=t.full_name,
            therapist_plz=t.plz, channel=inquiry.channel, status=inquiry.status, origin=inquiry.origin, size=inquiry.size,
            created_at=inquiry.created_at, sent_at=None, days_since_sent=None, answered_at=None, response_type=None,
            reduced=False, needs_attention=False, follow_up_due=False, members_text="",
        )
    show = actor.can(Permission.view_sensitive)
    data = session.execute(
        select(InquiryPatient, Search, Patient)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Patient, Patient.id == Search.patient_id)
        .where(InquiryPatient.inquiry_id == inquiry_id)
        .order_by(InquiryPatient.position)
    ).all()
    members = [
        MemberRow(
            member_id=m.id, position=m.position, search_id=s.id, patient_id=p.id,
            patient_name=f"{p.first_name} {p.last_name}", plz=p.plz,
            age=rules.age_on(p.birth_date, today) if show else None,
            waiting_days=(today - s.started_on).days if s.status in (SearchStatus.active, SearchStatus.paused) else None,
            outcome=m.outcome, withdrawn_at=m.withdrawn_at, withdrawn_reason=m.withdrawn_reason, conflict=m.conflict,
            conflict_resolved_at=m.conflict_resolved_at, conflict_note=m.conflict_note,
            placed_here=s.placed_therapist_id == inquiry.therapist_id, search_status=s.status,
            placed_elsewhere=s.placed_therapist_id is not None and s.placed_therapist_id != inquiry.therapist_id,
        )
        for m, s, p in data
    ]
    calls = [
        (c.scheduled_start, c.state, c.purpose)
        for c in session.scalars(select(PhoneCall).where(PhoneCall.inquiry_id == inquiry_id).order_by(PhoneCall.scheduled_start))
    ]
    email_state = session.scalar(
        select(OutboxEmail.state).where(OutboxEmail.inquiry_id == inquiry_id, OutboxEmail.template == mt.THERAPIST_INQUIRY)
        .order_by(OutboxEmail.id.desc()).limit(1)
    )
    t = inquiry.therapist
    phone_pending = inquiry.channel == InquiryChannel.phone and inquiry.status == InquiryStatus.queued
    return InquiryDetail(
        row=row,
        therapist_email=t.email if show else None,
        therapist_phone=t.phone if show else None,
        members=members,
        attention_reason=inquiry.attention_reason,
        calls=calls,
        email_state=email_state,
        can_send=inquiry.status == InquiryStatus.draft,
        can_answer=inquiry.status in (InquiryStatus.sent, InquiryStatus.expired) or phone_pending
        or (inquiry.status == InquiryStatus.cancelled and inquiry.sent_at is not None),
        can_cancel=inquiry.status in matching.OPEN_STATUSES,
    )


def placed_searches(session: Session, actor: Actor, *, limit: int = 200) -> list[tuple[int, str, int, str, date]]:
    """Active searches with a placement waiting for the success confirmation:
    (search id, patient name, therapist id, therapist name, placed on), oldest first."""
    actor.require(Permission.view)
    rows = session.execute(
        select(Search.id, Patient.first_name, Patient.last_name, Therapist.id, Therapist.title, Therapist.first_name,
               Therapist.last_name, Search.placed_on)
        .join(Patient, Patient.id == Search.patient_id)
        .join(Therapist, Therapist.id == Search.placed_therapist_id)
        .where(Search.status == SearchStatus.active, Search.placed_therapist_id.is_not(None))
        .order_by(Search.placed_on, Search.id)
        .limit(limit)
    ).all()
    return [
        (r[0], f"{r[1]} {r[2]}", r[3], " ".join(p for p in (r[4], r[5], r[6]) if p), r[7]) for r in rows
    ]


ACTION_LABELS = {
    "inquiry.create": "Anfrage erstellt",
    "inquiry.send": "Anfrage gesendet",
    "inquiry.sent": "Anfrage zugestellt",
    "inquiry.drop_members": "Patient:innen aus Anfrage genommen",
    "inquiry.cancel": "Anfrage storniert",
    "inquiry.withdraw": "Patient:in aus Anfrage zurückgezogen",
    "inquiry.answer": "Antwort erfasst",
    "inquiry.conflict": "Konflikt: doppelte Zusage",
    "inquiry.resolve_conflict": "Konflikt gelöst",
    "inquiry.later_outcome": "Ergebnis nach Zusage erfasst",
    "inquiry.expire": "Anfrage abgelaufen",
    "search.placed": "Patient:in vermittelt",
    "search.exclude": "Therapeut:in für Platzsuche ausgeschlossen",
    "search.success_confirmed": "Erfolg bestätigt",
    "call.inquiry": "Anruf für Anfrage geplant",
    "plan.nightly": "Vorschläge der Nacht vorbereitet",
    "plan.approve": "Vorschläge freigegeben",
}
