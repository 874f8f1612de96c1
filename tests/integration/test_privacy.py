"""Data-subject rights (issue 15.1) and read auditing (15.2), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.platform.models import AuditEntry, InquiryPatient, OutboxEmail, Patient, Search, User
from core.platform.permissions import Actor, PermissionDenied
from core.platform.vocab import Role, SearchStatus
from core.privacy import anonymise, export, reads
from tests.support import seed
from tests.support.matching_fixtures import make_therapist, open_inquiry

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
TODAY = date(2026, 11, 23)
SECRET_NAME = "Zora<script>alert(1)</script>"


def _admin(session) -> Actor:
    u = User(username="t.admin.priv", display_name="Admin", role=Role.admin, password_hash="x", active=True,
             created_at=NOW, updated_at=NOW)
    session.add(u)
    session.flush()
    return Actor(u.id, u.username, Role.admin)


COORD = Actor(None, "t.koord", Role.coordinator)
VIEWER = Actor(None, "t.lesen", Role.viewer)


def _patient_with_history(session):
    p, s = seed.patient_with_search(
        session, first_name=SECRET_NAME, last_name="Geheim", email="zora@example.org", phone="030 1234567",
        insurance_number="A123456780", street="Geheimweg 1", notes="Angst vor Aufzügen", diagnosis="F41.0",
    )
    t = make_therapist(session)
    inquiry = open_inquiry(session, t.id, [s.id])
    member = session.scalars(select(InquiryPatient).where(InquiryPatient.inquiry_id == inquiry.id)).one()
    member.outcome_notes = "Zora passt nicht in die Gruppe"
    session.add(OutboxEmail(
        therapist_id=t.id, inquiry_id=inquiry.id, to_address="praxis@example.org", to_name="Praxis",
        subject="Anfrage A1", body_html="<p>Zora Geheim, 36 Jahre</p>", body_text="Zora Geheim, 36 Jahre",
        template="therapist_inquiry", state="sent", sent_at=NOW,
    ))
    session.add(OutboxEmail(
        patient_id=p.id, to_address="zora@example.org", to_name="Zora Geheim", subject="Ihre Platzsuche",
        body_html="<p>Liebe Zora</p>", body_text="Liebe Zora", template="patient_search_started", state="sent", sent_at=NOW,
    ))
    session.add(AuditEntry(at=NOW, actor_name="k", action="patient.update", entity="patient", entity_id=p.id,
                           changes={"last_name": ["Alt", "Geheim"]}))
    session.flush()
    return p, s, t, inquiry


def test_export_has_everything_readable_and_is_audited(db_session):
    admin = _admin(db_session)
    p, s, t, inquiry = _patient_with_history(db_session)
    result = export.export_patient(db_session, admin, p.id, now=NOW)
    data = json.loads(result.json_bytes)
    assert data["patient"]["first_name"] == SECRET_NAME
    assert data["patient"]["insurance_number"] == "A123456780"
    assert [x["id"] for x in data["searches"]] == [f"S{s.id}"]
    assert data["inquiries"][0]["id"] == f"A{inquiry.id}" and data["inquiries"][0]["therapist"] == f"T{t.id}"
    assert {m["subject"] for m in data["emails"]} == {"Anfrage A1", "Ihre Platzsuche"}
    assert any(a["action"] == "patient.update" for a in data["audit"])
    # the HTML summary is German and escapes what people typed
    assert "Auskunft nach Art. 15 DSGVO" in result.html and "Versichertennummer" in result.html
    assert "<script>" not in result.html and "&lt;script&gt;" in result.html
    assert result.json_filename == f"auskunft_P{p.id}_2026-11-23.json"
    assert db_session.scalar(
        select(AuditEntry.id).where(AuditEntry.action == "patient.export_art15", AuditEntry.entity_id == p.id)
    )


@pytest.mark.parametrize("actor", [COORD, VIEWER])
def test_only_admins_export_and_anonymise(db_session, actor):
    p, *_ = _patient_with_history(db_session)
    with pytest.raises(PermissionDenied):
        export.export_patient(db_session, actor, p.id, now=NOW)
    with pytest.raises(PermissionDenied):
        anonymise.anonymise_patient(db_session, actor, p.id, now=NOW)
    with pytest.raises(PermissionDenied):
        reads.who_saw(db_session, actor, p.id)


def test_anonymise_removes_personal_data_and_keeps_statistics(db_session):
    admin = _admin(db_session)
    p, s, t, inquiry = _patient_with_history(db_session)
    with pytest.raises(export.PrivacyError, match="laufende oder pausierte Platzsuche"):
        anonymise.anonymise_patient(db_session, admin, p.id, now=NOW)
    s.status, s.ended_on = SearchStatus.cancelled, TODAY
    db_session.flush()
    report = anonymise.anonymise_patient(db_session, admin, p.id, now=NOW)
    assert report.mails_cleared == 2
    db_session.expire_all()
    p = db_session.get(Patient, p.id)
    assert (p.first_name, p.last_name) == ("Anonymisiert", f"P{p.id}")
    assert p.email is None and p.phone is None and p.street is None and p.insurance_number is None
    assert p.diagnosis is None and p.symptoms == [] and p.notes is None and p.birth_date is None
    assert p.anonymised_at is not None
    # statistics stay: region, gender, the search and its outcome
    assert p.plz == "10115" and p.gender.value == "female"
    search = db_session.get(Search, s.id)
    assert search.status == SearchStatus.cancelled and search.started_on == date(2026, 9, 1)
    member = db_session.scalars(select(InquiryPatient).where(InquiryPatient.search_id == s.id)).one()
    assert member.outcome_notes is None and member.outcome is not None
    mails = db_session.scalars(select(OutboxEmail)).all()
    assert all("Zora" not in (m.body_text + m.body_html + m.subject + m.to_name) for m in mails)
    changes = db_session.scalars(
        select(AuditEntry.changes).where(AuditEntry.entity == "patient", AuditEntry.entity_id == p.id,
                                         AuditEntry.action == "patient.update")
    ).all()
    assert changes == [None]
    with pytest.raises(export.PrivacyError, match="bereits anonymisiert"):
        anonymise.anonymise_patient(db_session, admin, p.id, now=NOW)


def test_retention_anonymises_only_ended_searches_past_the_period(db_session):
    admin = _admin(db_session)
    t = make_therapist(db_session)
    old, old_search = seed.patient_with_search(db_session, first_name="Alt", status="cancelled", started_on=date(2023, 1, 2))
    old_search.ended_on = date(2024, 1, 10)
    placed, placed_search = seed.patient_with_search(db_session, first_name="Vermittelt", status="active", started_on=date(2023, 1, 2))
    placed_search.status, placed_search.placed_therapist_id = "successful", t.id
    placed_search.placed_on, placed_search.success_on = date(2023, 3, 1), date(2023, 4, 1)
    recent, recent_search = seed.patient_with_search(db_session, first_name="Neu", status="cancelled", started_on=date(2025, 6, 1))
    recent_search.ended_on = date(2026, 6, 1)
    active, _ = seed.patient_with_search(db_session, first_name="Aktiv", started_on=date(2020, 1, 1))
    db_session.flush()
    due = anonymise.due_for_anonymisation(db_session, today=TODAY, retention_days=730)
    assert old.id in due and placed.id in due and recent.id not in due and active.id not in due
    assert anonymise.anonymise_expired(db_session, admin, today=TODAY, now=NOW, retention_days=0) == 0
    n = anonymise.anonymise_expired(db_session, admin, today=TODAY, now=NOW, retention_days=730)
    assert n == len(due) >= 1
    db_session.expire_all()
    assert db_session.get(Patient, old.id).first_name == "Anonymisiert"
    assert db_session.get(Patient, recent.id).first_name == "Neu"


def test_reads_are_recorded_once_per_period_and_listed_for_admins(db_session):
    admin = _admin(db_session)
    p, s, t, inquiry = _patient_with_history(db_session)
    assert reads.record_read(db_session, admin, "patient", p.id, now=NOW) is True
    assert reads.record_read(db_session, admin, "patient", p.id, now=NOW + timedelta(minutes=5)) is False
    assert reads.record_read(db_session, admin, "patient", p.id, now=NOW + timedelta(minutes=11)) is True
    mail = db_session.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inquiry.id)).one()
    assert reads.record_read(db_session, admin, "email", mail.id, now=NOW, patient_id=p.id) is True
    system = Actor(None, "system", Role.admin)
    assert reads.record_read(db_session, system, "patient", p.id, now=NOW) is False
    seen = reads.who_saw(db_session, admin, p.id)
    labels = [r.label for r in seen]
    assert labels.count("Patient:in: Details angesehen") == 2
    assert "E-Mail mit Patientendaten angesehen" in labels
    assert seen[0].at >= seen[-1].at  # newest first


def test_parse_patient_ref():
    assert reads.parse_patient_ref("P152") == 152
    assert reads.parse_patient_ref(" p 7 ") == 7
    assert reads.parse_patient_ref("152") == 152
    assert reads.parse_patient_ref("A152") is None
    assert reads.parse_patient_ref("P١٢") is None  # non-ASCII digits

