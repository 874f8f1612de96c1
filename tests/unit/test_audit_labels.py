"""Every audit action written anywhere in core has a German label for the audit log."""

from __future__ import annotations

import ast
from pathlib import Path

from core.platform import audit
from core.registry.searches import SearchAction

CORE = Path(__file__).resolve().parents[2] / "core"


def _recorded_actions() -> set[str]:
    found: set[str] = set()
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "record":
                for arg in node.args[:4]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                        found.add(arg.value)
    return found


def test_every_literal_action_has_a_label():
    actions = _recorded_actions()
    assert len(actions) > 30  # the scan really finds the calls
    missing = sorted(a for a in actions if audit.action_label(a) == a)
    assert not missing, f"add German labels for {missing}"


def test_computed_actions_have_labels():
    for action in SearchAction:
        assert audit.action_label(f"search.{action.value}") != f"search.{action.value}"
    for entity in ("patient", "therapist"):
        for verb in ("export", "import"):
            assert audit.action_label(f"{entity}.{verb}").startswith(("Patient:in", "Therapeut:in"))
