"""Sample mails for the inbox tests (unit, fuzz, integration, AppTest, e2e, bench): a reply
builder, unsafe HTML, an RFC 3464 DSN and the plain-text bounces of Postfix, Exim, qmail and
Exchange, and a reply with unsafe HTML, quoted history and an attachment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime

SENT_ID = "<a253.4f2c@vermittlung.example.de>"
DATE = datetime(2026, 11, 30, 10, 15, tzinfo=timezone.utc)


def reply(*, subject="AW: Anfrage Psychotherapieplatz – Ref. A253", text="Leider keine Kapazität.",
          html=None, in_reply_to=SENT_ID, headers=(), attachments=(), sender="Dr. Maria Müller <praxis.mueller@example.org>"):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Vermittlung <vermittlung@example.de>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(DATE)
    msg["Message-ID"] = "<reply-1@example.org>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = f"<older@example.de> {in_reply_to}"
    for name, value in headers:
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, ctype, content in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return bytes(msg)



EVIL_HTML = """<html><head><title>t</title><style>body{background:url(https://track.example/bg.png)}</style>
<script>alert('xss')</script></head>
<body onload="steal()"><p style="background-image:url('https://track.example/p.gif')">Leider <b>keine</b> Plätze.</p>
<iframe src="https://evil.example/frame">iframe-Inhalt</iframe>
<img src="https://track.example/pixel.gif?id=42" width="1" height="1" alt="">
<img src="cid:logo@example.org" alt="Logo">
<a href="javascript:alert(1)">klick</a> <a href="https://praxis.example.org" onclick="x()">Praxis</a>
<form action="https://evil.example/"><input name="p"></form>
<svg><script>alert(2)</script></svg>
</body></html>"""



DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.de>
To: vermittlung@example.de
Subject: Undelivered Mail Returned to Sender
Date: Mon, 30 Nov 2026 10:20:00 +0100
Message-ID: <20261130092000.ABC@mx.example.de>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"

--RPT
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.de.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<praxis.alt@example.org>: host mail.example.org[192.0.2.7] said: 550 5.1.1
    <praxis.alt@example.org>: Recipient address rejected: User unknown in
    virtual mailbox table (in reply to RCPT TO command)

--RPT
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.de
X-Postfix-Queue-ID: ABC
Arrival-Date: Mon, 30 Nov 2026 10:19:58 +0100

Final-Recipient: rfc822; praxis.alt@example.org
Original-Recipient: rfc822;praxis.alt@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <praxis.alt@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--RPT
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Therapieplatz-Vermittlung <vermittlung@example.de>
To: Praxis <praxis.alt@example.org>
Subject: Anfrage Psychotherapieplatz - Ref. A253
Message-ID: <a253.4f2c@vermittlung.example.de>

--RPT--
""".replace(b"\n", b"\r\n")



POSTFIX_PLAIN = b"""From: MAILER-DAEMON@mx.example.de (Mail Delivery System)
To: vermittlung@example.de
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-2@mx.example.de>

This is the mail system at host mx.example.de.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<dr.weber@example.net>: host mx.example.net[198.51.100.2] said: 550 5.1.1
    <dr.weber@example.net>... User unknown (in reply to RCPT TO command)

--- Below this line is a copy of the message.

Return-Path: <vermittlung@example.de>
From: vermittlung@example.de
To: dr.weber@example.net
Subject: Anfrage Psychotherapieplatz - Ref. A77
Message-ID: <a77.1@vermittlung.example.de>

Sehr geehrter Herr Dr. Weber, ...
"""

EXIM = b"""Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mail.example.com>
To: vermittlung@example.de
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1abc-0001@mail.example.com>
X-Failed-Recipients: praxis@old-domain.example
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  praxis@old-domain.example
    host mx.old-domain.example [203.0.113.9]
    SMTP error from remote mail server after RCPT TO:<praxis@old-domain.example>:
    550 No such user here

------ This is a copy of the message, including all the headers. ------

Return-path: <vermittlung@example.de>
Message-ID: <a12.9@vermittlung.example.de>
Subject: Anfrage Psychotherapieplatz - Ref. A12

Sehr geehrte ...
"""

QMAIL = b"""From: MAILER-DAEMON@mail.example.com
To: vermittlung@example.de
Subject: failure notice
Message-ID: <q1@mail.example.com>

Hi. This is the qmail-send program at mail.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<therapie.koch@example.com>:
192.0.2.44 does not like recipient.
Remote host said: 550 5.7.1 <therapie.koch@example.com>: Mailbox disabled
Giving up on 192.0.2.44.

--- Below this line is a copy of the message.

Return-Path: <vermittlung@example.de>
Message-ID: <a5.3@vermittlung.example.de>
Subject: Anfrage - Ref. A5
"""

EXCHANGE_GERMAN = """From: Microsoft Outlook <postmaster@praxis.example.de>
To: vermittlung@example.de
Subject: Unzustellbar: Anfrage Psychotherapieplatz - Ref. A31
Message-ID: <ex-1@praxis.example.de>
Content-Type: text/plain; charset=utf-8

Die Nachricht konnte nicht zugestellt werden an: info@praxis.example.de
Der Empfänger wurde nicht gefunden.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'
""".encode()


REPLY_TEXT = """Guten Tag,

leider habe ich derzeit keine freien Plätze.

Mit freundlichen Grüßen
Dr. Eva Weber

Am 23.11.2026 um 09:30 schrieb Vermittlung <vermittlung@example.de>:
> Sehr geehrte Frau Dr. Weber,
> wir suchen einen Platz für zwei Patient:innen.
"""


def evil_reply(message_id: str, in_reply_to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Praxis Weber <praxis@example.org>"
    msg["To"] = "vermittlung@example.de"
    msg["Subject"] = "AW: Anfrage Psychotherapieplätze"
    msg["Date"] = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1))
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg.set_content(REPLY_TEXT)
    msg.add_alternative(EVIL_HTML, subtype="html")
    msg.add_attachment(b"%PDF-1.4 " + b"x" * 4000, maintype="application", subtype="pdf", filename="Warteliste.pdf")
    return bytes(msg)
