"""The nightly plan replaces yesterday's unapproved suggestions while coordinators work on
them (found by bench/load.py: the nightly job failed with "Gleichzeitige Änderung" after
every retry). A coordinator's change to a suggestion locks the inquiry, then changes its
members (the lock order of docs/architecture.md); the nightly job must lock the stale
inquiries before it deletes their members, or the two deadlock."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from core.planning import planner
from core.platform.db import make_engine, unit_of_work
from core.platform.locks import lock_rows
from core.platform.models import Inquiry, InquiryPatient
from core.platform.permissions import SYSTEM
from core.platform.vocab import InquiryChannel, InquiryOrigin, InquiryStatus
from tests.support.matching_fixtures import NOW, SETTINGS, TODAY, make_search, make_therapist

WAIT_S = 30


@pytest.fixture()
def pg_engine(db_factories):
    eng = make_engine(db_factories["postgresql"].new_url())
    yield eng
    eng.dispose()


def _nightly_draft(session, therapist_id: int, search_ids: list[int]) -> int:
    inquiry = Inquiry(
        therapist_id=therapist_id, channel=InquiryChannel.email, status=InquiryStatus.draft,
        origin=InquiryOrigin.nightly, plan_region="10", size=len(search_ids), created_at=NOW, updated_at=NOW,
    )
    inquiry.patients = [InquiryPatient(search_id=sid, position=i) for i, sid in enumerate(search_ids, start=1)]
    session.add(inquiry)
    session.flush()
    return inquiry.id


def _waiting_on_lock(engine, pid: int) -> bool:
    with engine.connect() as c:
        return c.scalar(sa.text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"), {"p": pid}) is True


def test_nightly_plan_and_a_coordinator_changing_a_suggestion_do_not_deadlock(pg_engine):
    with unit_of_work(pg_engine) as s:
        t = make_therapist(s).id
        x, y = make_search(s).id, make_search(s).id
        draft = _nightly_draft(s, t, [x, y])

    errors: list[BaseException] = []
    nightly_pid: list[int] = []
    started = threading.Event()

    def nightly():
        try:
            with unit_of_work(pg_engine) as s:
                nightly_pid.append(s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar())
                started.set()
                planner.prepare_nightly_drafts(s, today=TODAY, now=NOW, settings=SETTINGS, actor=SYSTEM)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            started.set()

    with unit_of_work(pg_engine) as coordinator:
        # the coordinator's change starts: the suggestion is locked (as approving or withdrawing does)
        lock_rows(coordinator, inquiries=[draft])
        job = threading.Thread(target=nightly)
        job.start()
        assert started.wait(WAIT_S)
        # wait until the nightly job waits for a lock (on the inquiry, or – the bug – on its
        # inquiry row after deleting the members)
        for _ in range(WAIT_S * 20):
            if errors or _waiting_on_lock(pg_engine, nightly_pid[0]):
                break
            threading.Event().wait(0.05)
        # … then the coordinator changes the suggestion's members and approves it
        coordinator.execute(sa.update(InquiryPatient).where(InquiryPatient.inquiry_id == draft).values(position=InquiryPatient.position + 10))
        coordinator.execute(sa.update(Inquiry).where(Inquiry.id == draft).values(status=InquiryStatus.queued))
    job.join(WAIT_S)
    assert not job.is_alive()
    assert not errors, errors
    with unit_of_work(pg_engine) as s:
        approved = s.get(Inquiry, draft)
        assert approved is not None and approved.status == InquiryStatus.queued  # kept: approved meanwhile
        assert sorted(p.position for p in approved.patients) == [11, 12]
