"""Therapists on both databases: validation rules through the service, duplicates, edits
(hand-edited fields), status changes with audit, list filters/sort/paging, viewer projection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.registry import therapists
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, Therapist
from core.registry.patients import DuplicateWarning
from core.platform.permissions import PermissionDenied
from core.registry.therapists import TherapistFilter
from core.platform.validation import ValidationErrors
from core.platform.vocab import CoordinatesSource, EmailState, InquiryChannel, InquiryStatus, Outcome, SearchStatus, TherapistStatus
from tests.support.registry_fixtures import COORD, NOW, THERAPIST, TODAY, VIEWER


GOOD = THERAPIST


def _create(s, **over):
    return therapists.create_therapist(s, COORD, {**GOOD, **over}, now=NOW, today=TODAY)


def test_create_normalises_and_places_at_centroid(db_session, plz_table):
    t = _create(db_session)
    assert t.phone == "+49301234567" and t.fax == "+49301234568"
    assert t.methods == {"VT", "TP"} and t.languages == ["Englisch", "Türkisch"]
    assert t.phone_hours == "Mo 08:00-09:00; Do 12:00-12:50"
    assert (t.age_min, t.age_max) == (18, 65)
    assert t.status == TherapistStatus.active
    assert (t.lat, t.lon) == (52.532, 13.385) and t.coordinates_source == CoordinatesSource.plz_centroid
    assert t.geocode_pending is True
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.entity == "therapist")).one()
    assert entry.action == "therapist.create" and entry.changes["methods"] == ["VT", "TP"]


BAD = [
    ("last_name", "", "Nachname fehlt"),
    ("plz", "1234", "PLZ muss fünfstellig sein"),
    ("plz", "99999", "unbekannt"),
    ("phone", "0301", "Telefon"),
    ("fax", "abc", "Fax"),
    ("email", "praxis(at)berg.de", "E-Mail"),
    ("website", "keine seite", "Web-Adresse"),
    ("methods", "VT|Gestalt", "kein Verfahren"),
    ("languages", "Englisch|42", "keine Sprache"),
    ("age_min", "-1", "zwischen 0 und 120"),
    ("age_max", "121", "zwischen 0 und 120"),
    ("phone_hours", "Mo 9-8", "Ende muss nach dem Beginn"),
    ("phone_hours", "Mo 8-10, 9-11", "überschneiden sich"),
    ("phone_hours", "Montags 9-10", "Unbekannter Wochentag"),
    ("last_contact_phone_on", "24.11.2026", "Zukunft"),
    ("next_contact_at", "2026-13-01", "kein gültiges Datum"),
    ("knows_us", "vielleicht", "Ja/Nein"),
]


@pytest.mark.parametrize("field, bad, words", BAD, ids=[f"{f}-{w}" for f, _, w in BAD])
def test_every_rule_rejects_bad_value_and_saves_nothing(db_session, plz_table, field, bad, words):
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, **{field: bad})
    assert words in info.value.errors[field], info.value.errors
    assert db_session.scalar(select(func.count()).select_from(Therapist)) == 0


def test_age_range_min_le_max(db_session):
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, age_min="40", age_max="30")
    assert "Mindestalter" in info.value.errors["age_max"]
    assert _create(db_session, age_min="30", age_max="30").age_min == 30


def test_prefers_group_needs_group_offer(db_session):
    with pytest.raises(ValidationErrors) as info:
        _create(db_session, offers_group=False, prefers_group=True)
    assert "prefers_group" in info.value.errors


def test_duplicates_by_name_and_plz_or_email(db_session):
    first = _create(db_session)
    with pytest.raises(DuplicateWarning) as info:
        _create(db_session, email="", first_name="TOM", last_name="berg")
    assert info.value.matches[0].id == first.id and "gleicher Name und gleiche PLZ" in info.value.matches[0].reason
    with pytest.raises(DuplicateWarning) as info:
        _create(db_session, first_name="Lisa", last_name="Kern", plz="20095", email="PRAXIS@berg.example")
    assert "gleiche E-Mail-Adresse" in info.value.matches[0].reason
    other = _create(db_session, first_name="Lisa", last_name="Kern", plz="20095", email="lisa@kern.example")
    assert other.id != first.id
    shared = therapists.create_therapist(
        db_session, COORD, {**GOOD, "first_name": "Eva", "last_name": "Berg"}, now=NOW, today=TODAY, allow_duplicate=True
    )
    assert shared.email == first.email


def test_update_marks_hand_edited_fields_and_regeocodes_on_address_change(db_session, plz_table):
    t = _create(db_session)
    t.geocode_pending = False
    t.external_id = "kbv-1"
    db_session.flush()
    therapists.update_therapist(db_session, COORD, t.id, {"methods": ["VT"], "phone": "040 123456"}, now=NOW, today=TODAY)
    assert t.methods == {"VT"} and t.phone == "+4940123456"
    assert t.hand_edited_fields == ["methods", "phone"] and t.geocode_pending is False
    therapists.update_therapist(db_session, COORD, t.id, {"plz": "20095", "city": ""}, now=NOW, today=TODAY)
    assert t.city == "Hamburg" and t.lat == 53.551 and t.geocode_pending is True
    assert set(t.hand_edited_fields) == {"methods", "phone", "plz", "city"}
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "therapist.update").order_by(AuditEntry.id)).first()
    assert entry.changes["methods"] == [["VT", "TP"], ["VT"]] and entry.changes["phone"] == ["…", "(geändert)"]


def test_block_unblock_deactivate(db_session):
    t = _create(db_session)
    with pytest.raises(ValidationErrors) as info:
        therapists.block(db_session, COORD, t.id, " ", today=TODAY, now=NOW)
    assert "Sperrgrund fehlt" in info.value.errors["reason"]
    with pytest.raises(PermissionDenied):
        therapists.block(db_session, VIEWER, t.id, "x", today=TODAY, now=NOW)
    therapists.block(db_session, COORD, t.id, "Beschwerde einer Patientin", today=TODAY, now=NOW)
    assert (t.status, t.status_reason, t.status_changed_on) == (TherapistStatus.blocked, "Beschwerde einer Patientin", TODAY)
    with pytest.raises(therapists.TherapistError, match="bereits gesperrt"):
        therapists.block(db_session, COORD, t.id, "nochmal", today=TODAY, now=NOW)
    therapists.unblock(db_session, COORD, t.id, today=TODAY + timedelta(days=1), now=NOW)
    assert t.status == TherapistStatus.active and t.status_reason is None
    therapists.deactivate(db_session, COORD, t.id, today=TODAY, now=NOW, reason="Ruhestand")
    assert t.status == TherapistStatus.inactive and t.status_reason == "Ruhestand"
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "therapist").order_by(AuditEntry.id)).all()
    assert actions == ["therapist.create", "therapist.block", "therapist.unblock", "therapist.deactivate"]
    block_entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "therapist.block")).one()
    assert block_entry.changes == {"status": ["active", "blocked"], "reason": "Beschwerde einer Patientin"}


def test_viewer_sees_name_methods_and_whether_there_is_an_email(db_session):
    # permissions and hidden fields of both kinds: tests/integration/test_registry_records.py
    t = _create(db_session)
    detail = therapists.get_therapist(db_session, VIEWER, t.id, today=TODAY)
    assert detail.name == "Dr. Tom Berg" and detail.values["methods"] == ["VT", "TP"]
    rows, _ = therapists.list_therapists(db_session, VIEWER, today=TODAY)
    assert rows[0].has_email is True
    rows, _ = therapists.list_therapists(db_session, COORD, today=TODAY)
    assert rows[0].email == "praxis@berg.example"


# --------------------------------------------------------------------------- lists


@pytest.fixture
def population(db_session):
    data = [
        # last, plz, city, status, methods, languages, pot, knows, next_contact, email, hours
        ("Adler", "10115", "Berlin", TherapistStatus.active, "VT", ["Englisch"], True, False, None, "a@x.de", "Mo 09:00-10:00"),
        ("Böhm", "10247", "Berlin", TherapistStatus.active, "TP", ["Türkisch", "Englisch"], False, True, TODAY + timedelta(days=5), None, None),
        ("Cramer", "20095", "Hamburg", TherapistStatus.blocked, "VT", [], False, False, TODAY - timedelta(days=1), "c@x.de", None),
        ("Ünal", "10961", "Berlin", TherapistStatus.inactive, "AP", ["Türkisch"], True, True, None, "", "Di 10:00-11:00"),
        ("Dorn", "80331", "München", TherapistStatus.active, "ST", ["Französisch"], False, False, None, None, None),
    ]
    for last, plz, city, status, method, langs, pot, knows, nxt, email, hours in data:
        db_session.add(Therapist(
            first_name="Anna", last_name=last, plz=plz, city=city, status=status, languages=langs,
            potentially_available=pot, knows_us=knows, next_contact_at=nxt, email=email, phone_hours=hours,
            **{therapists.METHOD_COLUMNS[method]: True},
        ))
    db_session.flush()


def test_list_filters(db_session, population):
    def run(**kw):
        rows, total = therapists.list_therapists(db_session, COORD, TherapistFilter(**kw), today=TODAY)
        assert total == len(rows)
        return sorted(r.last_name for r in rows)

    assert run() == sorted(["Adler", "Böhm", "Cramer", "Ünal", "Dorn"])
    assert run(statuses=(TherapistStatus.active,)) == ["Adler", "Böhm", "Dorn"]
    assert run(statuses=(TherapistStatus.blocked, TherapistStatus.inactive)) == ["Cramer", "Ünal"]
    assert run(plz_prefix="10") == ["Adler", "Böhm", "Ünal"]
    assert run(plz_prefix="10", methods=("VT", "AP")) == ["Adler", "Ünal"]
    assert run(city="hamb") == ["Cramer"]
    assert run(name="ünal") == ["Ünal"]
    assert run(name="böhm anna") == ["Böhm"]
    assert run(language="Türkisch") == ["Böhm", "Ünal"]
    assert run(language="englisch") == ["Adler", "Böhm"]
    assert run(potentially_available=True) == ["Adler", "Ünal"]
    assert run(knows_us=False) == ["Adler", "Cramer", "Dorn"]
    assert run(in_cooling=True) == ["Böhm"]
    assert run(in_cooling=False) == ["Adler", "Cramer", "Dorn", "Ünal"]
    assert run(has_email=True) == ["Adler", "Cramer"]
    assert run(has_email=False) == ["Böhm", "Dorn", "Ünal"]
    assert run(has_phone_hours=True) == ["Adler", "Ünal"]
    assert run(has_phone_hours=False) == ["Böhm", "Cramer", "Dorn"]


def test_list_rows_sort_and_paging(db_session, population):
    rows, total = therapists.list_therapists(db_session, COORD, TherapistFilter(sort="plz"), today=TODAY, limit=2)
    assert total == 5 and [r.plz for r in rows] == ["10115", "10247"]
    rows, _ = therapists.list_therapists(db_session, COORD, TherapistFilter(sort="plz"), today=TODAY, offset=4, limit=2)
    assert [r.plz for r in rows] == ["80331"]
    rows, _ = therapists.list_therapists(db_session, COORD, TherapistFilter(sort="plz", descending=True), today=TODAY)
    assert rows[0].plz == "80331"
    boehm = next(r for r in therapists.list_therapists(db_session, COORD, TherapistFilter(name="Böhm"), today=TODAY)[0])
    assert boehm.in_cooling and boehm.methods == ("TP",) and boehm.languages == ("Türkisch", "Englisch")
    assert therapists.language_options(db_session) == ["Englisch", "Französisch", "Türkisch"]
    text = TherapistFilter(plz_prefix="10", methods=("VT",), in_cooling=False).describe()
    assert text == "PLZ 10…; Verfahren: VT; nicht in Abkühlungsphase"


def test_lookup_for_pickers(db_session, population):
    found = therapists.lookup(db_session, COORD, "ad")
    assert len(found) == 1 and found[0][1].startswith("Adler, Anna (10115 Berlin")


def test_history_inquiries_emails_calls_audit(db_session):
    t = _create(db_session)
    p = Patient(first_name="Jana", last_name="Müller")
    db_session.add(p)
    db_session.flush()
    s = Search(patient_id=p.id, status=SearchStatus.active, started_on=TODAY)
    db_session.add(s)
    db_session.flush()
    inq = Inquiry(therapist_id=t.id, channel=InquiryChannel.email, status=InquiryStatus.answered, size=1,
                  sent_at=NOW - timedelta(days=9), answered_at=NOW - timedelta(days=2))
    inq.patients.append(InquiryPatient(search_id=s.id, position=1, outcome=Outcome.rejected_capacity))
    db_session.add(inq)
    db_session.add(OutboxEmail(therapist_id=t.id, to_address="praxis@berg.example", to_name="Berg", subject="Anfrage A1",
                               body_html="x", body_text="x", template="t", state=EmailState.sent, sent_at=NOW - timedelta(days=9)))
    db_session.add(PhoneCall(therapist_id=t.id, scheduled_start=NOW - timedelta(days=1), outcome="kein Platz"))
    db_session.flush()
    items = therapists.therapist_history(db_session, COORD, t.id)
    assert [i.kind for i in items][:2] == ["Protokoll", "Telefonat"]
    inquiry_item = next(i for i in items if i.kind == "Anfrage")
    assert "1× abgelehnt (Kapazität)" in inquiry_item.detail
    assert [i.at for i in items] == sorted((i.at for i in items), reverse=True)


def test_blocking_cancels_unsent_inquiries_but_keeps_sent_ones(db_session):
    from tests.support.matching_fixtures import make_search, make_therapist, open_inquiry

    t = make_therapist(db_session)
    draft = open_inquiry(db_session, t.id, [make_search(db_session).id], status="draft")
    sent = open_inquiry(db_session, t.id, [make_search(db_session).id], status="sent")
    therapists.block(db_session, COORD, t.id, "Beschwerde einer Patientin", today=TODAY, now=NOW)
    db_session.expire_all()
    assert db_session.get(Inquiry, draft.id).status == InquiryStatus.cancelled
    assert db_session.get(Inquiry, sent.id).status == InquiryStatus.sent  # the practice may still answer

    other = make_therapist(db_session)
    queued = open_inquiry(db_session, other.id, [make_search(db_session).id], status="queued")
    therapists.deactivate(db_session, COORD, other.id, today=TODAY, now=NOW)
    db_session.expire_all()
    assert db_session.get(Inquiry, queued.id).status == InquiryStatus.cancelled
