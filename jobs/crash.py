"""Fault-test hook (tests only, like JOBS_INTERVAL_SECONDS): a deterministic point at which
the runner process kills itself with SIGKILL while a job is at work.

    JOBS_TEST_CRASH="<job id>:write:<n>"    right after the n-th INSERT/UPDATE/DELETE the job
                                            sent (inside a unit of work: it never commits)
    JOBS_TEST_CRASH="<job id>:commit:<n>"   right after the n-th commit (between two units
                                            of work: what is committed stays, the rest is lost)
    JOBS_TEST_CRASH="<job id>:start"        as the job starts (its run is recorded as running)

Counted per process over the job's units of work (ctx.session_scope; writes only inside
them, in the job's thread) and the commits a job makes inside one (the geocoder commits per
therapist). Unset: the plain unit of work, no
listener, nothing else changes. No business logic knows about it.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator, Mapping

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.platform.db import unit_of_work

CRASH_ENV = "JOBS_TEST_CRASH"
_POINTS = ("write", "commit")
_WRITES = ("INSERT", "UPDATE", "DELETE")


def session_scope(job_id: str, engine: Engine, environ: Mapping[str, str] = os.environ) -> Callable:
    """The job's unit-of-work factory; with the hook set for this job, one that dies at the point."""
    raw = environ.get(CRASH_ENV, "").strip()
    job, _, rest = raw.partition(":")
    point, _, count = rest.partition(":")
    if job == job_id and point == "start":
        os.kill(os.getpid(), signal.SIGKILL)
    if job != job_id or point not in _POINTS or not count.isdigit():
        return partial(unit_of_work, engine)
    seen = itertools.count(1)
    nth = int(count)

    def maybe_die(*_args: object) -> None:
        if next(seen) >= nth:
            os.kill(os.getpid(), signal.SIGKILL)

    inside = threading.local()
    if point == "write":
        def on_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if getattr(inside, "active", False) and statement.lstrip()[:6].upper() in _WRITES:
                maybe_die()

        event.listen(engine, "after_cursor_execute", on_statement)

    @contextmanager
    def scope() -> Iterator[Session]:
        with unit_of_work(engine) as session:
            if point == "commit":
                event.listen(session, "after_commit", maybe_die)
            inside.active = True
            try:
                yield session
            finally:
                inside.active = False

    return scope
