"""SQLite: a dashboard read never waits for a writer (WAL snapshot, deferred BEGIN), while
writers still take the write lock at the start (BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from core.platform.db import make_engine, read_session, unit_of_work
from core.platform.models import User


def test_read_is_not_blocked_by_a_long_write(db_factories):
    engine = make_engine(db_factories["sqlite"].new_url())
    with unit_of_work(engine) as s:
        s.add(User(username="vorher", display_name="Vorher", role="viewer", password_hash="x"))
    writing = threading.Event()
    release = threading.Event()

    def long_write():
        with unit_of_work(engine) as s:
            s.add(User(username="waehrend", display_name="Während", role="viewer", password_hash="x"))
            s.flush()
            writing.set()
            release.wait(30)  # the job runner's long batch, holding the write lock

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert writing.wait(10)
        started = time.monotonic()
        with read_session(engine) as s:
            names = set(s.scalars(sa.select(User.username)))
        elapsed = time.monotonic() - started
        assert writer.is_alive(), "the writer must still hold its lock during the read"
        assert names == {"vorher"}  # a snapshot: the uncommitted row is not visible
        assert elapsed < 2, f"the read waited {elapsed:.1f} s for the writer"
    finally:
        release.set()
        writer.join(30)
    with read_session(engine) as s:
        assert set(s.scalars(sa.select(User.username))) == {"vorher", "waehrend"}
    engine.dispose()


def test_a_second_writer_still_waits_for_the_first(db_factories):
    engine = make_engine(db_factories["sqlite"].new_url())
    holding = threading.Event()
    release = threading.Event()
    second_done = threading.Event()

    def first():
        with unit_of_work(engine) as s:
            s.add(User(username="erste", display_name="Erste", role="viewer", password_hash="x"))
            s.flush()
            holding.set()
            release.wait(30)

    def second():
        with unit_of_work(engine) as s:
            s.execute(sa.text("SELECT 1"))  # BEGIN IMMEDIATE already waits for the lock
        second_done.set()

    t1 = threading.Thread(target=first)
    t1.start()
    assert holding.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    try:
        assert not second_done.wait(0.5), "a write transaction must take the write lock at BEGIN"
    finally:
        release.set()
        t1.join(30)
        t2.join(30)
    assert second_done.is_set()
    engine.dispose()
