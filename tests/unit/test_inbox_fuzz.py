"""Fuzz: 1,000 generated malformed mails (bad encodings, broken MIME, huge headers, garbage)
never make the parser raise; each is read (ParsedMessage, maybe with warnings) or rejected
with a German reason. Deterministic (fixed seed) and a few seconds at most."""

from __future__ import annotations

import random
import time

from core.inbox.message import Kind, ParsedMessage, RejectedMessage
from core.inbox.parse import parse_message
from tests.support.mail_samples import DSN, EVIL_HTML, EXIM, POSTFIX_PLAIN, QMAIL, reply

SEEDS = [
    reply(),
    reply(html=EVIL_HTML, attachments=[("a.pdf", "application/pdf", b"%PDF" * 50)]),
    reply(subject="Abwesenheitsnotiz", text="Ich bin bis zum 14.12.2026 nicht da."),
    DSN, EXIM, POSTFIX_PLAIN, QMAIL,
]

BAD_WORDS = [
    b"=?utf-8?b?!!!invalid***?=", b"=?x-unknown?q?abc?=", b"=?utf-8?q?=FF=FE=00?=", b"=?iso-8859-1?b?",
    b"=?utf-8?B?" + b"A" * 5000 + b"?=", b"\xff\xfe\xfa", "Grüße".encode("latin-1"), b"\x00\x00", b"=?=?=?",
]
CHARSETS = [b"utf-8", b"x-klingon", b"", b"\"", b"utf-7", b"iso-2022-jp", b"utf-16", b"../../etc", b"unknown-8bit"]


def _huge_headers(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:  # one enormous header line
        return b"Subject: " + b"A253 " * rng.randrange(2_000, 40_000) + b"\r\nFrom: a@example.org\r\n\r\nx"
    if kind == 1:  # many headers
        return b"".join(b"X-H%d: v\r\n" % i for i in range(rng.randrange(500, 5_000))) + b"From: a@b.de\r\n\r\nbody"
    if kind == 2:  # deep folding
        return b"Subject: start" + b"\r\n continued" * rng.randrange(500, 5_000) + b"\r\n\r\nbody"
    return (b"References: " + b" ".join(b"<id%d@example.org>" % i for i in range(rng.randrange(1_000, 10_000)))
            + b"\r\nMessage-ID: <" + b"x" * rng.randrange(300, 3_000) + b"@example.org>\r\n\r\nbody")


def _broken_mime(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    head = b"From: a@example.org\r\nSubject: Re: A1\r\nMIME-Version: 1.0\r\n"
    if kind == 0:  # boundary never closed / missing
        return head + b"Content-Type: multipart/mixed; boundary=XYZ\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\nhalf"
    if kind == 1:  # no boundary parameter at all
        return head + b"Content-Type: multipart/alternative\r\n\r\n--a\r\n\r\nx\r\n--a--"
    if kind == 2:  # deep nesting
        depth = rng.randrange(30, 400)
        open_parts = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
        return head + open_parts + b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    if kind == 3:  # bad transfer encodings
        cte = rng.choice([b"base64", b"quoted-printable", b"x-uuencode", b"7bit", b"bogus"])
        return head + b"Content-Type: text/plain; charset=" + rng.choice(CHARSETS) + b"\r\nContent-Transfer-Encoding: " + cte + (
            b"\r\n\r\n=ZZ=\r\n!!!===\xff\xfe" + bytes(rng.randrange(256) for _ in range(200)))
    if kind == 4:  # delivery-status without structure
        return head.replace(b"Subject: Re: A1", b"Subject: Undelivered Mail") + (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n"
            b"--R\r\nContent-Type: message/delivery-status\r\n\r\n" + bytes(rng.randrange(256) for _ in range(300))
            + b"\r\n--R\r\nContent-Type: message/rfc822\r\n\r\n\xff\xff--R--")
    # weird content types and parameters
    return head + b"Content-Type: " + rng.choice([b"text/", b"/", b"multipart/", b"\xff/\xfe", b"text/html; charset*=''",
                                                  b"application/pdf; name*0*=utf-8''%FF%FE; name*1=x"]) + b"\r\n\r\n<p>x</p>"


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randrange(1, 30)):
        op = rng.randrange(5)
        if not data:
            break
        pos = rng.randrange(len(data))
        if op == 0:
            data[pos] = rng.randrange(256)
        elif op == 1:
            del data[pos:pos + rng.randrange(1, 50)]
        elif op == 2:
            data[pos:pos] = rng.choice(BAD_WORDS)
        elif op == 3:
            data[pos:pos] = rng.choice([b"\r\n", b"\n\n", b"\r", b"--", b"\r\n--RPT\r\n", b":", b"<", b">"])
        else:
            data = data[:pos]  # truncated mid-way
    return bytes(data)


def _generate(rng: random.Random, i: int) -> bytes:
    choice = i % 10
    if choice < 5:
        return _mutate(rng, rng.choice(SEEDS))
    if choice == 5:
        return _huge_headers(rng) if i % 20 == 5 else _mutate(rng, _huge_headers(random.Random(i)))[:50_000]
    if choice in (6, 7):
        return _broken_mime(rng)
    if choice == 8:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 2_000)))
    word = rng.choice(BAD_WORDS)
    return b"From: " + word + b" <" + word + b"@x>\r\nSubject: " + word + b"\r\nDate: " + word + b"\r\nMessage-ID: " + word + (
        b"\r\nContent-Type: text/html; charset=" + rng.choice(CHARSETS) + b"\r\n\r\n<script>x</script>" + word)


def test_thousand_malformed_messages_never_raise():
    rng = random.Random(20261201)
    started = time.monotonic()
    counts = {"parsed": 0, "rejected": 0, "warned": 0}
    for i in range(1_000):
        raw = _generate(rng, i)
        result = parse_message(raw)  # must not raise
        if isinstance(result, RejectedMessage):
            counts["rejected"] += 1
            assert result.reason and isinstance(result.reason, str), i
            assert len(result.sha256) == 64
            continue
        assert isinstance(result, ParsedMessage), i
        counts["parsed"] += 1
        counts["warned"] += bool(result.warnings)
        assert result.kind in (Kind.reply, Kind.bounce, Kind.auto_reply, Kind.other)
        for value in (result.subject, result.from_address, result.text, result.body, result.quoted, result.html,
                      result.message_id):
            assert isinstance(value, str)
            value.encode("utf-8")  # no lone surrogates: storable in any database
        assert "\x00" not in result.text
        assert "<script" not in result.html.lower()
        assert len(result.subject) <= 998 and len(result.message_id) <= 250
        assert all(isinstance(a.size, int) and a.size >= 0 for a in result.attachments)
    elapsed = time.monotonic() - started
    assert counts["parsed"] > 500 and counts["rejected"] > 10 and counts["warned"] > 100, counts
    assert elapsed < 20, f"fuzz took {elapsed:.1f}s"
