"""The one lock order of the house: every unit of work that changes therapists, inquiries
or searches locks the rows it is going to change here, in one call, before it changes them.

    therapists  →  inquiries  →  searches      (each kind by id, ascending)

Two transactions that lock in the same global order can wait for each other but never
deadlock. The mode is FOR NO KEY UPDATE (PostgreSQL): it excludes other writers and other
lockers of the row, but not the FOR KEY SHARE that PostgreSQL's foreign-key checks take on
the referenced row. With FOR UPDATE, a transaction answering inquiry A (and cancelling the
loser's inquiry B, whose row it writes twice, so PostgreSQL re-checks B's therapist_id key)
waits for the therapist row that B's answering transaction holds while that one waits for
the search row that A holds: a deadlock. No key column of these rows ever changes, so the
weaker mode protects everything the services need (one placement per search, one open
inquiry per practice, the per-search cap).

Rows locked here are re-read with `populate_existing`, so the caller sees what the previous
lock holder committed. On SQLite the transaction already holds the database's write lock
(BEGIN IMMEDIATE) and `FOR …` is not rendered.

Rows further down the order (outbox mails, calls, audit entries, exclusions) are locked,
if at all, after these, by the statements that change them; a change that starts from a
mail (approving or cancelling it in the outbox) locks the mail's inquiry first
(core.mail.outbox._lock_emails). The delivery runner's claim never waits (SKIP LOCKED);
recording a delivery or failure locks the therapist and inquiry first, like everyone. A path that finds out only
later that it must change another inquiry (a new one appeared after the lock) still locks it
then; the retry of the unit of work (core.platform.db.run_unit_of_work) is the safety net for
that rare case. See docs/architecture.md, "Concurrency".
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.platform.models import Inquiry, InquiryPatient, Search, Therapist
from core.platform.vocab import OPEN_INQUIRY_STATUSES, Outcome

LOCK_ORDER = (Therapist, Inquiry, Search)


def _ids(values: Iterable[int]) -> list[int]:
    return sorted({int(v) for v in values if v is not None})


def lock_rows(
    session: Session, *, therapists: Iterable[int] = (), inquiries: Iterable[int] = (), searches: Iterable[int] = ()
) -> None:
    """Lock the given therapist, inquiry and search rows FOR NO KEY UPDATE in the global
    order (therapists, inquiries, searches; each by id). Rows already locked by this
    transaction are taken again at once. Missing rows are skipped (callers check)."""
    for model, ids in zip(LOCK_ORDER, (_ids(therapists), _ids(inquiries), _ids(searches))):
        if ids:
            session.execute(
                select(model.id).where(model.id.in_(ids)).order_by(model.id).with_for_update(key_share=True)
            ).all()


def open_inquiries_holding(session: Session, search_ids: Sequence[int]) -> list[int]:
    """Ids of the open inquiries in which any of `search_ids` still waits for an answer:
    the inquiries that placing, pausing or cancelling those searches withdraws them from
    (so they are locked before the searches, in the global order)."""
    ids = _ids(search_ids)
    if not ids:
        return []
    return list(
        session.scalars(
            select(InquiryPatient.inquiry_id)
            .join(Inquiry, Inquiry.id == InquiryPatient.inquiry_id)
            .where(
                InquiryPatient.search_id.in_(ids),
                InquiryPatient.withdrawn_at.is_(None),
                InquiryPatient.outcome == Outcome.pending,
                Inquiry.status.in_(OPEN_INQUIRY_STATUSES),
            )
            .distinct()
            .order_by(InquiryPatient.inquiry_id)
        )
    )


def lock_for_search_change(session: Session, search_ids: Sequence[int]) -> None:
    """Before a search is paused, cancelled or placed: its open inquiries, then the search."""
    lock_rows(session, inquiries=open_inquiries_holding(session, search_ids), searches=search_ids)


# The 116117 import queue: one transaction-level advisory lock (PostgreSQL), taken first; a
# 64-bit key derived from a name, like the job runner's leader lock (no clash with other keys).
IMPORT_QUEUE_LOCK = int.from_bytes(hashlib.sha256(b"therapieplatz:import-queue").digest()[:8], "big", signed=True)


def lock_import_queue(session: Session) -> None:
    """Import runs and review decisions take turns: a run reads the pending proposals of
    earlier runs (an entry already proposed as new is not proposed again) and a decision
    reads what is already applied, so two at once would both create the same therapist.
    Taken at the start of the unit of work, before any row lock (imports are rare; the wait
    is short). Released with the transaction. On SQLite BEGIN IMMEDIATE already serialises
    writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_QUEUE_LOCK})
