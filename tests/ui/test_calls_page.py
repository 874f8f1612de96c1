"""AppTest: the Anrufliste for every role; a coordinator records "nicht erreicht" in the
dialog and the next attempt is planned; viewers see no phone numbers and no buttons."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.platform.db import get_engine, unit_of_work
from core.platform.models import AuditEntry, PhoneCall
from core.platform.vocab import CallPurpose, CallResult, CallState, InquiryStatus, Role
from tests.support.outbox_fixtures import make_inquiry, make_patient, make_therapist
from tests.support.apptest import login, texts

ALWAYS = "Mo 00:00-23:59; Di 00:00-23:59; Mi 00:00-23:59; Do 00:00-23:59; Fr 00:00-23:59; Sa 00:00-23:59; So 00:00-23:59"


@pytest.fixture
def calls_db(app_db):
    """One sent inquiry with a call due now (after a failed attempt earlier today)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    with unit_of_work(get_engine(app_db)) as s:
        t = make_therapist(s, phone="030 1234567", phone_hours=ALWAYS, last_name="Anrufziel")
        inq = make_inquiry(s, t, [make_patient(s, first_name="Erika", last_name="Muster")], status=InquiryStatus.sent,
                           sent_at=now - timedelta(days=8))
        first = PhoneCall(therapist_id=t.id, inquiry_id=inq.id, purpose=CallPurpose.follow_up, attempt=1,
                          scheduled_start=now - timedelta(minutes=1), state=CallState.failed,
                          result=CallResult.busy, notes="Besetzt, später nochmal", created_at=now, updated_at=now)
        s.add(first)
        s.flush()
        s.add(PhoneCall(therapist_id=t.id, inquiry_id=inq.id, purpose=CallPurpose.follow_up, attempt=2,
                        previous_call_id=first.id, scheduled_start=now, state=CallState.scheduled,
                        created_at=now, updated_at=now))
    return {"inquiry_id": inq.id}


def open_page(role):
    at = login(role)
    at.switch_page("pages/calls.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("role", list(Role))
def test_page_renders_for_every_role(calls_db, app_db, role):
    at = open_page(role)
    shown = texts(at)
    assert "Anrufliste" in shown and "Frühere Versuche" in shown
    assert "Besetzt, später nochmal" in "\n".join(str(t.value) for t in at.text)
    buttons = [b.label for b in at.button]
    if role == Role.viewer:
        assert "Ergebnis erfassen" not in buttons and "030 1234567" not in shown
        assert "Erika" not in "\n".join(str(t.value) for t in at.text)  # no names for viewers
    else:
        assert "Ergebnis erfassen" in buttons and "030 1234567" in shown
    with unit_of_work(get_engine(app_db)) as s:  # names and symptoms shown: the read is audited
        reads = s.scalars(select(AuditEntry.action).where(AuditEntry.action == "read.patient")).all()
    assert len(reads) == (0 if role == Role.viewer else 1)


def test_coordinator_records_not_reached_and_sees_the_next_attempt(calls_db, app_db):
    at = open_page(Role.coordinator)
    at.button(key=next(b.key for b in at.button if b.label == "Ergebnis erfassen")).click()
    at.run()
    assert not at.exception, at.exception
    at.radio(key="dlg_result").set_value(CallResult.not_reached)
    at.run()
    at.text_area(key="dlg_note").input("Niemand geht ran")
    at.button(key="dlg_save").click()
    at.run()
    assert not at.exception, at.exception
    with unit_of_work(get_engine(app_db)) as s:
        calls = list(s.scalars(select(PhoneCall).where(PhoneCall.inquiry_id == calls_db["inquiry_id"]).order_by(PhoneCall.id)))
        assert [c.state for c in calls] == [CallState.failed, CallState.failed, CallState.scheduled]
        assert calls[1].notes == "Niemand geht ran" and calls[2].attempt == 3
    assert any("Nächster Anruf" in str(t.value) for t in at.toast)
