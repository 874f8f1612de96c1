from __future__ import annotations

import pytest

from core.platform.config import get_settings
from core.platform.db import dispose_engines
from tests.support.apptest import create_accounts


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db(request, db_factories, monkeypatch):
    """A fresh migrated database with one account per role; the app reads it via DATABASE_URL."""
    url = db_factories[request.param].new_url()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    create_accounts(url)
    yield url
    get_settings.cache_clear()
    dispose_engines()
