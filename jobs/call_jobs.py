"""Call jobs: follow up unanswered e-mail inquiries with a call in the therapist's phone hours
(or a reminder mail) – a thin call into core.calls.follow_ups."""

from __future__ import annotations

from core.calls import follow_ups
from jobs.spec import JobContext


def follow_up(ctx: JobContext) -> str:
    with ctx.session_scope() as session:
        report = follow_ups.schedule_follow_ups(session, now=ctx.now, settings=ctx.settings, limit=5000)
    return report.summary()
