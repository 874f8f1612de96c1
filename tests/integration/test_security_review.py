"""Issue 12, security points in core: stale rights (1), login (8), sessions and passwords (10),
missing actor checks (11), contact data in the attention reason (12). Both databases.

Every test is named after its point (test_p<N>_…) so the issue's acceptance list can point here.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.platform import auth, users
from core.platform.config import load_settings
from core.platform.models import AuditEntry, Inquiry, LoginSession, LoginThrottle
from core.platform.permissions import SYSTEM, PermissionDenied
from core.platform.vocab import InquiryChannel, InquiryStatus, Role
from core.inquiries import views as inquiry_views
from core.mail import views as mail_views
from core.registry import patients as registry_patients
from core.registry import therapists as registry_therapists
from tests.support import seed

SETTINGS = load_settings(environ={"SECRET_KEY": "test-secret-key-0123456789"}, env_file=None)
PASSWORD = "richtig-geheim-1"


def make_user(session, now, username="k.koch", role=Role.coordinator, password=PASSWORD):
    return users.create_user(
        session, SYSTEM, username=username, display_name="Karla Koch", role=role, password=password, now=now
    )


def login_session(session, user, now) -> tuple[int, str]:
    started = auth.start_session(session, SETTINGS, auth.actor_for(user), now=now)
    token = auth.exchange_handoff(session, started.handoff_code, now=now)
    return started.session_id, token


def attempt(session, name, password, now, source="192.0.2.10"):
    return auth.authenticate(session, SETTINGS, name, password, now=now, source=source)


# ---------------------------------------------------------------------------------------- point 1


def test_p1_role_change_applies_to_an_open_session_on_its_next_request(db_session, now):
    admin = make_user(db_session, now, username="a.admin", role=Role.admin)
    coord = make_user(db_session, now)
    session_id, _token = login_session(db_session, coord, now)
    assert auth.session_actor(db_session, SETTINGS, session_id, now=now).role == Role.coordinator

    users.change_role(db_session, auth.actor_for(admin), coord.id, Role.viewer, now=now + timedelta(minutes=1))
    actor = auth.session_actor(db_session, SETTINGS, session_id, now=now + timedelta(minutes=2))
    assert actor is not None and actor.role == Role.viewer  # the same session, the new role
    with pytest.raises(PermissionDenied):
        registry_patients.export_rows(db_session, actor, registry_patients.PatientFilter(), today=now.date())


def test_p1_disabling_and_password_reset_end_open_sessions_at_once(db_session, now):
    admin = auth.actor_for(make_user(db_session, now, username="a.admin", role=Role.admin))
    coord = make_user(db_session, now)
    s1, _ = login_session(db_session, coord, now)
    users.set_active(db_session, admin, coord.id, False, now=now)
    assert auth.session_actor(db_session, SETTINGS, s1, now=now) is None
    users.set_active(db_session, admin, coord.id, True, now=now)
    s2, _ = login_session(db_session, coord, now)
    auth.reset_password(db_session, SETTINGS, admin, coord.id, "ein-ganz-neues-wort", now=now)
    assert auth.session_actor(db_session, SETTINGS, s2, now=now) is None


# ---------------------------------------------------------------------------------------- point 8


def test_p8_unknown_name_and_wrong_password_get_the_same_answers(db_session, now):
    make_user(db_session, now)
    known = [attempt(db_session, "k.koch", "falsch", now + timedelta(seconds=i), "192.0.2.1").message for i in range(7)]
    unknown = [attempt(db_session, "niemand", "falsch", now + timedelta(seconds=i), "192.0.2.2").message for i in range(7)]
    assert known == unknown
    assert known[0] == auth.GENERIC_FAILURE
    assert not any("Versuch" in m and "Noch" in m for m in known)  # no countdown that exists only for real names
    assert "warten" in known[5]


def test_p8_disabled_is_only_said_with_the_right_password(db_session, now):
    admin = auth.actor_for(make_user(db_session, now, username="a.admin", role=Role.admin))
    u = make_user(db_session, now)
    users.set_active(db_session, admin, u.id, False, now=now)
    assert attempt(db_session, "k.koch", "falsch", now).message == auth.GENERIC_FAILURE
    right = attempt(db_session, "k.koch", PASSWORD, now)
    assert not right.ok and "deaktiviert" in right.message


def test_p8_an_attacker_cannot_lock_the_owner_out(db_session, now):
    make_user(db_session, now)
    for i in range(12):
        r = attempt(db_session, "k.koch", f"rate-{i}", now + timedelta(seconds=i), source="203.0.113.66")
    assert not r.ok and "warten" in r.message
    # the attacker's source waits, even with the right password ...
    assert not attempt(db_session, "k.koch", PASSWORD, now + timedelta(seconds=13), source="203.0.113.66").ok
    # ... the owner at her own desk does not
    assert attempt(db_session, "k.koch", PASSWORD, now + timedelta(seconds=14), source="198.51.100.7").ok


def test_p8_waits_grow_and_end(db_session, now):
    make_user(db_session, now)
    t = now
    for _ in range(SETTINGS.LOGIN_MAX_FAILURES):
        t += timedelta(seconds=1)
        r = attempt(db_session, "k.koch", "falsch", t)
    assert "30 Sekunden" in r.message
    assert not attempt(db_session, "k.koch", PASSWORD, t + timedelta(seconds=20)).ok  # still waiting
    t += timedelta(seconds=31)
    assert "60 Sekunden" in attempt(db_session, "k.koch", "falsch", t).message
    t += timedelta(seconds=61)
    assert "Minuten" in attempt(db_session, "k.koch", "falsch", t).message  # 120 s
    assert [auth.wait_after(n, 5, timedelta(minutes=15)) for n in (4, 5, 6, 30)] == [
        None, timedelta(seconds=30), timedelta(seconds=60), timedelta(minutes=15)
    ]
    t += timedelta(minutes=3)
    assert attempt(db_session, "k.koch", PASSWORD, t).ok
    # success forgets the failures of this name and source
    assert attempt(db_session, "k.koch", "falsch", t + timedelta(seconds=1)).message == auth.GENERIC_FAILURE


def test_p8_one_source_trying_many_names_waits_too(db_session, now):
    t = now
    for i in range(SETTINGS.LOGIN_MAX_FAILURES * auth.SOURCE_FAILURE_FACTOR):
        t += timedelta(seconds=1)
        r = attempt(db_session, f"name{i}", "Sommer2026!", t, source="203.0.113.99")
    assert "warten" in r.message
    assert "warten" in attempt(db_session, "ganz.neu", "Sommer2026!", t + timedelta(seconds=1), source="203.0.113.99").message


def test_p8_admin_lifts_the_wait(db_session, now):
    admin = auth.actor_for(make_user(db_session, now, username="a.admin", role=Role.admin))
    u = make_user(db_session, now)
    for i in range(8):
        attempt(db_session, "k.koch", "falsch", now + timedelta(seconds=i))
    assert u.locked_until is not None and u.failed_logins == SETTINGS.LOGIN_MAX_FAILURES  # then it waited
    with pytest.raises(PermissionDenied):
        auth.unlock_account(db_session, SETTINGS, auth.actor_for(u), u.id, now=now)
    assert auth.unlock_account(db_session, SETTINGS, admin, u.id, now=now + timedelta(seconds=10)) >= 1
    assert u.locked_until is None and u.failed_logins == 0
    assert attempt(db_session, "k.koch", PASSWORD, now + timedelta(seconds=11)).ok
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == u.id)).all()
    assert "user.unlock" in actions and "login.throttled" in actions and "login.failed" in actions


def test_p8_a_password_typed_into_the_name_field_is_stored_nowhere(db_session, now):
    make_user(db_session, now)
    secret = "Mein-Geheimes-Passwort-77"
    for i in range(7):
        attempt(db_session, secret, PASSWORD, now + timedelta(seconds=i))
    entries = db_session.scalars(select(AuditEntry)).all()
    assert any(e.action in ("login.unknown_user", "login.throttled") for e in entries)
    dumped = json.dumps(
        [[e.actor_name, e.action, e.entity, e.changes] for e in entries], ensure_ascii=False
    ).lower()
    assert secret.lower() not in dumped and "geheimes" not in dumped
    throttles = db_session.scalars(select(LoginThrottle)).all()
    assert throttles and all("geheim" not in (r.key_hash + (r.name_key or "")).lower() for r in throttles)


# ---------------------------------------------------------------------------------------- point 10


def test_p10_changing_ones_password_ends_ones_other_sessions(db_session, now):
    u = make_user(db_session, now)
    here, _ = login_session(db_session, u, now)
    other, other_token = login_session(db_session, u, now)
    ended = users.change_own_password(
        db_session, auth.actor_for(u), PASSWORD, "neues-wort-fuer-karla", now=now, keep_session_id=here
    )
    assert ended == 1
    assert auth.session_actor(db_session, SETTINGS, here, now=now) is not None
    assert auth.session_actor(db_session, SETTINGS, other, now=now) is None
    assert auth.resolve_token(db_session, SETTINGS, other_token, now=now) is None


def test_p10_idle_timeout_besides_the_absolute_lifetime(db_session, now):
    settings = load_settings(environ={"SESSION_IDLE_MINUTES": "60", "SESSION_HOURS": "12"}, env_file=None)
    u = make_user(db_session, now)
    sid, token = login_session(db_session, u, now)
    # used every 50 minutes: stays alive for hours
    t = now
    for _ in range(5):
        t += timedelta(minutes=50)
        assert auth.session_actor(db_session, settings, sid, now=t) is not None
    # then 61 minutes without a click: gone, cookie included
    t += timedelta(minutes=61)
    assert auth.session_actor(db_session, settings, sid, now=t) is None
    assert auth.resolve_token(db_session, settings, token, now=t) is None
    row = db_session.get(LoginSession, sid)
    assert row.revoked_at is not None and row.revoke_reason == "idle"
    # housekeeping ends idle sessions that nobody touches
    sid2, _ = login_session(db_session, u, now)
    counts = auth.expire_sessions(db_session, now=now + timedelta(minutes=61), idle_minutes=60)
    assert counts["expired"] >= 1 and db_session.get(LoginSession, sid2).revoke_reason == "idle"


@pytest.mark.parametrize(
    "password",
    ["aaaaaaaaaaaa", "1234567890", "0987654321", "12345678901234", "abcdefghijk", "qwertzuiop", "Passwort123",
     "Passwort2026!", "password!!!!", "1111122222", "abababababab", "k.koch12345!"],
)
def test_p10_common_and_trivial_passwords_are_refused(db_session, now, password):
    assert users.password_problem(password, username="k.koch") is not None
    with pytest.raises(users.UserError) as err:
        users.create_user(db_session, SYSTEM, username="k.koch", display_name="K", role=Role.viewer, password=password, now=now)
    assert err.value.field == "password"


@pytest.mark.parametrize("password", ["Koord-Passwort-1", "richtig-geheim-1", "Tannenbaum am Fenster", "x7#Lq9!vR2mZ", "Demo-Koordination-2026", "k.koch-mag-kaffee"])
def test_p10_ordinary_passwords_pass(password):
    assert users.password_problem(password, username="k.koch") is None


def test_p10_the_wait_answer_does_the_same_work_as_a_normal_one(db_session, now, monkeypatch):
    make_user(db_session, now)
    calls: list[str] = []
    real = auth.verify_password

    def counting(hash_, password):
        calls.append(hash_)
        return real(hash_, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    for i in range(SETTINGS.LOGIN_MAX_FAILURES):
        attempt(db_session, "k.koch", "falsch", now + timedelta(seconds=i))
    calls.clear()
    waiting = attempt(db_session, "k.koch", "falsch", now + timedelta(seconds=10))
    assert "warten" in waiting.message and len(calls) == 1  # one argon2 verification, as every answer
    calls.clear()
    attempt(db_session, "niemand.da", "falsch", now + timedelta(seconds=11), source="192.0.2.200")
    assert len(calls) == 1
    monkeypatch.setattr(auth, "verify_password", real)

    def timed(name, source, t):
        start = time.perf_counter()
        attempt(db_session, name, "falsch", t, source=source)
        return time.perf_counter() - start

    waiting_times = [timed("k.koch", "192.0.2.10", now + timedelta(seconds=20 + i)) for i in range(5)]
    normal_times = [timed("k.koch", f"192.0.2.{50 + i}", now + timedelta(seconds=20 + i)) for i in range(5)]
    # argon2 dominates both; a refusal without it would take well under a tenth
    assert statistics.median(waiting_times) > 0.4 * statistics.median(normal_times)


# ---------------------------------------------------------------------------------------- point 11


def test_p11_end_session_ends_only_ones_own_session_unless_admin(db_session, now):
    admin_user = make_user(db_session, now, username="a.admin", role=Role.admin)
    viewer_user = make_user(db_session, now, username="v.viewer", role=Role.viewer)
    admin_sid, _ = login_session(db_session, admin_user, now)
    viewer_sid, _ = login_session(db_session, viewer_user, now)
    with pytest.raises(PermissionDenied):
        auth.end_session(db_session, admin_sid, auth.actor_for(viewer_user), now=now)
    assert auth.session_actor(db_session, SETTINGS, admin_sid, now=now) is not None
    auth.end_session(db_session, viewer_sid, auth.actor_for(viewer_user), now=now)  # own: fine
    assert auth.session_actor(db_session, SETTINGS, viewer_sid, now=now) is None
    other_sid, _ = login_session(db_session, viewer_user, now)
    auth.end_session(db_session, other_sid, auth.actor_for(admin_user), now=now)  # an admin may
    assert db_session.get(LoginSession, other_sid).revoke_reason == "ended_by_admin"


def test_p11_therapist_brief_hides_contacts_from_viewers(db_session, now):
    viewer = auth.actor_for(make_user(db_session, now, username="v.viewer", role=Role.viewer))
    coord = auth.actor_for(make_user(db_session, now))
    t = seed.therapist(db_session, email="praxis@example.org", phone="+49301234567")
    seen = mail_views.therapist_brief(db_session, viewer, t.id)
    assert seen.name and seen.email == "" and seen.phone == ""
    full = mail_views.therapist_brief(db_session, coord, t.id)
    assert full.email == "praxis@example.org" and full.phone == "+49301234567"


def test_p11_export_rows_take_an_actor_and_check_it_at_the_call(db_session, now):
    viewer = auth.actor_for(make_user(db_session, now, username="v.viewer", role=Role.viewer))
    coord = auth.actor_for(make_user(db_session, now))
    seed.patient_with_search(db_session)
    seed.therapist(db_session)
    with pytest.raises(PermissionDenied):
        registry_patients.export_rows(db_session, viewer, registry_patients.PatientFilter(), today=now.date())
    with pytest.raises(PermissionDenied):
        registry_therapists.export_rows(db_session, viewer, registry_therapists.TherapistFilter(), today=now.date())
    assert list(registry_patients.export_rows(db_session, coord, registry_patients.PatientFilter(), today=now.date()))
    assert list(registry_therapists.export_rows(db_session, coord, registry_therapists.TherapistFilter(), today=now.date()))


# ---------------------------------------------------------------------------------------- point 12


def test_p12_viewers_see_the_delivery_warning_without_the_address(db_session, now):
    viewer = auth.actor_for(make_user(db_session, now, username="v.viewer", role=Role.viewer))
    coord = auth.actor_for(make_user(db_session, now))
    t = seed.therapist(db_session, email="praxis@beispiel-praxis.de")
    reason = ("E-Mail nicht zugestellt: 550 5.1.1 <praxis@beispiel-praxis.de>: Recipient address rejected "
              "(aufgegeben nach 5 Versuchen)")
    inquiry = Inquiry(therapist_id=t.id, channel=InquiryChannel.email, status=InquiryStatus.sent, size=1,
                      sent_at=now, needs_attention=True, attention_reason=reason)
    db_session.add(inquiry)
    db_session.flush()
    seen = inquiry_views.inquiry_detail(db_session, viewer, inquiry.id, today=now.date(), now=now)
    assert "praxis@" not in seen.attention_reason and "beispiel-praxis.de" not in seen.attention_reason
    assert seen.attention_reason.startswith("E-Mail nicht zugestellt: 550")
    full = inquiry_views.inquiry_detail(db_session, coord, inquiry.id, today=now.date(), now=now)
    assert full.attention_reason == reason


def test_p1_the_per_click_check_reads_only_and_asks_for_a_write_once_a_minute(db_session, now):
    u = make_user(db_session, now)
    sid, _ = login_session(db_session, u, now)
    db_session.flush()
    fresh = auth.check_session(db_session, SETTINGS, sid, now=now + timedelta(seconds=10))
    assert fresh.actor.role == Role.coordinator and not fresh.needs_write
    assert not db_session.dirty
    due = auth.check_session(db_session, SETTINGS, sid, now=now + timedelta(minutes=2))
    assert due.actor is not None and due.needs_write and not db_session.dirty
    idle = auth.check_session(db_session, SETTINGS, sid, now=now + timedelta(minutes=SETTINGS.SESSION_IDLE_MINUTES + 1))
    assert idle.actor is None and idle.needs_write
