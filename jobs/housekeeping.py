"""Housekeeping every 15 minutes: expired login sessions and old runner heartbeats."""

from __future__ import annotations

from core.auth import expire_sessions
from core.runner import prune_heartbeats
from jobs.spec import JobContext


def run(ctx: JobContext) -> str:
    with ctx.session_scope() as session:
        sessions = expire_sessions(session, now=ctx.now)
        heartbeats = prune_heartbeats(session, now=ctx.now)
    return summary(sessions, heartbeats)


def summary(sessions: dict[str, int], heartbeats: int) -> str:
    return (
        f"Anmeldungen: {sessions['expired']} abgelaufen, {sessions['unused_handoffs']} ungenutzte "
        f"Anmeldecodes verworfen, {sessions['deleted']} alte gelöscht; "
        f"{heartbeats} alte Einträge des Hintergrunddienstes gelöscht"
    )
