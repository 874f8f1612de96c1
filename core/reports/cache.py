"""A short-lived, process-wide cache for report figures, invalidated when data changes.

Why here and not st.cache_data in the page: the page, the benchmark and the tests all go
through the same function, so what `bench/home.py` measures warm is what a coordinator
gets, and the invalidation rule is testable without Streamlit.

Key: (database URL, data version, the caller's key). The *data version* is one cheap query
(`data_version`): the newest audit entry that can change a figure (reads of records and
logins can't) and the highest ids of the tables whose rows the figures count. Every state change that matters writes an audit entry in its own transaction
(docs/architecture.md, "Layers"), and new rows raise the max ids, so any committed change –
from this process, another dashboard process or the job runner – changes the key. Each
lookup is primary-key index probes (well under a millisecond). A TTL (default 60 s) bounds
what a change outside those paths could leave stale, and the figures depend on the day,
which callers put into their key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.platform.models import AuditEntry, ImportChange, InboxMessage, Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Search, Therapist

TTL_SECONDS = 60.0
MAX_ENTRIES = 64

_VERSION_TABLES = (AuditEntry, Search, Inquiry, InquiryPatient, OutboxEmail, PhoneCall, Therapist, InboxMessage, ImportChange)


# Audit entries that change no figure: reads of records ("wer hat was gesehen") and logins.
_QUIET_ACTIONS = or_(AuditEntry.action.like("read.%"), AuditEntry.action.like("login%"), AuditEntry.action == "logout")


def data_version(session: Session) -> tuple[int, ...]:
    """The newest audit entry that can change a figure, and the max ids of the counted tables,
    in one round trip. Every part walks a primary-key index from its end (ORDER BY id DESC
    LIMIT 1), so the probe stays constant-time however long the history grows."""
    cols = [
        select(AuditEntry.id).where(~_QUIET_ACTIONS).order_by(AuditEntry.id.desc()).limit(1).scalar_subquery(),
        *[select(func.max(model.id)).scalar_subquery() for model in _VERSION_TABLES[1:]],
    ]
    row = session.execute(select(*cols)).one()
    return tuple(int(v or 0) for v in row)


class TTLCache:
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: "OrderedDict[Hashable, tuple[float, Any]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or self._clock() - entry[0] > self.ttl:
                if entry is not None:
                    del self._data[key]
                self.misses += 1
                return False, None
            self._data.move_to_end(key)
            self.hits += 1
            return True, entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


REPORTS = TTLCache()


def cached(session: Session, key: Hashable, compute: Callable[[], Any], *, cache: Optional[TTLCache] = None) -> Any:
    """compute() once per (database, data version, key) within the TTL."""
    cache = cache or REPORTS
    bind = session.get_bind()
    full_key = (str(bind.engine.url), data_version(session), key)
    found, value = cache.get(full_key)
    if found:
        return value
    value = compute()
    cache.put(full_key, value)
    return value
