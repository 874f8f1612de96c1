"""The role matrix (issue 15.3): every public core service that takes an actor is listed in
core.platform.permissions.SERVICE_PERMISSIONS, and every role gets exactly what that table
says – a role without the permission is refused (PermissionDenied) before anything happens,
a role with it is not. The services are found by scanning core, so a new service without an
entry in the table fails here."""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import typing
from datetime import date, datetime, timezone

import pytest

import core
from core.platform.permissions import INTERNAL, ROLE_PERMISSIONS, SERVICE_PERMISSIONS, Actor, PermissionDenied
from core.platform.vocab import Role

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
SKIP_MODULES = ("core.bootstrap", "core.cli", "core.platform.events")


def services() -> dict[str, typing.Callable]:
    found = {}
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if info.name.startswith(SKIP_MODULES):
            continue
        module = importlib.import_module(info.name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != info.name:
                continue
            if "actor" in inspect.signature(fn).parameters:
                found[f"{info.name}.{name}"] = fn
    return found


SERVICES = services()


def test_every_service_is_in_the_table_and_the_table_has_no_stale_entries():
    missing = sorted(set(SERVICES) - set(SERVICE_PERMISSIONS))
    stale = sorted(set(SERVICE_PERMISSIONS) - set(SERVICES))
    assert not missing, f"services without an entry in SERVICE_PERMISSIONS: {missing}"
    assert not stale, f"entries for services that no longer exist: {stale}"


def _dummy(param: inspect.Parameter, hints: dict, session, actor):
    if param.name == "session":
        return session
    if param.name == "actor":
        return actor
    hint = hints.get(param.name, param.annotation)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args):
        non_none = [a for a in args if a is not type(None)]
        hint = non_none[0] if non_none else None
        origin = typing.get_origin(hint)
    if hint is int or hint is float:
        return 987654321
    if hint is str:
        return "x"
    if hint is bool:
        return False
    if hint is datetime:
        return NOW
    if hint is date:
        return TODAY
    if hint is bytes:
        return b""
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.Iterable) or hint in (list, tuple):
        return []
    if origin in (dict, typing.Mapping) or hint is dict:
        return {}
    return None


def _call(fn, session, actor):
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - forward references the scan can't resolve
        hints = {}
    args, kwargs = [], {}
    for p in sig.parameters.values():
        if p.default is not inspect.Parameter.empty and p.name not in ("now", "today", "session", "actor"):
            continue
        value = _dummy(p, hints, session, actor)
        if p.kind == inspect.Parameter.KEYWORD_ONLY:
            kwargs[p.name] = value
        elif p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        else:
            args.append(value)
    return fn(*args, **kwargs)


CASES = [
    (name, role) for name in sorted(SERVICES) for role in Role
    if SERVICE_PERMISSIONS.get(name, INTERNAL) is not INTERNAL
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("name", "role"), CASES, ids=[f"{n.removeprefix('core.')}-{r.value}" for n, r in CASES])
def test_each_role_gets_what_the_table_says(db_session, name, role):
    needed = SERVICE_PERMISSIONS[name]
    actor = Actor(None, f"matrix.{role.value}", role)
    allowed = needed in ROLE_PERMISSIONS[role]
    nested = db_session.begin_nested()
    try:
        _call(SERVICES[name], db_session, actor)
        refused = False
    except PermissionDenied:
        refused = True
    except Exception:  # noqa: BLE001 - dummy arguments: any domain error is fine here
        refused = False
    finally:
        if nested.is_active:
            nested.rollback()
    if allowed:
        assert not refused, f"{name} refused {role.value} although the table grants {needed.value}"
    else:
        assert refused, f"{name} let {role.value} through although it needs {needed.value}"
