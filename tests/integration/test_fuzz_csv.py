"""Bad input everywhere (issue 15.4), the CSV import: any bytes, any CSV text – broken
encodings, NUL bytes, formula cells, ragged rows – give a preview with German messages or a
clean import, never an unhandled exception and never half a file written (both databases)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.platform.models import Patient, Therapist
from core.platform.permissions import Actor
from core.platform.vocab import Role
from core.registry import csv_files

COORD = Actor(None, "t.koord", Role.coordinator)
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)

cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "Anna\x00", "Notiz\x00mit NUL", "=HYPERLINK(\"http://x\",\"y\")", "+1", "-1", "@SUM(A1)", "10115", "١٢٣٤٥",
                     "VT/", "Mo 09:00-12:00", "31.02.2026", "x" * 400, "\"", ";", "\r\n"]),
)


def _csv(kind: str, rows: list[list[str]], header_noise: bool) -> bytes:
    header = csv_files.headers(kind)
    if header_noise:
        header = header[: max(1, len(header) // 2)] + ["Unbekannt"]
    lines = [";".join(header)] + [";".join(r) for r in rows]
    return ("\n".join(lines)).encode("utf-8")


def _counts(session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Patient)), session.scalar(select(func.count()).select_from(Therapist)))


def _german(message: str) -> bool:
    return bool(message) and "Traceback" not in message and "object has no attribute" not in message


def _check(db_session, kind: str, data: bytes) -> None:
    before = _counts(db_session)
    preview = csv_files.preview_import(db_session, COORD, kind, data, today=TODAY)
    for p in preview.problems:
        assert all(_german(m) for m in p.errors.values())
    assert all(_german(m) for m in preview.file_errors)
    assert _counts(db_session) == before  # a preview writes nothing
    if not preview.ok:
        try:
            csv_files.commit_import(db_session, COORD, kind, data, now=NOW, today=TODAY)
        except csv_files.ImportRefused:
            pass
        assert _counts(db_session) == before  # refused: nothing half-written
    else:
        with db_session.begin_nested():  # what the preview accepted, the database takes
            result = csv_files.commit_import(db_session, COORD, kind, data, now=NOW, today=TODAY, skip_duplicates=True)
            assert result.created + result.skipped_duplicates == preview.valid_count
            db_session.rollback()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(["patients", "therapists"]), st.lists(st.lists(cell, max_size=12), max_size=5), st.booleans())
def test_csv_rows_of_anything(db_session, kind, rows, header_noise):
    _check(db_session, kind, _csv(kind, rows, header_noise))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(["patients", "therapists"]), st.binary(max_size=400))
def test_csv_of_random_bytes(db_session, kind, data):
    _check(db_session, kind, data)
