"""The jobs the runner schedules. To add one: a thin function `def run(ctx) -> str` in its
own module under jobs/, a JobSpec line below, and its German title in core.runner.JOB_TITLES.
"""

from __future__ import annotations

from jobs import housekeeping, mail_jobs
from jobs.spec import JobSpec, cron, every

JOBS: tuple[JobSpec, ...] = (
    JobSpec("housekeeping", housekeeping.run, cron(minute="*/15"), misfire_grace_time=600),
    JobSpec("outbox_delivery", mail_jobs.deliver, every(seconds=30), misfire_grace_time=60),
    JobSpec("follow_ups", mail_jobs.follow_up, cron(minute=5), misfire_grace_time=3000),
)
