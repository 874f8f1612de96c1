"""Kontaktprotokoll: a patient with three inquiries (one rejected by mail, one rejected after
two failed calls, one unanswered) gets a PDF listing exactly those contacts with their dates;
the text is read back with pypdf. Creating it is audited; viewers can't (both databases)."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timezone

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, PhoneCall
from core.platform.permissions import PermissionDenied
from core.reports.contact_log import contact_log, create_contact_log
from tests.support.matching_fixtures import COORD, SETTINGS, VIEWER, make_search, make_therapist, patient_of

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def utc(m, d, hh, mm=0):
    return datetime(2026, m, d, hh, mm, tzinfo=timezone.utc)


@pytest.fixture
def patient_with_three_inquiries(db_session):
    s = db_session
    search = make_search(s, first_name="Clara", last_name="Kassen", started_on=date(2026, 9, 14),
                         insurer="Techniker Krankenkasse (TK)", insurance_number="A123456780")
    other = make_search(s, last_name="Andere")  # shares inquiry 1, must not leak into the protocol
    mail_t = make_therapist(s, title="Dr.", first_name="Maria", last_name="Mailfeld", street="Lindenstraße 5", plz="10969",
                            city="Berlin")
    phone_t = make_therapist(s, first_name="Paul", last_name="Rufmann", street="Kantstraße 12", plz="10623", city="Berlin")
    quiet_t = make_therapist(s, first_name="Stella", last_name="Stillmann", street="Am Markt 1", plz="10178", city="Berlin")
    make_therapist(s, last_name="Niegefragt")  # never asked: not listed

    # 1: e-mail on 01.10. (10:00 Berlin), rejected (capacity) on 06.10.
    i1 = Inquiry(therapist_id=mail_t.id, channel="email", status="answered", size=2, sent_at=utc(10, 1, 8),
                 answered_at=utc(10, 6, 12), response_type="all_rejected")
    i1.patients = [InquiryPatient(search_id=search.id, position=1, outcome="rejected_capacity", outcome_at=utc(10, 6, 12)),
                   InquiryPatient(search_id=other.id, position=2, outcome="rejected_capacity", outcome_at=utc(10, 6, 12))]
    # 2: by phone: not reached on 13.10. and 15.10., reached on 20.10. and rejected (not suitable)
    i2 = Inquiry(therapist_id=phone_t.id, channel="phone", status="answered", size=1, sent_at=utc(10, 20, 9),
                 answered_at=utc(10, 20, 9, 5), response_type="all_rejected")
    i2.patients = [InquiryPatient(search_id=search.id, position=1, outcome="rejected_unsuitable", outcome_at=utc(10, 20, 9, 5))]
    # 3: e-mail on 10.11., no answer yet
    i3 = Inquiry(therapist_id=quiet_t.id, channel="email", status="sent", size=1, sent_at=utc(11, 10, 7, 30))
    i3.patients = [InquiryPatient(search_id=search.id, position=1)]
    # a draft is no contact
    draft = Inquiry(therapist_id=quiet_t.id, channel="email", status="draft", size=1)
    draft.patients = [InquiryPatient(search_id=search.id, position=1)]
    s.add_all([i1, i2, i3, draft])
    s.flush()
    for inq, at in ((i1, utc(10, 1, 8)), (i3, utc(11, 10, 7, 30))):
        s.add(OutboxEmail(therapist_id=inq.therapist_id, inquiry_id=inq.id, to_address="x@example.org", to_name="x",
                          subject="[Demo] Anfrage", body_html="<p>x</p>", body_text="x", template="therapist_inquiry",
                          state="sent", sent_at=at, queued_at=at))
    first = PhoneCall(therapist_id=phone_t.id, inquiry_id=i2.id, purpose="inquiry", scheduled_start=utc(10, 13, 8),
                      state="failed", result="not_reached", outcome="nicht erreicht", attempt=1,
                      done_at=utc(10, 13, 8, 2))
    s.add(first)
    s.flush()
    second = PhoneCall(therapist_id=phone_t.id, inquiry_id=i2.id, purpose="inquiry", scheduled_start=utc(10, 15, 12),
                       state="failed", result="voicemail", attempt=2, previous_call_id=first.id,
                       done_at=utc(10, 15, 12, 1))
    s.add(second)
    s.flush()
    s.add(PhoneCall(therapist_id=phone_t.id, inquiry_id=i2.id, purpose="inquiry", scheduled_start=utc(10, 20, 9),
                    state="done", result="reached", notes="intern: war kurz angebunden", attempt=3,
                    previous_call_id=second.id, done_at=utc(10, 20, 9, 5)))
    s.add(PhoneCall(therapist_id=quiet_t.id, inquiry_id=i3.id, purpose="follow_up", scheduled_start=utc(11, 24, 9),
                    state="scheduled"))  # planned, not yet a contact
    s.flush()
    return patient_of(s, search), (mail_t, phone_t, quiet_t), (i1, i2, i3)


def test_view_model_lists_exactly_the_contacts(db_session, patient_with_three_inquiries):
    patient, (mail_t, phone_t, quiet_t), (i1, i2, i3) = patient_with_three_inquiries
    log = contact_log(db_session, COORD, patient.id, today=TODAY)
    assert [e.inquiry_id for e in log.entries] == [i1.id, i2.id, i3.id]
    assert [e.therapist_ref for e in log.entries] == [f"T{mail_t.id}", f"T{phone_t.id}", f"T{quiet_t.id}"]
    assert [e.attempt_lines for e in log.entries] == [
        ["01.10.2026 10:00 Anfrage per E-Mail"],
        ["13.10.2026 10:02 Anruf (1. Versuch) – nicht erreicht",
         "15.10.2026 14:01 Anruf (2. Versuch) – Anrufbeantworter (Nachricht hinterlassen)",
         "20.10.2026 11:05 Anruf (3. Versuch) – erreicht"],
        ["10.11.2026 08:30 Anfrage per E-Mail"],
    ]
    assert [(e.answer, e.answer_on) for e in log.entries] == [
        ("abgelehnt (Kapazität)", date(2026, 10, 6)),
        ("abgelehnt (nicht geeignet)", date(2026, 10, 20)),
        ("noch keine Antwort", None),
    ]
    assert (log.period_start, log.period_end) == (date(2026, 9, 14), TODAY)
    assert log.summary == "3 Praxen angefragt, 0 freie Plätze"


def test_pdf_text_read_back(db_session, patient_with_three_inquiries):
    patient, _therapists, (i1, i2, i3) = patient_with_three_inquiries
    result = create_contact_log(db_session, COORD, patient.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert result.content.startswith(b"%PDF")
    assert result.filename == f"Kontaktprotokoll_P{patient.id}_2026-11-23.pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(result.content)).pages)
    flat = re.sub(r"\s+", " ", text)
    assert "Kontaktprotokoll" in flat and SETTINGS.COMPANY_NAME in flat
    assert f"Clara Kassen (P{patient.id})" in flat
    assert "A123456780" in flat and "Techniker Krankenkasse" in flat
    assert "14.09.2026 bis 23.11.2026" in flat
    assert "3 Praxen angefragt, 0 freie Plätze" in flat
    for expected in ("Dr. Maria Mailfeld", "Lindenstraße 5, 10969 Berlin", "01.10.2026 10:00 Anfrage per E-Mail",
                     "abgelehnt (Kapazität)", "06.10.2026",
                     "Paul Rufmann", "13.10.2026 10:02 Anruf (1. Versuch) – nicht erreicht",
                     "15.10.2026 14:01 Anruf (2. Versuch) – Anrufbeantworter", "20.10.2026 11:05 Anruf (3. Versuch) – erreicht",
                     "abgelehnt (nicht geeignet)", "20.10.2026",
                     "Stella Stillmann", "10.11.2026 08:30 Anfrage per E-Mail", "noch keine Antwort"):
        assert expected in flat, expected
    assert "Niegefragt" not in flat and "Andere" not in flat and "intern" not in flat  # call notes stay inside
    assert len(re.findall(r"\d\d\.\d\d\.\d{4} \d\d:\d\d (Anfrage|Anruf)", flat)) == 5  # exactly the five attempts
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "patient.contact_log")).one()
    assert (entry.entity, entry.entity_id) == ("patient", patient.id)
    assert entry.changes["practices"] == 3 and entry.changes["attempts"] == 5


def test_viewer_cannot_create_it(db_session, patient_with_three_inquiries):
    patient, _t, _i = patient_with_three_inquiries
    with pytest.raises(PermissionDenied):
        create_contact_log(db_session, VIEWER, patient.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert db_session.scalars(select(AuditEntry).where(AuditEntry.action == "patient.contact_log")).first() is None


def test_patient_without_inquiries(db_session):
    patient = patient_of(db_session, make_search(db_session, started_on=date(2026, 11, 1)))
    result = create_contact_log(db_session, COORD, patient.id, today=TODAY, now=NOW, settings=SETTINGS)
    text = PdfReader(io.BytesIO(result.content)).pages[0].extract_text()
    assert "keine Praxis angefragt" in text and "0 Praxen angefragt, 0 freie Plätze" in re.sub(r"\s+", " ", text)
