"""What the Posteingang page shows: tabs with counts, a page of rows, one message in detail
(bodies only for roles that may see health data), the replies of an inquiry, and the number of
replies waiting to be recorded (Übersicht)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.inbox import prefill
from core.inbox.services import InboxError, therapist_address_invalid
from core.inquiries import views as inquiry_views
from core.inquiries.loading import InquiryError
from core.platform.config import Settings, get_settings
from core.platform.models import InboxMessage, Inquiry, InvalidEmailAddress, Patient, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.vocab import InboxKind, InboxMatch, InboxState, InquiryStatus, Outcome

TABS: dict[str, str] = {
    "new": "Neu",
    "assigned": "Zugeordnet",
    "unassigned": "Nicht zugeordnet",
    "bounces": "Rückläufer",
    "all": "Alle",
}


def _tab_clause(tab: str):
    not_bounce = InboxMessage.kind != InboxKind.bounce
    matched = or_(InboxMessage.inquiry_id.is_not(None), InboxMessage.patient_id.is_not(None))
    if tab == "new":
        return and_(InboxMessage.state == InboxState.new, not_bounce)
    if tab == "assigned":
        return and_(matched, not_bounce)
    if tab == "unassigned":
        return and_(~matched, not_bounce, InboxMessage.state == InboxState.new)
    if tab == "bounces":
        return InboxMessage.kind == InboxKind.bounce
    if tab == "all":
        return True
    raise InboxError(f"Unbekannter Bereich {tab!r}.")


def inbox_counts(session: Session, actor: Actor) -> dict[str, int]:
    actor.require(Permission.view)
    return {tab: int(session.scalar(select(func.count(InboxMessage.id)).where(_tab_clause(tab))) or 0) for tab in TABS}


def replies_waiting(session: Session, actor: Actor) -> int:
    """Replies on an inquiry whose answer has not been recorded yet (for the Übersicht)."""
    actor.require(Permission.view)
    return int(session.scalar(
        select(func.count(InboxMessage.id)).join(Inquiry, Inquiry.id == InboxMessage.inquiry_id).where(
            InboxMessage.state.in_((InboxState.new, InboxState.assigned)),
            InboxMessage.kind.in_((InboxKind.reply, InboxKind.other)),
            Inquiry.status.in_((InquiryStatus.sent, InquiryStatus.expired)),
        )
    ) or 0)


@dataclass(frozen=True)
class InboxRow:
    id: int
    received_at: datetime
    sent_at: Optional[datetime]
    sender: str  # the therapist's/patient's name when known; the address only for who may see contacts
    subject: str
    kind: InboxKind
    state: InboxState
    match: InboxMatch
    reference: str  # "A253", "P17" or ""
    inquiry_id: Optional[int]
    patient_id: Optional[int]
    therapist_id: Optional[int]
    attachments: int
    return_date: Optional[date]
    bounce_status: Optional[str]
    reject_reason: Optional[str]

    @property
    def reference_text(self) -> str:
        return self.reference or InboxMatch.none.label


def _name(title: Optional[str], first: Optional[str], last: Optional[str]) -> str:
    return " ".join(p for p in (title, first, last) if p)


def _rows(session: Session, actor: Actor, stmt) -> list[InboxRow]:
    show_contact = actor.can(Permission.view_sensitive)
    data = session.execute(
        stmt.add_columns(Therapist.title, Therapist.first_name, Therapist.last_name, Patient.first_name, Patient.last_name)
        .outerjoin(Therapist, Therapist.id == InboxMessage.therapist_id)
        .outerjoin(Patient, Patient.id == InboxMessage.patient_id)
    ).all()
    rows = []
    for m, t_title, t_first, t_last, p_first, p_last in data:
        known = _name(t_title, t_first, t_last) if m.therapist_id else (_name(None, p_first, p_last) if m.patient_id else "")
        if show_contact:
            sender = f"{known} <{m.from_address}>" if known and m.from_address else (known or m.from_name or m.from_address)
        else:
            sender = known or "(unbekannt)"
        reference = f"A{m.inquiry_id}" if m.inquiry_id else (f"P{m.patient_id}" if m.patient_id else "")
        rows.append(InboxRow(
            id=m.id, received_at=m.received_at, sent_at=m.sent_at, sender=sender, subject=m.subject,
            kind=m.kind, state=m.state, match=m.match, reference=reference, inquiry_id=m.inquiry_id,
            patient_id=m.patient_id, therapist_id=m.therapist_id, attachments=len(m.attachments or []),
            return_date=m.return_date, bounce_status=m.bounce_status, reject_reason=m.reject_reason,
        ))
    return rows


def list_messages(session: Session, actor: Actor, tab: str = "new", *, limit: int = 50, offset: int = 0
                  ) -> tuple[list[InboxRow], int]:
    """One page of a tab, newest first, and the tab's total."""
    actor.require(Permission.view)
    clause = _tab_clause(tab)
    total = int(session.scalar(select(func.count(InboxMessage.id)).where(clause)) or 0)
    stmt = (select(InboxMessage).where(clause).order_by(InboxMessage.received_at.desc(), InboxMessage.id.desc())
            .limit(max(1, min(limit, 500))).offset(max(0, offset)))
    return _rows(session, actor, stmt), total


def replies_for_inquiry(session: Session, actor: Actor, inquiry_id: int) -> list[InboxRow]:
    """The mails received about one inquiry, in the order they arrived."""
    actor.require(Permission.view)
    stmt = select(InboxMessage).where(InboxMessage.inquiry_id == inquiry_id).order_by(InboxMessage.received_at, InboxMessage.id)
    return _rows(session, actor, stmt)


@dataclass(frozen=True)
class AnswerMember:
    search_id: int
    position: int
    patient_name: str
    withdrawn: bool


@dataclass
class InboxDetail:
    row: InboxRow
    can_see_body: bool
    from_address: str
    body_text: str
    quoted_text: str
    body_html: str
    attachments: list[dict]
    warnings: list[str]
    bounce_recipient: Optional[str]
    bounce_diagnostic: Optional[str]
    address_invalid: Optional[str]  # why the sender's therapist address is flagged
    can_edit: bool
    can_record: bool
    answer_members: list[AnswerMember] = field(default_factory=list)
    suggested: dict[int, Outcome] = field(default_factory=dict)
    inquiry_status_text: str = ""


def message_detail(session: Session, actor: Actor, inbox_id: int, *, today: date, now: datetime,
                   settings: Optional[Settings] = None) -> InboxDetail:
    actor.require(Permission.view)
    m = session.get(InboxMessage, inbox_id)
    if m is None:
        raise InboxError("Diese Nachricht gibt es nicht (mehr).")
    row = _rows(session, actor, select(InboxMessage).where(InboxMessage.id == inbox_id))[0]
    sensitive = actor.can(Permission.view_sensitive)
    members: list[AnswerMember] = []
    status_text = ""
    can_record = False
    if m.inquiry_id is not None and m.kind in (InboxKind.reply, InboxKind.other) and m.state != InboxState.recorded:
        try:
            d = inquiry_views.inquiry_detail(session, actor, m.inquiry_id, today=today, now=now, settings=settings)
        except InquiryError:
            d = None
        if d is not None:
            status_text = d.row.status.label
            can_record = d.can_answer and actor.can(Permission.edit)
            members = [
                AnswerMember(x.search_id, x.position, x.patient_name, x.withdrawn_at is not None)
                for x in d.members
                if (x.withdrawn_at is None and x.outcome in (Outcome.pending, Outcome.no_response))
                or (x.withdrawn_at is not None and x.outcome == Outcome.pending)
            ]
    suggested = prefill.suggested_outcomes(m.body_text, [a.search_id for a in members if not a.withdrawn]) if sensitive else {}
    return InboxDetail(
        row=row, can_see_body=sensitive, from_address=m.from_address if sensitive else "",
        body_text=m.body_text if sensitive else "", quoted_text=m.quoted_text if sensitive else "",
        body_html=m.body_html if sensitive else "", attachments=list(m.attachments or []) if sensitive else [],
        warnings=list(m.warnings or []), bounce_recipient=m.bounce_recipient if sensitive else None,
        bounce_diagnostic=m.bounce_diagnostic if sensitive else None,
        address_invalid=therapist_address_invalid(session, m.therapist_id) if m.therapist_id else None,
        can_edit=actor.can(Permission.edit) and m.state not in (InboxState.recorded,),
        can_record=can_record and bool(members), answer_members=members if sensitive else [],
        suggested=suggested, inquiry_status_text=status_text,
    )


def invalid_address_count(session: Session, actor: Actor) -> int:
    actor.require(Permission.view)
    return int(session.scalar(select(func.count(InvalidEmailAddress.id)).where(InvalidEmailAddress.cleared_at.is_(None))) or 0)


def mailbox_text(settings: Optional[Settings] = None) -> Optional[str]:
    """None when the mailbox is configured; else how to switch the Posteingang on."""
    settings = settings or get_settings()
    if settings.inbox_enabled:
        return None
    return ("Der Posteingang ist nicht eingerichtet. Zum Einschalten in der Umgebung (oder .env) setzen: "
            "IMAP_HOST, IMAP_PORT (993), IMAP_SECURITY (ssl oder starttls), IMAP_USER, IMAP_PASSWORD, "
            "IMAP_FOLDER (INBOX) und IMAP_PROCESSED_FOLDER (Verarbeitet). Der Hintergrunddienst holt die "
            "Nachrichten dann alle paar Minuten ab.")


def mailbox_description(settings: Optional[Settings] = None) -> str:
    settings = settings or get_settings()
    return (f"Postfach {settings.IMAP_USER} auf {settings.IMAP_HOST}:{settings.IMAP_PORT} "
            f"({settings.IMAP_SECURITY}), Ordner {settings.IMAP_FOLDER} → {settings.IMAP_PROCESSED_FOLDER}")
