"""A received e-mail, read into plain values (pure: bytes in, a ParsedMessage out).

`parse_message(raw)` never raises. It returns

- a `ParsedMessage`: headers decoded (RFC 2047, odd or unknown charsets with a warning), the
  text body (the text/plain part, else text made from the sanitised HTML), the sanitised HTML,
  the quoted history split off (`body` + `quoted`), attachments listed by name, type and size
  (never opened), the inquiry references of the subject ("A253"), and the kind:
  `bounce` (RFC 3464 delivery status notification, or the plain-text reports of qmail, Exim,
  Postfix, Exchange and friends: failed recipient, status code, diagnostic, original
  Message-ID), `auto_reply` (Auto-Submitted, X-Autoreply, Precedence: auto_reply, typical
  German/English subjects; with the return date when the text names one), `reply` (In-Reply-To
  / References, "AW:"/"Re:" or an inquiry reference in the subject) or `other`. Anything odd
  that was read anyway is listed in `warnings` (German);
- or a `RejectedMessage` with a German `reason` when there is nothing to read (empty, not an
  e-mail, too large, MIME nested beyond reason).

Everything is bounded: header values, body text, number and depth of MIME parts.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Iterator, Optional, Union

from core.inbox.sanitize import html_to_text, sanitize_html

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_HEADER_CHARS = 998 * 4
MAX_TEXT_CHARS = 200_000
MAX_PARTS = 500
MAX_DEPTH = 25
MAX_REFERENCES = 100
MAX_ID_CHARS = 250


class Kind:
    reply = "reply"
    bounce = "bounce"
    auto_reply = "auto_reply"
    other = "other"


@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    content_type: str
    size: int  # bytes after transfer decoding


@dataclass(frozen=True)
class BounceInfo:
    recipient: str  # the failed address (lower case), "" when the report does not say
    status: str  # enhanced status code "5.1.1", else the SMTP code "550", else ""
    diagnostic: str  # what the receiving server said, one line
    original_message_id: str  # Message-ID of the mail that bounced, "" when not included
    permanent: bool  # False for "delayed" notices (4.x.x): the mail may still arrive
    format: str  # "dsn" | "qmail" | "exim" | "postfix" | "text"


@dataclass(frozen=True)
class AutoReplyInfo:
    return_date: Optional[date]  # first day the sender says they are back
    reason: str  # which sign made it an auto-reply (header or subject)


@dataclass(frozen=True)
class ParsedMessage:
    sha256: str
    size: int
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    from_address: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    date: Optional[datetime]  # aware, UTC
    text: str  # the whole text body
    body: str  # text without the quoted history
    quoted: str  # the quoted history ("" when none was found)
    html: str  # sanitised HTML ("" when the mail had none)
    attachments: tuple[AttachmentInfo, ...]
    kind: str
    inquiry_refs: tuple[str, ...]  # "A253", in subject order, no duplicates
    bounce: Optional[BounceInfo] = None
    auto_reply: Optional[AutoReplyInfo] = None
    warnings: tuple[str, ...] = ()

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers: In-Reply-To first, then References newest first
        (and the bounced mail's id for bounces)."""
        ids: list[str] = []
        for mid in (self.in_reply_to, *reversed(self.references),
                    self.bounce.original_message_id if self.bounce else ""):
            if mid and mid not in ids:
                ids.append(mid)
        return tuple(ids)


@dataclass(frozen=True)
class RejectedMessage:
    sha256: str
    size: int
    reason: str
    message_id: str = ""
    from_address: str = ""
    subject: str = ""


ParseResult = Union[ParsedMessage, RejectedMessage]


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


# --------------------------------------------------------------------------- headers


def _defects_warning(defects) -> str:
    names = sorted({type(d).__name__ for d in defects})
    return "MIME-Fehler in der Nachricht: " + ", ".join(names[:5]) + ("…" if len(names) > 5 else "")


def _clip(value: str, limit: int, label: str, warnings: list[str]) -> str:
    if len(value) > limit:
        warnings.append(f"{label} zu lang, gekürzt.")
        return value[:limit]
    return value


def _bytes_to_text(data: bytes, charset: Optional[str], warnings: list[str], where: str) -> str:
    """Decode with the declared charset; unknown or wrong charsets fall back to UTF-8,
    then Windows-1252 (never fails)."""
    if charset:
        cs = charset.strip().strip('"').lower()
        if cs in ("unknown-8bit", "x-unknown", "8bit", "default", "us-ascii", "ascii"):
            cs = ""
        if cs:
            try:
                codecs.lookup(cs)
            except (LookupError, ValueError):
                warnings.append(f"Unbekannter Zeichensatz {charset[:40]!r} ({where}); als UTF-8 gelesen.")
                cs = ""
        if cs:
            try:
                return data.decode(cs)
            except (UnicodeDecodeError, ValueError, LookupError):
                warnings.append(f"Text passt nicht zum Zeichensatz {charset[:40]!r} ({where}).")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if charset is None or charset == "":
        warnings.append(f"Zeichensatz nicht angegeben, als Windows-1252 gelesen ({where}).")
    return data.decode("cp1252", "replace")


def _raw_header(msg: Message, name: str) -> Optional[str]:
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return value if isinstance(value, str) else str(value)
    return None


def _header(msg: Message, name: str, warnings: list[str]) -> str:
    """The first `name` header as text: RFC 2047 words decoded, raw 8-bit bytes read as
    UTF-8 (else Windows-1252), folded lines joined, length bounded."""
    try:
        raw = _raw_header(msg, name)
    except Exception:  # noqa: BLE001
        raw = None
    if raw is None:
        return ""
    raw = raw[: MAX_HEADER_CHARS * 4]
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        raw = _bytes_to_text(raw.encode("ascii", "surrogateescape"), None, [], name)
    raw = re.sub(r"\r?\n[ \t]+", " ", raw).replace("\r", " ").replace("\n", " ")
    try:
        chunks = decode_header(raw)
    except Exception:  # noqa: BLE001 - broken encoded words: keep the raw text
        warnings.append(f"Kopfzeile {name} falsch kodiert; unverändert übernommen.")
        chunks = [(raw, None)]
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(_bytes_to_text(chunk, charset, warnings, f"Kopfzeile {name}"))
        else:
            out.append(chunk)
    text = "".join(out)
    text = "".join(ch if ch.isprintable() or ch == " " else " " for ch in text)
    return " ".join(text.split())[:MAX_HEADER_CHARS]


def _addresses(value: str) -> list[tuple[str, str]]:
    if not value:
        return []
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001
        pairs = []
    result = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if "@" in addr and " " not in addr and len(addr) <= 254:
            result.append((name.strip().strip('"'), addr))
    if not result:
        m = _EMAIL.search(value)
        if m:
            result.append(("", m.group(0).lower()))
    return result


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _first_address(value: str) -> tuple[str, str]:
    found = _addresses(value)
    return found[0] if found else ("", "")


_ID = re.compile(r"<([^<>\s]{1,%d})>" % (MAX_ID_CHARS * 4))


def _norm_id(token: str) -> str:
    token = token.strip()
    return f"<{token}>" if token else ""


def _first_id(value: str, warnings: list[str]) -> str:
    if not value:
        return ""
    m = _ID.search(value)
    if m:
        mid = _norm_id(m.group(1))
    else:
        bare = value.strip().split()[0] if value.strip() else ""
        mid = _norm_id(bare.strip("<>")) if bare else ""
    if len(mid) > MAX_ID_CHARS:
        warnings.append("Message-ID zu lang, gekürzt.")
        mid = mid[: MAX_ID_CHARS - 1] + ">"
    return mid


def _all_ids(value: str) -> tuple[str, ...]:
    ids = []
    for m in _ID.finditer(value or ""):
        mid = _norm_id(m.group(1))
        if len(mid) <= MAX_ID_CHARS and mid not in ids:
            ids.append(mid)
    return tuple(ids[-MAX_REFERENCES:])


def _date(value: str, warnings: list[str]) -> Optional[datetime]:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - (TypeError, ValueError, IndexError, OverflowError) in practice
        parsed = None
    if parsed is None:
        warnings.append("Datum unlesbar.")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        warnings.append("Datum außerhalb des gültigen Bereichs.")
        return None


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


# --------------------------------------------------------------------------- text


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable() or ch == " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


_ATTRIBUTION = re.compile(
    r"^(?:"
    r"am\s.{1,200}?\sschrieb\s?.{0,200}?:"  # Am 23.11.2026 um 09:30 schrieb X:
    r"|on\s.{1,200}?\swrote:"  # On Mon, 23 Nov 2026 ... wrote:
    r"|.{1,120}\sschrieb\sam\s.{1,80}:"  # X schrieb am 23.11.2026:
    r"|.{1,120}\s(?:schrieb|wrote):"
    r")\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original(?:\s+message|nachricht)?|ursprüngliche\s+nachricht|urspr\.?\s+nachricht|"
    r"weitergeleitete\s+nachricht|forwarded\s+message)\s*-{2,}|_{10,}|-{10,})\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:von|from)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(?:gesendet|sent|datum|date|an|to|betreff|subject)\s*:", re.IGNORECASE)


def split_quoted(text: str) -> tuple[str, str]:
    """(new text, quoted history). Top posting (the usual case) splits at the first
    attribution line ("Am … schrieb …:", "On … wrote:"), an Outlook header block
    ("Von:/Gesendet:") or a separator ("-----Ursprüngliche Nachricht-----"); a run of
    "> " lines counts as history too. When the sender answered *between* or *below* the
    quoted lines, nothing is split (the answer must stay visible)."""
    if not text:
        return "", ""
    lines = text.split("\n")
    cut = None
    head_end = 0  # last line of the attribution (it may wrap over two lines)
    hard = False  # separators / Outlook blocks: everything below is history
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _SEPARATOR.match(stripped):
            if _looks_like_history(lines, i + 1):
                cut, hard = i, True
                break
            continue
        if _OUTLOOK_FROM.match(stripped) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1:i + 4]):
            cut, hard = i, True
            break
        joined = stripped if len(stripped) > 2 else ""
        if i + 1 < len(lines) and not stripped.endswith(":") and lines[i + 1].strip().endswith(":"):
            joined = stripped + " " + lines[i + 1].strip()  # attribution wrapped over two lines
        if joined and _ATTRIBUTION.match(stripped):
            cut = head_end = i
            break
        if joined and _ATTRIBUTION.match(joined) and _next_is_quote(lines, i + 2):
            cut, head_end = i, i + 1
            break
        if stripped.startswith(">"):
            cut = head_end = i
            break
    if cut is None:
        return text.strip("\n"), ""
    if not hard and _answer_below(lines, head_end):
        return text.strip("\n"), ""
    body = "\n".join(lines[:cut]).strip("\n")
    quoted = "\n".join(lines[cut:]).strip("\n")
    if not body.strip():
        return text.strip("\n"), ""  # nothing but history: show it all
    return body, quoted


def _next_is_quote(lines: list[str], start: int) -> bool:
    for line in lines[start:start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def _looks_like_history(lines: list[str], start: int) -> bool:
    return any(line.strip() for line in lines[start:])


def _answer_below(lines: list[str], cut: int) -> bool:
    """True when non-quoted text follows the quoted block (inline or bottom posting)."""
    in_quote = False
    for line in lines[cut + 1:]:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            in_quote = True
            continue
        if in_quote and not _SIGNATURE.match(stripped):
            return True
        if not in_quote:
            return True  # text right after an attribution without ">" lines
    return False


_SIGNATURE = re.compile(r"^(?:--\s*|__+)$")


# --------------------------------------------------------------------------- references


_INQUIRY_REF = re.compile(r"(?<![A-Za-z0-9])A(\d{1,9})(?:-\d{1,2})?(?![A-Za-z0-9])")
_REPLY_PREFIX = re.compile(r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:re|aw|antw|antwort|sv|vs|wg|fw|fwd)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


def inquiry_references(subject: str) -> tuple[str, ...]:
    """Inquiry identifiers ("A253") named in a subject, first seen first; a patient
    reference "A253-2" counts as its inquiry."""
    refs: list[str] = []
    for m in _INQUIRY_REF.finditer(subject or ""):
        ref = f"A{int(m.group(1))}"
        if ref not in refs:
            refs.append(ref)
    return tuple(refs)


# --------------------------------------------------------------------------- auto-replies


_AUTO_SUBJECT = re.compile(
    r"abwesenheits?(?:notiz|nachricht|meldung|benachrichtigung)|automatische\s+antwort|automatische\s+r[üu]ckantwort|"
    r"auto(?:matic)?[\s_-]?(?:reply|response|antwort)|autoreply|out\s+of\s+(?:the\s+)?office|"
    r"\babwesend\b|nicht\s+im\s+b[üu]ro|\bim\s+urlaub\b|\burlaubsbedingt\b|vacation\s+(?:reply|notice|message)|"
    r"\bon\s+vacation\b|\bout\s+of\s+office\b|\booo\b",
    re.IGNORECASE,
)


def auto_reply_reason(msg: Message, subject: str) -> str:
    """Why this mail is an automatic answer ("" when it is not)."""
    auto_submitted = str(msg.get("Auto-Submitted", "") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted[:40]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        value = str(msg.get(name, "") or "").strip().lower()
        if value and value not in ("no", "false", "0"):
            return f"{name}: {value[:40]}"
    precedence = str(msg.get("Precedence", "") or "").strip().lower()
    if precedence == "auto_reply":
        return "Precedence: auto_reply"
    if _AUTO_SUBJECT.search(subject or ""):
        return "Betreff"
    if str(msg.get("X-MS-Exchange-Generated-Message-Source", "") or ""):
        return "Exchange-Regel"
    return ""


_MONTHS = {
    "januar": 1, "jan": 1, "jänner": 1, "january": 1,
    "februar": 2, "feb": 2, "february": 2,
    "märz": 3, "maerz": 3, "mär": 3, "mrz": 3, "march": 3, "mar": 3,
    "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "juni": 6, "jun": 6, "june": 6,
    "juli": 7, "jul": 7, "july": 7,
    "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "october": 10, "oct": 10,
    "november": 11, "nov": 11,
    "dezember": 12, "dez": 12, "december": 12, "dec": 12,
}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = [
    # 14.12.2026, 14.12.26, 14.12., 7.1.
    re.compile(r"(?<![\d.])(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.(?:\s?(?P<y>\d{4}|\d{2})(?!\d|\.\d))?"),
    # 7. Januar 2027, 7 January, 7th of January
    re.compile(r"(?<!\d)(?P<d>\d{1,2})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?(?P<mn>" + _MONTH_NAMES + r")\.?(?:\s*,?\s*(?P<y>\d{4}))?(?![a-zäöü])",
               re.IGNORECASE),
    # January 7, 2027 / Jan 7th
    re.compile(r"(?<![a-zäöü])(?P<mn>" + _MONTH_NAMES + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?!\d)(?:\s*,?\s*(?P<y>\d{4}))?",
               re.IGNORECASE),
    # 2027-01-07
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?!\d)"),
]
_UNTIL = re.compile(r"(?:\bbis\b|\buntil\b|\btill\b|\bthrough\b|\bthru\b)[^.\n!?]{0,40}$", re.IGNORECASE)
_BACK_BEFORE = re.compile(
    r"(?:wieder|zurück|zurueck|\bback\b|\breturn\w*|erreichbar|\bab\b|\bfrom\b|\bam\b|\bon\b)[^.\n!?]{0,40}$", re.IGNORECASE)
_BACK_WORD = re.compile(r"wieder|zurück|zurueck|\bback\b|\breturn|erreichbar|im\s+büro|in\s+the\s+office|available|für\s+sie\s+da",
                        re.IGNORECASE)


def _found_dates(text: str, anchor: date) -> list[tuple[int, int, date]]:
    found: list[tuple[int, int, date]] = []
    taken: list[tuple[int, int]] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(s < end and start < e for s, e in taken):
                continue
            try:
                day = int(m.group("d"))
                month = _MONTHS[m.group("mn").lower()] if "mn" in m.groupdict() and m.group("mn") else int(m.group("m"))
                year_text = m.group("y")
                if year_text:
                    year = int(year_text)
                    year = year + 2000 if year < 100 else year
                    when = date(year, month, day)
                else:
                    when = date(anchor.year, month, day)
                    if when < anchor - timedelta(days=60):
                        when = date(anchor.year + 1, month, day)
            except (ValueError, KeyError, TypeError, OverflowError):
                continue
            taken.append((start, end))
            found.append((start, end, when))
    found.sort()
    return found


def return_date(text: str, anchor: Optional[date]) -> Optional[date]:
    """The first day the sender is back, read from an out-of-office text: "bis zum
    14.12.2026" (absent through the 14th → back on the 15th), "ab 7. Januar wieder",
    "back on January 7". Dates without a year are taken in the year of `anchor` (the mail's
    date), or the next one when that would lie in the past. None when no such date is found or
    it is not between a week before and a year after the anchor."""
    if not text or anchor is None:
        return None
    text = text[:5000]
    dates = _found_dates(text, anchor)
    back: Optional[date] = None
    until: Optional[date] = None
    previous_end = 0
    for start, end, when in dates:
        before = text[max(previous_end, start - 60):start]
        after_match = re.match(r"[^.\n!?]{0,50}", text[end:])
        after = after_match.group(0) if after_match else ""
        previous_end = end
        if not anchor - timedelta(days=7) <= when <= anchor + timedelta(days=366):
            continue
        if _UNTIL.search(before):
            until = until or when + timedelta(days=1)
        elif _BACK_WORD.search(after) or (_BACK_BEFORE.search(before) and _BACK_WORD.search(before)):
            back = back or when
    return back or until


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
