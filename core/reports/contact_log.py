"""Kontaktprotokoll: the proof of a patient's attempts to find a statutory place.

When no place can be found in reasonable time, a patient may ask the insurer to reimburse a
private therapy (Kostenerstattung, § 13 Abs. 3 SGB V); insurers ask for the attempts. The
protocol lists every therapist asked for the patient (name, practice address), every contact
attempt with its channel and date (e-mails sent for the inquiry, calls made, or the
inquiry's own sending when neither is recorded), the answer and its date, the period
covered and a summary line ("12 Praxen angefragt, 0 freie Plätze").

`contact_log` builds the view-model, `render_pdf` turns it into a PDF through the Jinja2
template templates/contact_log.html (autoescaped) and fpdf2's HTML renderer, and
`create_contact_log` does both and records the audit entry. Only roles that may see contact
data (Permission.view_sensitive) may create it: it carries the insurance number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Optional

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.inquiries.loading import reference as inquiry_reference
from core.mail.templates import THERAPIST_INQUIRY, THERAPIST_REMINDER
from core.platform import audit
from core.platform.config import PROJECT_ROOT, Settings
from core.platform.formatting import format_date, format_datetime, to_local
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.platform.permissions import Actor, Permission
from core.platform.references import patient_ref, therapist_ref
from core.platform.vocab import CallResult, CallState, EmailState, InquiryChannel, InquiryStatus, Outcome

TEMPLATE = "documents/contact_log.html"
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), PROJECT_ROOT / "var" / "fonts")
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf", "BI": "DejaVuSans-BoldOblique.ttf"}
CONTACTED = (InquiryStatus.sent, InquiryStatus.answered, InquiryStatus.expired, InquiryStatus.cancelled)
MAIL_WHAT = {THERAPIST_INQUIRY: "Anfrage per E-Mail", THERAPIST_REMINDER: "Erinnerung per E-Mail"}


class ContactLogError(Exception):
    """The protocol cannot be created; the message is German."""


@dataclass(frozen=True)
class Attempt:
    at: datetime
    channel: str  # German: E-Mail, Telefon
    what: str  # German: "Anfrage per E-Mail", "Anruf – nicht erreicht"

    @property
    def line(self) -> str:
        return f"{format_datetime(self.at)} {self.what}"


@dataclass(frozen=True)
class Entry:
    inquiry_id: int
    inquiry_ref: str
    therapist_ref: str
    therapist_name: str
    practice_address: str
    attempts: tuple[Attempt, ...]
    answer: str
    answer_on: Optional[date]
    accepted: bool

    @property
    def therapist_lines(self) -> list[str]:
        return [self.therapist_name, self.practice_address] if self.practice_address else [self.therapist_name]

    @property
    def attempt_lines(self) -> list[str]:
        return [a.line for a in self.attempts]

    @property
    def answer_lines(self) -> list[str]:
        return [self.answer] + ([f"am {format_date(self.answer_on)}"] if self.answer_on else [])


@dataclass(frozen=True)
class ContactLog:
    patient_id: int
    patient_name: str
    birth_date: Optional[date]
    insurer: Optional[str]
    insurance_number: Optional[str]
    period_start: Optional[date]
    period_end: date
    entries: list[Entry] = field(default_factory=list)

    @property
    def patient_ref(self) -> str:
        return patient_ref(self.patient_id)

    @property
    def practices(self) -> int:
        return len({e.therapist_ref for e in self.entries})

    @property
    def places(self) -> int:
        return sum(1 for e in self.entries if e.accepted)

    @property
    def summary(self) -> str:
        practices = "1 Praxis" if self.practices == 1 else f"{self.practices} Praxen"
        places = "1 freier Platz" if self.places == 1 else f"{self.places} freie Plätze"
        return f"{practices} angefragt, {places}"

    @property
    def attempts(self) -> int:
        return sum(len(e.attempts) for e in self.entries)


def _address(t) -> str:
    city = " ".join(p for p in (t.plz, t.city) if p)
    return ", ".join(p for p in (t.street, city) if p)


def _answer(member: InquiryPatient, inquiry: Inquiry) -> tuple[str, Optional[datetime]]:
    outcome, status = Outcome(member.outcome), InquiryStatus(inquiry.status)
    if member.withdrawn_at is not None and outcome == Outcome.pending:
        return "Anfrage für diese Person zurückgezogen", member.withdrawn_at
    if outcome == Outcome.pending:
        if status == InquiryStatus.expired:
            return "keine Antwort (Frist abgelaufen)", inquiry.expired_at
        if status == InquiryStatus.cancelled:
            return "Anfrage storniert", inquiry.cancelled_at
        return "noch keine Antwort", None
    if outcome == Outcome.accepted:
        return "Zusage", member.outcome_at or inquiry.answered_at
    return outcome.label, member.outcome_at or inquiry.answered_at or inquiry.expired_at


def _call_what(call: PhoneCall) -> str:
    """'Anruf (2. Versuch) – Anrufbeantworter (Nachricht hinterlassen)': the coordinator's
    result (vocab.CallResult); older calls without one say reached / not reached and their
    outcome text. Free-text call notes stay out (the protocol leaves the agency)."""
    head = f"Anruf ({call.attempt}. Versuch)"
    if call.result is not None:
        return f"{head} – {CallResult(call.result).label}"
    state = "erreicht" if CallState(call.state) == CallState.done else CallState.failed.label
    outcome = (call.outcome or "").strip()
    return f"{head} – {state}" + (f": {outcome}" if outcome and outcome.lower() != state else "")


def contact_log(session: Session, actor: Actor, patient_id: int, *, today: date) -> ContactLog:
    actor.require(Permission.view_sensitive)
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise ContactLogError(f"Patient:in {patient_ref(patient_id)} gibt es nicht.")
    rows = session.execute(
        select(InquiryPatient, Inquiry, Therapist)
        .join(Search, Search.id == InquiryPatient.search_id)
        .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
        .join(Therapist, Therapist.id == Inquiry.therapist_id)
        .where(Search.patient_id == patient_id, Inquiry.sent_at.is_not(None), Inquiry.status.in_(CONTACTED))
        .order_by(Inquiry.sent_at, Inquiry.id)
    ).all()
    inquiry_ids = [inq.id for _m, inq, _t in rows]
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    if inquiry_ids:
        for mail in session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.inquiry_id.in_(inquiry_ids), OutboxEmail.therapist_id.is_not(None),
                OutboxEmail.state == EmailState.sent, OutboxEmail.sent_at.is_not(None),
            )
        ):
            attempts[mail.inquiry_id].append(Attempt(mail.sent_at, "E-Mail", MAIL_WHAT.get(mail.template, "E-Mail")))
        for call in session.scalars(
            select(PhoneCall).where(
                PhoneCall.inquiry_id.in_(inquiry_ids), PhoneCall.therapist_id.is_not(None),
                PhoneCall.state.in_([CallState.done, CallState.failed]),
            )
        ):
            attempts[call.inquiry_id].append(Attempt(call.done_at or call.scheduled_start, "Telefon", _call_what(call)))
    entries = []
    for member, inquiry, therapist in rows:
        tried = sorted(attempts.get(inquiry.id, []), key=lambda a: a.at)
        if not tried:  # sent without a recorded mail or call (e.g. history taken over)
            channel = "Telefon" if InquiryChannel(inquiry.channel) == InquiryChannel.phone else "E-Mail"
            tried = [Attempt(inquiry.sent_at, channel, f"Anfrage per {channel}")]
        answer, answer_at = _answer(member, inquiry)
        entries.append(Entry(
            inquiry_id=inquiry.id,
            inquiry_ref=inquiry_reference(inquiry.id),
            therapist_ref=therapist_ref(therapist.id),
            therapist_name=therapist.full_name,
            practice_address=_address(therapist),
            attempts=tuple(tried),
            answer=answer,
            answer_on=to_local(answer_at).date() if answer_at else None,
            accepted=Outcome(member.outcome) == Outcome.accepted,
        ))
    first_search = session.scalar(select(Search.started_on).where(Search.patient_id == patient_id).order_by(Search.started_on))
    first_contact = to_local(rows[0][1].sent_at).date() if rows else None
    starts = [d for d in (first_search, first_contact) if d]
    return ContactLog(
        patient_id=patient.id,
        patient_name=" ".join(p for p in (patient.first_name, patient.last_name) if p),
        birth_date=patient.birth_date,
        insurer=patient.insurer,
        insurance_number=patient.insurance_number,
        period_start=min(starts) if starts else None,
        period_end=today,
        entries=entries,
    )


# --------------------------------------------------------------------------- PDF


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(PROJECT_ROOT / "templates")),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = format_date
    env.filters["lines"] = lambda values: "\n".join(values)
    return env


def render_html(log: ContactLog, *, settings: Settings, created_at: datetime, created_by: str) -> str:
    return _environment().get_template(TEMPLATE).render(
        log=log, company_name=settings.COMPANY_NAME, company_address=settings.COMPANY_ADDRESS,
        company_email=settings.EMAIL_SENDER, created_at=format_datetime(created_at), created_by=created_by,
    )


def _font_dir() -> Optional[Path]:
    return next((d for d in FONT_DIRS if all((d / f).is_file() for f in FONT_FILES.values())), None)


_LATIN1 = str.maketrans({"–": "-", "—": "-", "„": '"', "“": '"', "”": '"', "‚": "'", "‘": "'", "’": "'", "…": "...", "§": "§"})


class _ProtocolPdf(FPDF):
    footer_text = ""
    footer_font = "helvetica"

    def footer(self) -> None:  # fpdf2 hook, called for every page
        self.set_y(-12)
        self.set_font(self.footer_font, size=7)
        self.cell(0, 5, f"{self.footer_text} · Seite {self.page_no()}/{{nb}}", align="C")


def render_pdf(log: ContactLog, *, settings: Settings, created_at: datetime, created_by: str) -> bytes:
    html = render_html(log, settings=settings, created_at=created_at, created_by=created_by)
    pdf = _ProtocolPdf(format="A4")
    pdf.set_title(f"Kontaktprotokoll {log.patient_ref}")
    pdf.set_author(settings.COMPANY_NAME)
    pdf.set_creator("Therapieplatz-Vermittlung")
    fonts = _font_dir()
    if fonts is not None:
        for style, filename in FONT_FILES.items():
            pdf.add_font("DejaVu", style, str(fonts / filename))
        family = "DejaVu"
    else:  # without a Unicode font: the PDF core font, text reduced to Latin-1
        family = "helvetica"
        html = html.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")
    pdf.footer_font = family
    pdf.footer_text = f"Kontaktprotokoll {log.patient_ref} · erstellt {format_datetime(created_at)}"
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font(family, size=9)
    pdf.write_html(html, font_family=family)
    return bytes(pdf.output())


@dataclass(frozen=True)
class ContactLogFile:
    filename: str
    content: bytes
    log: ContactLog


def create_contact_log(
    session: Session, actor: Actor, patient_id: int, *, today: date, now: datetime, settings: Settings
) -> ContactLogFile:
    """Build, render and audit the protocol (the caller's unit of work commits the audit entry)."""
    log = contact_log(session, actor, patient_id, today=today)
    content = render_pdf(log, settings=settings, created_at=now, created_by=actor.display_name or actor.username)
    audit.record(
        session, actor, "patient.contact_log", "patient", patient_id,
        {"practices": log.practices, "attempts": log.attempts, "places": log.places,
         "period": [log.period_start, log.period_end]},
        now=now,
    )
    return ContactLogFile(f"Kontaktprotokoll_{log.patient_ref}_{today.isoformat()}.pdf", content, log)
