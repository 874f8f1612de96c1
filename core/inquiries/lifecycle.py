"""Inquiry life cycle: create with a re-check under row locks, send (outbox or call), cancel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional, Sequence
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from core.platform import audit, events
from core.mail import templates as mt
from core.matching import eligibility
from core.matching import regions
from core.matching import rules
from core.platform.config import Settings
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import EmailState, InquiryChannel, InquiryOrigin, InquiryStatus
from core.inquiries.loading import InquiryError, _active_members, _flush, _load_inquiry, _practice_ids, _reasons_message, _renumber, _settings, reference
from core.platform.locks import lock_rows
from core.mail import outbox
from core.mail import rules as mail_rules
from core.platform.addresses import normalise_email


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
    lock_rows(session, therapists=_practice_ids(session, therapist), searches=ids)
    check = eligibility.check_inquiry(session, therapist_id, ids, today=today, settings=settings)
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
    if channel == InquiryChannel.email and origin != InquiryOrigin.nightly:
        # The draft inquiry is a draft mail in Postausgang › Entwürfe with its preview, so the
        # two places agree (nightly suggestions get their mail when they are approved).
        try:
            outbox.queue_inquiry_email(session, actor, inquiry.id, now, approve=False, settings=settings)
        except mail_rules.OutboxError as exc:
            raise InquiryError(str(exc)) from None
    return inquiry


def _channel_for(therapist: Therapist) -> InquiryChannel:
    if normalise_email(therapist.email):
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


def send_inquiry(
    session: Session, actor: Actor, inquiry_id: int, *, today: date, now: datetime, settings: Optional[Settings] = None
) -> SendReport:
    """Send a draft: re-check its members (ones that no longer qualify are taken out and
    named in the report), then with an e-mail address render the inquiry e-mail into the
    outbox (queued; the inquiry is 'sent' when the mail is delivered), without one put a
    call on the list (the inquiry is 'sent' when the call is made)."""

    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    if inquiry.status != InquiryStatus.draft:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits {inquiry.status.label}.")
    therapist = inquiry.therapist
    lock_rows(
        session, therapists=_practice_ids(session, therapist), inquiries=[inquiry.id],
        searches=[m.search_id for m in _active_members(inquiry)],
    )
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    if inquiry.status != InquiryStatus.draft:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist bereits {inquiry.status.label}.")
    members = _active_members(inquiry)
    check = eligibility.check_inquiry(
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
            draft = outbox.inquiry_draft(session, inquiry.id)
            if draft is not None and report.dropped:  # the draft names patients no longer in it
                outbox.cancel(session, actor, draft.id, now, reason="Anfrage vor dem Senden verkleinert")
                draft = None
            if draft is not None:  # the draft from Postausgang (perhaps edited) goes out as it is
                email = outbox.approve(session, actor, draft.id, now, settings=settings)
            else:
                email = outbox.queue_inquiry_email(session, actor, inquiry.id, now, approve=True, settings=settings)
        except mail_rules.OutboxError as exc:
            raise InquiryError(str(exc)) from None
        report.email_id = email.id
        report.message = f"Die Anfrage {reference(inquiry.id)} liegt im Postausgang; sie gilt als gesendet, sobald die E-Mail zugestellt ist."
    else:
        inquiry.status = InquiryStatus.queued
        inquiry.queued_at = now
        _flush(session)
        # the calls capability plans the call in the therapist's phone hours (core.calls.handlers)
        results = events.publish(
            session, events.PhoneInquiryQueued(actor=actor, now=now, inquiry_id=inquiry.id, therapist_id=therapist.id)
        )
        planned = next((r for r in results if isinstance(r, dict) and "call_id" in r), {})
        report.call_id = planned.get("call_id")
        report.call_at = planned.get("call_at")
        if report.call_id is not None:
            report.message = (
                f"Für die Anfrage {reference(inquiry.id)} steht ein Anruf auf der Anrufliste; sie gilt als gesendet, "
                "sobald das Telefonat geführt ist."
            )
        else:
            why = planned.get("reason") or "kein Termin frei"
            report.message = (
                f"Die Anfrage {reference(inquiry.id)} wartet auf einen Anruf, es ist aber keiner geplant ({why}); "
                "sie ist als „braucht Aufmerksamkeit“ markiert."
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
    events.publish(session, events.PhoneInquiryCalled(actor=actor, now=now, inquiry_id=inquiry.id))
    return inquiry


# =========================================================================== cancelling


def _cancel(session: Session, actor: Actor, inquiry: Inquiry, *, now: datetime, reason: str) -> None:
    """Cancel an open inquiry; its pending mails and calls end through the InquiryClosed
    handlers of their capabilities (same transaction)."""
    inquiry.status = InquiryStatus.cancelled
    inquiry.cancelled_at = now
    inquiry.updated_at = now
    consequences = close_consequences(session, actor, inquiry, now=now, reason=reason)
    audit.record(session, actor, "inquiry.cancel", "inquiry", inquiry.id, {"reason": reason, **consequences}, now=now)


def cancel_inquiry(session: Session, actor: Actor, inquiry_id: int, *, now: datetime, reason: str = "") -> Inquiry:
    """Cancel an unsent or unanswered inquiry (no cooling; the patients count again). A
    delivered e-mail inquiry can be cancelled too: its pending reminders and calls end,
    the delivered mail stays delivered. Only while its mail is being handed to the SMTP
    server (state sending) the answer is "try again in a moment"."""
    actor.require(Permission.edit)
    inquiry = _load_inquiry(session, inquiry_id, lock=True)
    if inquiry.status not in regions.OPEN_STATUSES:
        raise InquiryError(f"Die Anfrage {reference(inquiry.id)} ist {inquiry.status.label} und lässt sich nicht stornieren.")
    if _mail_in_flight(session, inquiry.id, states=(EmailState.sending,)):
        raise InquiryError("Die E-Mail dieser Anfrage wird gerade gesendet; bitte gleich noch einmal versuchen.")
    _cancel(session, actor, inquiry, now=now, reason=(reason or "von Hand storniert").strip())
    _flush(session)
    return inquiry


def close_consequences(session: Session, actor: Actor, inquiry: Inquiry, *, now: datetime, reason: str) -> dict:
    """Publish InquiryClosed for an inquiry that just stopped being open; returns what the
    handlers did (e.g. {"mails_cancelled": 1, "calls_cancelled": 0}) for the audit entry."""
    results = events.publish(
        session,
        events.InquiryClosed(
            actor=actor, now=now, inquiry_id=inquiry.id, therapist_id=inquiry.therapist_id,
            status=inquiry.status.value, reason=reason,
        ),
    )
    merged: dict = {}
    for result in results:
        if isinstance(result, dict):
            for key, value in result.items():
                merged[key] = merged.get(key, 0) + value
    return merged


def _mail_in_flight(
    session: Session, inquiry_id: int, *, states: Sequence[EmailState] = (EmailState.sending, EmailState.sent)
) -> bool:
    """Whether the inquiry's e-mail is being handed to SMTP or already was (`states`)."""
    return bool(
        session.scalar(
            select(func.count()).select_from(OutboxEmail).where(
                OutboxEmail.inquiry_id == inquiry_id,
                OutboxEmail.template == mt.THERAPIST_INQUIRY,
                OutboxEmail.state.in_(list(states)),
            )
        )
    )


