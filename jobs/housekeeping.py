"""Housekeeping every 15 minutes: expired login sessions, old runner heartbeats and job runs."""

from __future__ import annotations

from core.platform.auth import expire_sessions
from core.platform.runner import prune_heartbeats, prune_job_runs
from jobs.spec import JobContext


def run(ctx: JobContext) -> str:
    with ctx.session_scope() as session:
        sessions = expire_sessions(session, now=ctx.now, idle_minutes=ctx.settings.SESSION_IDLE_MINUTES)
        heartbeats = prune_heartbeats(session, now=ctx.now)
        runs = prune_job_runs(session, now=ctx.now)
    return summary(sessions, heartbeats, runs)


def summary(sessions: dict[str, int], heartbeats: int, runs: int = 0) -> str:
    return (
        f"Anmeldungen: {sessions['expired']} abgelaufen, {sessions['unused_handoffs']} ungenutzte "
        f"Anmeldecodes verworfen, {sessions['deleted']} alte gelöscht; "
        f"{heartbeats} alte Einträge des Hintergrunddienstes gelöscht, {runs} alte Jobläufe gelöscht"
    )
