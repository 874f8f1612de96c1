"""Process options of `python -m jobs` that are not Settings (cheap to import)."""

from __future__ import annotations

import sys
from typing import Mapping, Optional, Sequence

INTERVAL_ENV = "JOBS_INTERVAL_SECONDS"
_INTERVAL_RANGE = (1, 3600)


def interval_override_or_exit(environ: Mapping[str, str]) -> Optional[int]:
    """JOBS_INTERVAL_SECONDS (tests/development only); a bad value is one line and exit 2."""
    raw = environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return None
    lo, hi = _INTERVAL_RANGE
    try:
        value: Optional[int] = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        print(
            f"Konfigurationsfehler: {INTERVAL_ENV} muss eine ganze Zahl zwischen {lo} und {hi} sein (gefunden: {raw!r}).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return value


ONLY_ENV = "JOBS_ONLY"


def only_jobs_or_exit(environ: Mapping[str, str], known: Sequence[str]) -> Optional[list[str]]:
    """JOBS_ONLY (tests/development only): comma-separated job ids; the runner schedules only
    these. An unknown id is one line and exit 2."""
    raw = environ.get(ONLY_ENV, "").strip()
    if not raw:
        return None
    wanted = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown or not wanted:
        print(
            f"Konfigurationsfehler: {ONLY_ENV} nennt unbekannte Jobs {unknown!r} (bekannt: {', '.join(known)}).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return wanted
