"""Calls on SQLite and PostgreSQL (issue 10): follow-up after FOLLOW_UP_DAYS in phone hours,
failed attempts → next attempt on a later day → flagged after MAX_CALL_ATTEMPTS, an answer by
mail cancels pending calls, "erreicht" with mixed outcomes ends like the Vermittlung answer,
Warteliste keeps the search active, callback, wrong number, blocking, capacity."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.calls import follow_ups, services
from core.inquiries import answers as inquiries_answers
from core.inquiries import lifecycle
from core.mail import templates as mt
from core.matching import eligibility
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Search, Therapist
from core.platform.permissions import PermissionDenied
from core.platform.vocab import CallPurpose, CallResult, CallState, InquiryStatus, Outcome, ResponseType, SearchStatus
from core.registry import patient_detail
from core.registry import therapists as registry_therapists
from tests.integration.test_inquiries import create, send, sent_inquiry
from tests.support.matching_fixtures import COORD, NOW, SETTINGS, TODAY, VIEWER, make_search, make_therapist

BERLIN = ZoneInfo("Europe/Berlin")
A, RC, RU, W = Outcome.accepted, Outcome.rejected_capacity, Outcome.rejected_unsuitable, Outcome.waitlisted
HOURS = "Mo 09:00-12:00; Mi 14:00-15:00"  # NOW = Monday 23.11.2026 10:30 Berlin


def calls_of(s, inquiry_id):
    return list(s.scalars(select(PhoneCall).where(PhoneCall.inquiry_id == inquiry_id).order_by(PhoneCall.id)))


def local(moment):
    return moment.astimezone(BERLIN)


def old_sent_inquiry(s, *, days=7, **tkw):
    t = make_therapist(s, phone_hours=tkw.pop("phone_hours", HOURS), **tkw)
    x = make_search(s)
    i = sent_inquiry(s, t.id, [x.id], now=NOW - timedelta(days=days, minutes=1))
    return t, x, i


def result(s, call, res, now=NOW, **kw):
    return services.record_call_result(s, COORD, call.id, res, now=now, today=local(now).date(), settings=SETTINGS, **kw)


# --------------------------------------------------------------------------- follow-ups


def test_follow_up_after_seven_days_in_the_phone_hours(db_session):
    s = db_session
    _, _, early = old_sent_inquiry(s, days=6)
    t, _, due = old_sent_inquiry(s)
    report = follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    assert (report.calls, report.reminders, report.deferred) == (1, 0, 0)
    assert calls_of(s, early.id) == []
    (call,) = calls_of(s, due.id)
    assert call.purpose == CallPurpose.follow_up and call.therapist_id == t.id and call.state == CallState.scheduled
    assert local(call.scheduled_start) == datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)  # now, inside Mo 09:00-12:00
    assert not call.uses_fallback and call.duration_minutes == SETTINGS.CALL_SLOT_MINUTES
    assert s.scalar(select(AuditEntry).where(AuditEntry.action == "call.follow_up", AuditEntry.entity_id == call.id))
    assert follow_ups.schedule_follow_ups(s, now=NOW + timedelta(hours=1), settings=SETTINGS).calls == 0  # never twice


def test_follow_up_without_phone_hours_uses_the_fallback_and_without_phone_a_reminder(db_session):
    s = db_session
    _, _, no_hours = old_sent_inquiry(s, phone_hours=None)
    _, _, no_phone = old_sent_inquiry(s, phone=None)
    _, _, wrong = old_sent_inquiry(s, phone_invalid=True)
    report = follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    assert (report.calls, report.reminders, report.fallback) == (1, 2, 1)
    (call,) = calls_of(s, no_hours.id)
    assert call.uses_fallback and local(call.scheduled_start) == datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)
    for inquiry in (no_phone, wrong):
        assert calls_of(s, inquiry.id) == []
        templates = s.scalars(select(OutboxEmail.template).where(OutboxEmail.inquiry_id == inquiry.id)).all()
        assert sorted(templates) == sorted([mt.THERAPIST_INQUIRY, mt.THERAPIST_REMINDER])


def test_no_phone_no_email_flags_the_inquiry(db_session):
    s = db_session
    t, _, i = old_sent_inquiry(s)
    t.phone, t.email = None, None
    s.flush()
    report = follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    assert report.skipped == 1 and calls_of(s, i.id) == []
    s.refresh(i)
    assert i.needs_attention and "keine Telefonnummer" in i.attention_reason


def test_capacity_one_caller_two_follow_ups_never_at_once(db_session):
    s = db_session
    _, _, a = old_sent_inquiry(s)
    _, _, b = old_sent_inquiry(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=replace(SETTINGS, CALLERS=1))
    (ca,), (cb,) = calls_of(s, a.id), calls_of(s, b.id)
    assert abs(ca.scheduled_start - cb.scheduled_start) >= timedelta(minutes=5)
    _, _, c = old_sent_inquiry(s)
    _, _, d = old_sent_inquiry(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=replace(SETTINGS, CALLERS=3))
    # three lines: 10:30 has one call, 10:35 one; c and d go to the first slot with a free line
    starts = sorted(local(x.scheduled_start) for i in (c, d) for x in calls_of(s, i.id))
    assert starts == [datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)] * 2


# --------------------------------------------------------------------------- phone inquiry


def phone_inquiry(s, **tkw):
    t = make_therapist(s, email=None, phone_hours=tkw.pop("phone_hours", HOURS), **tkw)
    xs = [make_search(s) for _ in range(tkw.pop("n", 1))]
    i = create(s, t.id, [x.id for x in xs])
    report = send(s, i.id)
    return t, xs, s.get(Inquiry, i.id), report


def test_phone_inquiry_gets_its_call_when_sent(db_session):
    s = db_session
    _, _, i, report = phone_inquiry(s)
    assert i.status == InquiryStatus.queued and report.call_id
    (call,) = calls_of(s, i.id)
    assert call.purpose == CallPurpose.inquiry and local(call.scheduled_start) == datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)


def test_phone_inquiry_to_a_wrong_number_gets_no_call_but_a_flag(db_session):
    s = db_session
    _, _, i, report = phone_inquiry(s, phone_invalid=True)
    assert report.call_id is None and calls_of(s, i.id) == [] and "braucht Aufmerksamkeit" in report.message
    assert i.needs_attention and "falsch" in i.attention_reason


def test_three_failed_attempts_flag_the_inquiry(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    first = calls_of(s, i.id)[0]
    r1 = result(s, first, CallResult.not_reached, note="niemand da")
    second = s.get(PhoneCall, r1.next_call_id)
    assert first.state == CallState.failed and first.notes == "niemand da" and first.result == CallResult.not_reached
    # a later day, inside the phone hours: Mi 14:00
    assert local(second.scheduled_start) == datetime(2026, 11, 25, 14, 0, tzinfo=BERLIN)
    assert (second.attempt, second.previous_call_id) == (2, first.id)
    r2 = result(s, second, CallResult.busy, now=second.scheduled_start)
    third = s.get(PhoneCall, r2.next_call_id)
    assert local(third.scheduled_start) == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    r3 = result(s, third, CallResult.voicemail, now=third.scheduled_start, note="AB besprochen")
    assert r3.next_call_id is None and "3 Anrufversuche" in r3.flagged
    s.refresh(i)
    assert i.needs_attention and "Braucht Aufmerksamkeit" in i.attention_reason
    assert [c.notes for c in calls_of(s, i.id)] == ["niemand da", None, "AB besprochen"]  # every attempt keeps its note
    assert [c.state for c in calls_of(s, i.id)] == [CallState.failed] * 3


def test_reached_without_answer_marks_a_phone_inquiry_sent(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    report = result(s, calls_of(s, i.id)[0], CallResult.reached)
    s.refresh(i)
    assert i.status == InquiryStatus.sent and i.sent_at == NOW and "gesendet" in report.summary()


def test_call_made_in_vermittlung_completes_the_listed_call(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    lifecycle.mark_call_made(s, COORD, i.id, now=NOW)
    (call,) = calls_of(s, i.id)
    assert call.state == CallState.done and call.result == CallResult.reached and i.status == InquiryStatus.sent


def test_callback_books_the_agreed_time_outside_the_phone_hours(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    agreed = datetime(2026, 11, 24, 17, 40, tzinfo=BERLIN)  # Tuesday evening: no phone hours
    with pytest.raises(services.CallError, match="Rückruf-Termin"):
        result(s, calls_of(s, i.id)[0], CallResult.callback)
    r = result(s, calls_of(s, i.id)[0], CallResult.callback, callback_at=agreed, note="ruft zurück")
    nxt = s.get(PhoneCall, r.next_call_id)
    assert nxt.fixed_time and nxt.scheduled_start == agreed and nxt.state == CallState.scheduled
    assert calls_of(s, i.id)[0].state == CallState.done


def test_wrong_number_flags_the_phone(db_session):
    s = db_session
    t, _, i, _ = phone_inquiry(s)
    r = result(s, calls_of(s, i.id)[0], CallResult.wrong_number)
    s.refresh(t)
    s.refresh(i)
    assert t.phone_invalid and r.next_call_id is None and i.needs_attention and "falsch" in i.attention_reason
    assert s.scalar(select(AuditEntry).where(AuditEntry.action == "therapist.phone_invalid", AuditEntry.entity_id == t.id))


def test_blocking_the_therapist_cancels_pending_calls(db_session):
    s = db_session
    t, _, i = old_sent_inquiry(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    registry_therapists.block(s, COORD, t.id, "Praxis geschlossen", today=TODAY, now=NOW)
    assert [c.state for c in calls_of(s, i.id)] == [CallState.cancelled]


def test_manual_reschedule_and_cancel(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    call = calls_of(s, i.id)[0]
    later = datetime(2026, 11, 26, 8, 15, tzinfo=BERLIN)
    services.reschedule_call(s, COORD, call.id, later, now=NOW, note="Sekretariat: erst Donnerstag")
    assert call.scheduled_start == later and call.fixed_time
    with pytest.raises(services.CallError, match="Vergangenheit"):
        services.reschedule_call(s, COORD, call.id, NOW - timedelta(days=1), now=NOW)
    services.cancel_call(s, COORD, call.id, now=NOW, reason="doch per Fax")
    assert call.state == CallState.cancelled
    with pytest.raises(services.CallError, match="abgesagt"):
        result(s, call, CallResult.reached)


# --------------------------------------------------------------------------- answers


def test_answer_by_mail_cancels_pending_calls(db_session):
    s = db_session
    _, x, i = old_sent_inquiry(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    assert [c.state for c in calls_of(s, i.id)] == [CallState.scheduled]
    inquiries_answers.record_answer(s, COORD, i.id, {x.id: RC}, today=TODAY, now=NOW, settings=SETTINGS)
    (call,) = calls_of(s, i.id)
    assert call.state == CallState.cancelled and call.outcome == "Anfrage beantwortet"


def _world(s):
    """A therapist with a sent inquiry of three patients; the first is also in another open inquiry."""
    t = make_therapist(s, phone_hours=HOURS)
    xs = [make_search(s) for _ in range(3)]
    i = sent_inquiry(s, t.id, [x.id for x in xs], now=NOW - timedelta(days=8))
    other_t = make_therapist(s, phone_hours=HOURS)
    other = sent_inquiry(s, other_t.id, [xs[0].id], now=NOW - timedelta(days=8))
    return t, xs, i, other


def _state(s, t, xs, i, other):
    s.expire_all()
    i = s.get(Inquiry, i.id)
    members = sorted(i.patients, key=lambda m: m.position)
    return dict(
        status=i.status, response=i.response_type, answered=i.answered_at,
        outcomes=[(m.position, m.outcome, m.waitlist_until) for m in members],
        placed=[(s.get(Search, x.id).placed_therapist_id == t.id, s.get(Search, x.id).status) for x in xs],
        cooling=s.get(Therapist, t.id).next_contact_at,
        other=[(m.withdrawn_at is not None) for m in s.get(Inquiry, other.id).patients],
        pending_calls=sum(1 for c in calls_of(s, i.id) if c.state == CallState.scheduled),
    )


def test_reached_with_mixed_outcomes_ends_like_the_vermittlung_answer(db_session):
    s = db_session
    mixed = lambda xs: {xs[0].id: A, xs[1].id: RU, xs[2].id: W}  # noqa: E731
    until = date(2027, 3, 1)
    # world 1: the answer recorded in Vermittlung
    w1 = _world(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    inquiries_answers.record_answer(s, COORD, w1[2].id, mixed(w1[1]), today=TODAY, now=NOW, settings=SETTINGS,
                                    waitlist_until={w1[1][2].id: until})
    # world 2: the same answer given on the follow-up call
    w2 = _world(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    (call,) = calls_of(s, w2[2].id)
    report = result(s, call, CallResult.reached, outcomes=mixed(w2[1]), waitlist_until={w2[1][2].id: until},
                    note="Frau Dr. am Apparat")
    assert report.answer is not None and report.answer.placed == [w2[1][0].id]
    one, two = _state(s, *w1), _state(s, *w2)
    assert one == two
    assert two["status"] == InquiryStatus.answered and two["other"] == [True] and two["pending_calls"] == 0
    assert s.get(PhoneCall, call.id).state == CallState.done  # the call itself is done, not cancelled


def test_reached_with_an_incomplete_answer_changes_nothing(db_session):
    s = db_session
    t, xs, i, other = _world(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    (call,) = calls_of(s, i.id)
    with pytest.raises(services.CallError, match="fehlt das Ergebnis"):
        result(s, call, CallResult.reached, outcomes={xs[0].id: A})


def test_waitlist_keeps_the_search_active_and_counts_for_cooling(db_session):
    s = db_session
    t = make_therapist(s, phone_hours=HOURS)
    x = make_search(s)
    i = sent_inquiry(s, t.id, [x.id], now=NOW - timedelta(days=2))
    inquiries_answers.record_answer(s, COORD, i.id, {x.id: W}, today=TODAY, now=NOW, settings=SETTINGS,
                                    waitlist_until={x.id: date(2027, 2, 1)})
    s.expire_all()
    search = s.get(Search, x.id)
    member = s.scalars(select(InquiryPatient).where(InquiryPatient.inquiry_id == i.id)).one()
    assert search.status == SearchStatus.active and search.placed_therapist_id is None
    assert member.outcome == Outcome.waitlisted and member.waitlist_until == date(2027, 2, 1)
    assert s.get(Inquiry, i.id).response_type == ResponseType.waitlisted  # stored: the CHECK allows it
    assert s.get(Therapist, t.id).next_contact_at == TODAY + timedelta(weeks=SETTINGS.COOLING_WEEKS)
    # the patient may be asked elsewhere
    elsewhere = make_therapist(s, phone_hours=HOURS)
    assert eligibility.ineligibility_reasons(s, elsewhere.id, x.id, today=TODAY, settings=SETTINGS) == []
    # the patient's history shows the waiting-list entry
    history = patient_detail.patient_history(s, COORD, search.patient_id, today=TODAY)
    entry = next(h for h in history if h.kind == "Anfrage")
    assert entry.state == Outcome.waitlisted and "auf Warteliste (voraussichtlich ab 01.02.2027)" in entry.detail


def test_viewers_cannot_record_results(db_session):
    s = db_session
    _, _, i, _ = phone_inquiry(s)
    with pytest.raises(PermissionDenied):
        services.record_call_result(s, VIEWER, calls_of(s, i.id)[0].id, CallResult.reached, now=NOW, today=TODAY)


# --------------------------------------------------------------------------- inbox events


def test_a_bounced_inquiry_mail_falls_back_to_a_call_once(db_session):
    from core.platform import events

    s = db_session
    t, _, inquiry = old_sent_inquiry(s, days=1)
    bounce = events.EmailBounced(actor=COORD, now=NOW, address=t.email, reason="550 5.1.1 user unknown",
                                 outbox_email_id=None, therapist_id=t.id, patient_id=None, inquiry_id=inquiry.id)
    events.publish(s, bounce)
    (call,) = calls_of(s, inquiry.id)
    assert call.state == CallState.scheduled and call.therapist_id == t.id
    assert local(call.scheduled_start) == datetime(2026, 11, 23, 10, 30, tzinfo=BERLIN)  # inside Mo 09:00-12:00
    events.publish(s, bounce)  # a second bounce report plans nothing more
    assert len(calls_of(s, inquiry.id)) == 1


def test_an_out_of_office_reply_moves_follow_up_calls_to_the_first_day_back(db_session):
    from core.platform import events

    s = db_session
    t, _, inquiry = old_sent_inquiry(s)
    follow_ups.schedule_follow_ups(s, now=NOW, settings=SETTINGS)
    (call,) = calls_of(s, inquiry.id)
    assert local(call.scheduled_start).date() == date(2026, 11, 23)
    events.publish(s, events.OutOfOffice(actor=COORD, now=NOW, therapist_id=t.id, inquiry_id=inquiry.id,
                                         back_on=date(2026, 12, 2)))
    s.refresh(call)
    moved = local(call.scheduled_start)
    assert moved == datetime(2026, 12, 2, 14, 0, tzinfo=BERLIN)  # Wednesday 02.12., its phone hours 14:00-15:00
    assert s.scalar(select(AuditEntry).where(AuditEntry.action == "call.reschedule", AuditEntry.entity_id == call.id))
