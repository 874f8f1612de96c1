"""Matching jobs (thin calls into core): expire unanswered inquiries daily, and prepare the
nightly suggestions (draft inquiries for approval; nothing is sent)."""

from __future__ import annotations

from core.inquiries import closing
from core.planning import planner
from core.platform.formatting import BERLIN
from jobs.spec import JobContext

EXPIRY_BATCH = 200
MAX_EXPIRY_BATCHES = 500  # at most 100,000 per run; the next run goes on


def expire(ctx: JobContext) -> str:
    total = 0
    for _ in range(MAX_EXPIRY_BATCHES):
        with ctx.session_scope() as session:
            n = closing.expire_inquiries(session, now=ctx.now, settings=ctx.settings, limit=EXPIRY_BATCH)
        total += n
        if n < EXPIRY_BATCH:
            break
    return f"Abgelaufene Anfragen: {total}"


def nightly_plan(ctx: JobContext) -> str:
    with ctx.session_scope() as session:
        report = planner.prepare_nightly_drafts(
            session, today=ctx.now.astimezone(BERLIN).date(), now=ctx.now, settings=ctx.settings
        )
    return report.summary()
