"""Inquiry life cycle on SQLite and PostgreSQL: create (re-check), send (outbox / call),
answer (one transaction), conflicts, withdrawal, later outcomes, expiry, success, and the
whole flow."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.inquiries import answers as inquiries_answers
from core.inquiries import closing
from core.inquiries import lifecycle as inquiries_lifecycle
from core.inquiries import loading as inquiry_loading
from core.inquiries import views as inquiry_views
from core.matching import candidates
from core.matching import eligibility
from core.mail import delivery as mail_delivery
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, Search, SearchExclusion, Therapist
from core.platform.permissions import PermissionDenied
from core.platform.vocab import CallState, EmailState, InquiryChannel, InquiryStatus, Outcome, PatientStatus, ResponseType, SearchStatus
from tests.support.matching_fixtures import COORD, NOW, SETTINGS, TODAY, VIEWER, make_search, make_therapist, north, open_inquiry

A, RC, RU, RO, NR = (Outcome.accepted, Outcome.rejected_capacity, Outcome.rejected_unsuitable, Outcome.rejected_other,
                     Outcome.no_response)


def create(s, tid, sids, **kw):
    return inquiries_lifecycle.create_inquiry(s, COORD, tid, sids, today=TODAY, now=NOW, settings=SETTINGS, **kw)


def send(s, inquiry_id, now=NOW):
    return inquiries_lifecycle.send_inquiry(s, COORD, inquiry_id, today=TODAY, now=now, settings=SETTINGS)


def deliver(s, now):
    """What the outbox job does: claim due mails and record their delivery."""
    claimed = mail_delivery.claim_due(s, owner="test", now=now, limit=100, lease_until=now + timedelta(minutes=5), settings=SETTINGS)
    for mail in claimed:
        mail_delivery.mark_sent(s, mail, owner="test", sent_at=now)
    s.flush()
    s.expire_all()
    return claimed


def answer(s, inquiry_id, outcomes, now=NOW, today=TODAY):
    return inquiries_answers.record_answer(s, COORD, inquiry_id, outcomes, today=today, now=now, settings=SETTINGS)


def sent_inquiry(s, tid, sids, now=NOW):
    i = create(s, tid, sids)
    send(s, i.id, now)
    deliver(s, now)
    return s.get(Inquiry, i.id)


# =========================================================================== create


def test_create_rechecks_every_rule_and_audits(db_session):
    s = db_session
    t = make_therapist(s)
    ok = make_search(s)
    far = make_search(s, at=north(40))
    with pytest.raises(inquiry_loading.InquiryError) as err:
        create(s, t.id, [ok.id, far.id])
    assert "Zu weit" in " ".join(err.value.reasons[far.id]) and err.value.reasons[ok.id] == []
    i = create(s, t.id, [ok.id])
    assert i.status == InquiryStatus.draft and i.channel == InquiryChannel.email and i.size == 1
    assert [m.position for m in i.patients] == [1]
    assert s.scalar(select(AuditEntry).where(AuditEntry.action == "inquiry.create", AuditEntry.entity_id == i.id))
    # the therapist is pending now: a second inquiry is refused with the therapist reason
    with pytest.raises(inquiry_loading.InquiryError, match="offene Anfrage"):
        create(s, t.id, [make_search(s).id])


def test_create_refuses_size_duplicates_and_viewers(db_session):
    s = db_session
    t = make_therapist(s)
    xs = [make_search(s) for _ in range(7)]
    with pytest.raises(inquiry_loading.InquiryError, match="höchstens 6"):
        create(s, t.id, [x.id for x in xs])
    with pytest.raises(inquiry_loading.InquiryError, match="doppelt"):
        create(s, t.id, [xs[0].id, xs[0].id])
    with pytest.raises(inquiry_loading.InquiryError, match="mindestens eine"):
        create(s, t.id, [])
    with pytest.raises(PermissionDenied):
        inquiries_lifecycle.create_inquiry(s, VIEWER, t.id, [xs[0].id], today=TODAY, now=NOW, settings=SETTINGS)
    assert len(create(s, t.id, [x.id for x in xs[:6]]).patients) == 6


# =========================================================================== send


def test_send_by_email_waits_queued_until_delivered(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s)
    i = create(s, t.id, [x.id])
    report = send(s, i.id)
    assert report.sent and report.email_id
    s.refresh(i)
    assert i.status == InquiryStatus.queued and i.sent_at is None
    mail = s.get(OutboxEmail, report.email_id)
    assert mail.state == EmailState.queued and mail.inquiry_id == i.id
    later = NOW + timedelta(minutes=2)
    deliver(s, later)
    i = s.get(Inquiry, i.id)
    assert i.status == InquiryStatus.sent and i.sent_at == later
    with pytest.raises(inquiry_loading.InquiryError, match="bereits gesendet"):
        send(s, i.id)


def test_send_without_email_schedules_a_call_sent_when_made(db_session):
    s = db_session
    t = make_therapist(s, email=None)
    x = make_search(s)
    i = create(s, t.id, [x.id])
    assert i.channel == InquiryChannel.phone
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    report = send(s, i.id, now=saturday)
    call = s.get(PhoneCall, report.call_id)
    local = call.scheduled_start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)  # Monday 09:00, the phone hours' first slot
    s.refresh(i)
    assert i.status == InquiryStatus.queued and i.sent_at is None
    inquiries_lifecycle.mark_call_made(s, COORD, i.id, now=saturday + timedelta(days=2))
    assert i.status == InquiryStatus.sent and i.sent_at == saturday + timedelta(days=2)


def test_send_drops_members_that_no_longer_qualify(db_session):
    s = db_session
    t = make_therapist(s)
    a, b = make_search(s), make_search(s)
    i = create(s, t.id, [a.id, b.id])
    s.get(Search, a.id).status = SearchStatus.paused
    s.flush()
    report = send(s, i.id)
    assert report.sent and list(report.dropped) == [a.id]
    s.refresh(i)
    assert [m.search_id for m in i.patients] == [b.id] and i.size == 1


def test_answer_before_sending_is_refused(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s)
    i = create(s, t.id, [x.id])
    send(s, i.id)
    with pytest.raises(inquiry_loading.InquiryError, match="nach dem Versand"):
        answer(s, i.id, {x.id: A})


# =========================================================================== answers


def test_answer_mixed_outcomes_is_one_consistent_change(db_session):
    s = db_session
    t = make_therapist(s, email="praxis.berg@example.org", last_name="Berg")
    colleague = make_therapist(s, email="PRAXIS.BERG@example.org", plz="80331", last_name="Kollegin")
    xs = [make_search(s, started_on=date(2026, 1, i + 1)) for i in range(5)]
    i = sent_inquiry(s, t.id, [x.id for x in xs])
    call = PhoneCall(therapist_id=t.id, inquiry_id=i.id, purpose="follow_up", scheduled_start=NOW + timedelta(days=1))
    s.add(call)
    s.flush()
    report = answer(s, i.id, {xs[0].id: A, xs[1].id: RC, xs[2].id: RU, xs[3].id: RO, xs[4].id: NR})
    s.expire_all()
    i = s.get(Inquiry, i.id)
    assert i.status == InquiryStatus.answered and i.response_type == ResponseType.partly_accepted
    assert report.response_type == ResponseType.partly_accepted
    assert [m.outcome for m in i.patients] == [A, RC, RU, RO, NR]
    # cooling for the therapist and the practice
    until = TODAY + timedelta(weeks=SETTINGS.COOLING_WEEKS)
    assert s.get(Therapist, t.id).next_contact_at == until
    assert s.get(Therapist, colleague.id).next_contact_at == until
    # placement, exclusion, call cancelled
    assert s.get(Search, xs[0].id).placed_therapist_id == t.id and report.placed == [xs[0].id]
    assert s.scalar(select(SearchExclusion).where(SearchExclusion.search_id == xs[2].id, SearchExclusion.therapist_id == t.id))
    assert s.get(PhoneCall, call.id).state == CallState.cancelled
    with pytest.raises(inquiry_loading.InquiryError, match="bereits beantwortet"):
        answer(s, i.id, {x.id: A for x in xs})


@pytest.mark.parametrize(
    "outcomes, kind",
    [((A, A), ResponseType.all_accepted), ((RC, RO), ResponseType.all_rejected), ((NR, NR), ResponseType.no_response)],
)
def test_response_type_after_outcomes_are_set(db_session, outcomes, kind):
    s = db_session
    t = make_therapist(s)
    xs = [make_search(s), make_search(s)]
    i = sent_inquiry(s, t.id, [x.id for x in xs])
    assert answer(s, i.id, dict(zip([x.id for x in xs], outcomes))).response_type == kind
    assert s.get(Inquiry, i.id).response_type == kind


def test_answer_must_cover_exactly_the_members(db_session):
    s = db_session
    t = make_therapist(s)
    a, b = make_search(s), make_search(s)
    i = sent_inquiry(s, t.id, [a.id, b.id])
    with pytest.raises(inquiry_loading.InquiryError, match="fehlt"):
        answer(s, i.id, {a.id: A})
    with pytest.raises(inquiry_loading.InquiryError):
        answer(s, i.id, {a.id: A, b.id: Outcome.no_show})


def test_cooling_never_shortened(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s)
    i = sent_inquiry(s, t.id, [x.id])
    far_future = TODAY + timedelta(days=200)
    s.get(Therapist, t.id).next_contact_at = far_future
    s.flush()
    answer(s, i.id, {x.id: RC})
    assert s.get(Therapist, t.id).next_contact_at == far_future


def test_first_acceptance_wins_later_one_is_a_conflict(db_session):
    s = db_session
    t1, t2 = make_therapist(s), make_therapist(s)
    x = make_search(s)
    i1 = sent_inquiry(s, t1.id, [x.id])
    i2 = sent_inquiry(s, t2.id, [x.id])
    answer(s, i1.id, {x.id: A})
    # i2 was sent: x is withdrawn there, i2 is reduced and (nobody left) cancelled with a flag
    s.expire_all()
    i2 = s.get(Inquiry, i2.id)
    assert i2.reduced and i2.patients[0].withdrawn_at is not None and i2.status == InquiryStatus.cancelled
    # a late answer on a third inquiry accepting x again never overwrites the placement
    t3 = make_therapist(s)
    i3 = Inquiry(therapist_id=t3.id, channel="email", status="sent", size=1, sent_at=NOW)
    i3.patients = [InquiryPatient(search_id=x.id, position=1)]
    s.add(i3)
    s.flush()
    report = answer(s, i3.id, {x.id: A})
    assert report.conflicts == [x.id] and report.placed == []
    s.expire_all()
    assert s.get(Search, x.id).placed_therapist_id == t1.id
    i3 = s.get(Inquiry, i3.id)
    assert i3.needs_attention and i3.patients[0].conflict
    conflicts = inquiries_answers.list_conflicts(s, COORD)
    assert [c.search_id for c in conflicts] == [x.id] and conflicts[0].placed_therapist_id == t1.id
    with pytest.raises(inquiry_loading.InquiryError, match="Notiz"):
        inquiries_answers.resolve_conflict(s, COORD, conflicts[0].member_id, " ", now=NOW)
    inquiries_answers.resolve_conflict(s, COORD, conflicts[0].member_id, "Praxis informiert", now=NOW)
    assert inquiries_answers.list_conflicts(s, COORD) == []
    assert not s.get(Inquiry, i3.id).needs_attention


def test_withdrawal_from_unsent_and_sent_inquiries(db_session, monkeypatch):
    import dataclasses
    import sys

    # five inquiries share one patient here (one of each kind): allow it
    monkeypatch.setattr(sys.modules[__name__], "SETTINGS", dataclasses.replace(SETTINGS, MAX_OPEN_INQUIRIES_PER_SEARCH=5))
    s = db_session
    t_acc, t_draft, t_queued, t_sent, t_phone = (make_therapist(s) for _ in range(5))
    x, other = make_search(s), make_search(s)
    lonely = make_search(s)
    i_acc = sent_inquiry(s, t_acc.id, [x.id])
    i_draft = create(s, t_draft.id, [x.id, other.id])
    i_sent = sent_inquiry(s, t_sent.id, [x.id, lonely.id])
    i_queued = create(s, t_queued.id, [other.id, x.id])
    old_mail = send(s, i_queued.id).email_id  # queued, not yet delivered
    t_phone_row = s.get(Therapist, t_phone.id)
    t_phone_row.email = None
    s.flush()
    i_phone = create(s, t_phone.id, [x.id])
    call_id = send(s, i_phone.id).call_id
    report = answer(s, i_acc.id, {x.id: A})
    hows = {w.inquiry_id: w.how for w in report.withdrawals[x.id]}
    assert hows == {i_draft.id: "dropped", i_queued.id: "dropped", i_sent.id: "withdrawn", i_phone.id: "cancelled"}
    s.expire_all()
    d = s.get(Inquiry, i_draft.id)
    assert [m.search_id for m in d.patients] == [other.id] and d.patients[0].position == 1 and d.size == 1
    q = s.get(Inquiry, i_queued.id)
    assert [m.search_id for m in q.patients] == [other.id] and q.status == InquiryStatus.queued
    assert s.get(OutboxEmail, old_mail).state == EmailState.cancelled
    new_mail = s.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == q.id, OutboxEmail.state == EmailState.queued)).one()
    assert s.get(Patient, x.patient_id).last_name not in new_mail.body_text
    sent = s.get(Inquiry, i_sent.id)
    assert sent.reduced and sent.status == InquiryStatus.sent
    assert {m.search_id: m.withdrawn_at is not None for m in sent.patients} == {x.id: True, lonely.id: False}
    ph = s.get(Inquiry, i_phone.id)
    assert ph.status == InquiryStatus.cancelled and s.get(PhoneCall, call_id).state == CallState.cancelled
    # the reduced inquiry's answer covers only the remaining patient
    answer(s, i_sent.id, {lonely.id: RC})


def test_later_outcomes_and_no_show_releases_placement(db_session):
    s = db_session
    t = make_therapist(s)
    a, b = make_search(s), make_search(s)
    i = sent_inquiry(s, t.id, [a.id, b.id])
    answer(s, i.id, {a.id: A, b.id: A})
    inquiries_answers.record_later_outcome(s, COORD, i.id, a.id, Outcome.in_sessions, today=TODAY, now=NOW)
    inquiries_answers.record_later_outcome(s, COORD, i.id, b.id, Outcome.no_show, today=TODAY, now=NOW, note="kam nicht")
    s.expire_all()
    assert s.get(Search, a.id).placed_therapist_id == t.id
    assert s.get(Search, b.id).placed_therapist_id is None
    with pytest.raises(inquiry_loading.InquiryError, match="nach einer Zusage"):
        inquiries_answers.record_later_outcome(s, COORD, i.id, b.id, Outcome.in_sessions, today=TODAY, now=NOW)
    with pytest.raises(inquiry_loading.InquiryError):
        inquiries_answers.record_later_outcome(s, COORD, i.id, a.id, Outcome.accepted, today=TODAY, now=NOW)
    # the no-show therapist is never proposed for b again (after cooling)
    later = TODAY + timedelta(weeks=5)
    assert any("nicht erschienen" in r for r in eligibility.ineligibility_reasons(s, t.id, b.id, today=later, settings=SETTINGS))


# =========================================================================== expiry and success


def test_expiry_boundary_no_response_and_cooling(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s)
    sent_at = NOW
    i = sent_inquiry(s, t.id, [x.id], now=sent_at)
    just_before = sent_at + timedelta(days=SETTINGS.INQUIRY_EXPIRY_DAYS) - timedelta(seconds=1)
    assert closing.expire_inquiries(s, now=just_before, settings=SETTINGS) == 0
    at = sent_at + timedelta(days=SETTINGS.INQUIRY_EXPIRY_DAYS)
    assert closing.expire_inquiries(s, now=at, settings=SETTINGS) == 1
    s.expire_all()
    i = s.get(Inquiry, i.id)
    assert i.status == InquiryStatus.expired and i.response_type == ResponseType.no_response
    assert i.patients[0].outcome == Outcome.no_response
    assert s.get(Therapist, t.id).next_contact_at == at.date() + timedelta(weeks=SETTINGS.COOLING_WEEKS)
    assert candidates.load_relations(s, search_ids=[x.id]).open_counts.get(x.id, 0) == 0
    # a late answer is still welcome
    answer(s, i.id, {x.id: A}, now=at + timedelta(days=1))
    assert s.get(Search, x.id).placed_therapist_id == t.id


def test_success_marks_search_patient_member_and_queues_mail(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s, email="paula@example.org")
    i = sent_inquiry(s, t.id, [x.id])
    with pytest.raises(inquiry_loading.InquiryError, match="zugesagt"):
        closing.confirm_success(s, COORD, x.id, today=TODAY, now=NOW, settings=SETTINGS)
    answer(s, i.id, {x.id: A})
    report = closing.confirm_success(s, COORD, x.id, today=TODAY, now=NOW, settings=SETTINGS)
    s.expire_all()
    search = s.get(Search, x.id)
    assert search.status == SearchStatus.successful and search.success_on == TODAY
    assert s.get(Patient, x.patient_id).status == PatientStatus.in_therapy
    assert s.get(Inquiry, i.id).patients[0].outcome == Outcome.in_sessions
    mail = s.get(OutboxEmail, report.email_id)
    assert mail.patient_id == x.patient_id and mail.state == EmailState.queued


def test_success_without_patient_email_still_confirms(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s, email=None)
    i = sent_inquiry(s, t.id, [x.id])
    answer(s, i.id, {x.id: A})
    report = closing.confirm_success(s, COORD, x.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert report.email_id is None and "telefonisch" in report.message
    assert s.get(Search, x.id).status == SearchStatus.successful


# =========================================================================== page queries


def test_list_filters_and_detail(db_session):
    s = db_session
    t1, t2, t3 = make_therapist(s), make_therapist(s), make_therapist(s)
    x, y = make_search(s), make_search(s)
    draft = create(s, t1.id, [x.id])
    old = sent_inquiry(s, t2.id, [x.id, y.id], now=NOW - timedelta(days=8))
    rows, total = inquiry_views.list_inquiries(s, COORD, filter_key="unsent", now=NOW, settings=SETTINGS)
    assert [r.id for r in rows] == [draft.id] and total == 1
    rows, _ = inquiry_views.list_inquiries(s, COORD, filter_key="follow_up", now=NOW, settings=SETTINGS)
    assert [r.id for r in rows] == [old.id] and rows[0].days_since_sent == 8 and rows[0].follow_up_due
    assert "2 ausstehend" in rows[0].members_text
    counts = inquiry_views.inquiry_counts(s, COORD, now=NOW, settings=SETTINGS)
    assert counts["open"] == 2 and counts["awaiting"] == 1 and counts["answered"] == 0
    answer(s, old.id, {x.id: A, y.id: RC})
    rows, _ = inquiry_views.list_inquiries(s, COORD, filter_key="reduced", now=NOW, settings=SETTINGS)
    assert rows == []  # the draft dropped x (unsent), nothing reduced
    detail = inquiry_views.inquiry_detail(s, COORD, old.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert [m.status_text for m in detail.members] == ["angenommen – vermittelt", "abgelehnt (Kapazität)"]
    assert detail.therapist_email and not detail.can_answer
    assert inquiry_views.inquiry_detail(s, VIEWER, old.id, today=TODAY, now=NOW, settings=SETTINGS).therapist_email is None
    assert inquiry_views.placed_searches(s, COORD)[0][0] == x.id
    assert s.get(Inquiry, draft.id).status == InquiryStatus.cancelled  # its only patient was placed


# =========================================================================== the whole flow


def test_full_flow_create_send_answer_conflict_withdrawal_success(db_session):
    s = db_session
    t1 = make_therapist(s, last_name="Erste")
    t2 = make_therapist(s, last_name="Zweite", at=north(3))
    t3 = make_therapist(s, last_name="Dritte", at=north(5), email=None)
    xs = [make_search(s, started_on=date(2026, 3, i + 1), email=f"p{i}@example.org") for i in range(4)]
    # proposals: oldest first
    p1 = eligibility.propose_inquiry(s, t1.id, today=TODAY, settings=SETTINGS)
    assert p1 == [x.id for x in xs]
    # coordinator removes the last, reorders, creates, sends
    i1 = create(s, t1.id, [xs[1].id, xs[0].id, xs[2].id])
    assert send(s, i1.id).email_id
    i2 = create(s, t2.id, eligibility.propose_inquiry(s, t2.id, today=TODAY, settings=SETTINGS))
    send(s, i2.id)
    deliver(s, NOW + timedelta(minutes=1))
    i3 = create(s, t3.id, eligibility.propose_inquiry(s, t3.id, today=TODAY, settings=SETTINGS))
    send(s, i3.id)  # phone: a call on the list
    inquiries_lifecycle.mark_call_made(s, COORD, i3.id, now=NOW + timedelta(hours=1))
    # t2 answers first: accepts xs[0], rejects the rest (capacity), one unsuitable
    s.expire_all()
    r2 = answer(s, i2.id, {xs[0].id: A, xs[1].id: RC, xs[2].id: RU, xs[3].id: NR}, now=NOW + timedelta(days=2))
    assert r2.placed == [xs[0].id]
    s.expire_all()
    i1 = s.get(Inquiry, i1.id)
    assert i1.reduced and [m.withdrawn_at is not None for m in i1.patients] == [False, True, False]
    i3 = s.get(Inquiry, i3.id)
    assert i3.reduced and {m.search_id for m in i3.patients if m.withdrawn_at} == {xs[0].id}
    # t1 answers: accepts xs[1], xs[2] other reason; xs[1] is withdrawn from the phone inquiry
    r1 = answer(s, i1.id, {xs[1].id: A, xs[2].id: RO}, now=NOW + timedelta(days=3))
    assert r1.placed == [xs[1].id]
    # t3 calls back and accepts everyone it was asked about, also the withdrawn xs[0] and xs[1]:
    # the first acceptance wins, the later ones are conflicts
    i3 = s.get(Inquiry, i3.id)
    r3 = answer(s, i3.id, {m.search_id: A for m in i3.patients}, now=NOW + timedelta(days=4))
    assert set(r3.conflicts) == {xs[0].id, xs[1].id}
    assert s.get(Search, xs[0].id).placed_therapist_id == t2.id
    assert s.get(Search, xs[1].id).placed_therapist_id == t1.id
    conflict = next(c for c in inquiries_answers.list_conflicts(s, COORD) if c.search_id == xs[1].id)
    inquiries_answers.resolve_conflict(s, COORD, conflict.member_id, "Praxis Dritte informiert", now=NOW + timedelta(days=4))
    # success for xs[0] after the first sessions
    rep = closing.confirm_success(s, COORD, xs[0].id, today=TODAY + timedelta(days=20), now=NOW + timedelta(days=20), settings=SETTINGS)
    assert rep.email_id
    s.expire_all()
    assert s.get(Search, xs[0].id).status == SearchStatus.successful
    assert s.get(Therapist, t2.id).next_contact_at == TODAY + timedelta(weeks=SETTINGS.COOLING_WEEKS)
    actions = set(s.scalars(select(AuditEntry.action)))
    assert {"inquiry.create", "inquiry.send", "inquiry.answer", "inquiry.withdraw", "inquiry.conflict",
            "inquiry.resolve_conflict", "search.placed", "search.exclude", "search.success_confirmed"} <= actions


# =========================================================================== issue 12


def _mails(s, **where):
    stmt = select(OutboxEmail)
    for key, value in where.items():
        stmt = stmt.where(getattr(OutboxEmail, key) == value)
    return list(s.scalars(stmt.order_by(OutboxEmail.id)))


def test_point5_new_inquiry_without_sending_is_a_draft_mail_in_the_outbox(db_session):
    """Vermittlung and Postausgang agree: an inquiry created without "Gleich senden" is a draft
    mail (with its rendered preview) in Postausgang › Entwürfe; sending it from Vermittlung
    sends that very draft, and approving the draft in Postausgang queues the inquiry."""
    from core.mail import outbox
    from core.mail import templates as mt
    from core.mail import views as mail_views

    s = db_session
    t, x = make_therapist(s), make_search(s)
    i = create(s, t.id, [x.id])
    [draft] = _mails(s, inquiry_id=i.id)
    assert draft.state == EmailState.draft and draft.template == mt.THERAPIST_INQUIRY and draft.body_html
    rows, _ = mail_views.list_emails(s, COORD, "drafts", now=NOW, settings=SETTINGS)
    assert draft.id in [r.id for r in rows]
    assert inquiry_views.inquiry_detail(s, COORD, i.id, today=TODAY, now=NOW, settings=SETTINGS).email_id == draft.id
    report = send(s, i.id)
    assert report.email_id == draft.id  # no second mail
    assert [m.state for m in _mails(s, inquiry_id=i.id)] == [EmailState.queued]
    assert s.get(Inquiry, i.id).status == InquiryStatus.queued

    # the other way round: approve in Postausgang
    t2, y = make_therapist(s), make_search(s)
    j = create(s, t2.id, [y.id])
    [d2] = _mails(s, inquiry_id=j.id)
    outbox.approve(s, COORD, d2.id, NOW, settings=SETTINGS)
    assert s.get(Inquiry, j.id).status == InquiryStatus.queued


def test_point5_send_renders_anew_when_members_were_dropped(db_session):
    s = db_session
    t, x, y = make_therapist(s), make_search(s), make_search(s)
    i = create(s, t.id, [x.id, y.id])
    s.get(Search, y.id).status = SearchStatus.paused
    s.flush()
    report = send(s, i.id)
    states = [(m.state, m.id == report.email_id) for m in _mails(s, inquiry_id=i.id)]
    assert states == [(EmailState.cancelled, False), (EmailState.queued, True)]


def test_point5_phone_and_nightly_inquiries_get_no_draft_mail(db_session):
    from core.platform.vocab import InquiryOrigin

    s = db_session
    phone = create(s, make_therapist(s, email=None).id, [make_search(s).id])
    nightly = create(s, make_therapist(s).id, [make_search(s).id], origin=InquiryOrigin.nightly)
    assert _mails(s, inquiry_id=phone.id) == [] and _mails(s, inquiry_id=nightly.id) == []


def test_point6_acceptance_drafts_the_practice_contact_for_the_patient(db_session):
    """On acceptance the patient gets the practice's contact details as a draft for approval;
    the success confirmation later is its own message (no "call within two days")."""
    from core.mail import templates as mt

    s = db_session
    t = make_therapist(s, last_name="Praxisname", email="praxis.kontakt@example.org")
    x = make_search(s, email="paula@example.org")
    i = sent_inquiry(s, t.id, [x.id])
    report = answer(s, i.id, {x.id: A})
    [contact] = _mails(s, patient_id=x.patient_id)
    assert report.patient_mail_ids == [contact.id] and "Postausgang" in report.summary()
    assert contact.state == EmailState.draft and contact.template == mt.PATIENT_PLACE_FOUND_EMAIL
    assert "praxis.kontakt@example.org" in contact.body_text and "Praxisname" in contact.body_text
    success = closing.confirm_success(s, COORD, x.id, today=TODAY, now=NOW, settings=SETTINGS)
    mail = s.get(OutboxEmail, success.email_id)
    assert mail.template == mt.PATIENT_SUCCESS and mail.id != contact.id
    assert "zwei Tagen" not in mail.body_text and "begonnen" in mail.subject


def test_point6_without_patient_email_the_report_says_call(db_session):
    s = db_session
    t = make_therapist(s)
    x = make_search(s, email=None)
    i = sent_inquiry(s, t.id, [x.id])
    report = answer(s, i.id, {x.id: A})
    assert report.patient_mail_ids == [] and "telefonisch" in report.summary()


def test_issue9_point4_detail_decides_who_needs_an_answer_and_the_call(db_session):
    """The page never decides: the view-model says which members need an answer, which may
    be answered optionally, and whether "Anruf geführt" applies."""
    s = db_session
    t = make_therapist(s, email=None)
    x, y = make_search(s), make_search(s)
    i = create(s, t.id, [x.id, y.id])
    send(s, i.id)
    d = inquiry_views.inquiry_detail(s, COORD, i.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert d.can_mark_call_made and d.can_record_answer
    assert [m.search_id for m in d.needs_answer] == [x.id, y.id]
    assert [m.search_id for m in d.missing_answers({x.id: A})] == [y.id]
    inquiries_lifecycle.mark_call_made(s, COORD, i.id, now=NOW)
    inquiries_answers.withdraw_search(s, COORD, y.id, now=NOW, reason="pausiert", settings=SETTINGS)
    d = inquiry_views.inquiry_detail(s, COORD, i.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert not d.can_mark_call_made
    assert [m.search_id for m in d.needs_answer] == [x.id]
    assert [(m.search_id, m.answer_optional) for m in d.answer_members] == [(x.id, False), (y.id, True)]
    answer(s, i.id, {x.id: A})
    d = inquiry_views.inquiry_detail(s, COORD, i.id, today=TODAY, now=NOW, settings=SETTINGS)
    assert not d.can_record_answer and [m.search_id for m in d.accepted_members] == [x.id]


def test_a_nightly_draft_with_a_rendered_mail_is_cancelled_not_deleted_when_its_last_patient_leaves(db_session):
    """Found by bench/load.py: withdrawing the only patient of a nightly draft whose mail had
    been rendered deleted the inquiry under its mail (foreign-key violation, answer lost)."""
    from core.platform.models import OutboxEmail
    from core.registry import searches as registry_searches

    t = make_therapist(db_session)
    s = make_search(db_session)
    inquiry = open_inquiry(db_session, t.id, [s.id], status="draft", origin="nightly")
    db_session.add(OutboxEmail(
        therapist_id=t.id, inquiry_id=inquiry.id, to_address="praxis@example.org", to_name="Praxis", subject="Anfrage",
        body_html="<p>x</p>", body_text="x", template="therapist_inquiry", state="draft",
    ))
    db_session.flush()
    registry_searches.pause_search(db_session, COORD, s.id, today=TODAY, now=NOW)
    db_session.flush()
    db_session.refresh(inquiry)
    assert inquiry.status == InquiryStatus.cancelled
    mail = db_session.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inquiry.id)).one()
    assert mail.state == EmailState.cancelled
