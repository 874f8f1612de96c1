"""Two coordinators import 116117 files of the same area at the same moment and accept them
(found by bench/load.py: the same new therapist created twice, or a unique violation on
its external id). Import runs and review decisions take turns, so the second run sees the
first one's proposals and every therapist is created once. PostgreSQL only: SQLite's
BEGIN IMMEDIATE already lets one writer at a time in."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.imports import review, sources
from core.platform.db import make_engine, read_session, unit_of_work
from core.platform.models import Therapist
from core.platform.permissions import Actor
from core.platform.vocab import Role

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "arztsuche" / "current_2026.json"
COORD = Actor(user_id=None, username="koordination", role=Role.coordinator)
NOW = datetime(2026, 3, 11, 9, 0, tzinfo=timezone.utc)


def variant(phone: str) -> bytes:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    data["arztPraxisDatas"][0]["tel"] = phone  # two different files of the same search
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("backend", ["postgresql"])
def test_simultaneous_imports_of_one_area_create_each_therapist_once(fresh_db_url):
    engine = make_engine(fresh_db_url)
    try:
        first_in = threading.Event()
        second_done = threading.Event()
        results: dict[str, object] = {}

        def second():
            try:
                first_in.wait(10)
                with unit_of_work(engine) as s:
                    outcomes, _ = sources.import_uploads(s, COORD, [sources.UploadedFile("b.json", variant("0221 2222222"))], now=NOW)
                results["second"] = outcomes[0].run_id
            except Exception as exc:  # noqa: BLE001 - reported below
                results["error"] = exc
            finally:
                second_done.set()

        thread = threading.Thread(target=second)
        thread.start()
        with unit_of_work(engine) as s:
            outcomes, _ = sources.import_uploads(s, COORD, [sources.UploadedFile("a.json", variant("0221 1111111"))], now=NOW)
            first_run = outcomes[0].run_id
            first_in.set()
            # the second import waits for this one's commit instead of proposing the same new therapists
            second_done.wait(1.0)
        thread.join(30)
        assert "error" not in results, results.get("error")
        for run_id in (first_run, results["second"]):
            with unit_of_work(engine) as s:
                review.accept_all(s, COORD, now=NOW, run_id=run_id)
        with read_session(engine) as s:
            twins = s.execute(
                select(Therapist.first_name, Therapist.last_name, Therapist.plz, func.count())
                .group_by(Therapist.first_name, Therapist.last_name, Therapist.plz).having(func.count() > 1)
            ).all()
            created = s.scalar(select(func.count()).select_from(Therapist))
        assert created == 6 and twins == [], twins
    finally:
        engine.dispose()
