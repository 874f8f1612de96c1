"""AppTest for Vermittlung: every view renders per role; a coordinator creates and sends an
inquiry from the proposal, records an answer; viewers see no action buttons."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.inquiries import answers as inquiries_answers
from core.inquiries import lifecycle as inquiries_lifecycle
from core.mail import delivery
from core.platform.config import Settings
from core.platform.db import CONCURRENT_CHANGE_MESSAGE, RETRY_ATTEMPTS, get_engine, read_session, unit_of_work
from core.platform.models import Inquiry, OutboxEmail, Search
from core.platform.permissions import SYSTEM
from core.platform.vocab import InquiryStatus, Role
from tests.support.apptest import login
from tests.support.seed import patient_with_search, therapist

PAGE = "pages/matching.py"


def _seed(url):
    with unit_of_work(get_engine(url)) as s:
        t = therapist(s, last_name="Vorschlag", email="vorschlag@example.org", plz="10115", lat=52.53, lon=13.38)
        therapist(s, last_name="Zweite", email="zweite@example.org", plz="10117", lat=52.52, lon=13.39, knows_us=True)
        searches = [
            patient_with_search(s, last_name=f"Wartend{i}", lat=52.52, lon=13.40, plz="10178", max_distance_km=25,
                                started_on=date(2026, 1, 1) + timedelta(days=i))[1]
            for i in range(3)
        ]
        patient_with_search(s, last_name="Weitweg", lat=52.80, lon=13.40, plz="16515", max_distance_km=10)
        return t.id, [x.id for x in searches]


def _open(at, view, **controls):
    at.switch_page(PAGE).run()
    at.segmented_control(key="mt_view").set_value(view).run()
    for key, value in controls.items():
        at.segmented_control(key=key).set_value(value).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]
    return at


@pytest.mark.parametrize("role", [Role.viewer, Role.coordinator, Role.admin])
def test_every_view_renders_for_role(app_db, role):
    _seed(app_db)
    at = login(role)
    for view in ("new", "inquiries", "placements", "planner", "nightly"):
        _open(at, view)
        assert at.title[0].value == "Vermittlung"
        assert at.segmented_control(key="mt_view").value == view


def test_region_list_and_proposal_create_and_send(app_db):
    tid, sids = _seed(app_db)
    at = _open(login(Role.coordinator), "new")
    at.text_input(key="mt_region").input("10").run()
    assert not at.exception and not at.error
    df = at.dataframe[0].value
    assert list(df["Name"].str.split(",").str[0]) == ["Zweite", "Vorschlag"]  # knows us first
    at.session_state["mt_therapists"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    editor = at.get("arrow_data_frame")
    assert any("Warum nicht?" in e.label for e in at.expander)
    at.checkbox(key=f"mt_send_now_{tid}").check()
    at.button(key=f"mt_create_{tid}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(app_db)) as s:
        inquiry = s.scalars(select(Inquiry)).one()
        assert inquiry.therapist_id == tid and inquiry.status == InquiryStatus.queued
        assert [m.search_id for m in inquiry.patients] == sids
        assert s.scalar(select(OutboxEmail.inquiry_id)) == inquiry.id


def test_answer_form_records_outcomes(app_db):
    tid, sids = _seed(app_db)
    now = datetime.now(timezone.utc)
    today = now.date()
    with unit_of_work(get_engine(app_db)) as s:
        i = inquiries_lifecycle.create_inquiry(s, SYSTEM, tid, sids[:2], today=today, now=now, settings=Settings())
        inquiries_lifecycle.send_inquiry(s, SYSTEM, i.id, today=today, now=now, settings=Settings())
        for mail in delivery.claim_due(s, owner="t", now=now, limit=10, lease_until=now + timedelta(minutes=5), settings=Settings()):
            delivery.mark_sent(s, mail, owner="t", sent_at=now)
        inquiry_id = i.id
    at = _open(login(Role.coordinator), "inquiries", mt_filter="awaiting")
    at.session_state["mt_inquiries"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    at.selectbox(key=f"mt_outcome_{inquiry_id}_{sids[0]}").select("accepted")
    at.selectbox(key=f"mt_outcome_{inquiry_id}_{sids[1]}").select("rejected_capacity")
    at.button(key=f"FormSubmitter:mt_answer_{inquiry_id}-Antwort speichern").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(app_db)) as s:
        assert s.get(Inquiry, inquiry_id).status == InquiryStatus.answered
        assert s.get(Search, sids[0]).placed_therapist_id == tid
    at = _open(at, "placements")
    assert "Wartend0" in at.dataframe[-1].value.to_string()


def test_viewer_sees_no_actions(app_db):
    tid, _ = _seed(app_db)
    at = _open(login(Role.viewer), "new")
    at.text_input(key="mt_region").input("10").run()
    at.session_state["mt_therapists"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception and not at.error
    assert not [b for b in at.button if (b.key or "").startswith("mt_create_")]
    assert any("Lesezugriff" in c.value for c in at.caption)
    df = at.dataframe[0].value
    assert "E-Mail" in df.columns and set(df["E-Mail"]) <= {True, False}


def test_planner_view_creates_chosen_inquiries(app_db):
    _seed(app_db)
    at = _open(login(Role.coordinator), "planner")
    at.text_input(key="mt_plan_region").input("10").run()
    at.button(key="mt_plan_run").click().run()
    assert not at.exception and not at.error
    assert any("Anfragen mit" in m.value or "Anfrage mit" in m.value for m in at.markdown)
    at.button(key="mt_plan_create").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with read_session(get_engine(app_db)) as s:
        origins = {i.origin.value for i in s.scalars(select(Inquiry))}
    assert origins == {"planner"}


def test_bad_region_shows_german_error_next_to_field(app_db):
    at = _open(login(Role.coordinator), "new")
    at.text_input(key="mt_region").input("1x").run()
    assert any("PLZ-Region" in e.value for e in at.error)


def test_linked_therapist_opens_the_proposal_without_a_region(app_db):
    """A link with ?mt_therapist=<id> (from the map's therapist card) shows that therapist's
    proposal even before a region is chosen."""
    tid, _ = _seed(app_db)
    at = login(Role.coordinator)
    at.query_params["mt_therapist"] = str(tid)
    at = _open(at, "new")
    assert not at.exception and not at.error
    assert any(h.value.startswith("Anfrage an") for h in at.subheader)
    assert at.button(key=f"mt_create_{tid}") is not None


# --------------------------------------------------------------------------- issue 12


def _two_sent_inquiries(url, *, sent_at):
    """Two e-mail inquiries delivered at `sent_at` (the second one later), ids in send order."""
    with unit_of_work(get_engine(url)) as s:
        ids = []
        for n in range(2):
            t = therapist(s, last_name=f"Praxis{n}", email=f"praxis{n}@example.org", plz="10115", lat=52.53, lon=13.38)
            _, search = patient_with_search(s, last_name=f"Pat{n}", lat=52.52, lon=13.40, plz="10178", max_distance_km=25)
            at = sent_at + timedelta(hours=n)
            i = inquiries_lifecycle.create_inquiry(s, SYSTEM, t.id, [search.id], today=at.date(), now=at, settings=Settings())
            inquiries_lifecycle.send_inquiry(s, SYSTEM, i.id, today=at.date(), now=at, settings=Settings())
            for mail in delivery.claim_due(s, owner="t", now=at, limit=10, lease_until=at + timedelta(minutes=5), settings=Settings()):
                delivery.mark_sent(s, mail, owner="t", sent_at=at)
            ids.append((i.id, search.id))
        return ids


def test_point2_sent_column_is_berlin_time(app_db):
    """Vermittlung › Anfragen showed "Gesendet" in UTC, an hour or two off every other screen."""
    sent = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)  # 12:00 in Berlin (summer time)
    _two_sent_inquiries(app_db, sent_at=sent)
    at = _open(login(Role.coordinator), "inquiries", mt_filter="all")
    df = at.dataframe[0].value
    assert sorted(ts.strftime("%d.%m.%Y %H:%M") for ts in df["Gesendet"]) == ["01.07.2026 12:00", "01.07.2026 13:00"]
    assert all(ts.tzinfo is None for ts in df["Gesendet"])


def test_point3_selection_stays_on_the_answered_inquiry(app_db):
    """After saving an answer the same inquiry stays selected and shows its new state; the
    list re-sorts (answered first), so a position-based selection jumped to the other one."""
    now = datetime.now(timezone.utc) - timedelta(days=2)
    (first, s1), (second, _) = _two_sent_inquiries(app_db, sent_at=now)
    at = _open(login(Role.coordinator), "inquiries", mt_filter="all")
    refs = list(at.dataframe[0].value["Anfrage"])
    assert refs == [f"A{second}", f"A{first}"]  # newest activity first
    at.session_state["mt_inquiries"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert at.subheader[0].value.startswith(f"Anfrage A{first} ")
    at.selectbox(key=f"mt_outcome_{first}_{s1}").select("rejected_capacity")
    at.button(key=f"FormSubmitter:mt_answer_{first}-Antwort speichern").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["Anfrage"]) == [f"A{first}", f"A{second}"]  # it moved up
    assert at.subheader[0].value.startswith(f"Anfrage A{first} ")  # still the same inquiry
    assert at.session_state["mt_inquiries"]["selection"]["rows"] == [0]  # highlighted at its new place
    assert not [f for f in at.get("form") if f"mt_answer_{second}" in str(f.proto)]  # no form for the other one
    assert any("beantwortet" in str(m.value) for m in at.markdown)


def test_point4_references_instead_of_bare_numbers(app_db):
    tid, sids = _seed(app_db)
    at = _open(login(Role.coordinator), "new")
    at.text_input(key="mt_region").input("10").run()
    df = at.dataframe[0].value
    assert "Nr." not in df.columns and f"T{tid}" in set(df["Kennung"])
    row = list(df["Kennung"]).index(f"T{tid}")
    at.session_state["mt_therapists"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    proposal = [d.value for d in at.dataframe if "Platzsuche" in d.value.columns][0]
    assert set(proposal["Platzsuche"]) == {f"S{sid}" for sid in sids}
    assert at.subheader[0].value.endswith(f"(T{tid})")


def test_point13_markdown_in_names_is_shown_as_text(app_db):
    """An image link in a name or note must not become an <img> the browser fetches."""
    beacon = "![x](http://127.0.0.1:9/beacon.png) **fett**"
    with unit_of_work(get_engine(app_db)) as s:
        t = therapist(s, last_name=beacon, email="bild@example.org", plz="10115", lat=52.53, lon=13.38)
        _, search = patient_with_search(s, last_name=beacon, lat=52.52, lon=13.40, plz="10178", max_distance_km=25)
        tid = t.id
    at = login(Role.coordinator)
    at.query_params["mt_therapist"] = str(tid)
    at = _open(at, "new")
    shown = [str(e.value) for kind in ("markdown", "caption", "subheader", "info", "warning", "error") for e in getattr(at, kind)]
    assert any("beacon" in v for v in shown)
    assert not [v for v in shown if "![x](" in v or "**fett**" in v], shown


def test_answer_lost_to_a_concurrent_change_keeps_the_form_and_saves_on_the_next_click(app_db, monkeypatch):
    """Every try of the unit of work fails with a serialization failure: the page says
    "Gleichzeitige Änderung – bitte noch einmal speichern", nothing is saved, the chosen
    outcomes stay in the form; the next click saves them."""
    tid, sids = _seed(app_db)
    now = datetime.now(timezone.utc)
    today = now.date()
    with unit_of_work(get_engine(app_db)) as s:
        i = inquiries_lifecycle.create_inquiry(s, SYSTEM, tid, sids[:1], today=today, now=now, settings=Settings())
        inquiries_lifecycle.send_inquiry(s, SYSTEM, i.id, today=today, now=now, settings=Settings())
        for mail in delivery.claim_due(s, owner="t", now=now, limit=10, lease_until=now + timedelta(minutes=5), settings=Settings()):
            delivery.mark_sent(s, mail, owner="t", sent_at=now)
        inquiry_id = i.id
    tries: list[int] = []

    class SerializationFailure(Exception):
        pgcode = "40001"

    def lost_race(session, *args, **kwargs):
        tries.append(1)
        raise OperationalError("UPDATE searches …", {}, SerializationFailure("could not serialize access"))

    real = inquiries_answers.record_answer
    monkeypatch.setattr(inquiries_answers, "record_answer", lost_race)
    at = _open(login(Role.coordinator), "inquiries", mt_filter="awaiting")
    at.session_state["mt_inquiries"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    outcome_key = f"mt_outcome_{inquiry_id}_{sids[0]}"
    at.selectbox(key=outcome_key).select("accepted")
    at.text_input(key=f"mt_note_{inquiry_id}_{sids[0]}").input("Rückruf Freitag")
    submit = f"FormSubmitter:mt_answer_{inquiry_id}-Antwort speichern"
    at.button(key=submit).click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == [CONCURRENT_CHANGE_MESSAGE]
    assert len(tries) == RETRY_ATTEMPTS  # retried before giving up
    assert at.selectbox(key=outcome_key).value == "accepted"
    assert at.text_input(key=f"mt_note_{inquiry_id}_{sids[0]}").value == "Rückruf Freitag"
    with read_session(get_engine(app_db)) as s:
        assert s.get(Inquiry, inquiry_id).status == InquiryStatus.sent
    monkeypatch.setattr(inquiries_answers, "record_answer", real)
    at.button(key=submit).click().run()
    assert not at.exception and not at.error and not at.warning, [e.value for e in at.error]
    with read_session(get_engine(app_db)) as s:
        assert s.get(Inquiry, inquiry_id).status == InquiryStatus.answered
        assert s.get(Search, sids[0]).placed_therapist_id == tid
