"""Outbox services: creating mails (inquiry, reminder, thanks, patient), approval, editing, cancelling, retry and resend."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Mapping, Optional, Sequence
from sqlalchemy import Row, and_, bindparam, case, func, or_, select, tuple_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm import Session, selectinload
from core.platform import audit
from core.mail import templates as mt
from core.platform.addresses import KEYS_PER_LOOKUP, email_key, normalise_email
from core.platform.config import Settings, get_settings
from core.platform.locks import lock_rows
from core.platform.formatting import BERLIN
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, Search, Therapist, TherapistDocument
from core.platform.permissions import Actor, Permission
from core.platform.vocab import EmailState, InquiryChannel, InquiryStatus, SearchStatus
from core.mail.rules import OutboxError, PATIENT_TEMPLATES, _INQUIRY_OPEN_FOR, earliest_send_time, split_signature
from core.platform.vocab import Outcome


# =========================================================================== helpers


def _settings(settings: Optional[Settings]) -> Settings:
    return settings if settings is not None else get_settings()


def _local_date(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


def _lock_emails(session: Session, email_ids: Sequence[int]) -> None:
    """Lock mails for a change in the global order (core.platform.locks): their inquiries
    first (approving or cancelling an inquiry mail moves the inquiry on), then the mails."""
    ids = sorted({int(i) for i in email_ids})
    if not ids:
        return
    inquiry_ids = session.scalars(
        select(OutboxEmail.inquiry_id).where(OutboxEmail.id.in_(ids), OutboxEmail.inquiry_id.is_not(None))
    ).all()
    lock_rows(session, inquiries=inquiry_ids)
    session.execute(
        select(OutboxEmail.id).where(OutboxEmail.id.in_(ids)).order_by(OutboxEmail.id).with_for_update(key_share=True)
    ).all()


def _get_email(session: Session, email_id: int, *, for_update: bool = False) -> OutboxEmail:
    if for_update:
        _lock_emails(session, [email_id])
    stmt = select(OutboxEmail).where(OutboxEmail.id == email_id).execution_options(populate_existing=True)
    email = session.scalars(stmt).one_or_none()
    if email is None:
        raise OutboxError("Diese E-Mail gibt es nicht (mehr).")
    return email


def _validate_address(address: Optional[str], who: str) -> str:

    if not address or not address.strip():
        raise OutboxError(f"{who} hat keine E-Mail-Adresse.")
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise OutboxError(f"Die E-Mail-Adresse von {who} ist ungültig: {address}") from None


def mailboxes_members(session: Session, addresses: Iterable[Optional[str]]) -> dict[str, list[int]]:
    """The therapist records whose mails go to each mailbox (everyone whose normalised
    e-mail it is), in id order: {normalised address: therapist ids}, one query for all. The
    weekly limit counts mails to one mailbox together, whichever of these records they are for."""
    keys = sorted({k for k in (normalise_email(a) for a in addresses) if k})
    result: dict[str, list[int]] = {k: [] for k in keys}
    stmt = select(Therapist.id, email_key().label("key")).where(email_key().in_(bindparam("keys", expanding=True)))
    for start in range(0, len(keys), KEYS_PER_LOOKUP):  # probes of ix_therapists_email_key
        for therapist_id, key in session.execute(stmt, {"keys": keys[start : start + KEYS_PER_LOOKUP]}):
            if key in result:
                result[key].append(therapist_id)
    return {k: sorted(v) for k, v in result.items()}


def mailbox_mails(session: Session, members: Mapping[str, Sequence[int]], *conditions) -> dict[str, list[Row]]:
    """Therapist mails to each mailbox ({normalised address: member therapist ids}: mails
    by one of the members to that address; the members narrow the search to the index on
    therapist_id, sent_at) that meet `conditions`, in one query for all of them: {address:
    rows of id, therapist_id, state, sent_at, next_attempt_at, lease_expires_at}."""
    result: dict[str, list[Row]] = {k: [] for k in members}
    wanted = {k: set(ids) for k, ids in members.items()}
    therapist_ids = sorted({t for ids in members.values() for t in ids})
    if not therapist_ids:
        return result
    key = email_key(OutboxEmail.to_address)
    rows = session.execute(
        select(
            OutboxEmail.id, OutboxEmail.therapist_id, key.label("key"), OutboxEmail.state, OutboxEmail.sent_at,
            OutboxEmail.next_attempt_at, OutboxEmail.lease_expires_at,
        ).where(OutboxEmail.therapist_id.in_(therapist_ids), key.in_(sorted(members)), *conditions)
    ).all()
    for row in rows:
        if row.therapist_id in wanted.get(row.key, ()):
            result[row.key].append(row)
    return result


class _MailboxSchedule:
    """What the weekly limit must keep mails being queued together apart from: per mailbox
    (normalised recipient address, any therapist record), the other therapist mails sent
    within the interval or waiting; read once for all the mails, then kept up to date as
    each is queued."""

    def __init__(self, session: Session, emails: Sequence[OutboxEmail], *, now: datetime, interval_days: int):
        self._now = now
        ours = [e for e in emails if e.therapist_id is not None and normalise_email(e.to_address)]
        self._members = mailboxes_members(session, [e.to_address for e in ours])
        wanted = {k: set(ids) for k, ids in self._members.items()}
        for e in ours:
            wanted[normalise_email(e.to_address)].add(e.therapist_id)
        horizon = now - timedelta(days=interval_days)
        found = mailbox_mails(
            session, wanted,
            or_(
                and_(OutboxEmail.state == EmailState.sent, OutboxEmail.sent_at >= horizon),
                OutboxEmail.state.in_([EmailState.queued, EmailState.sending]),
            ),
        )
        # {mailbox: {mail (see _token): (therapist id, moment)}}
        self._moments: dict[str, dict[object, tuple[int, datetime]]] = {
            key: {row.id: (row.therapist_id, self._moment(row.state, row.sent_at, row.next_attempt_at)) for row in rows}
            for key, rows in found.items()
        }

    def _moment(self, state: EmailState, sent_at: Optional[datetime], next_at: Optional[datetime]) -> datetime:
        if state == EmailState.sent:
            return sent_at
        if state == EmailState.sending:
            return self._now
        return max(self._now, next_at or self._now)

    def occupied(self, email: OutboxEmail) -> list[datetime]:
        """Moments of the other mails to `email`'s mailbox (by this mailbox's therapist
        records and `email`'s own)."""
        key = normalise_email(email.to_address)
        if not key:
            return []
        members = set(self._members.get(key, ())) | {email.therapist_id}
        own = _token(email)
        return [at for mail, (tid, at) in self._moments.get(key, {}).items() if mail != own and tid in members]

    def queued(self, email: OutboxEmail) -> None:
        key = normalise_email(email.to_address)
        if key and email.therapist_id is not None:
            moment = self._moment(email.state, None, email.next_attempt_at)
            self._moments.setdefault(key, {})[_token(email)] = (email.therapist_id, moment)


def _token(email: OutboxEmail) -> object:
    """A mail in _MailboxSchedule: its id, or the object while it is not written yet."""
    return email.id if email.id is not None else ("unsaved", id(email))


def _put_in_queue(
    session: Session, email: OutboxEmail, *, now: datetime, settings: Settings, schedule: Optional[_MailboxSchedule] = None
) -> None:
    """queued, with the time the weekly limit allows (now for patients). `schedule`: read
    once for several mails being queued together (default: for this one)."""
    go_at = now
    if email.therapist_id is not None:
        if schedule is None:
            schedule = _MailboxSchedule(session, [email], now=now, interval_days=settings.EMAIL_MIN_INTERVAL_DAYS)
        go_at = earliest_send_time(now, schedule.occupied(email), settings.EMAIL_MIN_INTERVAL_DAYS)
    email.state = EmailState.queued
    email.queued_at = now
    email.next_attempt_at = go_at
    email.lease_owner = None
    email.lease_expires_at = None
    if schedule is not None:
        schedule.queued(email)


def _set_inquiry_status(session: Session, inquiry_id: int, *, from_states: Sequence[InquiryStatus], values: dict) -> bool:
    """Move an inquiry on through the ORM (its version column guards concurrent edits)."""
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None or inquiry.status not in from_states:
        return False
    for key, value in values.items():
        setattr(inquiry, key, value)
    return True


def _new_email(
    *, actor: Actor, template: str, rendered: mt.RenderedMail, to_address: str, to_name: str,
    therapist_id: Optional[int] = None, patient_id: Optional[int] = None, inquiry_id: Optional[int] = None,
    attachment_ids: Sequence[int] = (), now: datetime,
) -> OutboxEmail:
    return OutboxEmail(
        therapist_id=therapist_id,
        patient_id=patient_id,
        inquiry_id=inquiry_id,
        to_address=to_address,
        to_name=to_name[:255],
        subject=rendered.subject[:255],
        body_html=rendered.html,
        body_text=rendered.text,
        template=template,
        attachment_document_ids=list(attachment_ids),
        state=EmailState.draft,
        attempts=0,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )


def _finish_new(
    session: Session, actor: Actor, email: OutboxEmail, *, approve: bool, now: datetime, settings: Settings
) -> OutboxEmail:
    return _finish_new_many(session, actor, [email], approve=approve, now=now, settings=settings)[0]


def _finish_new_many(
    session: Session, actor: Actor, emails: Sequence[OutboxEmail], *, approve: bool, now: datetime, settings: Settings
) -> list[OutboxEmail]:
    """Store new mails (one INSERT for all), their audit entries and, with `approve`, queue
    them (the weekly limit read once for all of them)."""
    if approve:  # queued before they are written: one INSERT, no UPDATE of each new row
        _queue_inquiries(session, emails, now=now)
        schedule = _MailboxSchedule(session, emails, now=now, interval_days=settings.EMAIL_MIN_INTERVAL_DAYS)
        for email in emails:
            _check_still_wanted(session, email)
            _put_in_queue(session, email, now=now, settings=settings, schedule=schedule)
    session.add_all(emails)
    session.flush()
    for email in emails:
        audit.record(
            session, actor, "email.create", "outbox_email", email.id,
            {"template": email.template, "inquiry_id": email.inquiry_id}, now=now,
        )
    if approve:
        for email in emails:
            _record_approval(session, actor, email, now=now)
    return list(emails)


def _queue_inquiries(session: Session, emails: Sequence[OutboxEmail], *, now: datetime) -> None:
    """The draft inquiries of approved inquiry mails become queued: one UPDATE for all of
    them, each guarded by the version it was loaded with (what the ORM's version check does
    per row); the loaded inquiries are told. Inquiries with unsaved changes are left to
    _approve (the ORM)."""
    loaded: dict[int, Inquiry] = {}
    dirty = session.dirty
    for email in emails:
        if email.inquiry_id is None or email.template != mt.THERAPIST_INQUIRY:
            continue
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and inquiry.status == InquiryStatus.draft and inquiry not in dirty:
            loaded[inquiry.id] = inquiry
    if not loaded:
        return
    moved = session.execute(
        update(Inquiry)
        .where(tuple_(Inquiry.id, Inquiry.version).in_([(i.id, i.version) for i in loaded.values()]))
        .values(status=InquiryStatus.queued, queued_at=now, updated_at=now, version=Inquiry.version + 1)
        .returning(Inquiry.id)
        .execution_options(synchronize_session=False)
    ).scalars().all()
    if len(moved) != len(loaded):
        raise StaleDataError("Eine Anfrage wurde inzwischen von jemand anderem geändert.")
    for inquiry in loaded.values():
        for name, value in (("status", InquiryStatus.queued), ("queued_at", now), ("updated_at", now),
                            ("version", inquiry.version + 1)):
            set_committed_value(inquiry, name, value)


def _inquiry_patients(inquiry: Inquiry) -> list[tuple[int, Patient]]:
    """(position, patient) of the patients still in the inquiry, in order, renumbered 1..n."""
    members = [m for m in inquiry.patients if m.withdrawn_at is None]
    return [(m.position, m.search.patient) for m in sorted(members, key=lambda m: m.position)]


def _load_inquiries(session: Session, inquiry_ids: Sequence[int]) -> dict[int, Inquiry]:
    """Inquiries with their therapist and patients (one query per kind, fresh from the database)."""
    if not inquiry_ids:
        return {}
    stmt = (
        select(Inquiry).where(Inquiry.id.in_(sorted(set(inquiry_ids))))
        .options(
            selectinload(Inquiry.therapist),
            selectinload(Inquiry.patients).selectinload(InquiryPatient.search).selectinload(Search.patient),
        )
        .execution_options(populate_existing=True)
    )
    return {i.id: i for i in session.scalars(stmt)}


def _load_inquiry(session: Session, inquiry_id: int) -> Inquiry:
    inquiry = session.get(Inquiry, inquiry_id, populate_existing=True)
    if inquiry is None:
        raise OutboxError("Diese Anfrage gibt es nicht (mehr).")
    return inquiry


def _has_mail(session: Session, inquiry_id: int, template: str, states: Sequence[EmailState]) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(OutboxEmail).where(
                OutboxEmail.inquiry_id == inquiry_id, OutboxEmail.template == template, OutboxEmail.state.in_(list(states))
            )
        )
    )


# =========================================================================== services: creating mails


def queue_inquiry_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, approve: bool = False,
    settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Render the inquiry e-mail of a draft inquiry into the outbox.

    approve=False: a draft in the outbox (the inquiry stays draft until the mail is approved).
    approve=True: queued at once (the inquiry becomes queued). Either way the inquiry counts
    as sent only when the mail is delivered (`sent_at` = delivery time)."""
    return queue_inquiry_emails(session, actor, [inquiry_id], now, approve=approve, settings=settings)[0]


_INQUIRY_MAIL_EXISTS = [EmailState.draft, EmailState.queued, EmailState.sending, EmailState.sent]


def queue_inquiry_emails(
    session: Session, actor: Actor, inquiry_ids: Sequence[int], now: datetime, *, approve: bool = False,
    settings: Optional[Settings] = None,
) -> list[OutboxEmail]:
    """queue_inquiry_email for several inquiries at once (all or none), in their order:
    a fixed number of queries however many (inquiries, therapists and patients loaded
    together, one check for existing mails, one INSERT, the weekly limit read once)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    ids = [int(i) for i in inquiry_ids]
    if len(set(ids)) != len(ids):
        raise OutboxError("Eine Anfrage ist doppelt gewählt.")
    inquiries = _load_inquiries(session, ids)
    existing = set(
        session.scalars(
            select(OutboxEmail.inquiry_id).where(
                OutboxEmail.inquiry_id.in_(ids), OutboxEmail.template == mt.THERAPIST_INQUIRY,
                OutboxEmail.state.in_(_INQUIRY_MAIL_EXISTS),
            )
        )
    ) if ids else set()
    emails = []
    for inquiry_id in ids:
        inquiry = inquiries.get(inquiry_id)
        if inquiry is None:
            raise OutboxError("Diese Anfrage gibt es nicht (mehr).")
        if inquiry.channel != InquiryChannel.email:
            raise OutboxError("Diese Anfrage läuft per Telefon, nicht per E-Mail.")
        if inquiry.status not in (InquiryStatus.draft, InquiryStatus.queued):
            raise OutboxError(f"Die Anfrage ist bereits {inquiry.status.label}; es wird keine neue E-Mail erstellt.")
        if inquiry_id in existing:
            raise OutboxError("Für diese Anfrage gibt es schon eine E-Mail im Postausgang.")
        emails.append(_render_inquiry_mail(actor, inquiry, mt.THERAPIST_INQUIRY, now, settings=settings))
    return _finish_new_many(session, actor, emails, approve=approve, now=now, settings=settings)


def inquiry_draft(session: Session, inquiry_id: int) -> Optional[OutboxEmail]:
    """The inquiry mail of a draft inquiry waiting in Postausgang › Entwürfe, if any."""
    return session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.inquiry_id == inquiry_id, OutboxEmail.template == mt.THERAPIST_INQUIRY,
            OutboxEmail.state == EmailState.draft,
        ).order_by(OutboxEmail.id.desc()).limit(1).with_for_update(key_share=True)  # FOR NO KEY UPDATE (docs: "Concurrency")
    ).first()


def _inquiry_mail(
    session: Session, actor: Actor, inquiry: Inquiry, template: str, now: datetime, *, approve: bool,
    settings: Settings, **extra_context,
) -> OutboxEmail:
    """Render an inquiry or reminder mail to the inquiry's therapist (pseudonymised patients)."""
    email = _render_inquiry_mail(actor, inquiry, template, now, settings=settings, **extra_context)
    return _finish_new(session, actor, email, approve=approve, now=now, settings=settings)


def _render_inquiry_mail(
    actor: Actor, inquiry: Inquiry, template: str, now: datetime, *, settings: Settings, **extra_context
) -> OutboxEmail:
    """The new (unsaved) mail of an inquiry or reminder, from the loaded inquiry."""
    therapist = inquiry.therapist
    address = _validate_address(therapist.email, therapist.full_name)
    patients = _inquiry_patients(inquiry)
    if not patients:
        raise OutboxError("Die Anfrage enthält keine Patient:innen mehr.")
    context = mt.inquiry_context(
        settings, inquiry_id=inquiry.id, therapist=therapist, patients=patients, today=_local_date(now), **extra_context
    )
    rendered = mt.render(template, context)
    return _new_email(
        actor=actor, template=template, rendered=rendered, to_address=address,
        to_name=therapist.full_name, therapist_id=therapist.id, inquiry_id=inquiry.id, now=now,
    )


def queue_reminder_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, settings: Optional[Settings] = None
) -> OutboxEmail:
    """The one reminder for a sent, unanswered e-mail inquiry; queued (the weekly limit applies)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    if inquiry.status != InquiryStatus.sent or inquiry.answered_at is not None:
        raise OutboxError("Erinnern lässt sich nur an eine gesendete, unbeantwortete Anfrage.")
    if _has_mail(session, inquiry_id, mt.THERAPIST_REMINDER, list(EmailState)):
        raise OutboxError("Für diese Anfrage gibt es schon eine Erinnerung.")
    return _inquiry_mail(
        session, actor, inquiry, mt.THERAPIST_REMINDER, now, approve=True, settings=settings,
        sent_on=_local_date(inquiry.sent_at or now),
    )


def queue_thanks_email(
    session: Session, actor: Actor, inquiry_id: int, now: datetime, *, search_ids: Optional[Sequence[int]] = None,
    approve: bool = False, settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Thanks/confirmation to the therapist after an acceptance, naming the accepted patients
    (default: every member with outcome accepted). The weekly limit applies."""

    actor.require(Permission.edit)
    settings = _settings(settings)
    inquiry = _load_inquiry(session, inquiry_id)
    members = sorted(inquiry.patients, key=lambda m: m.position)
    if search_ids is not None:
        chosen = [m for m in members if m.search_id in set(search_ids)]
    else:
        chosen = [m for m in members if m.outcome == Outcome.accepted]
    if not chosen:
        raise OutboxError("Keine angenommenen Patient:innen in dieser Anfrage.")
    therapist = inquiry.therapist
    address = _validate_address(therapist.email, therapist.full_name)
    context = mt.thanks_context(
        settings, inquiry_id=inquiry.id, therapist=therapist,
        accepted=[(m.position, m.search.patient) for m in chosen], today=_local_date(now),
    )
    rendered = mt.render(mt.THERAPIST_THANKS, context)
    email = _new_email(
        actor=actor, template=mt.THERAPIST_THANKS, rendered=rendered, to_address=address,
        to_name=therapist.full_name, therapist_id=therapist.id, inquiry_id=inquiry.id, now=now,
    )
    return _finish_new(session, actor, email, approve=approve, now=now, settings=settings)


@dataclass(frozen=True)
class PatientMail:
    """One message to a patient for queue_patient_emails (the arguments of queue_patient_email)."""

    patient_id: int
    template: str
    therapist_id: Optional[int] = None
    message: str = ""
    document_ids: Optional[Sequence[int]] = None


def queue_patient_email(
    session: Session, actor: Actor, patient_id: int, template: str, now: datetime, *,
    therapist_id: Optional[int] = None, message: str = "", document_ids: Optional[Sequence[int]] = None,
    approve: bool = False, settings: Optional[Settings] = None,
) -> OutboxEmail:
    """A message to a patient: search started, place found (contact by e-mail / by phone, with
    the therapist's PDF forms attached; default all of them), or a status update."""
    request = PatientMail(patient_id, template, therapist_id=therapist_id, message=message, document_ids=document_ids)
    return queue_patient_emails(session, actor, [request], now, approve=approve, settings=settings)[0]


def queue_patient_emails(
    session: Session, actor: Actor, requests: Sequence[PatientMail], now: datetime, *, approve: bool = False,
    settings: Optional[Settings] = None,
) -> list[OutboxEmail]:
    """queue_patient_email for several messages at once (all or none), in their order: a
    fixed number of queries however many (patients, their current searches, therapists,
    forms and the count of therapists asked loaded together, one INSERT)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    for r in requests:
        if r.template not in PATIENT_TEMPLATES:
            raise OutboxError(f"Unbekannte Nachricht an Patient:innen: {r.template}")
    patient_ids = sorted({r.patient_id for r in requests})
    patients = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))} if patient_ids else {}
    searches: dict[int, Search] = {}
    if patient_ids:
        ordered = session.scalars(
            select(Search).where(Search.patient_id.in_(patient_ids)).order_by(
                Search.patient_id, case((Search.status == SearchStatus.active, 0), else_=1),
                Search.started_on.desc(), Search.id.desc(),
            )
        )
        for search in ordered:
            searches.setdefault(search.patient_id, search)  # the first per patient: the current one
    needs_therapist = (mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE, mt.PATIENT_SUCCESS)

    def chosen_therapist(r: PatientMail) -> Optional[int]:
        if r.therapist_id is None and r.template in needs_therapist and r.patient_id in searches:
            return searches[r.patient_id].placed_therapist_id
        return r.therapist_id if r.template in needs_therapist else None

    therapist_ids = sorted({t for t in map(chosen_therapist, requests) if t is not None})
    therapists = {t.id: t for t in session.scalars(select(Therapist).where(Therapist.id.in_(therapist_ids)))} if therapist_ids else {}
    forms_of: dict[int, list[TherapistDocument]] = {}
    with_forms = sorted({chosen_therapist(r) for r in requests if r.template in (mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE)} - {None})
    if with_forms:
        docs = session.scalars(
            select(TherapistDocument).where(TherapistDocument.therapist_id.in_(with_forms)).order_by(TherapistDocument.id)
        )
        for d in docs:
            forms_of.setdefault(d.therapist_id, []).append(d)
    asked: dict[int, int] = {}
    search_ids = sorted({s.id for s in searches.values()})
    if search_ids:
        asked = dict(session.execute(
            select(InquiryPatient.search_id, func.count(func.distinct(Inquiry.therapist_id)))
            .select_from(InquiryPatient)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(
                InquiryPatient.search_id.in_(search_ids),
                Inquiry.status.in_([InquiryStatus.sent, InquiryStatus.answered, InquiryStatus.expired]),
            )
            .group_by(InquiryPatient.search_id)
        ).all())
    emails = []
    for r in requests:
        patient = patients.get(r.patient_id)
        if patient is None:
            raise OutboxError("Diese Patientin / diesen Patienten gibt es nicht (mehr).")
        name = f"{patient.first_name} {patient.last_name}".strip()
        address = _validate_address(patient.email, name)
        search = searches.get(patient.id)
        template = r.template
        therapist_id = chosen_therapist(r)
        therapist = therapists.get(therapist_id) if therapist_id is not None else None
        documents: list[TherapistDocument] = []
        if template in (mt.PATIENT_PLACE_FOUND_EMAIL, mt.PATIENT_PLACE_FOUND_PHONE):
            if therapist is None:
                raise OutboxError("Bitte wählen Sie die Therapeut:in, bei der der Platz gefunden wurde.")
            if template == mt.PATIENT_PLACE_FOUND_EMAIL and not therapist.email:
                raise OutboxError("Die Praxis hat keine E-Mail-Adresse; wählen Sie die Variante „Kontakt per Telefon“.")
            if template == mt.PATIENT_PLACE_FOUND_PHONE and not therapist.phone:
                raise OutboxError("Die Praxis hat keine Telefonnummer; wählen Sie die Variante „Kontakt per E-Mail“.")
            documents = list(forms_of.get(therapist.id, []))
            if r.document_ids is not None:
                wanted = set(r.document_ids)
                unknown = wanted - {d.id for d in documents}
                if unknown:
                    raise OutboxError("Ein gewähltes Formular gehört nicht zu dieser Praxis.")
                documents = [d for d in documents if d.id in wanted]
        elif r.document_ids:
            raise OutboxError("Formulare lassen sich nur an die Nachricht „Therapieplatz gefunden“ anhängen.")
        context = mt.patient_context(
            settings, patient=patient, therapist=therapist, today=_local_date(now), forms=[d.filename for d in documents],
            search_started_on=search.started_on if search is not None else None,
            therapists_asked=asked.get(search.id, 0) if search is not None else 0,
            message=r.message, max_distance_km=patient.max_distance_km,
        )
        rendered = mt.render(template, context)
        emails.append(_new_email(
            actor=actor, template=template, rendered=rendered, to_address=address, to_name=name, patient_id=patient.id,
            attachment_ids=[d.id for d in documents], now=now,
        ))
    return _finish_new_many(session, actor, emails, approve=approve, now=now, settings=settings)


# =========================================================================== services: life cycle


def _approve(
    session: Session, actor: Actor, email: OutboxEmail, *, now: datetime, settings: Settings,
    schedule: Optional[_MailboxSchedule] = None,
) -> None:
    _check_still_wanted(session, email)
    _put_in_queue(session, email, now=now, settings=settings, schedule=schedule)
    _record_approval(session, actor, email, now=now)


def _check_still_wanted(session: Session, email: OutboxEmail) -> None:
    if email.inquiry_id is not None and email.template in _INQUIRY_OPEN_FOR:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and inquiry.status not in _INQUIRY_OPEN_FOR[email.template]:
            raise OutboxError(f"Die Anfrage ist {inquiry.status.label}; diese E-Mail wird nicht mehr gesendet.")


def _record_approval(session: Session, actor: Actor, email: OutboxEmail, *, now: datetime) -> None:
    """The inquiry of an approved inquiry mail becomes queued; the audit entry."""
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        _set_inquiry_status(
            session, email.inquiry_id, from_states=[InquiryStatus.draft],
            values={"status": InquiryStatus.queued, "queued_at": now, "updated_at": now},
        )
    audit.record(
        session, actor, "email.approve", "outbox_email", email.id,
        {"next_attempt_at": email.next_attempt_at}, now=now,
    )


def approve(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Draft → queued (at the time the weekly limit allows)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.draft:
        raise OutboxError(f"Nur Entwürfe lassen sich freigeben; diese E-Mail ist {email.state.label}.")
    _approve(session, actor, email, now=now, settings=settings)
    session.flush()
    return email


def approve_many(
    session: Session, actor: Actor, email_ids: Sequence[int], now: datetime, *, settings: Optional[Settings] = None
) -> int:
    """Approve several drafts in one transaction (all or none)."""
    actor.require(Permission.edit)
    _lock_emails(session, email_ids)
    for email_id in email_ids:
        approve(session, actor, email_id, now, settings=settings)
    return len(email_ids)


def edit_draft(
    session: Session, actor: Actor, email_id: int, now: datetime, *, subject: str, body: str,
    settings: Optional[Settings] = None,
) -> OutboxEmail:
    """Change subject and text of a draft. `body` is the text above the legal footer; the
    HTML part is made from the same words (escaped), so the preview stays what is sent."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.draft:
        raise OutboxError(f"Nur Entwürfe lassen sich bearbeiten; diese E-Mail ist {email.state.label}.")
    subject = " ".join((subject or "").split())
    if not subject:
        raise OutboxError("Betreff: bitte ausfüllen.")
    if len(subject) > 255:
        raise OutboxError("Betreff: höchstens 255 Zeichen.")
    body = (body or "").replace("\r\n", "\n").strip("\n")
    if not body.strip():
        raise OutboxError("Text: bitte ausfüllen.")
    _, signature = split_signature(email.body_text)
    before = {"subject": email.subject, "body": split_signature(email.body_text)[0]}
    email.subject = subject
    email.body_text = body + "\n" + (signature or "\n")
    email.body_html = mt.render_edited_html(body, mt.footer_from_settings(settings))
    email.updated_at = now
    audit.record(
        session, actor, "email.edit", "outbox_email", email.id,
        {"subject": [before["subject"], subject], "body_changed": before["body"] != body}, now=now,
    )
    session.flush()
    return email


def cancel(session: Session, actor: Actor, email_id: int, now: datetime, *, reason: str = "") -> OutboxEmail:
    """Draft, queued or failed → cancelled. A cancelled inquiry mail sends its inquiry back to draft."""
    actor.require(Permission.edit)
    email = _get_email(session, email_id, for_update=True)
    if email.state == EmailState.sending:
        raise OutboxError("Diese E-Mail wird gerade gesendet und lässt sich nicht mehr stornieren.")
    if email.state not in (EmailState.draft, EmailState.queued, EmailState.failed):
        raise OutboxError(f"Diese E-Mail ist {email.state.label} und lässt sich nicht stornieren.")
    _cancel(session, actor, email, now=now, reason=reason)
    session.flush()
    return email


def _cancel(session: Session, actor: Actor, email: OutboxEmail, *, now: datetime, reason: str) -> None:
    before = email.state
    email.state = EmailState.cancelled
    email.next_attempt_at = None
    email.lease_owner = None
    email.lease_expires_at = None
    if reason:
        email.last_error = reason
    email.updated_at = now
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        _set_inquiry_status(
            session, email.inquiry_id, from_states=[InquiryStatus.queued],
            values={"status": InquiryStatus.draft, "queued_at": None, "updated_at": now},
        )
    audit.record(
        session, actor, "email.cancel", "outbox_email", email.id, {"state": [before, EmailState.cancelled], "reason": reason or None}, now=now
    )


def cancel_pending_for_inquiry(session: Session, actor: Actor, inquiry_id: int, now: datetime, *, reason: str = "") -> int:
    """For Matching: when an inquiry is answered, cancelled or expires, its unsent mails
    (drafts, queued inquiry mails and reminders) are cancelled. Returns how many."""
    actor.require(Permission.edit)
    emails = session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.inquiry_id == inquiry_id,
            OutboxEmail.template.in_([mt.THERAPIST_INQUIRY, mt.THERAPIST_REMINDER]),
            OutboxEmail.state.in_([EmailState.draft, EmailState.queued, EmailState.failed]),
        ).order_by(OutboxEmail.id).with_for_update(key_share=True)
    ).all()
    for email in emails:
        _cancel(session, actor, email, now=now, reason=reason)
    session.flush()
    return len(emails)


def retry(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Failed → queued with a fresh set of attempts (the weekly limit still applies)."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    email = _get_email(session, email_id, for_update=True)
    if email.state != EmailState.failed:
        raise OutboxError(f"Nur fehlgeschlagene E-Mails lassen sich erneut versuchen; diese ist {email.state.label}.")
    if email.inquiry_id is not None and email.template in _INQUIRY_OPEN_FOR:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and inquiry.status not in _INQUIRY_OPEN_FOR[email.template]:
            raise OutboxError(f"Die Anfrage ist {inquiry.status.label}; diese E-Mail wird nicht mehr gesendet.")
    previous = email.attempts
    email.attempts = 0
    _put_in_queue(session, email, now=now, settings=settings)
    if email.inquiry_id is not None and email.template == mt.THERAPIST_INQUIRY:
        inquiry = session.get(Inquiry, email.inquiry_id)
        if inquiry is not None and (inquiry.attention_reason or "").startswith("E-Mail"):
            inquiry.needs_attention = False
            inquiry.attention_reason = None
    audit.record(
        session, actor, "email.retry", "outbox_email", email.id,
        {"attempts_before": previous, "last_error": email.last_error}, now=now,
    )
    session.flush()
    return email


def resend(session: Session, actor: Actor, email_id: int, now: datetime, *, settings: Optional[Settings] = None) -> OutboxEmail:
    """Send a delivered mail once more as a new outbox entry (same content, new Message-ID),
    e.g. when the recipient says it never arrived. For therapists the weekly limit applies."""
    actor.require(Permission.edit)
    settings = _settings(settings)
    original = _get_email(session, email_id)
    if original.state != EmailState.sent:
        raise OutboxError("Nur gesendete E-Mails lassen sich erneut senden; fehlgeschlagene bitte „Erneut versuchen“.")
    copy = OutboxEmail(
        therapist_id=original.therapist_id,
        patient_id=original.patient_id,
        inquiry_id=original.inquiry_id,
        to_address=original.to_address,
        to_name=original.to_name,
        subject=original.subject,
        body_html=original.body_html,
        body_text=original.body_text,
        template=original.template,
        attachment_document_ids=list(original.attachment_document_ids or []),
        state=EmailState.draft,
        attempts=0,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    session.flush()
    _put_in_queue(session, copy, now=now, settings=settings)
    audit.record(session, actor, "email.resend", "outbox_email", copy.id, {"copy_of": original.id}, now=now)
    session.flush()
    return copy


