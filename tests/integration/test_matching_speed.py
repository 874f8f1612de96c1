"""Issue 15.7: the properties the matching speed rests on, on SQLite and PostgreSQL.

- A practice lookup by normalised e-mail and a therapist's open inquiry are answered by
  indexes (migration 0012) – the query's expression and the index's must stay the same.
- The partial index's predicate is the open-inquiry rule (`open_inquiry_clause`).
- The contactable page builds view rows only for the rows it shows.
- A proposal takes a fixed, small number of round trips.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func, select

from core.matching import contactable as matching_contactable
from core.matching import eligibility, regions
from core.platform.addresses import therapists_with_email
from core.platform.models import OPEN_INQUIRY_PREDICATE, Inquiry, Therapist
from core.matching.regions import open_inquiry_clause
from tests.support.matching_fixtures import COORD, SETTINGS, TODAY, make_search, make_therapist, open_inquiry


def _plan_text(session, stmt) -> str:
    bind = session.get_bind()
    sql = str(stmt.compile(bind, compile_kwargs={"literal_binds": True}))
    if bind.dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        return "\n".join(r[0] for r in session.execute(sa.text("EXPLAIN " + sql)))
    return "\n".join(str(r[-1]) for r in session.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))


def test_practice_lookup_uses_the_email_key_index(db_session):
    make_therapist(db_session, email="Praxis.Mueller@Example.org")
    plan = _plan_text(db_session, select(Therapist.id).where(therapists_with_email("praxis.mueller@example.org")))
    assert "ix_therapists_email_key" in plan, plan


def test_open_inquiry_of_a_therapist_uses_the_partial_index(db_session):
    t = make_therapist(db_session)
    open_inquiry(db_session, t.id, [make_search(db_session).id])
    stmt = select(func.min(Inquiry.id)).where(Inquiry.therapist_id == t.id, open_inquiry_clause())
    if db_session.get_bind().dialect.name == "postgresql":
        # the question is whether the partial index can answer the rule's SQL at all: without
        # the general index (dropped inside this test's transaction, rolled back after) and
        # without scans, PostgreSQL must use it – or the predicate no longer matches the rule
        db_session.execute(sa.text("DROP INDEX ix_inquiries_therapist_status"))
        plan = _plan_text(db_session, stmt)
        assert "ix_inquiries_open_by_therapist" in plan, plan
        return
    plan = _plan_text(db_session, stmt)
    # SQLite picks either index of the therapist's inquiries; never a scan of all of them
    assert "USING INDEX ix_inquiries_" in plan or "USING COVERING INDEX ix_inquiries_" in plan, plan


def test_partial_index_predicate_is_the_open_inquiry_rule(db_session):
    t = make_therapist(db_session)
    s = make_search(db_session)
    made = [
        open_inquiry(db_session, t.id, [s.id], status=status, origin=origin).id
        for status in ("draft", "queued", "sent", "answered", "expired", "cancelled")
        for origin in ("manual", "planner", "nightly")
    ]
    by_rule = set(db_session.scalars(select(Inquiry.id).where(Inquiry.id.in_(made), open_inquiry_clause())))
    by_predicate = set(db_session.scalars(select(Inquiry.id).where(Inquiry.id.in_(made), sa.text(OPEN_INQUIRY_PREDICATE))))
    assert by_rule == by_predicate and len(by_rule) == 8  # draft/queued/sent × 3 origins, minus the nightly draft


def test_contactable_page_builds_only_the_rows_it_shows(db_session, monkeypatch):
    for i in range(30):
        make_therapist(db_session, plz=f"10{i:03d}")
    built = []
    original = matching_contactable._contactable_row
    monkeypatch.setattr(matching_contactable, "_contactable_row", lambda r, **kw: built.append(r.id) or original(r, **kw))
    page = matching_contactable.contactable_therapists(
        db_session, COORD, regions.region_by_prefix("10", digits=2), today=TODAY, offset=10, limit=5
    )
    assert page.total >= 30 and len(page.rows) == 5
    assert sorted(built) == sorted(r.id for r in page.rows)


def test_a_proposal_takes_five_round_trips(db_session):
    t = make_therapist(db_session)
    for _ in range(4):
        make_search(db_session)
    eligibility.propose_inquiry(db_session, t.id, today=TODAY, settings=SETTINGS)  # once-per-database catalog checks
    statements: list[str] = []
    conn = db_session.connection()
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(conn, "before_cursor_execute", listen)
    try:
        ids = eligibility.propose_inquiry(db_session, t.id, today=TODAY, settings=SETTINGS)
    finally:
        sa.event.remove(conn, "before_cursor_execute", listen)
    assert len(ids) == 4
    # therapist (+ largest radius), therapist and practice with open inquiries, the searches
    # in reach, the relation facts by therapist, the open inquiries of the candidates
    assert len(statements) <= 5, "\n\n".join(statements)
