"""Waiting for a real process's effect (a child runner, a server): poll until it shows or a
deadline passes. Not a wait for time – where the test owns the clock, it injects it."""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], Optional[T]], *, timeout: float, what: str, details: Callable[[], str] = str,
    interval: float = 0.1,
) -> T:
    """The predicate's first truthy value; AssertionError naming `what` (and `details()`) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{details()}")
        time.sleep(interval)
