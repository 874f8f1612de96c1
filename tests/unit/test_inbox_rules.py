"""Pure inbox rules: threading order over loaded values, the sender rule, answer pre-filling."""

from __future__ import annotations

import pytest

from core.inbox.prefill import suggested_outcome, suggested_outcomes
from core.inbox.threads import Lookup, sender_rule
from core.platform.vocab import InboxMatch, Outcome

LOOKUP = Lookup(
    mails={"<out-1@v>": (11, 253, 7, None), "<pat-1@v>": (12, None, None, 40), "<rem-1@v>": (13, 254, None, None)},
    inquiries={253: 7, 254: 8, 300: 9},
    therapists_by_address={"praxis@example.org": [7], "gemeinsam@example.org": [7, 8], "viel@example.org": [9]},
    open_by_therapist={7: [253], 9: [300, 301]},
    patients_by_address={"anna@example.org": [40]},
)


@pytest.mark.parametrize(
    "thread_ids, refs, sender, expected",
    [
        (("<out-1@v>",), ("A300",), "x@y.de", (InboxMatch.header, 253, 7, None, 11)),  # headers beat the subject
        (("<unknown@x>", "<rem-1@v>"), (), "", (InboxMatch.header, 254, 8, None, 13)),  # therapist from the inquiry
        (("<pat-1@v>",), (), "", (InboxMatch.patient, None, None, 40, 12)),
        ((), ("A999", "A300"), "praxis@example.org", (InboxMatch.subject, 300, 9, None, None)),  # first existing ref
        ((), (), "Praxis@Example.org", (InboxMatch.sender, 253, 7, None, None)),
        ((), (), "viel@example.org", (InboxMatch.none, None, 9, None, None)),  # two open inquiries: not guessed
        ((), (), "gemeinsam@example.org", (InboxMatch.none, None, None, None, None)),  # two therapists
        ((), (), "anna@example.org", (InboxMatch.patient, None, None, 40, None)),
        ((), (), "fremd@example.net", (InboxMatch.none, None, None, None, None)),
    ],
)
def test_match_order(thread_ids, refs, sender, expected):
    m = LOOKUP.match(thread_ids=thread_ids, inquiry_refs=refs, from_address=sender)
    assert (m.method, m.inquiry_id, m.therapist_id, m.patient_id, m.outbox_email_id) == expected


def test_sender_rule():
    assert sender_rule([7], [253]) == 253
    assert sender_rule([7], []) is None
    assert sender_rule([7], [1, 2]) is None
    assert sender_rule([7, 8], [1]) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Leider habe ich derzeit keine freien Plätze.", Outcome.rejected_capacity),
        ("Aufnahmestopp bis Sommer.", Outcome.rejected_capacity),
        ("Meine Warteliste ist geschlossen.", Outcome.rejected_capacity),
        ("Ich habe keine Kapazität.", Outcome.rejected_capacity),
        ("Gerne biete ich Frau A. ein Erstgespräch an.", None),
        ("Keine freien Plätze für Herrn B., aber für Frau A. habe ich einen Termin.", None),
        ("Bitte rufen Sie mich an.", None),
        ("", None),
    ],
)
def test_prefill_only_when_obvious(text, expected):
    assert suggested_outcome(text) == expected


def test_prefill_for_every_patient():
    assert suggested_outcomes("Ab Januar ist ein Platz frei, sonst keine freien Plätze.", [1, 2]) == {}
    assert suggested_outcomes("Leider keine freien Plätze.", [1, 2]) == {1: Outcome.rejected_capacity, 2: Outcome.rejected_capacity}
