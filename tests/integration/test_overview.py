"""Übersicht figures come from the database: searches, therapists, inquiries, to-dos."""

from __future__ import annotations

from datetime import date, timedelta

from core.platform.models import InquiryPatient
from core.reports.overview import overview
from tests.support.matching_fixtures import COORD, NOW, TODAY, make_search, make_therapist, open_inquiry


def test_overview_counts(db_session):
    before = overview(db_session, COORD, today=TODAY, now=NOW)
    t1, t2, t3 = make_therapist(db_session), make_therapist(db_session), make_therapist(db_session)
    make_therapist(db_session, next_contact_at=TODAY + timedelta(days=30))
    oldest = make_search(db_session, started_on=date(2026, 1, 5))
    s2, s3 = make_search(db_session), make_search(db_session)
    make_search(db_session, status="paused")
    open_inquiry(db_session, t1.id, [oldest.id], status="sent")
    open_inquiry(db_session, t2.id, [s2.id], status="queued")  # not sent yet: not "awaiting an answer"
    open_inquiry(db_session, t3.id, [s3.id], status="draft")
    open_inquiry(db_session, t3.id, [s2.id], status="draft", origin="nightly")
    answered = open_inquiry(db_session, t2.id, [s3.id], status="answered")
    answered.answered_at = NOW - timedelta(days=1)
    member: InquiryPatient = answered.patients[0]
    member.conflict = True
    db_session.flush()

    o = overview(db_session, COORD, today=TODAY, now=NOW)
    assert o.searches_active - before.searches_active == 3
    assert o.searches_paused - before.searches_paused == 1
    assert o.longest_wait_days == (TODAY - date(2026, 1, 5)).days
    assert o.therapists_active - before.therapists_active == 4
    assert o.therapists_cooling - before.therapists_cooling == 1
    assert o.inquiries_awaiting - before.inquiries_awaiting == 1
    assert o.inquiries_draft - before.inquiries_draft == 1
    assert o.nightly_suggestions - before.nightly_suggestions == 1
    assert o.inquiries_answered_7d - before.inquiries_answered_7d == 1
    assert o.conflicts_open - before.conflicts_open == 1
