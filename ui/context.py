"""Per-rerun access to settings, the clock and the database for pages."""

from __future__ import annotations

from datetime import date, datetime, timezone

from core.platform.config import Settings, get_settings
from core.platform.formatting import BERLIN


def settings() -> Settings:
    return get_settings()


def now() -> datetime:
    """The one place the dashboard reads the wall clock; services get it injected."""
    return datetime.now(timezone.utc)


def today() -> date:
    return now().astimezone(BERLIN).date()
