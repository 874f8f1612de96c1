"""A unit-of-work factory over a test's own session: what services that open their own
units of work (delivery, the inbox job) take as `session_scope`, committing into the
test's transaction (savepoints) and rolling back on error."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

from sqlalchemy.orm import Session


def scope_for(session: Session) -> Callable[[], ContextManager[Session]]:
    @contextmanager
    def scope() -> Iterator[Session]:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    return scope
