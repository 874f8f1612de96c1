"""The jobs the runner schedules. To add one: a thin function `def run(ctx) -> str` in its
own module under jobs/, a JobSpec line below, and its German title in core.runner.JOB_TITLES.
"""

from __future__ import annotations

from jobs import call_jobs, geo_jobs, housekeeping, import_jobs, inbox_jobs, mail_jobs, matching_jobs, privacy_jobs
from jobs.spec import JobSpec, cron, every

JOBS: tuple[JobSpec, ...] = (
    JobSpec("housekeeping", housekeeping.run, cron(minute="*/15"), misfire_grace_time=600),
    JobSpec("outbox_delivery", mail_jobs.deliver, every(seconds=30), misfire_grace_time=60),
    JobSpec("inbox", inbox_jobs.fetch, every(minutes=3), misfire_grace_time=180),
    JobSpec("follow_ups", call_jobs.follow_up, cron(minute=5), misfire_grace_time=3000),
    JobSpec("geocoding", geo_jobs.geocode, every(minutes=2), misfire_grace_time=120),
    JobSpec("inquiry_expiry", matching_jobs.expire, cron(hour=6, minute=15), misfire_grace_time=6 * 3600),
    JobSpec("nightly_plan", matching_jobs.nightly_plan, cron(hour=2, minute=30), misfire_grace_time=3 * 3600),
    JobSpec("import_folder", import_jobs.import_folder, every(minutes=5), misfire_grace_time=300),
    # Once a day; each area is due at most every ARZTSUCHE_REFRESH_DAYS, a seventh of them per day.
    JobSpec("arztsuche_live", import_jobs.live_refresh, cron(hour=4, minute=40), misfire_grace_time=6 * 3600),
    JobSpec("privacy_retention", privacy_jobs.retention, cron(hour=3, minute=45), misfire_grace_time=6 * 3600),
)
