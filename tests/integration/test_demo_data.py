"""Demo data: loads on both databases within every constraint, is consistent, deterministic
and idempotent; the command line runs twice against a fresh SQLite file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from demo import data as demo_data
from demo.cities import DEMO_CITIES
from demo.data import DEMO, DEMO_LOGINS, PlzRow, generate, kvnr_check_digit, kvnr_is_valid, load_demo_data
from core.platform.models import AuditEntry, Inquiry, InquiryPatient, OutboxEmail, Patient, PhoneCall, PlzCentroid, Search, Therapist, User
from core.platform.users import verify_password
from core.platform.vocab import SYMPTOMS, InquiryStatus, Outcome, ResponseType, SearchStatus, TherapistStatus

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 23)
CANONICAL_WINDOWS = re.compile(
    r"^(Mo|Di|Mi|Do|Fr|Sa|So) \d\d:\d\d-\d\d:\d\d(, \d\d:\d\d-\d\d:\d\d)*(; (Mo|Di|Mi|Do|Fr|Sa|So) \d\d:\d\d-\d\d:\d\d(, \d\d:\d\d-\d\d:\d\d)*)*$"
)
BUILTIN_PLZ = [PlzRow(c.plz, c.city, c.state_code, c.lat, c.lon) for c in DEMO_CITIES]


# --------------------------------------------------------------------------- pure parts


def test_kvnr_check_digit_example_and_validity():
    assert kvnr_check_digit("A12345678") == 0
    assert kvnr_is_valid("A123456780")
    assert not kvnr_is_valid("A123456781")
    assert not kvnr_is_valid("1234567890")
    assert not kvnr_is_valid("A12345")


def test_same_seed_same_data_other_seed_other_data():
    a = generate(BUILTIN_PLZ, DEMO, seed=7, today=TODAY)
    b = generate(BUILTIN_PLZ, DEMO, seed=7, today=TODAY)
    c = generate(BUILTIN_PLZ, DEMO, seed=8, today=TODAY)
    names = lambda d: [(t["first_name"], t["last_name"]) for t in d.rows["therapists"]]  # noqa: E731
    assert names(a) == names(b)
    assert a.rows == b.rows  # every row, not only the names
    assert names(a) != names(c)


@pytest.mark.parametrize("today", [date(2026, 3, 29), date(2026, 11, 23)])  # a DST switch day, a normal day
def test_no_event_lies_after_now_except_planned_ones(today):
    data = generate(BUILTIN_PLZ, DEMO, seed=11, today=today, coordinator_id=1)
    now = demo_data._at(today, 8 * 60)
    stamps = ("created_at", "updated_at", "consent_at", "queued_at", "sent_at", "answered_at", "cancelled_at",
              "outcome_at", "withdrawn_at", "done_at", "at")
    for name, rows in data.rows.items():
        for row in rows:
            for key in stamps:
                if row.get(key) is not None:
                    assert row[key] <= now, (name, key, row)
    for call in data.rows["phone_calls"]:
        if call["state"] == "scheduled":
            assert call["scheduled_start"] > now, call
        elif call["state"] in ("done", "failed"):
            assert call["scheduled_start"] < now, call


def test_scale_argument():
    assert demo_data.parse_scale("demo") is DEMO
    assert demo_data.parse_scale("germany").therapists == 40_000
    tenth = demo_data.parse_scale("0,1")
    assert (tenth.therapists, tenth.patients, tenth.active_searches) == (4_000, 10_000, 2_000)
    for bad in ("", "riesig", "0", "-1", "99"):
        with pytest.raises(ValueError):
            demo_data.parse_scale(bad)


def test_time_windows_are_in_canonical_form():
    data = generate(BUILTIN_PLZ, DEMO, seed=3, today=TODAY)
    texts = [t["phone_hours"] for t in data.rows["therapists"] if t["phone_hours"]]
    texts += [p["availability"] for p in data.rows["patients"]]
    assert texts
    timewindows = pytest.importorskip("core.timewindows")
    for text in texts:
        assert CANONICAL_WINDOWS.match(text), text
        assert timewindows.format(timewindows.parse(text)) == text


# --------------------------------------------------------------------------- loading


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_demo_load_respects_constraints_and_is_consistent(db_session, backend):
    result = load_demo_data(db_session, scale=DEMO, today=TODAY, geonames_path=None)
    assert result.loaded
    assert "mitgelieferte PLZ-Tabelle" in result.plz_source
    s = db_session

    # counts in the expected ranges; the shipped table knows every German PLZ (issue 12 point 18)
    assert _count(s, PlzCentroid) > 10_000
    assert s.get(PlzCentroid, "10117").city == "Berlin"
    demo_plz = {c.plz for c in DEMO_CITIES}
    assert set(s.scalars(select(Patient.plz))) <= demo_plz  # the small demo stays in its cities
    assert _count(s, Therapist) == 300
    assert _count(s, Patient) == 150
    assert _count(s, Search, Search.status == SearchStatus.active) == 90
    for status in SearchStatus:
        assert _count(s, Search, Search.status == status) > 0, status
    for status in InquiryStatus:
        assert _count(s, Inquiry, Inquiry.status == status) > 0, status
    assert 100 <= _count(s, Inquiry) <= 1500
    assert _count(s, OutboxEmail) > 50 and _count(s, PhoneCall) > 50
    assert _count(s, Therapist, Therapist.status == TherapistStatus.blocked, Therapist.status_reason.is_not(None)) > 0
    assert _count(s, Therapist, Therapist.next_contact_at > TODAY) > 0

    # demo users with their documented passwords
    for login in DEMO_LOGINS:
        user = s.scalar(select(User).where(User.username == login.username))
        assert user is not None and user.role == login.role
        assert verify_password(user.password_hash, login.password)

    # patients: valid KVNR, 1-6 known symptoms, example addresses only, 18-80 years
    for p in s.scalars(select(Patient)):
        if p.insurance_number is not None:
            assert kvnr_is_valid(p.insurance_number), p.insurance_number
        assert 1 <= len(p.symptoms) <= 6 and set(p.symptoms) <= set(SYMPTOMS)
        assert 18 <= (TODAY - p.birth_date).days / 365.25 <= 80
        assert p.email is None or p.email.endswith("@example.org")
        assert p.phone is None or p.phone.startswith("+49")
    for t in s.scalars(select(Therapist)):
        assert t.email is None or t.email.endswith(("@example.org", "@example.de"))
        assert t.methods, t.id
        assert (t.salutation, t.gender) in {("frau", "female"), ("herr", "male"), ("none", "diverse")}
    shared = s.execute(
        select(Therapist.email, func.count()).where(Therapist.email.is_not(None)).group_by(Therapist.email).having(func.count() > 1)
    ).all()
    assert shared and all(n <= 3 for _, n in shared)  # group practices share one address
    for e in s.scalars(select(OutboxEmail)):
        assert e.to_address.endswith(("@example.org", "@example.de")) and e.subject.startswith("[Demo]")
        assert e.body_text.startswith("[DEMODATEN") and "\n\nMit freundlichen Grüßen\n" in e.body_text
        assert (e.therapist_id is None) != (e.patient_id is None)

    # inquiries: size = members, positions 1..n, outcomes consistent with the state
    members: dict[int, list[InquiryPatient]] = defaultdict(list)
    for m in s.scalars(select(InquiryPatient)):
        members[m.inquiry_id].append(m)
    searches = {x.id: x for x in s.scalars(select(Search))}
    open_per_search: Counter[int] = Counter()
    open_therapists: Counter[int] = Counter()
    for inq in s.scalars(select(Inquiry)):
        ms = members[inq.id]
        assert inq.size == len(ms) and 1 <= len(ms) <= 6
        assert sorted(m.position for m in ms) == list(range(1, len(ms) + 1))
        outcomes = {m.outcome for m in ms if m.withdrawn_at is None}
        if inq.status in (InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent, InquiryStatus.cancelled):
            assert outcomes <= {Outcome.pending}
        if inq.status in (InquiryStatus.draft, InquiryStatus.queued, InquiryStatus.sent):
            open_therapists[inq.therapist_id] += 1
            therapist = s.get(Therapist, inq.therapist_id)  # asked while active and not cooling
            assert therapist.status == TherapistStatus.active
            asked_on = (inq.sent_at or inq.created_at).date()
            assert therapist.next_contact_at is None or therapist.next_contact_at <= asked_on + timedelta(days=1)
            for m in ms:
                if m.withdrawn_at is None:
                    assert searches[m.search_id].status == SearchStatus.active
                    open_per_search[m.search_id] += 1
        if inq.status == InquiryStatus.expired:
            assert outcomes == {Outcome.no_response} and inq.response_type == ResponseType.no_response
        if inq.status == InquiryStatus.answered:
            assert inq.answered_at is not None and inq.answered_at > inq.sent_at
            assert Outcome.pending not in outcomes and Outcome.no_response not in outcomes
            accepted = sum(m.outcome == Outcome.accepted for m in ms)
            expected = (
                ResponseType.all_accepted if accepted == len(ms)
                else ResponseType.partly_accepted if accepted else ResponseType.all_rejected
            )
            assert inq.response_type == expected
            therapist = s.get(Therapist, inq.therapist_id)
            assert therapist.next_contact_at >= inq.answered_at.date() + timedelta(weeks=4) - timedelta(days=1)
            for m in ms:
                if m.outcome == Outcome.accepted:  # an acceptance placed that search
                    assert searches[m.search_id].placed_therapist_id == inq.therapist_id
        if inq.sent_at is not None:
            for m in ms:
                assert searches[m.search_id].started_on <= inq.sent_at.date()
    assert max(open_per_search.values()) <= 4  # MAX_OPEN_INQUIRIES_PER_SEARCH
    assert max(open_therapists.values()) == 1
    for search in searches.values():
        if search.status == SearchStatus.successful:
            assert search.placed_therapist_id is not None and search.success_on >= search.placed_on

    # calls: exactly one callee (a constraint) and scheduled ones lie ahead
    for call in s.scalars(select(PhoneCall).where(PhoneCall.state == "scheduled")):
        assert call.scheduled_start > demo_data._at(TODAY, 8 * 60) - timedelta(minutes=1)

    # a second load adds nothing
    before = {m.__tablename__: _count(s, m) for m in (Therapist, Patient, Search, Inquiry, OutboxEmail, AuditEntry, User)}
    again = load_demo_data(db_session, scale=DEMO, today=TODAY, geonames_path=None)
    assert not again.loaded and "bereits geladen" in again.message
    after = {m.__tablename__: _count(s, m) for m in (Therapist, Patient, Search, Inquiry, OutboxEmail, AuditEntry, User)}
    assert before == after


def test_refuses_a_database_with_other_data(db_session):
    db_session.add(Patient(first_name="Erika", last_name="Mustermann"))
    db_session.flush()
    with pytest.raises(demo_data.DemoDataError, match="bereits Daten"):
        load_demo_data(db_session, scale=DEMO, today=TODAY, geonames_path=None)


# --------------------------------------------------------------------------- command line


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "GEONAMES_PATH": str(ROOT / "var" / "does-not-exist" / "DE.txt")}
    return subprocess.run(
        [sys.executable, "-m", "demo.data", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_loads_demo_data_twice_into_fresh_sqlite(db_factories):
    url = db_factories["sqlite"].new_url()
    first = _cli(["--scale", "demo", "--today", "2026-11-23"], url)
    assert first.returncode == 0, first.stderr
    assert "Demodaten geladen" in first.stdout and "koordination / Demo-Koordination-2026" in first.stdout
    second = _cli(["--scale", "demo"], url)
    assert second.returncode == 0, second.stderr
    assert "Demodaten sind bereits geladen" in second.stdout


def test_cli_bad_arguments_exit_2_with_one_german_line(tmp_path):
    result = _cli(["--scale", "riesig"], f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Fehler:") and "riesig" in lines[0]
