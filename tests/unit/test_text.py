"""core.platform.text: LIKE escaping, control characters, spreadsheet formula cells (issue 12, points 7 and 16)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.platform.text import escape_like, has_control_chars, neutralise_formula, restore_formula


def test_12_16_escape_like_makes_wildcards_literal():
    assert escape_like("100%_sicher\\") == "100\\%\\_sicher\\\\"


def test_12_16_control_characters():
    assert has_control_chars("a\x00b") and has_control_chars(["ok", "x\x07"])
    assert not has_control_chars("Zeile 1\nZeile 2\tTab") and not has_control_chars(None) and not has_control_chars(42)


@pytest.mark.parametrize("cell, written", [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+1+1", "'+1+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("'=1", "''=1"),  # a text that already starts with the guard keeps it through a round trip
    ("Müller", "Müller"), ("", ""), ("'", "'"),
])
def test_12_7_formula_cells_are_neutralised(cell, written):
    assert neutralise_formula(cell) == written
    assert restore_formula(written) == cell


@given(st.text(max_size=20))
def test_12_7_neutralise_then_restore_is_the_identity(cell):
    assert restore_formula(neutralise_formula(cell)) == cell
    assert not neutralise_formula(cell).startswith(("=", "+", "-", "@", "\t", "\r"))
