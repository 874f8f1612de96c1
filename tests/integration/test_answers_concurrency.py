"""Simultaneous answers on PostgreSQL: coordinators released together by a barrier record
acceptances of one patient in different inquiries, round after round, in one database
(every round writes fresh rows, so no reset is needed). In every round exactly one
acceptance places the patient; every other answer is saved as a conflict or refused with a
domain message; nothing deadlocks (the units of work run with one attempt only, so a
deadlock would surface as ConcurrentChange instead of being retried away).

Plus the safety net of the unit of work: a deadlock forced once (two transactions locking
in opposite order) is retried and succeeds; a serialization failure every time exhausts the
retries and ends in the German message."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from core.calls import services as call_services
from core.inquiries import answers, closing, lifecycle
from core.inquiries import loading as inquiry_loading
from core.mail import outbox
from core.mail import templates as mt
from core.platform.db import CONCURRENT_CHANGE_MESSAGE, ConcurrentChange, make_engine, run_unit_of_work, unit_of_work
from core.platform.locks import lock_rows
from core.platform.models import Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Search, Therapist
from core.platform.vocab import CallPurpose, CallResult, CallState, EmailState, InquiryChannel, InquiryStatus, Outcome
from core.registry import searches as registry_searches
from tests.support.matching_fixtures import COORD, NOW, SETTINGS, TODAY, make_search, make_therapist

ROUNDS = int(os.environ.get("ANSWER_ROUNDS", "50"))  # per test; raise it for a soak run
WAIT_S = 30  # upper bound for a thread to reach the barrier or finish; never a fixed sleep
KINDS = ("mail", "phone_pending", "phone_made")


@pytest.fixture(scope="module")
def pg_engine(db_factories):
    """One PostgreSQL database for all rounds of this module."""
    eng = make_engine(db_factories["postgresql"].new_url())
    yield eng
    eng.dispose()


def _inquiry(session, therapist_id: int, search_ids: list[int], kind: str) -> int:
    """An open inquiry as the services leave it: a delivered e-mail with a queued reminder,
    a phone inquiry waiting for its call, or one whose call was made (follow-up planned)."""
    phone = kind != "mail"
    pending = kind == "phone_pending"
    inquiry = Inquiry(
        therapist_id=therapist_id, channel=InquiryChannel.phone if phone else InquiryChannel.email,
        status=InquiryStatus.queued if pending else InquiryStatus.sent, origin="manual", size=len(search_ids),
        queued_at=NOW, sent_at=None if pending else NOW, created_at=NOW, updated_at=NOW,
    )
    inquiry.patients = [InquiryPatient(search_id=sid, position=i) for i, sid in enumerate(search_ids, start=1)]
    session.add(inquiry)
    session.flush()
    if phone:
        session.add(PhoneCall(
            therapist_id=therapist_id, inquiry_id=inquiry.id,
            purpose=CallPurpose.inquiry if pending else CallPurpose.follow_up,
            scheduled_start=NOW + timedelta(days=1), duration_minutes=5, state=CallState.scheduled, attempt=1,
            created_at=NOW, updated_at=NOW,
        ))
    else:
        for template, state in ((mt.THERAPIST_INQUIRY, EmailState.sent), (mt.THERAPIST_REMINDER, EmailState.queued)):
            session.add(OutboxEmail(
                therapist_id=therapist_id, inquiry_id=inquiry.id, to_address="praxis@example.org", to_name="Praxis",
                subject="Anfrage", body_html="<p>x</p>", body_text="x", template=template, state=state,
                sent_at=NOW if state == EmailState.sent else None,
                next_attempt_at=NOW + timedelta(days=7) if state == EmailState.queued else None,
                created_at=NOW, updated_at=NOW,
            ))
    session.flush()
    return inquiry.id


def _kinds(round_no: int, ways: int) -> list[str]:
    """All inquiries of one kind (mail, phone pending, phone made), or every fourth round a mix."""
    pattern = round_no % 4
    if pattern < 3:
        return [KINDS[pattern]] * ways
    return [KINDS[(k + round_no) % 3] for k in range(ways)]


def _round(engine, therapist_ids: list[int], round_no: int, *, mixed: bool) -> tuple[int, list[dict]]:
    ways = len(therapist_ids)
    kinds = _kinds(round_no, ways)
    with unit_of_work(engine) as s:
        contested = make_search(s).id
        plans = []
        for k, tid in enumerate(therapist_ids):
            others = [make_search(s).id] if mixed else []
            outcomes = {contested: Outcome.accepted, **{x: Outcome.rejected_capacity for x in others}}
            plans.append({"therapist_id": tid, "kind": kinds[k], "outcomes": outcomes,
                          "inquiry_id": _inquiry(s, tid, [contested, *others], kinds[k])})
    barrier = threading.Barrier(ways)

    def worker(plan):
        try:
            barrier.wait(WAIT_S)
            plan["result"] = run_unit_of_work(
                lambda s: answers.record_answer(s, COORD, plan["inquiry_id"], plan["outcomes"], today=TODAY, now=NOW,
                                                settings=SETTINGS),
                engine, attempts=1,
            )
        except Exception as exc:  # noqa: BLE001 - every outcome is checked below
            plan["result"] = exc

    threads = [threading.Thread(target=worker, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads), "an answer never finished"
    return contested, plans


def _check_round(engine, contested: int, plans: list[dict], round_no: int) -> dict:
    results = [p["result"] for p in plans]
    context = f"round {round_no}, kinds {[p['kind'] for p in plans]}: {results!r}"
    unexpected = [r for r in results if not isinstance(r, (answers.AnswerReport, inquiry_loading.InquiryError))]
    assert not unexpected, context
    winners = [p for p in plans if isinstance(p["result"], answers.AnswerReport) and p["result"].placed == [contested]]
    assert len(winners) == 1, context
    tally = {"conflict": 0, "refused": 0}
    with unit_of_work(engine) as s:
        search = s.get(Search, contested)
        assert search.placed_therapist_id == winners[0]["therapist_id"], context
        for p in plans:
            if p is winners[0]:
                continue
            inquiry = s.get(Inquiry, p["inquiry_id"])
            if isinstance(p["result"], answers.AnswerReport):
                # saved: the answer is recorded, the acceptance marked as a conflict
                assert p["result"].conflicts == [contested], context
                member = next(m for m in inquiry.patients if m.search_id == contested)
                assert inquiry.status == InquiryStatus.answered and member.conflict, context
                tally["conflict"] += 1
            else:
                # refused (a phone inquiry whose patient was taken out before the call was made)
                assert p["kind"] == "phone_pending", context
                assert any(text in str(p["result"]) for text in (
                    "storniert, bevor sie gesendet war", "nicht (mehr) in der Anfrage")), context
                assert all(m.search_id != contested for m in inquiry.patients) or inquiry.status == InquiryStatus.cancelled
                tally["refused"] += 1
        ids = [p["inquiry_id"] for p in plans]
        placed_acceptances = s.scalar(
            select(func.count()).select_from(InquiryPatient).where(
                InquiryPatient.search_id == contested, InquiryPatient.outcome == Outcome.accepted,
                InquiryPatient.conflict.is_(False),
            )
        )
        assert placed_acceptances == 1, context
        # closed inquiries keep nothing pending: no scheduled call, no unsent reminder
        closed = select(Inquiry.id).where(Inquiry.id.in_(ids), Inquiry.status.in_([InquiryStatus.answered, InquiryStatus.cancelled]))
        assert not s.scalar(select(func.count()).select_from(PhoneCall).where(
            PhoneCall.inquiry_id.in_(closed), PhoneCall.state == CallState.scheduled)), context
        assert not s.scalar(select(func.count()).select_from(OutboxEmail).where(
            OutboxEmail.inquiry_id.in_(closed), OutboxEmail.state.in_([EmailState.draft, EmailState.queued]))), context
        # the delivered inquiry mails stay delivered
        assert s.scalar(select(func.count()).select_from(OutboxEmail).where(
            OutboxEmail.inquiry_id.in_(ids), OutboxEmail.template == mt.THERAPIST_INQUIRY,
            OutboxEmail.state != EmailState.sent)) == 0, context
    return tally


@pytest.mark.parametrize("ways", [2, 4])
def test_simultaneous_acceptances_place_the_patient_once_in_every_round(pg_engine, ways):
    """Rounds cycle through the kinds (all by mail, all by phone pending, all by phone made,
    a mix) and, every four rounds, between inquiries holding only the contested patient and
    inquiries holding one other patient too: each of the 8 combinations about 6 times."""
    with unit_of_work(pg_engine) as s:
        therapist_ids = [make_therapist(s).id for _ in range(ways)]
    started = time.monotonic()
    totals = {"conflict": 0, "refused": 0}
    for round_no in range(ROUNDS):
        mixed = (round_no // 4) % 2 == 1
        contested, plans = _round(pg_engine, therapist_ids, round_no, mixed=mixed)
        for key, n in _check_round(pg_engine, contested, plans, round_no).items():
            totals[key] += n
    elapsed = time.monotonic() - started
    assert totals["conflict"] + totals["refused"] == ROUNDS * (ways - 1)
    print(f"{ways}-way: {ROUNDS} rounds in {elapsed:.1f} s, {totals}")


# =========================================================================== the safety net


def _two_therapists(engine) -> tuple[int, int]:
    with unit_of_work(engine) as s:
        return make_therapist(s).id, make_therapist(s).id


def _lock(session, therapist_id: int) -> None:
    session.execute(select(Therapist.id).where(Therapist.id == therapist_id).with_for_update(key_share=True)).all()


def test_a_deadlock_is_retried_and_the_unit_of_work_succeeds(pg_engine):
    """The unit of work locks T1 then T2, an obstacle T2 then T1: PostgreSQL breaks the
    cycle by failing the unit of work (its deadlock check runs first); the retry then runs
    after the obstacle committed and succeeds."""
    t1, t2 = _two_therapists(pg_engine)
    work_has_t1 = threading.Event()
    obstacle_has_t2 = threading.Event()
    attempts: list[int] = []
    obstacle: dict[str, object] = {}

    def run_obstacle():
        try:
            with unit_of_work(pg_engine) as s:
                _lock(s, t2)
                obstacle_has_t2.set()
                assert work_has_t1.wait(WAIT_S)
                _lock(s, t1)  # waits for the unit of work, which waits for us: a deadlock
                s.get(Therapist, t1).notes = "Hindernis"
            obstacle["ok"] = True
        except Exception as exc:  # noqa: BLE001
            obstacle["ok"] = exc

    def work(s):
        attempts.append(len(attempts) + 1)
        s.execute(sa.text("SET LOCAL deadlock_timeout = '50ms'"))  # this side detects the cycle
        _lock(s, t1)
        if len(attempts) == 1:
            work_has_t1.set()
            assert obstacle_has_t2.wait(WAIT_S)
        _lock(s, t2)
        s.get(Therapist, t2).notes = "gespeichert im Versuch %d" % len(attempts)
        return len(attempts)

    th = threading.Thread(target=run_obstacle)
    th.start()
    assert run_unit_of_work(work, pg_engine) == 2
    th.join(WAIT_S)
    assert obstacle["ok"] is True
    assert attempts == [1, 2]
    with unit_of_work(pg_engine) as s:
        assert s.get(Therapist, t2).notes == "gespeichert im Versuch 2"
        assert s.get(Therapist, t1).notes == "Hindernis"


def test_exhausted_retries_end_in_the_german_message_and_write_nothing(pg_engine):
    t1, _ = _two_therapists(pg_engine)
    attempts: list[int] = []
    pauses: list[float] = []

    def work(s):
        attempts.append(1)
        s.get(Therapist, t1).notes = "darf nicht bleiben"
        s.flush()
        s.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '40001'; END $$"))

    with pytest.raises(ConcurrentChange) as info:
        run_unit_of_work(work, pg_engine, attempts=3, sleep=pauses.append)
    assert str(info.value) == CONCURRENT_CHANGE_MESSAGE == "Gleichzeitige Änderung – bitte noch einmal speichern"
    assert len(attempts) == 3 and len(pauses) == 2
    assert all(0 < p < 1 for p in pauses), pauses  # short, jittered pauses between the tries
    with unit_of_work(pg_engine) as s:
        assert s.get(Therapist, t1).notes is None


def test_other_errors_are_not_retried(pg_engine):
    attempts: list[int] = []

    def work(s):
        attempts.append(1)
        raise inquiry_loading.InquiryError("Diese Anfrage gibt es nicht (mehr).")

    with pytest.raises(inquiry_loading.InquiryError):
        run_unit_of_work(work, pg_engine)
    assert attempts == [1]


# =========================================================================== the lock order itself

RANK = {"therapists": 0, "inquiries": 1, "searches": 2, "outbox_emails": 3, "phone_calls": 3}


def _locks_taken(engine, work) -> list[tuple[str, str, frozenset]]:
    """(table, mode, ids) of every SELECT … FOR … that `work` issues in one unit of work
    (the lock statements filter by id only, so the ints among the parameters are the ids)."""
    seen: list[tuple[str, str, frozenset]] = []

    def listen(conn, cursor, statement, params, context, executemany):
        text = " ".join(statement.split())
        if " FOR " not in text:
            return
        mode = text.rsplit(" FOR ", 1)[1]
        if "UPDATE" in mode or "SHARE" in mode:
            table = text.split(" FROM ", 1)[1].split()[0]
            ids = frozenset(v for v in (params or {}).values() if isinstance(v, int) and not isinstance(v, bool))
            seen.append((table, mode, ids))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        with unit_of_work(engine) as s:
            work(s)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen


def _assert_global_order(locks: list[tuple[str, str, frozenset]]) -> None:
    """Every row is first locked in the global order (therapists, inquiries, searches, then
    mails; a
    statement that only re-reads rows already held cannot wait), and always FOR NO KEY
    UPDATE, never the FOR UPDATE that blocks foreign-key checks."""
    ours = [lock for lock in locks if lock[0] in RANK]
    assert ours, locks
    held: set[tuple[str, int]] = set()
    highest = -1
    for table, mode, ids in ours:
        # calls are only referenced by later attempts of the same call: their mode is free
        assert table == "phone_calls" or mode.startswith("NO KEY UPDATE"), ours
        new = {(table, i) for i in ids} - held
        if new:
            assert RANK[table] >= highest, f"{table} {sorted(i for _, i in new)} locked after a later kind: {ours}"
            highest = RANK[table]
            held |= new


def test_an_answer_locks_in_the_global_order_with_the_weakest_mode(pg_engine):
    with unit_of_work(pg_engine) as s:
        t1, t2 = make_therapist(s).id, make_therapist(s).id
        x, y = make_search(s).id, make_search(s).id
        mine = _inquiry(s, t1, [x, y], "mail")
        theirs = _inquiry(s, t2, [x], "phone_made")
    locks = _locks_taken(pg_engine, lambda s: answers.record_answer(
        s, COORD, mine, {x: Outcome.accepted, y: Outcome.rejected_unsuitable}, today=TODAY, now=NOW, settings=SETTINGS))
    _assert_global_order(locks)
    first = [(t, ids) for t, _, ids in locks if t in RANK][:3]
    assert first == [("therapists", frozenset({t1})), ("inquiries", frozenset({mine, theirs})), ("searches", frozenset({x, y}))]
    with unit_of_work(pg_engine) as s:
        assert s.get(Inquiry, theirs).status == InquiryStatus.cancelled  # withdrawn from, locked up front


@pytest.mark.parametrize("result", [CallResult.reached, CallResult.not_reached, CallResult.wrong_number])
def test_recording_a_call_result_locks_therapist_and_inquiry_before_the_call(pg_engine, result):
    """bench/load.py found a deadlock: the call was locked first, then its inquiry, while an
    answer by mail held the inquiry and cancelled the inquiry's calls."""
    with unit_of_work(pg_engine) as s:
        t = make_therapist(s).id
        x = make_search(s).id
        inquiry = _inquiry(s, t, [x], "phone_made")
        call_id = s.scalar(select(PhoneCall.id).where(PhoneCall.inquiry_id == inquiry))
    outcomes = {x: Outcome.rejected_capacity} if result == CallResult.reached else None
    locks = _locks_taken(pg_engine, lambda s: call_services.record_call_result(
        s, COORD, call_id, result, now=NOW, today=TODAY, outcomes=outcomes, settings=SETTINGS))
    _assert_global_order(locks)
    tables = [table for table, _, _ in locks if table in RANK]
    assert tables[:2] == ["therapists", "inquiries"] and "phone_calls" in tables, locks


def test_pausing_a_search_locks_its_open_inquiries_before_the_search(pg_engine):
    with unit_of_work(pg_engine) as s:
        x = make_search(s).id
        _inquiry(s, make_therapist(s).id, [x, make_search(s).id], "mail")
    locks = _locks_taken(pg_engine, lambda s: registry_searches.pause_search(s, COORD, x, today=TODAY, now=NOW))
    _assert_global_order(locks)
    assert [t for t, _, _ in locks if t in RANK][:2] == ["inquiries", "searches"]


def test_creating_sending_and_expiring_lock_in_the_global_order(pg_engine):
    with unit_of_work(pg_engine) as s:
        t = make_therapist(s).id
        x, y = make_search(s).id, make_search(s).id
        old = _inquiry(s, make_therapist(s).id, [make_search(s).id], "mail")
        s.get(Inquiry, old).sent_at = NOW - timedelta(days=60)
    created: list[int] = []
    _assert_global_order(_locks_taken(pg_engine, lambda s: created.append(
        lifecycle.create_inquiry(s, COORD, t, [x, y], today=TODAY, now=NOW, settings=SETTINGS).id)))
    _assert_global_order(_locks_taken(pg_engine, lambda s: lifecycle.send_inquiry(
        s, COORD, created[0], today=TODAY, now=NOW, settings=SETTINGS)))
    _assert_global_order(_locks_taken(pg_engine, lambda s: closing.expire_inquiries(s, now=NOW, settings=SETTINGS)))
    with unit_of_work(pg_engine) as s:
        assert s.get(Inquiry, old).status == InquiryStatus.expired


def test_cancelling_an_inquiry_mail_in_the_outbox_locks_the_inquiry_first(pg_engine):
    with unit_of_work(pg_engine) as s:
        inquiry_id = _inquiry(s, make_therapist(s).id, [make_search(s).id], "mail")
        inquiry = s.get(Inquiry, inquiry_id)
        inquiry.status, inquiry.sent_at = InquiryStatus.queued, None
        mail = next(m for m in s.scalars(select(OutboxEmail).where(OutboxEmail.inquiry_id == inquiry_id))
                    if m.template == mt.THERAPIST_INQUIRY)
        mail.state, mail.sent_at, mail.next_attempt_at = EmailState.queued, None, NOW
        s.flush()
        mail_id = mail.id
    locks = _locks_taken(pg_engine, lambda s: outbox.cancel(s, COORD, mail_id, NOW, reason="von Hand"))
    _assert_global_order(locks)
    assert [t for t, _, _ in locks][:2] == ["inquiries", "outbox_emails"]
    with unit_of_work(pg_engine) as s:
        assert s.get(Inquiry, inquiry_id).status == InquiryStatus.draft


def test_foreign_key_checks_pass_a_locked_therapist(pg_engine):
    """FOR NO KEY UPDATE lets PostgreSQL's foreign-key check (FOR KEY SHARE) through: the
    lock that made the winner wait for the loser's therapist row is gone."""
    t1, _ = _two_therapists(pg_engine)
    with unit_of_work(pg_engine) as holder:
        lock_rows(holder, therapists=[t1])
        with pg_engine.connect() as other:
            other.execute(sa.text("SET lock_timeout = '2s'"))
            assert other.execute(sa.text("SELECT id FROM therapists WHERE id = :t FOR KEY SHARE NOWAIT"), {"t": t1}).all()
            with pytest.raises(sa.exc.OperationalError):  # a second writer still waits (NOWAIT: fails at once)
                other.execute(sa.text("SELECT id FROM therapists WHERE id = :t FOR NO KEY UPDATE NOWAIT"), {"t": t1})
            other.rollback()
