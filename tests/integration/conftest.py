"""Fixtures shared by the integration tests (the databases themselves come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support import seed


@pytest.fixture
def plz_table(db_session):
    """A small PLZ table: 10115 Berlin, 20095 Hamburg, 01067 Dresden, 80331 München."""
    seed.plz_centroids(db_session)
