"""Posteingang: fetch replies and bounces from the mailbox (thin call into core.inbox.store).

Off while IMAP_HOST is not set. A mailbox that cannot be read makes the run fail with the
adapter's German text (shown with the job runs); the next run tries again.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from core.inbox import store
from jobs.spec import JobContext

# At most this many messages per run; the next run (a few minutes later) goes on.
MAX_MESSAGES_PER_RUN = 2000


def fetch(ctx: JobContext) -> str:
    config = store.imap_config(ctx.settings)
    if config is None:
        return "Posteingang nicht eingerichtet (IMAP_HOST fehlt)."
    started = time.monotonic()

    def clock() -> datetime:  # the injected `now`, moving on with the run
        return ctx.now + timedelta(seconds=time.monotonic() - started)

    report = store.fetch_and_store(ctx.session_scope, config, clock=clock, max_messages=MAX_MESSAGES_PER_RUN)
    return report.summary()
