"""Issue 15 point 7: a message is written once, straight to its wire bytes. Whatever it
holds, both of the standard library's parsers read back exactly what was put in, every
line stays within the limits, and nothing in a value can start a header or a part."""

from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email import policy
from email.header import decode_header, make_header

import pytest

from core.adapters.smtp import Attachment, BuiltMessage, OutgoingMail, build_message

WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)

TEXTS = [
    "Grüße\n",
    "Zeile mit Leerzeichen am Ende   \n.Punkt am Anfang\nFrom Anfang\n\n\nEnde ohne Umbruch",
    "Mac\rZeilen\r\nund Windows\r\n" + "ä" * 200 + "\n" + "x" * 300,
    "--=_nicht die Grenze\n=?utf-8?q?kein_Wort?=\n=3D\n",
]
SUBJECTS = [
    "Betreff",
    "Anfrage A1 mit einem sehr langen Betreff der gefaltet werden muss weil er so lang ist und noch mehr",
    "Anfrage für Ärztinnen – Ref. A1 mit einem sehr langen Betreff der gefaltet werden muss weil er lang ist",
    "x" * 120,
]
FILES = ["Anmeldebogen.pdf", "Anmeldebogen Müller.pdf", 'Bogen "A"; (neu).pdf',
         "Ein sehr langer Dateiname mit Umlauten äöü und noch mehr Text damit er lang wird ÄÖÜß " * 2 + ".pdf"]


def _mail(**kw) -> OutgoingMail:
    base = dict(from_address="vermittlung@example.de", from_name="Vermittlung Süd", to_address="weber@praxis.de",
                to_name="Dr. Jürgen Weiß", subject="Betreff", text="t\n", html="<p>h</p>\n",
                message_id="<abc.1@example.de>", date=WHEN, reply_to="vermittlung@example.de")
    base.update(kw)
    return OutgoingMail(**base)


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_lines(raw: bytes) -> None:
    assert all(b < 128 for b in raw), "7-bit clean"
    assert b"\n" not in raw.replace(b"\r\n", b""), "CRLF only"
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    header_block, _, body = raw.partition(b"\r\n\r\n")
    for line in body.split(b"\r\n"):
        assert len(line) <= 78, line


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_what_goes_in_comes_back_out(text, subject):
    mail = _mail(subject=subject, text=text, html=f"<p>{text}</p>",
                 attachments=tuple(Attachment(name, bytes(range(256)) * 3) for name in FILES))
    built = build_message(mail)
    assert isinstance(built, BuiltMessage)
    raw = built.as_bytes()
    _check_lines(raw)
    modern = email.message_from_bytes(raw, policy=policy.default)
    assert not modern.defects and not any(p.defects for p in modern.walk())
    assert modern.get_content_type() == "multipart/mixed"
    assert modern.get_payload()[0].get_content_type() == "multipart/alternative"
    assert str(modern["Subject"]) == subject
    assert [a.addr_spec for a in modern["To"].addresses] == ["weber@praxis.de"]
    assert modern["To"].addresses[0].display_name == "Dr. Jürgen Weiß"
    assert modern["From"].addresses[0].display_name == "Vermittlung Süd"
    assert str(modern["Reply-To"]) == "vermittlung@example.de"
    assert str(modern["Message-ID"]) == "<abc.1@example.de>" and modern["Date"].datetime == WHEN
    assert _norm(modern.get_body(("plain",)).get_content()) == _norm(text)
    assert _norm(modern.get_body(("html",)).get_content()) == _norm(f"<p>{text}</p>")
    attachments = list(modern.iter_attachments())
    assert [a.get_filename() for a in attachments] == FILES
    assert all(a.get_content() == bytes(range(256)) * 3 and a.get_content_type() == "application/pdf" for a in attachments)
    # the old parser (compat32) agrees
    old = email.message_from_bytes(raw)
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", old["Subject"])
    assert str(make_header(decode_header(unfolded))) == subject
    assert [p.get_filename() for p in old.walk() if p.get_content_disposition() == "attachment"] == FILES
    # the envelope is the one recipient of the To header
    assert built.sender == "vermittlung@example.de" and built.recipients == ("weber@praxis.de",)
    assert built.message_id == "<abc.1@example.de>"


def test_without_attachments_the_message_is_the_alternative():
    built = build_message(_mail(to_name="Praxis Weber", from_name="Vermittlung"))
    assert built.get_content_type() == "multipart/alternative"  # read through the parsed view
    assert built["To"].addresses[0].display_name == "Praxis Weber"
    assert b"\r\nTo: Praxis Weber <weber@praxis.de>\r\n" in built.raw


def test_a_long_name_folds_before_the_address():
    built = build_message(_mail(to_name="Gemeinschaftspraxis für Psychotherapie Dr. med. Müller-Lüdenscheidt und Kollegen"))
    _check_lines(built.raw)
    header_block = built.raw.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 120 for line in header_block.split(b"\r\n"))
    assert [a.addr_spec for a in built["To"].addresses] == ["weber@praxis.de"]


@pytest.mark.parametrize("field, value", [
    ("subject", "Betreff\r\nBcc: evil@attacker.example"),
    ("subject", "Betreff\nX: y"),
    ("message_id", "<a@b>\r\nBcc: evil@attacker.example"),
    ("to_address", "a@example.de\r\nBcc: evil@attacker.example"),
    ("to_address", "a@example.de, b@attacker.example"),
    ("to_address", "müller@example.de"),
    ("reply_to", "a@example.de\nBcc: b@example.de"),
])
def test_nothing_in_a_value_starts_a_header(field, value):
    with pytest.raises(ValueError):
        build_message(_mail(**{field: value}))


def test_every_message_gets_its_own_boundaries():
    a, b = build_message(_mail()), build_message(_mail())
    assert a.get_boundary() != b.get_boundary()
    assert a.get_boundary().startswith("=_")  # never occurs in quoted-printable or base64 text
