"""Alembic is the only schema source: round trip and models == migrations, on both DBs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.platform.db import make_engine
from core.platform.models import Base
from tests.support.databases import downgrade, migrate


def _tables(url):
    eng = make_engine(url)
    try:
        return set(sa.inspect(eng).get_table_names()) - {"alembic_version"}
    finally:
        eng.dispose()


def test_round_trip_upgrade_downgrade_upgrade(backend, db_factories):
    url = db_factories[backend].new_url(migrated=False)
    migrate(url)
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "base")
    assert _tables(url) == set()
    migrate(url)
    assert _tables(url) == set(Base.metadata.tables)


def test_models_equal_migrations(backend, db_factories):
    url = db_factories[backend].new_url()
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        eng.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_one_active_search_per_patient_is_a_constraint(db_session):
    from datetime import date

    from core.platform.models import Patient, Search

    p = Patient(first_name="Anna", last_name="Muster")
    db_session.add(p)
    db_session.flush()
    db_session.add(Search(patient_id=p.id, started_on=date(2026, 1, 1)))
    db_session.flush()
    db_session.add(Search(patient_id=p.id, started_on=date(2026, 2, 1), status="paused"))
    db_session.flush()  # a paused one beside the active one is fine
    db_session.add(Search(patient_id=p.id, started_on=date(2026, 3, 1)))
    try:
        with db_session.begin_nested():
            db_session.flush()
        raise AssertionError("second active search was accepted")
    except sa.exc.IntegrityError:
        pass


def test_history_is_not_cascaded_away(db_session):
    from datetime import date

    from core.platform.models import Patient, Search

    p = Patient(first_name="Bernd", last_name="Beispiel")
    db_session.add(p)
    db_session.flush()
    db_session.add(Search(patient_id=p.id, started_on=date(2026, 1, 1)))
    db_session.flush()
    try:
        with db_session.begin_nested():
            db_session.execute(sa.delete(Patient).where(Patient.id == p.id))
        raise AssertionError("deleting a patient with a search was allowed")
    except sa.exc.IntegrityError:
        pass


def test_enum_values_are_checked(db_session):
    try:
        with db_session.begin_nested():
            db_session.execute(
                sa.text("INSERT INTO therapists (salutation, first_name, last_name, gender, coordinates_source, geocode_pending, statutory_licence, languages, offers_vt, offers_tp, offers_ap, offers_st, offers_individual, offers_group, prefers_group, patient_gender_preference, potentially_available, knows_us, status, hand_edited_fields, created_at, updated_at) VALUES ('herr','A','B','male','missing', false, true, '[]', false,false,false,false,true,false,false,'any',false,false,'weird','[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
            )
        raise AssertionError("unknown status accepted")
    except sa.exc.IntegrityError:
        pass
