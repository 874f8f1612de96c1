"""The MIME parts of a received mail: walking, decoding, text and HTML bodies, attachments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from typing import Iterator
from core.inbox.headers import _bytes_to_text
from core.inbox.message import AttachmentInfo, MAX_DEPTH, MAX_PARTS


# --------------------------------------------------------------------------- MIME parts


@dataclass
class _Part:
    msg: Message
    depth: int
    content_type: str
    inside_attachment: bool = False  # below a message/rfc822 or attachment


def _content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"
    return ctype if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ctype or "") else "application/octet-stream"


def _walk(msg: Message, warnings: list[str]) -> Iterator[_Part]:
    """Every MIME part, depth-first, iteratively (no recursion), bounded in count and depth."""
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack:
        part, depth, inside = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            warnings.append(f"Mehr als {MAX_PARTS} MIME-Teile; der Rest wurde nicht gelesen.")
            return
        ctype = _content_type(part)
        yield _Part(part, depth, ctype, inside)
        if not part.is_multipart():
            continue
        if depth >= MAX_DEPTH:
            warnings.append("MIME-Struktur sehr tief verschachtelt; innere Teile nicht gelesen.")
            continue
        try:
            children = part.get_payload()
        except Exception:  # noqa: BLE001
            children = []
        if not isinstance(children, list):
            continue
        child_inside = inside or ctype in ("message/rfc822", "message/global") or _is_attachment(part)
        for child in reversed(children):
            if isinstance(child, Message):
                stack.append((child, depth + 1, child_inside))


def _disposition(part: Message) -> str:
    try:
        value = part.get("Content-Disposition")
    except Exception:  # noqa: BLE001
        return ""
    return str(value or "").split(";", 1)[0].strip().lower()


def _filename(part: Message, warnings: list[str]) -> str:
    name = None
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - broken RFC 2231 parameters
        name = None
    if name is None:
        try:
            name = part.get_param("name")
        except Exception:  # noqa: BLE001
            name = None
        if isinstance(name, tuple):  # RFC 2231 triple
            try:
                name = name[2].encode("latin-1", "replace").decode(name[0] or "utf-8", "replace")
            except Exception:  # noqa: BLE001
                name = str(name[2])
    if not name:
        return ""
    name = str(name)
    if "=?" in name:
        try:
            name = "".join(
                _bytes_to_text(chunk, cs, warnings, "Dateiname") if isinstance(chunk, bytes) else chunk
                for chunk, cs in decode_header(name)
            )
        except Exception:  # noqa: BLE001
            pass
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        name = _bytes_to_text(name.encode("ascii", "surrogateescape"), None, [], "Dateiname")
    name = "".join(ch for ch in name if ch.isprintable())
    name = name.replace("/", "_").replace("\\", "_").strip()
    return name[:200]


def _is_attachment(part: Message) -> bool:
    return _disposition(part) == "attachment"


def _payload_bytes(part: Message, warnings: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - broken base64 / quoted-printable
        warnings.append("Inhalt falsch kodiert; so gut wie möglich gelesen.")
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if data is None:
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    return data


def _decode_text(part: Message, warnings: list[str]) -> str:
    data = _payload_bytes(part, warnings)
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    if charset is not None and not isinstance(charset, str):
        charset = None
    return _bytes_to_text(data, charset, warnings, "Text")


_TEXT_TYPES = ("text/plain", "text/html")


def _classify_parts(parts: list[_Part], warnings: list[str]):
    text_part = html_part = None
    attachments: list[AttachmentInfo] = []
    embedded: list[_Part] = []  # message/rfc822, text/rfc822-headers, delivery-status (bounces)
    for p in parts:
        part, ctype = p.msg, p.content_type
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
                     "message/delivery-status", "message/global-delivery-status"):
            embedded.append(p)
            if ctype in ("message/rfc822", "message/global") and not p.inside_attachment:
                attachments.append(AttachmentInfo(_filename(part, warnings) or "Weitergeleitete Nachricht.eml",
                                                  ctype, _size(part)))
            continue
        if p.inside_attachment:
            continue
        if part.is_multipart():
            continue
        name = _filename(part, warnings)
        disposition = _disposition(part)
        if ctype in _TEXT_TYPES and disposition != "attachment" and not name:
            if ctype == "text/plain" and text_part is None:
                text_part = part
                continue
            if ctype == "text/html" and html_part is None:
                html_part = part
                continue
        if ctype in _TEXT_TYPES and disposition != "attachment" and not name:
            continue  # a second body (e.g. a footer part): not an attachment
        attachments.append(AttachmentInfo(name or _unnamed(ctype), ctype, _size(part)))
    return text_part, html_part, attachments, embedded


def _unnamed(ctype: str) -> str:
    return f"ohne Namen ({ctype})"


def _size(part: Message) -> int:
    """Decoded size without keeping the bytes (base64 is estimated from its length)."""
    try:
        payload = part.get_payload()
        if isinstance(payload, list):
            return sum(_size(p) for p in payload if isinstance(p, Message))
        if not isinstance(payload, str):
            return 0
        cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if cte == "base64":
            n = sum(1 for ch in payload if ch.isalnum() or ch in "+/")
            return n * 3 // 4
        return len(payload.encode("utf-8", "surrogateescape"))
    except Exception:  # noqa: BLE001
        return 0


