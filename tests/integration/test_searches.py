"""Platzsuche lifecycle: the pure state machine, and start/pause/resume/cancel on both databases."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.registry import searches
from core.platform.models import AuditEntry, Patient, Search
from core.platform.permissions import Actor, PermissionDenied
from core.registry.searches import IncompletePatient, SearchAction, SearchError, next_status
from core.platform.vocab import PatientStatus, Role, SearchStatus

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
COORD = Actor(None, "t.koord", Role.coordinator)
VIEWER = Actor(None, "t.lesen", Role.viewer)


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    "current, action, target",
    [
        (SearchStatus.active, SearchAction.pause, SearchStatus.paused),
        (SearchStatus.active, SearchAction.cancel, SearchStatus.cancelled),
        (SearchStatus.active, SearchAction.succeed, SearchStatus.successful),
        (SearchStatus.paused, SearchAction.resume, SearchStatus.active),
        (SearchStatus.paused, SearchAction.cancel, SearchStatus.cancelled),
    ],
)
def test_allowed_transitions(current, action, target):
    assert next_status(current, action) is target


@pytest.mark.parametrize(
    "current, action",
    [
        (SearchStatus.active, SearchAction.resume),
        (SearchStatus.paused, SearchAction.pause),
        (SearchStatus.paused, SearchAction.succeed),
        (SearchStatus.cancelled, SearchAction.resume),
        (SearchStatus.cancelled, SearchAction.pause),
        (SearchStatus.successful, SearchAction.cancel),
        (SearchStatus.successful, SearchAction.pause),
    ],
)
def test_forbidden_transitions_say_why_in_german(current, action):
    with pytest.raises(SearchError, match=f"Status „{current.label}“ kann nicht"):
        next_status(current, action)


def test_final_states_have_no_actions():
    assert searches.allowed_actions(SearchStatus.cancelled) == []
    assert searches.allowed_actions(SearchStatus.successful) == []


def test_missing_for_search_lists_german_names():
    class P:
        contracts_signed = False
        consent_given = True
        plz = "10115"
        birth_date = None
        insurer = ""
        symptoms: list = []
        availability = "Mo 09:00-10:00"

    assert searches.missing_for_search(P()) == [
        "Verträge unterschrieben", "Geburtsdatum", "Krankenkasse", "Symptome (mindestens eins)",
    ]


# --------------------------------------------------------------------------- services


COMPLETE = dict(
    first_name="Jana", last_name="Müller", contracts_signed=True, consent_given=True, plz="10115",
    birth_date=date(1990, 3, 14), insurer="AOK", symptoms=["Schlafstörungen"], availability="Mo 09:00-12:00",
)


def _patient(s, **over) -> Patient:
    p = Patient(**{**COMPLETE, **over})
    s.add(p)
    s.flush()
    return p


def test_start_refused_with_the_list_of_missing_fields(db_session):
    p = _patient(db_session, contracts_signed=False, consent_given=False, plz=None, birth_date=None, insurer=None,
                 symptoms=[], availability=None)
    with pytest.raises(IncompletePatient) as info:
        searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)
    assert info.value.missing == [label for _, label in searches.REQUIRED_FOR_SEARCH]
    assert str(info.value).startswith("Platzsuche kann noch nicht starten – es fehlt: Verträge unterschrieben, ")
    assert db_session.scalars(select(Search)).all() == []


def test_full_lifecycle_with_notes_status_and_audit(db_session):
    p = _patient(db_session)
    s = searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW, note="Erstgespräch geführt")
    assert s.status == SearchStatus.active and s.started_on == TODAY and p.status == PatientStatus.searching
    assert s.notes == "[23.11.2026 10:30 (t.koord)] Erstgespräch geführt"
    with pytest.raises(SearchError, match="bereits eine Platzsuche"):
        searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)

    later = NOW + timedelta(days=3)
    searches.pause_search(db_session, COORD, s.id, today=TODAY + timedelta(days=3), now=later, note="Urlaub")
    assert s.status == SearchStatus.paused and s.paused_on == TODAY + timedelta(days=3)
    with pytest.raises(SearchError, match="bereits eine Platzsuche im Status „pausiert“"):
        searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)
    with pytest.raises(SearchError):
        searches.pause_search(db_session, COORD, s.id, today=TODAY, now=later)

    searches.resume_search(db_session, COORD, s.id, today=TODAY + timedelta(days=10), now=later)
    assert s.status == SearchStatus.active and s.paused_on is None
    info = searches.searches_for_patient(db_session, COORD, p.id, today=TODAY + timedelta(days=10))[0]
    assert info.waiting_days == 10 and SearchAction.pause in info.actions and SearchAction.succeed not in info.actions

    searches.cancel_search(db_session, COORD, s.id, today=TODAY + timedelta(days=20), now=later, note="kein Bedarf mehr")
    assert s.status == SearchStatus.cancelled and s.ended_on == TODAY + timedelta(days=20)
    assert p.status == PatientStatus.search_cancelled
    assert s.notes.count("\n") == 2 and s.notes.endswith("kein Bedarf mehr")
    with pytest.raises(SearchError):
        searches.resume_search(db_session, COORD, s.id, today=TODAY, now=later)

    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity == "search", AuditEntry.entity_id == s.id).order_by(AuditEntry.id)
    ).all()
    assert actions == ["search.start", "search.pause", "search.resume", "search.cancel"]
    # a new search may start after the old one ended
    again = searches.start_search(db_session, COORD, p.id, today=TODAY + timedelta(days=30), now=later)
    assert again.id != s.id and p.status == PatientStatus.searching


def test_resume_needs_a_complete_patient(db_session):
    p = _patient(db_session)
    s = searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)
    searches.pause_search(db_session, COORD, s.id, today=TODAY, now=NOW)
    p.consent_given = False
    db_session.flush()
    with pytest.raises(IncompletePatient, match="Einwilligung Datenschutz"):
        searches.resume_search(db_session, COORD, s.id, today=TODAY, now=NOW)


def test_viewer_may_not_change_searches_and_sees_no_notes(db_session):
    p = _patient(db_session)
    with pytest.raises(PermissionDenied):
        searches.start_search(db_session, VIEWER, p.id, today=TODAY, now=NOW)
    s = searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW, note="vertraulich")
    with pytest.raises(PermissionDenied):
        searches.cancel_search(db_session, VIEWER, s.id, today=TODAY, now=NOW)
    assert searches.searches_for_patient(db_session, VIEWER, p.id, today=TODAY)[0].notes is None


def test_add_note(db_session):
    p = _patient(db_session)
    s = searches.start_search(db_session, COORD, p.id, today=TODAY, now=NOW)
    with pytest.raises(SearchError, match="Notiz ist leer"):
        searches.add_note(db_session, COORD, s.id, "  ", now=NOW)
    searches.add_note(db_session, COORD, s.id, "Rückruf  erbeten", now=NOW)
    assert s.notes == "[23.11.2026 10:30 (t.koord)] Rückruf erbeten"


def test_pause_and_cancel_withdraw_the_search_from_open_inquiries(db_session):
    """A paused search leaves a sent inquiry (marked reduced); a cancelled one leaves an unsent
    inquiry (dropped; the inquiry is cancelled when nobody is left)."""
    from core.platform.models import Inquiry
    from core.platform.vocab import InquiryStatus
    from tests.support.matching_fixtures import make_search, make_therapist, open_inquiry

    paused, other = make_search(db_session), make_search(db_session)
    sent = open_inquiry(db_session, make_therapist(db_session).id, [paused.id, other.id], status="sent")
    searches.change_search(db_session, COORD, paused.id, SearchAction.pause, today=TODAY, now=NOW)
    db_session.refresh(sent)
    member = next(m for m in sent.patients if m.search_id == paused.id)
    assert member.withdrawn_at is not None and member.withdrawn_reason == "Platzsuche pausiert"
    assert sent.reduced and sent.status == InquiryStatus.sent

    cancelled = make_search(db_session)
    draft = open_inquiry(db_session, make_therapist(db_session).id, [cancelled.id], status="draft")
    searches.change_search(db_session, COORD, cancelled.id, SearchAction.cancel, today=TODAY, now=NOW)
    db_session.expire_all()
    assert db_session.get(Inquiry, draft.id).status == InquiryStatus.cancelled
