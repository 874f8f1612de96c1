"""Issue 12 point 14: a recipient name can never add a recipient (or a header), however
long it is and however Python folds it."""

from __future__ import annotations

import email
from datetime import datetime, timezone
from email import policy
from email.header import decode_header, make_header
from email.utils import getaddresses

import pytest

from core.adapters.smtp import OutgoingMail, build_message, safe_display_name

NAMES = [
    "Praxis Doktor Sehr Langer Name Mit Vielen Worten Mueller Luedenscheidt, Angreifer <evil@attacker.example> "
    "und noch mehr Text damit gefaltet wird",
    "Dr. med. Sehr Langer Praxisname Mit Vielen Worten Müller-Lüdenscheidt, Angreifer <evil@attacker.example> "
    "und noch mehr Text damit gefaltet wird",
    '"Quote" Ende", evil@attacker.example, <x@attacker.example>',
    "Name\r\nBcc: evil@attacker.example",
    "Gruppe: evil@attacker.example;",
]


def _raw(name: str) -> bytes:
    mail = OutgoingMail("vermittlung@example.de", "Vermittlung", "praxis@example.de", name, "Betreff", "t", "<p>h</p>",
                        "<id@example.de>", datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc))
    return build_message(mail).as_bytes(policy=policy.SMTP)


@pytest.mark.parametrize("name", NAMES)
def test_p14_names_cannot_add_recipients(name):
    raw = _raw(name)
    header_block = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert not any(line.lower().startswith("bcc") for line in header_block.split("\r\n"))
    # a strict reader (compat32, no decoding) ...
    parsed = email.message_from_bytes(raw)
    assert [a for _n, a in getaddresses(parsed.get_all("To"))] == ["praxis@example.de"]
    # ... and a reader that decodes encoded words before parsing addresses
    decoded = str(make_header(decode_header(" ".join(parsed.get_all("To")))))
    assert [a for _n, a in getaddresses([decoded])] == ["praxis@example.de"]
    # the modern parser agrees
    modern = email.message_from_bytes(raw, policy=policy.default)
    assert [a.addr_spec for a in modern["To"].addresses] == ["praxis@example.de"]
    assert "evil@attacker.example" not in str(modern["To"]) or "<evil" not in str(modern["To"])


def test_p14_safe_display_name_keeps_ordinary_names():
    assert safe_display_name("Dr. Anna Müller-Lüdenscheidt") == "Dr. Anna Müller-Lüdenscheidt"
    assert safe_display_name("Müller, Anna <a@b.de>") == "Müller Anna a b.de"
    assert len(safe_display_name("x" * 500)) <= 78


def test_p14_an_address_with_specials_is_refused():
    with pytest.raises(ValueError):
        build_message(OutgoingMail("v@example.de", "V", "a@example.de, b@attacker.example", "N", "S", "t", "h",
                                   "<id@example.de>", datetime(2026, 11, 23, tzinfo=timezone.utc)))
