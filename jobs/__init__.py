"""`python -m jobs`: the background job runner (APScheduler 3, BlockingScheduler).

- jobs/registry.py  the list of jobs (JOBS); adding a job is a function plus one line there
- jobs/spec.py      JobSpec, JobContext and the trigger helpers `cron()` / `every()`
- jobs/scheduler.py build_scheduler(): Europe/Berlin, MemoryJobStore, one APScheduler job per spec
- jobs/execution.py run_job(): one JobRun row per run, written even when the job fails
- jobs/process.py   main(): settings, logging, leader lock / standby, heartbeats, SIGTERM

Environment (besides core.config.Settings: DATABASE_URL, HEARTBEAT_SECONDS, JOB_LOCK_PATH):
JOBS_INTERVAL_SECONDS  tests and development only: run every job every N seconds (1..3600)
                       instead of its real schedule. Unset in production.
"""
