"""Reading received mail (core.inbox.parse): replies, bounces of every common format,
auto-replies with and without a return date, unsafe HTML, attachments, quoted history."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage

import pytest

from core.inbox.autoreply import return_date
from core.inbox.message import Kind, ParsedMessage, RejectedMessage
from core.inbox.parse import parse_message
from core.inbox.text import inquiry_references, split_quoted
from core.inbox.sanitize import html_to_text, sanitize_html
from tests.support.mail_samples import DATE, DSN, EVIL_HTML, EXCHANGE_GERMAN, EXIM, POSTFIX_PLAIN, QMAIL, SENT_ID, reply

def parsed(raw: bytes, **kw) -> ParsedMessage:
    result = parse_message(raw, **kw)
    assert isinstance(result, ParsedMessage), result
    return result


# --------------------------------------------------------------------------- replies


def test_reply_headers_and_threading_ids():
    m = parsed(reply())
    assert m.kind == Kind.reply
    assert m.message_id == "<reply-1@example.org>"
    assert m.in_reply_to == SENT_ID
    assert m.references == ("<older@example.de>", SENT_ID)
    assert m.thread_ids == (SENT_ID, "<older@example.de>")
    assert m.from_address == "praxis.mueller@example.org"
    assert m.from_name == "Dr. Maria Müller"
    assert m.to == ("vermittlung@example.de",)
    assert m.subject == "AW: Anfrage Psychotherapieplatz – Ref. A253"
    assert m.date == DATE
    assert m.inquiry_refs == ("A253",)
    assert m.body == "Leider keine Kapazität."
    assert m.quoted == ""
    assert len(m.sha256) == 64
    assert m.warnings == ()


def test_same_bytes_same_hash_and_different_bytes_differ():
    assert parsed(reply()).sha256 == parsed(reply()).sha256
    assert parsed(reply()).sha256 != parsed(reply(text="Anders.")).sha256


def test_reply_without_headers_but_reference_in_subject():
    m = parsed(reply(in_reply_to=None, subject="Ihre Anfrage A253"))
    assert m.kind == Kind.reply
    assert m.in_reply_to == "" and m.references == ()
    assert m.inquiry_refs == ("A253",)


def test_plain_mail_without_signs_of_a_reply_is_other():
    m = parsed(reply(in_reply_to=None, subject="Fortbildung im Januar"))
    assert m.kind == Kind.other
    assert m.inquiry_refs == ()


@pytest.mark.parametrize(
    "subject, refs",
    [
        ("AW: Anfrage – Ref. A253", ("A253",)),
        ("Re: A253-2 und A17", ("A253", "A17")),
        ("[A0099]", ("A99",)),
        ("DIN A4 Formular", ("A4",)),  # a false friend we accept; threading checks the id exists
        ("BA253 Rechnung, A25x, ABC123", ()),
        ("", ()),
    ],
)
def test_inquiry_references(subject, refs):
    assert inquiry_references(subject) == refs


def test_encoded_headers_are_decoded():
    raw = (
        b"From: =?iso-8859-1?q?J=FCrgen_Wei=DF?= <jw@example.org>\r\n"
        b"Subject: =?utf-8?b?QVc6IEFuZnJhZ2UgUHN5Y2hvdGhlcmFwaWVwbMOkdHplIOKAkyBSZWYuIEE0Mg==?=\r\n"
        b"Message-ID: <x1@example.org>\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Gr=FC=DFe aus K=F6ln\r\n"
    )
    m = parsed(raw)
    assert m.from_name == "Jürgen Weiß"
    assert m.subject == "AW: Anfrage Psychotherapieplätze – Ref. A42"
    assert m.inquiry_refs == ("A42",)
    assert m.text == "Grüße aus Köln"


def test_raw_utf8_and_latin1_headers_and_unknown_charset():
    raw = (
        "From: Jörg <j@example.org>\r\nSubject: Tschüss\r\n".encode("utf-8")
        + "X-Note: Grüße\r\n".encode("latin-1")
        + b"Content-Type: text/plain; charset=x-klingon\r\n\r\n"
        + "Schöne Grüße".encode("utf-8")
    )
    m = parsed(raw)
    assert m.from_name == "Jörg"
    assert m.subject == "Tschüss"
    assert m.text == "Schöne Grüße"
    assert any("Zeichensatz" in w for w in m.warnings)


# --------------------------------------------------------------------------- quoted history


GERMAN_TOP_POST = """Guten Tag,

leider habe ich derzeit keine freien Plätze.

Mit freundlichen Grüßen
M. Müller

Am 23.11.2026 um 09:30 schrieb Therapieplatz-Vermittlung <vermittlung@example.de>:
> Sehr geehrte Frau Dr. Müller,
> wir suchen einen Platz für ...
"""


def test_german_attribution_splits_history():
    m = parsed(reply(text=GERMAN_TOP_POST))
    assert m.body.endswith("M. Müller")
    assert m.quoted.startswith("Am 23.11.2026 um 09:30 schrieb")
    assert "wir suchen einen Platz" in m.quoted
    assert "wir suchen" not in m.body
    assert m.text.startswith("Guten Tag")


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, Nov 23, 2026 at 9:30 AM Vermittlung <vermittlung@example.de> wrote:\n> Dear ...\n> more",
        "-----Ursprüngliche Nachricht-----\nVon: Vermittlung\nGesendet: Montag, 23. November 2026 09:30\nAn: Praxis\nBetreff: Anfrage",
        "________________________________\nVon: Vermittlung <vermittlung@example.de>\nGesendet: Montag, 23. November 2026\nAn: Praxis",
        "Von: Vermittlung <vermittlung@example.de>\nGesendet: Montag, 23. November 2026 09:30\nAn: praxis@example.org\nBetreff: Anfrage",
        "-----Original Message-----\nFrom: Vermittlung\nSent: Monday\nTo: Praxis",
        "> Sehr geehrte Frau Dr. Müller,\n> wir suchen einen Platz",
        "Am Montag, 23. November 2026, 09:30:12 CET schrieb\nVermittlung <vermittlung@example.de>:\n> Sehr geehrte",
    ],
)
def test_common_history_markers(history):
    body, quoted = split_quoted("Ich rufe Sie morgen an.\n\n" + history)
    assert body == "Ich rufe Sie morgen an."
    assert quoted.startswith(history.split("\n")[0].strip()[:10])


def test_inline_answers_are_not_folded_away():
    text = "Am 23.11.2026 schrieb Vermittlung:\n> Patient 1?\nJa, gerne.\n> Patient 2?\nNein.\n"
    assert split_quoted(text) == (text.strip("\n"), "")


def test_bottom_posting_is_not_folded_away():
    text = "> Haben Sie einen Platz?\n\nJa, ab Januar.\n"
    body, quoted = split_quoted(text)
    assert "Ja, ab Januar." in body and quoted == ""


def test_text_without_history():
    assert split_quoted("Ja.\n-- \nPraxis Müller") == ("Ja.\n-- \nPraxis Müller", "")


# --------------------------------------------------------------------------- HTML


def test_html_is_sanitised_scripts_iframes_images_styles_removed():
    m = parsed(reply(text="Leider keine Plätze.", html=EVIL_HTML))
    html = m.html.lower()
    for bad in ("<script", "alert(", "<iframe", "iframe-inhalt", "<img", "track.example", "evil.example", "style",
                "onload", "onclick", "javascript:", "<form", "<input", "<svg", "<title"):
        assert bad not in html, bad
    assert "<b>keine</b>" in m.html
    assert 'href="https://praxis.example.org"' in m.html
    assert "noopener" in m.html
    assert m.text == "Leider keine Plätze."  # the text part wins over HTML


def test_html_only_mail_gets_text_from_sanitised_html():
    msg = EmailMessage()
    msg["From"] = "praxis@example.org"
    msg["Subject"] = "AW: Ref. A7"
    msg.set_content(EVIL_HTML, subtype="html")
    m = parsed(bytes(msg))
    assert "Leider keine Plätze." in m.text
    assert "alert" not in m.text and "iframe-Inhalt" not in m.text and "body{" not in m.text
    assert "klick" in m.text and "Praxis" in m.text


def test_sanitize_and_text_helpers_on_odd_input():
    assert sanitize_html("") == ""
    assert sanitize_html("<p>ok</p><script>bad()</script>") == "<p>ok</p>"
    assert sanitize_html("<div><<<>>>&&&</div") .startswith("<div>")
    assert html_to_text("<ul><li>eins</li><li>zwei</li></ul><p>a&amp;b<br>c</p>") == "- eins\n- zwei\n\na&b\nc"


# --------------------------------------------------------------------------- attachments


def test_attachments_are_listed_never_opened():
    pdf = b"%PDF-1.4 " + b"x" * 3000
    m = parsed(reply(attachments=[("Befundbericht Müller.pdf", "application/pdf", pdf),
                                  ("notiz.txt", "text/plain", b"Nur eine Notiz"),
                                  ("bild.jpg", "image/jpeg", b"\xff\xd8\xff" + b"\x00" * 500)]))
    names = [(a.name, a.content_type) for a in m.attachments]
    assert names == [("Befundbericht Müller.pdf", "application/pdf"), ("notiz.txt", "text/plain"),
                     ("bild.jpg", "image/jpeg")]
    assert m.attachments[0].size == len(pdf)
    assert m.attachments[2].size == 503
    assert m.text == "Leider keine Kapazität."  # the .txt attachment is not the body
    assert "Notiz" not in m.text


def test_attachment_without_name_and_evil_name():
    raw = (b"From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHallo\r\n"
           b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
           b"--B\r\nContent-Type: application/pdf; name=\"../../etc/passwd\"\r\n\r\n%PDF\r\n--B--\r\n")
    m = parsed(raw)
    assert [a.name for a in m.attachments] == ["ohne Namen (application/octet-stream)", ".._.._etc_passwd"]
    assert m.attachments[0].size == 3


# --------------------------------------------------------------------------- bounces


def test_rfc3464_dsn_bounce():
    m = parsed(DSN)
    assert m.kind == Kind.bounce
    b = m.bounce
    assert b.format == "dsn"
    assert b.recipient == "praxis.alt@example.org"
    assert b.status == "5.1.1"
    assert b.diagnostic.startswith("550 5.1.1 <praxis.alt@example.org>: Recipient address rejected: User unknown")
    assert b.original_message_id == SENT_ID
    assert b.permanent is True
    assert m.auto_reply is None  # Auto-Submitted does not make a bounce an auto-reply
    assert SENT_ID in m.thread_ids
    assert m.attachments == ()


def test_dsn_with_attached_original_message_and_delay():
    delayed = (DSN.replace(b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.1")
               .replace(b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822"))
    m = parsed(delayed)
    assert m.kind == Kind.bounce
    assert m.bounce.permanent is False
    assert m.bounce.status == "4.4.1"
    assert m.bounce.original_message_id == SENT_ID


def test_successful_delivery_notice_is_not_a_bounce():
    ok = DSN.replace(b"Action: failed", b"Action: delivered").replace(b"Status: 5.1.1", b"Status: 2.0.0")
    ok = ok.replace(b"Undelivered Mail Returned to Sender", b"Delivery Status Notification (Success)")
    ok = ok.replace(b"could not\r\nbe delivered", b"was delivered")
    m = parsed(ok)
    assert m.kind != Kind.bounce


@pytest.mark.parametrize(
    "raw, fmt, recipient, status, diagnostic_part, original",
    [
        (POSTFIX_PLAIN, "postfix", "dr.weber@example.net", "5.1.1", "User unknown", "<a77.1@vermittlung.example.de>"),
        (EXIM, "exim", "praxis@old-domain.example", "550", "550 No such user here", "<a12.9@vermittlung.example.de>"),
        (QMAIL, "qmail", "therapie.koch@example.com", "5.7.1", "Mailbox disabled", "<a5.3@vermittlung.example.de>"),
        (EXCHANGE_GERMAN, "text", "info@praxis.example.de", "5.1.10", "RecipientNotFound", ""),
    ],
)
def test_plain_text_bounces(raw, fmt, recipient, status, diagnostic_part, original):
    m = parsed(raw)
    assert m.kind == Kind.bounce
    b = m.bounce
    assert (b.format, b.recipient, b.status, b.original_message_id) == (fmt, recipient, status, original)
    assert diagnostic_part in b.diagnostic
    assert b.permanent is True


def test_a_human_mentioning_delivery_is_not_a_bounce():
    m = parsed(reply(text="Ihre letzte Mail konnte nicht zugestellt werden? Bei mir kam sie an."))
    assert m.kind == Kind.reply


# --------------------------------------------------------------------------- auto-replies


@pytest.mark.parametrize(
    "subject, headers",
    [
        ("Abwesenheitsnotiz: Anfrage – Ref. A253", ()),
        ("Automatische Antwort: Anfrage – Ref. A253", ()),
        ("Out of Office: Anfrage", ()),
        ("Re: Anfrage", (("Auto-Submitted", "auto-replied"),)),
        ("Re: Anfrage", (("X-Autoreply", "yes"),)),
        ("Re: Anfrage", (("Precedence", "auto_reply"),)),
    ],
)
def test_auto_reply_recognised(subject, headers):
    m = parsed(reply(subject=subject, headers=headers, text="Ich bin derzeit nicht in der Praxis."))
    assert m.kind == Kind.auto_reply
    assert m.auto_reply.return_date is None


def test_auto_submitted_no_is_a_normal_reply():
    m = parsed(reply(headers=(("Auto-Submitted", "no"),)))
    assert m.kind == Kind.reply


def test_out_of_office_with_return_date():
    text = ("Vielen Dank für Ihre Nachricht. Ich bin bis zum 14.12.2026 nicht in der Praxis "
            "und beantworte Ihre Mail danach.")
    m = parsed(reply(subject="Abwesenheitsnotiz", text=text))
    assert m.kind == Kind.auto_reply
    assert m.auto_reply.return_date == date(2026, 12, 15)  # absent through the 14th


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ich bin bis zum 14.12.2026 nicht erreichbar.", date(2026, 12, 15)),
        ("Ab 7. Januar bin ich wieder für Sie da.", date(2027, 1, 7)),
        ("Die Praxis ist ab dem 7.1. wieder geöffnet.", date(2027, 1, 7)),
        ("Urlaub vom 1.12. bis 18.12.; ab 21.12.2026 wieder erreichbar.", date(2026, 12, 21)),
        ("Praxisurlaub vom 30.11. bis einschließlich 11.12.", date(2026, 12, 12)),
        ("I am out of the office until December 14, 2026.", date(2026, 12, 15)),
        ("I will be back on 7 January 2027.", date(2027, 1, 7)),
        ("Zurück am 2026-12-08.", date(2026, 12, 8)),
        ("Ich bin im Urlaub und lese keine Mails.", None),
        ("Telefon 030 12.34.56, Sprechzeiten Mo 9-12", None),
        ("Ich bin bis zum 31.02.2027 weg.", None),  # no such day
        ("Zurück am 14.12.2031.", None),  # too far away to be meant
    ],
)
def test_return_date(text, expected):
    assert return_date(text, date(2026, 11, 30)) == expected


# --------------------------------------------------------------------------- malformed


def test_empty_and_headerless_input_is_rejected_with_a_reason():
    for raw in (b"", b"   \r\n", b"\x00\x01\x02 just bytes, no header line"):
        r = parse_message(raw)
        assert isinstance(r, RejectedMessage)
        assert r.reason and len(r.sha256) == 64


def test_too_large_is_rejected(monkeypatch):
    import core.inbox.parse as p

    monkeypatch.setattr(p, "MAX_MESSAGE_BYTES", 100)
    r = parse_message(reply())
    assert isinstance(r, RejectedMessage) and "zu groß" in r.reason


def test_missing_message_id_and_bad_date_are_warnings():
    raw = b"From: someone\r\nSubject: hi\r\nDate: yesterday-ish\r\n\r\ntext"
    m = parsed(raw)
    assert m.message_id == "" and m.date is None and m.from_address == ""
    assert any("Message-ID fehlt" in w for w in m.warnings)
    assert any("Datum" in w for w in m.warnings)
    assert any("Absender" in w for w in m.warnings)


def test_broken_base64_body_is_read_anyway():
    raw = (b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nSGFsbG8gV2VsdA=\r\n!!!notbase64")
    m = parsed(raw)
    assert isinstance(m.text, str)
