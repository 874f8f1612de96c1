"""Reading one received mail (pure): raw bytes to a ParsedMessage or a RejectedMessage; never raises on bad input."""

from __future__ import annotations

import hashlib
from datetime import date
from email import message_from_bytes, policy
from typing import Optional
from core.inbox.sanitize import html_to_text, sanitize_html
from core.inbox.autoreply import auto_reply_reason, return_date
from core.inbox.bounces import _bounce
from core.inbox.headers import _addresses, _all_ids, _clip, _date, _defects_warning, _first_address, _first_id, _header
from core.inbox.message import AutoReplyInfo, Kind, MAX_MESSAGE_BYTES, MAX_TEXT_CHARS, ParseResult, ParsedMessage, RejectedMessage
from core.inbox.mime import _classify_parts, _decode_text, _walk
from core.inbox.text import _REPLY_PREFIX, _normalise_text, inquiry_references, split_quoted


# --------------------------------------------------------------------------- entry point


def parse_message(raw: bytes, *, today: Optional[date] = None) -> ParseResult:
    """Read one mail. `today` anchors return dates without a year when the mail has no
    usable Date header."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raw = str(raw).encode("utf-8", "surrogateescape") if raw is not None else b""
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    size = len(raw)
    if not raw.strip():
        return RejectedMessage(digest, size, "Leere Nachricht: keine Kopfzeilen und kein Text.")
    if size > MAX_MESSAGE_BYTES:
        return RejectedMessage(
            digest, size,
            f"Nachricht zu groß ({size / 1_048_576:.1f} MB, höchstens {MAX_MESSAGE_BYTES // 1_048_576} MB); "
            "bitte im Mailprogramm ansehen.",
        )
    try:
        return _parse(raw, digest, size, today)
    except RecursionError:
        return RejectedMessage(digest, size, "MIME-Struktur zu tief verschachtelt; bitte im Mailprogramm ansehen.")
    except MemoryError:
        return RejectedMessage(digest, size, "Nachricht zu groß zum Lesen; bitte im Mailprogramm ansehen.")
    except Exception as exc:  # noqa: BLE001 - the promise is: never raise, always a reason
        return RejectedMessage(digest, size, f"Nachricht nicht lesbar ({type(exc).__name__}); bitte im Mailprogramm ansehen.")


def _parse(raw: bytes, digest: str, size: int, today: Optional[date]) -> ParseResult:
    warnings: list[str] = []
    msg = message_from_bytes(raw, policy=policy.compat32)
    if not list(msg.keys()):
        return RejectedMessage(digest, size, "Keine E-Mail: keine Kopfzeilen gefunden.")
    if msg.defects:
        warnings.append(_defects_warning(msg.defects))

    subject = _clip(_header(msg, "Subject", warnings), 998, "Betreff", warnings)
    from_name, from_address = _first_address(_header(msg, "From", warnings))
    if not from_address:
        sender_name, sender_addr = _first_address(_header(msg, "Sender", warnings))
        from_name, from_address = from_name or sender_name, sender_addr
    if not from_address:
        warnings.append("Absender fehlt oder ist unlesbar.")
    to = tuple(addr for _, addr in _addresses(_header(msg, "To", warnings)))[:50]
    message_id = _first_id(_header(msg, "Message-ID", warnings), warnings)
    if not message_id:
        warnings.append("Message-ID fehlt; die Nachricht wird über ihren Hash erkannt.")
    in_reply_to = _first_id(_header(msg, "In-Reply-To", warnings), warnings)
    references = _all_ids(_header(msg, "References", warnings))
    msg_date = _date(_header(msg, "Date", warnings), warnings)

    parts = list(_walk(msg, warnings))
    text_part, html_part, attachments, embedded = _classify_parts(parts, warnings)
    html_raw = _decode_text(html_part, warnings) if html_part is not None else ""
    html = sanitize_html(html_raw)
    if text_part is not None:
        text = _decode_text(text_part, warnings)
    elif html:
        text = html_to_text(html)
    else:
        text = ""
    text = _normalise_text(text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        warnings.append(f"Text nach {MAX_TEXT_CHARS:,} Zeichen abgeschnitten.".replace(",", "."))
    body, quoted = split_quoted(text)

    refs = inquiry_references(subject)
    bounce = _bounce(msg, parts, text, embedded, subject, from_address, from_name, warnings)
    auto = None
    if bounce is None:
        auto_reason = auto_reply_reason(msg, subject)
        if auto_reason:
            anchor = msg_date.date() if msg_date else today
            auto = AutoReplyInfo(return_date=return_date(text, anchor), reason=auto_reason)
    if bounce is not None:
        kind = Kind.bounce
    elif auto is not None:
        kind = Kind.auto_reply
    elif in_reply_to or references or refs or _REPLY_PREFIX.match(subject):
        kind = Kind.reply
    else:
        kind = Kind.other

    return ParsedMessage(
        sha256=digest, size=size, message_id=message_id, in_reply_to=in_reply_to,
        references=references, from_address=from_address, from_name=from_name, to=to,
        subject=subject, date=msg_date, text=text, body=body, quoted=quoted, html=html,
        attachments=tuple(attachments), kind=kind, inquiry_refs=refs, bounce=bounce,
        auto_reply=auto, warnings=tuple(dict.fromkeys(warnings)),
    )


