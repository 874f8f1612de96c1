"""The declarative form specs (issue 9, point 5): every stored field once, German labels from
FIELD_LABELS, sensitive flags from the kind, detail groups from the same sections."""

from __future__ import annotations

import pytest

from core.platform import validation as v
from core.registry import patients, therapists
from core.registry.forms import FORMS, Widget

KINDS = {"patient": patients, "therapist": therapists}


@pytest.mark.parametrize("kind", list(KINDS))
def test_form_spec_covers_every_field_once_with_a_german_label(kind):
    spec, module = FORMS[kind], KINDS[kind]
    names = [f.name for f in spec.fields]
    assert sorted(names) == sorted(module.FIELDS) and len(names) == len(set(names))
    assert all(f.name in v.FIELD_LABELS and f.label == v.FIELD_LABELS[f.name] for f in spec.fields)
    assert {f.name for f in spec.fields if f.sensitive} == set(module.SENSITIVE)
    assert {f.name for f in spec.fields if f.required} == {"first_name", "last_name"}
    assert [n for _, group in spec.groups() for n in group] == names
    assert all(f.options for f in spec.fields if f.widget in (Widget.choice, Widget.multi))
