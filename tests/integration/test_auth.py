"""Login, lockout, sessions and role checks in core services (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.platform import auth
from core.platform import users
from core.platform.config import load_settings
from core.platform.models import AuditEntry, LoginSession
from core.platform.permissions import SYSTEM, PermissionDenied
from core.platform.vocab import Role

SETTINGS = load_settings(environ={}, env_file=None)


def make_user(session, now, username="k.koch", role=Role.coordinator, password="richtig-geheim-1"):
    return users.create_user(
        session, SYSTEM, username=username, display_name="Karla Koch", role=role, password=password, now=now
    )


def test_password_is_argon2id(db_session, now):
    u = make_user(db_session, now)
    assert u.password_hash.startswith("$argon2id$")
    assert users.verify_password(u.password_hash, "richtig-geheim-1")
    assert not users.verify_password(u.password_hash, "falsch")


def test_login_ok_and_audited(db_session, now):
    u = make_user(db_session, now)
    result = auth.authenticate(db_session, SETTINGS, "K.Koch ", "richtig-geheim-1", now=now)
    assert result.ok and result.actor.user_id == u.id and result.actor.role == Role.coordinator
    actions = db_session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == u.id)).all()
    assert "login.ok" in actions


def test_unknown_user_and_disabled_user(db_session, now):
    admin = make_user(db_session, now, username="a.admin", role=Role.admin)
    u = make_user(db_session, now)
    assert auth.authenticate(db_session, SETTINGS, "niemand", "x", now=now).message == "Benutzername oder Passwort ist falsch."
    users.set_active(db_session, auth.actor_for(admin), u.id, False, now=now)
    r = auth.authenticate(db_session, SETTINGS, "k.koch", "richtig-geheim-1", now=now)
    assert not r.ok and "deaktiviert" in r.message


def test_session_handoff_resolve_logout(db_session, now):
    u = make_user(db_session, now)
    actor = auth.actor_for(u)
    started = auth.start_session(db_session, SETTINGS, actor, now=now)
    token = auth.exchange_handoff(db_session, started.handoff_code, now=now + timedelta(seconds=5))
    assert token
    assert auth.exchange_handoff(db_session, started.handoff_code, now=now) is None  # one-time
    found = auth.resolve_token(db_session, SETTINGS, token, now=now + timedelta(hours=1))
    assert found is not None and found[0].user_id == u.id
    signed = auth.sign_token(SETTINGS, token)
    assert auth.unsign_token(SETTINGS, signed) == token
    assert auth.unsign_token(SETTINGS, signed[:-2] + "xx") is None
    auth.end_session(db_session, found[1], actor, now=now + timedelta(hours=2))
    assert auth.resolve_token(db_session, SETTINGS, token, now=now + timedelta(hours=2)) is None


def test_handoff_expires_and_sessions_expire(db_session, now):
    u = make_user(db_session, now)
    actor = auth.actor_for(u)
    late = auth.start_session(db_session, SETTINGS, actor, now=now)
    assert auth.exchange_handoff(db_session, late.handoff_code, now=now + timedelta(minutes=3)) is None
    s2 = auth.start_session(db_session, SETTINGS, actor, now=now)
    token = auth.exchange_handoff(db_session, s2.handoff_code, now=now)
    assert auth.resolve_token(db_session, SETTINGS, token, now=now + timedelta(hours=SETTINGS.SESSION_HOURS, seconds=1)) is None
    early = auth.expire_sessions(db_session, now=now + timedelta(minutes=3))
    assert early == {"expired": 0, "unused_handoffs": 1, "deleted": 0}
    later = auth.expire_sessions(db_session, now=now + timedelta(hours=SETTINGS.SESSION_HOURS, seconds=1))
    assert later["expired"] == 1
    rows = db_session.scalars(select(LoginSession).where(LoginSession.user_id == u.id)).all()
    assert all(r.revoked_at is not None for r in rows)


def test_password_reset_ends_all_logins(db_session, now):
    admin = make_user(db_session, now, username="a.admin", role=Role.admin)
    u = make_user(db_session, now)
    s1 = auth.start_session(db_session, SETTINGS, auth.actor_for(u), now=now)
    token = auth.exchange_handoff(db_session, s1.handoff_code, now=now)
    users.reset_password(db_session, auth.actor_for(admin), u.id, "ganz-neues-passwort", now=now)
    assert auth.resolve_token(db_session, SETTINGS, token, now=now) is None
    assert auth.authenticate(db_session, SETTINGS, "k.koch", "ganz-neues-passwort", now=now).ok


@pytest.mark.parametrize("role", [Role.viewer, Role.coordinator])
def test_user_management_refused_for_non_admins(db_session, now, role):
    u = make_user(db_session, now, username="x.user", role=role)
    actor = auth.actor_for(u)
    with pytest.raises(PermissionDenied, match="erlaubt diese Aktion nicht"):
        users.list_users(db_session, actor)
    with pytest.raises(PermissionDenied):
        users.create_user(db_session, actor, username="neu", display_name="Neu", role=Role.admin, password="x" * 12, now=now)


def test_last_admin_cannot_be_demoted_or_disabled(db_session, now):
    admin = make_user(db_session, now, username="a.admin", role=Role.admin)
    other = make_user(db_session, now, username="b.admin", role=Role.admin)
    a = auth.actor_for(admin)
    users.set_active(db_session, a, other.id, False, now=now)
    with pytest.raises(users.UserError, match="letzte aktive"):
        users.change_role(db_session, a, admin.id, Role.viewer, now=now)
    with pytest.raises(users.UserError, match="eigenes Konto"):
        users.set_active(db_session, a, admin.id, False, now=now)


@pytest.mark.parametrize(
    "username,password,field",
    [("A", "lang-genug-123", "username"), ("ok.name", "kurz", "password"), ("mit leer", "lang-genug-123", "username")],
)
def test_create_user_validation(db_session, now, username, password, field):
    with pytest.raises(users.UserError) as err:
        users.create_user(db_session, SYSTEM, username=username, display_name="X", role=Role.viewer, password=password, now=now)
    assert err.value.field == field


def test_duplicate_username_refused(db_session, now):
    make_user(db_session, now)
    with pytest.raises(users.UserError, match="gibt es schon"):
        make_user(db_session, now)
