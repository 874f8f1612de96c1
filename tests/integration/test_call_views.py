"""The Anrufliste's queries on SQLite and PostgreSQL: the day in time order with counts,
"Meine Anrufe", Jetzt erreichbar sorted by window close, the week, the outcome form's
members, and what viewers may see."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.calls import views
from core.platform.models import PhoneCall, User
from core.platform.vocab import CallPurpose, CallResult, CallState, InquiryStatus, Role
from tests.support.matching_fixtures import COORD, SETTINGS, TODAY, VIEWER, make_therapist
from tests.support.outbox_fixtures import make_inquiry, make_patient

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)  # Monday


def call(s, t, inquiry=None, *, at, state=CallState.scheduled, **kw):
    c = PhoneCall(therapist_id=t.id, inquiry_id=inquiry.id if inquiry else None, purpose=kw.pop("purpose", CallPurpose.follow_up),
                  scheduled_start=at, state=state, created_at=AT, updated_at=AT, **kw)
    s.add(c)
    s.flush()
    return c


def test_day_list_in_time_order_with_counts_patients_and_earlier_attempts(db_session):
    s = db_session
    t = make_therapist(s, last_name="Frueh", phone_hours="Mo 09:00-12:00", phone="030 111")
    u = make_therapist(s, last_name="Spaet", phone_hours="Mo 14:00-15:00", phone="030 222")
    inq = make_inquiry(s, t, [make_patient(s, first_name="Erika", last_name="Muster")], status=InquiryStatus.sent, sent_at=AT - timedelta(days=8))
    call(s, t, inq, at=AT - timedelta(hours=1), state=CallState.failed, result=CallResult.busy, notes="besetzt")
    call(s, u, at=AT.replace(hour=14))
    call(s, t, inq, at=AT, attempt=2)
    call(s, t, at=AT + timedelta(days=1))  # another day
    call(s, t, at=AT.replace(hour=11), state=CallState.cancelled)  # cancelled: not on the list
    day = views.day_calls(s, COORD, TODAY, today=TODAY, settings=SETTINGS)
    assert [r.therapist_name.split()[-1] for r in day.rows] == ["Frueh", "Frueh", "Spaet"]
    assert (day.done, day.open, round(day.progress, 2)) == (1, 2, 0.33)
    current = day.rows[1]
    assert current.phone == "030 111" and current.inquiry_ref == f"A{inq.id}"
    assert current.patients and "Erika Muster" in current.patients[0] and current.patients[0].startswith(f"A{inq.id}-1")
    assert current.earlier == (f"{(AT - timedelta(hours=1)):%d.%m. %H:%M} Versuch 1: besetzt – besetzt",)
    assert "Nachfassen" in current.script and f"A{inq.id}" in current.script
    # viewers: no phone numbers, no names, no symptoms
    seen = views.day_calls(s, VIEWER, TODAY, today=TODAY, settings=SETTINGS).rows[1]
    assert seen.phone is None and "Erika" not in seen.patients[0] and "Schlaf" not in seen.patients[0]


def test_mine_filters_to_the_assigned_calls(db_session):
    s = db_session
    user = User(username="k.eins", display_name="Kim Eins", role=Role.coordinator, created_at=AT, updated_at=AT)
    s.add(user)
    s.flush()
    t = make_therapist(s, phone_hours="Mo 09:00-12:00")
    call(s, t, at=AT, assigned_to=user.id)
    call(s, t, at=AT + timedelta(minutes=5))
    me = COORD.__class__(user_id=user.id, username="k.eins", role=Role.coordinator)
    mine = views.day_calls(s, me, TODAY, today=TODAY, mine=True, settings=SETTINGS)
    assert [r.assigned_name for r in mine.rows] == ["Kim Eins"]
    assert (user.id, "Kim Eins") in views.coordinators(s, COORD)


def test_reachable_now_sorted_by_when_the_window_closes(db_session):
    s = db_session
    late = make_therapist(s, last_name="Lang", phone_hours="Mo 09:00-12:00")
    soon = make_therapist(s, last_name="Kurz", phone_hours="Mo 10:00-10:45")
    closed = make_therapist(s, last_name="Zu", phone_hours="Mo 14:00-15:00")
    call(s, late, at=AT)
    call(s, soon, at=AT - timedelta(days=2))  # overdue matter
    call(s, closed, at=AT)
    call(s, late, at=AT.replace(hour=9), purpose=CallPurpose.inquiry)  # one row per therapist
    rows = views.reachable_now(s, COORD, now=AT, settings=SETTINGS)
    assert [r.therapist_name.split()[-1] for r in rows] == ["Kurz", "Lang"]
    assert rows[0].window_closes == AT.replace(hour=10, minute=45) and rows[0].matter == "Nachfassen fällig"


def test_week_view_and_answer_members(db_session):
    s = db_session
    t = make_therapist(s, last_name="Woche", phone_hours="Mo 09:00-12:00")
    inq = make_inquiry(s, t, [make_patient(s), make_patient(s, first_name="Zweite")], status=InquiryStatus.sent, sent_at=AT)
    c = call(s, t, inq, at=AT)
    call(s, t, at=AT + timedelta(days=2), state=CallState.done)
    week = views.week_view(s, COORD, TODAY)
    assert len(week) == 7 and week[TODAY] == [f"10:30 T{t.id} Woche · Nachfassen"]
    assert week[TODAY + timedelta(days=2)] == [f"10:30 T{t.id} Woche · Nachfassen (erledigt)"]
    members = views.answer_members(s, COORD, c.id, today=TODAY)
    assert [m.label.split(" · ")[0] for m in members] == [f"A{inq.id}-1", f"A{inq.id}-2"]


def test_day_list_survives_a_result_recorded_by_someone_else_meanwhile(db_session):
    """Found by bench/load.py: the page had loaded a call (still open) when another
    coordinator recorded its result; the earlier-attempts query then matched the call by its
    new result, but the session's stale copy still said None (AttributeError on `.label`)."""
    s = db_session
    t = make_therapist(s, last_name="Frueh", phone_hours="Mo 09:00-12:00")
    inq = make_inquiry(s, t, [make_patient(s)], status=InquiryStatus.sent, sent_at=AT - timedelta(days=8))
    first = call(s, t, inq, at=AT - timedelta(hours=1))
    call(s, t, inq, at=AT, attempt=2)
    s.expunge_all()
    loaded = s.scalars(select(PhoneCall).where(PhoneCall.id == first.id)).one()  # the page has it, open
    assert "result" in loaded.__dict__ and loaded.result is None
    # another coordinator's committed write, as READ COMMITTED shows it to the next statement
    table = PhoneCall.__table__
    s.connection().execute(table.update().where(table.c.id == first.id).values(result="busy", state="failed"))
    day = views.day_calls(s, COORD, TODAY, today=TODAY, settings=SETTINGS)
    assert day.rows[1].earlier == (f"{(AT - timedelta(hours=1)):%d.%m. %H:%M} Versuch 1: besetzt",)
