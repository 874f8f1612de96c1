"""Issue 12 point 11, as a standing rule: the UI hides what a role may not do, the services
refuse it. Every public core function that is given an actor checks it (or hands it to one
that does) unless the role matrix marks it internal (called by checked services and event
handlers only), and every core function a page or ui helper calls with a database session takes
an actor – except the few that return nothing personal, listed here with the reason."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from core.platform.permissions import INTERNAL, SERVICE_PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]

# Functions that take an actor without checking a permission, and why that is right.
ACTOR_WITHOUT_CHECK = {
    ("core/platform/users.py", "needs_password_change"): "reads the caller's own flag only",
    ("core/platform/audit.py", "record"): "writes the audit entry of an already checked action",
    ("core/platform/audit.py", "record_many"): "writes the audit entries of already checked actions",
    ("core/registry/searches.py", "note_line"): "formats a note line, no data access",
}
# Session-taking functions pages may call without an actor: nothing personal comes back.
PAGE_CALLS_WITHOUT_ACTOR = {
    "region_around_plz": "PLZ geometry",
    "language_options": "the list of languages offered",
    "authenticate": "the login itself",
    "resolve_token": "the login itself",
    "session_actor": "finds the actor of a session",
    "check_session": "finds the actor of a session (read-only twin)",
}


def _functions():
    for path in (ROOT / "core").rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                yield rel, node


def _arg_names(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in node.args.args + node.args.kwonlyargs]


def test_p11_every_function_given_an_actor_checks_it_or_passes_it_on():
    unchecked = []
    for rel, node in _functions():
        dotted = rel.removesuffix(".py").replace("/", ".") + "." + node.name
        internal = dotted in SERVICE_PERMISSIONS and SERVICE_PERMISSIONS[dotted] is INTERNAL
        if "actor" not in _arg_names(node) or (rel, node.name) in ACTOR_WITHOUT_CHECK or internal:
            continue
        src = ast.unparse(node)
        checks = "actor.require(" in src or "actor.can(" in src
        passes = any(
            isinstance(call, ast.Call)
            and any(isinstance(a, ast.Name) and a.id == "actor" for a in [*call.args, *(k.value for k in call.keywords)])
            for call in ast.walk(node)
        )
        if not (checks or passes):
            unchecked.append(f"{rel}:{node.name}")
    assert not unchecked, f"take an actor but never check it: {unchecked}"


def test_p11_pages_call_no_session_service_without_an_actor():
    without_actor = {
        node.name
        for _rel, node in _functions()
        if (args := _arg_names(node)) and args[0] == "session" and "actor" not in args
    }
    offenders = []
    for path in [*(ROOT / "pages").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), ROOT / "app.py"]:
        src = path.read_text(encoding="utf-8")
        for name in without_actor - set(PAGE_CALLS_WITHOUT_ACTOR):
            if re.search(r"\b\w+\." + name + r"\(", src):
                offenders.append(f"{path.relative_to(ROOT)} calls {name}")
    assert not offenders, offenders
