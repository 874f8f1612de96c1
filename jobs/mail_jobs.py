"""E-mail jobs: deliver the outbox (thin calls into core.mail). Follow-ups are in
jobs/call_jobs.py.

Environment (tests and development only, like JOBS_INTERVAL_SECONDS):
OUTBOX_LEASE_SECONDS  how long a claimed mail belongs to this runner (default 300); after a
                      crash the mail returns to the queue when the lease ends.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from core.mail import delivery
from core.mail import rules as mail_rules
from core.adapters.smtp import make_sender
from jobs.spec import JobContext

LEASE_ENV = "OUTBOX_LEASE_SECONDS"
# At most this many batches per run (50 mails each); the next run goes on.
MAX_BATCHES_PER_RUN = 100


def lease() -> timedelta:
    raw = os.environ.get(LEASE_ENV, "").strip()
    if raw.isdigit() and 1 <= int(raw) <= 3600:
        return timedelta(seconds=int(raw))
    return mail_rules.DEFAULT_LEASE


def deliver(ctx: JobContext) -> str:
    started = time.monotonic()

    def clock() -> datetime:  # the injected `now`, moving on with the run
        return ctx.now + timedelta(seconds=time.monotonic() - started)

    report = delivery.deliver_due(
        ctx.session_scope,
        make_sender(ctx.settings),
        clock,
        owner=ctx.runner_id,
        settings=ctx.settings,
        lease=lease(),
        max_batches=MAX_BATCHES_PER_RUN,
    )
    return report.summary()
