"""Running large in-memory computations efficiently."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cycle collector for a computation that allocates hundreds of thousands
    of small objects and creates no reference cycles (the regional plan of all of Germany):
    otherwise every few thousand allocations trigger a collection that walks every live
    object again (measured: a third of the plan's CPU time). Reference counting still frees
    everything; the collector's previous state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
