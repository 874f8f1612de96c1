"""Two coordinators at once (two threads, two connections, real commits): creating
inquiries never exceeds the per-search cap, never gives one therapist or practice two open
inquiries, and two acceptances of one patient place it once.

Coordinator A does its work and keeps its transaction open; coordinator B starts the same
kind of work; on PostgreSQL the test waits until B's backend is really blocked on a row
lock, then lets A commit. B must then see A's result (the re-check runs after the locks).
On SQLite, B's BEGIN IMMEDIATE waits for A's commit."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from core.inquiries import answers
from core.inquiries import lifecycle as inquiries_lifecycle
from core.inquiries import loading as inquiry_loading
from core.platform.db import make_engine, unit_of_work
from core.platform.models import Inquiry, InquiryPatient, Search
from core.platform.vocab import InquiryStatus, Outcome
from tests.support.matching_fixtures import COORD, NOW, SETTINGS, TODAY, make_search, make_therapist, open_inquiry

WAIT_S = 30  # upper bound for a thread to reach a state; never a fixed sleep


@pytest.fixture
def engine(fresh_db_url):
    eng = make_engine(fresh_db_url)
    yield eng
    eng.dispose()


def _wait_until_blocked(engine, done: threading.Event) -> None:
    """PostgreSQL: return once another backend of this database waits for a lock (or B is done)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        for _ in range(3000):
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            # pg_stat_activity is a snapshot per transaction: end it, or every poll sees the first
            conn.rollback()
            if waiting or done.is_set():
                return
            done.wait(0.01)
    raise AssertionError("coordinator B never reached the lock")


def _race(engine, work_a, work_b):
    """Run A (holding its transaction open) and B concurrently; returns (result_a, result_b),
    each the value or the exception raised."""
    a_done_work = threading.Event()
    release_a = threading.Event()
    b_done = threading.Event()
    results: dict[str, object] = {}

    def run_a():
        try:
            with unit_of_work(engine) as s:
                results["a"] = work_a(s)
                a_done_work.set()
                assert release_a.wait(WAIT_S)
        except Exception as exc:  # noqa: BLE001
            results["a"] = exc
            a_done_work.set()

    def run_b():
        try:
            with unit_of_work(engine) as s:
                results["b"] = work_b(s)
        except Exception as exc:  # noqa: BLE001
            results["b"] = exc
        finally:
            b_done.set()

    ta = threading.Thread(target=run_a)
    ta.start()
    assert a_done_work.wait(WAIT_S)
    tb = threading.Thread(target=run_b)
    tb.start()
    _wait_until_blocked(engine, b_done)
    release_a.set()
    ta.join(WAIT_S)
    tb.join(WAIT_S)
    assert not ta.is_alive() and not tb.is_alive()
    return results["a"], results["b"]


def _create(tid, sids):
    return lambda s: inquiries_lifecycle.create_inquiry(s, COORD, tid, sids, today=TODAY, now=NOW, settings=SETTINGS).id


def test_two_coordinators_cannot_exceed_the_per_search_cap(engine):
    with unit_of_work(engine) as s:
        x = make_search(s)
        for _ in range(SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH - 1):
            open_inquiry(s, make_therapist(s).id, [x.id])
        t1, t2 = make_therapist(s), make_therapist(s)
        ids = (x.id, t1.id, t2.id)
    xid, t1id, t2id = ids
    a, b = _race(engine, _create(t1id, [xid]), _create(t2id, [xid]))
    assert isinstance(a, int)
    assert isinstance(b, inquiry_loading.InquiryError) and "4 unbeantworteten" in str(b)
    with unit_of_work(engine) as s:
        n = s.scalar(
            select(func.count()).select_from(InquiryPatient).join(Inquiry).where(
                InquiryPatient.search_id == xid, Inquiry.status.in_(["draft", "queued", "sent"])
            )
        )
    assert n == SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH


def test_two_coordinators_cannot_give_one_therapist_two_open_inquiries(engine):
    with unit_of_work(engine) as s:
        t = make_therapist(s)
        x, y = make_search(s), make_search(s)
        tid, xid, yid = t.id, x.id, y.id
    a, b = _race(engine, _create(tid, [xid]), _create(tid, [yid]))
    assert isinstance(a, int) and isinstance(b, inquiry_loading.InquiryError) and "offene Anfrage" in str(b)


def test_two_coordinators_cannot_ask_one_practice_twice(engine):
    with unit_of_work(engine) as s:
        t1 = make_therapist(s, email="gemeinsam@example.org", last_name="Eins")
        t2 = make_therapist(s, email="Gemeinsam@example.org", last_name="Zwei")
        x, y = make_search(s), make_search(s)
        ids = (t1.id, t2.id, x.id, y.id)
    a, b = _race(engine, _create(ids[0], [ids[2]]), _create(ids[1], [ids[3]]))
    assert isinstance(a, int) and isinstance(b, inquiry_loading.InquiryError) and "Praxis" in str(b)


def test_many_concurrent_creators_respect_the_cap(engine):
    """Eight coordinators at once for one patient with one free slot: exactly one wins."""
    with unit_of_work(engine) as s:
        x = make_search(s)
        for _ in range(SETTINGS.MAX_OPEN_INQUIRIES_PER_SEARCH - 1):
            open_inquiry(s, make_therapist(s).id, [x.id])
        therapists = [make_therapist(s).id for _ in range(8)]
        xid = x.id
    barrier = threading.Barrier(len(therapists))
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker(tid):
        barrier.wait(WAIT_S)
        try:
            with unit_of_work(engine) as s:
                r = _create(tid, [xid])(s)
        except Exception as exc:  # noqa: BLE001
            r = exc
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=worker, args=(t,)) for t in therapists]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT_S * 2)
    assert len([o for o in outcomes if isinstance(o, int)]) == 1
    assert all(isinstance(o, (int, inquiry_loading.InquiryError)) for o in outcomes), outcomes


def test_two_acceptances_at_once_place_the_patient_once(engine):
    with unit_of_work(engine) as s:
        x = make_search(s)
        t1, t2 = make_therapist(s), make_therapist(s)
        i1 = open_inquiry(s, t1.id, [x.id])
        i2 = open_inquiry(s, t2.id, [x.id])
        xid, i1id, i2id, t1id = x.id, i1.id, i2.id, t1.id

    def answer(iid):
        return lambda s: answers.record_answer(s, COORD, iid, {xid: Outcome.accepted}, today=TODAY, now=NOW, settings=SETTINGS)

    a, b = _race(engine, answer(i1id), answer(i2id))
    assert a.placed == [xid]
    # B ran after A: its acceptance is a conflict (x was withdrawn from i2 by A, B recorded it anyway)
    assert isinstance(b, answers.AnswerReport) and b.conflicts == [xid]
    with unit_of_work(engine) as s:
        assert s.get(Search, xid).placed_therapist_id == t1id
        i2 = s.get(Inquiry, i2id)
        assert i2.status == InquiryStatus.answered and i2.patients[0].conflict
