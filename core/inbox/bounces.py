"""Bounces: RFC 3464 delivery status notifications and the common plain-text formats."""

from __future__ import annotations

import re
from email.message import Message
from typing import Optional
from core.inbox.headers import _first_address, _first_id, _header
from core.inbox.message import BounceInfo
from core.inbox.mime import _Part, _decode_text


# --------------------------------------------------------------------------- bounces


_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (?:system|subsystem)|mail-daemon", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|returned mail|mail delivery failed|delivery status notification|"
    r"failure notice|delivery failure|could not be delivered|nicht zustellbar|unzustellbar|"
    r"unzustellbare|zustellung fehlgeschlagen|non[- ]?delivery|delivery has failed|mail system error|"
    r"rückläufer|warning: could not send message",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?:[\s-]|$)")
_BODY_MSGID = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _bounce(msg: Message, parts: list[_Part], text: str, embedded: list[_Part], subject: str,
            from_address: str, from_name: str, warnings: list[str]) -> Optional[BounceInfo]:
    status_parts = [p for p in embedded if p.content_type in ("message/delivery-status", "message/global-delivery-status")]
    if status_parts:  # multipart/report; report-type=delivery-status (or a sloppy variant of it)
        info = _from_dsn(status_parts[0].msg, warnings)
        if info is not None:
            recipient, status, diagnostic, action = info
            original = _original_id(embedded, text, warnings)
            permanent = action not in ("delayed", "relayed", "delivered", "expanded") and not status.startswith(("4", "2"))
            if action in ("delivered", "relayed", "expanded") or status.startswith("2"):
                return None  # a success notice is not a bounce
            return BounceInfo(recipient, status, diagnostic, original, permanent, "dsn")
    looks_like = bool(_BOUNCE_FROM.search(from_address) or _BOUNCE_FROM.search(from_name)) and bool(
        _BOUNCE_SUBJECT.search(subject) or _BOUNCE_TEXT.search(text[:4000]))
    looks_like = looks_like or (bool(_BOUNCE_SUBJECT.search(subject)) and bool(_BOUNCE_TEXT.search(text[:4000])))
    failed_header = str(msg.get("X-Failed-Recipients", "") or "").strip()
    if not looks_like and not failed_header:
        return None
    return _from_text(text, embedded, failed_header, warnings)


_BOUNCE_TEXT = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't able to deliver|was not delivered|delivery has failed|"
    r"permanent error|permanent fatal|undeliverable|user unknown|unknown user|no such user|mailbox unavailable|"
    r"recipient address rejected|does not exist|konnte nicht zugestellt|nicht zugestellt werden|"
    r"unzustellbar|addresses failed|address\(es\) failed|delivery to the following recipient|"
    r"i'm sorry to have to inform you|this is the mail system at|this is the qmail-send program",
    re.IGNORECASE,
)


def _field_text(value) -> str:
    return " ".join(str(value or "").split())


def _strip_type(value: str) -> str:
    """"rfc822; user@example.com" → "user@example.com"."""
    value = _field_text(value)
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").lower()


def _from_dsn(part: Message, warnings: list[str]) -> Optional[tuple[str, str, str, str]]:
    """(recipient, status, diagnostic, action) of the first failed recipient of a
    message/delivery-status part."""
    blocks = []
    try:
        payload = part.get_payload()
    except Exception:  # noqa: BLE001
        payload = None
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    elif isinstance(payload, str):
        blocks = _blocks_from_text(payload)
    else:
        return None
    recipients = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient") or b.get("Action")]
    if not recipients:
        return None
    chosen = next((b for b in recipients if _field_text(b.get("Action")).lower() == "failed"), recipients[0])
    recipient = _strip_type(chosen.get("Final-Recipient") or chosen.get("Original-Recipient") or "")
    status = _field_text(chosen.get("Status"))
    m = _ENHANCED.search(status)
    status = m.group(1) if m else status[:20]
    diagnostic = _field_text(chosen.get("Diagnostic-Code"))
    if ";" in diagnostic[:20]:
        diagnostic = diagnostic.split(";", 1)[1].strip()
    action = _field_text(chosen.get("Action")).lower()
    if not status:
        m = _ENHANCED.search(diagnostic)
        status = m.group(1) if m else ""
    return recipient, status, diagnostic[:500], action


def _blocks_from_text(text: str) -> list[Message]:
    blocks = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = Message()
        for line in chunk.split("\n"):
            if ":" in line and not line[:1].isspace():
                name, _, value = line.partition(":")
                block[name.strip()] = value.strip()
        if block.keys():
            blocks.append(block)
    return blocks


def _original_id(embedded: list[_Part], text: str, warnings: list[str]) -> str:
    for p in embedded:
        if p.content_type in ("message/rfc822", "message/global"):
            try:
                inner = p.msg.get_payload()
            except Exception:  # noqa: BLE001
                inner = None
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                mid = _first_id(_header(inner[0], "Message-ID", []), [])
                if mid:
                    return mid
        if p.content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            m = _BODY_MSGID.search(_decode_text(p.msg, []))
            if m:
                return m.group(1)
    m = _BODY_MSGID.search(text)
    return m.group(1) if m else ""


_QMAIL = re.compile(r"qmail-send program|wasn't able to deliver your message", re.IGNORECASE)
_EXIM = re.compile(r"following address\(es\) failed|this message was created automatically by mail delivery software",
                   re.IGNORECASE)
_POSTFIX = re.compile(r"this is the mail system at|i'm sorry to have to inform you", re.IGNORECASE)
_ANGLE_RECIPIENT = re.compile(r"^\s*<([^<>\s@]+@[^<>\s]+)>\s*:?", re.MULTILINE)
_EXIM_RECIPIENT = re.compile(r"failed:\s*\n\s*\n?\s*<?([^\s<>@]+@[^\s<>:]+)>?", re.IGNORECASE)


def _from_text(text: str, embedded: list[_Part], failed_header: str, warnings: list[str]) -> BounceInfo:
    head = text[:20_000]
    if _QMAIL.search(head):
        fmt = "qmail"
    elif _EXIM.search(head) or failed_header:
        fmt = "exim"
    elif _POSTFIX.search(head):
        fmt = "postfix"
    else:
        fmt = "text"
    # Only the report itself, not the copy of the original mail below it.
    report = re.split(r"^-{2,}\s*(?:below this line|this is a copy|original message|ursprüngliche)|^-{3,}\s*$|^Return-Path:",
                      head, maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]
    recipient = ""
    if failed_header:
        recipient = _first_address(failed_header)[1]
    if not recipient:
        m = _ANGLE_RECIPIENT.search(report) or _EXIM_RECIPIENT.search(report)
        if m:
            recipient = m.group(1).lower().rstrip(".:")
    if not recipient:
        m = re.search(r"(?:to|an|recipient|empfänger)\W{0,3}<?([^\s<>@]+@[^\s<>:,]+)>?", report, re.IGNORECASE)
        if m:
            recipient = m.group(1).lower().rstrip(".")
    m = _ENHANCED.search(report)
    code = _SMTP_CODE.search(report)
    status = m.group(1) if m else (code.group(1) if code else "")
    diagnostic = ""
    report_lines = report.split("\n")
    for i, line in enumerate(report_lines):
        if _SMTP_CODE.search(line) or _ENHANCED.search(line) or re.search(r"said:|error|unknown|rejected|does not exist",
                                                                          line, re.IGNORECASE):
            diagnostic = line.strip()
            for nxt in report_lines[i + 1:i + 4]:  # continuation lines (Postfix/Exim indent them)
                if nxt.startswith((" ", "\t")) and nxt.strip():
                    diagnostic += " " + nxt.strip()
                else:
                    break
            if _SMTP_CODE.search(diagnostic) or _ENHANCED.search(diagnostic):
                break
    temporary_words = re.search(r"temporar|will (?:continue|retry|keep) trying|delayed|not yet been delivered|"
                                r"noch nicht zugestellt|vorübergehend", report, re.IGNORECASE)
    permanent = not status.startswith("4") and not (temporary_words and not status.startswith("5"))
    original = _original_id(embedded, text, warnings)
    if not recipient:
        warnings.append("Rückläufer erkannt, aber der Empfänger ist nicht angegeben.")
    return BounceInfo(recipient, status, " ".join(diagnostic.split())[:500], original, permanent, fmt)
